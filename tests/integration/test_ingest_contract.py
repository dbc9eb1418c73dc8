"""Ingest's OpenAPI document holds: schemathesis (every check) against a real ingest on the real
stack finds nothing, within a bounded number of examples per operation."""

import asyncio
import os
import sys
from pathlib import Path

import pytest

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.auth import API_KEY_HEADER, LOCAL_DEV_KEY
from tests.integration.servers import served_app

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]


async def test_ingest_answers_as_its_openapi_document_says(
    ingest_settings: IngestSettings,
) -> None:
    settings = ingest_settings.model_copy(update={"ingest_rate_per_minute": 0})
    async with served_app(create_app(settings), lifespan="on") as url:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            "10",
            "--seed",
            "1",
            "--header",
            f"{API_KEY_HEADER}: {LOCAL_DEV_KEY}",
            cwd=ROOT,
            env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.integration.schemathesis_hooks"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()

    report = output.decode(errors="replace")
    assert process.returncode == 0, report[-4000:]
    assert "No issues found" in report or "0 failures" in report or "passed" in report
