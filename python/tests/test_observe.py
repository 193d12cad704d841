"""Router.metrics(), metrics_text() and hooks against the loopback mock providers."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import pytest

import polyroute


def req(model: str = "test/model", text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def value(snap: dict[str, Any], name: str, **want: str) -> float:
    return float(
        sum(
            s.get("value", s.get("count", 0))
            for s in snap[name]["samples"]
            if all(s["labels"].get(k) == v for k, v in want.items())
        )
    )


def wait_for(cond: Any) -> None:
    for _ in range(600):
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met within 6 s")


def router(mock_url: str, hooks: Any) -> polyroute.Router:
    from .mock import catalog, provider_settings

    return polyroute.Router(
        catalog(mock_url), provider_settings(), hooks=hooks, read_env=False, timeout=10, first_token_timeout=5
    )


class Collect:
    def __init__(self) -> None:
        self.attempts: list[dict[str, Any]] = []
        self.generations: list[dict[str, Any]] = []
        self.threads: set[int] = set()

    def on_attempt(self, event: dict[str, Any]) -> None:
        self.threads.add(threading.get_ident())
        self.attempts.append(event)

    def on_generation(self, record: dict[str, Any]) -> None:
        self.generations.append(record)


def test_metrics_count_a_known_sequence_and_hooks_see_it(mock_url: str) -> None:
    hooks = Collect()
    r = router(mock_url, hooks)
    ok = r.chat(req(provider={"order": ["alpha"]}), user="team-a")
    fb = r.chat(req("test/broken", models=["test/model"]), user="team-a")
    with pytest.raises(polyroute.ProviderUnavailableError):
        r.chat(req("test/broken"))
    assert list(r.stream(req(provider={"order": ["beta"]}), user="team-a"))

    snap = r.metrics()
    assert value(snap, "polyroute_requests_total", status="ok") == 3
    assert value(snap, "polyroute_requests_total", model="test/broken", status="temporarily_unavailable") == 1
    assert value(snap, "polyroute_errors_total", code="temporarily_unavailable", provider="broken") == 1
    assert value(snap, "polyroute_attempts_total", provider="broken", outcome="overloaded") == 2
    assert value(snap, "polyroute_fallbacks_total", provider="broken") == 1
    assert value(snap, "polyroute_generations_total", fallback="true") == 1
    assert value(snap, "polyroute_generations_total") == 3
    assert value(snap, "polyroute_overhead_seconds") == 3
    assert value(snap, "polyroute_in_flight_requests") == 0
    prompt = sum(r.generation(g["id"])["usage"]["prompt_tokens"] for g in (ok, fb))  # type: ignore[index]
    assert value(snap, "polyroute_tokens_total", key="team-a", type="prompt") >= prompt
    assert snap["polyroute_request_duration_seconds"]["type"] == "histogram"
    text = r.metrics_text()
    assert 'polyroute_fallbacks_total{provider="broken"} 1\n' in text

    # Hooks: 1 + 2 + 1 + 1 attempts and 3 generations, delivered on the hook thread.
    wait_for(lambda: len(hooks.generations) == 3 and len(hooks.attempts) == 5)
    # One thread, not the caller's (the router's hook thread).
    assert len(hooks.threads) == 1 and threading.get_ident() not in hooks.threads
    assert [g["id"] for g in hooks.generations[:2]] == [ok["id"], fb["id"]]
    assert all(g["overhead_ms"] >= 0 for g in hooks.generations)
    # Cost per key label: exactly what the ledger billed (the three generations of team-a).
    billed = sum(float(g["cost"]) for g in hooks.generations if g.get("user") == "team-a")
    assert billed > 0
    assert value(snap, "polyroute_cost_usd_total", key="team-a") == pytest.approx(billed, rel=1e-9)
    fallback = [a for a in hooks.attempts if a["generation_id"] == fb["id"]]
    assert [(a["index"], a["code"]) for a in fallback] == [(0, "overloaded"), (1, "success")]
    assert fallback[0]["provider"] == "broken" and fallback[1]["provider"] == fb["provider"].lower()
    assert fallback[0]["status"] == 503 and fallback[0]["message"]


def test_a_slow_or_raising_hook_never_delays_or_fails_a_request(
    mock_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    reported: list[BaseException | None] = []
    # A hook's exception is reported as unraisable (sys.unraisablehook); collected here, so that none is left to
    # surface in a later test.
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reported.append(u.exc_value))

    def slow_and_raising(event: dict[str, Any]) -> None:
        calls.append(1)
        time.sleep(0.4)
        raise RuntimeError("hook failure (expected by the test)")

    r = router(mock_url, {"on_attempt": slow_and_raising})
    t0 = time.monotonic()
    for i in range(5):
        r.chat(req(text=f"n{i}", provider={"order": ["alpha"]}))
    # Five hook calls take 2 s on the hook thread; the requests did not wait for them.
    assert time.monotonic() - t0 < 1.5
    assert value(r.metrics(), "polyroute_requests_total", status="ok") == 5
    wait_for(lambda: len(reported) == 5)
    assert len(calls) == 5
    assert all(isinstance(e, RuntimeError) for e in reported)


def test_hooks_must_be_callables() -> None:
    with pytest.raises(TypeError):
        polyroute.Router(hooks={"on_attempt": 3}, read_env=False)
    with pytest.raises(TypeError):
        polyroute.Router(hooks=object(), read_env=False)
