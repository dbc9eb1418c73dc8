"""The reader's time zone (``tz``): a zone's name follows daylight saving row by row, a UTC
offset keeps its one offset, anything else is refused naming ``tz``; the order workbook's
times each at their own date's offset."""

import importlib.util
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import pytest
from openpyxl import load_workbook
from pydantic import ValidationError
from pymongo.errors import OperationFailure

from services.console.export import clock_name, xlsx_bytes, xlsx_header, xlsx_row
from services.console.i18n import language
from services.tagger.queries import OrderFilter
from services.tagger.reports import Reports
from shared.errors import InvalidInput
from shared.reader_zone import NoSuchZone, reader_zone, reader_zone_param

WINTER = datetime(2026, 1, 15, 23, 30, tzinfo=UTC)  # London on GMT (+00:00)
SUMMER = datetime(2026, 7, 15, 23, 30, tzinfo=UTC)  # London on BST (+01:00)


def test_the_zone_database_ships_with_the_project() -> None:
    # slim images have no /usr/share/zoneinfo: zoneinfo then reads the tzdata package
    assert importlib.util.find_spec("tzdata") is not None, (
        "the tzdata package is missing: it is a dependency in pyproject.toml (uv sync)"
    )


@pytest.mark.parametrize(
    ("given", "hours"), [("+08:00", 8), ("-09:30", -9.5), ("+14:00", 14), ("-00:00", 0)]
)
def test_a_utc_offset_is_one_offset_all_year(given: str, hours: float) -> None:
    reader = reader_zone(given)

    assert reader.fixed
    assert reader.given == given
    assert reader.offset_at(WINTER) == reader.offset_at(SUMMER)
    assert reader.clock(SUMMER) == SUMMER.replace(tzinfo=None) + timedelta(hours=hours)


def test_a_zone_name_gives_each_moment_the_offset_in_force_then() -> None:
    london = reader_zone("Europe/London")

    assert not london.fixed
    assert (london.offset_at(WINTER), london.offset_at(SUMMER)) == ("+00:00", "+01:00")
    assert london.clock(WINTER) == datetime(2026, 1, 15, 23, 30)  # noqa: DTZ001 (a wall clock)
    assert london.clock(SUMMER) == datetime(2026, 7, 16, 0, 30)  # noqa: DTZ001 (the next day)
    assert london.for_mongo == "Europe/London"
    assert reader_zone("-09:30").for_mongo == "-09:30"


def test_a_day_in_a_zone_starts_at_that_days_offset() -> None:
    london = reader_zone("Europe/London")

    assert london.day_starts(date(2026, 1, 15)).isoformat() == "2026-01-15T00:00:00+00:00"
    assert london.day_starts(date(2026, 7, 15)).isoformat() == "2026-07-15T00:00:00+01:00"
    ends = london.day_ends(date(2026, 7, 15)).isoformat(timespec="milliseconds")
    assert ends == "2026-07-15T23:59:59.999+01:00"


@pytest.mark.parametrize(
    "given",
    [
        "Mars/Olympus",
        "asia/shanghai",
        "Europe",
        "zone.tab",
        "../etc/passwd",
        "/etc/localtime",
        "+8:00",
        "+15:00",
        "",
        "Asia/Shanghai\x00",
        "A" * 300,
        "$created_at",  # never a field path in a pipeline's timezone
        "localtime",  # the server's own zone: no place, and it would tell the reader it
        "posixrules",
        "Factory",
        "posix/Europe/London",  # the database's other trees, which MongoDB does not hold
        "right/UTC",
    ],
)
def test_anything_else_is_refused_saying_what_to_send(given: str) -> None:
    with pytest.raises(NoSuchZone, match=r"time zone name such as Asia/Shanghai .* UTC offset"):
        reader_zone(given)


def test_a_links_unencoded_plus_read_as_a_space_is_read_as_the_plus_it_was() -> None:
    assert reader_zone(" 08:00") == reader_zone("+08:00")
    assert reader_zone("Etc/GMT 8").zone == reader_zone("Etc/GMT+8").zone


def test_an_hour_the_clocks_repeat_before_midnight_belongs_to_its_day() -> None:
    # America/Santiago, 4 April 2026: at midnight (-03:00) the clocks go back to 23:00 (-04:00)
    santiago = reader_zone("America/Santiago")
    ends = santiago.day_ends(date(2026, 4, 4))
    starts = santiago.day_starts(date(2026, 4, 5))

    assert (
        ends.astimezone(UTC).isoformat(timespec="milliseconds") == "2026-04-05T03:59:59.999+00:00"
    )
    assert starts.astimezone(UTC) - ends.astimezone(UTC) == timedelta(milliseconds=1)


def test_the_calendars_last_day_ends_at_its_last_millisecond() -> None:
    for given in ("Europe/London", "+08:00", "-05:00"):
        ends = reader_zone(given).day_ends(date.max)
        assert ends.replace(tzinfo=None) == datetime(9999, 12, 31, 23, 59, 59, 999_000)  # noqa: DTZ001


def test_a_request_with_an_unknown_zone_is_refused_naming_tz() -> None:
    with pytest.raises(InvalidInput) as refused:
        reader_zone_param("Mars/Olympus")

    assert refused.value.field == "tz"
    assert "'Mars/Olympus' is neither a time zone name" in refused.value.problem


def _order(no: str, created_at: datetime) -> dict[str, Any]:
    return {
        "order_no": no,
        "customer_name": "Ada",
        "status": "pending",
        "amount": "10.00",
        "currency": "GBP",
        "created_at": created_at.replace(tzinfo=None),  # naive, UTC: as MongoDB gives it
        "tag_names": [],
    }


def _workbook(tz: str, moments: list[datetime]) -> list[tuple[Any, ...]]:
    lang, reader = language("en"), reader_zone(tz)
    rows = [_order(f"SO-{n}", moment) for n, moment in enumerate(moments)]
    head = xlsx_header(lang, reader, [row["created_at"] for row in rows])
    body = xlsx_bytes(head, [xlsx_row(row, lang, reader) for row in rows])
    sheet = load_workbook(io.BytesIO(body), read_only=True).active
    assert sheet is not None
    return list(sheet.iter_rows(values_only=True))


def test_a_london_export_across_the_clock_change_puts_each_row_at_its_own_offset() -> None:
    head, january, july = _workbook("Europe/London", [WINTER, SUMMER])

    assert january[6] == datetime(2026, 1, 15, 23, 30)  # noqa: DTZ001 (GMT: as UTC)
    assert july[6] == datetime(2026, 7, 16, 0, 30)  # noqa: DTZ001 (BST: an hour on)
    assert head[6].endswith("(Europe/London)")  # two offsets: the header names the zone
    # the same rows with the offset the page sent before: July's an hour off
    _, _, july_fixed = _workbook("+00:00", [WINTER, SUMMER])
    assert july_fixed[6] == datetime(2026, 7, 15, 23, 30)  # noqa: DTZ001


def test_shanghai_by_name_exports_exactly_what_plus_eight_did() -> None:
    moments = [WINTER, SUMMER, datetime(2026, 11, 28, 16, 0, tzinfo=UTC)]

    by_name = _workbook("Asia/Shanghai", moments)

    assert by_name == _workbook("+08:00", moments)
    assert by_name[0][6] == "Created (UTC+08:00)"


def test_rows_of_one_offset_name_it_and_an_empty_export_names_todays() -> None:
    london = reader_zone("Europe/London")

    assert clock_name(london, [WINTER]) == "UTC+00:00"
    assert clock_name(london, [SUMMER, SUMMER]) == "UTC+01:00"
    assert clock_name(reader_zone("Asia/Shanghai"), []) == "UTC+08:00"
    assert clock_name(reader_zone("-00:00"), [SUMMER]) == "UTC-00:00"  # as sent, as before


class _StoreWithoutTheZone:
    """An ``orders`` collection whose server's zone database lacks the zone (an older MongoDB)."""

    def __getitem__(self, _: str) -> "_StoreWithoutTheZone":
        return self

    async def aggregate(self, pipeline: list[dict[str, Any]]) -> Any:
        raise OperationFailure("$dateToString unrecognized time zone identifier", code=40485)


async def test_a_zone_the_store_does_not_know_is_the_readers_to_change_not_a_500() -> None:
    reports = Reports(cast(Any, _StoreWithoutTheZone()))

    with pytest.raises(InvalidInput) as refused:
        await reports.tags_over_time(OrderFilter(), "day", "America/Ciudad_Juarez")

    assert refused.value.field == "tz"
    assert "America/Ciudad_Juarez" in refused.value.problem


@pytest.mark.parametrize("field", ["created_from", "created_to"])
def test_a_moment_past_year_9999_in_utc_is_refused_naming_its_field(field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        OrderFilter.model_validate({field: "9999-12-31T23:59:59-05:00"})

    [error] = refused.value.errors()
    assert error["loc"] == (field,)
    assert "within the years 1 to 9999 in UTC" in error["msg"]
    assert OrderFilter.model_validate({field: "9999-12-31T23:59:59+08:00"})  # still in 9999
