"""The notifier's OpenAPI document holds: schemathesis (every check, bounded examples) against
the page API served on the real stack finds no failure."""

import asyncio
import sys
from pathlib import Path

import pytest

from services.notifier.app import create_app
from services.notifier.settings import NotifierSettings, Role
from shared.auth import API_KEY_HEADER, LOCAL_DEV_KEY
from shared.settings import Settings
from tests.integration.servers import served_app
from tests.integration.test_notifier import routing_file

pytestmark = pytest.mark.integration
MAX_EXAMPLES = 10


async def test_the_notifier_answers_as_its_openapi_document_says(
    settings: Settings, tmp_path: Path
) -> None:
    notifier_settings = NotifierSettings(
        **settings.model_dump(),
        notifier_role=Role.WEB,
        notifier_routing_file=routing_file(tmp_path, [], []),
        notifier_api_rate_per_minute=100_000,  # the run is about the contract, not the limit
    )
    async with served_app(create_app(notifier_settings)) as url:
        run = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json"),
            *("--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", "7"),
            *("--request-timeout", "5", "-H", f"{API_KEY_HEADER}: {LOCAL_DEV_KEY}"),
            cwd=tmp_path,  # its example database stays out of the repository
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await run.communicate()

    report = output.decode(errors="replace")
    assert run.returncode == 0, report[-4000:]
    assert "passed" in report
