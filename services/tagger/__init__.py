"""Tagger: consumes order events, decides tags by rules, stores them and publishes tagged events."""
