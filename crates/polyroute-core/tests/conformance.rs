//! Runs the language-neutral conformance cases under `tests/conformance/**/*.json`.
//!
//! Each file is a JSON array of cases `{name, catalog, op, input, expect}`:
//! - `catalog`: `"embedded"` or a file name under `tests/fixtures/`.
//! - `op: "plan"`: `input = {request, seed?, health?, credentials?, sticky?}`; `expect` may hold `error` (code),
//!   `error_field`, `excluded_by` (subset of reasons), `attempts` (exact endpoint list as `model@tag` or `tag`),
//!   `attempts_prefix`, `attempts_include`, `models`, `excluded` (`{tag: reason}`), `strategy`,
//!   `fallback_costs_more`, `message_contains`, `task_type`, `first_in` (the first tag is one of these).
//! - `op: "cost"`: `input = {model, provider?, usage, utc_minute?, finish_reason?}`; `expect` holds breakdown fields
//!   (decimal strings) and/or `insured`, or `error`.
//! - `op: "request"`: `input = {request}`; `expect = {ok: true}` or `{error, error_field?, message_contains?}`.
// Test and benchmark code: reading fixtures and failing loudly are what it is for.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use polyroute_core::cost::{cost, CostContext};
use polyroute_core::plan::{plan, HealthSnapshot, PlanContext};
use polyroute_core::{Catalog, ChatRequest, Error, Usage};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
}

fn load_catalog(name: &str, cache: &mut BTreeMap<String, Catalog>) -> Catalog {
    if let Some(c) = cache.get(name) {
        return c.clone();
    }
    let c = if name == "embedded" {
        Catalog::embedded().expect("embedded catalog")
    } else {
        let text = std::fs::read_to_string(root().join("tests/fixtures").join(name))
            .expect("fixture catalog");
        Catalog::from_json(&text).expect("fixture catalog valid")
    };
    cache.insert(name.to_string(), c.clone());
    c
}

fn check_error(name: &str, err: &Error, expect: &Value) -> Result<(), String> {
    let want = expect["error"].as_str().unwrap_or("");
    if err.code() != want {
        return Err(format!(
            "{name}: expected error {want}, got {} ({err})",
            err.code()
        ));
    }
    if let Some(f) = expect.get("error_field").and_then(Value::as_str) {
        match err {
            Error::InvalidRequest { field, .. } if field == f => {}
            _ => return Err(format!("{name}: expected error field {f}, got {err:?}")),
        }
    }
    if let Some(s) = expect.get("message_contains").and_then(Value::as_str) {
        if !err.to_string().contains(s) {
            return Err(format!("{name}: message {:?} lacks {s:?}", err.to_string()));
        }
    }
    if let Some(reasons) = expect.get("excluded_by").and_then(Value::as_array) {
        let got = err
            .unavailable()
            .map(|u| u.excluded_by())
            .unwrap_or_default();
        for r in reasons {
            let r = r.as_str().unwrap_or("");
            if !got.contains(&r) {
                return Err(format!("{name}: excluded_by {got:?} lacks {r}"));
            }
        }
    }
    if let Some(status) = expect.get("status").and_then(Value::as_u64) {
        if u64::from(err.http_status()) != status {
            return Err(format!("{name}: status {} != {status}", err.http_status()));
        }
    }
    Ok(())
}

fn run_plan(name: &str, catalog: &Catalog, input: &Value, expect: &Value) -> Result<(), String> {
    let req = ChatRequest::from_value(&input["request"]);
    let health: HealthSnapshot = input
        .get("health")
        .map_or_else(HealthSnapshot::default, |h| {
            serde_json::from_value(h.clone()).expect("health")
        });
    let creds: Option<BTreeSet<String>> = input.get("credentials").map(|c| {
        c.as_array()
            .expect("credentials")
            .iter()
            .map(|x| x.as_str().unwrap_or("").to_string())
            .collect()
    });
    let ctx = PlanContext {
        seed: input.get("seed").and_then(Value::as_u64).unwrap_or(0),
        health: &health,
        credentials: creds.as_ref(),
        unconfigured: None,
        sticky: input.get("sticky").and_then(Value::as_str),
        previous_router_model: input.get("previous_model").and_then(Value::as_str),
        credential_marks: None,
    };
    let result = req.and_then(|r| plan(catalog, &r, &ctx));
    if expect.get("error").is_some() {
        return match result {
            Ok(p) => Err(format!("{name}: expected error, got plan {}", p.to_json())),
            Err(e) => check_error(name, &e, expect),
        };
    }
    let p = result.map_err(|e| format!("{name}: unexpected error {e}"))?;
    let j = p.to_json();
    let tags: Vec<String> = p.attempts.iter().map(|a| a.tag.clone()).collect();
    let full: Vec<String> = p
        .attempts
        .iter()
        .map(|a| format!("{}@{}", a.model, a.tag))
        .collect();
    let matches = |want: &Value, i: usize| {
        let w = want.as_str().unwrap_or("");
        if w.contains('@') {
            full.get(i).is_some_and(|x| x == w)
        } else {
            tags.get(i).is_some_and(|x| x == w)
        }
    };
    if let Some(want) = expect.get("attempts").and_then(Value::as_array) {
        if want.len() != tags.len() || !want.iter().enumerate().all(|(i, w)| matches(w, i)) {
            return Err(format!("{name}: attempts {full:?} != {want:?}"));
        }
    }
    if let Some(want) = expect.get("attempts_prefix").and_then(Value::as_array) {
        if !want.iter().enumerate().all(|(i, w)| matches(w, i)) {
            return Err(format!(
                "{name}: attempts {full:?} do not start with {want:?}"
            ));
        }
    }
    if let Some(want) = expect.get("attempts_include").and_then(Value::as_array) {
        for w in want {
            let w = w.as_str().unwrap_or("");
            if !tags.iter().any(|t| t == w) && !full.iter().any(|t| t == w) {
                return Err(format!("{name}: attempts {full:?} lack {w}"));
            }
        }
    }
    if let Some(want) = expect.get("first_in").and_then(Value::as_array) {
        if !want.iter().any(|w| matches(w, 0)) {
            return Err(format!(
                "{name}: first attempt {:?} not in {want:?}",
                full.first()
            ));
        }
    }
    if let Some(want) = expect.get("models").and_then(Value::as_array) {
        let got: Vec<Value> = p
            .models
            .iter()
            .map(|m| Value::String(m.id.clone()))
            .collect();
        if &got != want {
            return Err(format!("{name}: models {got:?} != {want:?}"));
        }
    }
    if let Some(want) = expect.get("excluded").and_then(Value::as_object) {
        for (tag, reason) in want {
            let hit = p
                .excluded
                .iter()
                .find(|e| &e.endpoint == tag || format!("{}@{}", e.model, e.endpoint) == *tag);
            match hit {
                Some(e) if Value::String(e.reason.as_str().to_string()) == *reason => {}
                other => {
                    return Err(format!(
                        "{name}: exclusion of {tag}: {other:?}, want {reason}"
                    ))
                }
            }
        }
    }
    for key in ["strategy", "fallback_costs_more"] {
        if let Some(want) = expect.get(key) {
            if &j[key] != want {
                return Err(format!("{name}: {key} = {}, want {want}", j[key]));
            }
        }
    }
    if let Some(want) = expect.get("task_type") {
        if j.pointer("/router/task_type") != Some(want) {
            return Err(format!(
                "{name}: task_type {:?}, want {want}",
                j.pointer("/router/task_type")
            ));
        }
    }
    Ok(())
}

fn run_cost(name: &str, catalog: &Catalog, input: &Value, expect: &Value) -> Result<(), String> {
    let model = input["model"].as_str().unwrap_or("");
    let provider = input.get("provider").and_then(Value::as_str);
    let usage: Usage = serde_json::from_value(input["usage"].clone())
        .map_err(|e| format!("{name}: usage: {e}"))?;
    let pricing = catalog.pricing_for(model, provider);
    if expect.get("error").is_some() {
        return match pricing {
            Ok(_) => Err(format!("{name}: expected error")),
            Err(e) => check_error(name, &e, expect),
        };
    }
    let pricing = pricing.map_err(|e| format!("{name}: {e}"))?;
    let ctx = CostContext {
        utc_minute: input
            .get("utc_minute")
            .and_then(Value::as_u64)
            .and_then(|m| u16::try_from(m).ok()),
        finish_reason: Some(
            input
                .get("finish_reason")
                .and_then(Value::as_str)
                .unwrap_or("stop"),
        ),
    };
    let b = serde_json::to_value(cost(pricing, &usage, ctx)).expect("breakdown");
    for (k, want) in expect.as_object().expect("expect object") {
        let got = &b[k];
        let same = match (got, want) {
            (Value::String(g), Value::String(w)) => {
                g.parse::<rust_decimal::Decimal>().ok() == w.parse::<rust_decimal::Decimal>().ok()
            }
            _ => got == want,
        };
        if !same {
            return Err(format!("{name}: cost {k} = {got}, want {want}"));
        }
    }
    Ok(())
}

fn run_request(name: &str, input: &Value, expect: &Value) -> Result<(), String> {
    match ChatRequest::from_value(&input["request"]) {
        Ok(_) if expect.get("ok") == Some(&Value::Bool(true)) => Ok(()),
        Ok(_) => Err(format!("{name}: expected an error, request was accepted")),
        Err(e) if expect.get("error").is_some() => check_error(name, &e, expect),
        Err(e) => Err(format!("{name}: unexpected error {e}")),
    }
}

#[test]
fn conformance_cases() {
    let mut paths = Vec::new();
    files(&root().join("tests/conformance"), &mut paths);
    assert!(!paths.is_empty(), "no conformance files found");
    let mut cache = BTreeMap::new();
    let mut failures = Vec::new();
    let mut count = 0;
    for path in &paths {
        let text = std::fs::read_to_string(path).expect("read case file");
        let cases: Vec<Value> =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for case in &cases {
            count += 1;
            let name = format!(
                "{}::{}",
                path.file_name()
                    .map(|f| f.to_string_lossy())
                    .unwrap_or_default(),
                case["name"].as_str().unwrap_or("?")
            );
            let catalog =
                load_catalog(case["catalog"].as_str().unwrap_or("basic.json"), &mut cache);
            let r = match case["op"].as_str() {
                Some("plan") => run_plan(&name, &catalog, &case["input"], &case["expect"]),
                Some("cost") => run_cost(&name, &catalog, &case["input"], &case["expect"]),
                Some("request") => run_request(&name, &case["input"], &case["expect"]),
                other => Err(format!("{name}: unknown op {other:?}")),
            };
            if let Err(e) = r {
                failures.push(e);
            }
        }
    }
    println!("{count} conformance cases, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
