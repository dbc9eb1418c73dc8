"""The stored forms a release writes, switch by switch, and a way to write as the releases
before did: for the tests that read those forms and the bench that measures what each release
saved (here, not in ``shared``: no service image carries a way to flip its writers). A stored
form changes in two releases, expand then contract (``docs/architecture.md``): each switch
writes the new form when on and the form before it when off."""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import ModuleType

from shared import stored_order, stored_tags

Switch = tuple[ModuleType, str]

# The forms written since the release of 2026-11-27 (night), which the evening's only read
RELEASE_BEFORE_FORMS: tuple[Switch, ...] = (
    (stored_tags, "WRITE_ARGS_FROM_FACTS"),
    (stored_tags, "WRITE_FAMILY_IN_RULE"),
    (stored_tags, "WRITE_WHOLE_RULE_SHORT"),
    (stored_order, "WRITE_SHORT_FIGURE_NAMES"),
    (stored_order, "WRITE_CURRENCY_WHEN_NOT_DEFAULT"),
)
# ... and those the evening's wrote and the one before it only read. All off: an order's
# and a customer's forms as written before the switches came; the changes that came with no
# switch (an order's creation time left out of ``order``, a customer's additions without
# ``change``) stay, and ingest's claims are its own (``WRITE_COMPACT_CLAIMS``)
EARLIER_RELEASES_FORMS: tuple[Switch, ...] = (
    *RELEASE_BEFORE_FORMS,
    (stored_tags, "WRITE_FAMILY_IN_NAME"),
    (stored_order, "WRITE_BINARY_EVENT_IDS"),
)


@contextmanager
def written_as_before(forms: Iterable[Switch] = RELEASE_BEFORE_FORMS) -> Iterator[None]:
    """The release before's writers for the while (``EARLIER_RELEASES_FORMS``: the earliest
    compact release's). Module-wide: nothing else may write meanwhile."""
    forms = tuple(forms)
    kept = [(module, name, getattr(module, name)) for module, name in forms]
    try:
        for module, name in forms:
            setattr(module, name, False)
        stored_tags._tag_forms.clear()  # forms made by this release's writers
        yield
    finally:
        for module, name, value in kept:
            setattr(module, name, value)
        stored_tags._tag_forms.clear()
