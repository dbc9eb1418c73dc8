"""The support page's order tags give their reasons as the console does, in the reader's
language: the notifier reads the rule sets the tagger recorded, on the real local store."""

from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.notifier.reasons import RuleReasons
from services.notifier.store import AlertStore
from services.tagger.read_model import ReadModel
from services.tagger.rule_versions import RuleVersions
from services.tagger.settings import DEFAULT_RULES_FILE
from services.tagger.store import OrderStore
from tests.integration.test_stored_forms import RULES, TEMPLATES, tagged

pytestmark = pytest.mark.integration


async def test_the_notifier_renders_order_tag_reasons_as_the_console_in_each_language(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    records = [tagged(i) for i in range(3)]
    store = OrderStore(mongo_db, lambda: TEMPLATES, unique_indexes_only=False)
    await store.ensure_indexes()
    assert await store.save(records, []) == set()
    reasons = RuleReasons(mongo_db, refresh_s=0)
    order_no = records[2].order.order_no

    # no rule set recorded yet (a tagger never ran on this store): the rule and its values
    bare = await AlertStore(mongo_db).order_of(order_no, await reasons.templates("en"))
    assert bare is not None
    status = next(t for t in bare["tags"] if t["name"] == "status:pending")
    assert status["reason"] == "rule status version 1"

    text = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
    await RuleVersions(mongo_db).record(text, RULES, by="tagger")  # as a tagger does at start
    console = ReadModel(mongo_db, templates=lambda: TEMPLATES)
    for language in ("en", "zh-CN"):
        page = await AlertStore(mongo_db).order_of(order_no, await reasons.templates(language))
        detail = await console.order(order_no, language)
        assert page is not None
        assert detail is not None
        assert [t["reason"] for t in page["tags"]] == [t["reason"] for t in detail["tags"]]
    as_given = await AlertStore(mongo_db).order_of(order_no, await reasons.templates(None))
    assert as_given is not None  # the rules' own words, as the tagged event carried them
    assert [t["reason"] for t in as_given["tags"]] == [t.reason for t in records[2].tags]
    assert "订单状态为" in next(
        t["reason"]
        for t in (await console.order(order_no, "zh-CN") or {})["tags"]
        if t["name"] == "status:pending"
    )
    # the alert's detail: the reader's words and the rules' own, from one read of the order
    shown, own = await AlertStore(mongo_db).order_in_two_words(
        order_no, await reasons.templates("zh-CN"), await reasons.templates(None)
    )
    assert shown == await AlertStore(mongo_db).order_of(order_no, await reasons.templates("zh-CN"))
    assert own == as_given["tags"]
    assert await AlertStore(mongo_db).order_in_two_words("no-such-order", None, None) == (None, [])
