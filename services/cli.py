"""The ``ordertag`` command: one entry point for every service's tools."""

import typer

from services.console.cli import users_app
from services.ingest.cli import import_orders
from services.simulator.cli import simulate
from services.tagger.cli import figures_app, rules_app
from services.tagger.rules_cli import ruleset_app

app = typer.Typer(help="ordertag: tag CRM orders as they stream in.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
app.add_typer(ruleset_app, name="ruleset")
app.add_typer(figures_app, name="figures")
app.add_typer(users_app, name="users")
app.command("import")(import_orders)
app.command("simulate")(simulate)

if __name__ == "__main__":
    app()
