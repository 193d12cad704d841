//! Credential pools: several keys for one provider, tried in order or in a weighted order, each with an optional
//! model allowlist and a health of its own. A credential refused with 401 or 403 rests [`REVOKED_REST`]; one rate
//! limited (429) rests for its `Retry-After` (else [`RATE_LIMIT_REST`]). The failover loop tries the next
//! credential of the same endpoint before it moves to the next endpoint.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::config::PoolCredential;
use crate::secret::ApiKey;

/// How long a credential refused with 401 or 403 is skipped.
pub const REVOKED_REST: Duration = Duration::from_secs(600);
/// How long a rate-limited credential is skipped when the provider gives no `Retry-After`.
pub const RATE_LIMIT_REST: Duration = Duration::from_secs(30);

struct Entry {
    key: ApiKey,
    weight: u32,
    models: Vec<String>,
    /// Unix milliseconds until which the credential rests (0: usable).
    rest_until: AtomicI64,
}

/// The credentials of one provider.
pub(crate) struct CredentialPool {
    entries: Vec<Entry>,
    weighted: bool,
}

impl std::fmt::Debug for CredentialPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialPool")
            .field("credentials", &self.entries.len())
            .field("weighted", &self.weighted)
            .finish_non_exhaustive()
    }
}

impl CredentialPool {
    /// A pool of the non-empty credentials (None when there are none).
    pub fn new(creds: &[PoolCredential]) -> Option<Self> {
        let entries: Vec<Entry> = creds
            .iter()
            .filter(|c| !c.key.is_empty())
            .map(|c| Entry {
                key: c.key.clone(),
                weight: c.weight.unwrap_or(1),
                models: c.models.clone(),
                rest_until: AtomicI64::new(0),
            })
            .collect();
        let weighted = creds.iter().any(|c| c.weight.is_some());
        (!entries.is_empty()).then_some(Self { entries, weighted })
    }

    /// Every key of the pool (for scrubbing).
    pub fn keys(&self) -> impl Iterator<Item = &ApiKey> {
        self.entries.iter().map(|e| &e.key)
    }

    /// The key of credential `i`.
    pub fn key(&self, i: usize) -> Option<&ApiKey> {
        self.entries.get(i).map(|e| &e.key)
    }

    fn allows(e: &Entry, model: &str, upstream: &str) -> bool {
        e.models.is_empty() || e.models.iter().any(|m| m == model || m == upstream)
    }

    /// The credential to try next for this model: among those allowed and not yet `tried`, the resting ones
    /// last (the one that rests least first); then in listed order, or a weighted draw from `seed` when any
    /// credential has a weight. None when every allowed credential was tried.
    pub fn pick(
        &self,
        model: &str,
        upstream: &str,
        tried: &[usize],
        now_ms: i64,
        seed: u64,
    ) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.entries.len())
            .filter(|i| !tried.contains(i) && Self::allows(&self.entries[*i], model, upstream))
            .collect();
        let rest = |i: usize| self.entries[i].rest_until.load(Ordering::Relaxed);
        let ready: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|i| rest(*i) <= now_ms)
            .collect();
        if ready.is_empty() {
            return candidates.into_iter().min_by_key(|i| rest(*i));
        }
        if !self.weighted {
            return ready.first().copied();
        }
        let total: u64 = ready
            .iter()
            .map(|i| u64::from(self.entries[*i].weight))
            .sum();
        if total == 0 {
            return ready.first().copied();
        }
        let mut x = seed % total;
        for i in &ready {
            let w = u64::from(self.entries[*i].weight);
            if x < w {
                return Some(*i);
            }
            x -= w;
        }
        ready.last().copied()
    }

    /// Record that credential `i` was answered `status`: 401 and 403 rest it [`REVOKED_REST`], 429 for
    /// `retry_after` seconds (else [`RATE_LIMIT_REST`]). Whether the status is one a pool rotates on.
    pub fn failed(&self, i: usize, status: u16, retry_after: Option<f64>, now_ms: i64) -> bool {
        let rest = match status {
            401 | 403 => REVOKED_REST,
            429 => retry_after
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map_or(RATE_LIMIT_REST, |s| Duration::from_secs_f64(s.min(3600.0))),
            _ => return false,
        };
        if let Some(e) = self.entries.get(i) {
            let until = now_ms.saturating_add(i64::try_from(rest.as_millis()).unwrap_or(i64::MAX));
            e.rest_until.store(until, Ordering::Relaxed);
        }
        true
    }

    /// Credential `i` served: it no longer rests.
    pub fn succeeded(&self, i: usize) {
        if let Some(e) = self.entries.get(i) {
            e.rest_until.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cred(key: &str, weight: Option<u32>, models: &[&str]) -> PoolCredential {
        PoolCredential {
            key: ApiKey::new(key),
            weight,
            models: models.iter().map(|m| (*m).to_string()).collect(),
        }
    }

    #[test]
    fn order_rest_and_allowlists() {
        let p = CredentialPool::new(&[
            cred("k0", None, &[]),
            cred("k1", None, &["a/only"]),
            cred("k2", None, &[]),
        ])
        .unwrap();
        assert_eq!(p.pick("x/y", "y", &[], 0, 0), Some(0));
        assert_eq!(p.pick("x/y", "y", &[0], 0, 0), Some(2), "k1 is for a/only");
        assert_eq!(p.pick("a/only", "only", &[0], 0, 0), Some(1));
        assert_eq!(p.pick("x/y", "y", &[0, 2], 0, 0), None);
        assert!(p.failed(0, 401, None, 1000));
        assert_eq!(
            p.pick("x/y", "y", &[], 1000, 0),
            Some(2),
            "a revoked key is skipped"
        );
        assert!(p.failed(2, 429, Some(5.0), 1000));
        // Both rest: the one that rests least is tried.
        assert_eq!(p.pick("x/y", "y", &[], 2000, 0), Some(2));
        assert_eq!(p.pick("x/y", "y", &[], 6001, 0), Some(2));
        assert!(!p.failed(2, 500, None, 0));
        p.succeeded(0);
        assert_eq!(p.pick("x/y", "y", &[], 2000, 0), Some(0));
        assert!(!format!("{p:?}").contains("k0"));
    }

    #[test]
    fn weighted_draws_follow_weights() {
        let p = CredentialPool::new(&[cred("a", Some(1), &[]), cred("b", Some(3), &[])]).unwrap();
        let picks: Vec<usize> = (0..4)
            .map(|s| p.pick("m", "m", &[], 0, s).unwrap())
            .collect();
        assert_eq!(picks, [0, 1, 1, 1]);
        assert_eq!(p.pick("m", "m", &[1], 0, 3), Some(0));
        assert!(CredentialPool::new(&[cred("", None, &[])]).is_none());
    }
}
