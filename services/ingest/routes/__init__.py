"""Ingest's HTTP routes, one router per resource."""
