"""Per streamed chunk through Python: the openai SDK through polyroute.HTTPTransport against the same SDK calling the
loopback mock directly, and ``router.stream``; then the same in asyncio (``AsyncOpenAI`` through
polyroute.AsyncHTTPTransport against it calling the mock directly, and ``router.astream``). Each figure is the slope
between an 8-piece and a 64-piece stream (median minus median over 56 chunks). Run it with each wheel's venv in turn
to compare two builds side by side:

    POLYROUTE_MOCK_BIN=target/release/polyroute-mock VENV/bin/python python/bench/chunks.py [RUNS]

The venv needs the polyroute wheel and ``openai``. Loopback only; the mocks are stopped by their PIDs.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import AsyncIterable, Callable, Iterable
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


async def adrain(chunks: AsyncIterable[Any]) -> int:
    n = 0
    async for _ in chunks:
        n += 1
    return n


def medians(cases: dict[str, Callable[[], Any]], runs: int) -> dict[str, float]:
    """Median µs of each case over ``runs`` rounds (the cases in turn within a round), after 50 warm-up calls."""
    for f in cases.values():
        for _ in range(50):
            f()
    samples: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(runs):
        for k, f in cases.items():
            t = time.perf_counter()
            f()
            samples[k].append((time.perf_counter() - t) * 1e6)
    return {k: statistics.median(v) for k, v in samples.items()}


def slopes(m: dict[str, float], *names: str) -> list[float]:
    """Per chunk: the 64-piece median minus the 8-piece one, over the 56 chunks between them."""
    return [(m[f"{k}64"] - m[f"{k}8"]) / 56 for k in names]


def main(runs: int) -> None:
    loop = asyncio.new_event_loop()
    with ExitStack() as stack:
        stack.callback(loop.close)
        cases: dict[str, Callable[[], int]] = {}
        acases: dict[str, Callable[[], int]] = {}
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
            # The asyncio side, each call run to its end on one event loop (the loop's own cost per call is the
            # same for both stream lengths, so it leaves the slope).
            adirect, ainproc = openai_pair(openai, lib, base, router, asynchronous=True)

            async def adirect_case(c: Any = adirect) -> int:
                return await adrain(await c.chat.completions.create(model="alpha-upstream", messages=MESSAGES, stream=True))

            async def atransport_case(c: Any = ainproc) -> int:
                chunks = await c.chat.completions.create(
                    model="test/model", messages=MESSAGES, stream=True, extra_body=ORDER
                )
                return await adrain(chunks)

            async def astream_case(r: polyroute.Router = router) -> int:
                return await adrain(r.astream({"model": "test/model", "messages": MESSAGES, **ORDER}))

            for name, case in (("direct", adirect_case), ("transport", atransport_case), ("stream", astream_case)):
                acases[f"{name}{n}"] = lambda f=case: loop.run_until_complete(f())
        direct_c, transport_c, stream_c = slopes(medians(cases, runs), "direct", "transport", "stream")
        print(
            f"{polyroute.__file__}: per chunk: direct {direct_c:.2f} µs, HTTPTransport {transport_c:.2f} µs"
            f" (added {transport_c - direct_c:.2f} µs), router.stream {stream_c:.2f} µs"
        )
        direct_c, transport_c, stream_c = slopes(medians(acases, runs), "direct", "transport", "stream")
        print(
            f"{polyroute.__file__}: async per chunk: direct {direct_c:.2f} µs, AsyncHTTPTransport {transport_c:.2f} µs"
            f" (added {transport_c - direct_c:.2f} µs), router.astream {stream_c:.2f} µs"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
