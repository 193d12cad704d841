"""Azure and credential pools through ``Router(providers=...)``: the keys of the one configuration type reach the
engine. A mock of its own per test, so the requests it reports are only this test's."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

import polyroute

from .mock import _model, mock_binary, running_mock

AZ_KEY = "azure-test-fake-key-py"


def _calls(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/__mock/calls", timeout=10) as r:
        reqs: list[dict[str, Any]] = json.load(r)["requests"]
        return reqs


def _hi(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}


@pytest.fixture()
def own_mock() -> Any:
    if mock_binary() is None:
        pytest.skip("polyroute-mock is not built (cargo build -p polyroute-mock)")
    with running_mock() as url:
        yield url


def test_azure_settings_route_to_the_dated_api(own_mock: str) -> None:
    cat = {
        "version": 1,
        "providers": [
            {
                "slug": "azure",
                "name": "Azure",
                "dialect": "azure-openai",
                "base_url": "https://YOUR-RESOURCE.openai.azure.com/openai/v1",
            }
        ],
        "models": [_model("test/az", [("azure", "0.000001")])],
    }
    # No resource: excluded with settings_missing, nothing sent.
    bare = polyroute.Router(cat, {"azure": {"api_key": AZ_KEY}}, read_env=False)
    with pytest.raises(polyroute.PolyrouteError) as err:
        bare.chat(_hi("test/az"))
    assert "settings_missing" in err.value.body["error"]["availability"]["excluded_by"]
    assert _calls(own_mock) == []

    router = polyroute.Router(
        cat,
        {
            "azure": {
                "api_key": AZ_KEY,
                "base_url": f"{own_mock}/openai",
                "deployments": {"test/az": "py-dep"},
                "api_version": "2024-10-21",
            }
        },
        read_env=False,
    )
    out = router.chat(_hi("test/az"))
    assert out["choices"][0]["message"]["content"] == "mock: hi"
    (got,) = _calls(own_mock)
    assert got["path"] == "/openai/deployments/py-dep/chat/completions"
    assert got["query"] == "api-version=2024-10-21"
    assert got["headers"]["api-key"] == AZ_KEY
    assert "authorization" not in got["headers"]
    assert got["body"]["model"] == "py-dep"


def test_a_pool_follows_a_revoked_key_with_the_next(own_mock: str) -> None:
    cat = {
        "version": 1,
        "providers": [{"slug": "alpha", "name": "Alpha", "dialect": "openai", "base_url": f"{own_mock}/v1"}],
        "models": [_model("test/pool", [("alpha", "0.000001")])],
    }
    revoked, good = "sk-test-py-revoked-fake", "sk-test-py-good-fake"
    router = polyroute.Router(
        cat,
        {"alpha": {"api_keys": [revoked, good]}},
        read_env=False,
    )
    # The mock answers 401 to the revoked key, whatever the call.
    req = urllib.request.Request(
        f"{own_mock}/__mock/key-fault", data=json.dumps({"key": revoked, "fault": "401"}).encode(), method="POST"
    )
    req.add_header("content-type", "application/json")
    urllib.request.urlopen(req, timeout=10).close()
    out = router.chat(_hi("test/pool"))
    assert out["choices"][0]["message"]["content"] == "mock: hi"
    auths = [c["headers"]["authorization"] for c in _calls(own_mock)]
    assert auths == [f"Bearer {revoked}", f"Bearer {good}"]
    # The revoked key rests: the next request uses the good one alone.
    router.chat(_hi("test/pool"))
    assert [c["headers"]["authorization"] for c in _calls(own_mock)][2:] == [f"Bearer {good}"]
    assert revoked not in json.dumps(out) and good not in json.dumps(out)
