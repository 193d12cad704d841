//! The metrics as Prometheus text (exposition format 0.0.4) and as JSON, both from one list of families.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use rust_decimal::prelude::ToPrimitive;
use serde_json::{json, Map, Value};

use super::{Hist, Metrics, Reg};

enum Kind {
    Counter,
    Gauge,
    Histogram,
}

enum Val {
    Num(f64),
    Hist(Hist),
}

struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    samples: Vec<(Vec<(&'static str, String)>, Val)>,
}

impl Family {
    fn new(name: &'static str, help: &'static str, kind: Kind) -> Self {
        Self {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    fn push(&mut self, labels: Vec<(&'static str, String)>, v: Val) {
        self.samples.push((labels, v));
    }
}

fn n(v: u64) -> Val {
    #[allow(clippy::cast_precision_loss)]
    Val::Num(v as f64)
}

/// Every family, samples sorted by their labels (a stable text for tests and diffs).
#[allow(clippy::too_many_lines)]
fn families(m: &Metrics) -> Vec<Family> {
    let g = m.reg();
    let g: &Reg = &g;
    let (md, pv, ky, cd, lm) = (
        |i| g.model.name(i).to_string(),
        |i| g.provider.name(i).to_string(),
        |i| g.key.name(i).to_string(),
        |i| g.code.name(i).to_string(),
        |i| g.limit.name(i).to_string(),
    );
    let mut out = Vec::new();

    let mut f = Family::new(
        "polyroute_requests_total",
        "Requests by the model asked for and how they ended (ok, or the error code).",
        Kind::Counter,
    );
    for (k, v) in &g.requests {
        f.push(vec![("model", md(k[0])), ("status", cd(k[1]))], n(*v));
    }
    out.push(f);

    let mut f = Family::new(
        "polyroute_in_flight_requests",
        "Requests under way.",
        Kind::Gauge,
    );
    #[allow(clippy::cast_precision_loss)]
    f.push(vec![], Val::Num(m.in_flight.load(Ordering::Relaxed) as f64));
    out.push(f);

    let mut f = Family::new(
        "polyroute_attempts_total",
        "Provider attempts by provider, model and outcome (success, overloaded, timeout, rate_limited, ...).",
        Kind::Counter,
    );
    for (k, v) in &g.attempts {
        f.push(
            vec![
                ("provider", pv(k[0])),
                ("model", md(k[1])),
                ("outcome", cd(k[2])),
            ],
            n(*v),
        );
    }
    out.push(f);

    let mut f = Family::new(
        "polyroute_fallbacks_total",
        "Moves to the next endpoint of the plan after the labelled provider failed.",
        Kind::Counter,
    );
    for (k, v) in &g.fallbacks {
        f.push(vec![("provider", pv(*k))], n(*v));
    }
    out.push(f);

    let mut f = Family::new(
        "polyroute_generations_total",
        "Generations billed, by model and provider; fallback=\"true\" when an earlier attempt had failed.",
        Kind::Counter,
    );
    for ((k, fb), v) in &g.generations {
        f.push(
            vec![
                ("model", md(k[0])),
                ("provider", pv(k[1])),
                ("fallback", fb.to_string()),
            ],
            n(*v),
        );
    }
    out.push(f);

    let mut f = Family::new(
        "polyroute_errors_total",
        "Requests that ended in an error, by error code and the provider it names (none: no provider called).",
        Kind::Counter,
    );
    for (k, v) in &g.errors {
        f.push(vec![("code", cd(k[0])), ("provider", pv(k[1]))], n(*v));
    }
    out.push(f);

    for (name, help, map) in [
        (
            "polyroute_request_duration_seconds",
            "Time from request to the end of the answer, per serving provider.",
            &g.latency,
        ),
        (
            "polyroute_time_to_first_token_seconds",
            "Time to the first token of the serving attempt, per provider.",
            &g.ttft,
        ),
    ] {
        let mut f = Family::new(name, help, Kind::Histogram);
        for (k, h) in map {
            f.push(vec![("provider", pv(*k))], Val::Hist(h.clone()));
        }
        out.push(f);
    }

    let mut f = Family::new(
        "polyroute_overhead_seconds",
        "Time polyroute itself spent on a generation: total minus waiting on providers, the caller and backoff.",
        Kind::Histogram,
    );
    f.push(vec![], Val::Hist(g.overhead.clone()));
    out.push(f);

    let mut f = Family::new(
        "polyroute_tokens_total",
        "Tokens billed by model, provider, key label and type (prompt, completion).",
        Kind::Counter,
    );
    for (k, v) in &g.tokens {
        for (t, x) in [("prompt", v[0]), ("completion", v[1])] {
            f.push(
                vec![
                    ("model", md(k[0])),
                    ("provider", pv(k[1])),
                    ("key", ky(k[2])),
                    ("type", t.to_string()),
                ],
                n(x),
            );
        }
    }
    out.push(f);

    let mut f = Family::new(
        "polyroute_cost_usd_total",
        "Cost billed in USD by model, provider and key label.",
        Kind::Counter,
    );
    for (k, v) in &g.cost {
        f.push(
            vec![
                ("model", md(k[0])),
                ("provider", pv(k[1])),
                ("key", ky(k[2])),
            ],
            Val::Num(v.to_f64().unwrap_or(0.0)),
        );
    }
    out.push(f);

    let mut f = Family::new(
        "polyroute_cache_hits_total",
        "Answers served from the response cache, by model.",
        Kind::Counter,
    );
    for (k, v) in &g.cache_hits {
        f.push(vec![("model", md(*k))], n(*v));
    }
    out.push(f);

    let mut f = Family::new(
        "polyroute_limit_refusals_total",
        "Requests refused by a limit before any provider was called (router_budget, user_budget, key_credit, free_tier, key_rpm, key_tpm).",
        Kind::Counter,
    );
    for (k, v) in &g.refusals {
        f.push(vec![("limit", lm(*k))], n(*v));
    }
    out.push(f);

    let mut f = Family::new(
        "polyroute_hook_events_dropped_total",
        "Hook events dropped because the hook queue was full.",
        Kind::Counter,
    );
    f.push(vec![], n(m.hooks_dropped.load(Ordering::Relaxed)));
    out.push(f);

    for f in &mut out {
        f.samples.sort_by(|a, b| a.0.cmp(&b.0));
    }
    out
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(ls: &[(&'static str, String)], extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = ls
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn num(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    }
}

impl Metrics {
    /// The Prometheus text exposition (content type `text/plain; version=0.0.4`).
    #[must_use]
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(4096);
        for f in families(self) {
            let kind = match f.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            let _ = writeln!(s, "# HELP {} {}", f.name, f.help);
            let _ = writeln!(s, "# TYPE {} {kind}", f.name);
            for (ls, v) in &f.samples {
                match v {
                    Val::Num(x) => {
                        let _ = writeln!(s, "{}{} {}", f.name, labels(ls, None), num(*x));
                    }
                    Val::Hist(h) => {
                        let mut cum = 0u64;
                        for (i, c) in h.counts.iter().enumerate() {
                            cum += c;
                            let le = h.bounds.get(i).map_or("+Inf".to_string(), |b| num(*b));
                            let _ = writeln!(
                                s,
                                "{}_bucket{} {cum}",
                                f.name,
                                labels(ls, Some(("le", &le)))
                            );
                        }
                        let _ = writeln!(s, "{}_sum{} {}", f.name, labels(ls, None), num(h.sum));
                        let _ = writeln!(s, "{}_count{} {cum}", f.name, labels(ls, None));
                    }
                }
            }
        }
        s
    }

    /// The same figures as JSON: `{name: {"type", "help", "samples": [{"labels": {…}, "value"}]}}`; a
    /// histogram sample has `count`, `sum` and `buckets` (`{le: cumulative count}`, `+Inf` last) instead of
    /// `value`.
    #[must_use]
    pub fn snapshot(&self) -> Value {
        let mut out = Map::new();
        for f in families(self) {
            let kind = match f.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            let samples: Vec<Value> = f
                .samples
                .iter()
                .map(|(ls, v)| {
                    let l: Map<String, Value> = ls
                        .iter()
                        .map(|(k, v)| ((*k).to_string(), Value::String(v.clone())))
                        .collect();
                    match v {
                        Val::Num(x) => json!({"labels": l, "value": x}),
                        Val::Hist(h) => {
                            let mut cum = 0u64;
                            let mut b = Map::new();
                            for (i, c) in h.counts.iter().enumerate() {
                                cum += c;
                                let le = h.bounds.get(i).map_or("+Inf".to_string(), |b| num(*b));
                                b.insert(le, json!(cum));
                            }
                            json!({"labels": l, "count": cum, "sum": h.sum, "buckets": b})
                        }
                    }
                })
                .collect();
            out.insert(
                f.name.to_string(),
                json!({"type": kind, "help": f.help, "samples": samples}),
            );
        }
        Value::Object(out)
    }
}
