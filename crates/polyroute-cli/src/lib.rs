//! Library part of the `polyroute` command: one module per subcommand, so that tests can call them directly.

pub mod catalog_build;
pub mod inspect;
pub mod present;
pub mod serve;
