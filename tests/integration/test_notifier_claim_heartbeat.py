"""The claim heartbeat on the real stack: a webhook that takes many leases to answer is never
taken over while its notifier lives, and once that notifier is SIGKILLed another one takes the
delivery over one short lease later (not a minute), under the same idempotency key."""

import asyncio
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from bench.harness import free_port
from services.notifier.settings import NotifierSettings
from shared.settings import Settings
from tests.conftest import eventually
from tests.integration.receivers import http_receiver
from tests.integration.servers import service_env, start_module
from tests.integration.test_notifier import publish_tagged, routing_file, tagged_event

pytestmark = pytest.mark.integration
LEASE_S = 3.0
RENEW_S = 0.5
TAKEOVER_BOUND_S = 30.0  # a lease, a sweep and a resend, on a loaded machine; was 60 s + more


@pytest.fixture
def notifier_settings(settings: Settings, run_id: str) -> NotifierSettings:
    return NotifierSettings(**settings.model_dump(), notifier_group_id=f"notifier-{run_id}")


async def start_notifier(
    settings: NotifierSettings, routing: Path, port: int, log: Any
) -> asyncio.subprocess.Process:
    env = service_env(
        settings,
        ORDERTAG_NOTIFIER_GROUP_ID=settings.notifier_group_id,
        ORDERTAG_NOTIFIER_PORT=str(port),
        ORDERTAG_NOTIFIER_ROUTING_FILE=str(routing),
        ORDERTAG_NOTIFIER_SEND_TIMEOUT_S="600",  # the slow webhook is waited for
        ORDERTAG_NOTIFIER_CLAIM_LEASE_S=str(LEASE_S),
        ORDERTAG_NOTIFIER_CLAIM_RENEW_S=str(RENEW_S),
        ORDERTAG_NOTIFIER_SWEEP_S="0.5",
    )
    return await start_module("services.notifier", "--role", "consumer", env=env, log=log)


async def serving(port: int) -> bool:
    """The HTTP side answers only once the lifespan started everything, the sweeper included."""
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            return (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


async def test_a_slow_send_is_never_taken_over_and_a_killed_ones_is_within_a_lease(
    notifier_settings: NotifierSettings,
    tmp_path: Path,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    alert_id = f"{run_id}-1:support"

    async def hook_delivery() -> dict[str, Any]:
        document = await mongo_db["alerts"].find_one({"alert_id": alert_id})
        assert document is not None
        delivery: dict[str, Any] = document["deliveries"][0]
        return delivery

    async with http_receiver() as receiver:
        receiver.hold = asyncio.Event()  # the webhook answers only when told to
        channel = {
            "id": "hook",
            "type": "webhook",
            "url": f"{receiver.url}/hook",
            "unsigned": True,
            "rate_per_minute": 1200,
        }
        path = routing_file(tmp_path, [channel], ["hook"])
        await publish_tagged(notifier_settings, [tagged_event(f"{run_id}-1", ["urgent"])])
        log = (tmp_path / "notifier.log").open("ab")  # read it when this test fails
        processes = []
        try:
            first = await start_notifier(notifier_settings, path, free_port(), log)
            processes.append(first)
            await eventually(lambda: _true(len(receiver.at("/hook")) == 1), within=90)
            second_port = free_port()
            processes.append(await start_notifier(notifier_settings, path, second_port, log))
            await eventually(lambda: serving(second_port), within=90)
            sweeping_since = datetime.now(UTC)
            held = await hook_delivery()
            assert held["status"] == "sending"
            renewed_after = sweeping_since + timedelta(seconds=LEASE_S * 2)

            async def renewed_for_leases() -> bool:
                delivery = await hook_delivery()
                assert delivery["attempt_id"] == held["attempt_id"]  # not taken over
                return bool(delivery["claimed_at"] > renewed_after)

            # the send outlives two more leases while the second notifier sweeps every 0.5 s
            await eventually(renewed_for_leases, within=60)
            assert len(receiver.at("/hook")) == 1  # nobody took the live send over

            first.send_signal(signal.SIGKILL)
            await first.wait()
            killed = time.monotonic()
            receiver.hold.set()  # the webhook is back to answering at once
            receiver.hold = None

            async def delivered() -> bool:
                return bool((await hook_delivery())["status"] == "delivered")

            await eventually(delivered, within=TAKEOVER_BOUND_S)
            print(f"taken over and delivered {time.monotonic() - killed:.1f} s after the kill")
        finally:
            for process in processes:
                if process.returncode is None:
                    process.terminate()
                    await process.wait()
            log.close()

    final = await hook_delivery()
    assert final["attempt_id"] != held["attempt_id"]
    requests = receiver.at("/hook")
    assert len(requests) == 2  # the interrupted send, and its takeover
    assert {r.headers["Idempotency-Key"] for r in requests} == {alert_id}


async def _true(value: bool) -> bool:
    await asyncio.sleep(0)
    return value
