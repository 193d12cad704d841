//! Loads the embedded catalog and prints the time taken and the resident memory before and after (Linux), so that
//! the ≤ 20 ms / ≤ 30 MB targets can be checked outside a timed test.
// Test and benchmark code: reading fixtures and failing loudly are what it is for.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let before = rss_kib();
    let t = std::time::Instant::now();
    let cat = polyroute_core::Catalog::embedded().expect("embedded catalog");
    let took = t.elapsed();
    let after = rss_kib();
    let endpoints: usize = cat.models().iter().map(|m| m.endpoints.len()).sum();
    println!(
        "embedded catalog: {} models, {endpoints} endpoints, {} bytes JSON; load {:.2} ms; RSS {:.1} MiB before, {:.1} MiB after",
        cat.models().len(),
        polyroute_core::catalog::EMBEDDED_JSON.len(),
        took.as_secs_f64() * 1000.0,
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
}
