//! # polyroute
//!
//! The embeddable routing engine: one OpenAI-compatible interface over many LLM providers, with provider
//! routing, model fallback, streaming and exact cost accounting. It executes the plans of [`polyroute_core`]
//! over HTTP (tokio + hyper with rustls, pooled keep-alive, HTTP/2 where offered; through reqwest when the
//! environment names a proxy: `HTTP_PROXY`, `HTTPS_PROXY` or `ALL_PROXY`, with `NO_PROXY`).
//!
//! ```no_run
//! # async fn demo() -> polyroute::Result<()> {
//! use polyroute::{ProviderSettings, Router};
//! let router = Router::builder()
//!     .provider("openai", ProviderSettings::with_key("sk-…"))
//!     .build()?;
//! let answer = router
//!     .chat(serde_json::json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
//!     .await?;
//! println!("{} served by {}", answer["model"], answer["provider"]);
//! # Ok(()) }
//! ```
//!
//! The API is JSON values on purpose: the Python and Node bindings and the HTTP server are thin layers over it.
//! [`http_api`] is the OpenRouter HTTP surface without sockets that the gateway and the bindings' in-process
//! transports share.
//!
//! Every request goes through one lifecycle: admission (plan, free-tier windows, a budget hold held by a
//! [`Reservation`]), one failover loop for unary and streamed attempts, then billing (the [`GenerationRecord`],
//! then the hold committed with the cost). All state sits behind the async traits of [`state`] ([`Stores`]:
//! memory by default, SQLite with [`RouterBuilder::ledger_path`], or any other store via
//! [`RouterBuilder::stores`]).

mod admission;
mod attempt;
mod auth;
mod billing;
mod builder;
mod chat_stream;
mod config;
mod embeddings;
mod failover;
mod health;
pub mod hooks;
pub mod http_api;
mod http_client;
mod ledger;
mod lifecycle;
pub mod metrics;
pub mod otel;
mod pool;
mod read_ahead;
mod reservation;
mod router;
pub mod router_config;
mod secret;
pub mod state;
mod surfaces;
mod wire;

pub use polyroute_core as core;
pub use polyroute_core::error::AttemptRecord;
pub use polyroute_core::plan::{HealthSnapshot, Outcome, OutcomeClass};
pub use polyroute_core::{Catalog, ChatRequest, Error, Result, Usage};

pub use builder::RouterBuilder;
pub use chat_stream::{value_weight, ChatStream, SseStream, Weigh, STREAM_BUFFER_BYTES};
pub use config::{
    AzureSettings, Limits, Options, PoolCredential, ProviderSettings, RequestContext, Timeouts,
};
pub use health::{HealthStore, MemoryHealth, Observation};
pub use hooks::{AttemptEvent, Hooks};
pub use http_api::HttpApi;
pub use ledger::{ApiType, CostDetails, GenerationRecord, Totals};
pub use lifecycle::Timing;
pub use metrics::Metrics;
pub use otel::{OtlpProtocol, TelemetryConfig};
pub use read_ahead::ReadAhead;
pub use reservation::Reservation;
pub use router::{describe, CostInputs, PlanInputs, Router};
pub use router_config::{LimitsConfig, ProviderConfig, RouterConfig, StateConfig, TimeoutsConfig};
pub use secret::ApiKey;
pub use state::memory::{MemoryLedger, MEMORY_LEDGER_CAPACITY};
pub use state::sqlite::{SqliteLedger, SqliteStore};
pub use state::{Budget, Ledger, RateLimiter, Scope, StickyStore, Stores};
pub use surfaces::{SurfaceSse, SurfaceStream};
