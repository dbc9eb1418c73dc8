"""Push a JSON Lines file of orders through the ingest API and show how the tagger stored them."""

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from shared.auth import API_KEY_HEADER, LOCAL_DEV_KEY
from shared.settings import Settings

INGEST_URL = "http://127.0.0.1:8001"


async def main(orders: list[dict[str, Any]]) -> None:
    settings = Settings()
    headers = {API_KEY_HEADER: LOCAL_DEV_KEY}
    async with httpx.AsyncClient(base_url=INGEST_URL, timeout=15, headers=headers) as client:
        for order in orders:
            answer = await client.post("/orders", json=order)
            print(f"[demo] POST /orders {order['order_no']}: {answer.status_code} {answer.text}")

    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url)
    orders_collection = mongo[settings.mongo_database]["orders"]
    wanted = [order["order_no"] for order in orders]
    for _ in range(100):
        stored = await orders_collection.find(
            {"order_no": {"$in": wanted}}, {"_id": 0, "order_no": 1, "status": 1, "tag_names": 1}
        ).to_list(None)
        if len(stored) == len(wanted):
            break
        await asyncio.sleep(0.1)
    for document in stored:
        print(f"[demo] stored by the tagger: {document}")
    await mongo.close()


if __name__ == "__main__":
    lines = Path(sys.argv[1]).read_text().splitlines()
    asyncio.run(main([json.loads(line) for line in lines if line.strip()]))
