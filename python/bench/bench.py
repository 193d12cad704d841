"""polyroute through Python, side by side with LiteLLM, against the loopback mock provider.

Measures (median and p90 per call, microseconds):
  plan      router.plan(request)                      vs  litellm Router.get_available_deployment
  chat      router.chat(request) - direct mock call   vs  litellm Router.completion - direct mock call
  openai    the openai SDK through polyroute.HTTPTransport(router) - the same SDK calling the mock directly
The "direct mock call" is the same request sent with a keep-alive http.client connection, so the difference is
what the router adds. The summary puts the two in-process figures of issue 21 side by side with their targets:
plan on the 17-endpoint model of the embedded catalog (meta-llama/llama-3.3-70b-instruct, every host configured
with a fake key) and the openai SDK's added time per call. Run through scripts/bench-python (release build,
throwaway venv).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.mock import KEY, catalog, provider_settings, running_mock  # noqa: E402

import polyroute  # noqa: E402

MESSAGES = [{"role": "user", "content": "hello"}]
# The catalog model with the most endpoints (17) and settings that make every one of its hosts usable.
WIDE_MODEL = "meta-llama/llama-3.3-70b-instruct"
FAKE_KEY = "sk-fake-bench-0000"
HOST_SETTINGS: dict[str, dict[str, Any]] = {
    "azure": {"resource": "fake-bench"},
    "amazon-bedrock": {"region": "us-east-1"},
}


def timed(fn: Callable[[], Any], n: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        fn()
        out.append((clock() - t0) / 1000.0)
    return out


def timed_pair(
    f: Callable[[], Any], g: Callable[[], Any], n: int, warmup: int, cpu: list[list[float]] | None = None
) -> tuple[list[float], list[float]]:
    """`f` and `g` timed alternately, so a change of machine load between them falls on both. With `cpu`, the
    process CPU time of each call (every thread of this process, so the router's runtime threads too) goes in
    `cpu[0]` and `cpu[1]`: unlike wall time it does not count waiting for the mock or for a CPU."""
    for _ in range(warmup):
        f()
        g()
    fs, gs = [], []
    clock, pclock = time.perf_counter_ns, time.process_time_ns
    for _ in range(n):
        c0, t0 = pclock(), clock()
        f()
        t1, c1 = clock(), pclock()
        g()
        t2, c2 = clock(), pclock()
        fs.append((t1 - t0) / 1000.0)
        gs.append((t2 - t1) / 1000.0)
        if cpu is not None:
            cpu[0].append((c1 - c0) / 1000.0)
            cpu[1].append((c2 - c1) / 1000.0)
    return fs, gs


def stats(xs: list[float]) -> tuple[float, float]:
    xs = sorted(xs)
    return statistics.median(xs), xs[int(len(xs) * 0.9)]


def row(name: str, xs: list[float]) -> float:
    med, p90 = stats(xs)
    print(f"  {name:<58} median {med:9.2f} µs   p90 {p90:9.2f} µs")
    return med


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plan-iterations", type=int, default=20000)
    ap.add_argument("--chat-iterations", type=int, default=2000)
    ap.add_argument("--no-litellm", action="store_true")
    ap.add_argument("--no-openai", action="store_true", help="skip the openai SDK rows")
    args = ap.parse_args()

    with running_mock("--threads", "1") as base:
        host, port = base.removeprefix("http://").split(":")
        router = polyroute.Router(catalog(base), provider_settings(), read_env=False)
        request = {"model": "test/model", "messages": MESSAGES, "provider": {"order": ["alpha"]}}
        embedded = polyroute.Router(read_env=False)
        gpt = {"model": "openai/gpt-4o-mini", "messages": MESSAGES}
        creds = ["openai", "azure"]

        print(f"polyroute {polyroute.__version__}, Python {sys.version.split()[0]}, mock at {base}")
        print("\n[plan]")
        plan_pr = row("polyroute Router.plan (2 endpoints)", timed(lambda: router.plan(request), args.plan_iterations, 2000))
        row(
            "polyroute Router.plan (embedded catalog, openai/gpt-4o-mini)",
            timed(lambda: embedded.plan(gpt, credentials=creds), args.plan_iterations, 2000),
        )
        wide = wide_router()
        wide_request = {"model": WIDE_MODEL, "messages": MESSAGES}
        attempts = len(wide.plan(wide_request)["attempts"])
        plan_wide = row(
            f"polyroute Router.plan ({WIDE_MODEL}, {attempts} attempts)",
            timed(lambda: wide.plan(wide_request), args.plan_iterations, 2000),
        )

        print("\n[chat]")
        conn = http.client.HTTPConnection(host, int(port))
        upstream = json.dumps({"model": "alpha-upstream", "messages": MESSAGES}).encode()
        headers = {"content-type": "application/json", "authorization": f"Bearer {KEY}"}

        def direct() -> None:
            conn.request("POST", "/v1/chat/completions", body=upstream, headers=headers)
            r = conn.getresponse()
            json.loads(r.read())

        ds, cs = timed_pair(direct, lambda: router.chat(request), args.chat_iterations, 200)
        direct_med = row("direct mock call (http.client keep-alive + json.loads)", ds)
        chat_med = row("polyroute Router.chat", cs)
        body = json.dumps(request).encode()
        row(
            "polyroute Router.http (POST /api/v1/chat/completions)",
            timed(lambda: router.http("POST", "/api/v1/chat/completions", [], body), args.chat_iterations, 200),
        )
        print(f"  {'polyroute added overhead':<58} median {chat_med - direct_med:9.2f} µs")

        sdk = None if args.no_openai else openai_rows(base, router, args.chat_iterations)
        print("\n[issue 21 in-process targets]")
        print(f"  {'Router.plan, 17-endpoint request':<44} {plan_wide:9.2f} µs   (target <= 5 µs)")
        if sdk is not None:
            sdk_direct, sdk_inproc, cpu_direct, cpu_inproc = sdk
            print(
                f"  {'openai SDK via HTTPTransport over direct':<44} {sdk_inproc - sdk_direct:9.2f} µs"
                f"   (target <= 20 µs; direct {sdk_direct:.2f} µs, in process {sdk_inproc:.2f} µs)"
            )
            print(
                f"  {'  the same in CPU time of this process':<44} {cpu_inproc - cpu_direct:9.2f} µs"
                f"   (direct {cpu_direct:.2f} µs, in process {cpu_inproc:.2f} µs)"
            )

        if args.no_litellm:
            return
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        os.environ.setdefault("LITELLM_TELEMETRY", "False")
        import litellm  # noqa: PLC0415

        litellm.telemetry = False
        litellm.suppress_debug_info = True
        model_list = [
            {
                "model_name": "test/model",
                "litellm_params": {"model": f"openai/{slug}-upstream", "api_base": f"{base}/v1", "api_key": KEY},
            }
            for slug in ("alpha", "beta")
        ]
        lrouter = litellm.Router(model_list=model_list, num_retries=0)
        print(f"\n[litellm {getattr(litellm, 'version', '') or _version('litellm')}]")
        plan_ll = row(
            "litellm Router.get_available_deployment",
            timed(
                lambda: lrouter.get_available_deployment(model="test/model", messages=MESSAGES),
                max(args.plan_iterations // 10, 500),
                200,
            ),
        )
        chat_ll = row(
            "litellm Router.completion",
            timed(lambda: lrouter.completion(model="test/model", messages=MESSAGES), args.chat_iterations // 2, 50),
        )
        print("\n[ratios: litellm / polyroute]")
        print(f"  plan (routing decision):   {plan_ll / plan_pr:8.1f}x")
        print(f"  chat (end to end):         {chat_ll / chat_med:8.1f}x")
        print(
            f"  chat (added overhead):     {(chat_ll - direct_med) / max(chat_med - direct_med, 1e-9):8.1f}x"
            f"   ({chat_ll - direct_med:.1f} µs vs {chat_med - direct_med:.1f} µs)"
        )


def wide_router() -> polyroute.Router:
    """The embedded catalog with every host of WIDE_MODEL configured (a fake key, and the resource or region the
    host needs), so all of its endpoints are planned."""
    cat = json.loads((HERE.parents[1] / "crates" / "polyroute-core" / "data" / "catalog.json").read_text())
    slugs = {e["provider"] for m in cat["models"] if m["id"] == WIDE_MODEL for e in m["endpoints"]}
    providers = {s: {"api_key": FAKE_KEY, **HOST_SETTINGS.get(s, {})} for s in sorted(slugs)}
    return polyroute.Router(providers=providers, read_env=False)


def openai_pair(
    openai: Any, lib: Any, base: str, router: polyroute.Router, *, asynchronous: bool = False
) -> tuple[Any, Any]:
    """The openai SDK calling the mock at ``base`` directly, and through ``polyroute.HTTPTransport(router)`` (``lib``
    is the SDK's HTTP library, httpx or httpx2); with ``asynchronous``, ``AsyncOpenAI`` clients, the second through
    ``polyroute.AsyncHTTPTransport(router)``."""
    client = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    transport = polyroute.AsyncHTTPTransport(router) if asynchronous else polyroute.HTTPTransport(router)
    http_client = (lib.AsyncClient if asynchronous else lib.Client)(transport=transport)
    direct = client(base_url=f"{base}/v1", api_key=KEY, max_retries=0)
    inproc = client(
        base_url="http://polyroute.invalid/v1", api_key="sk-unused-fake", max_retries=0, http_client=http_client
    )
    return direct, inproc


def openai_rows(base: str, router: polyroute.Router, n: int) -> tuple[float, float, float, float] | None:
    """The openai SDK calling the mock directly, then through polyroute.HTTPTransport; medians in µs."""
    try:
        import openai  # noqa: PLC0415
    except ImportError:
        print("\n[openai] not installed: pip install openai")
        return None
    try:
        import httpx2 as lib  # noqa: PLC0415  (openai >= 3 is built on httpx2)
    except ImportError:
        import httpx as lib  # noqa: PLC0415

    print(f"\n[openai {openai.__version__} on {lib.__name__}]")
    direct, inproc = openai_pair(openai, lib, base, router)
    order = {"provider": {"order": ["alpha"]}}
    cpu: list[list[float]] = [[], []]
    ds, ins = timed_pair(
        lambda: direct.chat.completions.create(model="alpha-upstream", messages=MESSAGES),
        lambda: inproc.chat.completions.create(model="test/model", messages=MESSAGES, extra_body=order),
        n,
        200,
        cpu,
    )
    d = row("openai SDK -> mock directly", ds)
    i = row("openai SDK -> polyroute.HTTPTransport -> mock", ins)
    print(f"  {'polyroute added overhead':<58} median {i - d:9.2f} µs")
    dc = row("  CPU time of this process: directly", cpu[0])
    ic = row("  CPU time of this process: via HTTPTransport", cpu[1])
    print(f"  {'  CPU time added':<58} median {ic - dc:9.2f} µs")
    return d, i, dc, ic


def _version(pkg: str) -> str:
    from importlib.metadata import version  # noqa: PLC0415

    return version(pkg)


if __name__ == "__main__":
    main()
