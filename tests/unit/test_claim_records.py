"""Ingest's claim records in either form (``services/ingest/idempotency.py``): the compact form
written now, and JSON, which releases before wrote (kept for the retention period); both say
the same."""

import json

import pytest

from services.ingest import idempotency
from services.ingest.idempotency import DIGEST_KEPT, ClaimRecord, _record, digest_of

DIGEST = digest_of(b'{"order_no":"SO-1"}')


@pytest.mark.parametrize("compact", [False, True])
def test_a_record_reads_back_what_it_was_written_with(
    compact: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idempotency, "WRITE_COMPACT_CLAIMS", compact)
    for state in ("pending", "accepted"):
        raw = _record("C-1.x:y_z", DIGEST, "6f1c1d9e-3f7a-4d59-9a43-0e0b6b1f2c11", state)
        record = ClaimRecord.parse(raw.encode())

        assert (record.state, record.event_id, record.customer_id) == (
            state, "6f1c1d9e-3f7a-4d59-9a43-0e0b6b1f2c11", "C-1.x:y_z"
        )  # fmt: skip
        assert record.same_order(DIGEST)
        assert not record.same_order(digest_of(b'{"order_no":"SO-2"}'))
    assert (len(raw) < 100) is compact


def test_the_json_record_is_what_json_dumps_gives_and_the_compact_one_keeps_128_bits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert idempotency.WRITE_COMPACT_CLAIMS  # written now
    monkeypatch.setattr(idempotency, "WRITE_COMPACT_CLAIMS", False)  # the releases before
    raw = _record("C-1", DIGEST, "e-1", "accepted")
    assert raw == json.dumps(
        {"digest": DIGEST, "event_id": "e-1", "customer_id": "C-1", "state": "accepted"}
    )
    compact = ClaimRecord.parse(f"a|e-1|{DIGEST[:DIGEST_KEPT]}|C-1")
    assert compact == ClaimRecord("accepted", "e-1", "C-1", DIGEST[:DIGEST_KEPT])
    assert DIGEST_KEPT * 4 == 128


def test_a_record_whose_digest_is_too_short_to_tell_orders_apart_matches_none() -> None:
    assert not ClaimRecord.parse("a|e-1||C-1").same_order(DIGEST)
    assert not ClaimRecord.parse(f"a|e-1|{DIGEST[:8]}|C-1").same_order(DIGEST)
