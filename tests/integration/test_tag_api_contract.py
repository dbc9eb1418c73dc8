"""The Tag API answers as its OpenAPI document says: schemathesis with every check against a
tagger process on the real stack (issue #13: error bodies, statuses, content types, decimals)."""

import asyncio
import sys
from pathlib import Path

import pytest

from bench.harness import service
from services.tagger.settings import TaggerSettings
from shared.auth import API_KEY_HEADER, ApiKey, Scope, hash_key

pytestmark = pytest.mark.integration
CONFIG = Path(__file__).parents[1] / "contract" / "tag-api.schemathesis.toml"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
EXAMPLES = 10  # per operation and phase: the whole run stays around a minute


async def test_the_tag_api_keeps_its_openapi_contract(
    tagger_settings: TaggerSettings, tmp_path: Path
) -> None:
    # a key of the run's own: its thousands of requests count against nobody else's minute
    secret = f"contract-{tagger_settings.tagger_group_id}"
    key = ApiKey(name=secret, sha256=hash_key(secret), scopes=set(Scope))
    async with service(
        "tagger",
        tagger_settings,
        "ORDERTAG_TAGGER_PORT",
        ORDERTAG_TAGGER_GROUP_ID=tagger_settings.tagger_group_id,
        ORDERTAG_API_KEYS=f"[{key.model_dump_json()}]",
        ORDERTAG_API_RATE_PER_MINUTE="1000000",
    ) as (url, _):
        run = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS),
            "--config-file", str(CONFIG),
            "run", f"{url}/openapi.json",
            "--checks", "all",
            "--max-examples", str(EXAMPLES),
            "--generation-deterministic",
            "--header", f"{API_KEY_HEADER}: {secret}",
            cwd=tmp_path,  # its cache directory stays out of the repository
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await run.communicate()

    report = output.decode(errors="replace")
    assert run.returncode == 0, report[-6000:]
    [tally] = [line for line in report.splitlines() if " generated, " in line]
    assert "passed" in tally, tally  # "N generated, N passed, M skipped": nothing failed
