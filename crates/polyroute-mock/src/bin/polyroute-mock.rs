//! `polyroute-mock --port 0`: run a loopback mock provider; the first stdout line is
//! `listening on 127.0.0.1:<port>`.

use std::io::Write;
use std::path::PathBuf;

use clap::Parser;
use polyroute_mock::{MockConfig, MockServer};

#[derive(Parser, Debug)]
#[command(
    name = "polyroute-mock",
    about = "Loopback mock LLM providers (OpenAI, Anthropic, Gemini) with fault injection"
)]
struct Args {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Directory of recorded wire payloads for `x-mock-replay` (default: ../shared/data/wire from the repo root).
    #[arg(long)]
    wire_dir: Option<PathBuf>,
    /// Label used in synthetic answers.
    #[arg(long, default_value = "mock")]
    label: String,
    /// Model ids listed by GET /v1/models (repeatable).
    #[arg(long = "model")]
    models: Vec<String>,
    /// Replay spec applied to every generation call (e.g. openai/stream.text.sse).
    #[arg(long)]
    replay: Option<String>,
    /// Content events per synthetic stream.
    #[arg(long)]
    chunks: Option<usize>,
    /// Standing fault for every call (e.g. 503, slow-first-byte=100).
    #[arg(long)]
    fault: Option<String>,
    /// Received requests kept for GET /__mock/calls.
    #[arg(long, default_value_t = 10_000)]
    keep_requests: usize,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn default_wire_dir() -> PathBuf {
    // Run from the repo root: ../shared/data/wire. Otherwise fall back to the repo this binary was built from.
    let from_cwd = PathBuf::from("../shared/data/wire");
    if from_cwd.is_dir() {
        return from_cwd;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/wire")
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("polyroute-mock: cannot start runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let cfg = MockConfig {
            label: args.label,
            wire_dir: Some(args.wire_dir.unwrap_or_else(default_wire_dir)),
            models: if args.models.is_empty() {
                vec!["mock-model".to_string()]
            } else {
                args.models
            },
            replay: args.replay,
            chunks: args.chunks,
            keep_requests: args.keep_requests,
        };
        let server = match MockServer::start_with(cfg, args.port).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("polyroute-mock: cannot bind 127.0.0.1:{}: {e}", args.port);
                return std::process::ExitCode::FAILURE;
            }
        };
        if let Err(e) = server.set_fault(args.fault.as_deref()) {
            eprintln!("polyroute-mock: {e}");
            return std::process::ExitCode::FAILURE;
        }
        let mut out = std::io::stdout();
        let _ = writeln!(out, "listening on {}", server.addr());
        let _ = out.flush();
        // Serve until killed (SIGTERM/SIGINT end the process).
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    })
}
