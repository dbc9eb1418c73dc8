"""What the notifier refuses to start with outside local mode (``ORDERTAG_ENV=production``):
a session secret anyone could know. In local mode it warns."""

import structlog

from services.notifier.settings import DEFAULT_SESSION_SECRET, NotifierSettings
from shared.settings import Environment

log = structlog.get_logger("notifier")
MIN_SECRET_LENGTH = 32
# Secrets published in this repository: the code's default and deploy/'s placeholders.
KNOWN_SECRETS = frozenset(
    {
        DEFAULT_SESSION_SECRET,
        "REPLACE_WITH_A_LONG_RANDOM_STRING",
        "changeme",
        "change-me",
        "secret",
    }
)


class UnsafeConfiguration(RuntimeError):
    """The service would run with a setting that is unsafe in production."""


def session_secret_problem(secret: str) -> str | None:
    if secret in KNOWN_SECRETS or secret.upper().startswith(("REPLACE", "CHANGE")):
        return "is a published placeholder"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    return None


def check_production_settings(settings: NotifierSettings) -> None:
    problem = session_secret_problem(settings.notifier_session_secret)
    if problem is None:
        return
    message = (
        f"ORDERTAG_NOTIFIER_SESSION_SECRET {problem}: anyone could forge support-page sessions;"
        " set a long random secret (python -c 'import secrets; print(secrets.token_urlsafe(48))')"
    )
    if settings.env is Environment.PRODUCTION:
        raise UnsafeConfiguration(message)
    log.warning("unsafe_session_secret", problem=message, env=settings.env.value)
