"""Changing rules safely on the real stack: versions recorded, the diff of a candidate equal to
what a re-tag with it would write (and writing nothing), the Tag API's rules routes, and shadow
mode writing nothing to any order."""

from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.app import create_app
from services.tagger.order_record import OrderRecord
from services.tagger.rule_changes import ReplayWindow, StoredOrders, diff_against_history
from services.tagger.rule_versions import RuleVersions
from services.tagger.rules.book import version_of
from services.tagger.rules.schema import RuleSet, parse_rules
from services.tagger.settings import DEFAULT_RULES_FILE, TaggerSettings
from shared.auth import API_KEY_HEADER, ApiKey, Scope, hash_key
from shared.events import OrderCreated
from shared.stored_tags import stored_tags_of
from tests.conftest import eventually
from tests.generated import order_stream
from tests.integration.accounting import retagged_names
from tests.integration.conftest import (
    api_client,
    publish_events,
    running,
    stored_orders,
    wait_for_orders,
)

pytestmark = pytest.mark.integration

ACTIVE_TEXT = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
ACTIVE = parse_rules(ACTIVE_TEXT)
# "returning customer" from the third order on, and "big customer" from 2,000: a change that
# both takes tags away and gives new ones
CANDIDATE_TEXT = ACTIVE_TEXT.replace(
    "when: {fact: customer.prior_order_count, gte: 1}",
    "when: {fact: customer.prior_order_count, gte: 2}",
).replace("when: {fact: amount, gte: 50000}", "when: {fact: amount, gte: 2000}")
CANDIDATE = parse_rules(CANDIDATE_TEXT)
MAX_TAGS = 20


async def tag_stream(
    tagger: Any, settings: TaggerSettings, db: AsyncDatabase[dict[str, Any]], prefix: str
) -> dict[str, dict[str, Any]]:
    """Orders (with cancellations) tagged by a real tagger with the default rules."""
    events, _ = order_stream(160, customers=25, seed=18, prefix=prefix)
    async with tagger():
        await publish_events(settings, events)
        created = sum(isinstance(e, OrderCreated) for e in events)
        return await wait_for_orders(db, created, len(events), within=90)


def retagged(document: dict[str, Any], rules: RuleSet) -> set[str]:
    return retagged_names(OrderRecord.from_document(document), rules, MAX_TAGS)


async def test_the_diff_equals_what_a_retag_with_the_candidate_would_write(
    tagger: Any,
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    stored = await tag_stream(tagger, tagger_settings, mongo_db, f"D{run_id}")
    expected: dict[str, tuple[set[str], set[str]]] = {}
    for order_no, document in stored.items():
        now = set(document["tag_names"])
        assert retagged(document, ACTIVE) == now  # the stored tags are the active rules'
        after = retagged(document, CANDIDATE)
        if after != now:
            expected[order_no] = (after - now, now - after)
    assert any(gained for gained, _ in expected.values())
    assert any(lost for _, lost in expected.values())

    history_before = await mongo_db["tag_history"].count_documents({})
    changed: dict[str, tuple[set[str], set[str]]] = {}
    tally = await diff_against_history(
        StoredOrders(mongo_db),
        ACTIVE,
        CANDIDATE,
        window=ReplayWindow(),
        max_tags=MAX_TAGS,
        on_changed=lambda diffs: changed.update(
            {d.order_no: (set(d.gained), set(d.lost)) for d in diffs}
        ),
    )

    assert changed == expected
    assert tally.orders_compared == len(stored)
    assert tally.orders_changed == len(expected)
    for name, delta in tally.by_tag.items():
        assert delta.gained == sum(name in gained for gained, _ in expected.values())
        assert delta.lost == sum(name in lost for _, lost in expected.values())
    assert await stored_orders(mongo_db) == stored  # nothing written
    assert await mongo_db["tag_history"].count_documents({}) == history_before


async def test_the_api_records_versions_diffs_and_refuses_invalid_candidates(
    tagger: Any,
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    stored = await tag_stream(tagger, tagger_settings, mongo_db, f"A{run_id}")
    reader = ApiKey(name=f"reader-{run_id}", sha256=hash_key("r-key"), scopes={Scope.READ})
    settings = tagger_settings.model_copy(update={"api_keys": [*tagger_settings.api_keys, reader]})
    async with api_client(create_app(settings)) as client:
        versions = (await client.get("/rules/versions")).json()
        started = await client.post(
            "/rules/diff",
            params={"comment": "returning from 3, big from 2,000"},
            content=CANDIDATE_TEXT,
            headers={"content-type": "application/yaml"},
        )
        only_big = await client.post(
            "/rules/diff", params={"tag": "big-customer"}, content=CANDIDATE_TEXT
        )
        invalid = await client.post(
            "/rules/diff",
            content=ACTIVE_TEXT.replace("fact: shipping.method", "fact: shipping.methd", 1),
        )
        as_reader = await client.post(
            "/rules/diff", content=CANDIDATE_TEXT, headers={API_KEY_HEADER: "r-key"}
        )
        reworded = ACTIVE_TEXT.replace(
            'reason: "order status is {value}"', 'reason: "now {value}"', 1
        )
        assert reworded != ACTIVE_TEXT
        refused = [
            await client.post(path, content=reworded) for path in ("/rules/diff", "/rules/versions")
        ]
        assert started.status_code == 202, started.text
        assert only_big.status_code == 202, only_big.text

        async def finished(job_id: str) -> dict[str, Any] | None:
            answer = await client.get(f"/rules/diffs/{job_id}", headers={API_KEY_HEADER: "r-key"})
            assert answer.status_code == 200, answer.text
            job: dict[str, Any] = answer.json()
            return job if job["status"] != "running" else None

        report = await eventually(lambda: finished(started.json()["job_id"]), within=60)
        only = await eventually(lambda: finished(only_big.json()["job_id"]), within=60)
        kept = await client.get(f"/rules/versions/{version_of(CANDIDATE_TEXT)}/diff")
        listed = (await client.get("/rules/versions")).json()
        unknown = await client.get("/rules/diffs/nosuchjob")

    assert versions["active"] == version_of(ACTIVE_TEXT)
    assert versions["versions"][0]["version"] == version_of(ACTIVE_TEXT)
    assert versions["versions"][0]["activations"] >= 1
    assert versions["versions"][0]["first_active_at"] is not None
    assert started.json()["orders"] == len(stored)
    assert started.json()["candidate"] == version_of(CANDIDATE_TEXT)
    assert report["status"] == "done", report
    assert report["candidate"] == version_of(CANDIDATE_TEXT)
    assert report["active"] == version_of(ACTIVE_TEXT)
    assert report["processed"] == report["total"] == len(stored)
    assert {row["tag"] for row in report["tags"]} == {"returning-customer", "big-customer"}
    assert [row["tag"] for row in only["tags"]] == ["big-customer"]
    # the version keeps its latest diff (the tag-narrowed one, started second)
    assert kept.status_code == 200, kept.text
    assert kept.json()["job_id"] == only_big.json()["job_id"]
    assert kept.json()["status"] == "done"
    assert kept.json()["tags"] == only["tags"]
    [candidate_row] = [v for v in listed["versions"] if v["version"] == version_of(CANDIDATE_TEXT)]
    assert candidate_row["comment"] == "returning from 3, big from 2,000"
    assert candidate_row["activations"] == 0
    assert candidate_row["last_diff"]["orders_compared"] == len(stored)
    assert unknown.status_code == 404
    assert invalid.status_code == 422
    [problem] = invalid.json()["errors"]
    assert problem["field"].startswith("rule ")
    assert "field when" in problem["field"]
    assert "unknown fact 'shipping.methd'" in problem["problem"]
    assert as_reader.status_code == 403
    for answer in refused:  # a rule version's words stay its words (stored reasons)
        assert answer.status_code == 422, answer.text
        [problem] = answer.json()["errors"]
        assert problem["field"] == "rule status, field reason"
        assert "a rule whose reason changes takes a new version (2)" in problem["problem"]
    assert version_of(reworded) not in {v["version"] for v in listed["versions"]}


async def test_shadow_mode_counts_differences_and_writes_nothing(
    tagger: Any,
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    versions = RuleVersions(mongo_db)
    await versions.ensure_indexes()
    candidate = await versions.record(CANDIDATE_TEXT, CANDIDATE, by="test", active=False)
    await versions.start_shadow(candidate)

    stored = await tag_stream(tagger, tagger_settings, mongo_db, f"S{run_id}")
    summary = await eventually(lambda: _summary_covering(versions, len(stored)), within=30)

    for document in stored.values():  # every order carries the active rules' tags only
        assert set(document["tag_names"]) == retagged(document, ACTIVE)
    # which rule version each tag was applied by (stored on the order, shared/stored_tags.py)
    cited = {(t["rule_id"], t["rule_version"]) for d in stored.values() for t in stored_tags_of(d)}
    assert all(rule_id for rule_id, _ in cited)
    candidate_only = {
        order_no
        for order_no, document in stored.items()
        if retagged(document, CANDIDATE) != set(document["tag_names"])
    }
    assert candidate_only  # the candidate would have changed orders ...
    assert summary["orders_changed"] >= 1  # ... the shadow saw it ...
    tags = {row["tag"] for row in summary["differences"]}
    assert tags <= {"returning-customer", "big-customer"}
    assert tags


async def _summary_covering(versions: RuleVersions, orders: int) -> dict[str, Any] | None:
    summary = await versions.shadow_summary()
    return summary if summary["orders_compared"] >= orders else None


async def test_a_reloaded_rule_file_is_recorded_as_the_new_active_version(
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    tmp_path: Path,
) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(ACTIVE_TEXT, encoding="utf-8")
    settings = tagger_settings.model_copy(update={"tagger_rules_file": rules_file})
    versions = RuleVersions(mongo_db)

    async with running(create_app(settings)):
        started = [v.version for v in await versions.history()]
        rules_file.write_text(CANDIDATE_TEXT, encoding="utf-8")
        history = await eventually(
            lambda: _versions_when(versions, 2, first=version_of(CANDIDATE_TEXT)), within=20
        )

    assert started == [version_of(ACTIVE_TEXT)]
    assert [v.version for v in history] == [version_of(CANDIDATE_TEXT), version_of(ACTIVE_TEXT)]
    assert history[0].content == CANDIDATE_TEXT
    assert history[0].comment == "loaded from rules.yaml"


async def _versions_when(versions: RuleVersions, count: int, first: str) -> list[Any] | None:
    """The history once it holds ``count`` versions, ``first`` in force (newest active)."""
    history = await versions.history()
    return history if len(history) >= count and history[0].version == first else None
