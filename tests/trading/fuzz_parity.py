"""Soak fuzzing of the replay / walk_forward parity (issue 11).

    python -m tests.trading.fuzz_parity --examples 500 --minutes 30 --seed 1 [--paper]

Draws configurations (``tests/trading/parity.py``) from ``--seed`` until ``--examples`` were
run or ``--minutes`` passed, compares ``replay(RankingTrader(...))`` with
``walk_forward(mode="portfolio")`` (``--paper``: the Runner on a PaperBroker with ``replay``)
and prints the counts: configurations, trades, blocked picks, marks (replay) and fills (paper)
compared, configurations
both refused, failures (each with its seed and its configuration as Python). Exit status 1
when something failed.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
import warnings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.trading.fuzz_parity",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--paper", action="store_true",
                        help="compare the Runner on a PaperBroker with replay instead")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    from tests.trading import parity

    if args.paper:
        from tests.live import test_paper_parity_random as paper
        draw, check = paper.draw_paper_config, paper.check_paper
    else:
        draw, check = parity.draw_config, parity.check
    deadline = time.monotonic() + args.minutes * 60
    began = time.monotonic()
    counts = {"configs": 0, "trades": 0, "blocked": 0, "marks": 0, "fills": 0, "rejected": 0,
              "failures": 0}
    i = 0
    while i < args.examples and time.monotonic() < deadline:
        seed = args.seed * 1_000_003 + i
        i += 1
        config = draw(random.Random(seed))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                outcome = check(config)
        except Exception:
            counts["failures"] += 1
            print(f"FAIL seed={seed}\n{config.code()}\n{traceback.format_exc(limit=3)}",
                  flush=True)
            continue
        counts["configs"] += 1
        if outcome.rejected:
            counts["rejected"] += 1
        counts["trades"] += outcome.trades
        counts["blocked"] += outcome.blocked
        counts["marks"] += outcome.marks
        counts["fills"] += outcome.fills
        if not args.quiet and i % 25 == 0:
            print(f"{i} drawn, {time.monotonic() - began:.0f} s: {counts}", flush=True)
    elapsed = time.monotonic() - began
    print(f"drawn {i} configurations in {elapsed:.0f} s (seed {args.seed}"
          f"{', paper' if args.paper else ''}): " + ", ".join(f"{k} {v}" for k, v in
                                                              counts.items()))
    return 1 if counts["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
