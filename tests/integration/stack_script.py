"""Run deploy/local/stack.sh on a stack dir and ports of a test's own."""

import os
import subprocess
from pathlib import Path

from tests.integration.servers import LIBS, LOCAL

STACK = LOCAL / "stack.sh"


def own_stack_env(stack_dir: Path, **ports: int | str) -> dict[str, str]:
    """The environment for a stack in ``stack_dir`` (sharing the installed jars), with
    ``ORDERTAG_<NAME>`` set from ``ports`` (``KAFKA_PORT=...``)."""
    (stack_dir / "libs").parent.mkdir(parents=True, exist_ok=True)
    if not (stack_dir / "libs").exists():
        (stack_dir / "libs").symlink_to(LIBS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERTAG_")}
    env["ORDERTAG_STACK_DIR"] = str(stack_dir)
    env.update({f"ORDERTAG_{name}": str(value) for name, value in ports.items()})
    return env


def stack(
    env: dict[str, str], *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """``stack.sh ARGS...``; raises with its output if it fails."""
    done = subprocess.run(  # noqa: S603  (our own script, fixed arguments)
        [str(STACK), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise AssertionError(
            f"stack.sh {' '.join(args)} failed ({done.returncode}):\n{done.stderr}"
        )
    return done
