"""Target 5's stricter figure: the batch endpoint's median round over the raw producer's fastest
round, so a round whose ceiling ran in its slow mode cannot flatter the endpoint."""

from bench.ingest_bench import _ratios, against_fastest


def _runs(*rates: float) -> list[dict[str, float]]:
    return [{"orders_per_s": rate} for rate in rates]


def test_the_median_round_is_taken_against_the_fastest_ceiling() -> None:
    batch = _runs(20_000, 24_000, 22_000)
    ceiling = _runs(48_000, 30_000, 44_000)  # one round in the slow mode

    assert _ratios(batch, ceiling) == [0.417, 0.8, 0.5]  # the round-by-round ratios flatter
    assert against_fastest(batch, ceiling) == round(22_000 / 48_000, 3)
