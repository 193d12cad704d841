//! The catalog builder: deterministic, and the committed catalog equals a fresh build of the shared snapshots.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use polyroute_cli::catalog_build::{build, build_all, ProviderTable};
use polyroute_core::dialect::Dialect;

fn sources() -> Option<(String, String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/catalog");
    if !dir.is_dir() {
        eprintln!(
            "skipping: {} is absent (the catalog snapshots are not checked out)",
            dir.display()
        );
        return None;
    }
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("reading {f}: {e}"))
    };
    Some((
        read("openrouter-models.json"),
        read("litellm_model_prices.json"),
        read("openrouter-models-all.json"),
    ))
}

fn committed() -> String {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../polyroute-core/data/catalog.json");
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn committed_catalog_equals_a_fresh_build() {
    let Some((or, ll, all)) = sources() else {
        return;
    };
    let out = build_all(&or, &all, &ll).unwrap();
    assert!(
        out.json == committed(),
        "crates/polyroute-core/data/catalog.json is stale: run scripts/catalog-build"
    );
}

#[test]
fn builds_are_byte_identical_and_meet_targets() {
    let Some((or, ll, all)) = sources() else {
        return;
    };
    let a = build_all(&or, &all, &ll).unwrap();
    let b = build_all(&or, &all, &ll).unwrap();
    assert_eq!(a.json, b.json);
    assert_eq!(a.stats.models - a.stats.embedding_models, 414);
    assert!(a.stats.embedding_models >= 30, "{}", a.stats.report());
    // The chat-only build is unchanged by the embedding rows.
    assert_eq!(build(&or, &ll).unwrap().stats.models, 414);
    assert!(a.stats.models_with_2plus >= 200, "{}", a.stats.report());
    assert_eq!(a.stats.models_without_endpoints, 0);
    assert!(!a.json.contains("\"description\""));
}

#[test]
fn provider_table_is_consistent() {
    let t = ProviderTable::embedded().unwrap();
    for excluded in [
        "aihubmix",
        "vercel_ai_gateway",
        "github_copilot",
        "inferenceapis",
        "openrouter",
        "llamagate",
    ] {
        assert!(
            t.excluded.contains_key(excluded),
            "{excluded} should be excluded"
        );
    }
    let slug = |l: &str| {
        t.provider
            .iter()
            .find(|p| p.litellm.iter().any(|x| x == l))
            .map(|p| p.slug.as_str())
    };
    assert_eq!(slug("together_ai"), Some("together"));
    assert_eq!(slug("bedrock"), Some("amazon-bedrock"));
    assert_eq!(slug("vertex_ai-anthropic_models"), Some("google-vertex"));
    assert_eq!(slug("gemini"), Some("google-ai-studio"));
    assert_eq!(slug("dashscope"), Some("alibaba"));
    assert_eq!(slug("moonshot"), Some("moonshotai"));
    assert_eq!(slug("zai"), Some("z-ai"));
    assert_eq!(slug("lambda_ai"), Some("lambda"));
    // Every provider speaks a translated dialect by default (Bedrock speaks Converse).
    for p in &t.provider {
        assert!(p.dialect.is_translated(), "{}: {}", p.slug, p.dialect);
    }
    let vertex = t
        .provider
        .iter()
        .find(|p| p.slug == "google-vertex")
        .unwrap();
    assert_eq!(vertex.dialect, Dialect::GeminiVertex);
    assert_eq!(vertex.endpoint_dialect("google"), None);
    assert_eq!(
        vertex.endpoint_dialect("anthropic"),
        Some(Dialect::AnthropicVertex)
    );
    assert_eq!(
        vertex.endpoint_dialect("meta-llama"),
        Some(Dialect::OpenAiVertex)
    );
    let studio = t
        .provider
        .iter()
        .find(|p| p.slug == "google-ai-studio")
        .unwrap();
    assert!(
        !studio.base_url.ends_with("/v1beta"),
        "the Gemini dialect's path carries the API version itself"
    );
}

#[test]
fn small_synthetic_build() {
    let or = r#"{"data":[
      {"id":"meta-llama/llama-3.3-70b-instruct","canonical_slug":"meta-llama/llama-3.3-70b-instruct",
       "hugging_face_id":"meta-llama/Llama-3.3-70B-Instruct","name":"Llama","created":1,"description":"prose",
       "context_length":131072,"architecture":{"modality":"text->text","input_modalities":["text"],
       "output_modalities":["text"],"tokenizer":"Llama3","instruct_type":null},
       "pricing":{"prompt":"0.0000001","completion":"0.0000003"},
       "top_provider":{"context_length":131072,"max_completion_tokens":16384,"is_moderated":false},
       "per_request_limits":null,"supported_parameters":["tools","tool_choice","temperature","response_format"],
       "default_parameters":null,"links":{"details":"x"}},
      {"id":"openrouter/auto","canonical_slug":"openrouter/auto","hugging_face_id":null,"name":"Auto","created":1,
       "context_length":2000000,"architecture":{"modality":"text->text","input_modalities":["text"],
       "output_modalities":["text"],"tokenizer":"Router","instruct_type":null},
       "pricing":{"prompt":"-1","completion":"-1"},
       "top_provider":{"context_length":null,"max_completion_tokens":null,"is_moderated":false},
       "supported_parameters":[],"default_parameters":null}
    ]}"#;
    let ll = r#"{
      "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo":{"litellm_provider":"together_ai","mode":"chat",
        "input_cost_per_token":8.8e-07,"output_cost_per_token":8.8e-07,"max_input_tokens":131072},
      "deepinfra/meta-llama/Llama-3.3-70B-Instruct":{"litellm_provider":"deepinfra","mode":"chat",
        "input_cost_per_token":2.2999999e-07,"output_cost_per_token":4e-07,"max_input_tokens":131072,
        "max_output_tokens":8192,"supports_function_calling":false},
      "aihubmix/Llama-3.3-70B-Instruct":{"litellm_provider":"aihubmix","mode":"chat",
        "input_cost_per_token":1e-07,"output_cost_per_token":1e-07}
    }"#;
    let out = build(or, ll).unwrap();
    assert!(!out.json.contains("prose"));
    let v: serde_json::Value = serde_json::from_str(&out.json).unwrap();
    let eps = v["models"][0]["endpoints"].as_array().unwrap();
    let tags: Vec<&str> = eps.iter().map(|e| e["tag"].as_str().unwrap()).collect();
    assert_eq!(tags, ["deepinfra", "together/turbo"]);
    assert_eq!(eps[0]["pricing"]["prompt"], "0.00000023");
    assert_eq!(eps[0]["max_completion_tokens"], 8192);
    let params: Vec<&str> = eps[0]["supported_parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(params, ["temperature", "response_format"]);
    assert_eq!(
        eps[1]["provider_model_id"],
        "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    );
    assert!(v["models"][1]["endpoints"].as_array().unwrap().is_empty());
    assert_eq!(out.stats.excluded_by_provider.get("aihubmix"), Some(&1));
}

#[test]
fn embedding_entries_match_only_embedding_models() {
    let or = r#"{"data":[
      {"id":"openai/text-embedding-3-small-chat","name":"chat","created":1,"context_length":8192,
       "architecture":{"input_modalities":["text"],"output_modalities":["text"]},
       "pricing":{"prompt":"0.000001","completion":"0.000002"},"top_provider":{"context_length":8192}}
    ]}"#;
    let all = r#"{"data":[
      {"id":"openai/text-embedding-3-small","name":"emb","created":1,"context_length":8192,
       "architecture":{"input_modalities":["text"],"output_modalities":["embeddings"]},
       "pricing":{"prompt":"0.00000002","completion":"0"},"top_provider":{"context_length":8192}},
      {"id":"openai/dall-e","name":"img","created":1,"context_length":10,
       "architecture":{"input_modalities":["text"],"output_modalities":["image"]},
       "pricing":{"prompt":"0","completion":"0"},"top_provider":{"context_length":10}}
    ]}"#;
    let ll = r#"{
      "text-embedding-3-small":{"litellm_provider":"openai","mode":"embedding",
        "input_cost_per_token":2e-08,"max_input_tokens":8191,"output_vector_size":1536},
      "text-embedding-3-small-chat":{"litellm_provider":"openai","mode":"chat",
        "input_cost_per_token":1e-06,"output_cost_per_token":2e-06}
    }"#;
    let out = build_all(or, all, ll).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out.json).unwrap();
    let ids: Vec<&str> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "openai/text-embedding-3-small-chat",
            "openai/text-embedding-3-small"
        ]
    );
    let emb = &v["models"][1]["endpoints"][0];
    assert_eq!(emb["provider"], "openai");
    assert_eq!(emb["embedding_dimensions"], 1536);
    assert_eq!(emb["context_length"], 8191);
    assert_eq!(emb["pricing"]["prompt"], "0.00000002");
    assert_eq!(emb["pricing"]["completion"], "0");
    let chat = &v["models"][0]["endpoints"][0];
    assert_eq!(chat["pricing"]["prompt"], "0.000001");
    assert!(chat.get("embedding_dimensions").is_none());
    assert_eq!(out.stats.embedding_models, 1);
}
