"""Starting a service: logging from its settings, then its ASGI app under uvicorn."""

from collections.abc import Callable
from typing import TypeVar

import uvicorn
from fastapi import FastAPI

from shared.logging import configure_logging
from shared.settings import Settings

S = TypeVar("S", bound=Settings)


def serve(create_app: Callable[[S], FastAPI], settings: S, host: str, port: int) -> None:
    configure_logging(settings.log_level, json=settings.log_json)
    # uvicorn's own graceful shutdown on SIGTERM runs the app's lifespan exit: consumers stop
    # and commit what they finished before the process ends
    uvicorn.run(create_app(settings), host=host, port=port, timeout_graceful_shutdown=20)
