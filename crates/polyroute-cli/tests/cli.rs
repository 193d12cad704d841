//! The `polyroute` command on the embedded catalog: the main job of the README.
#![allow(clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use serde_json::Value;

fn polyroute(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_polyroute"))
        .args(args)
        .output()
        .expect("run polyroute")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// The slugs tutorials use either route or fail with a deprecation error naming a successor that itself routes.
#[test]
fn tutorial_slugs_route_or_name_their_successor() {
    for slug in [
        "openai/gpt-4o",
        "anthropic/claude-3.5-sonnet",
        "google/gemini-2.0-flash-exp",
        "meta-llama/llama-3.3-70b-instruct",
        "openrouter/auto",
    ] {
        let out = polyroute(&["plan", "--model", slug, "--json"]);
        let v = json_of(&out);
        if out.status.success() {
            let attempts = v["attempts"].as_array().expect("attempts");
            assert!(!attempts.is_empty(), "{slug}: empty plan");
            continue;
        }
        assert_eq!(
            v["error"]["metadata"]["polyroute_code"], "model_deprecated",
            "{slug}: {v}"
        );
        let successor = v["error"]["availability"]["fallback_models"][0]
            .as_str()
            .expect("successor named");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains(successor));
        let again = polyroute(&["plan", "--model", successor, "--json"]);
        assert!(
            again.status.success(),
            "successor {successor} of {slug} must route"
        );
    }
}

#[test]
fn plan_is_reproducible_with_a_seed_and_shows_exclusions() {
    let a = polyroute(&[
        "plan",
        "-m",
        "meta-llama/llama-3.3-70b-instruct",
        "--seed",
        "7",
        "--json",
    ]);
    let b = polyroute(&[
        "plan",
        "-m",
        "meta-llama/llama-3.3-70b-instruct",
        "--seed",
        "7",
        "--json",
    ]);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    let v = json_of(&a);
    assert!(
        v["attempts"].as_array().map_or(0, Vec::len) >= 5,
        "llama 3.3 70b has many hosts"
    );
    let out = polyroute(&[
        "plan",
        "-m",
        "meta-llama/llama-3.3-70b-instruct",
        "--provider",
        r#"{"quantizations":["fp8"],"sort":"price"}"#,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("excluded:") && text.contains("quantization"),
        "{text}"
    );
}

#[test]
fn plan_reads_a_request_from_stdin_and_reports_bad_input() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_polyroute"))
        .args(["plan", "-", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(br#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi"}],"provider":{"sort":"fastest"}}"#)
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(2));
    let v = json_of(&out);
    assert_eq!(v["error"]["metadata"]["field"], "provider.sort");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("throughput"));
}

#[test]
fn models_filters_and_cost() {
    let out = polyroute(&[
        "models",
        "--input",
        "image",
        "--param",
        "tools",
        "--provider",
        "anthropic",
        "--json",
    ]);
    assert!(out.status.success());
    let v = json_of(&out);
    let data = v["data"].as_array().expect("data");
    assert!(!data.is_empty());
    for m in data {
        assert!(m["architecture"]["input_modalities"]
            .as_array()
            .expect("mods")
            .iter()
            .any(|x| x == "image"));
        assert!(m["endpoints"]
            .as_array()
            .expect("eps")
            .iter()
            .any(|e| e["provider"] == "anthropic"));
    }
    let out = polyroute(&[
        "cost",
        "-m",
        "openai/gpt-4o",
        "--prompt-tokens",
        "1000000",
        "--completion-tokens",
        "0",
        "--json",
    ]);
    assert!(out.status.success());
    let v = json_of(&out);
    let total: f64 = v["total"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("total");
    assert!(total > 0.0);
    let out = polyroute(&["cost", "-m", "nope/none", "--prompt-tokens", "1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("model_not_found"));
}

/// Unknown filter values are errors naming the close match, not "0 models".
#[test]
fn models_rejects_unknown_filter_values_with_a_suggestion() {
    for (args, expect) in [
        (&["--provider", "opneai"][..], "did you mean \"openai\""),
        (&["--input", "imgae"][..], "did you mean \"image\""),
        (&["--param", "toolz"][..], "did you mean \"tools\""),
        (&["--provider", "nonexistent"][..], "known: ai21"),
    ] {
        let mut full = vec!["models"];
        full.extend_from_slice(args);
        let out = polyroute(&full);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
        assert!(err.contains(expect), "{args:?}: {err}");
    }
    let out = polyroute(&["models", "--provider", "DeepInfra", "--param", "tools"]);
    assert!(out.status.success());
}

/// Off a terminal, COLUMNS sets the width (no colour); without it, one line per row.
#[test]
fn tables_fit_columns_and_align_prices() {
    let run = |columns: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_polyroute"));
        c.args([
            "plan",
            "-m",
            "meta-llama/llama-3.3-70b-instruct",
            "--seed",
            "3",
        ]);
        match columns {
            Some(w) => c.env("COLUMNS", w),
            None => c.env_remove("COLUMNS"),
        };
        let out = c.output().expect("run polyroute");
        assert!(out.status.success());
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let narrow = run(Some("90"));
    assert!(narrow.lines().all(|l| l.chars().count() <= 90), "{narrow}");
    assert!(!narrow.contains('\u{1b}'), "no colour off a terminal");
    let wide = run(None);
    assert!(wide.lines().any(|l| l.chars().count() > 90), "{wide}");
    // Prices: the decimal points of one column line up.
    let rows: Vec<&str> = wide
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert!(rows.len() >= 5, "{wide}");
    let header = wide.lines().find(|l| l.contains("$/M in")).expect("header");
    let col = header.find("$/M in").expect("column");
    assert!(
        header.contains("dialect") && header.contains("auth"),
        "{header}"
    );
    let dots: Vec<usize> = rows
        .iter()
        .map(|r| {
            // Where the integer part of the price ends (its decimal point, present or implied).
            let s = &r[col..];
            let start = s.find(|c: char| c.is_ascii_digit()).expect("a price");
            col + start + s[start..].find(|c: char| !c.is_ascii_digit()).unwrap_or(0)
        })
        .collect();
    assert!(dots.windows(2).all(|w| w[0] == w[1]), "{wide}");
    let out = polyroute(&["cost", "-m", "openai/gpt-4o", "--prompt-tokens", "1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("$0.0000025") && !text.contains("e-"),
        "{text}"
    );
}
