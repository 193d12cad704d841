"""Router.chat / achat / stream / astream / generation against the loopback mock providers."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import polyroute


def req(model: str = "test/model", text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def test_chat(mock_router: polyroute.Router) -> None:
    out = mock_router.chat(req(provider={"order": ["alpha"]}))
    assert out["object"] == "chat.completion"
    assert out["provider"] == "Alpha"
    assert out["choices"][0]["message"]["content"] == "mock: hello"
    assert out["usage"]["cost"] > 0
    record = mock_router.generation(out["id"])
    assert record is not None and record["id"] == out["id"] and record["provider"] == "alpha"
    assert mock_router.generation("gen-does-not-exist") is None


def test_provider_routing(mock_router: polyroute.Router) -> None:
    out = mock_router.chat(req(provider={"order": ["beta"], "allow_fallbacks": False}))
    assert out["provider"] == "Beta"
    out = mock_router.chat(req(provider={"only": ["beta"]}))
    assert out["provider"] == "Beta"


def test_dialects(mock_router: polyroute.Router) -> None:
    for model in ("test/claude", "test/gemini"):
        out = mock_router.chat(req(model))
        assert out["choices"][0]["message"]["content"] == "mock: hello", model


def test_model_fallback(mock_router: polyroute.Router) -> None:
    out = mock_router.chat(req("test/broken", models=["test/model"], metadata=None))
    assert out["model"] == "test/model"
    record = mock_router.generation(out["id"])
    assert record is not None
    assert [a["code"] for a in record["attempts"]][0] == "overloaded"


def test_errors(mock_router: polyroute.Router) -> None:
    with pytest.raises(polyroute.ProviderUnavailableError) as info:
        mock_router.chat(req("test/broken"))
    e = info.value
    assert (e.status, e.code, e.retryable) == (503, "temporarily_unavailable", True)
    assert [a["provider"] for a in e.attempts] == ["broken"]
    assert e.body["error"]["metadata"]["previous_errors"][0]["status"] == 503
    with pytest.raises(polyroute.RateLimitedError) as info2:
        mock_router.chat(req("test/limited"))
    assert info2.value.status == 429
    with pytest.raises(polyroute.InvalidRequestError):
        mock_router.chat({"model": "test/model", "messages": "hello"})


def test_tools(mock_router: polyroute.Router) -> None:
    tools = [{"type": "function", "function": {"name": "GetWeatherArgs", "parameters": {"type": "object"}}}]
    out = mock_router.chat(req("test/tools", tools=tools))
    calls = out["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["GetWeatherArgs", "get_stock_price"]


def test_stream(mock_router: polyroute.Router) -> None:
    chunks = list(mock_router.stream(req(stream=True)))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "mock: hello"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["usage"]["cost"] > 0


def test_stream_error_raises(mock_router: polyroute.Router) -> None:
    with pytest.raises(polyroute.ProviderUnavailableError):
        list(mock_router.stream(req("test/broken", stream=True)))
    with pytest.raises(polyroute.ProviderUnavailableError):
        mock_router.stream_sse(req("test/broken", stream=True))


def test_stream_sse(mock_router: polyroute.Router) -> None:
    events = list(mock_router.stream_sse(req(stream=True)))
    assert all(isinstance(e, bytes) and e.startswith(b"data: ") and e.endswith(b"\n\n") for e in events)
    assert events[-1] == b"data: [DONE]\n\n"
    it = mock_router.stream_sse(req(stream=True))
    next(it)
    it.close()
    assert list(it) == []


def slow_stream(mock_url: str) -> tuple[polyroute.Router, dict[str, Any], Callable[[], int]]:
    """A router whose upstream sends a chunk every 100 ms, a long streamed request for it, and a reader of the mock's
    count of aborted streams."""
    import urllib.request

    from .mock import catalog, provider_settings

    def aborted() -> int:
        with urllib.request.urlopen(f"{mock_url}/__mock/calls", timeout=10) as r:
            n: int = json.load(r)["aborted_streams"]
            return n

    settings = provider_settings()
    settings["alpha"] = {**settings["alpha"], "headers": {"x-mock-fault": "slow-chunks=100"}}
    router = polyroute.Router(catalog(mock_url), settings, read_env=False)
    long = req(text="one two three four five six seven eight nine ten eleven twelve", stream=True)
    long["provider"] = {"order": ["alpha"], "allow_fallbacks": False}
    return router, long, aborted


def test_closing_a_stream_cancels_upstream(mock_url: str) -> None:
    """The blocking streams read ahead on the engine's threads; closing one after its first item still cancels
    the upstream request (the mock sees the stream aborted), for chunk dicts, SSE events, the HTTP surface and
    Messages events."""
    router, long, aborted = slow_stream(mock_url)
    body = json.dumps(long).encode()
    for open_stream in (
        lambda: router.stream(long),
        lambda: router.stream_sse(long),
        lambda: router.http("POST", "/api/v1/chat/completions", [("content-type", "application/json")], body)[2],
        lambda: router.messages({**long, "max_tokens": 64}),
    ):
        before = aborted()
        it = open_stream()
        assert next(iter(it))  # type: ignore[call-overload]
        it.close()  # type: ignore[union-attr]
        for _ in range(100):
            if aborted() > before:
                break
            time.sleep(0.05)
        assert aborted() == before + 1


def test_closing_an_async_stream_cancels_upstream(mock_url: str) -> None:
    """``aclose`` (and ``close``) of an async chunk or event iterator after its first item cancels the upstream
    request, a read waiting meanwhile ends, and the iterator ends."""
    import contextlib

    router, long, aborted = slow_stream(mock_url)

    async def main() -> None:
        async def chunks() -> Any:
            return router.astream(long)

        async def events() -> Any:
            return await router.amessages({**long, "max_tokens": 64})

        for open_stream, by_aclosing in ((chunks, False), (events, False), (chunks, True), (events, True)):
            before = aborted()
            it = await open_stream()
            if by_aclosing:
                async with contextlib.aclosing(it):
                    assert await it.__anext__()
            else:
                assert await it.__anext__()
                # Take what is already there, up to a read that waits (the next chunk is 100 ms away).
                waiting = it.__anext__()
                for _ in range(20):
                    if not waiting.done():
                        break
                    assert await waiting
                    waiting = it.__anext__()
                assert not waiting.done()
                await asyncio.sleep(0.01)
                it.close()
                with pytest.raises(StopAsyncIteration):
                    await asyncio.wait_for(waiting, 5)
            with pytest.raises(StopAsyncIteration):
                await it.__anext__()
            for _ in range(100):
                if aborted() > before:
                    break
                await asyncio.sleep(0.05)
            assert aborted() == before + 1

    asyncio.run(main())


def test_async(mock_router: polyroute.Router) -> None:
    async def main() -> None:
        outs = await asyncio.gather(*(mock_router.achat(req(text=f"n{i}")) for i in range(20)))
        assert [o["choices"][0]["message"]["content"] for o in outs] == [f"mock: n{i}" for i in range(20)]
        chunks = [c async for c in mock_router.astream(req(stream=True))]
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "mock: hello"
        with pytest.raises(polyroute.ProviderUnavailableError):
            await mock_router.achat(req("test/broken"))
        with pytest.raises(polyroute.ProviderUnavailableError):
            async for _ in mock_router.astream(req("test/broken")):
                pass

    asyncio.run(main())


async def read_counting_waits(it: Any) -> tuple[list[Any], int]:
    """Every item of the async iterator ``it``, and how many of its ``__anext__`` futures were not done yet when
    returned (the item had to be waited for). After the first item it lets the rest of the burst arrive."""
    items: list[Any] = []
    waits = 0
    while True:
        fut = it.__anext__()
        waits += 0 if fut.done() else 1
        try:
            items.append(await fut)
        except StopAsyncIteration:
            return items, waits
        if len(items) == 1:
            await asyncio.sleep(0.3)


def test_async_streams_answer_what_was_read_ahead_at_once() -> None:
    """``async for`` over a burst of 64 streamed pieces: what the engine already read ahead is answered by a future
    that is already done (no task, no turn of the event loop per item), in order, for ``astream``, the byte stream
    of ``ahttp`` (the AsyncHTTPTransport's) and Messages events. Two ``__anext__`` calls made before either is
    awaited are answered in the order they were made."""
    from .mock import catalog, provider_settings, running_mock

    with running_mock("--keep-requests", "0", "--chunks", "64") as base:
        router = polyroute.Router(catalog(base), provider_settings(), read_env=False)
        body = req(text="a burst", stream=True, provider={"order": ["alpha"], "allow_fallbacks": False})
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in router.stream(body) if c["choices"])
        assert len(text) > 0

        def content(chunks: list[dict[str, Any]]) -> str:
            return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])

        async def main() -> None:
            chunks, waits = await read_counting_waits(router.astream(body))
            assert content(chunks) == text and len(chunks) >= 64
            assert waits <= 8, f"{waits} of {len(chunks) + 1} reads waited"

            status, _, stream = await router.ahttp(
                "POST", "/api/v1/chat/completions", [("content-type", "application/json")], json.dumps(body).encode()
            )
            assert status == 200
            events, waits = await read_counting_waits(stream)
            data = [json.loads(e[6:]) for e in b"".join(events).decode().split("\n\n") if e.startswith("data: {")]
            assert content(data) == text and b"".join(events).endswith(b"data: [DONE]\n\n")
            assert waits <= 8, f"{waits} of {len(events) + 1} reads waited"

            it = await router.amessages({**body, "max_tokens": 64})
            msg_events, waits = await read_counting_waits(it)
            deltas = [e["delta"]["text"] for e in msg_events if e["type"] == "content_block_delta"]
            assert "".join(deltas) == text and msg_events[-1]["type"] == "message_stop"
            assert waits <= 8, f"{waits} of {len(msg_events) + 1} reads waited"

            # Two reads in flight at once: the first made is answered with the first chunk.
            it = router.astream(body)
            first, second = it.__anext__(), it.__anext__()
            rest = [c async for c in it]
            got = [await first, await second, *rest]
            assert got[0]["choices"][0]["delta"].get("role") == "assistant"
            assert content(got) == text

        asyncio.run(main())


def test_async_cancel(mock_router: polyroute.Router, mock_url: str) -> None:
    async def main() -> None:
        task = asyncio.ensure_future(mock_router.achat(req("test/model", text="slow")))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_achat_needs_a_loop(mock_router: polyroute.Router) -> None:
    with pytest.raises(TypeError, match="event loop"):
        mock_router.achat(req())


def test_threads_share_one_router(mock_router: polyroute.Router) -> None:
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for n in range(10):
                out = mock_router.chat(req(text=f"{i}-{n}"))
                assert out["choices"][0]["message"]["content"] == f"mock: {i}-{n}"
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_router_used_before_fork_works_in_child(mock_router: polyroute.Router) -> None:
    assert mock_router.chat(req(text="parent"))["choices"][0]["message"]["content"] == "mock: parent"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            out = mock_router.chat(req(text="child"))
            chunks = list(mock_router.stream(req(text="child", stream=True)))
            ok = out["choices"][0]["message"]["content"] == "mock: child" and len(chunks) > 1
            os.write(w, b"ok" if ok else b"bad")
            code = 0
        except BaseException as e:  # noqa: BLE001
            os.write(w, repr(e).encode()[:200])
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        said = f.read()
    _, status = os.waitpid(pid, 0)
    assert said == b"ok" and os.waitstatus_to_exitcode(status) == 0
    assert mock_router.chat(req(text="again"))["choices"][0]["message"]["content"] == "mock: again"


def test_cancelled_achat_is_recorded_and_billed_once(mock_url: str, tmp_path: Path) -> None:
    """A cancelled task stops waiting, not the generation: the provider's answer is recorded as cancelled, once."""
    import subprocess
    import sys

    from .mock import KEY, _model, catalog, provider_settings

    cat = catalog(mock_url)
    cat["providers"].append(
        {
            "slug": "slow",
            "name": "Slow",
            "dialect": "openai",
            "base_url": f"{mock_url}/v1",
            "api_key_env": "POLYROUTE_TEST_NEVER_SET_SLOW",
        }
    )
    cat["models"].append(_model("test/slow", [("slow", "0.000001")]))
    providers = provider_settings()
    providers["slow"] = {"api_key": KEY, "headers": {"x-mock-fault": "slow-first-byte=300"}}
    ledger = tmp_path / "ledger.sqlite"
    router = polyroute.Router(cat, providers, read_env=False, ledger_path=str(ledger))

    def records() -> list[dict[str, Any]]:
        # Read the file from another process: Python's sqlite3 is a second copy of SQLite, and two copies in one
        # process do not see each other's POSIX locks, so closing this reader would delete the router's live WAL
        # (SQLite's "multiple copies of SQLite in one process" hazard; see python/README.md, the ledger file).
        script = (
            "import json, sqlite3, sys\n"
            "db = sqlite3.connect(sys.argv[1])\n"
            "print(json.dumps([r[0] for r in db.execute('SELECT record FROM generations')]))\n"
            "db.close()\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", script, str(ledger)], capture_output=True, text=True, check=True, timeout=30
        )
        return [json.loads(r) for r in json.loads(out.stdout)]

    async def main() -> None:
        task = asyncio.ensure_future(router.achat(req("test/slow", text="cancel me"), user="u"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    for _ in range(400):
        if records():
            break
        time.sleep(0.025)
    recs = records()
    assert len(recs) == 1, (recs, [l for l in router.metrics_text().splitlines() if "_total{" in l])
    assert recs[0]["cancelled"] is True
    assert float(recs[0]["cost"]) > 0
    assert recs[0]["user"] == "u"
    time.sleep(0.2)
    assert len(records()) == 1, "billed once"
