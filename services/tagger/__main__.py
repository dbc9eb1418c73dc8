"""``python -m services.tagger``: consume order events and serve the tagger's HTTP API."""

import uvicorn

from services.tagger.app import create_app
from services.tagger.settings import TaggerSettings
from shared.logging import configure_logging


def main() -> None:
    settings = TaggerSettings()
    configure_logging(settings.log_level, json=settings.log_json)
    uvicorn.run(create_app(settings), host=settings.tagger_host, port=settings.tagger_port)


if __name__ == "__main__":
    main()
