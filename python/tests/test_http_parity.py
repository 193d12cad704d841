"""The HTTP parity table (tests/parity/http.json) through the httpx transports in process: the answers equal the
engine's (http.expected.json, written by the Rust test), as the gateway's and Node's do. Sync and async transports,
on httpx and (when installed) httpx2, each with a fresh router."""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import Any

import httpx
import pytest

import polyroute

from .conftest import REPO

PARITY = REPO / "tests" / "parity"
TABLE_TEXT = (PARITY / "http.json").read_text()
EXPECTED = json.loads((PARITY / "http.expected.json").read_text())


def _table(mock_url: str) -> dict[str, Any]:
    table: dict[str, Any] = json.loads(TABLE_TEXT)
    table["catalog"] = json.loads(json.dumps(table["catalog"]).replace("{mock}", mock_url))
    return table


def _router(table: dict[str, Any]) -> polyroute.Router:
    cfg = dict(table["router"])
    providers = cfg.pop("providers")
    return polyroute.Router(table["catalog"], providers, **cfg)


def _request(case: dict[str, Any], gens: list[str | None]) -> tuple[str, str, dict[str, str], bytes | None]:
    path: str = case["path"]
    for i, g in enumerate(gens):
        if g is not None:
            path = path.replace(f"{{gen:{i}}}", g)
    if "raw" in case:
        body: bytes | None = case["raw"].encode()
    elif "body" in case:
        body = json.dumps(case["body"]).encode()
    else:
        body = None
    return case["method"], path, dict(case.get("headers", {})), body


def _mask(v: Any, keys: list[str]) -> Any:
    if isinstance(v, dict):
        return {k: ("*" if k in keys and x is not None else _mask(x, keys)) for k, x in v.items()}
    if isinstance(v, list):
        return [_mask(x, keys) for x in v]
    if isinstance(v, str) and v.startswith("gen-"):
        return "gen-*"
    return v


def _record(table: dict[str, Any], status: int, headers: Any, body: bytes) -> dict[str, Any]:
    ct = headers.get("content-type")
    ct = ct.split(";")[0].strip() if ct is not None else None
    text = body.decode()
    doc: Any
    if ct == "text/event-stream":
        doc = []
        for ev in text.split("\n\n"):
            if ev.startswith("data: "):
                d = ev[len("data: ") :]
                try:
                    doc.append(json.loads(d))
                except ValueError:
                    doc.append(d)
    else:
        try:
            doc = json.loads(text)
        except ValueError:
            doc = text
    return {
        "status": status,
        "content_type": ct,
        "generation_header": headers.get("x-generation-id") is not None,
        "body": _mask(doc, table["mask_keys"]),
    }


def _check(got: list[dict[str, Any]]) -> None:
    assert len(got) == len(EXPECTED)
    for i, (g, w) in enumerate(zip(got, EXPECTED, strict=True)):
        assert g == w, f"request {i}: {got[i]}"


def _modules() -> list[Any]:
    mods = [httpx]
    try:
        mods.append(importlib.import_module("httpx2"))
    except ImportError:
        pass
    return mods


@pytest.mark.parametrize("mod", _modules(), ids=lambda m: str(m.__name__))
def test_the_sync_transport_answers_the_http_parity_table(mock_url: str, mod: Any) -> None:
    table = _table(mock_url)
    transport = polyroute.HTTPTransport(_router(table))
    gens: list[str | None] = []
    got = []
    with mod.Client(transport=transport, base_url="http://polyroute.local") as client:
        for case in table["requests"]:
            method, path, headers, body = _request(case, gens)
            with client.stream(method, path, headers=headers, content=body) as r:
                data = r.read()
                got.append(_record(table, r.status_code, r.headers, data))
                gens.append(r.headers.get("x-generation-id"))
    _check(got)


def test_the_async_transport_answers_the_http_parity_table(mock_url: str) -> None:
    table = _table(mock_url)
    transport = polyroute.AsyncHTTPTransport(_router(table))

    async def run() -> list[dict[str, Any]]:
        gens: list[str | None] = []
        got = []
        async with httpx.AsyncClient(transport=transport, base_url="http://polyroute.local/") as client:
            for case in table["requests"]:
                method, path, headers, body = _request(case, gens)
                async with client.stream(method, path, headers=headers, content=body) as r:
                    data = await r.aread()
                    got.append(_record(table, r.status_code, r.headers, data))
                    gens.append(r.headers.get("x-generation-id"))
        return got

    _check(asyncio.run(run()))
