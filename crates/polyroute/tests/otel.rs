//! OpenTelemetry traces: an OTLP/HTTP receiver and an OTLP/gRPC receiver (tonic's `TraceService` server) in the
//! test decode the exported protobuf with the `opentelemetry-proto` types (an independent decoder) and check span
//! names, GenAI attributes and parenting.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::*;
use futures::StreamExt;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span};
use polyroute::{OtlpProtocol, RequestContext, TelemetryConfig};
use prost::Message;

/// The export requests a receiver got.
type Got = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

/// A loopback OTLP/HTTP receiver: keeps every `POST /v1/traces` body (decoded), answers 200; another path is a 404
/// and is not kept.
fn receiver() -> (String, Got) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { return };
            let g = g.clone();
            std::thread::spawn(move || {
                let mut w = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split(' ').nth(1).unwrap_or("").to_string();
                    let mut len = 0usize;
                    loop {
                        let mut h = String::new();
                        r.read_line(&mut h).unwrap();
                        if h.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                len = v.trim().parse().unwrap();
                            }
                        }
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    let status = if path == "/v1/traces" {
                        g.lock()
                            .unwrap()
                            .push(ExportTraceServiceRequest::decode(body.as_slice()).unwrap());
                        "200 OK"
                    } else {
                        "404 Not Found"
                    };
                    let head = format!("HTTP/1.1 {status}\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n");
                    w.write_all(head.as_bytes()).unwrap();
                }
            });
        }
    });
    (url, got)
}

/// A loopback OTLP/gRPC receiver: tonic's `TraceService` server keeping every export request, and the metadata
/// value of `x-collector-key` each came with.
struct Collector {
    got: Got,
    keys: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        r: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let key = r.metadata().get("x-collector-key");
        let key = key.and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        self.keys.lock().unwrap().push(key);
        self.got.lock().unwrap().push(r.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn grpc_receiver() -> (String, Got, Arc<Mutex<Vec<String>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let got = Got::default();
    let keys = Arc::new(Mutex::new(Vec::new()));
    let svc = TraceServiceServer::new(Collector {
        got: got.clone(),
        keys: keys.clone(),
    });
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(l)),
    );
    (url, got, keys)
}

fn spans(got: &Mutex<Vec<ExportTraceServiceRequest>>) -> Vec<Span> {
    let mut out = Vec::new();
    for req in got.lock().unwrap().iter().cloned() {
        for rs in req.resource_spans {
            let res = rs.resource.unwrap();
            let svc = res
                .attributes
                .iter()
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.clone()?.value);
            assert_eq!(svc, Some(Any::StringValue("polyroute-test".into())));
            for ss in rs.scope_spans {
                out.extend(ss.spans);
            }
        }
    }
    out
}

fn attrs(s: &Span) -> HashMap<String, Any> {
    s.attributes
        .iter()
        .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?.value?)))
        .collect()
}

fn s(v: &str) -> Any {
    Any::StringValue(v.into())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_follow_the_genai_conventions_under_the_callers_parent() {
    let (url, got) = receiver();
    genai_spans_reach(
        TelemetryConfig {
            otlp_endpoint: Some(url),
            ..TelemetryConfig::default()
        },
        &got,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_export_carries_the_same_spans() {
    let (url, got, keys) = grpc_receiver().await;
    genai_spans_reach(
        TelemetryConfig {
            otlp_endpoint: Some(url),
            otlp_protocol: OtlpProtocol::Grpc,
            otlp_headers: [("x-collector-key".to_string(), "fake-key-1".to_string())].into(),
            ..TelemetryConfig::default()
        },
        &got,
    )
    .await;
    let keys = keys.lock().unwrap();
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k == "fake-key-1"),
        "{keys:?}"
    );
}

#[test]
fn the_protocol_is_configured_by_name() {
    let c: TelemetryConfig = serde_json::from_value(serde_json::json!({
        "otlpEndpoint": "http://127.0.0.1:4317", "otlpProtocol": "grpc"}))
    .unwrap();
    assert_eq!(c.otlp_protocol, OtlpProtocol::Grpc);
    let c: TelemetryConfig =
        serde_json::from_value(serde_json::json!({"otlp_protocol": "http/protobuf"})).unwrap();
    assert_eq!(c, TelemetryConfig::default());
    assert_eq!(
        serde_json::to_value(TelemetryConfig {
            otlp_protocol: OtlpProtocol::Grpc,
            ..TelemetryConfig::default()
        })
        .unwrap(),
        serde_json::json!({"otlp_protocol": "grpc", "capture_content": false})
    );
    let e = serde_json::from_value::<TelemetryConfig>(
        serde_json::json!({"otlp_protocol": "http/json"}),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("telemetry.otlp_protocol") && e.contains("http/json"),
        "{e}"
    );
}

/// The gRPC exporter needs no runtime of the caller's (Python and Node build routers outside one): built, flushed
/// with a collector that refuses connections, and dropped on a plain thread, without a panic; a bad header is an
/// error naming the field.
#[test]
fn grpc_export_outside_a_runtime() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let grpc = TelemetryConfig {
        otlp_endpoint: Some(url),
        otlp_protocol: OtlpProtocol::Grpc,
        ..TelemetryConfig::default()
    };
    let providers = [P("alpha", "openai", "http://127.0.0.1:9/v1".into())];
    let r = builder(&providers).telemetry(grpc.clone()).build().unwrap();
    r.flush_telemetry();
    drop(r);
    let bad = TelemetryConfig {
        otlp_headers: [("x-key".to_string(), "line\nbreak".to_string())].into(),
        ..grpc
    };
    let Err(e) = builder(&providers).telemetry(bad).build() else {
        panic!("a header value with a line break was accepted")
    };
    assert!(e.to_string().contains("telemetry.otlp_headers"), "{e}");
}

/// A fallback under a caller's span, a failure and a stream through a router exporting with `telemetry` (its
/// endpoint and protocol; the rest set here); the spans `got` checked.
async fn genai_spans_reach(
    telemetry: TelemetryConfig,
    got: &Mutex<Vec<ExportTraceServiceRequest>>,
) {
    let m = mocks(2).await;
    let r = builder(&[
        P("alpha", "openai", base(&m[0], "openai")),
        P("beta", "openai", base(&m[1], "openai")),
    ])
    .telemetry(TelemetryConfig {
        service_name: Some("polyroute-test".into()),
        capture_content: true,
        ..telemetry
    })
    .build()
    .unwrap();
    // A fallback under the caller's span: alpha rate limited, beta serves.
    m[0].script(["429"]).unwrap();
    let ctx = RequestContext {
        traceparent: Some(format!("00-{TRACE}-{PARENT}-01")),
        ..RequestContext::default()
    };
    let a = r
        .chat_with(req(&["alpha", "beta"], "secret prompt"), &ctx)
        .await
        .unwrap();
    // A failing request without a parent.
    m[0].script(["500"]).unwrap();
    let mut only_alpha = req(&["alpha"], "fails");
    only_alpha["provider"]["allow_fallbacks"] = false.into();
    let e = r
        .chat_with(only_alpha, &RequestContext::default())
        .await
        .unwrap_err();
    // A stream.
    let mut st = r.chat_stream(serde_json::json!({"model": "test/model", "stream": true,
        "messages": [{"role": "user", "content": "streamed"}], "provider": {"order": ["beta"]}}));
    while let Some(c) = st.next().await {
        c.unwrap();
    }
    let r2 = r.clone();
    tokio::task::spawn_blocking(move || r2.flush_telemetry())
        .await
        .unwrap();

    let all = spans(got);
    let requests: Vec<&Span> = all
        .iter()
        .filter(|s| s.kind == SpanKind::Internal as i32)
        .collect();
    assert_eq!(requests.len(), 3, "{all:#?}");
    let req_span = requests
        .iter()
        .find(|sp| attrs(sp).get("gen_ai.response.id") == Some(&s(a["id"].as_str().unwrap())))
        .unwrap();
    assert_eq!(req_span.name, "chat test/model");
    assert_eq!(hex(&req_span.trace_id), TRACE);
    assert_eq!(hex(&req_span.parent_span_id), PARENT);
    let at = attrs(req_span);
    assert_eq!(at["gen_ai.operation.name"], s("chat"));
    assert_eq!(at["gen_ai.request.model"], s("test/model"));
    assert_eq!(at["gen_ai.response.model"], s("test/model"));
    assert_eq!(at["gen_ai.provider.name"], s("beta"));
    let usage = &a["usage"];
    assert_eq!(
        at["gen_ai.usage.input_tokens"],
        Any::IntValue(usage["prompt_tokens"].as_i64().unwrap())
    );
    assert_eq!(
        at["gen_ai.usage.output_tokens"],
        Any::IntValue(usage["completion_tokens"].as_i64().unwrap())
    );
    let Any::ArrayValue(fr) = &at["gen_ai.response.finish_reasons"] else {
        panic!("finish reasons")
    };
    assert_eq!(fr.values[0].value, Some(s("stop")));
    assert_eq!(at["polyroute.fallback_index"], Any::IntValue(1));
    assert_eq!(at["polyroute.cache_hit"], Any::BoolValue(false));
    let Any::DoubleValue(cost) = at["polyroute.cost_usd"] else {
        panic!("cost")
    };
    assert!((cost - usage["cost"].as_f64().unwrap()).abs() < 1e-12);
    let Any::StringValue(input) = &at["gen_ai.input.messages"] else {
        panic!("content capture")
    };
    assert!(input.contains("secret prompt"));
    assert!(at.contains_key("gen_ai.output.messages"));
    assert!(at.contains_key("polyroute.overhead_ms"));
    assert_eq!(
        req_span.status.as_ref().map_or(0, |s| s.code),
        StatusCode::Unset as i32
    );

    // Its attempts: two client spans, children of the request span, in the same trace.
    let mut attempts: Vec<&Span> = all
        .iter()
        .filter(|s| s.parent_span_id == req_span.span_id)
        .collect();
    attempts.sort_by_key(|s| s.start_time_unix_nano);
    assert_eq!(attempts.len(), 2);
    let outcomes: Vec<(Any, Any)> = attempts
        .iter()
        .map(|s| {
            let a = attrs(s);
            (
                a["gen_ai.provider.name"].clone(),
                a["polyroute.attempt.outcome"].clone(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [(s("alpha"), s("rate_limited")), (s("beta"), s("success"))]
    );
    assert!(attempts.iter().all(|s| s.kind == SpanKind::Client as i32
        && s.trace_id == req_span.trace_id
        && s.name.starts_with("chat test/model ")));
    assert_eq!(
        attrs(attempts[0])["http.response.status_code"],
        Any::IntValue(429)
    );
    assert_eq!(attrs(attempts[0])["error.type"], s("rate_limited"));
    assert_eq!(
        attempts[0].status.as_ref().unwrap().code,
        StatusCode::Error as i32
    );
    assert!(attempts[0].start_time_unix_nano <= attempts[1].start_time_unix_nano);
    assert!(attempts[1].end_time_unix_nano <= req_span.end_time_unix_nano);

    // The failed request: its own trace, an error status and error.type.
    let failed = requests
        .iter()
        .find(|s| attrs(s).contains_key("error.type"))
        .unwrap();
    assert!(failed.parent_span_id.is_empty());
    assert_ne!(hex(&failed.trace_id), TRACE);
    assert_eq!(attrs(failed)["error.type"], s(e.code()));
    assert_eq!(
        failed.status.as_ref().unwrap().code,
        StatusCode::Error as i32
    );
    assert_eq!(
        all.iter()
            .filter(|s| s.parent_span_id == failed.span_id)
            .count(),
        1
    );
    // The stream: its generation's attributes.
    let streamed = requests
        .iter()
        .find(|s| attrs(s).get("polyroute.streamed") == Some(&Any::BoolValue(true)))
        .unwrap();
    assert_eq!(attrs(streamed)["gen_ai.provider.name"], s("beta"));
}

#[tokio::test]
async fn no_endpoint_no_traces_and_content_only_when_asked() {
    let (url, got) = receiver();
    let m = mocks(1).await;
    let r = builder(&[P("alpha", "openai", base(&m[0], "openai"))])
        .telemetry(TelemetryConfig {
            otlp_endpoint: Some(format!("{url}/v1/traces")),
            service_name: Some("polyroute-test".into()),
            ..TelemetryConfig::default()
        })
        .build()
        .unwrap();
    r.chat(req(&["alpha"], "private words")).await.unwrap();
    let r2 = r.clone();
    tokio::task::spawn_blocking(move || r2.flush_telemetry())
        .await
        .unwrap();
    let all = spans(&got);
    assert_eq!(all.len(), 2);
    for sp in &all {
        let a = attrs(sp);
        assert!(
            !a.contains_key("gen_ai.input.messages") && !a.contains_key("gen_ai.output.messages")
        );
    }
    // Off by default: nothing is exported.
    let (url2, got2) = receiver();
    let off = builder(&[P("alpha", "openai", base(&m[0], "openai"))])
        .build()
        .unwrap();
    off.chat(req(&["alpha"], "x")).await.unwrap();
    off.flush_telemetry();
    assert!(got2.lock().unwrap().is_empty(), "{url2}");
}
