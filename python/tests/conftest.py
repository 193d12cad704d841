from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import polyroute

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(scope="session")
def basic_router() -> polyroute.Router:
    slugs = ["alpha", "beta", "gamma", "delta", "openai", "anthropic", "google-ai-studio"]
    return polyroute.Router(FIXTURES / "basic.json", {s: {"no_auth": True} for s in slugs}, read_env=False)


def hi(model: str = "test/open-70b", **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


@pytest.fixture(scope="session")
def mock_url() -> Iterator[str]:
    from .mock import mock_binary, running_mock

    if mock_binary() is None:
        if os.environ.get("POLYROUTE_MOCK_BIN"):
            pytest.fail(f"POLYROUTE_MOCK_BIN={os.environ['POLYROUTE_MOCK_BIN']} does not exist")
        pytest.skip("polyroute-mock is not built (cargo build -p polyroute-mock)")
    with running_mock() as url:
        yield url


@pytest.fixture(scope="session")
def mock_router(mock_url: str) -> polyroute.Router:
    from .mock import catalog, provider_settings

    return polyroute.Router(
        catalog(mock_url), provider_settings(), read_env=False, timeout=10, first_token_timeout=5, idle_timeout=5
    )
