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
