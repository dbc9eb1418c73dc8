"""``python -m services.ingest``: serve the ingest API."""

import uvicorn

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.logging import configure_logging


def main() -> None:
    settings = IngestSettings()
    configure_logging(settings.log_level, json=settings.log_json)
    uvicorn.run(create_app(settings), host=settings.ingest_host, port=settings.ingest_port)


if __name__ == "__main__":
    main()
