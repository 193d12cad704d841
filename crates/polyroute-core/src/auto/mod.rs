//! The routers that choose the model: `openrouter/auto` (and `openrouter/auto-beta`), `openrouter/pareto-code` and
//! `openrouter/free`.
//!
//! OpenRouter ranks auto-router candidates by community spend, which is not public; polyroute ranks from the
//! catalog's own facts (benchmark indices, prices, capabilities). See `README.md` in this directory for the task
//! types, the scoring and the tiers.
//!
//! Entry point: build an [`AutoIndex`] once per catalog and call [`AutoIndex::route`] for each request whose model
//! is one of [`ROUTERS`]. [`route`] is the same call for one-off use (it builds the index each time).

pub mod classify;
mod cues;
mod pareto;
mod rank;
pub mod settings;

pub use classify::{classify, TaskType};
pub use pareto::{frontier, frontier_price};
pub use rank::{pick_free, supports_request, AutoIndex, Caps, ModelFacts, Need, UNKNOWN_SCORE};
pub use settings::{
    allowed_by, auto_settings, glob_match, pareto_settings, AutoSettings, CodingTier, CostTier,
    ParetoSettings, PriceSource,
};

use crate::catalog::{Catalog, Model};
use crate::error::{Error, Result, Unavailable};
use crate::types::ChatRequest;

/// The router slugs this module handles.
pub const ROUTERS: &[&str] = &[
    "openrouter/auto",
    "openrouter/auto-beta",
    "openrouter/pareto-code",
    "openrouter/free",
];

/// The message of the 404 returned when no model is left.
pub const NO_MATCH_MESSAGE: &str = "No models match your request and model restrictions";

/// Which router decided (a [`crate::resolve::Strategy`] names how a requested slug was resolved; this names the
/// model-choosing router).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterKind {
    /// `openrouter/auto`, `openrouter/auto-beta`.
    Auto,
    /// `openrouter/pareto-code`.
    Pareto,
    /// `openrouter/free`.
    Free,
}

impl RouterKind {
    /// The router-metadata `strategy` value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Pareto => "pareto",
            Self::Free => "free",
        }
    }
}

/// A router's decision.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoDecision {
    /// Models to try, in order: the primary and up to two fallbacks.
    pub models: Vec<String>,
    /// The classified task (auto routers only).
    pub task_type: Option<TaskType>,
    /// The tier actually used: a cost tier (`low`…`max`) for auto, a coding tier (`low`/`medium`/`high`) for
    /// pareto-code; `None` for free and for pareto-code with `max_price`.
    pub tier: Option<&'static str>,
    /// Which router decided.
    pub strategy: RouterKind,
    /// One line on why.
    pub explanation: String,
}

impl AutoDecision {
    /// The decision as router metadata: `{strategy, models, task_type?, tier?, explanation}`.
    #[must_use]
    pub fn to_value(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "strategy": self.strategy.as_str(),
            "models": self.models,
            "explanation": self.explanation,
        });
        if let Some(t) = self.task_type {
            v["task_type"] = serde_json::json!(t.as_str());
        }
        if let Some(t) = self.tier {
            v["tier"] = serde_json::json!(t);
        }
        v
    }
}

/// The 404 returned when no model is left for a router.
#[must_use]
pub fn no_match(router: &str) -> Error {
    Error::NoEndpoints(Box::new(Unavailable {
        requested_models: vec![router.to_string()],
        excluded: Vec::new(),
        attempts: Vec::new(),
        retry_after: None,
        message: NO_MATCH_MESSAGE.to_string(),
    }))
}

/// Session stickiness: keep `previous` (the model this session used last) first while it is still among the top
/// candidates (`ranked`, primary + fallbacks); otherwise the ranking stands. Pure; the engine remembers the model.
#[must_use]
pub fn apply_stickiness(previous: Option<&str>, mut ranked: Vec<String>) -> Vec<String> {
    if let Some(p) = previous {
        if let Some(pos) = ranked.iter().position(|m| m == p) {
            let m = ranked.remove(pos);
            ranked.insert(0, m);
        }
    }
    ranked
}

/// One-off routing: builds an [`AutoIndex`] for `catalog` and calls [`AutoIndex::route`]. Prefer holding an index.
///
/// # Errors
/// As [`AutoIndex::route`].
pub fn route(
    router_slug: &str,
    catalog: &Catalog,
    req: &ChatRequest,
    eligible: &dyn Fn(&Model) -> bool,
    seed: u64,
    previous: Option<&str>,
) -> Result<AutoDecision> {
    AutoIndex::cached(catalog).route(router_slug, req, eligible, seed, previous)
}

impl AutoIndex {
    /// Choose the models for a request addressed to a router.
    ///
    /// - `eligible`: the caller's hard filters (e.g. "has at least one endpoint passing the request's provider
    ///   preferences and filters"); called only for models that already passed the capability and glob filters.
    /// - `seed`: drives the random pick of `openrouter/free`.
    /// - `previous`: the model this session used last (stickiness; auto and pareto-code only).
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] for bad plugin settings or a slug that is not one of [`ROUTERS`];
    /// [`Error::NoEndpoints`] (404, [`NO_MATCH_MESSAGE`]) when no model is left.
    pub fn route(
        &self,
        router_slug: &str,
        req: &ChatRequest,
        eligible: &dyn Fn(&Model) -> bool,
        seed: u64,
        previous: Option<&str>,
    ) -> Result<AutoDecision> {
        match router_slug {
            "openrouter/auto" | "openrouter/auto-beta" => {
                let plugin = if router_slug == "openrouter/auto" {
                    "auto-router"
                } else {
                    "auto-beta-router"
                };
                let settings = auto_settings(req, plugin)?;
                let task = classify(req);
                let r = rank::rank_auto(self, req, task, &settings, eligible)
                    .ok_or_else(|| no_match(router_slug))?;
                let models = apply_stickiness(previous, r.models);
                let explanation = format!(
                    "task {}; cost tier {} (asked {}) among {} candidates; ranked by the {} score",
                    task.as_str(),
                    r.tier.as_str(),
                    settings.cost_tier.as_str(),
                    r.candidates,
                    task.as_str()
                );
                Ok(AutoDecision {
                    models,
                    task_type: Some(task),
                    tier: Some(r.tier.as_str()),
                    strategy: RouterKind::Auto,
                    explanation,
                })
            }
            "openrouter/pareto-code" => {
                let settings = pareto_settings(req)?;
                let c = pareto::choose(self, req, &settings, eligible)
                    .ok_or_else(|| no_match(router_slug))?;
                let models = apply_stickiness(previous, c.models);
                let explanation = match (c.tier, settings.max_price) {
                    (Some(t), _) => format!(
                        "coding tier {} on a frontier of {} models, cheapest first",
                        t.as_str(),
                        c.frontier_size
                    ),
                    (None, Some(p)) => format!(
                        "best coding score at most ${p}/M input on a frontier of {} models",
                        c.frontier_size
                    ),
                    (None, None) => String::new(),
                };
                Ok(AutoDecision {
                    models,
                    task_type: None,
                    tier: c.tier.map(CodingTier::as_str),
                    strategy: RouterKind::Pareto,
                    explanation,
                })
            }
            "openrouter/free" => {
                let models = self.pick_free(req, seed, eligible)?;
                Ok(AutoDecision {
                    models,
                    task_type: None,
                    tier: None,
                    strategy: RouterKind::Free,
                    explanation: "uniform random pick among free models that support the request"
                        .to_string(),
                })
            }
            other => Err(Error::invalid(
                "model",
                format!("{other:?} is not one of {}", ROUTERS.join(", ")),
            )),
        }
    }
}
