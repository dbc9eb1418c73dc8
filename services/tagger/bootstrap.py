"""The tagger's composition root: the one place clients (Kafka, MongoDB, Redis) and use cases
are built, for the app, the command line and the tests alike.

``bootstrap(settings)`` opens everything a tagger process needs and closes it on exit;
``open_stores(settings)`` opens only MongoDB and Redis (for the command line's offline work).
Which loops run (consumer, jobs, rule watcher) is decided by ``roles.run_roles``.
"""

import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger import metrics
from services.tagger.commands import TagCommands
from services.tagger.customers.segments import Segments
from services.tagger.customers.store import CustomerStore
from services.tagger.customers.tagging import CustomerTagging
from services.tagger.editing import TagEditing
from services.tagger.figures import CustomerFigures
from services.tagger.jobs import DIFF_KIND, Jobs
from services.tagger.publishing import TaggerOutput
from services.tagger.read_model import ReadModel
from services.tagger.reports import Reports
from services.tagger.rule_activation import (
    RuleActivation,
    RuleBackfill,
    follow_active_rules,
    remember_earlier_rules,
)
from services.tagger.rule_changes import ShadowRules, StoredOrders
from services.tagger.rule_diff_job import RuleDiffJobs
from services.tagger.rule_versions import RuleVersions
from services.tagger.rules.book import RuleBook
from services.tagger.settings import Role, TaggerSettings
from services.tagger.store import OrderStore
from services.tagger.tagging import TaggingService
from services.tagger.usage import RuleHits, TagUsage, kept_rule_hits, kept_tag_usage
from shared.kafka import ensure_topics, make_producer
from shared.kept_counts import KeptCount
from shared.mongo import make_mongo_client
from shared.ratelimit import RateLimiter
from shared.redis import AnyRedis, make_redis


@dataclass(slots=True)
class Stores:
    """MongoDB and Redis, and the adapters over them."""

    mongo: AsyncMongoClient[dict[str, Any]]
    database: AsyncDatabase[dict[str, Any]]
    redis: AnyRedis
    store: OrderStore
    read_model: ReadModel
    reports: Reports
    figures: CustomerFigures


@dataclass(slots=True)
class Tagger:
    """Everything one tagger process uses, built once."""

    settings: TaggerSettings
    stores: Stores
    producer: AIOKafkaProducer
    rules: RuleBook
    output: TaggerOutput
    tagging: TaggingService
    editing: TagEditing
    jobs: Jobs
    commands: TagCommands
    rule_versions: RuleVersions
    activation: RuleActivation
    shadow: ShadowRules
    stored_orders: StoredOrders
    rule_diffs: RuleDiffJobs
    rate_limiter: RateLimiter
    customers: CustomerTagging
    tag_usage: KeptCount[TagUsage]
    rule_hits: KeptCount[RuleHits]


class RecordedJobs(Jobs):
    """Jobs for a process without the jobs role: started jobs are recorded for a jobs-role
    process to run (it picks them up on its next poll) rather than run here."""

    def _spawn(self, job_id: str) -> None:
        return None


@asynccontextmanager
async def open_stores(
    settings: TaggerSettings,
    rules: RuleBook | None = None,
    event_listeners: Sequence[monitoring.CommandListener] = (),
) -> AsyncIterator[Stores]:
    """``rules``: the rule book whose reason templates stored tags are written and read with;
    ``event_listeners``: PyMongo's, for this client alone (a bench counting its commands)."""
    templates = None if rules is None else rules.templates
    mongo = make_mongo_client(
        settings,
        serverSelectionTimeoutMS=settings.tagger_mongo_timeout_ms,
        event_listeners=event_listeners,
    )
    redis = make_redis(settings)
    database = mongo[settings.mongo_database]
    try:
        yield Stores(
            mongo=mongo,
            database=database,
            redis=redis,
            store=OrderStore(database, templates),
            read_model=ReadModel(database, templates=templates),
            reports=Reports(database),
            figures=CustomerFigures(redis),
        )
    finally:
        await redis.aclose()
        await mongo.close()


@asynccontextmanager
async def bootstrap(settings: TaggerSettings) -> AsyncIterator[Tagger]:
    """Open the clients, prepare indexes, topics and the catalog, and build the use cases."""
    rules = RuleBook(settings.tagger_rules_file)
    async with open_stores(settings, rules) as stores:
        await stores.store.ensure_indexes()
        await stores.store.seed_catalog(rules.current.tags)
        await ensure_topics(settings)
        producer = make_producer(settings)
        await producer.start()
        try:
            output = TaggerOutput(producer, settings.topics.tagged, settings.topics.dead_letter)
            editing = TagEditing(
                stores.store,
                rules,
                output.publish,
                max_tags=settings.tagger_max_tags_per_order,
                allow_free_tags=settings.tagger_allow_free_tags,
            )
            versions = RuleVersions(stores.database)
            await versions.ensure_indexes()
            await record_active_rules(versions, rules)
            await remember_earlier_rules(versions, rules)
            backfill = RuleBackfill(
                stores.store,
                versions,
                output.publish,
                max_tags=settings.tagger_max_tags_per_order,
            )
            stored_orders = StoredOrders(stores.database)
            rule_diffs = RuleDiffJobs(
                versions, stored_orders, max_tags=settings.tagger_max_tags_per_order
            )
            job_kind = Jobs if Role.JOBS in settings.tagger_roles else RecordedJobs
            jobs = job_kind(
                stores.database,
                editing,
                backfill=backfill.apply,
                runs={DIFF_KIND: rule_diffs.run},
                lease=timedelta(seconds=settings.tagger_job_lease_s),
            )
            await jobs.ensure_indexes()
            customer_store = CustomerStore(stores.database, rules.customer_templates)
            segments = Segments(stores.database, rules.customer_templates)
            await customer_store.ensure_indexes()
            yield Tagger(
                settings=settings,
                stores=stores,
                producer=producer,
                rules=rules,
                output=output,
                tagging=TaggingService(
                    rules,
                    stores.figures,
                    stores.store,
                    max_tags=settings.tagger_max_tags_per_order,
                    lanes=settings.tagger_lanes,
                ),
                editing=editing,
                jobs=jobs,
                commands=TagCommands(editing, stores.store, stores.read_model, jobs, rules),
                rule_versions=versions,
                activation=RuleActivation(versions, jobs, stores.read_model.count),
                shadow=ShadowRules(
                    rules,
                    versions,
                    stores.database,
                    max_tags=settings.tagger_max_tags_per_order,
                ),
                stored_orders=stored_orders,
                rule_diffs=rule_diffs,
                rate_limiter=RateLimiter(
                    stores.redis,
                    settings.api_rate_per_minute,
                    namespace="tagger",
                    on_local_count=metrics.RATE_LIMIT_SKIPPED.inc,
                ),
                customers=CustomerTagging(
                    rules,
                    customer_store,
                    stores.redis,
                    reload_figures=partial(stores.figures.ensure_loaded, stores.store.all_orders),
                ),
                tag_usage=kept_tag_usage(
                    stores.read_model, segments, settings.tagger_counts_max_age_s
                ),
                rule_hits=kept_rule_hits(
                    stores.database, segments, settings.tagger_counts_max_age_s
                ),
            )
        finally:
            await producer.stop()


async def record_active_rules(versions: RuleVersions, book: RuleBook) -> str:
    """Record the rule file the book just read and bring the book to the version in force
    (the file's if it was edited, else one activated through the API or the command line)."""
    return await follow_active_rules(
        versions, book, file_read=True, by=f"tagger@{socket.gethostname()}"
    )
