//! The parity table (`tests/parity/plan_cost.json`): plan and cost with explicit inputs through the engine's
//! `plan_with` / `cost_with`. This test writes nothing unless `POLYROUTE_BLESS=1`; it compares with
//! `plan_cost.expected.json`, which the Python and Node suites compare with too, so the three agree.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use polyroute::{ChatRequest, CostInputs, PlanInputs, Router, RouterConfig};
use serde::Deserialize;
use serde_json::{json, Value};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests")
}

/// Every answer of the table, in order, as `{"plan": [...], "cost": [...]}` (errors as their envelope).
fn answers() -> Value {
    let table: Value = serde_json::from_str(
        &std::fs::read_to_string(dir().join("parity/plan_cost.json")).unwrap(),
    )
    .unwrap();
    let mut cfg = RouterConfig::from_value(&table["router"]).unwrap();
    cfg.catalog = Some(Value::String(
        dir()
            .join("fixtures/basic.json")
            .to_string_lossy()
            .into_owned(),
    ));
    let router = Router::from_config(&cfg).unwrap();
    let plans: Vec<Value> = table["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let inputs = PlanInputs::deserialize(c.get("inputs").unwrap_or(&json!({}))).unwrap();
            let req = ChatRequest::from_value(&c["request"]).unwrap();
            match router.plan_with(&req, &inputs) {
                Ok(p) => serde_json::to_value(p).unwrap(),
                Err(e) => e.to_envelope(),
            }
        })
        .collect();
    let costs: Vec<Value> = table["cost"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let inputs = CostInputs::deserialize(&c["inputs"]).unwrap();
            router
                .cost_with(
                    c["model"].as_str().unwrap(),
                    &c["usage"],
                    c["provider"].as_str(),
                    &inputs,
                )
                .unwrap_or_else(|e| e.to_envelope())
        })
        .collect();
    json!({"plan": plans, "cost": costs})
}

#[test]
fn the_engine_answers_the_parity_table() {
    let got = answers();
    let path = dir().join("parity/plan_cost.expected.json");
    if std::env::var_os("POLYROUTE_BLESS").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
    }
    let want: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(got, want);
    // The divergences this table pins: a seed alone still filters on the router's credentials (gamma and delta
    // hold none), and a cost context without a finish reason is "stop" (a zero completion is billed).
    let seeded = got["plan"][1].to_string();
    assert!(
        !seeded.contains("\"provider\":\"gamma\"") || seeded.contains("credential"),
        "{seeded}"
    );
    assert_ne!(got["cost"][0]["total"], got["cost"][1]["total"]);
}
