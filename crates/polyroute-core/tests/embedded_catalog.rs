//! The embedded default catalog: loads, is complete, keeps facts only, and maps known providers.
#![cfg(feature = "embedded-catalog")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use polyroute_core::catalog::{Catalog, EMBEDDED_JSON};
use polyroute_core::dialect::Dialect;
use polyroute_core::error::Error;
use rust_decimal::Decimal;
use serde_json::Value;

fn catalog() -> Catalog {
    Catalog::embedded().expect("embedded catalog loads")
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[test]
fn loads_all_openrouter_models() {
    let c = catalog();
    let chat = c.models().iter().filter(|m| !m.is_embedding()).count();
    assert_eq!(chat, 414);
    assert!(
        c.models().len() - chat >= 30,
        "embedding models are in the catalog"
    );
    for m in c.models() {
        if m.is_router() {
            assert!(
                m.endpoints.is_empty(),
                "{} is a router and has endpoints",
                m.id
            );
        } else {
            assert!(!m.endpoints.is_empty(), "{} has no endpoint", m.id);
        }
        for e in &m.endpoints {
            assert!(
                c.provider(&e.provider).is_some(),
                "{}: unknown provider {}",
                m.id,
                e.provider
            );
        }
    }
}

#[test]
fn at_least_200_models_have_two_or_more_endpoints() {
    let n = catalog()
        .models()
        .iter()
        .filter(|m| m.endpoints.len() >= 2)
        .count();
    assert!(n >= 200, "only {n} models with >= 2 endpoints");
}

#[test]
fn facts_only_no_prose() {
    assert!(!EMBEDDED_JSON.contains("\"description\""));
    assert!(!EMBEDDED_JSON.contains("\"links\""));
    assert!(!EMBEDDED_JSON.contains("design_arena"));
    // Minified: one line.
    assert_eq!(EMBEDDED_JSON.trim_end().lines().count(), 1);
}

#[test]
fn llama_3_3_70b_has_several_priced_hosts() {
    let c = catalog();
    let m = c.model("meta-llama/llama-3.3-70b-instruct").unwrap();
    let ep = |tag: &str| {
        m.endpoints
            .iter()
            .find(|e| e.tag == tag)
            .unwrap_or_else(|| panic!("no {tag} endpoint"))
    };
    let deepinfra = ep("deepinfra");
    let together = m
        .endpoints
        .iter()
        .find(|e| e.provider == "together")
        .expect("together endpoint");
    assert_ne!(deepinfra.pricing.prompt, together.pricing.prompt);
    assert_eq!(together.tag, "together/turbo");
    assert_eq!(
        together.provider_model_id.as_deref(),
        Some("meta-llama/Llama-3.3-70B-Instruct-Turbo")
    );
    assert_eq!(deepinfra.provider_name, "DeepInfra");
    assert!(m.endpoints.iter().any(|e| e.provider == "amazon-bedrock"));
    assert!(m.endpoints.len() >= 5);
    for e in &m.endpoints {
        assert!(e.context_length > 0);
    }
}

#[test]
fn gpt_4o_has_openai_endpoint_at_openrouter_price() {
    let c = catalog();
    let m = c.model("openai/gpt-4o").unwrap();
    let e = m.endpoints.iter().find(|e| e.tag == "openai").unwrap();
    assert_eq!(e.pricing.prompt, m.pricing.prompt);
    assert_eq!(e.pricing.completion, m.pricing.completion);
    assert_eq!(e.pricing.prompt, dec("0.0000025"));
    assert_eq!(e.provider_model_id.as_deref(), Some("gpt-4o"));
    assert_eq!(
        c.provider("openai").unwrap().api_key_env.as_deref(),
        Some("OPENAI_API_KEY")
    );
}

#[test]
fn claude_sonnet_has_anthropic_bedrock_and_vertex() {
    let c = catalog();
    let m = c.model("anthropic/claude-sonnet-4.5").unwrap();
    let providers: Vec<&str> = m.endpoints.iter().map(|e| e.provider.as_str()).collect();
    for p in ["anthropic", "amazon-bedrock", "google-vertex"] {
        assert!(providers.contains(&p), "missing {p} in {providers:?}");
    }
    let a = m
        .endpoints
        .iter()
        .find(|e| e.provider == "anthropic")
        .unwrap();
    assert_eq!(a.provider_model_id.as_deref(), Some("claude-sonnet-4-5"));
    assert_eq!(c.provider("anthropic").unwrap().dialect, Dialect::Anthropic);
    assert_eq!(c.provider("Amazon Bedrock").unwrap().slug, "amazon-bedrock");
    // Closed-weight models are not resold by third-party hosts.
    assert!(!providers
        .iter()
        .any(|p| matches!(*p, "deepinfra" | "perplexity")));
}

#[test]
fn gemini_and_quantized_tags() {
    let c = catalog();
    let m = c.model("google/gemini-2.5-flash").unwrap();
    let e = m
        .endpoints
        .iter()
        .find(|e| e.provider == "google-ai-studio")
        .unwrap();
    assert_eq!(e.provider_model_id.as_deref(), Some("gemini-2.5-flash"));
    assert_eq!(
        c.provider("google-ai-studio").unwrap().dialect,
        Dialect::Gemini
    );
    let any_fp8 = c
        .models()
        .iter()
        .flat_map(|m| &m.endpoints)
        .any(|e| e.tag.ends_with("/fp8") && e.quantization.map(|q| q.as_str()) == Some("fp8"));
    assert!(any_fp8);
}

#[test]
fn free_rows_and_routers() {
    let c = catalog();
    let free = c.model("openai/gpt-oss-20b:free").unwrap();
    assert_eq!(free.endpoints.len(), 1);
    assert_eq!(free.endpoints[0].provider, "openrouter");
    assert!(free.endpoints[0].pricing.prompt.is_zero());
    assert!(c.model("openrouter/auto").unwrap().endpoints.is_empty());
}

#[test]
fn validation_errors_report_paths() {
    let mut v: Value = serde_json::from_str(EMBEDDED_JSON).unwrap();
    v["models"][3]["pricing"]["prompt"] = Value::String("not-a-price".into());
    v["models"][5]["endpoints"][0]["provider"] = Value::String("nowhere".into());
    let text = serde_json::to_string(&v).unwrap();
    let Err(Error::InvalidCatalog { issues }) = Catalog::from_json(&text) else {
        panic!("broken catalog accepted");
    };
    assert!(
        issues
            .iter()
            .any(|i| i.starts_with("models[3].pricing.prompt")),
        "{issues:?}"
    );
}

#[test]
fn unknown_provider_is_reported_with_path() {
    let mut v: Value = serde_json::from_str(EMBEDDED_JSON).unwrap();
    v["models"][5]["endpoints"][0]["provider"] = Value::String("nowhere".into());
    let text = serde_json::to_string(&v).unwrap();
    let Err(Error::InvalidCatalog { issues }) = Catalog::from_json(&text) else {
        panic!("broken catalog accepted");
    };
    assert!(
        issues
            .iter()
            .any(|i| i.starts_with("models[5].endpoints[0].provider")),
        "{issues:?}"
    );
}
