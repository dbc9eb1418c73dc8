"""Print the node id leading one partition of a topic (for `stack.sh leader`).

usage: python kafka_leader.py BOOTSTRAP TOPIC PARTITION
"""

import asyncio
import sys

from aiokafka.admin import AIOKafkaAdminClient


async def leader(bootstrap: str, topic: str, partition: int) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    for entry in described["partitions"]:
        if entry["partition"] == partition and entry["leader"] >= 0:
            return int(entry["leader"])
    raise SystemExit(f"{topic} has no partition {partition} with a leader")


if __name__ == "__main__":
    print(asyncio.run(leader(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
