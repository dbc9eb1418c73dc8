"""``python -m services.notifier``: consume tagged-order events and serve the support page."""

from services.notifier.app import create_app
from services.notifier.settings import NotifierSettings
from shared.serve import serve

if __name__ == "__main__":
    settings = NotifierSettings()
    serve(create_app, settings, settings.notifier_host, settings.notifier_port)
