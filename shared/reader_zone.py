"""The reader's time zone as a page or a link gives it (``tz``): an IANA name such as
``Europe/London``, which the pages send since a fixed offset put the rows of the other half of
the year an hour off in a zone with daylight saving, or a UTC offset such as ``+08:00``, which
older links and API users send and which keeps its fixed meaning.

The names come from the system's zone database or, where it has none (slim images), from the
``tzdata`` package, a dependency for that reason."""

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from fastapi import Depends, Query

from shared.errors import InvalidInput

UTC_OFFSET = re.compile(r"[+-](0\d|1[0-4]):[0-5]\d")
# an IANA key's shape (Area/Location, Etc/GMT+8, UTC): no dots, so never a path or a data file
ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*")
ZONE_NAME_MAX = 64
# files of the zone database that name no place: the server's own zone (``localtime``), and
# links a MongoDB does not know
NOT_A_PLACE = frozenset({"localtime", "posixrules", "Factory"})


class NoSuchZone(ValueError):
    """``tz`` is neither a UTC offset nor a zone the zone database knows."""


@dataclass(frozen=True)
class ReaderZone:
    """Where the reader is: ``given`` as sent (``+08:00``, ``Europe/London``), ``zone`` to
    convert with; a zone name gives each moment the offset in force at that moment."""

    given: str
    zone: tzinfo

    @property
    def fixed(self) -> bool:
        """Whether the zone is one offset all year (a ``+08:00`` sent, not a name)."""
        return isinstance(self.zone, timezone)

    @property
    def for_mongo(self) -> str:
        """The zone as MongoDB's date operators take it (``timezone``: an offset or a name)."""
        if isinstance(self.zone, ZoneInfo):
            return self.zone.key
        return offset_text(self.zone.utcoffset(None) or timedelta(0))

    def clock(self, moment: datetime) -> datetime:
        """The moment on the reader's wall clock, without a zone (as a spreadsheet holds it);
        a naive moment is UTC (MongoDB's)."""
        aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return aware.astimezone(self.zone).replace(tzinfo=None)

    def offset_at(self, moment: datetime) -> str:
        """The offset in force at ``moment`` where the reader is, as ``+01:00``."""
        aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return offset_text(aware.astimezone(self.zone).utcoffset() or timedelta(0))

    def day_starts(self, day: date) -> datetime:
        """The first instant of ``day`` where the reader is (that day's offset, not today's)."""
        return datetime.combine(day, time(), self.zone)

    def day_ends(self, day: date) -> datetime:
        """The last millisecond of ``day`` where the reader is: the next day's first instant
        less one, so an hour the clocks repeat before midnight (America/Santiago's 4 April)
        belongs to the day, as MongoDB's ``$dateToString`` counts it. The calendar's last day
        has no next one: its clock's last millisecond."""
        if day == date.max:
            return datetime.combine(day, time(23, 59, 59, 999_000), self.zone)
        following = self.day_starts(day + timedelta(days=1)).astimezone(UTC)
        return (following - timedelta(milliseconds=1)).astimezone(self.zone)


def offset_text(offset: timedelta) -> str:
    """``+08:00`` or ``-09:30`` for an offset of whole minutes."""
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


@functools.cache
def known_zones() -> frozenset[str]:
    """The zone names a reader may send: the zone database's places (read once, ~60 ms), not
    its other files (``NOT_A_PLACE``), which MongoDB's date operators would refuse."""
    return frozenset(available_timezones() - NOT_A_PLACE)


def reader_zone(given: str) -> ReaderZone:
    """``+08:00`` (a fixed offset) or ``Asia/Shanghai`` (a zone name) as a ``ReaderZone``;
    ``NoSuchZone`` saying what to send for anything else. A link's unencoded ``+`` arrives
    as a space (``?tz=+08:00``): read as the ``+`` it was, since no zone or offset has one."""
    given = given.replace(" ", "+")
    if UTC_OFFSET.fullmatch(given):
        sign = -1 if given.startswith("-") else 1
        hours, minutes = given[1:].split(":")
        return ReaderZone(given, timezone(sign * timedelta(hours=int(hours), minutes=int(minutes))))
    if len(given) <= ZONE_NAME_MAX and ZONE_NAME.fullmatch(given) and given in known_zones():
        try:
            return ReaderZone(given, ZoneInfo(given))
        except (ZoneInfoNotFoundError, ValueError, OSError):  # unknown, a folder, not a zone file
            pass
    raise NoSuchZone(
        f"{given[:ZONE_NAME_MAX]!r} is neither a time zone name such as Asia/Shanghai or"
        " Europe/London (IANA) nor a UTC offset such as +08:00"
    )


def reader_zone_param(
    tz: Annotated[
        str,
        Query(
            max_length=200,  # a longer one is refused by reader_zone, with its reason
            description="the reader's time zone: an IANA name (`Asia/Shanghai`, daylight"
            " saving followed row by row) or a fixed UTC offset (`+08:00`)",
            examples=["Asia/Shanghai", "Europe/London", "+08:00"],
        ),
    ] = "+00:00",
) -> ReaderZone:
    """``tz`` of a request; 422 naming ``tz`` and its problem when it is neither."""
    try:
        return reader_zone(tz)
    except NoSuchZone as problem:
        raise InvalidInput("tz", str(problem)) from None


ReaderTz = Annotated[ReaderZone, Depends(reader_zone_param)]
