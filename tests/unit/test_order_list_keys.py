"""The order list's tag keys and the timeline's choice of which tag to look candidates up by."""

from datetime import UTC, datetime
from typing import Any

from services.tagger.creation_timeline import (
    KEYED_WINDOW,
    MAX_WINDOWS_IN_FLIGHT,
    SHORTEST_KEYED_READ,
    CreationTimeline,
    keyed_read_size,
    round_size,
)
from services.tagger.queries import OrderFilter, SortKey, after_cursor, encode_cursor, tag_keys


def test_tag_keys_are_unique_to_the_order_one_per_tag() -> None:
    assert tag_keys("A-1", []) == []
    assert tag_keys("A-1", ["vip", "urgent", "vip"]) == ["urgent\x1fA-1", "vip\x1fA-1"]
    assert set(tag_keys("A-1", ["vip"])).isdisjoint(tag_keys("A-2", ["vip"]))


def timeline(counts: dict[str, int]) -> CreationTimeline:
    built = CreationTimeline(None, rebuild_s=60)  # type: ignore[arg-type]  # no store read
    built.tag_counts.update(counts)
    return built


def test_candidates_are_looked_up_by_the_rarest_tag_the_filter_needs() -> None:
    known = timeline({"urgent": 12_000, "vip": 5_000, "risk:velocity": 1_500})

    assert known.anchor(OrderFilter(all_tags=["urgent", "vip"])) == ["vip"]
    assert known.anchor(OrderFilter(all_tags=["urgent", "new-tag"])) == ["new-tag"]
    assert known.anchor(OrderFilter(any_tags=["vip", "risk:velocity"])) == [
        "vip",
        "risk:velocity",
    ]
    assert known.anchor(OrderFilter(none_tags=["vip"], status="pending")) == []


def test_the_span_starts_past_the_cursor_in_either_direction() -> None:
    known = timeline({})
    at = [datetime(2026, 1, 1, hour, tzinfo=UTC) for hour in range(5)]
    known.keys = [(at[0], "A"), (at[1], "B"), (at[1], "C"), (at[2], "D"), (at[4], "E")]
    last: dict[str, Any] = {"created_at": at[1], "order_no": "C"}

    newest = after_cursor(SortKey.NEWEST, encode_cursor(SortKey.NEWEST, last))
    oldest = after_cursor(SortKey.OLDEST, encode_cursor(SortKey.OLDEST, last))
    window = OrderFilter(created_from=at[1], created_to=at[4])

    assert list(known.span(OrderFilter(), SortKey.NEWEST, None)) == [4, 3, 2, 1, 0]
    assert list(known.span(OrderFilter(), SortKey.NEWEST, newest)) == [1, 0]
    assert list(known.span(OrderFilter(), SortKey.OLDEST, oldest)) == [3, 4]
    assert list(known.span(window, SortKey.OLDEST, None)) == [1, 2, 3]


def test_a_walk_reads_what_should_fill_the_page_at_the_rate_seen() -> None:
    assert round_size(50, 0.25, 0, 200) == 260  # a common filter: one round
    assert round_size(50, 0.01, 0, 200) == 200 * MAX_WINDOWS_IN_FLIGHT  # a rare one: capped
    assert round_size(40, 0.0, 300, 200) == 600  # nothing matched yet: twice as many
    assert round_size(5, 0.5, 100, 200) == 13


def test_a_tag_many_orders_carry_is_read_in_short_key_lists() -> None:
    """Each order found is matched against every key of its list: the more of the keys find an
    order, the shorter the list; a rare tag keeps long lists (fewer reads)."""
    urgent, vip, rare = keyed_read_size(0.12), keyed_read_size(0.05), keyed_read_size(0.001)
    assert SHORTEST_KEYED_READ <= urgent < vip < rare == KEYED_WINDOW
    assert keyed_read_size(1.0) == SHORTEST_KEYED_READ
    assert keyed_read_size(0.0) == KEYED_WINDOW
