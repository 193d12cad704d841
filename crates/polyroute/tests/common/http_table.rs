//! The HTTP parity table (`tests/parity/http.json`): loading it, the requests it sends, and each answer recorded
//! as `{status, content_type, generation_header, body}` with ids and timings masked. Shared by the engine's test
//! (`http_parity.rs`) and the gateway's (`crates/polyroute-cli/tests/http_parity.rs`); Python and Node do the same
//! in their own tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use serde_json::{json, Value};

pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/parity")
}

/// The table, with `{mock}` in the catalog replaced by the mock's base URL.
pub fn table(mock: &str) -> Value {
    let text = std::fs::read_to_string(dir().join("http.json")).unwrap();
    let t: Value = serde_json::from_str(&text).unwrap();
    let catalog = t["catalog"].to_string().replace("{mock}", mock);
    let mut t = t;
    t["catalog"] = serde_json::from_str(&catalog).unwrap();
    t
}

/// One request of the table: method, path (with `{gen:N}` replaced), headers and body bytes.
pub fn request(
    case: &Value,
    gens: &[Option<String>],
) -> (String, String, Vec<(String, String)>, Vec<u8>) {
    let mut path = case["path"].as_str().unwrap().to_string();
    for (i, g) in gens.iter().enumerate() {
        if let Some(g) = g {
            path = path.replace(&format!("{{gen:{i}}}"), g);
        }
    }
    let headers = case["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let body = match (case.get("raw"), case.get("body")) {
        (Some(Value::String(r)), _) => r.clone().into_bytes(),
        (_, Some(b)) => serde_json::to_vec(b).unwrap(),
        _ => Vec::new(),
    };
    (
        case["method"].as_str().unwrap().to_string(),
        path,
        headers,
        body,
    )
}

fn mask(v: &mut Value, keys: &[String]) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if keys.contains(k) && !x.is_null() {
                    *x = json!("*");
                } else {
                    mask(x, keys);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| mask(x, keys)),
        Value::String(s) if s.starts_with("gen-") => *v = json!("gen-*"),
        _ => {}
    }
}

/// An answer as the table records it.
pub fn record(
    t: &Value,
    status: u16,
    content_type: Option<&str>,
    generation: bool,
    body: &[u8],
) -> Value {
    let keys: Vec<String> = t["mask_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let ct = content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_string());
    let text = String::from_utf8_lossy(body);
    let mut b = if ct.as_deref() == Some("text/event-stream") {
        Value::Array(
            text.split("\n\n")
                .filter_map(|ev| ev.strip_prefix("data: "))
                .map(|d| serde_json::from_str(d).unwrap_or_else(|_| json!(d)))
                .collect(),
        )
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| json!(text))
    };
    mask(&mut b, &keys);
    json!({"status": status, "content_type": ct, "generation_header": generation, "body": b})
}

/// Compare with `http.expected.json` (written first when `bless`).
pub fn check(got: &Value, bless: bool) {
    let path = dir().join("http.expected.json");
    if bless {
        std::fs::write(&path, serde_json::to_string_pretty(got).unwrap() + "\n").unwrap();
    }
    let want: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let (g, w) = (got.as_array().unwrap(), want.as_array().unwrap());
    assert_eq!(g.len(), w.len());
    for (i, (g, w)) in g.iter().zip(w).enumerate() {
        assert_eq!(g, w, "request {i}");
    }
}
