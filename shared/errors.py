"""The exception tree every service raises for answers a client should see.

Use cases raise these (no HTTP in the service layer); ``shared.http.install_error_handlers``
turns each into one answer. Anything else that escapes is a bug and stays a 500.
"""


class OrdertagError(Exception):
    """Root of the errors a client is told about."""


class InvalidInput(OrdertagError):
    """Input that passed parsing but is wrong: names the field and the problem."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotFound(OrdertagError):
    """The thing named in the request does not exist (or is past its retention)."""


class Conflict(OrdertagError):
    """The request contradicts what is stored; ``retry_after_s`` when waiting may resolve it."""

    def __init__(self, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DependencyUnavailable(OrdertagError):
    """A dependency (Kafka, Redis, MongoDB) did not answer: nothing was done, retry later."""

    def __init__(self, dependency: str, message: str, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.dependency = dependency
        self.retry_after_s = retry_after_s
