"""``python -m services.notifier``: consume tagged-order events and serve the support page."""

import uvicorn

from services.notifier.app import create_app
from services.notifier.settings import NotifierSettings
from shared.logging import configure_logging


def main() -> None:
    settings = NotifierSettings()
    configure_logging(settings.log_level, json=settings.log_json)
    uvicorn.run(create_app(settings), host=settings.notifier_host, port=settings.notifier_port)


if __name__ == "__main__":
    main()
