"""The loopback mock provider (crates/polyroute-mock) and a small catalog whose providers point at it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-test-fake-0123456789"


def mock_binary() -> Path | None:
    explicit = os.environ.get("POLYROUTE_MOCK_BIN")
    candidates = [Path(explicit)] if explicit else []
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    candidates += [target / "release" / "polyroute-mock", target / "debug" / "polyroute-mock"]
    return next((p for p in candidates if p.is_file()), None)


@contextmanager
def running_mock(*args: str) -> Iterator[str]:
    """Start the mock on a free loopback port; yield its base URL; stop it by PID."""
    binary = mock_binary()
    if binary is None:
        raise RuntimeError("polyroute-mock is not built: cargo build -p polyroute-mock")
    wire = REPO.parent / "shared" / "data" / "wire"
    extra = ["--wire-dir", str(wire)] if wire.is_dir() else []
    proc = subprocess.Popen(
        [str(binary), "--port", "0", *extra, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"polyroute-mock did not start: {line!r}")
        yield "http://" + line.removeprefix("listening on ")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def wire_available() -> bool:
    return (REPO.parent / "shared" / "data" / "wire" / "openai").is_dir()


def _endpoint(slug: str, price: str, params: list[str]) -> dict[str, Any]:
    return {
        "provider": slug,
        "provider_name": slug.capitalize(),
        "tag": slug,
        "provider_model_id": f"{slug}-upstream",
        "context_length": 32768,
        "pricing": {"prompt": price, "completion": price},
        "supported_parameters": params,
    }


def _model(model_id: str, endpoints: list[tuple[str, str]]) -> dict[str, Any]:
    params = ["max_tokens", "temperature", "tools", "tool_choice", "response_format", "structured_outputs", "stream"]
    return {
        "id": model_id,
        "name": model_id,
        "created": 1_700_000_000,
        "context_length": 32768,
        "architecture": {
            "modality": "text->text",
            "input_modalities": ["text"],
            "output_modalities": ["text"],
            "tokenizer": "Other",
        },
        "pricing": {"prompt": endpoints[0][1], "completion": endpoints[0][1]},
        "top_provider": {"context_length": 32768, "max_completion_tokens": 4096, "is_moderated": False},
        "supported_parameters": params,
        "endpoints": [_endpoint(slug, price, params) for slug, price in endpoints],
    }


# slug -> (dialect, headers sent to the mock)
PROVIDERS: dict[str, tuple[str, dict[str, str]]] = {
    "alpha": ("openai", {}),
    "beta": ("openai", {}),
    "claude": ("anthropic", {}),
    "gem": ("gemini", {}),
    "broken": ("openai", {"x-mock-fault": "503"}),
    "limited": ("openai", {"x-mock-fault": "429"}),
    "tooly": ("openai", {"x-mock-replay": "openai/chat_completion.parallel_tool_calls.response.json"}),
    "tooly-stream": ("openai", {"x-mock-replay": "openai/stream.parallel_tool_calls.sse"}),
    "schemy": ("openai", {"x-mock-replay": "openai/chat_completion.json_schema.response.json"}),
}


def catalog(base: str) -> dict[str, Any]:
    providers = [
        {
            "slug": slug,
            "name": slug.capitalize(),
            "dialect": dialect,
            "base_url": f"{base}/v1" if dialect == "openai" else base,
            "api_key_env": f"POLYROUTE_TEST_NEVER_SET_{slug.upper().replace('-', '_')}",
        }
        for slug, (dialect, _) in PROVIDERS.items()
    ]
    models = [
        _model("test/model", [("alpha", "0.000001"), ("beta", "0.000002")]),
        _model("test/claude", [("claude", "0.000003")]),
        _model("test/gemini", [("gem", "0.000001")]),
        _model("test/broken", [("broken", "0.0000001")]),
        _model("test/limited", [("limited", "0.0000001")]),
        _model("test/tools", [("tooly", "0.000001")]),
        _model("test/tools-stream", [("tooly-stream", "0.000001")]),
        _model("test/schema", [("schemy", "0.000001")]),
    ]
    return {"version": 1, "providers": providers, "models": models}


def provider_settings() -> dict[str, dict[str, Any]]:
    return {slug: {"api_key": KEY, "headers": headers} for slug, (_, headers) in PROVIDERS.items()}
