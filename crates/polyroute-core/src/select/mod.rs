//! Provider selection: hard filters with exclusion reasons, and ordering strategies.

pub mod filters;
pub mod order;
