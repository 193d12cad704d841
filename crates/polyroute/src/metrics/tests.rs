#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::str::FromStr;

use polyroute_core::error::AttemptRecord;
use polyroute_core::plan::OutcomeClass;
use polyroute_core::Usage;
use serde_json::json;

use super::*;

fn rec(
    model: &str,
    provider: &str,
    user: Option<&str>,
    cost: &str,
    attempts: usize,
) -> GenerationRecord {
    let a = AttemptRecord {
        model: model.into(),
        provider: provider.into(),
        endpoint: provider.into(),
        status: 200,
        class: OutcomeClass::Success,
        retry_after: None,
        latency_ms: Some(1.0),
    };
    GenerationRecord {
        id: "gen-1".into(),
        created_ms: 0,
        model: model.into(),
        provider: provider.into(),
        provider_name: provider.into(),
        endpoint: provider.into(),
        streamed: false,
        usage: Usage {
            prompt_tokens: 10,
            completion_tokens: 5,
            total_tokens: 15,
            ..Usage::default()
        },
        cost: Decimal::from_str(cost).unwrap(),
        cost_details: json!({}).into(),
        finish_reason: Some("stop".into()),
        attempts: vec![a; attempts],
        app_referer: None,
        app_title: None,
        user: user.map(str::to_string),
        free: false,
        latency_ms: 300.0,
        ttft_ms: Some(40.0),
        dropped_params: Vec::new(),
        cancelled: false,
        session_id: None,
        overhead_ms: Some(0.2),
        api_type: crate::ledger::ApiType::Completions,
    }
}

/// The value of the sample of `name` whose labels include all of `want`.
fn value(snap: &serde_json::Value, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    snap[name]["samples"]
        .as_array()?
        .iter()
        .find(|s| want.iter().all(|(k, v)| s["labels"][*k] == *v))
        .and_then(|s| s["value"].as_f64().or_else(|| s["count"].as_f64()))
}

#[test]
fn label_values_beyond_the_cap_fold_into_other() {
    let mut d = Dim::new(2);
    assert_eq!(d.id("a"), 1);
    assert_eq!(d.id("b"), 2);
    assert_eq!(d.id("c"), 0);
    assert_eq!(d.id("a"), 1);
    assert_eq!(d.name(0), OTHER);
    assert_eq!(d.name(2), "b");
    // A caller's literal "other" is the same series, not a new value.
    let mut e = Dim::new(5);
    assert_eq!(e.id(OTHER), 0);

    let m = Metrics::default();
    let cap = LABEL_CAPS.iter().find(|(n, _)| *n == "model").unwrap().1;
    for i in 0..cap + 25 {
        m.cache_hit(&format!("vendor/model-{i}"));
    }
    let s = m.snapshot();
    let samples = s["polyroute_cache_hits_total"]["samples"]
        .as_array()
        .unwrap();
    assert_eq!(samples.len(), cap + 1, "cap kept values plus other");
    assert_eq!(
        value(&s, "polyroute_cache_hits_total", &[("model", OTHER)]),
        Some(25.0)
    );
}

#[test]
fn requests_errors_and_refusals_are_counted_by_label() {
    let m = Metrics::default();
    m.request_end::<()>("a/m", &Ok(()));
    m.request_end::<()>("a/m", &Ok(()));
    let provider_err = Error::Provider {
        status: 400,
        error_type: "context_length_exceeded".into(),
        message: "too long".into(),
        provider: "beta".into(),
        attempts: Vec::new(),
    };
    m.request_end::<()>("a/m", &Err(provider_err));
    m.request_end::<()>(
        "b/m",
        &Err(Error::PaymentRequired {
            message: "no".into(),
        }),
    );
    m.limit_refused("router_budget");
    let s = m.snapshot();
    let req = |model, status| {
        value(
            &s,
            "polyroute_requests_total",
            &[("model", model), ("status", status)],
        )
    };
    assert_eq!(req("a/m", "ok"), Some(2.0));
    assert_eq!(req("a/m", "provider_error"), Some(1.0));
    assert_eq!(req("b/m", "payment_required"), Some(1.0));
    let err = |code, provider| {
        value(
            &s,
            "polyroute_errors_total",
            &[("code", code), ("provider", provider)],
        )
    };
    assert_eq!(err("provider_error", "beta"), Some(1.0));
    assert_eq!(err("payment_required", "none"), Some(1.0));
    assert_eq!(
        value(
            &s,
            "polyroute_limit_refusals_total",
            &[("limit", "router_budget")]
        ),
        Some(1.0)
    );
}

#[test]
fn generations_add_tokens_cost_and_histograms() {
    let m = Metrics::default();
    m.attempt("alpha", "a/m", "rate_limited");
    m.fallback("alpha");
    m.attempt("beta", "a/m", "success");
    m.generation(&rec("a/m", "beta", Some("k1"), "0.000015", 2));
    m.generation(&rec("a/m", "beta", Some("k1"), "0.000015", 1));
    m.generation(&rec("a/m", "beta", None, "1.5", 1));
    let s = m.snapshot();
    let gen = |fb| {
        value(
            &s,
            "polyroute_generations_total",
            &[("provider", "beta"), ("fallback", fb)],
        )
    };
    assert_eq!((gen("true"), gen("false")), (Some(1.0), Some(2.0)));
    assert_eq!(
        value(&s, "polyroute_fallbacks_total", &[("provider", "alpha")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "polyroute_tokens_total",
            &[("key", "k1"), ("type", "prompt")]
        ),
        Some(20.0)
    );
    assert_eq!(
        value(
            &s,
            "polyroute_tokens_total",
            &[("key", "k1"), ("type", "completion")]
        ),
        Some(10.0)
    );
    let cost = value(&s, "polyroute_cost_usd_total", &[("key", "k1")]).unwrap();
    assert!((cost - 0.00003).abs() < 1e-12, "{cost}");
    assert_eq!(
        value(&s, "polyroute_cost_usd_total", &[("key", "")]),
        Some(1.5)
    );
    // 300 ms lands in the 0.5 s bucket and above, not in 0.25 s.
    let h = &s["polyroute_request_duration_seconds"]["samples"][0];
    assert_eq!(h["count"], 3);
    assert_eq!(h["buckets"]["0.25"], 0);
    assert_eq!(h["buckets"]["0.5"], 3);
    assert_eq!(h["buckets"]["+Inf"], 3);
    assert!((h["sum"].as_f64().unwrap() - 0.9).abs() < 1e-9);
    let o = &s["polyroute_overhead_seconds"]["samples"][0];
    assert_eq!(o["count"], 3);
    assert_eq!(o["buckets"]["0.0001"], 0);
    assert_eq!(o["buckets"]["0.00025"], 3);
}

#[test]
fn the_text_exposition_is_well_formed() {
    let m = Metrics::default();
    m.attempt("al\"pha", "a\\m\nx", "success");
    m.generation(&rec("a/m", "beta", Some("k"), "0.5", 1));
    let t = m.render();
    assert!(t.contains("# TYPE polyroute_requests_total counter\n"));
    assert!(t.contains("# TYPE polyroute_in_flight_requests gauge\npolyroute_in_flight_requests"));
    assert!(t.contains(
        "polyroute_attempts_total{provider=\"al\\\"pha\",model=\"a\\\\m\\nx\",outcome=\"success\"} 1\n"
    ));
    assert!(
        t.contains("polyroute_request_duration_seconds_bucket{provider=\"beta\",le=\"+Inf\"} 1\n")
    );
    assert!(t.contains("polyroute_request_duration_seconds_count{provider=\"beta\"} 1\n"));
    assert!(t.contains("polyroute_cost_usd_total{model=\"a/m\",provider=\"beta\",key=\"k\"} 0.5\n"));
    // Every sample line is `name{labels} value` with a number for the value.
    for line in t.lines().filter(|l| !l.starts_with('#')) {
        let v = line.rsplit(' ').next().unwrap();
        assert!(v == "+Inf" || v.parse::<f64>().is_ok(), "{line}");
    }
}

#[tokio::test]
async fn waited_time_is_not_overhead() {
    let w = Waited::default();
    w.time(tokio::time::sleep(Duration::from_millis(30))).await;
    assert!(w.get() >= Duration::from_millis(30));
    let o = w.overhead_ms(w.get() + Duration::from_millis(2));
    assert!((o - 2.0).abs() < 1e-6, "{o}");
    assert_eq!(w.overhead_ms(Duration::ZERO), 0.0);
}
