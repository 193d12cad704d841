//! Any JSON body that parses as a request must translate (or be refused with an error) without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polyroute_core::providers::{build_request, Dialect, TranslateOptions};
use polyroute_core::types::ChatRequest;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let Ok(req) = ChatRequest::from_value(&v) else { return };
    for (d, provider, model) in [
        (Dialect::OpenAi, "groq", "llama"),
        (Dialect::OpenAi, "openrouter", "x/y"),
        (Dialect::Anthropic, "anthropic", "claude-sonnet-4-5"),
        (Dialect::Gemini, "google-ai-studio", "gemini-2.5-flash"),
        (Dialect::Gemini, "google-ai-studio", "gemini-3-pro-preview"),
    ] {
        for strict in [false, true] {
            let mut o = TranslateOptions::new(provider, model);
            o.strict = strict;
            o.supports_native_structured_output = strict;
            if let Ok(n) = build_request(d, &req, &o) {
                assert!(n.body.is_object());
            }
        }
    }
});
