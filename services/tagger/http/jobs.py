"""Jobs: the progress of a bulk tag change."""

from typing import Any

from fastapi import APIRouter

from services.tagger.errors import NotFound
from services.tagger.http.deps import JobsDep, Reader
from services.tagger.http.errors import responses

router = APIRouter(tags=["jobs"], responses=responses(401, 403, 404, 422, 429, 503))


@router.get("/jobs/{job_id}")
async def get_job(job_id: str, key: Reader, jobs: JobsDep) -> dict[str, Any]:
    job = await jobs.get(job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    return job
