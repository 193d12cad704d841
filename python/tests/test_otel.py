"""OpenTelemetry traces: a Python caller's span → polyroute's request span → its attempts, exported over OTLP/HTTP to
a receiver in the test and decoded with ``opentelemetry-proto`` (an independent decoder)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from opentelemetry.propagate import inject
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from opentelemetry.sdk.trace import TracerProvider

import polyroute


@pytest.fixture()
def receiver() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            assert self.path == "/v1/traces"
            bodies.append(self.rfile.read(int(self.headers["content-length"])))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", bodies
    finally:
        server.shutdown()
        server.server_close()
        t.join(timeout=5)


def decode(bodies: list[bytes]) -> list[Span]:
    out: list[Span] = []
    for b in bodies:
        req = ExportTraceServiceRequest()
        req.ParseFromString(b)
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                out.extend(ss.spans)
    return out


def attrs(s: Span) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in s.attributes:
        v = kv.value
        out[kv.key] = getattr(v, v.WhichOneof("value"))
    return out


def test_a_python_callers_span_is_the_parent(mock_url: str, receiver: tuple[str, list[bytes]]) -> None:
    from .mock import catalog, provider_settings

    url, bodies = receiver
    r = polyroute.Router(
        catalog(mock_url),
        provider_settings(),
        read_env=False,
        telemetry={"otlp_endpoint": url, "service_name": "py-test"},
    )
    tracer = TracerProvider().get_tracer("app")
    with tracer.start_as_current_span("app.handle") as caller:
        carrier: dict[str, str] = {}
        inject(carrier)
        out = r.chat(
            {"model": "test/broken", "models": ["test/broken", "test/model"], "messages": [{"role": "user", "content": "hi"}]},
            traceparent=carrier["traceparent"],
        )
    r.flush_telemetry()
    spans = decode(bodies)
    caller_ctx = caller.get_span_context()
    request = [s for s in spans if s.parent_span_id == caller_ctx.span_id.to_bytes(8, "big")]
    assert len(request) == 1, spans
    req_span = request[0]
    assert req_span.trace_id == caller_ctx.trace_id.to_bytes(16, "big")
    assert req_span.name == "chat test/broken"
    a = attrs(req_span)
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "test/broken"
    assert a["gen_ai.response.model"] == "test/model"
    assert a["gen_ai.response.id"] == out["id"]
    assert a["gen_ai.usage.input_tokens"] == out["usage"]["prompt_tokens"]
    assert a["gen_ai.usage.output_tokens"] == out["usage"]["completion_tokens"]
    assert a["polyroute.fallback_index"] == 1
    assert a["polyroute.cost_usd"] == pytest.approx(out["usage"]["cost"])
    assert "gen_ai.input.messages" not in a  # content only when capture_content is set
    attempts = sorted((s for s in spans if s.parent_span_id == req_span.span_id), key=lambda s: s.start_time_unix_nano)
    assert [(attrs(s)["gen_ai.provider.name"], attrs(s)["polyroute.attempt.outcome"]) for s in attempts] == [
        ("broken", "overloaded"),
        (out["provider"].lower(), "success"),
    ]
    assert all(s.kind == Span.SPAN_KIND_CLIENT and s.trace_id == req_span.trace_id for s in attempts)
    assert attempts[0].status.code == Status.STATUS_CODE_ERROR
