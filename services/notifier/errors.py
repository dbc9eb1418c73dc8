"""The notifier's branch of the shared exception tree (``shared/errors.py``, which also says
which failures are outages worth waiting out); ``shared/http.py`` maps it to HTTP answers."""

from shared.errors import NotFound, OrdertagError


class NotifierError(OrdertagError):
    """Root of what the notifier raises on purpose."""


class AlertNotFound(NotifierError, NotFound):
    def __init__(self, alert_id: str) -> None:
        super().__init__(f"no alert {alert_id!r}")
        self.alert_id = alert_id
