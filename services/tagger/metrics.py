"""Prometheus metrics of the tagger (served at /metrics)."""

from prometheus_client import Counter, Gauge, Histogram

RULE_HITS = Counter("ordertag_rule_hits_total", "Rules that fired", ["rule_id"])
TAG_HITS = Counter("ordertag_tag_hits_total", "Tags decided by rules", ["tag"])
TAGS_DROPPED_BY_LIMIT = Counter(
    "ordertag_tags_dropped_by_limit_total",
    "Rule tags not applied: per-order tag limit",
    ["rule_id"],
)
EVENTS_PROCESSED = Counter("ordertag_tagger_events_total", "Order events handled", ["outcome"])
DEAD_LETTERS = Counter("ordertag_dead_letters_total", "Events sent to the dead-letter topic")
WRITE_CONFLICTS = Counter("ordertag_write_conflicts_total", "Order writes that lost a race")
RULE_RELOADS = Counter("ordertag_rule_reloads_total", "Rule file reloads", ["outcome"])
BATCH_SECONDS = Histogram(
    "ordertag_tagger_batch_seconds",
    "Time to handle one consumed batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram(
    "ordertag_tagger_batch_size",
    "Records per consumed batch",
    buckets=(1, 10, 50, 100, 250, 500, 1000),
)
CONSUMER_LAG = Gauge("ordertag_tagger_lag", "Records behind the partition end", ["partition"])
DEPENDENCY_ERRORS = Counter(
    "ordertag_tagger_dependency_errors_total",
    "Tag API requests answered 503 because a dependency was unreachable",
    ["dependency"],
)
RATE_LIMIT_SKIPPED = Counter(
    "ordertag_tagger_rate_limit_skipped_total",
    "Tag API reads counted in the process only because Redis was unreachable",
)
SHADOW_DIFFERENCES = Counter(
    "ordertag_shadow_differences_total",
    "Orders whose tags a candidate rule set in shadow would change, per tag",
    ["tag", "change"],
)
DEAD_LETTER_RECORDS = Gauge(
    "ordertag_dead_letter_records",
    "Records held in the dead-letter topic (end minus start offsets, all partitions): they "
    "wait for a person until the topic's retention drops them.",
)
