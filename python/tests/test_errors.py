from __future__ import annotations

import pytest

import polyroute
from polyroute import _polyroute
from polyroute.errors import ERROR_CLASSES, from_core

from .conftest import hi


def test_table_covers_every_core_code() -> None:
    codes = _polyroute.all_codes()
    assert len(codes) == len(set(codes)) >= 15
    assert set(ERROR_CLASSES) == set(codes)


@pytest.mark.parametrize("code", _polyroute.all_codes())
def test_every_code_builds_its_class(code: str) -> None:
    err = from_core("boom", code=code, status=418, retryable=True, attempts=[], body=None)
    assert isinstance(err, polyroute.PolyrouteError)
    assert type(err) is ERROR_CLASSES[code]
    assert (err.code, err.status, err.retryable, str(err)) == (code, 418, True, "boom")
    assert err.body["error"]["message"] == "boom"


def test_families() -> None:
    assert issubclass(polyroute.ModelNotFoundError, polyroute.NotFoundError)
    assert issubclass(polyroute.NoEndpointsError, polyroute.NotFoundError)
    assert issubclass(polyroute.InvalidRequestError, ValueError)
    assert ERROR_CLASSES["capacity_exhausted"] is polyroute.RateLimitedError
    assert ERROR_CLASSES["temporarily_unavailable"] is polyroute.ProviderUnavailableError
    assert ERROR_CLASSES["payment_required"] is polyroute.PaymentRequiredError


def test_unknown_model_carries_envelope(basic_router: polyroute.Router) -> None:
    with pytest.raises(polyroute.ModelNotFoundError) as info:
        basic_router.plan(hi("test/open-7b"))
    e = info.value
    assert (e.code, e.status, e.retryable, e.attempts) == ("model_not_found", 400, False, [])
    av = e.body["error"]["availability"]
    assert av["requested_models"] == ["test/open-7b"]
    assert "test/open-70b" in av["fallback_models"]


def test_constraint_filtered_lists_exclusions(basic_router: polyroute.Router) -> None:
    with pytest.raises(polyroute.NoEndpointsError) as info:
        basic_router.plan(hi(provider={"only": ["nobody"]}))
    e = info.value
    assert e.status == 404
    av = e.body["error"]["availability"]
    assert av["excluded_by"] == ["allowed_providers"]
    assert {x["reason"] for x in av["excluded"]} == {"allowed_providers"}


def test_invalid_request_names_field(basic_router: polyroute.Router) -> None:
    with pytest.raises(polyroute.InvalidRequestError) as info:
        basic_router.plan(hi(provider={"sort": "cheapest"}))
    assert info.value.body["error"]["metadata"]["field"].startswith("provider.sort")
    with pytest.raises(ValueError):
        polyroute.validate_request({"messages": []})


def test_bad_catalog_lists_issues(tmp_path: object) -> None:
    with pytest.raises(polyroute.CatalogError) as info:
        polyroute.Router({"providers": [], "models": [{"id": "x", "pricing": {"prompt": "-1", "completion": "0"}}]})
    assert info.value.code == "invalid_catalog"
    assert "models[0]" in str(info.value)


def test_non_json_values_are_type_errors(basic_router: polyroute.Router) -> None:
    with pytest.raises(TypeError):
        basic_router.plan({"model": "test/open-70b", "messages": [{"role": "user", "content": object()}]})
    with pytest.raises(TypeError):
        basic_router.plan({1: "x"})
    with pytest.raises(ValueError):
        basic_router.plan(hi(temperature=float("nan")))
