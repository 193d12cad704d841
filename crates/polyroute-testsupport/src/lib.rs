//! Throwaway database servers for polyroute's store tests (dev-only, never published).
//!
//! [`RedisServer::start`] runs `redis-server` (or `valkey-server`) and [`PostgresServer::start`] runs `initdb` +
//! `postgres` from `/usr/lib/postgresql/*/bin` (or `PATH`), each on a free `127.0.0.1` port with its files in a
//! temporary directory. Both wait until the server answers (a bounded loop), and stop it by PID when dropped (a
//! polite signal, then `SIGKILL` after a bounded wait), then remove the directory. A watchdog shell process per
//! server ends the server too when the test process dies without running destructors (killed, `abort`).
//!
//! As root, PostgreSQL runs as the `postgres` system user (it refuses to run as root); `.ci/run` installs both
//! servers from Debian when they are missing.
//!
//! [`available`] lets a test skip with a message on a machine without the binaries, but CI has them: set
//! `POLYROUTE_REQUIRE_SERVERS=1` (CI does) to turn a missing binary into a failure instead.

mod certs;
mod postgres;
mod process;
mod redis;
mod redis_cluster;

pub use certs::TestCerts;
pub use postgres::PostgresServer;
pub use redis::RedisServer;
pub use redis_cluster::RedisCluster;

use std::io;

/// Which servers can be started on this machine: `Ok(())` or the reason. With `POLYROUTE_REQUIRE_SERVERS` set
/// (or `CI`), a missing binary is an error the test should fail with, not skip.
///
/// # Errors
/// The missing binary, named.
pub fn available() -> io::Result<()> {
    redis::server_binary()?;
    postgres::bin_dir()?;
    Ok(())
}

/// Whether a test should fail (rather than skip) when [`available`] says no.
#[must_use]
pub fn servers_required() -> bool {
    std::env::var_os("POLYROUTE_REQUIRE_SERVERS").is_some() || std::env::var_os("CI").is_some()
}

/// Start a Redis server and a PostgreSQL server, or say why not. `Ok(None)` means skip (binaries missing and not
/// [`servers_required`]); the message is printed to stderr.
///
/// # Errors
/// A server failed to start, or binaries are missing on a machine that requires them.
pub fn skip_unless_available(what: &str) -> io::Result<bool> {
    match available() {
        Ok(()) => Ok(true),
        Err(e) if !servers_required() => {
            eprintln!("skipping {what}: {e}");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}
