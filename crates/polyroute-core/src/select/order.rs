//! Ordering strategies over the eligible endpoints of one model (or of all models with `partition: none`).

use std::cmp::Ordering;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

use crate::catalog::Endpoint;
pub use crate::health::{EndpointHealth, HealthSnapshot, MIN_SAMPLES};
use crate::types::{Percentiles, SortBy};

/// An eligible endpoint with what ordering needs.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Index of the model in the resolved list.
    pub model_index: usize,
    /// Model id.
    pub model: &'a str,
    /// The endpoint.
    pub endpoint: &'a Endpoint,
    /// Its precomputed route.
    pub route: &'a std::sync::Arc<crate::catalog::EndpointRoute>,
    /// Its health, if observed.
    pub health: Option<&'a EndpointHealth>,
}

impl<'a> Candidate<'a> {
    /// A candidate with its ordering price precomputed.
    #[must_use]
    pub fn new(
        model_index: usize,
        model: &'a str,
        endpoint: &'a Endpoint,
        route: &'a std::sync::Arc<crate::catalog::EndpointRoute>,
        health: Option<&'a EndpointHealth>,
    ) -> Self {
        Self {
            model_index,
            model,
            endpoint,
            route,
            health,
        }
    }

    /// The price used for ordering and weighting: the route's blended price ([`crate::catalog::RoutePrices`]).
    #[must_use]
    pub fn blended_price(&self) -> Decimal {
        self.route.prices.blended
    }

    /// Whether the endpoint had an outage in the last 30 seconds.
    #[must_use]
    pub fn unstable(&self) -> bool {
        self.health.is_some_and(|h| h.recent_outage)
    }

    /// Throughput: measured when there are enough samples, else the catalog figure.
    #[must_use]
    pub fn throughput(&self) -> Option<f64> {
        self.health
            .filter(|h| h.samples >= MIN_SAMPLES)
            .and_then(|h| h.throughput_p50)
            .or(self.endpoint.stats.throughput_p50)
    }

    /// Latency (ms): measured when there are enough samples, else the catalog figure.
    #[must_use]
    pub fn latency_ms(&self) -> Option<f64> {
        self.health
            .filter(|h| h.samples >= MIN_SAMPLES)
            .and_then(|h| h.latency_p50_ms)
            .or(self.endpoint.stats.latency_p50_ms)
    }

    /// Whether the candidate meets the soft `preferred_min_throughput` / `preferred_max_latency` cutoffs.
    /// Unknown figures count as meeting them.
    #[must_use]
    pub fn meets_preferences(
        &self,
        min_tp: Option<&Percentiles>,
        max_lat: Option<&Percentiles>,
    ) -> bool {
        let h = self.health.filter(|h| h.samples >= MIN_SAMPLES);
        if let Some(min) = min_tp {
            let p50 = self.throughput();
            if let (Some(cut), Some(v)) = (min.p50, p50) {
                if v < cut {
                    return false;
                }
            }
            if let (Some(cut), Some(v)) = (min.p90, h.and_then(|h| h.throughput_p90)) {
                if v < cut {
                    return false;
                }
            }
        }
        if let Some(max) = max_lat {
            if let (Some(cut), Some(v)) = (max.p50, self.latency_ms()) {
                if v / 1000.0 > cut {
                    return false;
                }
            }
            if let (Some(cut), Some(v)) = (max.p90, h.and_then(|h| h.latency_p90_ms)) {
                if v / 1000.0 > cut {
                    return false;
                }
            }
        }
        true
    }
}

fn cmp_f64_desc(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => y.partial_cmp(&x).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn cmp_f64_asc(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Deterministic sort by `by`; ties broken by price, then tag. Unknown metrics sort last.
/// `exacto` puts endpoints supporting both tools and structured outputs first, then by throughput, then price.
pub fn sort_by(c: &mut [Candidate<'_>], by: SortBy) {
    let tie = |a: &Candidate<'_>, b: &Candidate<'_>| {
        a.blended_price()
            .cmp(&b.blended_price())
            .then_with(|| a.endpoint.tag.cmp(&b.endpoint.tag))
    };
    match by {
        SortBy::Price => {
            c.sort_by(|a, b| tie(a, b).then_with(|| a.model_index.cmp(&b.model_index)))
        }
        SortBy::Throughput => {
            c.sort_by(|a, b| cmp_f64_desc(a.throughput(), b.throughput()).then_with(|| tie(a, b)))
        }
        SortBy::Latency => {
            c.sort_by(|a, b| cmp_f64_asc(a.latency_ms(), b.latency_ms()).then_with(|| tie(a, b)))
        }
        SortBy::Exacto => c.sort_by(|a, b| {
            let q = |x: &Candidate<'_>| {
                u8::from(
                    !(x.endpoint.supports("tools") && x.endpoint.supports("structured_outputs")),
                )
            };
            q(a).cmp(&q(b))
                .then_with(|| cmp_f64_desc(a.throughput(), b.throughput()))
                .then_with(|| tie(a, b))
        }),
    }
}

/// `x` as an unsigned integer ordered as `f64::total_cmp` orders the floats: a negative float's bits all flipped
/// (larger magnitudes come first), a positive one's sign bit set (after every negative one).
fn total_order_bits(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

/// One uniform draw in (0, 1) of the weighted order ([`weighted_default`] takes one per endpoint without a
/// recent outage).
pub fn draw(rng: &mut ChaCha8Rng) -> f64 {
    rng.gen_range(f64::MIN_POSITIVE..1.0)
}

/// The default order (semantics §3.4): endpoints without a recent outage are drawn one after another by weighted
/// random sampling without replacement, weight = 1 / price² (free endpoints first, uniformly among themselves);
/// endpoints with a recent outage follow, cheapest first.
///
/// The draw uses the exponential-keys form of weighted sampling without replacement (Efraimidis–Spirakis): each
/// endpoint gets the key `ln(u) / w` for a uniform `u` in (0, 1), and sorting by key, largest first, yields the same
/// distribution as drawing one endpoint at a time with probability proportional to its weight among those left.
pub fn weighted_default<'a>(c: Vec<Candidate<'a>>, rng: &mut ChaCha8Rng) -> Vec<Candidate<'a>> {
    // (The draws are `stable.len()` calls of [`draw`], in catalog order: a planner that skips a group of one
    // replays that one draw later to keep the same sequence.)
    // Candidates arrive in catalog order, so the result depends only on the seed and the catalog.
    let (mut stable, mut unstable): (Vec<_>, Vec<_>) = if c.iter().any(Candidate::unstable) {
        c.into_iter().partition(|x| !x.unstable())
    } else {
        // The usual case: nothing had an outage, so no partition (and no allocation) is needed.
        (c, Vec::new())
    };
    // Each endpoint's place as one integer, so the sort compares integers: free endpoints first, then keys
    // largest first (in `f64::total_cmp`'s order), then the catalog order (equal keys keep it, as a stable sort
    // by the first two would).
    // The keys of a model's endpoints (a few dozen at most) live on the stack: no allocation per plan.
    let mut small = [0u128; 32];
    let mut large = Vec::new();
    let keys: &mut [u128] = if stable.len() <= small.len() {
        &mut small[..stable.len()]
    } else {
        large.resize(stable.len(), 0);
        &mut large
    };
    for ((k, x), i) in keys.iter_mut().zip(&stable).zip(0u32..) {
        let u = draw(rng);
        let free = x.blended_price().is_zero();
        // Free endpoints: uniform among themselves (equal weights), ahead of every priced endpoint.
        let key = if free {
            u.ln()
        } else {
            u.ln() * x.route.prices.blended_per_m * x.route.prices.blended_per_m
        };
        *k = (u128::from(!free) << 96) | (u128::from(!total_order_bits(key)) << 32) | u128::from(i);
    }
    keys.sort_unstable();
    unstable.sort_by(|a, b| {
        a.blended_price()
            .cmp(&b.blended_price())
            .then_with(|| a.endpoint.tag.cmp(&b.endpoint.tag))
    });
    // The drawn order in `stable` itself (no second vector). The low 32 bits are the index (`as` keeps exactly
    // them).
    #[allow(clippy::cast_possible_truncation)]
    gather_in_place(&mut stable, |j| keys[j] as u32 as usize);
    stable.extend(unstable);
    stable
}

/// Reorder `v` so that position `i` holds what was at `source(i)` (`source` a permutation of the indices), without
/// a second vector: a value already moved by an earlier swap is found by following the sources back.
fn gather_in_place<T>(v: &mut [T], source: impl Fn(usize) -> usize) {
    for i in 0..v.len() {
        let mut k = source(i);
        while k < i {
            k = source(k);
        }
        v.swap(i, k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn float() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            (-1e6f64..0.0),
            Just(0.0),
            Just(-0.0),
            Just(f64::NEG_INFINITY),
            Just(f64::INFINITY),
            Just(f64::MIN_POSITIVE),
            Just(-f64::MIN_POSITIVE),
        ]
    }

    proptest! {
        /// The in-place reorder equals gathering into a new vector, for every permutation.
        #[test]
        fn gather_in_place_is_a_gather(p in Just((0..40usize).collect::<Vec<_>>()).prop_shuffle(), n in 0..40usize) {
            let p: Vec<usize> = p.into_iter().filter(|&i| i < n).collect();
            let v: Vec<usize> = (0..n).map(|i| 1000 + i).collect();
            let want: Vec<usize> = p.iter().map(|&i| v[i]).collect();
            let mut got = v;
            gather_in_place(&mut got, |j| p[j]);
            prop_assert_eq!(got, want);
        }

        /// The integers order as `f64::total_cmp` orders the floats (NaNs and signed zeros included).
        #[test]
        fn total_order_bits_is_total_cmp(a in float(), b in float()) {
            prop_assert_eq!(total_order_bits(a).cmp(&total_order_bits(b)), a.total_cmp(&b));
        }
    }
}
