"""Ingest: takes orders in over HTTP and from files and publishes order events to Kafka."""
