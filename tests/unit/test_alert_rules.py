"""The Prometheus alert rules load and behave as their promtool tests say.

promtool is built from the Go module proxy on first use (deploy/observability/tools.sh: about five
minutes, once per machine; the binary is cached outside the repository). Run these alone with
``pytest -m promtool``.
"""

import os
import subprocess
from pathlib import Path

import pytest

OBSERVABILITY = Path(__file__).parents[2] / "deploy" / "observability"

# On a machine that has not built promtool yet, the first test here builds it (5-10 minutes on
# 2 cores, within the build's own 30-minute limit): the suite's 300 s per test would stop it.
pytestmark = [pytest.mark.promtool, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def promtool(request: pytest.FixtureRequest) -> Path:
    tools = OBSERVABILITY / "tools.sh"
    cached = subprocess.run(  # noqa: S603
        [str(tools), "promtool"],
        capture_output=True,
        text=True,
        env={**os.environ, "ORDERTAG_TOOLS_CACHED_ONLY": "1"},
        check=False,
    )
    if cached.returncode == 0:
        return Path(cached.stdout.strip())
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            "\npromtool is not cached: building it from the Go module proxy "
            f"({tools} promtool; once per machine, about 5 minutes on 2 cores)"
        )
    built = subprocess.run(  # noqa: S603
        [str(tools), "promtool"], capture_output=True, text=True, timeout=1800, check=False
    )
    if built.returncode != 0:
        pytest.fail(f"could not build promtool with {tools}:\n{built.stderr[-3000:]}")
    return Path(built.stdout.strip().splitlines()[-1])


def run(promtool: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [str(promtool), *args],
        cwd=OBSERVABILITY,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_alert_rules_are_valid(promtool: Path) -> None:
    result = run(promtool, "check", "rules", "alerts.yml")

    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_fire_as_their_tests_expect(promtool: Path) -> None:
    result = run(promtool, "test", "rules", "alerts_test.yml")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_prometheus_config_is_valid(promtool: Path) -> None:
    result = run(promtool, "check", "config", "--syntax-only", "prometheus.yml")

    assert result.returncode == 0, result.stdout + result.stderr
