"""Notifier configuration (``ORDERTAG_NOTIFIER_*`` on top of the shared settings)."""

from shared.settings import Settings


class NotifierSettings(Settings):
    notifier_group_id: str = "notifier"
    notifier_host: str = "127.0.0.1"
    notifier_port: int = 8003
