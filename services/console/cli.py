"""``ordertag users``: console accounts (the first admin, then more)."""

import asyncio
from typing import Annotated, Any

import typer
from pymongo import AsyncMongoClient
from rich.console import Console
from rich.table import Table

from services.console.users import Role, UserExists, UserStore, WeakPassword
from shared.settings import Settings

users_app = typer.Typer(help="Console user accounts.", no_args_is_help=True)
console = Console()


async def _with_users(action: Any) -> Any:
    settings = Settings()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongo_url, tz_aware=True, serverSelectionTimeoutMS=5000
    )
    try:
        users = UserStore(client[settings.mongo_database])
        await users.ensure_indexes()
        return await action(users)
    finally:
        await client.close()


@users_app.command("create")
def create(
    name: str,
    role: Annotated[Role, typer.Option(help="viewer (read), agent (read, tag), admin (all)")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="ORDERTAG_NEW_USER_PASSWORD",
        ),
    ],
) -> None:
    """Create a console user; the password is stored as an argon2 hash only."""
    try:
        user = asyncio.run(_with_users(lambda users: users.create(name, role, password)))
    except (UserExists, WeakPassword, ValueError) as error:
        console.print(f"[red]refused[/red] {error}")
        raise typer.Exit(1) from None
    console.print(f"created [bold]{user.name}[/bold] ({user.role.value})")


@users_app.command("list")
def list_users() -> None:
    """Every console user with role and state."""
    users = asyncio.run(_with_users(lambda users: users.list()))
    table = Table()
    for column in ("name", "role", "active"):
        table.add_column(column)
    for user in users:
        table.add_row(user.name, user.role.value, "yes" if user.active else "no")
    console.print(table)
