//! The `polyroute` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use polyroute_cli::present::Screen;
use polyroute_cli::{catalog_build, inspect};
use polyroute_core::catalog::ModelFilter;
use polyroute_core::Usage;

use polyroute_cli::serve::cli as serve_cmd;

// The gateway allocates small JSON values on several threads per request; glibc's allocator spends more time
// there (arena growth, consolidation) than mimalloc does.
#[global_allocator]
static ALLOC: Mimalloc = Mimalloc;

/// mimalloc as the global allocator. A layout whose alignment `mi_malloc` already guarantees (16 bytes, or the
/// size when that is smaller, as for the system allocator) takes mimalloc's plain entry points: its aligned ones
/// check the alignment first, and cost the gateway about 40 instructions more per allocation (178 allocations per
/// JSON request).
struct Mimalloc;

/// What `mi_malloc` aligns every block to (`MI_MAX_ALIGN_SIZE` on the targets polyroute builds for).
const MI_ALIGN: usize = 16;

fn plain(layout: std::alloc::Layout) -> bool {
    layout.align() <= MI_ALIGN && layout.align() <= layout.size()
}

// SAFETY: every block comes from mimalloc and goes back to `mi_free`, which takes blocks of every entry point;
// the plain entry points are used only where their alignment guarantee covers the layout, and the aligned ones
// otherwise. A null answer reaches the caller as the allocation failure it means.
#[allow(unsafe_code)]
unsafe impl std::alloc::GlobalAlloc for Mimalloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if plain(layout) {
            libmimalloc_sys::mi_malloc(layout.size()).cast()
        } else {
            libmimalloc_sys::mi_malloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        if plain(layout) {
            libmimalloc_sys::mi_zalloc(layout.size()).cast()
        } else {
            libmimalloc_sys::mi_zalloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: std::alloc::Layout) {
        libmimalloc_sys::mi_free(ptr.cast());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // The new block must keep the alignment for the new size too.
        if layout.align() <= MI_ALIGN && layout.align() <= new_size {
            libmimalloc_sys::mi_realloc(ptr.cast(), new_size).cast()
        } else {
            libmimalloc_sys::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
        }
    }
}

#[derive(Debug, Parser)]
#[command(name = "polyroute", version, about = "Embeddable LLM routing engine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct CatalogArgs {
    /// Use this catalog file instead of the embedded default.
    #[arg(long, global = true)]
    catalog: Option<PathBuf>,
    /// Overlay this catalog file (own endpoints, negotiated prices) on the catalog.
    #[arg(long, global = true)]
    overlay: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List models (filter by modality, parameter, provider, price).
    Models {
        /// Accepts this input modality (image, audio, file, video).
        #[arg(long)]
        input: Option<String>,
        /// Produces this output modality.
        #[arg(long)]
        output: Option<String>,
        /// Supports this parameter (repeatable: tools, structured_outputs, reasoning, …).
        #[arg(long = "param")]
        params: Vec<String>,
        /// Served by this provider (slug or display name).
        #[arg(long)]
        provider: Option<String>,
        /// Prompt price at most this many USD per million tokens.
        #[arg(long)]
        max_price: Option<rust_decimal::Decimal>,
        /// Only free models.
        #[arg(long)]
        free: bool,
        /// Substring of the id or name.
        #[arg(long)]
        search: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cat: CatalogArgs,
    },
    /// Show the ordered attempts and every exclusion for a request.
    Plan {
        /// Request JSON file, or `-` for stdin. Without it, build the request from the flags.
        request: Option<String>,
        /// Model slug (when no request file is given).
        #[arg(long, short)]
        model: Option<String>,
        /// Fallback model (repeatable, at most 3).
        #[arg(long = "fallback")]
        fallbacks: Vec<String>,
        /// `provider` preferences as JSON, e.g. '{"sort":"price"}'.
        #[arg(long)]
        provider: Option<String>,
        /// User message.
        #[arg(long, default_value = "Hello")]
        prompt: String,
        /// max_tokens.
        #[arg(long)]
        max_tokens: Option<u64>,
        /// Seed of the weighted random order (same seed, same plan).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cat: CatalogArgs,
    },
    /// Price a usage for a model (and optionally a provider endpoint).
    Cost {
        /// Model slug.
        #[arg(long, short)]
        model: String,
        /// Provider slug, endpoint tag or display name (default: the model-level price).
        #[arg(long)]
        provider: Option<String>,
        /// Prompt tokens (cache reads and writes included).
        #[arg(long, default_value_t = 0)]
        prompt_tokens: u64,
        /// Completion tokens (reasoning included).
        #[arg(long, default_value_t = 0)]
        completion_tokens: u64,
        /// Cache-read tokens.
        #[arg(long, default_value_t = 0)]
        cached_tokens: u64,
        /// Cache-write tokens.
        #[arg(long, default_value_t = 0)]
        cache_write_tokens: u64,
        /// Reasoning tokens.
        #[arg(long, default_value_t = 0)]
        reasoning_tokens: u64,
        /// A full usage object as JSON instead of the token flags.
        #[arg(long)]
        usage: Option<String>,
        /// Minute of the UTC day, for time-window prices.
        #[arg(long)]
        utc_minute: Option<u16>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cat: CatalogArgs,
    },
    /// Catalog maintenance.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Run the OpenRouter-compatible HTTP gateway.
    Serve(serve_cmd::ServeArgs),
    /// Gateway API keys (stored hashed in the data directory).
    Keys {
        #[command(subcommand)]
        command: serve_cmd::KeysCommand,
        /// Data directory [default: the config's, else $POLYROUTE_DATA_DIR, $XDG_DATA_HOME/polyroute, ~/.local/share/polyroute]
        #[arg(long, global = true)]
        data_dir: Option<PathBuf>,
        /// The gateway's configuration: its `[server] data_dir` unless --data-dir is given; with `[state] postgres`
        /// the keys are in PostgreSQL.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    /// Apply the PostgreSQL migrations of `[state] postgres` (the gateway also applies them on start).
    Migrate {
        /// The gateway's configuration.
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum CatalogCommand {
    /// Generate the embedded default catalog from the OpenRouter and LiteLLM snapshots.
    Build {
        /// OpenRouter `/api/v1/models` file [default: ../shared/data/catalog/openrouter-models.json from the repo root];
        /// the embedding models come from `openrouter-models-all.json` beside it
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
        Command::Serve(args) => serve_cmd::serve(args),
        Command::Keys {
            command,
            data_dir,
            config,
        } => serve_cmd::keys(command, config.as_deref(), data_dir.as_deref()),
        Command::Migrate { config } => serve_cmd::migrate(&config),
        Command::Models {
            input,
            output,
            params,
            provider,
            max_price,
            free,
            search,
            json,
            cat,
        } => inspect::load_catalog(cat.catalog.as_deref(), cat.overlay.as_deref()).and_then(|c| {
            let filter = ModelFilter {
                input_modality: input,
                output_modality: output,
                supported_parameters: params,
                provider,
                max_prompt_price: max_price,
                free: free.then_some(true),
                search,
            };
            inspect::check_filter(&c, &filter)?;
            print!("{}", inspect::models(&c, &filter, json, Screen::stdout()));
            Ok(())
        }),
        Command::Plan {
            request,
            model,
            fallbacks,
            provider,
            prompt,
            max_tokens,
            seed,
            json,
            cat,
        } => {
            let run = || -> anyhow::Result<bool> {
                let c = inspect::load_catalog(cat.catalog.as_deref(), cat.overlay.as_deref())?;
                let req = match (request, model) {
                    (Some(src), _) => inspect::read_request(&src)?,
                    (None, Some(m)) => {
                        let prov = provider
                            .map(|p| serde_json::from_str(&p))
                            .transpose()
                            .map_err(|e| anyhow::anyhow!("--provider is not valid JSON: {e}"))?;
                        inspect::request_from_flags(&m, &fallbacks, prov, &prompt, max_tokens)
                    }
                    (None, None) => {
                        anyhow::bail!("give a request file (or - for stdin) or --model")
                    }
                };
                let out = inspect::plan_command(&c, &req, seed, json, Screen::stdout());
                print!("{}", out.text);
                Ok(out.failed)
            };
            match run() {
                Ok(false) => Ok(()),
                Ok(true) => return ExitCode::from(2),
                Err(e) => Err(e),
            }
        }
        Command::Cost {
            model,
            provider,
            prompt_tokens,
            completion_tokens,
            cached_tokens,
            cache_write_tokens,
            reasoning_tokens,
            usage,
            utc_minute,
            json,
            cat,
        } => {
            let run = || -> anyhow::Result<()> {
                let c = inspect::load_catalog(cat.catalog.as_deref(), cat.overlay.as_deref())?;
                let u: Usage = match usage {
                    Some(text) => {
                        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("--usage: {e}"))?
                    }
                    None => {
                        let mut u = Usage {
                            prompt_tokens,
                            completion_tokens,
                            total_tokens: prompt_tokens + completion_tokens,
                            ..Usage::default()
                        };
                        u.prompt_tokens_details.cached_tokens = cached_tokens;
                        u.prompt_tokens_details.cache_write_tokens = cache_write_tokens;
                        u.completion_tokens_details.reasoning_tokens = reasoning_tokens;
                        u
                    }
                };
                let out =
                    inspect::cost_command(&c, &model, provider.as_deref(), &u, utc_minute, json)
                        .map_err(|e| anyhow::anyhow!("[{}] {e}", e.code()))?;
                print!("{out}");
                Ok(())
            };
            run()
        }
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

#[cfg(test)]
mod tests {
    use std::alloc::{alloc, alloc_zeroed, dealloc, realloc, Layout};

    /// Every block the allocator gives back is aligned as its layout asks, through the plain and the aligned entry
    /// points alike, zeroed when asked, and keeps its bytes and its alignment when it grows or shrinks.
    #[test]
    #[allow(unsafe_code, clippy::unwrap_used)]
    fn blocks_are_aligned_as_asked() {
        for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
            for size in (1..=200).chain([1000, 5000, 70_000]) {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: non-zero sizes; every block is freed with the layout it was allocated with.
                unsafe {
                    let p = alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "alloc {size} {align}");
                    p.write_bytes(0xA5, size);
                    let grown = size * 3 + 7;
                    let q = realloc(p, layout, grown);
                    assert_eq!(q as usize % align, 0, "realloc {size}->{grown} {align}");
                    assert!((0..size).all(|i| *q.add(i) == 0xA5));
                    let small = size.div_ceil(2);
                    let r = realloc(q, Layout::from_size_align(grown, align).unwrap(), small);
                    assert_eq!(r as usize % align, 0, "realloc {grown}->{small} {align}");
                    assert!((0..small).all(|i| *r.add(i) == 0xA5));
                    dealloc(r, Layout::from_size_align(small, align).unwrap());
                    let z = alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "zeroed {size} {align}");
                    assert!((0..size).all(|i| *z.add(i) == 0));
                    dealloc(z, layout);
                }
            }
        }
    }
}
