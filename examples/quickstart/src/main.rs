use polyroute::{ProviderSettings, Router};

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // Only an OpenAI key is needed: Llama endpoints without a key are skipped, so the fallback serves.
    // OPENAI_BASE_URL (optional) points at any OpenAI-compatible server, e.g. a local mock.
    let mut openai = ProviderSettings::with_key(
        std::env::var("OPENAI_API_KEY").map_err(|_| "set OPENAI_API_KEY")?,
    );
    if let Ok(url) = std::env::var("OPENAI_BASE_URL") {
        openai = openai.base_url(url);
    }
    let router = Router::builder().provider("openai", openai).build()?; // embedded catalog

    let reply = router
        .chat(serde_json::json!({
            "model": "meta-llama/llama-3.3-70b-instruct",
            "models": ["openai/gpt-4o-mini"],          // fallbacks, at most 3
            "provider": {"sort": "price"},
            "messages": [{"role": "user", "content": "Hello"}],
        }))
        .await?;
    let cost = reply["usage"]["cost"].as_f64().unwrap_or_default(); // USD
    println!("{}", reply["choices"][0]["message"]["content"]);
    println!("{} via {}, cost ${cost}", reply["model"], reply["provider"]);
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
