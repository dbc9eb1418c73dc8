"""Cycle collection is held off while a batch is handled (the tagger's consumer, ingest's batch
requests, which overlap), and only then."""

import gc
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from shared import gc_tuning
from shared.gc_tuning import cycles_collected_after


@pytest.fixture(autouse=True)
def collection_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc_tuning._hold = gc_tuning._CollectionHold()  # a failed test leaves no batch open
    if enabled:
        gc.enable()
    else:
        gc.disable()


@pytest.fixture
def collected() -> Iterator[list[int]]:
    """The generations collected while the test runs, in order."""
    generations: list[int] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            generations.append(info["generation"])

    gc.callbacks.append(note)
    yield generations
    gc.callbacks.remove(note)


def test_collection_is_off_inside_a_batch_and_back_after_it() -> None:
    gc.enable()
    with cycles_collected_after():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_collection_comes_back_when_a_batch_fails() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), cycles_collected_after():
        raise RuntimeError("the batch failed")
    assert gc.isenabled()


def test_collection_switched_off_elsewhere_stays_off() -> None:
    gc.disable()
    with cycles_collected_after():
        pass
    assert not gc.isenabled()


def test_a_collection_due_during_a_batch_runs_as_it_ends(collected: list[int]) -> None:
    gc.enable()
    with cycles_collected_after():
        garbage: list[list[int]] = [[] for _ in range(gc.get_threshold()[0] + 1)]  # noqa: F841
        assert collected == []
    assert collected[:1] == [0]


def test_overlapping_batches_keep_collection_off_until_the_last_one_ends() -> None:
    gc.enable()
    with ExitStack() as second:
        second.enter_context(cycles_collected_after())
        with cycles_collected_after():
            pass  # the first request ends while the second awaits Kafka
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_due_collection_runs_when_a_batch_ends_under_another(collected: list[int]) -> None:
    gc.enable()
    with cycles_collected_after():  # the other request, still awaiting Kafka
        with cycles_collected_after():
            garbage: list[list[int]] = [[] for _ in range(gc.get_threshold()[0] + 1)]  # noqa: F841
        assert collected[:1] == [0]
        assert not gc.isenabled()
    assert gc.isenabled()


def test_older_generations_are_collected_while_batches_always_overlap(
    collected: list[int],
) -> None:
    """A process that always has a batch in flight (ingest under load) still runs the
    generation-1 collections the collector would have run."""
    gc.enable()
    with cycles_collected_after():  # never ends while the others run
        for _ in range(3 * gc.get_threshold()[1]):
            with cycles_collected_after():
                for _ in range(gc.get_threshold()[0] + 100):
                    cycle: list[object] = []
                    cycle.append(cycle)  # garbage only a collection frees
    assert 1 in collected
