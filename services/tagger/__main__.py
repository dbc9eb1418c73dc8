"""``python -m services.tagger``: consume order events and serve the tagger's HTTP API."""

from services.tagger.app import create_app
from services.tagger.settings import TaggerSettings
from shared.serve import serve

if __name__ == "__main__":
    settings = TaggerSettings()
    serve(create_app, settings, settings.tagger_host, settings.tagger_port)
