"""The rule engine: pure (no I/O beyond reading a rule file), so it is testable without servers."""
