"""Per streamed chunk through Python: the openai SDK through polyroute.HTTPTransport against the same SDK calling the
loopback mock directly, and ``router.stream``; each the slope between an 8-piece and a 64-piece stream (median minus
median over 56 chunks). Run it with each wheel's venv in turn to compare two builds side by side:

    POLYROUTE_MOCK_BIN=target/release/polyroute-mock VENV/bin/python python/bench/chunks.py [RUNS]

The venv needs the polyroute wheel and ``openai``. Loopback only; the mocks are stopped by their PIDs.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import openai  # noqa: E402

import polyroute  # noqa: E402
from bench import openai_pair  # noqa: E402
from tests.mock import catalog, provider_settings, running_mock  # noqa: E402

try:
    import httpx2 as lib  # openai >= 3 is built on httpx2
except ImportError:
    import httpx as lib

MESSAGES = [{"role": "user", "content": "hi there"}]
ORDER = {"provider": {"order": ["alpha"]}}


def drain(chunks: Iterable[Any]) -> int:
    return sum(1 for _ in chunks)


def main(runs: int) -> None:
    with ExitStack() as stack:
        cases: dict[str, Callable[[], int]] = {}
        for n in (8, 64):
            base = stack.enter_context(running_mock("--keep-requests", "0", "--chunks", str(n)))
            router = polyroute.Router(catalog(base), provider_settings(), read_env=False)
            direct, inproc = openai_pair(openai, lib, base, router)
            cases[f"direct{n}"] = lambda c=direct: drain(
                c.chat.completions.create(model="alpha-upstream", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
            )
            cases[f"transport{n}"] = lambda c=inproc: drain(
                c.chat.completions.create(model="test/model", messages=MESSAGES, stream=True, extra_body=ORDER)  # type: ignore[arg-type]
            )
            cases[f"stream{n}"] = lambda r=router: drain(r.stream({"model": "test/model", "messages": MESSAGES, **ORDER}))
        for f in cases.values():
            for _ in range(50):
                f()
        samples: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(runs):
            for k, f in cases.items():
                t = time.perf_counter()
                f()
                samples[k].append((time.perf_counter() - t) * 1e6)
        m = {k: statistics.median(v) for k, v in samples.items()}

        def slope(k: str) -> float:
            return (m[f"{k}64"] - m[f"{k}8"]) / 56

        added = slope("transport") - slope("direct")
        print(
            f"{polyroute.__file__}: per chunk: direct {slope('direct'):.2f} µs, HTTPTransport {slope('transport'):.2f} µs"
            f" (added {added:.2f} µs), router.stream {slope('stream'):.2f} µs"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
