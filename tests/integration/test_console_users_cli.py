"""``ordertag users``: the first admin from the command line, stored as an argon2 hash only."""

from typing import Any

import pytest
from pymongo import MongoClient
from typer.testing import CliRunner

from services.cli import app
from shared.settings import Settings

pytestmark = pytest.mark.integration


def test_users_create_stores_an_argon2_hash_and_refuses_a_second_of_the_same_name(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERTAG_MONGO_DATABASE", settings.mongo_database)
    monkeypatch.setenv("ORDERTAG_NEW_USER_PASSWORD", "a long enough secret")
    runner = CliRunner()
    client: MongoClient[dict[str, Any]] = MongoClient(settings.mongo_url)
    try:
        created = runner.invoke(app, ["users", "create", "李雷", "--role", "admin"])
        again = runner.invoke(app, ["users", "create", "李雷", "--role", "viewer"])
        monkeypatch.setenv("ORDERTAG_NEW_USER_PASSWORD", "short")
        weak = runner.invoke(app, ["users", "create", "韩梅梅", "--role", "agent"])
        stored = list(client[settings.mongo_database]["console_users"].find({}, {"_id": 0}))
    finally:
        client.drop_database(settings.mongo_database)
        client.close()

    assert created.exit_code == 0, created.output
    assert again.exit_code == 1
    assert "exists" in again.output
    assert weak.exit_code == 1
    assert "at least 10 characters" in weak.output
    assert [(u["name"], u["role"]) for u in stored] == [("李雷", "admin")]
    assert stored[0]["password_argon2"].startswith("$argon2id$")
    assert "a long enough secret" not in str(stored)
