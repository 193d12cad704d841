//! Auto-router cost: classification and ranking of a ~2,000-token multi-turn conversation on the embedded catalog.
//!
//! `cargo bench -p polyroute-core --bench auto`
//!
//! Catalog: the file named by `POLYROUTE_BENCH_CATALOG` if set, else the embedded catalog ([`Catalog::embedded`]).
//! The [`AutoIndex`] is built once, outside the timed loop, as the engine holds it (`AutoIndex::cached`).
//!
//! Output, in this order:
//! 1. a table of **thread CPU time** medians per call (`CLOCK_THREAD_CPUTIME_ID`; 41 batches, the median batch
//!    divided by its size), which stays meaningful when other processes compete for the cores;
//! 2. criterion's wall-time (`wall/…`) and thread-CPU-time (`cpu/…`) benchmarks.
//!
//! Instruction counts: `AUTO_BENCH_LOOP=<case>:<n>` runs one case `n` times after one warm-up call and exits, so
//! `valgrind --tool=callgrind` on `n = 0` and `n = 1000` gives the instructions of 1,000 calls as the difference.
//! Cases: `classify`, `auto`, `pareto`, `free`, `index`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]

use std::hint::black_box;

use criterion::measurement::{Measurement, WallTime};
use criterion::Criterion;
use polyroute_core::auto::{classify, AutoIndex};
use polyroute_core::catalog::Model;
use polyroute_core::{Catalog, ChatRequest};
use serde_json::json;

#[path = "support/thread_cpu.rs"]
mod thread_cpu;
use thread_cpu::{thread_cpu_ns, ThreadCpu};

fn catalog() -> Catalog {
    if let Some(path) = std::env::var_os("POLYROUTE_BENCH_CATALOG") {
        let text = String::from_utf8(std::fs::read(path).unwrap()).unwrap();
        return Catalog::from_json(&text).unwrap();
    }
    let c = Catalog::embedded().expect("embedded catalog");
    assert!(
        c.models().len() > 300,
        "the embedded catalog has only {} models",
        c.models().len()
    );
    c
}

/// A debugging session of roughly 2,000 tokens over 12 messages: a system prompt, five user/assistant exchanges
/// mixing prose, a stack trace, code and a diff, and a last user question with code.
fn conversation() -> ChatRequest {
    let system = "You are a careful senior backend engineer helping a teammate. Answer precisely, show code when it \
                  helps, and point out risks such as data loss, race conditions or missing retries. The team uses \
                  Python 3.12, PostgreSQL 16, Redis and a Kafka event bus; services run on Kubernetes. \
                  Prefer small, reviewable changes over rewrites, keep backwards compatibility with the public event \
                  format, and say so when you are unsure or when the answer depends on facts you cannot see from \
                  the conversation.";
    let user_turns = [
        "Before we dig in, can you remind me how our at-least-once delivery interacts with the warehouse writes? I \
         remember that we upsert by event id, but I am not sure whether a replayed event can overwrite a newer row \
         for the same customer, for example when an old event is retried after a newer one was already written.",
        "Quick sanity check before the real question: the consumer group has six partitions and four pods. Is it \
         fine that two pods get two partitions each while the others get one, or should we scale to six pods?",
        "Our ingestion service reads events from the queue, validates each payload against the schema, enriches it \
         with the customer record and writes the result to the warehouse table. Since Tuesday roughly one event in \
         a thousand ends up in the dead-letter topic and I cannot see why. Here is the handler:\n```python\n\
         def handle(event):\n    payload = json.loads(event.body)\n    validate(payload, SCHEMA)\n    customer = \
         db.fetch(payload['customer_id'])\n    return enrich(payload, customer)\n```\nAny idea where to start?",
        "Good call on the logs. This is what the consumer prints just before the event is dead-lettered:\n\
         Traceback (most recent call last):\n  File \"consumer.py\", line 88, in run\n    out = handle(event)\n  \
         File \"handler.py\", line 5, in handle\n    customer = db.fetch(payload['customer_id'])\nKeyError: \
         'customer_id'\nThe consumer log around it:\n```\n\
         2025-03-04T10:12:01Z INFO  consumer partition=3 offset=918233 event=ev_7f3a lag=12\n\
         2025-03-04T10:12:01Z INFO  consumer partition=3 offset=918234 event=ev_7f3b lag=12\n\
         2025-03-04T10:12:02Z WARN  handler event=ev_7f3c attempt=1 error=KeyError('customer_id')\n\
         2025-03-04T10:12:04Z WARN  handler event=ev_7f3c attempt=2 error=KeyError('customer_id')\n\
         2025-03-04T10:12:08Z WARN  handler event=ev_7f3c attempt=3 error=KeyError('customer_id')\n\
         2025-03-04T10:12:08Z ERROR consumer event=ev_7f3c dead-lettered after 3 attempts\n\
         2025-03-04T10:12:08Z INFO  consumer partition=3 offset=918236 event=ev_7f3d lag=19\n```\n\
         The producer team says they never changed the format. The schema marks customer_id as \
         required, so how can validation pass?",
        "You are right, the schema file was loaded from the old package version. After pinning it the validation \
         now rejects those events, but the product owner would rather we keep them. Some of the older mobile clients \
         send `customerId` instead of `customer_id`. What is the cleanest way to accept both without making the \
         handler messy, and should the normalisation live in the consumer or in a separate step?",
        "Makes sense. I wrote the normalisation step like this:\n```python\nALIASES = {'customerId': 'customer_id', \
         'orderId': 'order_id'}\n\ndef normalise(payload: dict) -> dict:\n    for old, new in ALIASES.items():\n        \
         if old in payload and new not in payload:\n            payload[new] = payload.pop(old)\n    return \
         payload\n```\nIt mutates the dict in place. Is that a problem when the same payload object is retried \
         after a transient database error?",
        "Thanks. One more thing: the retries use exponential backoff with a cap of thirty seconds, and during the \
         incident the consumer lag grew to forty thousand messages. The dashboard shows the database connection \
         pool at 100 % for the whole hour. Could the retries themselves have caused the lag, and what would you \
         change in the retry policy?",
        "Here is the retry policy after your suggestions. Jitter is full jitter, the budget per event is two minutes, \
         and exhausted events go to `ingest.retry` which a separate consumer drains at a fixed rate. Does this look \
         right to you, and is there anything that could still make a single bad customer record block a \
         partition for the whole two minutes while other events wait behind it?",
    ];
    let assistant_turns = [
        "An upsert keyed by event id makes a replay idempotent for that event, but it does not order events of the \
         same customer: a retried old event writes its own row again and leaves the newer event's row alone, so the \
         table is correct per event. The problem appears only in tables keyed by customer, where the last write \
         wins. There, compare the event timestamp (or a per-customer sequence number) in the upsert condition so \
         that an older event never replaces a newer state.",
        "It is fine as long as the busiest pod keeps up: Kafka assigns whole partitions, so with six partitions and \
         four consumers two of them carry twice the load. Watch the per-partition lag rather than the group total; \
         if the two heavier pods fall behind at peak, six pods (one partition each) is the simplest fix, and more \
         than six pods would leave some idle.",
        "Start by separating the two failure modes: events rejected by validation and events that fail during \
         enrichment. Add a structured log line with the event id and the exception type before an event is sent to \
         the dead-letter topic, then compare a few failing payloads with passing ones. In the handler, `db.fetch` \
         raising for an unknown customer and `validate` raising for a malformed payload look the same from outside, \
         which makes the dead-letter topic hard to read.",
        "Validation can pass if the schema the consumer loads is not the one you are reading. Check which schema \
         file the running image contains: a stale vendored copy, a cached download or an older package version are \
         the usual suspects. You can confirm it quickly:\n```python\nimport importlib.metadata as md\n\
         print(md.version('events-schema'))\nprint(SCHEMA['required'])\n```\nIf `customer_id` is missing from \
         `required`, the KeyError comes from payloads that were always invalid but used to be accepted.",
        "Put the normalisation in a small pure function that runs before validation, so that the schema only ever \
         sees the canonical field names. Keeping it in the consumer is fine while the alias list is short; move it \
         to a dedicated step only if several services need the same rules. Log every alias you rewrite with a \
         counter per client version, so you know when the old clients are gone and the alias can be removed.",
        "Yes, it can be. Because `normalise` pops the alias key, a retried payload is already normalised, which is \
         harmless here, but any code that logs or re-publishes the original event will now see the rewritten one. \
         Prefer returning a new dict:\n```python\ndef normalise(payload: dict) -> dict:\n    out = dict(payload)\n    \
         for old, new in ALIASES.items():\n        if old in out and new not in out:\n            out[new] = \
         out.pop(old)\n    return out\n```\nThe copy costs little next to the database round trip.",
        "Very likely. With a pool at 100 %, every retry competes with fresh events for the same connections, so \
         the backoff only delays work that still needs a connection. Add jitter so that retries do not line up, \
         bound the total retry time per event, and send events that exhaust it to a retry topic instead of \
         retrying inline. Also check whether `db.fetch` holds the connection while waiting on the enrichment call.",
    ];
    let mut messages = vec![json!({"role": "system", "content": system})];
    for (u, a) in user_turns.iter().zip(assistant_turns) {
        messages.push(json!({"role": "user", "content": u}));
        messages.push(json!({"role": "assistant", "content": a}));
    }
    messages.push(json!({"role": "user", "content": "Last question. After the change the lag is gone, but a \
        colleague rewrote the fetch with a cache and now some enriched rows carry another customer's region. Why \
        does this happen, and how should I fix the function?\n```python\n_cache = {}\n\ndef fetch_customer(conn, \
        customer_id, region=None):\n    key = customer_id\n    if key in _cache:\n        return _cache[key]\n    \
        row = conn.execute(QUERY, (customer_id, region)).fetchone()\n    _cache[key] = row\n    return row\n```"}));
    let req = ChatRequest::from_value(&json!({"model": "openrouter/auto", "messages": messages}))
        .unwrap();
    let tokens = req.estimate_prompt_tokens();
    assert!(
        (1_800..=2_400).contains(&tokens),
        "conversation is {tokens} tokens"
    );
    req
}

fn any(_: &Model) -> bool {
    true
}

/// Run one case once.
fn run(case: &str, index: &AutoIndex, cat: &Catalog, req: &ChatRequest) {
    match case {
        "classify" => {
            black_box(classify(black_box(req)));
        }
        "auto" | "pareto" | "free" => {
            let slug = match case {
                "auto" => "openrouter/auto",
                "pareto" => "openrouter/pareto-code",
                _ => "openrouter/free",
            };
            black_box(index.route(slug, black_box(req), &any, 1, None).unwrap());
        }
        "index" => {
            black_box(AutoIndex::new(black_box(cat)));
        }
        other => panic!("unknown case {other}"),
    }
}

const CASES: [(&str, &str); 5] = [
    ("classify", "classify_2k"),
    ("auto", "route_auto_2k"),
    ("pareto", "route_pareto_2k"),
    ("free", "route_free_2k"),
    ("index", "index_build"),
];

/// Median thread CPU time per call, in nanoseconds: 41 batches sized to take about 2 ms each.
fn cpu_median(f: &mut dyn FnMut()) -> f64 {
    let start = thread_cpu_ns();
    let mut calls = 0u64;
    while thread_cpu_ns() - start < 20_000_000 {
        f();
        calls += 1;
    }
    let per = (thread_cpu_ns() - start) as f64 / calls as f64;
    let batch = ((2_000_000.0 / per) as u64).max(1);
    let mut samples: Vec<f64> = (0..41)
        .map(|_| {
            let t = thread_cpu_ns();
            for _ in 0..batch {
                f();
            }
            (thread_cpu_ns() - t) as f64 / batch as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn criterion_cases<M: Measurement + 'static>(
    c: &mut Criterion<M>,
    prefix: &str,
    index: &AutoIndex,
    cat: &Catalog,
    req: &ChatRequest,
) {
    for (case, name) in CASES {
        c.bench_function(&format!("{prefix}/auto/{name}"), |b| {
            b.iter(|| run(case, index, cat, req));
        });
    }
}

fn main() {
    let cat = catalog();
    let req = conversation();
    let index = AutoIndex::cached(&cat);
    if let Some(spec) = std::env::var_os("AUTO_BENCH_LOOP") {
        let spec = spec.to_string_lossy();
        let (case, n) = spec.split_once(':').expect("AUTO_BENCH_LOOP=<case>:<n>");
        let n: u64 = n.parse().unwrap();
        run(case, &index, &cat, &req);
        for _ in 0..n {
            run(case, &index, &cat, &req);
        }
        return;
    }
    eprintln!(
        "catalog: {} models; conversation: {} messages, ~{} tokens; task: {}",
        cat.models().len(),
        req.messages.len(),
        req.estimate_prompt_tokens(),
        classify(&req)
    );
    eprintln!("thread CPU time, median per call:");
    for (case, name) in CASES {
        let ns = cpu_median(&mut || run(case, &index, &cat, &req));
        eprintln!("  {name:<18} {:>9.2} µs", ns / 1000.0);
    }
    let config = || {
        Criterion::default()
            .sample_size(50)
            .warm_up_time(std::time::Duration::from_secs(1))
            .measurement_time(std::time::Duration::from_secs(3))
            .configure_from_args()
    };
    let mut wall: Criterion<WallTime> = config();
    criterion_cases(&mut wall, "wall", &index, &cat, &req);
    let mut cpu: Criterion<ThreadCpu> = config().with_measurement(ThreadCpu);
    criterion_cases(&mut cpu, "cpu", &index, &cat, &req);
    wall.final_summary();
    cpu.final_summary();
}
