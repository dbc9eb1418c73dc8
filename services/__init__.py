"""The three ordertag services: ingest, tagger, notifier."""
