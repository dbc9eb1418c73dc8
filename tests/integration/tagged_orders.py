"""Tagged orders on the real stack for the Tag API's tests: the API in-process (``tag_api``), a
generated stream published and tagged (``tagged_dataset``), and the independent check of which
stored orders a filter selects (``matches``), to compare the API's answers with."""

from decimal import Decimal
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.app import create_app
from services.tagger.settings import TaggerSettings
from shared.events import OrderCreated
from shared.stored_tags import stored_tags_of
from tests.generated import order_stream
from tests.integration.conftest import api_client, publish_events, wait_for_orders


def tag_api(settings: TaggerSettings) -> Any:
    return api_client(create_app(settings))


async def tagged_dataset(
    settings: TaggerSettings, db: AsyncDatabase[dict[str, Any]], prefix: str, count: int = 300
) -> list[dict[str, Any]]:
    events, _ = order_stream(count, customers=40, seed=21, prefix=prefix)
    await publish_events(settings, events)
    created = sum(isinstance(e, OrderCreated) for e in events)
    return list((await wait_for_orders(db, created, len(events), within=60)).values())


def matches(
    doc: dict[str, Any],
    *,
    all_tags: list[str] = (),
    any_tags: list[str] = (),  # type: ignore[assignment]
    none_tags: list[str] = (),
    status: str | None = None,
    region: str | None = None,  # type: ignore[assignment]
    amount_min: Decimal | None = None,
    amount_max: Decimal | None = None,
    family: str | None = None,
    customer_id: str | None = None,
) -> bool:
    tags = set(doc["tag_names"])
    amount = Decimal(doc["amount_cents"]) / 100
    return (
        set(all_tags) <= tags
        and (not any_tags or bool(tags & set(any_tags)))
        and not tags & set(none_tags)
        and (status is None or doc["status"] == status)
        and (region is None or doc["region"] == region)
        and (amount_min is None or amount >= amount_min)
        and (amount_max is None or amount <= amount_max)
        and (family is None or of_family(doc, family))
        and (customer_id is None or doc["customer_id"] == customer_id)
    )


def of_family(doc: dict[str, Any], family: str) -> bool:
    """A tag of the family (its stored family, in any stored form) or named ``family:value``
    (``docs/tag-api.md``)."""
    return any(tag.get("family") == family for tag in stored_tags_of(doc)) or any(
        name.startswith(f"{family}:") for name in doc["tag_names"]
    )
