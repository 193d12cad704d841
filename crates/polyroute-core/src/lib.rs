//! # polyroute-core
//!
//! The pure, sans-I/O heart of polyroute: it takes a catalog, a request, health observations and a seed, and
//! returns decisions (an ordered attempt plan with the reason for every exclusion), translated payloads, costs and
//! typed errors. It never opens a socket, reads the clock or the environment, or draws ambient randomness.

pub mod account_query;
pub mod auto;
pub mod catalog;
pub mod cost;
pub mod dialect;
pub mod error;
pub mod eventstream;
#[doc(hidden)]
#[allow(clippy::panic)]
pub mod fuzzing;
pub mod health;
pub mod outcome;
pub mod plan;
pub mod providers;
pub mod resolve;
pub mod select;
pub mod sse;
pub mod surfaces;
pub mod types;

pub use catalog::Catalog;
pub use error::{Error, Result};
pub use plan::{plan, Next, Outcome, OutcomeClass, Plan, PlanContext};
pub use types::{ChatRequest, Usage};
