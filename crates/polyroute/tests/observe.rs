//! Metrics, overhead and hooks through the whole lifecycle, against loopback mocks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures::StreamExt;
use polyroute::{AttemptEvent, GenerationRecord, Hooks, RequestContext};
use serde_json::Value;

#[derive(Default)]
struct Collect {
    attempts: Mutex<Vec<AttemptEvent>>,
    generations: Mutex<Vec<GenerationRecord>>,
}

impl Hooks for Collect {
    fn on_attempt(&self, e: &AttemptEvent) {
        self.attempts.lock().unwrap().push(e.clone());
    }
    fn on_generation(&self, r: &GenerationRecord) {
        self.generations.lock().unwrap().push(r.clone());
    }
}

/// A hook that is slow and then panics: the request must neither wait for it nor fail.
struct Hostile;

impl Hooks for Hostile {
    fn on_attempt(&self, _: &AttemptEvent) {
        std::thread::sleep(Duration::from_millis(300));
        panic!("hook failure (expected by the test)");
    }
}

fn value(snap: &Value, name: &str, want: &[(&str, &str)]) -> f64 {
    snap[name]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| want.iter().all(|(k, v)| s["labels"][*k] == *v))
        .map(|s| s["value"].as_f64().or_else(|| s["count"].as_f64()).unwrap())
        .sum()
}

async fn wait_for(mut ok: impl FnMut() -> bool) {
    for _ in 0..200 {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met within 2 s");
}

#[tokio::test]
async fn a_known_sequence_is_counted_and_hooked() {
    let m = mocks(2).await;
    let hooks = Arc::new(Collect::default());
    let r = builder(&[
        P("alpha", "openai", base(&m[0], "openai")),
        P("beta", "openai", base(&m[1], "openai")),
    ])
    .hooks(hooks.clone())
    .build()
    .unwrap();
    let ctx = RequestContext {
        user: Some("team-a".into()),
        ..Default::default()
    };
    // 1. served by alpha
    let (a, t) = r.chat_timed(req(&["alpha", "beta"], "one"), &ctx).await;
    let a = a.unwrap();
    assert!(t.total >= t.waited && t.waited > Duration::ZERO, "{t:?}");
    // 2. alpha rate limited, beta serves (a fallback)
    m[0].script(["429"]).unwrap();
    let b = r
        .chat_with(req(&["alpha", "beta"], "two"), &ctx)
        .await
        .unwrap();
    assert_eq!(b["provider"], "BETA Cloud");
    // 3. both fail: an error naming the last provider tried
    m[0].script(["500"]).unwrap();
    m[1].script(["500"]).unwrap();
    let e = r
        .chat_with(req(&["alpha", "beta"], "three"), &ctx)
        .await
        .unwrap_err();
    // 4. a stream served by beta
    let mut s = r.chat_stream_with(req(&["beta"], "four").tap_stream(), ctx.clone());
    while let Some(c) = s.next().await {
        c.unwrap();
    }
    // 5. an unknown model: refused before any provider
    let mut bad = req(&["alpha"], "five");
    bad["model"] = "nobody/none".into();
    assert!(r.chat_with(bad, &ctx).await.is_err());

    let snap = r.metrics().snapshot();
    let reqs = |status| {
        value(
            &snap,
            "polyroute_requests_total",
            &[("model", "test/model"), ("status", status)],
        )
    };
    assert_eq!(reqs("ok"), 3.0);
    assert_eq!(reqs(e.code()), 1.0);
    assert_eq!(
        value(
            &snap,
            "polyroute_requests_total",
            &[("model", "nobody/none"), ("status", "model_not_found")]
        ),
        1.0
    );
    let att = |p, o| {
        value(
            &snap,
            "polyroute_attempts_total",
            &[("provider", p), ("outcome", o)],
        )
    };
    assert_eq!(att("alpha", "success"), 1.0);
    assert_eq!(att("alpha", "rate_limited"), 1.0);
    assert_eq!(att("beta", "success"), 2.0);
    assert_eq!(att("alpha", "overloaded") + att("beta", "overloaded"), 2.0);
    // alpha failed twice before beta was tried; beta's last failure ended the plan.
    assert_eq!(
        value(&snap, "polyroute_fallbacks_total", &[("provider", "alpha")]),
        2.0
    );
    assert_eq!(
        value(&snap, "polyroute_fallbacks_total", &[("provider", "beta")]),
        0.0
    );
    assert_eq!(
        value(
            &snap,
            "polyroute_generations_total",
            &[("fallback", "true")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &snap,
            "polyroute_errors_total",
            &[("code", e.code()), ("provider", "beta")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &snap,
            "polyroute_errors_total",
            &[("code", "model_not_found"), ("provider", "none")]
        ),
        1.0
    );
    // Tokens and cost per key label equal the ledger's.
    let spent = r.spent(Some("team-a")).await.unwrap();
    let cost = value(&snap, "polyroute_cost_usd_total", &[("key", "team-a")]);
    let want: f64 = spent.to_string().parse().unwrap();
    assert!(want > 0.0);
    assert!((cost - want).abs() < 1e-12, "{cost} vs {want}");
    let a_rec = r.generation(a["id"].as_str().unwrap()).await.unwrap();
    let prompt = a_rec["usage"]["prompt_tokens"].as_f64().unwrap();
    assert!(prompt > 0.0);
    assert!(
        value(
            &snap,
            "polyroute_tokens_total",
            &[("key", "team-a"), ("type", "prompt")]
        ) >= prompt * 3.0 - 1e-9
    );
    assert_eq!(value(&snap, "polyroute_request_duration_seconds", &[]), 3.0);
    assert_eq!(value(&snap, "polyroute_overhead_seconds", &[]), 3.0);
    assert_eq!(value(&snap, "polyroute_in_flight_requests", &[]), 0.0);
    // The overhead is in the record, and below the total.
    let o = a_rec["overhead_ms"].as_f64().unwrap();
    assert!(
        o >= 0.0 && o <= a_rec["latency_ms"].as_f64().unwrap(),
        "{a_rec}"
    );

    // Hooks: every attempt (1 + 2 + 2 + 1) and every generation (3), with their generation ids.
    wait_for(|| hooks.generations.lock().unwrap().len() == 3).await;
    wait_for(|| hooks.attempts.lock().unwrap().len() == 6).await;
    let ats = hooks.attempts.lock().unwrap().clone();
    let second: Vec<&AttemptEvent> = ats
        .iter()
        .filter(|x| x.generation_id == b["id"].as_str().unwrap())
        .collect();
    assert_eq!(second.len(), 2);
    assert_eq!(
        (second[0].index, second[0].code.as_str(), second[0].status),
        (0, "rate_limited", 429)
    );
    assert!(second[0].message.is_some());
    assert_eq!(
        (
            second[1].index,
            second[1].provider.as_str(),
            second[1].code.as_str()
        ),
        (1, "beta", "success")
    );
    let gens = hooks.generations.lock().unwrap().clone();
    assert_eq!(gens[0].id, a["id"].as_str().unwrap());
    assert_eq!(gens[1].attempts.len(), 2);
    assert!(gens[2].streamed);
    assert!(gens.iter().all(|g| g.overhead_ms.is_some()));
    // The text form carries the same counts.
    let text = r.metrics().render();
    assert!(text.contains(
        "polyroute_attempts_total{provider=\"alpha\",model=\"test/model\",outcome=\"rate_limited\"} 1\n"
    ));
}

trait TapStream {
    fn tap_stream(self) -> Self;
}

impl TapStream for Value {
    fn tap_stream(mut self) -> Self {
        self["stream"] = true.into();
        self
    }
}

#[tokio::test]
async fn a_slow_panicking_hook_never_delays_or_fails_a_request() {
    let m = mocks(1).await;
    let r = builder(&[P("alpha", "openai", base(&m[0], "openai"))])
        .hooks(Arc::new(Hostile))
        .build()
        .unwrap();
    let t0 = std::time::Instant::now();
    for i in 0..5 {
        r.chat_with(
            req(&["alpha"], &format!("n{i}")),
            &RequestContext::default(),
        )
        .await
        .unwrap();
    }
    // Five hook calls take 1.5 s on the hook thread; the requests did not wait for them.
    assert!(
        t0.elapsed() < Duration::from_millis(1200),
        "{:?}",
        t0.elapsed()
    );
    let snap = r.metrics().snapshot();
    assert_eq!(
        value(&snap, "polyroute_requests_total", &[("status", "ok")]),
        5.0
    );
}
