"""Times on server-rendered pages: a <time> the page's script words in the reader's zone."""

from datetime import UTC, datetime, timedelta, timezone

from services.console.times import local_day, local_time


def test_a_moment_is_given_in_utc_with_its_offset_whatever_form_it_came_in() -> None:
    shanghai = timezone(timedelta(hours=8))
    expected = (
        '<time datetime="2026-11-27T15:04:00+00:00" data-local="minute">2026-11-27 15:04 UTC</time>'
    )
    naive = datetime(2026, 11, 27, 15, 4, tzinfo=UTC).replace(tzinfo=None)  # as MongoDB gives
    assert local_time(naive) == expected
    assert local_time(datetime(2026, 11, 27, 23, 4, tzinfo=shanghai)) == expected
    assert local_time("2026-11-27T15:04:00+00:00") == expected
    assert local_day(datetime(2026, 11, 27, 23, 4, tzinfo=shanghai)) == (
        '<time datetime="2026-11-27T15:04:00+00:00" data-local="day">2026-11-27</time>'
    )
    assert local_time(None) == ""
    assert local_day("") == ""
