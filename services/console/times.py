"""Times on server-rendered pages, shown as the browser's script shows them: in the reader's
time zone and format (``OT.when`` in ``console.js``), with UTC until the script runs."""

from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup, escape


def local_time(value: Any) -> Markup:
    """``<time>`` for a moment, to the minute (empty for none)."""
    return _time(value, "minute", "%Y-%m-%d %H:%M UTC")


def local_day(value: Any) -> Markup:
    """``<time>`` for a moment's date (empty for none)."""
    return _time(value, "day", "%Y-%m-%d")


def _time(value: Any, precision: str, fallback: str) -> Markup:
    if value is None or value == "":
        return Markup("")
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:  # MongoDB's dates come back naive, in UTC
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return Markup('<time datetime="{}" data-local="{}">{}</time>').format(
        escape(moment.isoformat()), precision, moment.strftime(fallback)
    )
