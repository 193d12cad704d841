from __future__ import annotations

import json
import threading
from decimal import Decimal
from pathlib import Path

import pytest

import polyroute

from .conftest import FIXTURES, hi


def test_catalog_sources_agree(tmp_path: Path) -> None:
    text = (FIXTURES / "basic.json").read_text()
    routers = [
        polyroute.Router(FIXTURES / "basic.json"),
        polyroute.Router(str(FIXTURES / "basic.json")),
        polyroute.Router(text),
        polyroute.Router(text.encode()),
        polyroute.Router(json.loads(text)),
    ]
    ids = [[m["id"] for m in r.models()] for r in routers]
    assert all(x == ids[0] for x in ids) and len(ids[0]) > 5


def test_embedded_catalog() -> None:
    r = polyroute.Router()
    assert len(r.models()) > 100
    assert r.models(search="gpt")


def test_missing_catalog_file() -> None:
    with pytest.raises(polyroute.InternalError, match="cannot read catalog"):
        polyroute.Router("/nonexistent/catalog.json")


def test_overlay_adds_endpoint() -> None:
    overlay = {
        "providers": [{"slug": "mine", "name": "Mine", "dialect": "openai", "base_url": "http://127.0.0.1:1/v1"}],
        "models": [
            {
                "id": "test/open-70b",
                "endpoints": [
                    {
                        "provider": "mine",
                        "provider_name": "Mine",
                        "tag": "mine",
                        "context_length": 8192,
                        "pricing": {"prompt": "0", "completion": "0"},
                    }
                ],
            }
        ],
    }
    r = polyroute.Router(FIXTURES / "basic.json", {"mine": {"no_auth": True}}, overlay=overlay, read_env=False)
    p = r.plan(hi(provider={"sort": "price"}))
    assert p["attempts"][0]["endpoint"] == "mine"
    r = polyroute.Router(FIXTURES / "basic.json", {"mine": {"no_auth": True}}, overlay=json.dumps(overlay))
    assert r.plan(hi(provider={"only": ["mine"]}))["attempts"][0]["endpoint"] == "mine"
    assert r.credentials == ["mine"] or "mine" in r.credentials


def test_plan_accepts_json_text(basic_router: polyroute.Router) -> None:
    a = basic_router.plan(hi(provider={"sort": "price"}))
    b = basic_router.plan(json.dumps(hi(provider={"sort": "price"})))
    c = basic_router.plan(json.dumps(hi(provider={"sort": "price"})).encode())
    assert a == b == c


def test_plan_is_deterministic_per_seed(basic_router: polyroute.Router) -> None:
    plans = {json.dumps(basic_router.plan(hi(), seed=s)["attempts"]) for s in range(30)}
    assert len(plans) > 1
    assert basic_router.plan(hi(), seed=7) == basic_router.plan(hi(), seed=7)


def test_plan_credentials_and_health(basic_router: polyroute.Router) -> None:
    p = basic_router.plan(hi(provider={"sort": "price"}), credentials=["gamma"])
    assert [a["provider"] for a in p["attempts"]] == ["gamma"]
    assert "no_credentials" in {e["reason"] for e in p["excluded"]}
    for seed in range(5):
        p = basic_router.plan(hi(), seed=seed, health={"alpha/fp8": {"recent_outage": True}})
        assert p["attempts"][-1]["endpoint"] == "alpha/fp8"


def test_cost(basic_router: polyroute.Router) -> None:
    c = basic_router.cost("openai/gpt-test", {"prompt_tokens": 1000, "completion_tokens": 200})
    assert Decimal(c["total"]) == Decimal("0.0045")
    assert c["insured"] is False
    with pytest.raises(polyroute.InvalidRequestError):
        basic_router.cost("test/open-70b", {"prompt_tokens": 1}, "nobody")
    with pytest.raises(polyroute.InvalidRequestError):
        basic_router.cost("test/open-70b", {"prompt_tokens": -1})


def test_models_filters(basic_router: polyroute.Router) -> None:
    every = basic_router.models()
    tools = basic_router.models(supported_parameter="tools")
    assert tools and all("tools" in m["supported_parameters"] for m in tools)
    assert basic_router.models(supported_parameters=["tools"]) == tools
    images = basic_router.models(input_modality="image")
    assert all("image" in m["architecture"]["input_modalities"] for m in images)
    alpha = basic_router.models(provider="alpha")
    assert alpha and all(any(e["provider"] == "alpha" for e in m["endpoints"]) for m in alpha)
    assert basic_router.models(provider="Beta Cloud") == basic_router.models(provider="beta")
    cheap = basic_router.models(max_prompt_price=0.2)
    assert cheap and all(Decimal(m["pricing"]["prompt"]) * 1_000_000 <= Decimal("0.2") for m in cheap)
    assert basic_router.models(max_prompt_price="0.2") == cheap
    assert len(every) > len(cheap)
    assert basic_router.models(input_modality=None) == every
    with pytest.raises(polyroute.InvalidRequestError):
        basic_router.models(colour="blue")


def test_many_threads_share_one_router(basic_router: polyroute.Router) -> None:
    request = hi(provider={"sort": "price"})
    expected = basic_router.plan(request, seed=3)
    failures: list[str] = []
    barrier = threading.Barrier(16)

    def work(i: int) -> None:
        barrier.wait()
        for n in range(200):
            got = basic_router.plan(request, seed=3)
            if got != expected:
                failures.append(f"thread {i} iteration {n}")
            if n % 50 == 0:
                basic_router.cost("openai/gpt-test", {"prompt_tokens": n, "completion_tokens": i})

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_router_is_immutable(basic_router: polyroute.Router) -> None:
    with pytest.raises(AttributeError):
        basic_router.catalog = None  # type: ignore[attr-defined]


# A request dict is read straight into the core's typed request (no JSON in between); JSON text goes through the
# core's JSON parser. Both must accept, reject and name fields alike.
_M = [{"role": "user", "content": "hi"}]
_SAME_AS_TEXT: list[object] = [
    hi(provider={"order": [" alpha "], "sort": {"by": "price", "partition": "none"}}, temperature=0.5),
    hi(
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
        reasoning={"effort": "high"},
        max_tokens=100,
        provider={"max_price": {"prompt": 5, "completion": "10.5"}, "data_collection": "deny"},
    ),
    hi(models=["openai/gpt-test"], provider={"preferred_min_throughput": {"p50": 10}, "quantizations": ["fp8"]}),
    {"messages": _M},
    {"model": "test/open-70b"},
    {"model": 5, "messages": _M},
    {"model": "test/open-70b", "messages": "x"},
    {"model": "test/open-70b", "messages": [{"role": "robot", "content": "x"}]},
    {"model": "test/open-70b", "messages": [{"content": "x"}]},
    {"model": "test/open-70b", "messages": [5]},
    hi(provider={"sort": {"by": "price", "x": 1}}),
    hi(provider={"quantizations": ["fp9"]}),
    hi(provider={"data_collection": 1}),
    hi(provider={"data_collection": {"deny": 1, "x": 2}}),
    hi(provider={"bogus": 1}),
    hi(provider={"max_price": {"prompt": -1}}),
    hi(provider=["order"]),
    hi(max_tokens=-1),
    hi(max_tokens=1.5),
    hi(max_tokens=0),
    hi(temperature=3),
    hi(stream="yes"),
    hi(tools=[{"function": {}}]),
    hi(models=[1]),
    [1, 2],
]


def _outcome(router: polyroute.Router, request: object) -> tuple[object, ...]:
    try:
        return ("ok", router.plan(request))  # type: ignore[arg-type]
    except polyroute.PolyrouteError as e:
        return (type(e).__name__, str(e), e.body)


@pytest.mark.parametrize("request_", _SAME_AS_TEXT)
def test_dict_and_json_text_agree(basic_router: polyroute.Router, request_: object) -> None:
    got = _outcome(basic_router, request_)
    assert got == _outcome(basic_router, json.dumps(request_))
    if got[0] == "InvalidRequestError":
        with pytest.raises(polyroute.InvalidRequestError) as info:
            polyroute.validate_request(request_)  # type: ignore[arg-type]
        assert str(info.value) == got[1]


def test_invalid_request_names_nested_fields(basic_router: polyroute.Router) -> None:
    for request, field in [
        ({"model": "test/open-70b", "messages": [{"role": "robot"}]}, "messages[0].role"),
        (hi(provider={"quantizations": ["fp9"]}), "provider.quantizations[0]"),
        (hi(provider={"max_price": {"prompt": "abc"}}), "provider.max_price.prompt"),
        ({"model": "test/open-70b"}, "$"),
    ]:
        with pytest.raises(polyroute.InvalidRequestError) as info:
            basic_router.plan(request)
        assert info.value.body["error"]["metadata"]["field"] == field


def test_request_python_types(basic_router: polyroute.Router) -> None:
    class Slug(str):
        pass

    base = basic_router.plan(hi(provider={"sort": "price"}, max_tokens=10))
    # A str subclass, a tuple for a list, and an int that came from a bool read as JSON would read them.
    messages = ({"role": "user", "content": "hi"},)
    odd = {"model": Slug("test/open-70b"), "messages": messages, "provider": {"sort": "price"}, "max_tokens": True + 9}
    assert basic_router.plan(odd) == base
    with pytest.raises(ValueError, match="64-bit"):
        basic_router.plan(hi(seed=2**64))
    with pytest.raises(TypeError, match="dict keys must be str"):
        basic_router.plan(hi(metadata={1: "x"}))
    with pytest.raises(TypeError, match="not JSON-serializable"):
        basic_router.plan(hi(extra_thing={1, 2}))
    with pytest.raises(ValueError, match="NaN"):
        basic_router.plan(hi(provider={"preferred_max_latency": float("inf")}))


def test_plan_result_is_plain_json(basic_router: polyroute.Router) -> None:
    from polyroute.types import Attempt, Plan, UnitPrices

    p = basic_router.plan(hi(provider={"sort": "price"}))
    assert json.loads(json.dumps(p)) == p
    # Only the NotRequired keys may be missing.
    assert set(p) <= set(Plan.__annotations__) and set(Plan.__annotations__) - set(p) <= {"router"}
    assert p["attempts"]
    for a in p["attempts"]:
        assert set(a) <= set(Attempt.__annotations__)
        assert set(Attempt.__annotations__) - set(a) <= {"max_completion_tokens"}
        assert set(a["prices"]) == set(UnitPrices.__annotations__)
        assert all(isinstance(v, str) and Decimal(v) >= 0 for v in a["prices"].values())
        assert type(a["context_length"]) is int and type(a["model_index"]) is int
    assert type(p["fallback_costs_more"]) is bool
    # Fresh objects on every call: mutating one result does not leak into the next.
    p["attempts"][0]["prices"]["prompt"] = "changed"
    assert basic_router.plan(hi(provider={"sort": "price"}))["attempts"][0]["prices"]["prompt"] != "changed"
