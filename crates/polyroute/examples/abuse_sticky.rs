//! One line of `scripts/abuse`: sticky-routing inserts into the default in-memory store, for the first 100,000
//! conversations and for 100,000 more past its capacity (each insert used to scan the whole map there).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use futures::executor::block_on;
use polyroute::state::memory::MemorySticky;
use polyroute::StickyStore;

fn main() {
    let s = MemorySticky::default();
    let ttl = Duration::from_secs(1800);
    let rate = |n: u64, d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
    let t0 = Instant::now();
    for k in 0..100_000u64 {
        block_on(s.put(k.wrapping_mul(0x9E37_79B9_7F4A_7C15), "tag", ttl)).unwrap();
    }
    let fill = t0.elapsed();
    // Past capacity: bounded by a time budget so that a slow store still ends.
    let t1 = Instant::now();
    let mut n = 0u64;
    while n < 100_000 && t1.elapsed() < Duration::from_secs(60) {
        block_on(s.put(
            (100_000 + n).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            "tag",
            ttl,
        ))
        .unwrap();
        n += 1;
    }
    let past = t1.elapsed();
    println!(
        "{:<28} first 100k: {:.0} inserts/s; next {n} (past capacity): {:.0} inserts/s; {} kept",
        "100k+ conversations",
        rate(100_000, fill),
        rate(n, past),
        s.len()
    );
}
