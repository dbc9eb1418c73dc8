"""The tagger's HTTP layer: one router per resource, their dependencies, one error mapping."""

from fastapi import APIRouter

from services.tagger.http import catalog, changes, customers, jobs, orders, reports, rules


def tag_api() -> APIRouter:
    """The Tag API: every resource's routes."""
    router = APIRouter()
    for resource in (orders, changes, jobs, catalog, reports, rules, customers):
        router.include_router(resource.router)
    return router
