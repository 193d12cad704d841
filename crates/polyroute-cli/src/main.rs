//! The `polyroute` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use polyroute_cli::catalog_build;

#[derive(Debug, Parser)]
#[command(name = "polyroute", version, about = "Embeddable LLM routing engine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Catalog maintenance.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
}

#[derive(Debug, Subcommand)]
enum CatalogCommand {
    /// Generate the embedded default catalog from the OpenRouter and LiteLLM snapshots.
    Build {
        /// OpenRouter `/api/v1/models` file [default: ../shared/data/catalog/openrouter-models.json from the repo root]
        #[arg(long)]
        openrouter: Option<PathBuf>,
        /// LiteLLM price map [default: ../shared/data/catalog/litellm_model_prices.json from the repo root]
        #[arg(long)]
        litellm: Option<PathBuf>,
        /// Output file [default: crates/polyroute-core/data/catalog.json in the repo]
        #[arg(long)]
        out: Option<PathBuf>,
        /// Do not write; fail if the output file differs from a fresh build.
        #[arg(long)]
        check: bool,
    },
}

/// The repository root: the nearest ancestor of the working directory holding the core crate, else the root this
/// binary was built from.
fn repo_root() -> PathBuf {
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            if dir.join("crates/polyroute-core/Cargo.toml").is_file() {
                return dir.to_path_buf();
            }
        }
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Catalog {
            command:
                CatalogCommand::Build {
                    openrouter,
                    litellm,
                    out,
                    check,
                },
        } => {
            let (d_or, d_ll, d_out) = catalog_build::default_paths(&repo_root());
            catalog_build::run(
                &openrouter.unwrap_or(d_or),
                &litellm.unwrap_or(d_ll),
                &out.unwrap_or(d_out),
                check,
            )
            .map(|stats| eprint!("{}", stats.report()))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("polyroute: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
