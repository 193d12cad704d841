//! OpenTelemetry traces following the GenAI semantic conventions, off by default: with
//! [`TelemetryConfig::otlp_endpoint`] set, every request is one span (`chat {model}`, kind internal) with a child
//! per attempt (`chat {model} {provider}`, kind client), exported over OTLP/HTTP (protobuf) or, with
//! [`TelemetryConfig::otlp_protocol`] `grpc`, OTLP/gRPC, by a batch processor on a thread of its own (the gRPC
//! client's connection runs on a one-thread tokio runtime the router owns, so it needs no runtime of the caller's). The parent is the caller's W3C `traceparent` ([`RequestContext::traceparent`]: the
//! gateway's header, a binding's argument), else the request span starts a trace.
//!
//! Attributes: `gen_ai.operation.name` (`chat`), `gen_ai.request.model`, `gen_ai.response.model`,
//! `gen_ai.provider.name`, `gen_ai.response.id`, `gen_ai.usage.input_tokens` / `output_tokens`,
//! `gen_ai.response.finish_reasons`, `error.type` on failure; polyroute's own `polyroute.cost_usd`,
//! `polyroute.fallback_index` (the 0-based attempt that served), `polyroute.cache_hit`, `polyroute.overhead_ms`;
//! per attempt `polyroute.attempt.index`, `polyroute.attempt.outcome`, `http.response.status_code`. Prompt
//! (`gen_ai.input.messages`) and, for non-streamed answers, completion (`gen_ai.output.messages`) content as JSON
//! only with [`TelemetryConfig::capture_content`].
//!
//! [`RequestContext::traceparent`]: crate::RequestContext::traceparent

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
    Tracer, TracerProvider as _,
};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value as OtelValue};
use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use polyroute_core::plan::{Attempt, Outcome, OutcomeClass};
use polyroute_core::{Error, Result};
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::ledger::GenerationRecord;

/// `telemetry` of [`RouterConfig`](crate::RouterConfig) (`[telemetry]` in the gateway's TOML).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP endpoint: over HTTP e.g. `http://127.0.0.1:4318` (`/v1/traces` is appended unless the URL already
    /// ends with it), over gRPC e.g. `http://127.0.0.1:4317`. Absent: no traces (the default).
    #[serde(alias = "otlpEndpoint", skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// `http/protobuf` (the default) or `grpc`.
    #[serde(
        alias = "otlpProtocol",
        skip_serializing_if = "OtlpProtocol::is_default"
    )]
    pub otlp_protocol: OtlpProtocol,
    /// Headers sent with every export (a collector's credentials).
    #[serde(alias = "otlpHeaders", skip_serializing_if = "BTreeMap::is_empty")]
    pub otlp_headers: BTreeMap<String, String>,
    /// `service.name` of the exported resource (default `polyroute`).
    #[serde(alias = "serviceName", skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Record prompt and completion content on request spans (default false).
    #[serde(alias = "captureContent")]
    pub capture_content: bool,
}

/// How spans are exported: `otlp_protocol` of [`TelemetryConfig`] (`http/protobuf` or `grpc`, as in
/// `OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP/HTTP with protobuf bodies (`POST {endpoint}/v1/traces`).
    #[default]
    HttpProtobuf,
    /// OTLP/gRPC (`TraceService/Export`).
    Grpc,
}

impl OtlpProtocol {
    /// Its configuration name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HttpProtobuf => "http/protobuf",
            Self::Grpc => "grpc",
        }
    }

    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl Serialize for OtlpProtocol {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for OtlpProtocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = String::deserialize(d)?;
        match v.trim() {
            "http/protobuf" => Ok(Self::HttpProtobuf),
            "grpc" => Ok(Self::Grpc),
            other => Err(serde::de::Error::custom(format!(
                "telemetry.otlp_protocol: unknown protocol `{other}` (expected `http/protobuf` or `grpc`)"
            ))),
        }
    }
}

/// A router's tracer and its provider (flushed and shut down when the router is dropped).
pub(crate) struct Telemetry {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    capture_content: bool,
    /// The gRPC client's runtime (its connection's tasks), stopped after the provider's last export.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        let _ = self.provider.shutdown_with_timeout(Duration::from_secs(5));
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// The W3C `traceparent` header as a remote parent (`00-<trace id>-<span id>-<flags>`); None when malformed.
#[must_use]
pub fn parse_traceparent(v: &str) -> Option<SpanContext> {
    let mut parts = v.trim().split('-');
    let (ver, tid, sid, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !(hex(ver, 2) && hex(tid, 32) && hex(sid, 16) && hex(flags, 2)) || ver == "ff" {
        return None;
    }
    if ver == "00" && parts.next().is_some() {
        return None;
    }
    let trace_id = TraceId::from_hex(tid).ok()?;
    let span_id = SpanId::from_hex(sid).ok()?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags),
        true,
        TraceState::default(),
    ))
}

/// `otlp_headers` as gRPC metadata (lower-case ASCII names, visible ASCII values).
fn metadata(headers: &BTreeMap<String, String>) -> Result<MetadataMap> {
    let mut h = http::HeaderMap::new();
    for (k, v) in headers {
        let bad = |what: &str| Error::invalid("telemetry.otlp_headers", format!("{what} `{k}`"));
        let name = http::HeaderName::from_bytes(k.trim().as_bytes())
            .map_err(|_| bad("invalid header name"))?;
        let value =
            http::HeaderValue::from_str(v.trim()).map_err(|_| bad("invalid value of header"))?;
        h.insert(name, value);
    }
    Ok(MetadataMap::from_headers(h))
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Telemetry {
    /// The tracer of `c`, or None when no endpoint is set.
    pub(crate) fn start(c: &TelemetryConfig) -> Result<Option<Self>> {
        let Some(base) = c.otlp_endpoint.as_deref().filter(|s| !s.trim().is_empty()) else {
            return Ok(None);
        };
        let base = base.trim().trim_end_matches('/');
        let fail =
            |e: &dyn std::fmt::Display| Error::invalid("telemetry.otlp_endpoint", e.to_string());
        let (exporter, runtime) = match c.otlp_protocol {
            OtlpProtocol::HttpProtobuf => {
                let url = if base.ends_with("/v1/traces") {
                    base.to_string()
                } else {
                    format!("{base}/v1/traces")
                };
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_endpoint(url)
                    .with_timeout(Duration::from_secs(10))
                    .with_headers(c.otlp_headers.clone().into_iter().collect())
                    .build()
                    .map_err(|e| fail(&e))?;
                (exporter, None)
            }
            OtlpProtocol::Grpc => {
                // The batch processor exports from a plain thread; tonic's channel spawns its connection's tasks
                // on the runtime current when it is built, so it gets one of its own that outlives every export.
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("polyroute-otlp-grpc")
                    .enable_all()
                    .build()
                    .map_err(|e| Error::Internal {
                        message: format!("telemetry runtime: {e}"),
                    })?;
                let exporter = {
                    let _in_rt = rt.enter();
                    opentelemetry_otlp::SpanExporter::builder()
                        .with_tonic()
                        .with_endpoint(base)
                        .with_timeout(Duration::from_secs(10))
                        .with_metadata(metadata(&c.otlp_headers)?)
                        .build()
                        .map_err(|e| fail(&e))?
                };
                (exporter, Some(rt))
            }
        };
        let resource = Resource::builder_empty()
            .with_service_name(c.service_name.clone().unwrap_or_else(|| "polyroute".into()))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("polyroute");
        Ok(Some(Self {
            provider,
            tracer,
            capture_content: c.capture_content,
            runtime,
        }))
    }

    /// Export every finished span now.
    pub(crate) fn flush(&self) {
        let _ = self.provider.force_flush();
    }

    /// Start a request's span under the caller's `traceparent`.
    pub(crate) fn request(
        &self,
        request: &Value,
        model: &str,
        traceparent: Option<&str>,
    ) -> ReqSpan {
        let parent = match traceparent.and_then(parse_traceparent) {
            Some(sc) => Context::new().with_remote_span_context(sc),
            None => Context::new(),
        };
        let mut attrs = vec![
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("gen_ai.request.model", model.to_string()),
        ];
        if self.capture_content {
            if let Some(m) = request.get("messages") {
                attrs.push(KeyValue::new("gen_ai.input.messages", m.to_string()));
            }
        }
        let span = self
            .tracer
            .span_builder(format!("chat {model}"))
            .with_kind(SpanKind::Internal)
            .with_attributes(attrs)
            .start_with_context(&self.tracer, &parent);
        ReqSpan {
            cx: parent.with_span(span),
            tracer: self.tracer.clone(),
            capture_content: self.capture_content,
        }
    }
}

/// A request's span (and the tracer for its attempts).
#[derive(Clone)]
pub(crate) struct ReqSpan {
    cx: Context,
    tracer: SdkTracer,
    capture_content: bool,
}

impl ReqSpan {
    /// One attempt of the request, from `started` to now, with its outcome.
    pub(crate) fn attempt(&self, a: &Attempt, index: u32, outcome: &Outcome, started: SystemTime) {
        let mut attrs = vec![
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("gen_ai.request.model", a.model.clone()),
            KeyValue::new("gen_ai.provider.name", a.provider.clone()),
            KeyValue::new("polyroute.attempt.index", i64::from(index)),
            KeyValue::new("polyroute.attempt.outcome", outcome.class.code()),
            KeyValue::new("polyroute.endpoint", a.tag.clone()),
        ];
        if outcome.status > 0 {
            attrs.push(KeyValue::new(
                "http.response.status_code",
                i64::from(outcome.status),
            ));
        }
        let ok = outcome.class == OutcomeClass::Success;
        if !ok {
            attrs.push(KeyValue::new("error.type", outcome.class.code()));
        }
        let span = self
            .tracer
            .span_builder(format!("chat {} {}", a.model, a.provider))
            .with_kind(SpanKind::Client)
            .with_start_time(started)
            .with_attributes(attrs)
            .start_with_context(&self.tracer, &self.cx);
        let cx = Context::new().with_span(span);
        if !ok {
            cx.span().set_status(Status::error(outcome.message.clone()));
        }
        cx.span().end();
    }

    /// The billed generation's figures.
    pub(crate) fn generation(&self, rec: &GenerationRecord) {
        let s = self.cx.span();
        let fallback = rec.attempts.len().saturating_sub(1);
        s.set_attributes([
            KeyValue::new("gen_ai.response.model", rec.model.clone()),
            KeyValue::new("gen_ai.provider.name", rec.provider.clone()),
            KeyValue::new("gen_ai.response.id", rec.id.clone()),
            KeyValue::new("gen_ai.usage.input_tokens", int(rec.usage.prompt_tokens)),
            KeyValue::new(
                "gen_ai.usage.output_tokens",
                int(rec.usage.completion_tokens),
            ),
            KeyValue::new("polyroute.cost_usd", rec.cost.to_f64().unwrap_or(0.0)),
            KeyValue::new("polyroute.fallback_index", int(fallback as u64)),
            KeyValue::new("polyroute.cache_hit", false),
            KeyValue::new("polyroute.streamed", rec.streamed),
        ]);
        if let Some(f) = &rec.finish_reason {
            s.set_attribute(KeyValue::new(
                "gen_ai.response.finish_reasons",
                OtelValue::Array(Array::String(vec![StringValue::from(f.clone())])),
            ));
        }
        if let Some(o) = rec.overhead_ms {
            s.set_attribute(KeyValue::new("polyroute.overhead_ms", o));
        }
    }

    /// The request ended: its error, if any (and the answer's content when content capture is on), then the span
    /// ends.
    pub(crate) fn end(&self, r: std::result::Result<&Value, &Error>) {
        let s = self.cx.span();
        match r {
            Ok(answer) => {
                if self.capture_content {
                    if let Some(c) = answer.get("choices") {
                        s.set_attribute(KeyValue::new("gen_ai.output.messages", c.to_string()));
                    }
                }
            }
            Err(e) => {
                s.set_attribute(KeyValue::new("error.type", e.code()));
                s.set_status(Status::error(e.to_string()));
            }
        }
        s.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_parsing_follows_w3c() {
        let sc = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let sc = sc.as_ref();
        assert_eq!(
            sc.map(|s| s.trace_id().to_string()).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            sc.map(|s| s.span_id().to_string()).as_deref(),
            Some("00f067aa0ba902b7")
        );
        assert!(sc.is_some_and(|s| s.is_sampled() && s.is_remote()));
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-xyz92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
        // A later version may carry more fields.
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x")
                .is_some()
        );
    }
}
