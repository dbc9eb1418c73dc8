"""``python -m tests.chaos``: the chaos run with its accounting; exits 1 when a check fails.

Ports, the stack directory and connections come from the same ``ORDERTAG_*`` variables as
deploy/local/stack.sh and the services; the stack must be running.
"""

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from tests.chaos.environment import ROOT
from tests.chaos.faults import PLANS
from tests.chaos.report import markdown, write
from tests.chaos.run import Options, run_chaos


def main() -> int:
    defaults = Options()
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--plan", choices=sorted(PLANS), default=defaults.plan)
    parser.add_argument("--rate", type=float, default=defaults.rate, help="new orders a second")
    parser.add_argument(
        "--duration", type=float, default=defaults.duration, help="seconds of live traffic"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--customers", type=int, default=defaults.customers)
    parser.add_argument(
        "--history", type=int, default=defaults.history, help="past orders sent first"
    )
    parser.add_argument(
        "--receiver-failure-rate", type=float, default=defaults.receiver_failure_rate
    )
    parser.add_argument(
        "--drain-within",
        type=float,
        default=defaults.drain_within,
        help="seconds the queued traffic and then the system each get to drain (a slow machine "
        "needs longer: the accounting of an undrained run counts the backlog as lost)",
    )
    parser.add_argument("--log-level", default=defaults.log_level, help="the services' log level")
    parser.add_argument("--keep", action="store_true", help="keep the run's database and topics")
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=ROOT / "docs",
        help="where reliability.{md,json} go ('-': nowhere)",
    )
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.WARNING, format="[chaos %(asctime)s] %(message)s", datefmt="%H:%M:%S"
    )
    options = Options(
        plan=args.plan,
        rate=args.rate,
        duration=args.duration,
        seed=args.seed,
        customers=args.customers,
        history=args.history,
        receiver_failure_rate=args.receiver_failure_rate,
        drain_within=args.drain_within,
        log_level=args.log_level,
        keep=args.keep,
    )
    outcome = asyncio.run(run_chaos(options))
    if str(args.report_dir) == "-":
        from tests.chaos.report import figures

        print(markdown(figures(outcome)))
    else:
        data = write(outcome, args.report_dir)
        print(markdown(data))
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
