//! OpenAI-shaped wire types used by routing and cost.

pub mod embeddings;
pub mod limits;
pub mod request;
mod request_de;
mod usage;

pub use request::*;
pub use usage::*;
