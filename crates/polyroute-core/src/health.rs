//! Health observations: a planning input the engine fills from its rolling window of attempt outcomes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Measured health of one endpoint, as the engine's rolling window reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointHealth {
    /// A failure (5xx, timeout, refused) in the last 30 seconds.
    #[serde(default)]
    pub recent_outage: bool,
    /// Time to first token, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p50_ms: Option<f64>,
    /// 90th percentile time to first token, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p90_ms: Option<f64>,
    /// Throughput, tokens per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_p50: Option<f64>,
    /// 90th percentile throughput, tokens per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_p90: Option<f64>,
    /// Samples behind the figures.
    #[serde(default)]
    pub samples: u32,
}

/// Minimum samples before measured figures replace catalog figures.
pub const MIN_SAMPLES: u32 = 5;

/// Health observations for many endpoints, keyed `model@tag` (one model's endpoint) or `tag` (the endpoint for
/// every model, e.g. a provider-wide outage).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HealthSnapshot {
    /// The observations.
    pub endpoints: BTreeMap<String, EndpointHealth>,
}

impl HealthSnapshot {
    /// The health of `tag` serving `model`.
    #[must_use]
    pub fn get(&self, model: &str, tag: &str) -> Option<&EndpointHealth> {
        if self.endpoints.is_empty() {
            return None;
        }
        self.endpoints
            .get(&health_key(model, tag))
            .or_else(|| self.endpoints.get(tag))
    }
}

/// The key of one model's endpoint in a [`HealthSnapshot`]: `model@tag`. The engine records observations under it.
#[must_use]
pub fn health_key(model: &str, tag: &str) -> String {
    let mut k = String::with_capacity(model.len() + tag.len() + 1);
    k.push_str(model);
    k.push('@');
    k.push_str(tag);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_entry_wins_over_the_endpoint_wide_entry() {
        let mut s = HealthSnapshot::default();
        let outage = EndpointHealth {
            recent_outage: true,
            ..EndpointHealth::default()
        };
        s.endpoints.insert("alpha".into(), outage.clone());
        assert_eq!(s.get("a/b", "alpha"), Some(&outage));
        let fine = EndpointHealth::default();
        s.endpoints.insert(health_key("a/b", "alpha"), fine.clone());
        assert_eq!(s.get("a/b", "alpha"), Some(&fine));
        assert_eq!(s.get("a/c", "alpha"), Some(&outage));
        assert_eq!(health_key("a/b", "x/y"), "a/b@x/y");
    }
}
