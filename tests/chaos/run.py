"""One chaos run: receivers, the three services, the customer base's history, then live traffic
while the faults are injected; then the drain, a graceful stop, and the independent check."""

import asyncio
import contextlib
import logging
import platform
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from services.notifier.settings import DEFAULT_ROUTING_FILE, NotifierSettings
from services.simulator.stream import OrderStream
from services.tagger.rules.schema import load_rules
from services.tagger.settings import TaggerSettings
from shared import mongo as _driver_fix  # noqa: F401  (PyMongo's condition waits, see there)
from shared.kafka import delete_topics, ensure_topics
from tests.chaos.check import Check, run_checks, topic_partitions
from tests.chaos.environment import Environment
from tests.chaos.faults import PLANS, Fault, FaultRecord, Injector
from tests.chaos.processes import ServiceProcess, StackServer, StartFailed
from tests.chaos.receivers import Receiver, receiver
from tests.chaos.traffic import Ledger, Traffic

log = logging.getLogger("chaos")
RECOVERY_TAIL_S = 15.0


@dataclass(frozen=True)
class Options:
    plan: str = "full"
    rate: float = 120.0  # new orders a second (each followed by ~3 changes)
    duration: float = 200.0  # seconds of live traffic
    seed: int = 7
    customers: int = 6000
    history: int = 6000  # past orders sent first: a steady customer base
    # The stream's own clock (order times, status-change delays) runs at a shop's pace, one order
    # a minute, whatever the rate it is sent at: at 100 orders/s on the wall clock, a customer
    # base of thousands would otherwise order every few seconds and trip every velocity rule.
    shop_gap_s: float = 60.0
    follow_up_scale: float = 1.0
    updates: float = 0.02
    receiver_failure_rate: float = 0.02
    drain_within: float = 300.0
    log_level: str = "WARNING"
    keep: bool = False  # keep the run's database and topics for inspection


@dataclass
class Outcome:
    options: Options
    env: Environment
    started_at: str
    plan: list[Fault]
    faults: list[FaultRecord]
    ledger: Any
    checks: list[Check]
    totals: dict[str, Any]
    drained: bool
    traffic_seconds: float
    drain_seconds: float

    @property
    def ok(self) -> bool:
        return (
            self.drained
            and all(c.ok for c in self.checks)
            and not any(f.error for f in self.faults)
        )


WEBHOOK_SECRET_ENV = "ORDERTAG_CHAOS_WEBHOOK_SECRET"


def routing_file(path: Path, desk: Receiver, risk: Receiver) -> list[dict[str, Any]]:
    """The default routes, delivered to two local webhooks: every alert to the desk, fraud
    risks to the risk team too. Escalation is out of the run (its delay outlasts it)."""
    routing = yaml.safe_load(DEFAULT_ROUTING_FILE.read_text(encoding="utf-8"))
    routing["channels"] = [
        # signed, as a production webhook is (the secret is in the services' environment)
        {
            "id": "desk",
            "type": "webhook",
            "url": desk.url,
            "rate_per_minute": 6000,
            "secret_env": WEBHOOK_SECRET_ENV,
        },
        {
            "id": "risk",
            "type": "webhook",
            "url": risk.url,
            "rate_per_minute": 6000,
            "secret_env": WEBHOOK_SECRET_ENV,
        },
    ]
    for channel in routing["channels"]:
        # every alert told once per channel, whatever its severity and later changes: what the
        # accounting counts at the receivers
        channel.update(min_severity="info", send_updates=False, send_resolved=False)
    for route in routing["routes"]:
        route["channels"] = ["desk", "risk"] if route["kind"] == "fraud_risk" else ["desk"]
    routing["escalation"] = {"after_minutes": 600, "kinds": ["urgent"], "channels": []}
    path.write_text(yaml.safe_dump(routing, allow_unicode=True), encoding="utf-8")
    return list(routing["routes"])


async def run_chaos(options: Options, env: Environment | None = None) -> Outcome:
    env = env or Environment.from_environ()
    plan = PLANS[options.plan]
    servers = {
        "kafka": StackServer("kafka", env.kafka_port, env),
        "mongo": StackServer("mongo", env.mongo_port, env),
        "redis": StackServer("redis", env.redis_port, env),
    }
    down = [name for name, server in servers.items() if not server.alive()]
    if down:
        raise StartFailed(
            f"not running: {', '.join(down)}; start the stack (deploy/local/stack.sh start)"
        )
    env.run_dir.mkdir(parents=True, exist_ok=True)
    tagger_settings = TaggerSettings()
    rules = load_rules(tagger_settings.tagger_rules_file)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    desk_port, risk_port = env.receiver_ports
    async with (
        receiver("desk", desk_port, options.receiver_failure_rate, options.seed) as desk,
        receiver("risk", risk_port, options.receiver_failure_rate, options.seed + 1) as risk,
    ):
        routes = routing_file(env.run_dir / "routing.yaml", desk, risk)
        service_env = env.service_env(env.run_dir / "routing.yaml", options.log_level)
        services = {
            name: ServiceProcess(name, port, service_env, env.run_dir / f"{name}.log")
            for name, port in (
                ("ingest", env.ingest_port),
                ("tagger", env.tagger_port),
                ("notifier", env.notifier_port),
            )
        }
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            env.settings.mongo_url, tz_aware=True, serverSelectionTimeoutMS=3000
        )
        db = mongo[env.settings.mongo_database]
        ledger = Ledger()
        traffic = Traffic(env.ingest_url, ledger, seed=options.seed)
        try:
            await ensure_topics(env.settings)
            for service in services.values():
                await service.start()
            stream = OrderStream(
                options.seed,
                options.customers,
                datetime.now(UTC),
                mean_gap_s=options.shop_gap_s,
                prefix=env.run_id,
                history=options.history,
                follow_up_scale=options.follow_up_scale,
                updates=options.updates,
            )
            history = stream.history_orders()
            log.warning("sending %d past orders", len(history))
            await traffic.send_all([{"type": "order", "order": o} for o in history], within=600)
            await _wait_for_count(db, len(history), within=300)
            log.warning(
                "live traffic: %.0f orders/s for %.0f s, %d faults",
                options.rate,
                options.duration,
                len(plan),
            )
            injector = Injector(services, servers, ledger, db, [desk, risk])
            started = time.monotonic()
            faults_done = asyncio.Event()

            async def inject() -> list[FaultRecord]:
                records = await injector.run(plan, started)
                await asyncio.sleep(RECOVERY_TAIL_S)  # traffic after the last restart
                faults_done.set()
                return records

            faults, _ = await asyncio.gather(
                inject(), traffic.stream(iter(stream), options.rate, options.duration, faults_done)
            )
            await injector.measured()
            sent_all = await traffic.drain(within=options.drain_within)
            traffic_seconds = time.monotonic() - started
            log.warning(
                "traffic done (%s); draining", "all accepted" if sent_all else "some never accepted"
            )
            drain_started = time.monotonic()
            drained = await _drain(env, db, [desk, risk], options.drain_within) and sent_all
            drain_seconds = time.monotonic() - drain_started
            health = {name: await service.health() for name, service in services.items()}
            for service in services.values():
                if not drained:  # where a stuck service waits, in its log
                    await service.dump_tasks()
                await service.stop()
            log.warning("checking")
            checks, totals = await run_checks(
                env, ledger, [desk, risk], rules, routes, tagger_settings.tagger_max_tags_per_order
            )
            checks.insert(0, _healthy_at_the_end(health))
        finally:
            await traffic.close()
            for service in services.values():
                with contextlib.suppress(ProcessLookupError):
                    await service.stop()
            if not options.keep:
                await _drop(env, mongo)
            await mongo.close()
    return Outcome(
        options,
        env,
        started_at,
        plan,
        faults,
        ledger,
        checks,
        totals,
        drained,
        traffic_seconds,
        drain_seconds,
    )


def _healthy_at_the_end(health: dict[str, str]) -> Check:
    """Every service answered ``/healthz`` after the faults: none holds a Kafka producer that
    can no longer send (aiokafka issue #1017; ``shared/kafka_health.py``)."""
    failing = [f"{name}: {said}" for name, said in health.items() if said != "ok"]
    return Check("every service healthy after the faults", not failing, dict(health), failing)


async def _wait_for_count(db: Any, count: int, within: float) -> None:
    """Until the tagger stored ``count`` orders (the history), or ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await db["orders"].estimated_document_count() >= count:
            return
        await asyncio.sleep(0.5)


UNSETTLED = {"deliveries.status": {"$in": ["pending", "sending"]}}


def settles_within_s() -> float:
    """How long an unsettled delivery may rightly wait for the notifier's sweeper: a claim a
    kill interrupted stays ``sending`` until its lease runs out, and a pending delivery no
    process queued is found once it is older than the lease; then a sweep or two, and the
    send. The services run with the same ``ORDERTAG_*`` variables as this process."""
    settings = NotifierSettings()
    return settings.notifier_claim_lease_s + 3 * settings.notifier_sweep_s + 5


async def _drain(env: Environment, db: Any, receivers: list[Receiver], within: float) -> bool:
    """Until both consumer groups caught up with their topics and every delivery settled:
    none pending, none claimed (``sending``). A claim interrupted by the notifier's kill is
    settled a lease after it was made (sent again under its key, or skipped), so the drain
    waits for it; what is still unsettled once the receivers were quiet for longer than that
    never will be, and is for the check to report (with its state)."""
    deadline = time.monotonic() + within
    topics = env.settings.topics
    patience = settles_within_s()
    while time.monotonic() < deadline:
        lag = await _lag(env, f"tagger-{env.run_id}", topics.orders) + await _lag(
            env, f"notifier-{env.run_id}", topics.tagged
        )
        quiet = time.monotonic() - max((r.last_delivery_at for r in receivers), default=0.0)
        unsettled = await db["alerts"].count_documents(UNSETTLED)
        if lag == 0 and quiet > 3 and unsettled == 0:
            return True
        if lag == 0 and quiet > patience:
            log.warning("%d alerts still have unsettled deliveries; checking", unsettled)
            return True
        await asyncio.sleep(1)
    return False


async def _lag(env: Environment, group: str, topic: str) -> int:
    """Records of the topic the group has not committed yet."""
    bootstrap = env.settings.kafka_bootstrap_servers
    partitions = await topic_partitions(bootstrap, topic)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
        await admin.close()
    return sum(end - (committed[tp].offset if tp in committed else 0) for tp, end in ends.items())


async def _drop(env: Environment, mongo: AsyncMongoClient[dict[str, Any]]) -> None:
    with contextlib.suppress(Exception):
        await mongo.drop_database(env.settings.mongo_database)
    with contextlib.suppress(Exception):
        await delete_topics(env.settings, [env.settings.topics])


def machine() -> str:
    return f"{platform.platform()}, Python {platform.python_version()}"
