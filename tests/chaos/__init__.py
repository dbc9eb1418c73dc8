"""The chaos run: a realistic stream through ingest while servers and services are killed, then an
independent accounting of what came out (``python -m tests.chaos``, ``make chaos``)."""
