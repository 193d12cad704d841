//! Statistical and property tests of selection and plans.
// Test and benchmark code: reading fixtures and failing loudly are what it is for.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use std::collections::BTreeMap;

use polyroute_core::catalog::{Catalog, Model, Quantization};
use polyroute_core::cost::{cost, CostContext};
use polyroute_core::error::ExclusionReason;
use polyroute_core::plan::{
    plan, EndpointHealth, HealthSnapshot, Next, Outcome, OutcomeClass, PlanContext,
};
use polyroute_core::select::filters::{self, FilterEnv, RequestFacts};
use polyroute_core::types::ProviderPreferences;
use polyroute_core::{ChatRequest, Usage};
use proptest::prelude::*;
use serde_json::{json, Value};

fn fixture() -> Catalog {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/basic.json"
    ))
    .expect("fixture");
    Catalog::from_json(&text).expect("valid fixture")
}

fn req(v: Value) -> ChatRequest {
    ChatRequest::from_value(&v).expect("valid request")
}

/// Semantics §3.4: A $1/M, B $2/M (recent outage), C $3/M. A should come first about nine times as often as C;
/// B is always last.
#[test]
fn worked_example_inverse_square_weighting() {
    let cat = fixture();
    let r = req(json!({"model": "test/worked", "messages": [{"role": "user", "content": "hi"}]}));
    let mut health = HealthSnapshot::default();
    health.endpoints.insert(
        "beta".into(),
        EndpointHealth {
            recent_outage: true,
            ..EndpointHealth::default()
        },
    );
    let mut first: BTreeMap<String, u32> = BTreeMap::new();
    let n = 20_000u32;
    for seed in 0..u64::from(n) {
        let ctx = PlanContext {
            seed,
            health: &health,
            ..PlanContext::default()
        };
        let p = plan(&cat, &r, &ctx).expect("plan");
        assert_eq!(p.attempts.len(), 3);
        assert_eq!(
            p.attempts[2].tag, "beta",
            "the endpoint with an outage is always last"
        );
        *first.entry(p.attempts[0].tag.clone()).or_default() += 1;
    }
    let a = f64::from(first["alpha"]);
    let c = f64::from(first["gamma"]);
    let ratio = a / c;
    // Expected 9.0: P(A first) = 0.9, P(C first) = 0.1. With 20,000 draws the ratio's standard error is ~0.3.
    assert!(
        (7.8..=10.4).contains(&ratio),
        "alpha/gamma first-pick ratio {ratio} (alpha {a}, gamma {c})"
    );
    assert!(!first.contains_key("beta"));
}

#[test]
fn next_moves_through_attempts_and_aggregates() {
    let cat = fixture();
    let r = req(
        json!({"model": "test/worked", "models": ["openai/gpt-test"], "messages": [{"role": "user", "content": "hi"}], "provider": {"sort": "price"}}),
    );
    let mut p = plan(&cat, &r, &PlanContext::default()).expect("plan");
    assert_eq!(p.first().map(|a| a.tag.as_str()), Some("alpha"));
    let mut rl = Outcome::failure(OutcomeClass::RateLimited, 429, "slow down");
    rl.retry_after = Some(7.0);
    assert!(matches!(p.next(&rl), Next::Try(a) if a.tag == "beta"));
    let mut rl2 = rl.clone();
    rl2.retry_after = Some(3.0);
    assert!(matches!(p.next(&rl2), Next::Try(a) if a.tag == "gamma"));
    assert!(matches!(p.next(&rl), Next::Try(a) if a.model == "openai/gpt-test"));
    match p.next(&rl) {
        Next::Fail(e) => {
            assert_eq!(e.code(), "capacity_exhausted");
            assert_eq!(e.http_status(), 429);
            assert_eq!(e.retry_after(), Some(3.0));
            assert_eq!(e.attempts().len(), 4);
            let env = e.to_envelope();
            assert_eq!(
                env["error"]["metadata"]["previous_errors"]
                    .as_array()
                    .map(Vec::len),
                Some(4)
            );
        }
        other => panic!("expected failure, got {other:?}"),
    }
}

#[test]
fn mixed_failures_are_temporarily_unavailable_and_last_error_wins_otherwise() {
    let cat = fixture();
    let r = req(
        json!({"model": "test/worked", "messages": [{"role": "user", "content": "hi"}], "provider": {"sort": "price"}}),
    );
    let mut p = plan(&cat, &r, &PlanContext::default()).expect("plan");
    p.next(&Outcome::failure(OutcomeClass::RateLimited, 429, ""));
    p.next(&Outcome::failure(OutcomeClass::Overloaded, 503, ""));
    match p.next(&Outcome::failure(OutcomeClass::Timeout, 0, "")) {
        Next::Fail(e) => assert_eq!(
            (e.code(), e.http_status()),
            ("temporarily_unavailable", 503)
        ),
        other => panic!("{other:?}"),
    }
    let mut p = plan(&cat, &r, &PlanContext::default()).expect("plan");
    p.next(&Outcome::failure(OutcomeClass::Overloaded, 502, ""));
    p.next(&Outcome::failure(OutcomeClass::Overloaded, 502, ""));
    match p.next(&Outcome::failure(OutcomeClass::Moderation, 403, "flagged")) {
        Next::Fail(e) => {
            assert_eq!(e.code(), "provider_error");
            assert_eq!(e.http_status(), 403);
            assert_eq!(e.error_type(), "content_policy_violation");
            assert_eq!(e.to_string(), "flagged");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn success_ends_and_invalid_request_skips_the_models_other_endpoints() {
    let cat = fixture();
    let r = req(
        json!({"model": "test/worked", "models": ["openai/gpt-test"], "messages": [{"role": "user", "content": "hi"}], "provider": {"sort": "price"}}),
    );
    let mut p = plan(&cat, &r, &PlanContext::default()).expect("plan");
    assert_eq!(p.next(&Outcome::success(200)), Next::Done);
    let mut p = plan(&cat, &r, &PlanContext::default()).expect("plan");
    match p.next(&Outcome::failure(OutcomeClass::InvalidRequest, 400, "bad")) {
        Next::Try(a) => assert_eq!(a.model, "openai/gpt-test"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn context_length_failure_skips_smaller_windows_of_the_same_model() {
    let cat = fixture();
    let r = req(
        json!({"model": "test/open-70b", "messages": [{"role": "user", "content": "hi"}], "provider": {"sort": "price"}}),
    );
    let mut p = plan(&cat, &r, &PlanContext::default()).expect("plan");
    // price order: alpha/fp8 (64k), gamma (32k), alpha (128k), delta (128k), beta (128k)
    assert_eq!(p.first().map(|a| a.tag.as_str()), Some("alpha/fp8"));
    match p.next(&Outcome::failure(
        OutcomeClass::ContextLength,
        400,
        "too long",
    )) {
        Next::Try(a) => assert_eq!(
            a.tag, "alpha",
            "gamma (32k) is skipped after a 64k window failed"
        ),
        other => panic!("{other:?}"),
    }
}

fn arb_prefs() -> impl Strategy<Value = Value> {
    let providers = prop::sample::subsequence(
        vec!["alpha", "alpha/fp8", "beta", "gamma", "delta", "delta/flex"],
        0..4,
    );
    let quants =
        prop::sample::subsequence(vec!["fp8", "bf16", "fp4", "int4", "fp16", "unknown"], 1..3);
    (
        prop::option::of(providers.clone()),
        prop::option::of(providers.clone()),
        prop::option::of(providers),
        prop::option::of(quants),
        prop::option::of(prop::sample::select(vec![
            "price",
            "throughput",
            "latency",
            "exacto",
        ])),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
        prop::option::of(0.05f64..1.0),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(only, ignore, order, q, sort, allow, zdr, maxp, deny)| {
            let mut p = serde_json::Map::new();
            if let Some(v) = only {
                p.insert("only".into(), json!(v));
            }
            if let Some(v) = ignore {
                p.insert("ignore".into(), json!(v));
            }
            if let Some(v) = order {
                p.insert("order".into(), json!(v));
            }
            if let Some(v) = q {
                p.insert("quantizations".into(), json!(v));
            }
            if let Some(v) = sort {
                p.insert("sort".into(), json!(v));
            }
            if let Some(v) = allow {
                p.insert("allow_fallbacks".into(), json!(v));
            }
            if let Some(v) = zdr {
                p.insert("zdr".into(), json!(v));
            }
            if let Some(v) = maxp {
                p.insert("max_price".into(), json!({"prompt": v}));
            }
            if deny == Some(true) {
                p.insert("data_collection".into(), json!("deny"));
            }
            Value::Object(p)
        })
}

fn model<'c>(cat: &'c Catalog, id: &str) -> &'c Model {
    cat.model(id).expect("model")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Every planned endpoint passes every hard filter; attempts are distinct; the planned and excluded endpoints
    /// together are exactly the model's endpoints; the same seed gives the same plan.
    #[test]
    fn plan_invariants(prefs in arb_prefs(), seed in any::<u64>(), max_tokens in prop::option::of(1u64..40_000), outage in any::<bool>()) {
        let cat = fixture();
        let mut body = json!({"model": "test/open-70b", "messages": [{"role": "user", "content": "hello there"}], "provider": prefs});
        if let Some(m) = max_tokens { body["max_tokens"] = json!(m); }
        let r = req(body);
        let mut health = HealthSnapshot::default();
        if outage {
            health.endpoints.insert("alpha".into(), EndpointHealth { recent_outage: true, ..EndpointHealth::default() });
        }
        let ctx = PlanContext { seed, health: &health, ..PlanContext::default() };
        let m = model(&cat, "test/open-70b");
        match plan(&cat, &r, &ctx) {
            Ok(p) => {
                let prefs = r.provider.clone().unwrap_or_default();
                let facts = RequestFacts::new(&r);
                let env = FilterEnv { credentials: None, variant_tier: None };
                let mut seen: Vec<&str> = Vec::new();
                for a in &p.attempts {
                    let e = m.endpoints.iter().find(|e| e.tag == a.tag).expect("endpoint exists");
                    prop_assert!(filters::check(&env, &prefs, &facts, m, e).is_none(), "{} fails a hard filter", a.tag);
                    prop_assert!(!seen.contains(&a.tag.as_str()), "duplicate attempt {}", a.tag);
                    seen.push(&a.tag);
                }
                let mut all: Vec<&str> = seen.clone();
                all.extend(p.excluded.iter().map(|e| e.endpoint.as_str()));
                all.sort_unstable();
                let mut expected: Vec<&str> = m.endpoints.iter().map(|e| e.tag.as_str()).collect();
                expected.sort_unstable();
                prop_assert_eq!(all, expected, "attempts + exclusions are a partition of the endpoints");
                let again = plan(&cat, &r, &ctx).expect("same plan");
                prop_assert_eq!(p.to_json(), again.to_json());
                if prefs.allow_fallbacks == Some(false) && prefs.order.is_none() {
                    prop_assert_eq!(p.attempts.len(), 1);
                }
                if let Some(q) = &prefs.quantizations {
                    for a in &p.attempts {
                        let e = m.endpoints.iter().find(|e| e.tag == a.tag).expect("endpoint");
                        let eq = e.quantization.unwrap_or(Quantization::Unknown);
                        prop_assert!(q.iter().any(|w| eq.satisfies(*w)));
                    }
                }
            }
            Err(e) => {
                let u = e.unavailable().expect("an availability error");
                prop_assert_eq!(u.excluded.len(), m.endpoints.len());
                prop_assert!(!u.excluded_by().is_empty());
            }
        }
    }

    /// Cost is additive over usages and never negative.
    #[test]
    fn cost_additive_and_non_negative(
        p1 in 0u64..2_000_000, c1 in 0u64..200_000, r1 in 0u64..1000, cached1 in 0u64..1_000_000,
        p2 in 0u64..2_000_000, c2 in 0u64..200_000, r2 in 0u64..1000, cached2 in 0u64..1_000_000,
        model_ix in 0usize..4,
    ) {
        let cat = fixture();
        let id = ["anthropic/claude-test-4.5", "test/reasoner", "openai/gpt-test", "test/open-70b"][model_ix];
        let pricing = cat.pricing_for(id, None).expect("pricing");
        let mk = |p: u64, c: u64, r: u64, cached: u64| {
            let mut u = Usage { prompt_tokens: p, completion_tokens: c + r, total_tokens: p + c + r, ..Usage::default() };
            u.completion_tokens_details.reasoning_tokens = r;
            u.prompt_tokens_details.cached_tokens = cached.min(p);
            u
        };
        let (u1, u2) = (mk(p1, c1 + 1, r1, cached1), mk(p2, c2 + 1, r2, cached2));
        let mut sum = mk(p1 + p2, c1 + c2 + 2, r1 + r2, 0);
        sum.prompt_tokens_details.cached_tokens = u1.prompt_tokens_details.cached_tokens + u2.prompt_tokens_details.cached_tokens;
        sum.requests = 2;
        let ctx = CostContext { utc_minute: Some(600), finish_reason: Some("stop") };
        let a = cost(pricing, &u1, ctx);
        let b = cost(pricing, &u2, ctx);
        let s = cost(pricing, &sum, ctx);
        prop_assert!(a.total >= rust_decimal::Decimal::ZERO);
        prop_assert_eq!(a.total + b.total, s.total);
    }
}

#[test]
fn filters_report_first_failing_reason() {
    let cat = fixture();
    let m = model(&cat, "test/open-70b");
    let r = req(
        json!({"model": "test/open-70b", "messages": [{"role": "user", "content": "x"}], "provider": {"ignore": ["gamma"], "zdr": true}}),
    );
    let prefs: ProviderPreferences = r.provider.clone().unwrap_or_default();
    let facts = RequestFacts::new(&r);
    let env = FilterEnv {
        credentials: None,
        variant_tier: None,
    };
    let gamma = m
        .endpoints
        .iter()
        .find(|e| e.tag == "gamma")
        .expect("gamma");
    assert_eq!(
        filters::check(&env, &prefs, &facts, m, gamma).map(|x| x.0),
        Some(ExclusionReason::IgnoredProviders)
    );
    let alpha = m
        .endpoints
        .iter()
        .find(|e| e.tag == "alpha")
        .expect("alpha");
    assert_eq!(
        filters::check(&env, &prefs, &facts, m, alpha).map(|x| x.0),
        Some(ExclusionReason::DataPolicyZdr)
    );
}

/// A router's precomputed credential marks plan exactly as the merge over the set does, and are read only for
/// the set they hold and the catalog they were made for.
#[test]
fn credential_marks_plan_as_the_merge_does() {
    use polyroute_core::select::filters::CredentialMarks;
    use std::collections::BTreeSet;
    let cat = Catalog::embedded().expect("embedded catalog");
    let model = "meta-llama/llama-3.3-70b-instruct";
    let providers: BTreeSet<String> = cat
        .model(model)
        .expect("wide model")
        .endpoints
        .iter()
        .map(|e| e.provider.clone())
        .collect();
    assert!(providers.len() >= 8, "{providers:?}");
    // Every other provider, plus one the model does not have.
    let mut some: BTreeSet<String> = providers.iter().step_by(2).cloned().collect();
    some.insert("aaa-not-a-host".into());
    let r = req(json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}));
    let health = HealthSnapshot::default();
    let marks = CredentialMarks::new(&cat, some.clone());
    let other_catalog = CredentialMarks::new(&Catalog::embedded().expect("embedded"), some.clone());
    for seed in 0..20 {
        let base = PlanContext {
            seed,
            health: &health,
            credentials: Some(&some),
            ..PlanContext::default()
        };
        let merged = plan(&cat, &r, &base).expect("plan");
        assert!(merged
            .excluded
            .iter()
            .any(|e| e.reason == ExclusionReason::NoCredentials));
        let marked = plan(
            &cat,
            &r,
            &PlanContext {
                credentials: Some(marks.credentials()),
                credential_marks: Some(&marks),
                ..base
            },
        )
        .expect("plan");
        assert_eq!(marked, merged, "seed {seed}");
        // Marks made over another catalog are not read (the set is the same, so neither is the plan).
        let elsewhere = plan(
            &cat,
            &r,
            &PlanContext {
                credentials: Some(other_catalog.credentials()),
                credential_marks: Some(&other_catalog),
                ..base
            },
        )
        .expect("plan");
        assert_eq!(elsewhere, merged, "seed {seed}");
    }
    // Marks for one set are not read when the plan's set is another: every provider credentialed here.
    let all = PlanContext {
        health: &health,
        credentials: Some(&providers),
        ..PlanContext::default()
    };
    let full = plan(&cat, &r, &all).expect("plan");
    let with_stale = plan(
        &cat,
        &r,
        &PlanContext {
            credential_marks: Some(&marks),
            ..all
        },
    )
    .expect("plan");
    assert_eq!(with_stale, full);
    assert!(!full
        .excluded
        .iter()
        .any(|e| e.reason == ExclusionReason::NoCredentials));
}
