"""The store-alone ceiling by itself, several rounds, for comparing MongoDB servers or their
settings (the local server's durable acknowledgements, docs/local-stack.md):

    uv run python -m bench.store_bench [ROUNDS] [ORDERS]

The documents are the ones a real tagger run stores, as in ``make bench``."""

import asyncio
import json
import sys
from typing import Any

from bench.harness import isolated_settings
from bench.tagger_bench import prefill, real_tagger, warm_store


async def run(rounds: int, count: int) -> dict[str, Any]:
    settings = isolated_settings("store")
    await prefill(settings, count)
    await warm_store(max(count // 5, 500))
    tagged = await real_tagger(settings, count, processes=1, store_rounds=rounds)
    store: dict[str, Any] = tagged["store_ceiling"]
    return store


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    print(json.dumps(asyncio.run(run(rounds, count)), indent=2))
