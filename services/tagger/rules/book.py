"""The rule set in force, reloaded when its file changes; a bad file never replaces a good one."""

import hashlib
from pathlib import Path

import structlog

from services.tagger.rules.reasons import ReasonTemplates, keep_words
from services.tagger.rules.schema import RuleFileError, RuleSet, parse_rules

log = structlog.get_logger("tagger.rules")


def version_of(text: str) -> str:
    """A rule set's version id: the hash of its content, so the same file is the same version
    on every process and after every restart, and any edit is a new one."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class RuleBook:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime = path.stat().st_mtime_ns
        self.text = path.read_text(encoding="utf-8")
        self.current: RuleSet = parse_rules(self.text, str(path))  # refuse to start on a bad file
        self.version = version_of(self.text)
        # every rule set once in force, longest ago first (``remember_earlier_rules``): their
        # reason templates read the tags their rule versions gave
        self.earlier: tuple[RuleSet, ...] = ()
        self._templates: dict[bool, tuple[RuleSet, tuple[RuleSet, ...], ReasonTemplates]] = {}

    def templates(self) -> ReasonTemplates:
        """The order rules' reason templates, those in force and those once in force."""
        return self._templates_of(customer=False)

    def customer_templates(self) -> ReasonTemplates:
        """The customer rules' reason templates, those in force and those once in force."""
        return self._templates_of(customer=True)

    def _templates_of(self, *, customer: bool) -> ReasonTemplates:
        made = self._templates.get(customer)
        if made is not None and made[0] is self.current and made[1] is self.earlier:
            return made[2]
        templates = ReasonTemplates(self.current, customer=customer, earlier=self.earlier)
        self._templates[customer] = (self.current, self.earlier, templates)
        return templates

    def reload_if_changed(self) -> bool | None:
        """Reload after a change: True when loaded, False when refused (old rules kept: a bad
        file, or one that rewords a rule version once in force), None when nothing changed.
        Blocking file I/O: call it off the event loop."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError as error:
            log.error("rules_file_unreadable", path=str(self.path), error=str(error))
            return False
        if mtime == self._mtime:
            return None
        self._mtime = mtime
        try:
            text = self.path.read_text(encoding="utf-8")
            rules = parse_rules(text, str(self.path))
            if rules not in self.earlier:  # one once in force: its words were its tags'
                keep_words(rules, self.earlier, str(self.path))
        except (RuleFileError, OSError) as error:
            log.error("rules_refused_keeping_last_good", path=str(self.path), error=str(error))
            return False
        self.text, self.current, self.version = text, rules, version_of(text)
        log.info(
            "rules_reloaded", path=str(self.path), rules=len(rules.rules), version=self.version
        )
        return True

    def use(self, text: str, origin: str) -> None:
        """Put a stored rule set in force (an activation or a rollback) instead of the file's;
        the file takes over again only when it is edited. Raises ``RuleFileError`` if invalid."""
        rules = parse_rules(text, origin)
        self.text, self.current, self.version = text, rules, version_of(text)
        log.info("rules_activated", origin=origin, rules=len(rules.rules), version=self.version)
