"""`Router.plan` on issue 21's 17-endpoint request alone, for instruction counts and a quick median.

  python plan_cost.py --loop N     warm up, then N plans and nothing else (run under valgrind twice, with N and
                                   with 0: the difference over N is the instructions of one plan, CPython's call
                                   and the freeing of its result included)
  python plan_cost.py --time N     median and p90 of N timed plans (µs), as bench.py measures them

scripts/bench-python-plan runs both for one or more wheels side by side. No mock provider is needed: the router
is the embedded catalog with every host of the model configured with a fake key (bench.py's `wide_router`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import MESSAGES, WIDE_MODEL, stats, timed, wide_router  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--loop", type=int, metavar="N", help="N untimed plans after the warm-up")
    mode.add_argument("--time", type=int, metavar="N", help="N timed plans; prints the median and p90")
    ap.add_argument("--warmup", type=int, default=200)
    args = ap.parse_args()

    router = wide_router()
    request = {"model": WIDE_MODEL, "messages": MESSAGES}
    plan = router.plan
    attempts = len(plan(request)["attempts"])
    for _ in range(args.warmup):
        plan(request)
    if args.loop is not None:
        for _ in range(args.loop):
            plan(request)
        print(f"attempts {attempts}")
        return
    # The same call as bench.py times (attribute lookup included).
    med, p90 = stats(timed(lambda: router.plan(request), args.time, 0))
    print(f"attempts {attempts} median {med:.3f} p90 {p90:.3f}")


if __name__ == "__main__":
    main()
