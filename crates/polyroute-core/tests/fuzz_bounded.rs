//! The fuzz targets on stable, bounded: every target over a corpus (seeds below, the recorded wire payloads and
//! `fuzz/corpus/<target>` when present) and deterministic mutations of it, for `POLYROUTE_FUZZ_SECS` seconds per
//! target (default 2). `scripts/fuzz --bounded` runs it; it is ignored in the ordinary test run (the proptest
//! smoke, `dialects_smoke`, covers that). Not coverage-guided: cargo-fuzz on nightly remains the long run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::panic
)]

use std::path::Path;
use std::time::{Duration, Instant};

use polyroute_core::fuzzing::TARGETS;

const SEEDS: &[&str] = &[
    "gAAAAAdate=2027-03-09&offset=5&limit=2&id=gen-1&include_disabled=true",
    "gAAAAAdate=1999-12-31&limit=1000&offset=18446744073709551616",
    "gAAAAAdate=2027-13-01T00:00:00.999Z&limit=0&id=&date=+2027-01-01",
    r#"{"model":"a/b","messages":[{"role":"user","content":"hi"}],"max_tokens":18446744073709551615}"#,
    r#"{"model":"a/b","messages":[{"role":"user","content":"hi"}],"n":1000000000,"stream":true}"#,
    r#"{"models":["a/b","c/d"],"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"provider":{"order":["p"],"sort":"price"}}"#,
    r#"{"model":"a/b","messages":[{"role":"assistant","tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"1","content":"r"}],"tools":[{"type":"function","function":{"name":"f"}}]}"#,
    "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n",
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n",
    r#"{"error":{"message":"bad","type":"invalid_request_error"}}"#,
    r#"{"model":"a/b","max_tokens":8,"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"x"},{"type":"tool_use","id":"t1","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"r"}]}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"thinking":{"type":"enabled","budget_tokens":1024}}"#,
    r#"{"model":"a/b","instructions":"i","input":[{"role":"user","content":[{"type":"input_text","text":"x"}]},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"o"}],"tools":[{"type":"function","name":"f"}],"text":{"format":{"type":"json_schema","name":"n","schema":{"type":"object"}}}}"#,
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % (n.max(1) as u64)) as usize
    }
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut dirs = vec![
        root.join("fuzz/corpus").join(target),
        root.join("crates/polyroute-core/tests/wire/surfaces"),
    ];
    if let Ok(rd) = std::fs::read_dir(root.join("../shared/data/wire")) {
        dirs.extend(rd.flatten().map(|e| e.path()));
    }
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten().take(200) {
            if let Ok(b) = std::fs::read(e.path()) {
                if b.len() <= 256 * 1024 {
                    out.push(b);
                }
            }
        }
    }
    out
}

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut b = corpus[rng.below(corpus.len())].clone();
    for _ in 0..=rng.below(4) {
        match rng.below(6) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(b.len() + 1);
                let interesting = [
                    b'"', b'{', b'}', b'[', b']', b':', b',', b'\n', b'\\', 0xff, b'9',
                ];
                b.insert(i, interesting[rng.below(interesting.len())]);
            }
            2 if !b.is_empty() => {
                let i = rng.below(b.len());
                let n = rng.below(16).min(b.len() - i);
                b.drain(i..i + n);
            }
            3 => {
                let other = &corpus[rng.below(corpus.len())];
                let i = rng.below(b.len() + 1);
                let j = rng.below(other.len() + 1);
                b.truncate(i);
                b.extend_from_slice(&other[j..]);
            }
            4 if !b.is_empty() => b.truncate(rng.below(b.len())),
            _ => {
                let i = rng.below(b.len() + 1);
                b.splice(i..i, std::iter::repeat_n(b'a', rng.below(300)));
            }
        }
    }
    // Targets read a selector byte first.
    let mut out = vec![rng.next() as u8];
    out.extend(b);
    out
}

#[test]
#[ignore = "run by scripts/fuzz --bounded"]
fn fuzz_targets_bounded() {
    let secs: u64 = std::env::var("POLYROUTE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let seed: u64 = std::env::var("POLYROUTE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_F00D);
    for (name, f) in TARGETS {
        let c = corpus(name);
        let mut rng = Rng(seed | 1);
        // The corpus itself, as given and with each selector.
        for input in &c {
            f(input);
            for sel in 0u8..8 {
                let mut v = vec![sel];
                v.extend_from_slice(input);
                f(&v);
            }
        }
        let end = Instant::now() + Duration::from_secs(secs);
        let mut n = 0u64;
        while Instant::now() < end {
            let input = mutate(&mut rng, &c);
            let r = std::panic::catch_unwind(|| f(&input));
            if r.is_err() {
                let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../fuzz/artifacts")
                    .join(name);
                let _ = std::fs::create_dir_all(&dir);
                let path = dir.join(format!("crash-stable-{seed}-{n}"));
                let _ = std::fs::write(&path, &input);
                panic!("{name}: input #{n} panicked; saved to {}", path.display());
            }
            n += 1;
        }
        println!(
            "{name:<18} {} corpus inputs, {n} mutations in {secs} s: no failure",
            c.len()
        );
    }
}
