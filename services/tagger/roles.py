"""The tagger's process roles and what each runs.

- consumer: the Kafka subscriber that tags order events (``consumer.py``);
- api: the Tag API (routers in ``http/``, served by ``app.py``);
- jobs: the runner of bulk tag changes, which resumes the jobs a stopped process left running.

Every role holds the rule book, so every role also runs the rule-file watcher. One process may
run any set of roles (all of them by default, for ``make demo``).
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog

from services.tagger import metrics
from services.tagger.bootstrap import Tagger, record_active_rules
from services.tagger.consumer import build_broker
from services.tagger.dead_letter_depth import watch_dead_letter_depth
from services.tagger.rule_activation import follow_active_rules, remember_earlier_rules
from services.tagger.rules.schema import RuleFileError
from services.tagger.settings import Role
from shared.kafka_health import keep_kafka_clients_working
from shared.probes import ReadinessCheck
from shared.tasks import cancel_and_wait

log = structlog.get_logger("tagger")

JOBS_POLL_S = 5.0  # how soon a jobs-role process picks up a job another process recorded
# What each role cannot work without; /readyz answers 503 when one of them is down. The API
# still answers reads without Redis (its rate limiter fails open), so Redis is not required.
REQUIRED: dict[Role, set[str]] = {
    Role.CONSUMER: {"kafka", "mongodb", "redis"},
    Role.API: {"mongodb"},
    Role.JOBS: {"kafka", "mongodb"},
}


async def watch_rules(tagger: Tagger, every_s: float = 2.0) -> None:
    """Pick up edits of the rule file (a bad edit is refused and the last good rules stay; a
    good one is recorded in the version history and becomes active), activations and rollbacks
    of recorded versions, and starts or stops of a shadow candidate."""
    book = tagger.rules
    unrecorded = False  # a file edit read while MongoDB was away: adopt it when it is back
    remembered = book.version  # the recorded rule sets the book knows, as of this version
    kept = book.text  # the rules in force before an edit not yet recorded
    while True:
        await asyncio.sleep(every_s)
        if not unrecorded:
            kept = book.text
        outcome = await asyncio.to_thread(book.reload_if_changed)
        if outcome is not None:
            metrics.RULE_RELOADS.labels("loaded" if outcome else "refused").inc()
        unrecorded = unrecorded or bool(outcome)
        try:
            if unrecorded:
                try:
                    await record_active_rules(tagger.rule_versions, book)
                except RuleFileError as error:  # it rewords a version another set put in force
                    log.error("rules_refused_keeping_active", error=str(error))
                    metrics.RULE_RELOADS.labels("refused").inc()
                    refused = book.text
                    await follow_active_rules(tagger.rule_versions, book, file_read=False, by="")
                    if book.text == refused:  # no version in force to go to: the rules before
                        book.use(kept, "the rules in force before the refused file")
                    await remember_earlier_rules(tagger.rule_versions, book)
                unrecorded = False
            else:  # an activation or rollback through the API or the command line
                await follow_active_rules(tagger.rule_versions, book, file_read=False, by="")
            if book.version != remembered:
                await remember_earlier_rules(tagger.rule_versions, book)
                remembered = book.version
            await tagger.shadow.refresh()
        except Exception:  # MongoDB away: the rules are in force all the same; retry next round
            log.warning("rule_versions_unreachable", exc_info=True)


async def pick_up_jobs(tagger: Tagger, every_s: float = JOBS_POLL_S) -> None:
    """Run the jobs other processes recorded (the API-only ones, the command line) and take
    over those whose replica died (its lease expired). Repeating ``resume_all`` is safe: a job
    runs only where its lease was claimed atomically, and only while it is still running."""
    while True:
        try:
            await tagger.jobs.resume_all()
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
    if Role.JOBS in roles:
        await tagger.jobs.resume_all()  # what a stopped process left running
        tasks.append(
            asyncio.create_task(watch_dead_letter_depth(tagger.settings), name="dlq-depth")
        )
        every_s = tagger.settings.tagger_customer_review_s
        tasks.append(asyncio.create_task(review_customers(tagger, every_s), name="customers"))
        # and what the command line or another replica records later (the lease makes a
        # repeated resume safe)
        tasks.append(asyncio.create_task(pick_up_jobs(tagger), name="jobs"))
    # every role has a producer; the consumer role's subscribers are restarted too
    tasks.append(asyncio.create_task(keep_kafka_clients_working(broker), name="kafka-watchdog"))
    log.info("tagger_roles_started", roles=sorted(role.value for role in roles))
    try:
        yield
    finally:
        await cancel_and_wait(tasks)
        await tagger.jobs.stop()
        if broker is not None:
            await broker.stop()


def readiness_check(tagger: Tagger) -> ReadinessCheck:
    """Kafka, MongoDB and Redis pinged; the ones this process's roles need decide readiness."""
    roles = tagger.settings.tagger_roles
    return ReadinessCheck(
        pings={
            "kafka": tagger.producer.client.fetch_all_metadata,
            "mongodb": lambda: tagger.stores.database.command("ping"),
            "redis": tagger.stores.redis.ping,
        },
        required=set().union(*(REQUIRED[role] for role in roles)),
        roles=[role.value for role in roles],
    )
