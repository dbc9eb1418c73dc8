"""A notifier killed with SIGKILL while it delivers, restarted, counted at the receiving end:
each alert reaches each channel once (under one idempotency key where the channel has one)."""

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from bench.harness import free_port
from services.notifier.settings import NotifierSettings
from shared.settings import Settings
from tests.conftest import eventually
from tests.integration.receivers import Received, http_receiver
from tests.integration.servers import service_env, start_module
from tests.integration.test_notifier import publish_tagged, routing_file, tagged_event

pytestmark = pytest.mark.integration
ALERTS = 300
KILL_AFTER = (ALERTS // 5, ALERTS // 2)  # SIGKILL once this many alerts reached the webhook
KILLS = len(KILL_AFTER)


@pytest.fixture
def notifier_settings(settings: Settings, run_id: str) -> NotifierSettings:
    return NotifierSettings(**settings.model_dump(), notifier_group_id=f"notifier-{run_id}")


async def start_notifier(
    settings: NotifierSettings, routing: Path, log: Any = asyncio.subprocess.DEVNULL
) -> asyncio.subprocess.Process:
    env = service_env(
        settings,
        ORDERTAG_NOTIFIER_GROUP_ID=settings.notifier_group_id,
        ORDERTAG_NOTIFIER_PORT=str(free_port()),
        ORDERTAG_NOTIFIER_ROUTING_FILE=str(routing),
        ORDERTAG_NOTIFIER_SEND_TIMEOUT_S="1",
        ORDERTAG_NOTIFIER_CLAIM_LEASE_S="3",
        ORDERTAG_NOTIFIER_CLAIM_RENEW_S="1",
        ORDERTAG_NOTIFIER_SWEEP_S="0.5",
        ORDERTAG_NOTIFIER_RETRY_BASE_S="0.05",
    )
    return await start_module("services.notifier", "--role", "consumer", env=env, log=log)


def ids_in(body: bytes) -> list[str]:
    return [alert["alert_id"] for alert in json.loads(body)["alerts"]]


def arrived(requests: list[Received]) -> list[str]:
    return [alert_id for request in requests for alert_id in ids_in(request.body)]


ROBOT_DIGEST = 20  # alerts in one of the keyless channel's messages


async def test_sigkill_mid_delivery_delivers_each_alert_once_per_channel(
    notifier_settings: NotifierSettings,
    tmp_path: Path,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    async with http_receiver() as receiver:
        receiver.answer_delay_s = 0.05  # sends take a while: the kills land mid-send
        channels = [
            # a webhook honours Idempotency-Key: an interrupted delivery is sent again
            {
                "id": "hook",
                "type": "webhook",
                "url": f"{receiver.url}/hook",
                "unsigned": True,
                "rate_per_minute": 1200,
            },
            # a channel without one (as chat robots and e-mail): never sent twice
            {
                "id": "robot",
                "type": "webhook",
                "url": f"{receiver.url}/robot",
                "unsigned": True,
                "rate_per_minute": 1200,
                "resend_interrupted": False,
                "max_in_flight": 1,  # as chat robots and e-mail: one message on the wire
                "max_digest": ROBOT_DIGEST,
            },
        ]
        path = routing_file(tmp_path, channels, ["hook", "robot"])
        expected = {f"{run_id}-{i}:support" for i in range(ALERTS)}
        await publish_tagged(
            notifier_settings, [tagged_event(f"{run_id}-{i}", ["urgent"]) for i in range(ALERTS)]
        )
        processes = []
        log = (tmp_path / "notifier.log").open("ab")  # read it when this test fails
        try:
            for kill_after in KILL_AFTER:
                process = await start_notifier(notifier_settings, path, log=log)
                processes.append(process)

                async def delivered_some(count: int = kill_after) -> bool:
                    return len(arrived(receiver.at("/hook"))) >= count

                await eventually(delivered_some, within=90)
                process.send_signal(signal.SIGKILL)
                await process.wait()
            processes.append(await start_notifier(notifier_settings, path, log=log))

            async def settled() -> bool:
                unsettled = await mongo_db["alerts"].count_documents(
                    {"deliveries.status": {"$in": ["pending", "sending"]}}
                )
                return unsettled == 0 and await mongo_db["alerts"].count_documents({}) == ALERTS

            await eventually(settled, within=120)
        finally:
            for process in processes:
                if process.returncode is None:
                    process.terminate()
                    await process.wait()
            log.close()

    hook = receiver.by_idempotency_key("/hook")
    # every alert reached the webhook, each under exactly one key, and every resend of a key
    # carried the same alerts: a receiver deduplicating on the key sees each alert once
    per_key = {key: [ids_in(r.body) for r in requests] for key, requests in hook.items()}
    assert all(len({tuple(b) for b in bodies}) == 1 for bodies in per_key.values())
    hook_ids = [alert_id for bodies in per_key.values() for alert_id in bodies[0]]
    assert sorted(hook_ids) == sorted(expected)
    # the channel without a key got nothing twice; what it missed is marked uncertain
    robot_ids = arrived(receiver.at("/robot"))
    assert len(robot_ids) == len(set(robot_ids))
    uncertain = {
        document["alert_id"]
        async for document in mongo_db["alerts"].find(
            {"deliveries": {"$elemMatch": {"channel": "robot", "status": "uncertain"}}}
        )
    }
    assert set(robot_ids) | uncertain == expected
    # a kill leaves at most one message of the keyless channel unsettled (max_in_flight 1)
    assert len(uncertain) <= KILLS * ROBOT_DIGEST
    assert set(robot_ids) & uncertain <= uncertain  # uncertain ones may or may not have arrived
    delivered = await mongo_db["alerts"].count_documents(
        {"deliveries": {"$elemMatch": {"channel": "hook", "status": "delivered"}}}
    )
    assert delivered == ALERTS
