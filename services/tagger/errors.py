"""What the tagger refuses or cannot do: the tagger's branch of the shared exception tree
(``shared/errors.py``), which ``shared/http.py`` maps to HTTP answers in one place. Use cases
raise these; no use case knows HTTP."""

from shared import errors


class TaggerError(errors.OrdertagError):
    """Root of the tagger's own errors."""


class NotFound(TaggerError, errors.NotFound):
    """The order, tag or job named does not exist."""


class Gone(TaggerError, errors.Gone):
    """The tag was renamed or merged away; the message names where it went."""


class Conflict(TaggerError, errors.Conflict):
    """The request is valid but clashes with the current state (a tag that exists, a count that
    moved on, a tag that rules own)."""


class Invalid(TaggerError, errors.InvalidInput):
    """Bad input the schema could not catch; names the field and the problem."""


class Unavailable(TaggerError, errors.DependencyUnavailable):
    """A dependency (MongoDB, Redis, Kafka) cannot be reached; the client should retry later."""

    def __init__(self, dependency: str) -> None:
        super().__init__(dependency, f"{dependency} is unreachable; retry later")
