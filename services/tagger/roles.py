"""The tagger's process roles and what each runs.

- consumer: the Kafka subscriber that tags order events (``consumer.py``);
- api: the Tag API (routers in ``http/``, served by ``app.py``);
- jobs: the runner of bulk tag changes, which resumes the jobs a stopped process left running.

Every role holds the rule book, so every role also runs the rule-file watcher. One process may
run any set of roles (all of them by default, for ``make demo``).
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from services.tagger import metrics
from services.tagger.bootstrap import Tagger, record_active_rules
from services.tagger.consumer import build_broker
from services.tagger.settings import Role
from shared.kafka import keep_consuming

log = structlog.get_logger("tagger")

JOBS_POLL_S = 5.0  # how soon a jobs-role process picks up a job another process recorded
CHECK_TIMEOUT_S = 2.0
# What each role cannot work without; /readyz answers 503 when one of them is down. The API
# still answers reads without Redis (its rate limiter fails open), so Redis is not required.
REQUIRED: dict[Role, set[str]] = {
    Role.CONSUMER: {"kafka", "mongodb", "redis"},
    Role.API: {"mongodb"},
    Role.JOBS: {"kafka", "mongodb"},
}


async def watch_rules(tagger: Tagger, every_s: float = 2.0) -> None:
    """Pick up edits of the rule file (a bad edit is refused and the last good rules stay; a
    good one is recorded in the version history) and starts or stops of a shadow candidate."""
    book = tagger.rules
    recorded = book.version  # bootstrap recorded the rules it started with
    while True:
        await asyncio.sleep(every_s)
        outcome = await asyncio.to_thread(book.reload_if_changed)
        if outcome is not None:
            metrics.RULE_RELOADS.labels("loaded" if outcome else "refused").inc()
        try:
            if book.version != recorded:
                recorded = await record_active_rules(tagger.rule_versions, book)
            await tagger.shadow.refresh()
        except Exception:  # MongoDB away: the rules are in force all the same; retry next round
            log.warning("rule_versions_unreachable", exc_info=True)


async def pick_up_jobs(tagger: Tagger, every_s: float = JOBS_POLL_S) -> None:
    """In a jobs-only process: run the jobs that API-only processes recorded.

    ``Jobs.resume_all`` is called only when a running job appears that this loop has not seen:
    ``Jobs`` does not re-check a job's status before running it, so resuming over and over
    could run a job that just finished a second time (and its rename/merge would delete a tag
    created meanwhile). The lasting fix is a lease in ``jobs.py`` (claimed atomically)."""
    seen: set[str] = set()
    while True:
        try:
            running = set(await tagger.stores.read_model.running_jobs())
            if running - seen:
                await tagger.jobs.resume_all()
                seen |= running
        except Exception:  # MongoDB away: try again on the next round
            log.warning("jobs_poll_failed", exc_info=True)
        await asyncio.sleep(every_s)


async def review_customers(tagger: Tagger, every_s: float) -> None:
    """In the jobs role: re-evaluate the customers whose tags time alone changes (a lapse
    threshold crossed, orders leaving a window), as soon as each is due."""
    while True:
        try:
            while await tagger.customers.sweep() > 0:
                pass  # a full batch was due: take the next at once
        except Exception:  # MongoDB or Redis away: try again on the next round
            log.warning("customer_review_failed", exc_info=True)
        await asyncio.sleep(every_s)


@asynccontextmanager
async def run_roles(tagger: Tagger, roles: frozenset[Role]) -> AsyncIterator[None]:
    """Start the loops of ``roles`` (the API is served by the app) and stop them on exit."""
    tasks = [asyncio.create_task(watch_rules(tagger), name="rule-watcher")]
    broker = None
    if Role.CONSUMER in roles:
        try:  # a shadow set before this start runs from the first batch
            await tagger.shadow.refresh()
        except Exception:  # MongoDB away: the rule watcher tries again
            log.warning("shadow_refresh_failed", exc_info=True)
        broker = build_broker(
            tagger.settings, tagger.tagging, tagger.output, tagger.shadow, tagger.customers
        )
        await broker.start()
        tasks.append(asyncio.create_task(keep_consuming(broker), name="consumer-watchdog"))
    if Role.JOBS in roles:
        await tagger.jobs.resume_all()  # what a stopped process left running
        every_s = tagger.settings.tagger_customer_review_s
        tasks.append(asyncio.create_task(review_customers(tagger, every_s), name="customers"))
        if Role.API not in roles:
            tasks.append(asyncio.create_task(pick_up_jobs(tagger), name="jobs"))
    log.info("tagger_roles_started", roles=sorted(role.value for role in roles))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await tagger.jobs.stop()
        if broker is not None:
            await broker.stop()


async def readiness(tagger: Tagger, roles: frozenset[Role]) -> tuple[bool, dict[str, str]]:
    """Each dependency ``ok`` or ``unreachable``, and whether every role here can work."""
    checks = dict(
        zip(
            ("kafka", "mongodb", "redis"),
            await asyncio.gather(_kafka(tagger), _mongo(tagger), _redis(tagger)),
            strict=True,
        )
    )
    required = set().union(*(REQUIRED[role] for role in roles))
    return all(checks[name] == "ok" for name in required), checks


async def _kafka(tagger: Tagger) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await tagger.producer.client.fetch_all_metadata()
    except (KafkaError, TimeoutError, OSError):
        return "unreachable"
    return "ok"


async def _mongo(tagger: Tagger) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await tagger.stores.database.command("ping")
    except Exception:  # any failure to answer a ping is "unreachable" for a probe
        return "unreachable"
    return "ok"


async def _redis(tagger: Tagger) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await tagger.stores.redis.ping()
    except (RedisError, TimeoutError, OSError):
        return "unreachable"
    return "ok"
