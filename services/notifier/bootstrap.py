"""The notifier's composition root: builds every client and use case once, for the app, the CLI
and the tests. Nothing else opens a connection."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import httpx
import structlog
from faststream.kafka import KafkaBroker

from services.notifier.alerting import Alerting
from services.notifier.attempt_log import AttemptLog
from services.notifier.channels import ChannelSender
from services.notifier.consumer import subscribe_tagged_orders
from services.notifier.delivery import ChannelWorker, Dispatcher
from services.notifier.live import LiveFeed
from services.notifier.metrics import StoreCommands
from services.notifier.publishing import AlertPublisher
from services.notifier.reasons import RuleReasons
from services.notifier.retrying import through_outages
from services.notifier.routing import Routing, load_routing
from services.notifier.sessions import RevokedSessions
from services.notifier.settings import NotifierSettings
from services.notifier.store import AlertStore
from services.notifier.tag_looks import TagLooks
from services.notifier.why_words import record_why_words
from shared.errors import MONGO_OUTAGES
from shared.events import Alert
from shared.kafka import ensure_topics, make_broker, make_producer
from shared.kafka_health import keep_kafka_clients_working
from shared.mongo import make_mongo_client
from shared.ratelimit import RateLimiter
from shared.redis import AnyRedis, make_redis
from shared.tasks import cancel_and_wait

log = structlog.get_logger("notifier")
MONGO_TIMEOUT_MS = 5000  # an outage surfaces in seconds (then 503 / retry), not after 30 s
ATTEMPT_LOG_FLUSH_S = 0.2


@dataclass
class Notifier:
    """What a notifier process runs on; the consumer parts exist only in the consumer role."""

    settings: NotifierSettings
    routing: Routing
    store: AlertStore
    live: LiveFeed
    redis: AnyRedis
    attempt_log: AttemptLog
    dispatcher: Dispatcher
    alerting: Alerting
    broker: KafkaBroker
    revoked: RevokedSessions
    reasons: RuleReasons  # of the tagger's rules, for the page's order tags
    tag_looks: TagLooks  # the catalog's colours and labels, for the page's badges
    api_limit: RateLimiter
    login_limit: RateLimiter
    background: list[asyncio.Task[None]] = field(default_factory=list)


def build_dispatcher(
    settings: NotifierSettings,
    routing: Routing,
    store: AlertStore,
    attempt_log: AttemptLog,
    live: LiveFeed,
    sender: ChannelSender,
) -> Dispatcher:
    workers = {
        channel.id: ChannelWorker(
            channel,
            sender,
            store,
            attempt_log,
            live.publish,
            attempts=settings.notifier_retry_attempts,
            base_delay_s=settings.notifier_retry_base_s,
            max_delay_s=settings.notifier_claim_lease_s / 3,
        )
        for channel in routing.channels
    }
    return Dispatcher(
        workers, store, settings.notifier_claim_lease_s, settings.notifier_claim_renew_s
    )


@asynccontextmanager
async def bootstrap(settings: NotifierSettings) -> AsyncIterator[Notifier]:
    """Build the notifier, start what its role runs, and stop it all in order on exit: stop
    consuming, let sends in flight finish and store their outcomes, flush the attempt log."""
    routing = load_routing(settings.notifier_routing_file)
    for warning in routing.warnings():
        log.warning("routing_warning", problem=warning)
    role = settings.notifier_role
    async with AsyncExitStack() as stack:
        mongo = make_mongo_client(
            settings, serverSelectionTimeoutMS=MONGO_TIMEOUT_MS, event_listeners=[StoreCommands()]
        )
        stack.push_async_callback(mongo.close)
        redis = make_redis(settings)
        stack.push_async_callback(redis.aclose)
        http = httpx.AsyncClient(timeout=settings.notifier_send_timeout_s)
        stack.push_async_callback(http.aclose)
        store = AlertStore(mongo[settings.mongo_database])
        attempt_log = AttemptLog(store.attempts)
        live = LiveFeed(redis)
        dispatcher = build_dispatcher(
            settings,
            routing,
            store,
            attempt_log,
            live,
            ChannelSender(http, settings.notifier_send_timeout_s),
        )
        broker = make_broker(settings)
        # Declared for the AsyncAPI document; alerts go out through the bare producer.
        broker.publisher(settings.topics.alerts, title="alerts", schema=Alert)
        producer = make_producer(settings)
        stack.push_async_callback(producer.stop)  # last: after the consumer's last batch
        alerting = Alerting(
            routing,
            store,
            dispatcher,
            live,
            settings.order_url_base,
            AlertPublisher(producer, settings.topics.alerts),
        )
        database = mongo[settings.mongo_database]
        notifier = Notifier(
            settings,
            routing,
            store,
            live,
            redis,
            attempt_log,
            dispatcher,
            alerting,
            broker,
            revoked=RevokedSessions(database["revoked_sessions"]),
            reasons=RuleReasons(database),
            tag_looks=TagLooks(database),
            api_limit=RateLimiter(
                redis, settings.notifier_api_rate_per_minute, namespace="notifier:api"
            ),
            login_limit=RateLimiter(
                redis, settings.notifier_login_rate_per_minute, namespace="notifier:login"
            ),
        )
        if role.runs_web():
            await _ensure_page_indexes(notifier)
        if role.runs_consumer():
            # the consumer needs the unique alert_id index before its first insert: wait for it
            await through_outages(store.ensure_indexes, "ensure_indexes")
            # the words of the whys its alerts will store, for the console (why_words.py)
            await through_outages(lambda: record_why_words(database, routing), "record_whys")
            subscribe_tagged_orders(broker, settings, alerting)
            stack.push_async_callback(_stop_consumer, notifier)
            dispatcher.start()
            await through_outages(alerting.resume_pending, "resume_pending")
            await through_outages(producer.start, "start_producer")
            await through_outages(lambda: _start_broker(settings, broker), "start_consumer")
            notifier.background = [
                asyncio.create_task(
                    alerting.watch_escalations(settings.notifier_escalation_check_s)
                ),
                asyncio.create_task(dispatcher.sweep_every(settings.notifier_sweep_s)),
                asyncio.create_task(attempt_log.flush_every(ATTEMPT_LOG_FLUSH_S)),
                asyncio.create_task(keep_kafka_clients_working(broker)),
            ]
        yield notifier


async def _ensure_page_indexes(notifier: Notifier) -> None:
    """The page can serve without them: with MongoDB down it answers 503 until it is back."""
    try:
        await notifier.revoked.ensure_indexes()
    except MONGO_OUTAGES as error:
        log.warning("page_indexes_not_created", error=repr(error)[:200])


async def _start_broker(settings: NotifierSettings, broker: KafkaBroker) -> None:
    await ensure_topics(settings)
    await broker.start()


async def _stop_consumer(notifier: Notifier) -> None:
    await notifier.broker.stop()  # no new batches; the one in hand finishes and commits
    await cancel_and_wait(notifier.background)
    await notifier.dispatcher.stop(notifier.settings.notifier_stop_grace_s)
    try:
        await through_outages(notifier.attempt_log.flush, "flush_attempt_log", within_s=10)
    except Exception as error:
        log.error(
            "attempt_log_lost_on_stop",
            buffered=notifier.attempt_log.buffered,
            error=repr(error)[:200],
        )
