//! A provider credential that never shows itself in `Debug`, `Display`, errors or logs.

use std::fmt;

/// An API key. Its `Debug` and `Display` print `ApiKey(***)`; the only way to read it is [`ApiKey::expose`],
/// used solely when building the upstream request header.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wrap a key.
    #[must_use]
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the upstream request header only.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the key is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Replace every occurrence of any of `keys` in `text` with `***` (defence in depth for provider messages that
/// echo a credential back).
#[must_use]
pub fn scrub(text: &str, keys: &[&ApiKey]) -> String {
    let mut out = text.to_string();
    for k in keys {
        if k.0.len() >= 4 && out.contains(&k.0) {
            out = out.replace(&k.0, "***");
        }
    }
    out
}

/// [`scrub`] every string inside `v` (keys and values), in place.
pub fn scrub_value(v: &mut serde_json::Value, keys: &[&ApiKey]) {
    use serde_json::Value;
    match v {
        Value::String(s) => {
            if keys.iter().any(|k| k.0.len() >= 4 && s.contains(&k.0)) {
                *s = scrub(s, keys);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| scrub_value(x, keys)),
        Value::Object(m) => {
            let dirty: Vec<String> = m
                .keys()
                .filter(|name| keys.iter().any(|k| k.0.len() >= 4 && name.contains(&k.0)))
                .cloned()
                .collect();
            for name in dirty {
                if let Some(x) = m.remove(&name) {
                    m.insert(scrub(&name, keys), x);
                }
            }
            m.values_mut().for_each(|x| scrub_value(x, keys));
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_key() {
        let k = ApiKey::new("sk-test-fake-secret");
        assert_eq!(format!("{k:?}"), "ApiKey(***)");
        assert_eq!(format!("{k}"), "***");
        assert_eq!(
            scrub("bad key sk-test-fake-secret given", &[&k]),
            "bad key *** given"
        );
    }

    #[test]
    fn scrubs_every_string_of_a_value() {
        let a = ApiKey::new("sk-test-fake-aaaa");
        let b = ApiKey::new("sk-test-fake-bbbb");
        let mut v = serde_json::json!({"error": {"message": "Incorrect API key provided: Bearer sk-test-fake-aaaa",
            "metadata": {"raw": ["x sk-test-fake-bbbb y", {"sk-test-fake-aaaa": 1}]}}});
        scrub_value(&mut v, &[&a, &b]);
        let text = v.to_string();
        assert!(!text.contains("sk-test-fake"), "{text}");
        assert!(text.contains("Bearer ***"), "{text}");
    }
}
