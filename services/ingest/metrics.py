"""Prometheus metrics of ingest (served at /metrics)."""

from prometheus_client import Counter, Histogram

ACCEPTED = Counter("ordertag_ingest_accepted_total", "Order events acknowledged by Kafka", ["kind"])
REJECTED = Counter("ordertag_ingest_rejected_total", "Orders not accepted", ["reason"])
DUPLICATES = Counter("ordertag_ingest_duplicates_total", "Identical orders sent again")
PUBLISH_SECONDS = Histogram(
    "ordertag_ingest_publish_seconds",
    "From first send to the last broker acknowledgement",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
