"""Notifier: turns tagged-order events into alerts for support staff."""
