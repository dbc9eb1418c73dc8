"""The outcome of a manual tag change on one order, as a value rather than a string to parse.

``TagEditing.change`` (``editing.py``) still answers strings (``"changed"``, ``"unchanged"``,
``"not_found"``, ``"refused: why"``); ``EditResult.of`` reads both those and ``EditResult``
values, so the editing use case can switch to returning ``EditResult`` without a change here.
"""

from dataclasses import dataclass
from enum import StrEnum


class EditOutcome(StrEnum):
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    NOT_FOUND = "not_found"
    REFUSED = "refused"
    FORBIDDEN = "forbidden"  # the catalog's permissions: a tag a rule gave, removed by hand


@dataclass(frozen=True, slots=True)
class EditResult:
    outcome: EditOutcome
    reason: str | None = None  # why a change was refused

    @classmethod
    def of(cls, value: "EditResult | str") -> "EditResult":
        if isinstance(value, EditResult):
            return value
        outcome, _, reason = value.partition(":")
        return cls(EditOutcome(outcome.strip()), reason.strip() or None)

    def __str__(self) -> str:
        """The wire form the Tag API has always answered: ``refused: why`` for a refusal
        (``forbidden: why`` when the catalog's permissions forbid it)."""
        if self.outcome in (EditOutcome.REFUSED, EditOutcome.FORBIDDEN) and self.reason:
            return f"{self.outcome.value}: {self.reason}"
        return self.outcome.value
