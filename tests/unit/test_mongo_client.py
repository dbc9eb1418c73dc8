"""The one factory for MongoDB clients: writes acknowledged once journaled on a majority."""

import pytest
from pymongo import WriteConcern

from shared.mongo import make_mongo_client
from shared.settings import Settings


async def test_clients_write_journaled_to_a_majority_by_default() -> None:
    client = make_mongo_client(Settings())
    try:
        assert client.write_concern == WriteConcern(w="majority", j=True, wtimeout=10_000)
        assert client.codec_options.tz_aware
    finally:
        await client.close()


async def test_write_concern_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERTAG_MONGO_WRITE_CONCERN", "1")
    monkeypatch.setenv("ORDERTAG_MONGO_JOURNAL", "false")
    client = make_mongo_client(Settings())
    try:
        assert client.write_concern == WriteConcern(w=1, j=False, wtimeout=10_000)
    finally:
        await client.close()


async def test_a_request_without_reply_times_out_instead_of_waiting_for_ever() -> None:
    # the chaos run's tagger waited 3.5 minutes on a read sent as the server was killed
    client = make_mongo_client(Settings())
    try:
        pool = client.options.pool_options
        assert pool.socket_timeout == 30
        assert pool.connect_timeout == 5
    finally:
        await client.close()
