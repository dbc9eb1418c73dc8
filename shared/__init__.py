"""Code every ordertag service shares: the domain model, events, settings, topics, logging."""
