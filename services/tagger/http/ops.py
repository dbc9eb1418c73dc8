"""Probes every tagger process serves, whatever its roles: alive, and ready for its roles (the
shared probes, ``shared/probes.py``; what each role needs is ``roles.REQUIRED``)."""

from services.tagger.http.deps import tagger_of
from services.tagger.roles import readiness_check
from shared.probes import probes_router

router = probes_router(lambda request: readiness_check(tagger_of(request)))
