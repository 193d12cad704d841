//! Added latency of `Router::chat` / `Router::chat_stream` over calling the same loopback mock directly with
//! reqwest, p50 and p99, plus a burst of concurrent streams.
//!
//! `cargo run --release -p polyroute --example bench_overhead -- [--mock-url http://127.0.0.1:PORT] [--n 2000]
//! [--concurrent 1000] [--chunks 20]`. Without `--mock-url` an in-process mock is started. Prints a human
//! table and, last, one JSON line with every figure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use polyroute::{Options, ProviderSettings, Router, Timeouts};
use polyroute_mock::MockServer;
use serde_json::{json, Value};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn catalog(base: &str) -> String {
    json!({"version": 1,
        "providers": [{"slug": "mock", "name": "Mock", "dialect": "openai", "base_url": format!("{base}/v1")}],
        "models": [{"id": "bench/model", "name": "bench", "created": 1_700_000_000, "context_length": 32768,
            "architecture": {"modality": "text->text", "input_modalities": ["text"], "output_modalities": ["text"], "tokenizer": "Other"},
            "pricing": {"prompt": "0.000001", "completion": "0.000002"},
            "top_provider": {"context_length": 32768, "max_completion_tokens": 4096, "is_moderated": false},
            "supported_parameters": ["max_tokens", "stream"],
            "endpoints": [{"provider": "mock", "provider_name": "Mock", "tag": "mock", "provider_model_id": "bench-model",
                "context_length": 32768, "pricing": {"prompt": "0.000001", "completion": "0.000002"},
                "supported_parameters": ["max_tokens", "stream"]}]}]})
    .to_string()
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_nanos() / 1000)
        .unwrap_or(u64::MAX)
        .max(1)
}

struct Pair {
    direct: Histogram<u64>,
    router: Histogram<u64>,
}

impl Pair {
    fn new() -> Self {
        Self {
            direct: Histogram::new(3).unwrap(),
            router: Histogram::new(3).unwrap(),
        }
    }
    fn row(&self, name: &str) -> Value {
        let (d50, d99) = (
            self.direct.value_at_quantile(0.5),
            self.direct.value_at_quantile(0.99),
        );
        let (r50, r99) = (
            self.router.value_at_quantile(0.5),
            self.router.value_at_quantile(0.99),
        );
        println!(
            "{name:<12} direct p50 {d50:>6} µs p99 {d99:>6} µs | router p50 {r50:>6} µs p99 {r99:>6} µs | added p50 {:>5} µs p99 {:>6} µs",
            r50 as i64 - d50 as i64,
            r99 as i64 - d99 as i64
        );
        json!({"direct_p50_us": d50, "direct_p99_us": d99, "router_p50_us": r50, "router_p99_us": r99,
               "added_p50_us": r50 as i64 - d50 as i64, "added_p99_us": r99 as i64 - d99 as i64})
    }
}

/// A loopback OTLP/HTTP sink that answers every request 200 and drops the body; returns its URL.
fn otlp_sink() -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut w = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                loop {
                    let mut len = 0usize;
                    let mut first = true;
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if h.trim().is_empty() && !first {
                            break;
                        }
                        first = false;
                        if let Some((k, v)) = h.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                len = v.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err()
                        || w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                            .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = arg("--n").and_then(|s| s.parse().ok()).unwrap_or(2000);
    let concurrent: usize = arg("--concurrent")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let chunks: usize = arg("--chunks").and_then(|s| s.parse().ok()).unwrap_or(20);
    let _local;
    let base = match arg("--mock-url") {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let m = MockServer::start_with(
                polyroute_mock::MockConfig {
                    keep_requests: 0,
                    ..Default::default()
                },
                0,
            )
            .await
            .unwrap();
            let u = m.url();
            _local = m;
            u
        }
    };
    let key = "sk-test-fake-bench";
    let router = Router::builder()
        .catalog_json(catalog(&base))
        .provider(
            "mock",
            ProviderSettings::with_key(key).header("x-mock-chunks", chunks.to_string()),
        )
        .options(Options {
            read_env: false,
            timeouts: Timeouts {
                total: Duration::from_secs(60),
                ..Timeouts::default()
            },
            ..Options::default()
        })
        .build()
        .unwrap();
    let direct = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(2048)
        .build()
        .unwrap();
    let url = format!("{base}/v1/chat/completions");
    let msgs = json!([{"role": "user", "content": "Say hello to the benchmark."}]);
    let routed = json!({"model": "bench/model", "messages": msgs, "max_tokens": 64});
    let mut routed_stream = routed.clone();
    routed_stream["stream"] = json!(true);
    let raw = json!({"model": "bench-model", "messages": msgs, "max_tokens": 64});
    let raw_stream = json!({"model": "bench-model", "messages": msgs, "max_tokens": 64, "stream": true, "stream_options": {"include_usage": true}});

    let call_direct = |body: &Value| {
        direct
            .post(&url)
            .header("authorization", format!("Bearer {key}"))
            .header("x-mock-chunks", chunks.to_string())
            .json(body)
            .send()
    };
    // warm up both paths (connections, allocator, caches)
    for _ in 0..200 {
        let _: Value = call_direct(&raw).await.unwrap().json().await.unwrap();
        router.chat(routed.clone()).await.unwrap();
    }

    let mut unary = Pair::new();
    for _ in 0..n {
        let t = Instant::now();
        let v: Value = call_direct(&raw).await.unwrap().json().await.unwrap();
        unary.direct.record(us(t.elapsed())).unwrap();
        assert!(v["choices"].is_array());
        let t = Instant::now();
        let v = router.chat(routed.clone()).await.unwrap();
        unary.router.record(us(t.elapsed())).unwrap();
        assert!(v["usage"]["cost"].is_number());
    }

    let mut stream = Pair::new();
    for _ in 0..n {
        let t = Instant::now();
        let mut s = call_direct(&raw_stream).await.unwrap().bytes_stream();
        let mut bytes = 0;
        while let Some(b) = s.next().await {
            bytes += b.unwrap().len();
        }
        stream.direct.record(us(t.elapsed())).unwrap();
        assert!(bytes > 0);
        let t = Instant::now();
        let mut s = router.chat_stream(routed_stream.clone());
        let mut k = 0;
        while let Some(c) = s.next().await {
            c.unwrap();
            k += 1;
        }
        stream.router.record(us(t.elapsed())).unwrap();
        assert!(k >= chunks);
    }

    println!("polyroute engine overhead over direct reqwest, same loopback mock, n={n}, {chunks} content chunks per stream");
    let u = unary.row("chat");
    let s = stream.row("chat_stream");

    // burst of concurrent streams through one Router
    let t = Instant::now();
    let tasks: Vec<_> = (0..concurrent)
        .map(|i| {
            let r = router.clone();
            let mut body = routed_stream.clone();
            body["messages"] = json!([{"role": "user", "content": format!("stream {i}")}]);
            tokio::spawn(async move {
                let t = Instant::now();
                let mut s = r.chat_stream(body);
                let mut ok = true;
                let mut text = String::new();
                while let Some(c) = s.next().await {
                    match c {
                        Ok(v) => text
                            .push_str(v["choices"][0]["delta"]["content"].as_str().unwrap_or("")),
                        Err(_) => ok = false,
                    }
                }
                (ok && text.contains(&format!("stream {i}")), t.elapsed())
            })
        })
        .collect();
    let mut h = Histogram::<u64>::new(3).unwrap();
    let mut okc = 0;
    for task in tasks {
        let (ok, d) = task.await.unwrap();
        okc += usize::from(ok);
        h.record(us(d)).unwrap();
    }
    let wall = t.elapsed();
    println!(
        "{concurrent} concurrent streams: {okc} complete and correct, wall {:.1} ms, per-stream p50 {:.1} ms p99 {:.1} ms",
        wall.as_secs_f64() * 1000.0,
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0
    );
    // Metrics are always on: what recording one event costs (a request records three: its end, each attempt, its
    // generation), what rendering `/metrics` costs, and the overhead the engine measured of itself.
    let m = router.metrics();
    let reps: u32 = 200_000;
    let t = Instant::now();
    for _ in 0..reps {
        m.cache_hit("bench/model");
    }
    let event_ns = t.elapsed().as_nanos() as f64 / f64::from(reps);
    let t = Instant::now();
    let text = m.render();
    let render_us = t.elapsed().as_secs_f64() * 1e6;
    let snap = m.snapshot();
    let o = &snap["polyroute_overhead_seconds"]["samples"][0];
    let self_us =
        o["sum"].as_f64().unwrap_or(0.0) / o["count"].as_f64().unwrap_or(1.0).max(1.0) * 1e6;
    println!(
        "metrics: {event_ns:.0} ns per recorded event (~3 per request), render {render_us:.0} us ({} bytes); \
         overhead measured by the engine itself: mean {self_us:.1} us per generation",
        text.len()
    );
    // Tracing on vs off: the same unary requests, interleaved, through a router exporting spans to a loopback
    // OTLP sink.
    let traced = Router::builder()
        .catalog_json(catalog(&base))
        .provider(
            "mock",
            ProviderSettings::with_key(key).header("x-mock-chunks", chunks.to_string()),
        )
        .options(Options {
            read_env: false,
            ..Options::default()
        })
        .telemetry(polyroute::TelemetryConfig {
            otlp_endpoint: Some(otlp_sink()),
            ..Default::default()
        })
        .build()
        .unwrap();
    for _ in 0..200 {
        traced.chat(routed.clone()).await.unwrap();
    }
    let mut tr = Pair::new();
    for _ in 0..n {
        let t = Instant::now();
        router.chat(routed.clone()).await.unwrap();
        tr.direct.record(us(t.elapsed())).unwrap();
        let t = Instant::now();
        traced.chat(routed.clone()).await.unwrap();
        tr.router.record(us(t.elapsed())).unwrap();
    }
    let (off50, on50) = (
        tr.direct.value_at_quantile(0.5),
        tr.router.value_at_quantile(0.5),
    );
    println!(
        "tracing: chat p50 {off50} µs off, {on50} µs on (added {} µs per request)",
        on50 as i64 - off50 as i64
    );
    let summary = json!({"n": n, "chunks": chunks, "chat": u, "chat_stream": s,
        "metrics": {"event_ns": event_ns, "render_us": render_us, "self_overhead_mean_us": self_us},
        "tracing": {"off_p50_us": off50, "on_p50_us": on50},
        "concurrent": {"streams": concurrent, "ok": okc, "wall_ms": wall.as_secs_f64() * 1000.0,
                       "p50_ms": h.value_at_quantile(0.5) as f64 / 1000.0, "p99_ms": h.value_at_quantile(0.99) as f64 / 1000.0}});
    println!("{summary}");
}
