//! Model-choosing routers.
pub mod classify;
pub use classify::{classify, TaskType};
