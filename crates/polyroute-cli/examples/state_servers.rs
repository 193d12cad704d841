//! Throwaway Valkey/Redis and PostgreSQL for `scripts/bench-state` (polyroute-testsupport: temporary
//! directories, loopback ports). Prints `redis <url>` and `postgres <url>`, then keeps them until stdin closes
//! or a line is read, and stops them by PID.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, Write};

use polyroute_testsupport::{PostgresServer, RedisServer};

fn main() {
    let redis = RedisServer::start().expect("redis-server");
    let pg = PostgresServer::start().expect("postgres");
    let url = pg.create_database("bench").expect("create database");
    let mut out = std::io::stdout();
    writeln!(out, "redis {}", redis.url()).unwrap();
    writeln!(out, "postgres {url}").unwrap();
    out.flush().unwrap();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    drop(pg);
    drop(redis);
}
