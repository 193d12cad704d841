//! `openrouter/pareto-code`: the Pareto frontier of coding score against price.

use super::rank::{AutoIndex, ModelFacts, Need};
use super::settings::{CodingTier, ParetoSettings, PriceSource};
use crate::catalog::Model;
use crate::types::ChatRequest;

/// The price a model is placed at on the frontier, USD per million tokens.
#[must_use]
pub fn frontier_price(f: &ModelFacts, source: PriceSource) -> f64 {
    match source {
        PriceSource::Prompt => f.prompt_price,
        PriceSource::WeightedAvg => f.blended_price(),
    }
}

/// The Pareto frontier of `(score, price)` points: the indices of the points that no other point dominates
/// (dominating = price no higher and score no lower, one of them strictly). Among exact duplicates only the first
/// by slug is kept. Returned cheapest first (and therefore lowest score first).
#[must_use]
pub fn frontier(points: &[(f64, f64, &str)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    // Cheapest first; at equal price the best score first; then slug.
    order.sort_by(|&a, &b| {
        let (sa, pa, ia) = points[a];
        let (sb, pb, ib) = points[b];
        pa.total_cmp(&pb).then(sb.total_cmp(&sa)).then(ia.cmp(ib))
    });
    let mut best = f64::NEG_INFINITY;
    let mut out = Vec::new();
    for i in order {
        if points[i].0 > best {
            best = points[i].0;
            out.push(i);
        }
    }
    out
}

/// The outcome of a pareto-code choice.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParetoChoice {
    pub models: Vec<String>,
    /// `None` when `max_price` bypassed the tiers.
    pub tier: Option<CodingTier>,
    pub frontier_size: usize,
}

/// Tier visiting order: the requested tier, then its neighbours (from medium: high first, then low).
fn tier_order(want: CodingTier) -> [CodingTier; 3] {
    match want {
        CodingTier::High => [CodingTier::High, CodingTier::Medium, CodingTier::Low],
        CodingTier::Medium => [CodingTier::Medium, CodingTier::High, CodingTier::Low],
        CodingTier::Low => [CodingTier::Low, CodingTier::Medium, CodingTier::High],
    }
}

/// Choose for `openrouter/pareto-code`. Candidates: paid, non-router models with a coding index that serve the
/// request and pass `eligible`. The frontier is computed over them. With `max_price`, the frontier models whose
/// input price is at most `max_price` are returned best coding score first (tiers bypassed). Otherwise the frontier
/// models of the requested coding tier are returned cheapest first (primary + up to two same-tier fallbacks); a
/// neighbouring tier is used only when the requested tier has no frontier model.
pub(crate) fn choose(
    index: &AutoIndex,
    req: &ChatRequest,
    settings: &ParetoSettings,
    eligible: &dyn Fn(&Model) -> bool,
) -> Option<ParetoChoice> {
    let need = Need::of(req);
    let orders = index.orders();
    let order = match settings.price_source {
        PriceSource::Prompt => orders.pareto_prompt,
        PriceSource::WeightedAvg => orders.pareto_weighted,
    };
    // The precomputed order is the one `frontier` sorts by (cheapest first, then best score, then slug), so the
    // frontier of the candidates is one scan keeping each model that beats the best score so far. A model that does
    // not beat it is dominated whether or not it is eligible, so `eligible` is asked only about the others.
    let mut front: Vec<(&ModelFacts, f64)> = Vec::new();
    let mut best = f64::NEG_INFINITY;
    for &i in order {
        let f = &index.facts[i];
        let Some(c) = f.coding else { continue };
        if c > best && f.caps.serves(&need) && eligible(index.model(f)) {
            best = c;
            front.push((f, c));
        }
    }
    if front.is_empty() {
        return None;
    }
    if let Some(max) = settings.max_price {
        let models: Vec<String> = front
            .iter()
            .rev()
            .filter(|(f, _)| f.prompt_price <= max)
            .take(3)
            .map(|(f, _)| f.id.clone())
            .collect();
        if models.is_empty() {
            return None;
        }
        return Some(ParetoChoice {
            models,
            tier: None,
            frontier_size: front.len(),
        });
    }
    let want = CodingTier::of_score(settings.min_coding_score);
    for tier in tier_order(want) {
        let models: Vec<String> = front
            .iter()
            .filter(|(_, c)| CodingTier::of_score(*c) == tier)
            .take(3)
            .map(|(f, _)| f.id.clone())
            .collect();
        if !models.is_empty() {
            return Some(ParetoChoice {
                models,
                tier: Some(tier),
                frontier_size: front.len(),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontier_drops_dominated_points() {
        let pts = [
            (0.5, 1.0, "a"),
            (0.4, 2.0, "b"),
            (0.9, 3.0, "c"),
            (0.9, 3.0, "d"),
            (0.7, 0.5, "e"),
        ];
        let f = frontier(&pts);
        assert_eq!(f, vec![4, 2]);
    }
}
