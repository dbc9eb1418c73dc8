"""What the support page's EventSource gets for a change."""

import json
from datetime import UTC, datetime
from decimal import Decimal

from bson import ObjectId

from services.notifier.live import _event
from shared.events import AlertKind


def test_a_change_is_json_with_rfc3339_times_and_unknown_ids_as_text() -> None:
    object_id = ObjectId()
    at = datetime(2026, 11, 27, 4, 36, 42, 91000, tzinfo=UTC)
    document = {"_id": object_id, "created_at": at, "customer_name": "客户", "amount": "5200.00"}

    line = _event("created", {**document, "kind": AlertKind.URGENT, "total": Decimal("1.50")})

    assert "客户".encode() in line  # UTF-8 as it is, not escaped
    change = json.loads(line)
    assert change["change"] == "created"
    assert change["alert"]["_id"] == str(object_id)
    assert datetime.fromisoformat(change["alert"]["created_at"]) == at
    assert "T" in change["alert"]["created_at"]
    assert (change["alert"]["kind"], change["alert"]["total"]) == ("urgent", "1.50")
