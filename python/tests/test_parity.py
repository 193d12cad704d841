"""The parity table (tests/parity/plan_cost.json): Python's plan and cost give the engine's answers
(plan_cost.expected.json, which the Rust and Node suites compare with too)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import polyroute

from .conftest import REPO

TABLE = json.loads((REPO / "tests" / "parity" / "plan_cost.json").read_text())
EXPECTED = json.loads((REPO / "tests" / "parity" / "plan_cost.expected.json").read_text())


def _router() -> polyroute.Router:
    cfg: dict[str, Any] = dict(TABLE["router"])
    providers = cfg.pop("providers")
    return polyroute.Router(REPO / "tests" / "fixtures" / "basic.json", providers, **cfg)


def test_plan_and_cost_answer_the_parity_table() -> None:
    router = _router()
    plans = [router.plan(c["request"], **c.get("inputs", {})) for c in TABLE["plan"]]
    costs = [router.cost(c["model"], c["usage"], c.get("provider"), **c["inputs"]) for c in TABLE["cost"]]
    assert json.loads(json.dumps(plans)) == EXPECTED["plan"]
    assert json.loads(json.dumps(costs)) == EXPECTED["cost"]


def test_router_options_are_the_engine_config() -> None:
    with pytest.raises(TypeError, match="retry_backof"):
        polyroute.Router(read_env=False, retry_backof=1)
    with pytest.raises(ValueError, match="USD"):
        polyroute.Router(read_env=False, limits={"router_usd": "ten"})
    with pytest.raises(polyroute.PolyrouteError, match='did you mean "openai"'):
        polyroute.Router(None, {"opneai": {"api_key": "sk-test-fake"}}, read_env=False)
    r = polyroute.Router(
        None,
        {"openai": {"api_key": "sk-test-fake", "timeouts": {"first_token_ms": 100}}},
        read_env=False,
        retry_backoff_ms=5,
        sticky_ttl_ms=1000,
        same_endpoint_retries=1,
        limits={"router_usd": "0.5", "user_usd": {"alice": 1}, "default_user_usd": 2},
    )
    assert r.credentials == ["openai"]
