"""``/healthz`` (the process answers) and ``/readyz`` (Kafka and Redis, each with its state):
the shared probes (``shared/probes.py``) over ingest's clients."""

from fastapi import Request

from services.ingest.routes.deps import get_ingest
from shared.probes import ReadinessCheck, probes_router


def _checks(request: Request) -> ReadinessCheck:
    ingest = get_ingest(request)
    return ReadinessCheck(
        pings={"kafka": ingest.producer.client.fetch_all_metadata, "redis": ingest.redis.ping},
        required={"kafka", "redis"},
        roles=["ingest"],
    )


router = probes_router(_checks)
