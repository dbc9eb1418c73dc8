"""``python -m services.notifier [--role consumer|web|both]``: consume tagged-order events and
deliver alerts (consumer), serve the support page and its API (web), or both (the default)."""

import argparse

from services.notifier.app import create_app
from services.notifier.settings import NotifierSettings, Role
from shared.serve import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.notifier")
    parser.add_argument(
        "--role",
        choices=[role.value for role in Role],
        help="what this process runs (default: ORDERTAG_NOTIFIER_ROLE, else both)",
    )
    arguments = parser.parse_args()
    settings = NotifierSettings()
    if arguments.role:
        settings = settings.model_copy(update={"notifier_role": Role(arguments.role)})
    serve(create_app, settings, settings.notifier_host, settings.notifier_port)


if __name__ == "__main__":
    main()
