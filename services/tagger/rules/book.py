"""The rule set in force, reloaded when its file changes; a bad file never replaces a good one."""

from pathlib import Path

import structlog

from services.tagger.rules.schema import RuleFileError, RuleSet, load_rules

log = structlog.get_logger("tagger.rules")


class RuleBook:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.current: RuleSet = load_rules(path)  # refuse to start on a bad file
        self._mtime = path.stat().st_mtime_ns

    def reload_if_changed(self) -> bool | None:
        """Reload after a change: True when loaded, False when refused (old rules kept),
        None when nothing changed. Blocking file I/O: call it off the event loop."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError as error:
            log.error("rules_file_unreadable", path=str(self.path), error=str(error))
            return False
        if mtime == self._mtime:
            return None
        self._mtime = mtime
        try:
            self.current = load_rules(self.path)
        except (RuleFileError, OSError) as error:
            log.error("rules_refused_keeping_last_good", path=str(self.path), error=str(error))
            return False
        log.info("rules_reloaded", path=str(self.path), rules=len(self.current.rules))
        return True
