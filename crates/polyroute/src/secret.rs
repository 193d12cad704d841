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
}
