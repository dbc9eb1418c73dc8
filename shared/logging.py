"""structlog set-up: one event per line, with keys; JSON in production, readable locally."""

import logging

import structlog

# aiokafka says at INFO when a consumer joins its group, gets or loses partitions, finds its
# coordinator, or retries a commit: rare lines, and the only trace of a consumer that waits.
KAFKA_CLIENT_LEVEL = logging.INFO


def configure_logging(level: str = "INFO", *, json: bool = False) -> None:
    logging.basicConfig(format="%(message)s", level=level.upper())
    kafka_client = logging.getLogger("aiokafka")
    kafka_client.setLevel(min(logging.getLevelName(level.upper()), KAFKA_CLIENT_LEVEL))
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
