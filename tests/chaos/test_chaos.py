"""The short chaos run (fewer faults, about a minute of traffic): every check of the accounting
must pass. The full run is ``make chaos``."""

from pathlib import Path

import pytest

from tests.chaos.environment import Environment
from tests.chaos.report import figures, markdown
from tests.chaos.run import Options, run_chaos

# A few minutes on an idle machine; a cap for a loaded one, where each restart takes a minute
# (at load 50, five faults and the 1,000 past orders passed 600 s before the drain).
pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.timeout(900)]


async def test_nothing_lost_or_duplicated_while_servers_and_services_are_killed(
    tmp_path: Path,
) -> None:
    options = Options(
        plan="short", rate=20, duration=60, customers=1500, history=1000, drain_within=120
    )

    outcome = await run_chaos(options, Environment.from_environ())

    report = markdown(figures(outcome))
    (tmp_path / "reliability.md").write_text(report, encoding="utf-8")
    failed = [f"{c.name}: {c.figures} {c.examples[:3]}" for c in outcome.checks if not c.ok]
    assert outcome.drained, f"the system did not drain within {options.drain_within} s\n{report}"
    assert not [f for f in outcome.faults if f.error], report
    assert not failed, "\n".join(failed)
    assert figures(outcome)["orders"]["accepted"] > 1000 + 60 * 20 * 0.9
