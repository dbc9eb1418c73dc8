"""What the tagger refuses or cannot do: one tree with one root, mapped to HTTP in one place
(``services/tagger/http/errors.py``). Use cases raise these; no use case knows HTTP."""


class TaggerError(Exception):
    """Root of the tagger's own errors."""


class NotFound(TaggerError):
    """The order, tag or job named does not exist."""


class Gone(TaggerError):
    """The tag was renamed or merged away; the message names where it went."""


class Conflict(TaggerError):
    """The request is valid but clashes with the current state (a tag that exists, a count that
    moved on, a tag that rules own)."""


class Invalid(TaggerError):
    """Bad input the schema could not catch; names the field and the problem."""

    def __init__(self, field: str, problem: str, detail: str | None = None) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
        self.detail = detail or f"{field}: {problem}"


class Unavailable(TaggerError):
    """A dependency (MongoDB, Redis, Kafka) cannot be reached; the client should retry later."""

    def __init__(self, dependency: str) -> None:
        super().__init__(f"{dependency} is unreachable; retry later")
        self.dependency = dependency
