//! Finding models by a misspelt slug: legacy-spelling normalization and edit-distance suggestions.

use super::Catalog;

/// Normalize legacy spellings of a model slug: lowercase; `-` between two digits becomes `.` (`claude-3-5` →
/// `claude-3.5`).
#[must_use]
pub fn normalize_slug(s: &str) -> String {
    let lower = s.trim().to_ascii_lowercase();
    let b = lower.as_bytes();
    let mut out = String::with_capacity(lower.len());
    for (i, &c) in b.iter().enumerate() {
        if c == b'-'
            && i > 0
            && i + 1 < b.len()
            && b[i - 1].is_ascii_digit()
            && b[i + 1].is_ascii_digit()
        {
            // Only single-digit version parts (`3-5`), not dates (`2024-08-06`).
            let prev_single = i < 2 || !b[i - 2].is_ascii_digit();
            let next_single = i + 2 >= b.len() || !b[i + 2].is_ascii_digit();
            if prev_single && next_single {
                out.push('.');
                continue;
            }
        }
        out.push(c as char);
    }
    out
}

/// The longest prefix of a slug that suggestions compare (longer ids are refused at validation anyway).
pub const MAX_SUGGEST_INPUT: usize = 256;

impl Catalog {
    /// The `n` catalog ids closest to `slug`: the suggestions of a `model_not_found` error. Ids whose model part
    /// contains the one asked for come first (`claude-haiku` → `anthropic/claude-haiku-4.5`,
    /// `meta-llama/llama-3.3-70b` → `…-70b-instruct`), shortest first; then the rest by edit distance on the
    /// normalized strings. Within each, ids of the same author come first.
    #[must_use]
    pub fn closest_ids(&self, slug: &str, n: usize) -> Vec<String> {
        // Bounded whatever the input: only the first `MAX_SUGGEST_INPUT` bytes are compared, so one search costs
        // at most that times the length of each id.
        let mut end = slug.len().min(MAX_SUGGEST_INPUT);
        while !slug.is_char_boundary(end) {
            end -= 1;
        }
        let target = normalize_slug(&slug[..end]);
        let (author, name) = match target.split_once('/') {
            Some((a, n)) => (Some(a), n),
            None => (None, target.as_str()),
        };
        let mut scored: Vec<(bool, usize, &str)> = self
            .models()
            .iter()
            .filter(|m| !m.id.contains(':'))
            .map(|m| {
                let (id_author, id_name) = m.id.split_once('/').unwrap_or(("", m.id.as_str()));
                let other_author = author.is_some_and(|a| a != id_author);
                let penalty = if other_author { 8 } else { 0 };
                if name.len() >= 3 && id_name.contains(name) {
                    (false, penalty + (id_name.len() - name.len()), m.id.as_str())
                } else {
                    (true, penalty + levenshtein(&target, &m.id), m.id.as_str())
                }
            })
            .collect();
        scored.sort_unstable();
        scored
            .into_iter()
            .take(n)
            .map(|(_, _, s)| s.to_string())
            .collect()
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a = a.as_bytes();
    let b = b.as_bytes();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_prefer_ids_containing_the_name() {
        let model = |id: &str| {
            format!(r#"{{"id":"{id}","pricing":{{"prompt":"0","completion":"0"}},"endpoints":[]}}"#)
        };
        let ids = [
            "anthropic/claude-haiku-4.5",
            "openai/o1",
            "meta-llama/llama-4-scout",
            "meta-llama/llama-3.3-70b-instruct",
        ];
        let rows: Vec<String> = ids.iter().map(|i| model(i)).collect();
        let c = Catalog::from_json(&format!(
            r#"{{"providers":[],"models":[{}]}}"#,
            rows.join(",")
        ))
        .expect("catalog");
        assert_eq!(
            c.closest_ids("claude-haiku", 1),
            ["anthropic/claude-haiku-4.5"]
        );
        assert_eq!(
            c.closest_ids("meta-llama/llama-3.3-70b", 2),
            [
                "meta-llama/llama-3.3-70b-instruct",
                "meta-llama/llama-4-scout"
            ]
        );
        // A typo still finds its id by edit distance.
        assert_eq!(c.closest_ids("openai/o2", 1), ["openai/o1"]);
    }

    #[test]
    fn normalizes_legacy_versions() {
        assert_eq!(
            normalize_slug("anthropic/Claude-3-5-Sonnet"),
            "anthropic/claude-3.5-sonnet"
        );
        assert_eq!(
            normalize_slug("openai/gpt-4o-2024-08-06"),
            "openai/gpt-4o-2024-08-06"
        );
        assert_eq!(
            normalize_slug("meta-llama/llama-3-3-70b-instruct"),
            "meta-llama/llama-3.3-70b-instruct"
        );
    }

    #[test]
    #[allow(clippy::disallowed_methods, clippy::disallowed_types)] // a test timing the search, not the core
    fn suggestions_for_a_huge_slug_are_bounded() {
        let models: Vec<serde_json::Value> = (0..400)
            .map(|i| serde_json::json!({"id": format!("author{}/model-{i}", i % 7), "name": "m",
                "created": 1, "context_length": 1000, "pricing": {"prompt": "0", "completion": "0"},
                "architecture": {"modality": "text->text", "input_modalities": ["text"],
                    "output_modalities": ["text"], "tokenizer": "Other"},
                "top_provider": {"context_length": 1000, "max_completion_tokens": 100, "is_moderated": false},
                "supported_parameters": [], "endpoints": []}))
            .collect();
        let cat = Catalog::from_json(
            &serde_json::json!({"version": 1, "providers": [], "models": models}).to_string(),
        )
        .expect("catalog");
        let huge = format!("author3/{}", "x".repeat(1 << 20));
        let t0 = std::time::Instant::now();
        let got = cat.closest_ids(&huge, 3);
        // Unbounded, this is 400 edit distances of 1 MiB by ~20 bytes: tens of seconds in a debug build.
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            t0.elapsed()
        );
        assert_eq!(got.len(), 3.min(cat.models().len()));
    }

    #[test]
    fn edit_distance() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
    }
}
