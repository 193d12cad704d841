//! The core's layering, enforced: no module imports one above it.
//!
//! ```text
//! top      fuzzing (the fuzz targets' bodies: providers, surfaces, sse, types, account_query; nothing imports it)
//! floor 4  plan
//! floor 3  resolve  select  cost  auto        (never each other)   providers (types, outcome, error, sse, eventstream,
//!          dialect only)   surfaces (error, types only)
//! floor 2  types
//! floor 1  catalog
//! floor 0  error  outcome  health  sse  eventstream  dialect  account_query (query strings of the account
//!          endpoints; imports nothing)
//! ```
//!
//! The test reads every file under `src/`, collects the `crate::<module>` paths outside comments (in `use` lines and
//! inline paths alike) and fails on any edge the table below does not allow. Clippy cannot express module bans,
//! so this is the guard.
// Test code: reading the source tree and failing loudly are what it is for.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const FLOOR0: &[&str] = &[
    "error",
    "outcome",
    "health",
    "sse",
    "eventstream",
    "dialect",
];

/// The modules `module` may import (besides itself).
fn allowed(module: &str) -> Option<Vec<&'static str>> {
    let floor0 = FLOOR0.to_vec();
    let with = |extra: &[&'static str]| {
        let mut v = floor0.clone();
        v.extend_from_slice(extra);
        v
    };
    Some(match module {
        "error" => vec!["outcome"],
        "outcome" | "health" | "sse" | "eventstream" | "dialect" | "account_query" => vec![],
        "catalog" => with(&[]),
        "types" => with(&["catalog"]),
        "resolve" | "select" | "cost" | "auto" => with(&["catalog", "types"]),
        "providers" => vec!["error", "outcome", "sse", "eventstream", "dialect", "types"],
        "surfaces" => vec!["error", "types"],
        "plan" => with(&[
            "catalog",
            "types",
            "resolve",
            "select",
            "cost",
            "auto",
            "providers",
        ]),
        "fuzzing" => vec![
            "providers",
            "surfaces",
            "sse",
            "types",
            "error",
            "account_query",
        ],
        _ => return None,
    })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src dir") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The `crate::<module>` names a source text uses outside comments.
fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let code = code.split(" // ").next().unwrap_or(code);
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + "crate::".len()..];
            // `polyroute_core::…` or `$crate::…` are not this crate's module paths.
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn no_module_imports_a_higher_floor() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(
        files.len() > 30,
        "expected the core's sources under {src:?}"
    );
    let mut bad = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("a path");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" {
            continue;
        }
        let Some(ok) = allowed(&module) else {
            bad.push(format!(
                "{}: module `{module}` has no floor in tests/layering.rs; add it",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(f).expect("readable source");
        for used in imports(&text) {
            if used != module && !ok.contains(&used.as_str()) {
                bad.push(format!(
                    "{}: `{module}` imports `crate::{used}`, which is not below it",
                    rel.display()
                ));
            }
        }
    }
    assert!(bad.is_empty(), "layering violations:\n{}", bad.join("\n"));
}

#[test]
fn the_scanner_sees_inline_paths_and_skips_comments() {
    let text = "use crate::catalog::Catalog;\n/// [`crate::plan::Plan`]\nlet x = crate::auto::route(); // crate::cost\n\
                let y = polyroute_core::plan::plan;\n";
    let got: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(got, ["auto", "catalog"]);
    assert!(allowed("catalog").is_some_and(|a| !a.contains(&"plan")));
    assert!(allowed("providers").is_some_and(|a| !a.contains(&"catalog")));
}
