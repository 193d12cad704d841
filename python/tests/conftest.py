from __future__ import annotations

from pathlib import Path

import pytest

import polyroute

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(scope="session")
def basic_router() -> polyroute.Router:
    return polyroute.Router(FIXTURES / "basic.json")


def hi(model: str = "test/open-70b", **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
