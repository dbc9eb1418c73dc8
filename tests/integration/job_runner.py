"""A process that only runs bulk tag jobs (as a jobs-role replica does), for tests that kill one
replica of two: ``python -m tests.integration.job_runner LEASE_S``, configured like the tagger by
``ORDERTAG_*`` variables."""

import asyncio
import sys
from datetime import timedelta
from typing import Any

from pymongo import AsyncMongoClient

from services.tagger.editing import TagEditing
from services.tagger.jobs import Jobs
from services.tagger.publishing import TaggerOutput
from services.tagger.rules.book import RuleBook
from services.tagger.settings import TaggerSettings
from services.tagger.store import OrderStore
from shared.kafka import make_producer
from shared.logging import configure_logging

POLL_S = 0.5


async def run(lease: timedelta) -> None:
    settings = TaggerSettings()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url, tz_aware=True)
    database = mongo[settings.mongo_database]

    producer = make_producer(settings)
    await producer.start()
    output = TaggerOutput(producer, settings.topics.tagged, settings.topics.dead_letter)
    editing = TagEditing(
        OrderStore(database),
        RuleBook(settings.tagger_rules_file),
        output.publish,
        max_tags=settings.tagger_max_tags_per_order,
        allow_free_tags=settings.tagger_allow_free_tags,
    )
    jobs = Jobs(database, editing, lease=lease)
    while True:
        await jobs.resume_all()
        await asyncio.sleep(POLL_S)


if __name__ == "__main__":
    configure_logging()
    asyncio.run(run(timedelta(seconds=float(sys.argv[1]))))
