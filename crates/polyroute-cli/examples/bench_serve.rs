//! Load generator of `scripts/bench-serve`: one keep-alive HTTP client per concurrent worker, bounded loops,
//! latency of whole responses (a stream until `[DONE]`), p50/p99 per target, mode and concurrency.
//!
//! `bench_serve --n 2000 [--concurrency 1,4,16,64] [--modes json,stream] [--csv PATH [--missing name=reason]…]
//!   --target direct=http://127.0.0.1:1/v1/chat/completions --target name=url[|header:value]…`
//! The first target is the baseline; targets take turns in 10 rounds. Prints one JSON line per measurement (on
//! stderr) and all of them as one JSON array on stdout.
//!
//! `--csv PATH` also writes the non-streamed figures in the column layout of BerriAI's ai-gateway-bench
//! `results/latency_vs_concurrency.csv` (`gateway,concurrency,p99_added_latency_ms`), with the p50 beside it:
//! `gateway,concurrency,p99_added_latency_ms,p50_added_latency_ms,available,note`, added latency being the
//! target's percentile minus the baseline's in the same run. A target that failed, and each `--missing
//! name=reason` (a peer that could not be started), is a row per concurrency with `available` false and the
//! reason in `note`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

struct Target {
    name: String,
    url: String,
    headers: Vec<(String, String)>,
    model: String,
}

fn parse_target(s: &str) -> Target {
    let (name, rest) = s.split_once('=').expect("name=url");
    let mut parts = rest.split('|');
    let url = parts.next().unwrap().to_string();
    let mut headers = Vec::new();
    let mut model = "openai/gpt-4o-mini".to_string();
    for p in parts {
        let (k, v) = p.split_once(':').expect("header:value");
        if k == "model" {
            model = v.to_string();
        } else {
            headers.push((k.to_string(), v.to_string()));
        }
    }
    Target {
        name: name.to_string(),
        url,
        headers,
        model,
    }
}

/// One CSV field, quoted when it needs to be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The `--csv` text of `rows` (JSON mode only) and the `missing` peers at each of `concs`.
fn csv(rows: &[Value], missing: &[(String, String)], concs: &[usize]) -> String {
    let mut out = String::from(
        "gateway,concurrency,p99_added_latency_ms,p50_added_latency_ms,available,note\n",
    );
    let ms = |v: &Value| {
        v.as_f64()
            .map_or(String::new(), |us| format!("{:.3}", us / 1000.0))
    };
    let mut first: Option<&str> = None;
    for r in rows.iter().filter(|r| r["stream"] == json!(false)) {
        let name = r["target"].as_str().unwrap_or("");
        // The baseline itself adds nothing.
        if *first.get_or_insert(name) == name {
            continue;
        }
        let line = match r.get("error").and_then(Value::as_str) {
            Some(e) => format!(
                "{},{},,,false,{}",
                csv_field(name),
                r["concurrency"],
                csv_field(e)
            ),
            None => format!(
                "{},{},{},{},true,",
                csv_field(name),
                r["concurrency"],
                ms(&r["overhead_p99_us"]),
                ms(&r["overhead_p50_us"])
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    for (name, why) in missing {
        for c in concs {
            out.push_str(&format!(
                "{},{c},,,false,{}\n",
                csv_field(name),
                csv_field(why)
            ));
        }
    }
    out
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

async fn one(c: &reqwest::Client, t: &Target, stream: bool) -> Result<f64, String> {
    let body = json!({"model": t.model, "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
                      "max_tokens": 64, "stream": stream});
    let t0 = Instant::now();
    let mut rb = c.post(&t.url).json(&body);
    for (k, v) in &t.headers {
        rb = rb.header(k, v);
    }
    let r = rb.send().await.map_err(|e| e.to_string())?;
    let status = r.status();
    if stream {
        let mut s = r.bytes_stream();
        let mut tail: Vec<u8> = Vec::new();
        while let Some(b) = s.next().await {
            let b = b.map_err(|e| e.to_string())?;
            tail.extend_from_slice(&b);
            if tail.len() > 64 {
                tail.drain(..tail.len() - 64);
            }
        }
        if !status.is_success() || !String::from_utf8_lossy(&tail).contains("[DONE]") {
            return Err(format!("{status}: stream did not end with [DONE]"));
        }
    } else {
        let b = r.bytes().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{status}: {}", String::from_utf8_lossy(&b)));
        }
    }
    Ok(t0.elapsed().as_secs_f64() * 1e6)
}

/// `n` requests over `conc` clients: every latency (µs) and the wall time (s).
async fn measure(
    t: &Target,
    stream: bool,
    conc: usize,
    n: usize,
) -> Result<(Vec<f64>, f64), String> {
    let per = n.div_ceil(conc);
    let mut tasks = Vec::new();
    let start = Instant::now();
    for _ in 0..conc {
        let t = Target {
            name: t.name.clone(),
            url: t.url.clone(),
            headers: t.headers.clone(),
            model: t.model.clone(),
        };
        tasks.push(tokio::spawn(async move {
            let c = reqwest::Client::builder()
                .no_proxy()
                .tcp_nodelay(true)
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            // Two warm-up requests per client and round: the connection and the first request's setup.
            for _ in 0..2 {
                one(&c, &t, stream).await?;
            }
            let mut v = Vec::with_capacity(per);
            for _ in 0..per {
                v.push(one(&c, &t, stream).await?);
            }
            Ok::<_, String>(v)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.map_err(|e| e.to_string())??);
    }
    Ok((all, start.elapsed().as_secs_f64()))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut n: usize = 2000;
    let mut targets = Vec::new();
    let mut concs = vec![1usize, 4, 16, 64];
    let mut csv_path: Option<String> = None;
    let mut missing: Vec<(String, String)> = Vec::new();
    let mut modes = vec![false, true];
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--n" => {
                n = args[i + 1].parse().unwrap();
                i += 2;
            }
            "--target" => {
                targets.push(parse_target(&args[i + 1]));
                i += 2;
            }
            "--concurrency" => {
                concs = args[i + 1].split(',').map(|x| x.parse().unwrap()).collect();
                i += 2;
            }
            "--csv" => {
                csv_path = Some(args[i + 1].clone());
                i += 2;
            }
            "--missing" => {
                let (name, why) = args[i + 1].split_once('=').expect("--missing name=reason");
                missing.push((name.to_string(), why.to_string()));
                i += 2;
            }
            "--modes" => {
                modes = args[i + 1]
                    .split(',')
                    .map(|m| match m {
                        "json" => false,
                        "stream" => true,
                        m => panic!("unknown mode {m} (json, stream)"),
                    })
                    .collect();
                i += 2;
            }
            a => panic!("unknown argument {a}"),
        }
    }
    // Targets take turns in rounds (the order rotating), so that a drift of the machine's state (other load,
    // idle CPUs) spreads over all of them instead of favouring whichever ran first.
    let rounds = 10;
    let mut rows = Vec::new();
    for &stream in &modes {
        for &conc in &concs {
            let per_round = n.div_ceil(rounds);
            let mut lat: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
            let mut secs = vec![0.0f64; targets.len()];
            let mut err: Vec<Option<String>> = vec![None; targets.len()];
            for round in 0..rounds {
                for k in 0..targets.len() {
                    let i = (k + round) % targets.len();
                    if err[i].is_some() {
                        continue;
                    }
                    match measure(&targets[i], stream, conc, per_round).await {
                        Ok((v, s)) => {
                            lat[i].extend(v);
                            secs[i] += s;
                        }
                        Err(e) => err[i] = Some(e),
                    }
                }
            }
            let mut base: Option<(f64, f64)> = None;
            for (i, t) in targets.iter().enumerate() {
                let row = if let Some(e) = &err[i] {
                    json!({"target": t.name, "stream": stream, "concurrency": conc, "error": e})
                } else {
                    let (p50, p99) = (pct(&mut lat[i], 0.5), pct(&mut lat[i], 0.99));
                    let rps = lat[i].len() as f64 / secs[i];
                    let (b50, b99) = *base.get_or_insert((p50, p99));
                    json!({"target": t.name, "stream": stream, "concurrency": conc, "n": lat[i].len(),
                           "p50_us": p50.round(), "p99_us": p99.round(), "rps": rps.round(),
                           "overhead_p50_us": (p50 - b50).round(), "overhead_p99_us": (p99 - b99).round()})
                };
                eprintln!("{row}");
                rows.push(row);
            }
        }
    }
    if let Some(p) = csv_path {
        if let Some(dir) = std::path::Path::new(&p).parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(&p, csv(&rows, &missing, &concs)).unwrap();
    }
    println!("{}", Value::Array(rows));
}
