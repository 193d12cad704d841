//! Fallback plans: the ordered attempts, every exclusion with its reason, and the `next(outcome)` state machine.
//!
//! [`plan`] runs the pipeline of semantics §3.9:
//! 1. resolve `model` then `models[]` (at most 3) into concrete models ([`crate::resolve`]);
//! 2. for each model, run every hard filter over its endpoints, keeping the reason for each exclusion;
//! 3. apply the soft default-parameter preference (§3.3) and the `preferred_*` cutoffs (stable partition);
//! 4. order: `order[]` first (then the rest unless `allow_fallbacks: false`), else `sort` (explicit or from
//!    `:nitro`/`:floor`/`:exacto`), else the seeded 1/price² weighted draw over endpoints without a recent outage;
//!    a sticky endpoint goes first unless `order` is set; `allow_fallbacks: false` without `order` keeps one;
//! 5. flatten by partition (`model`: per model in request order; `none`: one global sort).

mod embeddings;
mod options;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{json, Value};

pub use crate::outcome::{Outcome, OutcomeClass};
pub use embeddings::{plan_embeddings, unsupported_dialect};
pub use options::translate_options;

use crate::auto::RouterKind;
pub use crate::catalog::UnitPrices;
use crate::catalog::{Catalog, EndpointRoute, RoutePrices};
use crate::error::{AttemptRecord, Error, Exclusion, ExclusionReason, Result, Unavailable};
pub use crate::health::{EndpointHealth, HealthSnapshot};
use crate::resolve::{self, ResolvedModel, Strategy};
use crate::select::filters::{self, CredentialMarks, FilterEnv, RequestFacts, PREFERRED_PARAMS};
use crate::select::order::{self, Candidate};
use crate::types::{ChatRequest, Partition, ProviderPreferences, SortBy};

/// Everything outside the request that a plan depends on.
#[derive(Debug, Clone, Copy)]
pub struct PlanContext<'a> {
    /// Seed of the weighted random order (and of `openrouter/free`).
    pub seed: u64,
    /// Health observations.
    pub health: &'a HealthSnapshot,
    /// Provider slugs that have credentials; `None` = don't filter on credentials.
    pub credentials: Option<&'a BTreeSet<String>>,
    /// Providers whose endpoints cannot be reached until a setting is given (slug → what is missing); their
    /// endpoints are excluded with `settings_missing`. `None` = none.
    pub unconfigured: Option<&'a BTreeMap<String, String>>,
    /// Endpoint tag the conversation is stuck to (sticky routing), if any.
    pub sticky: Option<&'a str>,
    /// Model a router chose earlier in this session (router stickiness), if any.
    pub previous_router_model: Option<&'a str>,
    /// Precomputed credential flags ([`CredentialMarks`]): read instead of merging `credentials` against each
    /// model's providers when `credentials` is the very set the marks hold and they were made for the catalog
    /// planned against (otherwise ignored). `None` = merge.
    pub credential_marks: Option<&'a CredentialMarks>,
}

impl Default for PlanContext<'_> {
    fn default() -> Self {
        static EMPTY: std::sync::OnceLock<HealthSnapshot> = std::sync::OnceLock::new();
        Self {
            seed: 0,
            health: EMPTY.get_or_init(HealthSnapshot::default),
            credentials: None,
            unconfigured: None,
            sticky: None,
            previous_router_model: None,
            credential_marks: None,
        }
    }
}

/// One planned attempt: a shared, precomputed endpoint route (model, provider, tag, upstream id, dialect,
/// pricing — fields reachable directly through `Deref`) plus why it is at this position.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    /// The endpoint route.
    #[serde(flatten)]
    pub route: Arc<EndpointRoute>,
    /// Why it is at this position.
    pub reason: Cow<'static, str>,
    /// Index of the model in `models`.
    pub model_index: usize,
}

impl std::ops::Deref for Attempt {
    type Target = EndpointRoute;
    fn deref(&self) -> &EndpointRoute {
        &self.route
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Try this attempt next.
    Try(Attempt),
    /// The last attempt succeeded.
    Done,
    /// Nothing is left; the aggregated error.
    Fail(Error),
}

/// An ordered fallback plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Models as requested.
    pub requested_models: Vec<String>,
    /// Resolved models in fallback order.
    pub models: Vec<ResolvedModel>,
    /// Router decision (`openrouter/auto` …), when a router chose the models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router: Option<Value>,
    /// How the order was made (`order`, `sort:price`, `weighted_random`, …).
    pub strategy: &'static str,
    /// Ordered attempts.
    pub attempts: Vec<Attempt>,
    /// Every excluded endpoint and why.
    pub excluded: Vec<Exclusion>,
    /// Unit prices of the first attempt.
    pub primary_prices: UnitPrices,
    /// Highest unit prices across all attempts.
    pub worst_case_prices: UnitPrices,
    /// Whether some fallback costs more than the first attempt.
    pub fallback_costs_more: bool,
    #[serde(skip)]
    cursor: usize,
    #[serde(skip)]
    records: Vec<AttemptRecord>,
    /// Attempts `next` will pass over, by index; empty until an outcome marks one.
    #[serde(skip)]
    skip: Vec<bool>,
    #[serde(skip)]
    last_message: Option<String>,
}

type Dropped<'a> = Vec<(Candidate<'a>, ExclusionReason, String)>;

/// A candidate as the attempt it becomes, at its position for `reason`.
fn attempt(c: &Candidate<'_>, reason: Cow<'static, str>) -> Attempt {
    Attempt {
        route: Arc::clone(c.route),
        reason,
        model_index: c.model_index,
    }
}

/// The plan's random draws, from a generator seeded with the request's seed at the first draw it makes. Most
/// plans order only groups of one endpoint (or sort them) and draw nothing: seeding the generator cost more than
/// the rest of such a plan's ordering. A group of one owes the draw [`order::weighted_default`] would have made
/// for it; the owed draws are made (and dropped) before the next real one, so every plan orders exactly as with
/// a generator seeded up front.
struct Draws {
    seed: u64,
    rng: Option<ChaCha8Rng>,
    owed: usize,
}

impl Draws {
    fn owe(&mut self, n: usize) {
        self.owed += n;
    }

    fn get(&mut self) -> &mut ChaCha8Rng {
        let seed = self.seed;
        let rng = self
            .rng
            .get_or_insert_with(|| ChaCha8Rng::seed_from_u64(seed));
        for _ in 0..std::mem::take(&mut self.owed) {
            order::draw(rng);
        }
        rng
    }
}

/// Order one group of eligible candidates; returns the ordered attempts (each with the reason for its position)
/// and the candidates dropped by `allow_fallbacks: false`.
fn group_order<'a>(
    mut c: Vec<Candidate<'a>>,
    prefs: &ProviderPreferences,
    sort: Option<SortBy>,
    rng: &mut Draws,
) -> (Vec<Attempt>, Dropped<'a>) {
    let mut out: Vec<Attempt> = Vec::with_capacity(c.len());
    let mut excluded: Dropped<'a> = Vec::new();
    let allow = prefs.allow_fallbacks != Some(false);
    if let Some(order) = &prefs.order {
        for (rank, r) in order.iter().enumerate() {
            let mut i = 0;
            while i < c.len() {
                if c[i].endpoint.matches_provider(r) {
                    let x = c.remove(i);
                    out.push(attempt(
                        &x,
                        Cow::Owned(format!("provider.order[{rank}] = {r}")),
                    ));
                } else {
                    i += 1;
                }
            }
        }
        if !allow {
            for x in c {
                let detail = format!(
                    "{} is not in provider.order and allow_fallbacks is false",
                    x.endpoint.tag
                );
                excluded.push((x, ExclusionReason::Order, detail));
            }
            return (out, excluded);
        }
    }
    let rest: Vec<Candidate<'a>> = match sort {
        Some(by) => {
            let mut r = c;
            order::sort_by(&mut r, by);
            r
        }
        // One candidate is its own order: its draw is owed, not made (most plans draw nothing else).
        None if c.len() <= 1 => {
            rng.owe(c.iter().filter(|x| !x.unstable()).count());
            c
        }
        None => order::weighted_default(c, rng.get()),
    };
    let label: &'static str = match (sort, prefs.order.is_some()) {
        (Some(SortBy::Price), false) => "sort by price",
        (Some(SortBy::Throughput), false) => "sort by throughput",
        (Some(SortBy::Latency), false) => "sort by latency",
        (Some(SortBy::Exacto), false) => "sort by exacto (tools and structured outputs first)",
        (None, false) => "weighted draw by 1/price² among endpoints without a recent outage",
        (Some(_), true) => "fallback after provider.order, sorted",
        (None, true) => "fallback after provider.order, weighted by 1/price²",
    };
    // `allow_fallbacks: false` without `order` keeps the first choice only (`out` is still empty here).
    let keep_one = !allow && prefs.order.is_none();
    for x in rest {
        if keep_one && !out.is_empty() {
            excluded.push((
                x,
                ExclusionReason::AllowFallbacks,
                "allow_fallbacks is false: only the first choice".into(),
            ));
            continue;
        }
        let why = if x.unstable() && sort.is_none() {
            "recent outage: tried after stable endpoints"
        } else {
            label
        };
        out.push(attempt(&x, Cow::Borrowed(why)));
    }
    (out, excluded)
}

/// The exclusion of an endpoint whose dialect polyroute does not translate (checked after the hard filters, so
/// a reason the caller chose — `only`, `ignore`, credentials — is reported first).
fn untranslated(route: &EndpointRoute, kind: Kind) -> Option<(ExclusionReason, String)> {
    if let Kind::Embeddings { tokens } = kind {
        return embeddings::unsupported_dialect(route.dialect, tokens).map(|why| {
            (
                ExclusionReason::DialectUnsupported,
                format!("{}: {why}", route.tag),
            )
        });
    }
    (!route.dialect.is_translated()).then(|| {
        (
            ExclusionReason::DialectUnsupported,
            [
                &route.tag,
                " speaks the ",
                route.dialect.as_str(),
                " dialect, which polyroute does not translate yet",
            ]
            .concat(),
        )
    })
}

/// The exclusion of an endpoint whose provider lacks a setting it needs (after the hard filters, before the
/// dialect check).
fn unconfigured(ctx: &PlanContext<'_>, route: &EndpointRoute) -> Option<(ExclusionReason, String)> {
    let missing = ctx.unconfigured?.get(&route.provider)?;
    Some((
        ExclusionReason::SettingsMissing,
        [&route.tag, ": ", missing].concat(),
    ))
}

/// Resolve the request's models: `model` first, then `models` (duplicates removed).
fn requested(req: &ChatRequest) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(
        usize::from(req.model.is_some()) + req.models.as_ref().map_or(0, Vec::len),
    );
    for m in req.model.iter().chain(req.models.iter().flatten()) {
        if !out.contains(m) {
            out.push(m.clone());
        }
    }
    out
}

/// Build the plan for `req`.
///
/// # Errors
/// Resolution errors, or an availability error (`no_endpoints`, `constraint_filtered`, `privacy_restricted`)
/// carrying every exclusion when no endpoint is left.
pub fn plan(catalog: &Catalog, req: &ChatRequest, ctx: &PlanContext<'_>) -> Result<Plan> {
    plan_for(catalog, req, ctx, Kind::Chat)
}

/// What a plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Chat completions: chat models only.
    Chat,
    /// The embeddings API: embedding models only; `tokens` when the input is token arrays.
    Embeddings {
        /// The input is token arrays (endpoints that embed text only are excluded).
        tokens: bool,
    },
}

/// The error for a model of the wrong kind: chat never routes to an embedding model, embeddings to nothing else.
fn wrong_kind(req: &ChatRequest, slug: &str, embeddings: bool) -> Error {
    let field = if req.model.as_deref() == Some(slug) {
        "model"
    } else {
        "models"
    };
    let msg = if embeddings {
        format!(
            "{slug} is not an embedding model; the embeddings API routes only to embedding models"
        )
    } else {
        format!("{slug} is an embedding model; call the embeddings API (POST /api/v1/embeddings) instead")
    };
    Error::invalid(field, msg)
}

/// [`plan`] for chat or for the embeddings API (only embedding models, no model-choosing routers).
pub(crate) fn plan_for(
    catalog: &Catalog,
    req: &ChatRequest,
    ctx: &PlanContext<'_>,
    kind: Kind,
) -> Result<Plan> {
    let embeddings = kind != Kind::Chat;
    let requested_models = requested(req);
    let default_prefs = ProviderPreferences::default();
    let prefs = req.provider.as_ref().unwrap_or(&default_prefs);
    let mut facts = RequestFacts::new(req);
    if embeddings {
        // Each input is embedded on its own: the context must fit the longest one, and nothing is generated.
        let mut one = req.clone();
        facts.prompt_tokens = req
            .messages
            .iter()
            .map(|m| {
                one.messages = vec![m.clone()];
                one.estimate_prompt_tokens()
            })
            .max()
            .unwrap_or(0);
        facts.output_limit = None;
        facts.used_params.clear();
    }
    let mut router: Option<Value> = None;
    let mut resolved: Vec<ResolvedModel> = Vec::with_capacity(requested_models.len());
    for r in &requested_models {
        if resolve::is_router_slug(r) {
            if embeddings {
                return Err(wrong_kind(req, r, true));
            }
            let (models, info) = route_router(catalog, req, r, ctx, prefs, &facts)?;
            router = Some(info);
            for m in models {
                if !resolved.iter().any(|x| x.id == m.id) {
                    resolved.push(m);
                }
            }
        } else {
            let m = resolve::resolve_one(catalog, r)?;
            if catalog.model(&m.id).is_some_and(|x| x.is_embedding()) != embeddings {
                return Err(wrong_kind(req, r, embeddings));
            }
            if !resolved
                .iter()
                .any(|x| x.id == m.id && x.variant == m.variant)
            {
                resolved.push(m);
            }
        }
    }
    // An explicit `partition: none` wins; otherwise the deprecated `route: "sort"` means none.
    let partition = match (prefs.sort.map(|s| s.partition), req.route.as_deref()) {
        (Some(Partition::None), _) | (_, Some("sort")) => Partition::None,
        _ => Partition::Model,
    };
    let mut rng = Draws {
        seed: ctx.seed,
        rng: None,
        owed: 0,
    };
    let mut excluded: Vec<Exclusion> = Vec::new();
    let mut groups: Vec<Vec<Candidate<'_>>> = Vec::new();
    let mut any_endpoint = false;
    // Without observations (the usual case for a fresh router) no endpoint has health to look up.
    let health = (!ctx.health.endpoints.is_empty()).then_some(ctx.health);
    for (mi, rm) in resolved.iter().enumerate() {
        let Some((model, routes, by_provider, index)) = catalog.model_entry(&rm.id) else {
            continue;
        };
        let env = FilterEnv {
            credentials: ctx.credentials,
            variant_tier: rm.variant.and_then(|v| v.tier()),
        };
        let mut eligible: Vec<Candidate<'_>> = Vec::with_capacity(model.endpoints.len());
        // Credentials: the router's precomputed marks when they are for this set and catalog, else one merge over
        // the sorted set for a wide model, a lookup per endpoint for a narrow one.
        let marked = match (ctx.credentials, ctx.credential_marks) {
            (Some(creds), Some(m)) if std::ptr::eq(creds, m.credentials()) => m.of(catalog, index),
            _ => None,
        };
        let merged: Cow<'_, [bool]> = match (marked, ctx.credentials) {
            (Some(m), _) => Cow::Borrowed(m),
            (None, Some(creds)) if model.endpoints.len() >= 4 => {
                Cow::Owned(filters::credentialed(creds, &model.endpoints, by_provider))
            }
            _ => Cow::Borrowed(&[]),
        };
        for (i, (e, route)) in model.endpoints.iter().zip(routes).enumerate() {
            any_endpoint = true;
            let credential = match merged.get(i) {
                Some(&has) => Some(has),
                None => ctx.credentials.map(|c| c.contains(&e.provider)),
            };
            match filters::check_with(&env, prefs, &facts, model, e, credential)
                .or_else(|| unconfigured(ctx, route))
                .or_else(|| untranslated(route, kind))
            {
                Some((reason, detail)) => {
                    excluded.push(Exclusion {
                        model: model.id.clone(),
                        endpoint: e.tag.clone(),
                        reason,
                        detail,
                    });
                }
                None => eligible.push(Candidate::new(
                    mi,
                    &model.id,
                    e,
                    route,
                    health.and_then(|h| h.get(&model.id, &e.tag)),
                )),
            }
        }
        // Soft default-parameter preference (§3.3).
        for p in PREFERRED_PARAMS {
            if facts.preferred_params.contains(p) && eligible.iter().any(|c| c.endpoint.supports(p))
            {
                let (keep, drop): (Vec<_>, Vec<_>) =
                    eligible.into_iter().partition(|c| c.endpoint.supports(p));
                for c in drop {
                    let reason = if *p == "tools" {
                        ExclusionReason::Tools
                    } else {
                        ExclusionReason::RequireParameters
                    };
                    excluded.push(Exclusion {
                        model: model.id.clone(),
                        endpoint: c.endpoint.tag.clone(),
                        reason,
                        detail: format!(
                            "does not support {p} while other endpoints of the model do"
                        ),
                    });
                }
                eligible = keep;
            }
        }
        groups.push(eligible);
    }
    let sort_for = |mi: usize| {
        prefs
            .sort
            .map(|s| s.by)
            .or_else(|| resolved[mi].variant.map(|v| v.sort()))
    };
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut strategy: &'static str = "";
    let group_list: Vec<Vec<Candidate<'_>>> = if partition == Partition::None && groups.len() > 1 {
        vec![groups.into_iter().flatten().collect()]
    } else {
        groups
    };
    for g in group_list {
        if g.is_empty() {
            continue;
        }
        let mi = g[0].model_index;
        let sort = sort_for(mi);
        // Preferred cutoffs: a stable partition, meeting ones first.
        let (mut good, bad): (Vec<_>, Vec<_>) =
            if prefs.preferred_min_throughput.is_none() && prefs.preferred_max_latency.is_none() {
                // Without cutoffs every candidate meets them: no partition to make.
                (g, Vec::new())
            } else {
                g.into_iter().partition(|c| {
                    c.meets_preferences(
                        prefs.preferred_min_throughput.as_ref(),
                        prefs.preferred_max_latency.as_ref(),
                    )
                })
            };
        let (mut part, ex) = if bad.is_empty() || good.is_empty() {
            good.extend(bad);
            group_order(good, prefs, sort, &mut rng)
        } else {
            let (mut pa, mut ea) = group_order(good, prefs, sort, &mut rng);
            let (pb, eb) = group_order(bad, prefs, sort, &mut rng);
            pa.extend(pb.into_iter().map(|mut a| {
                a.reason = Cow::Owned(format!("{}; below preferred throughput/latency", a.reason));
                a
            }));
            ea.extend(eb);
            (pa, ea)
        };
        for (x, reason, detail) in ex {
            excluded.push(Exclusion {
                model: x.model.to_string(),
                endpoint: x.endpoint.tag.clone(),
                reason,
                detail,
            });
        }
        if let (Some(tag), None) = (ctx.sticky, &prefs.order) {
            if let Some(p) = part.iter().position(|a| a.tag == tag && a.model_index == 0) {
                let mut a = part.remove(p);
                a.reason = Cow::Borrowed("sticky: this conversation's cached provider");
                part.insert(0, a);
            }
        }
        if strategy.is_empty() {
            strategy = match (prefs.order.is_some(), sort) {
                (true, _) => "order",
                (false, Some(SortBy::Price)) => "sort:price",
                (false, Some(SortBy::Throughput)) => "sort:throughput",
                (false, Some(SortBy::Latency)) => "sort:latency",
                (false, Some(SortBy::Exacto)) => "sort:exacto",
                (false, None) => "weighted_random",
            };
        }
        if attempts.is_empty() {
            attempts = part;
        } else {
            attempts.extend(part);
        }
    }
    if attempts.is_empty() {
        return Err(empty_error(requested_models, excluded, any_endpoint));
    }
    let primary_prices = attempts[0].prices.unit.clone();
    // The highest of each unit price across the attempts, compared by the integer keys the routes keep.
    let worst_case_prices = RoutePrices::worst_case(attempts.iter().map(|a| &a.prices));
    let fallback_costs_more = worst_case_prices != primary_prices;
    Ok(Plan {
        requested_models,
        models: resolved,
        router,
        strategy,
        attempts,
        excluded,
        primary_prices,
        worst_case_prices,
        fallback_costs_more,
        cursor: 0,
        records: Vec::new(),
        skip: Vec::new(),
        last_message: None,
    })
}

fn empty_error(
    requested_models: Vec<String>,
    excluded: Vec<Exclusion>,
    any_endpoint: bool,
) -> Error {
    let privacy = !excluded.is_empty()
        && excluded.iter().all(|e| {
            matches!(
                e.reason,
                ExclusionReason::DataPolicyZdr | ExclusionReason::DataPolicyTraining
            )
        });
    let mut reasons: Vec<&str> = excluded.iter().map(|e| e.reason.as_str()).collect();
    reasons.sort_unstable();
    reasons.dedup();
    let message = if !any_endpoint {
        format!("No endpoints found for {}.", requested_models.join(", "))
    } else if privacy {
        format!(
            "No endpoints found matching your data policy for {}.",
            requested_models.join(", ")
        )
    } else {
        format!(
            "No endpoints of {} match your request; excluded by: {}",
            requested_models.join(", "),
            reasons.join(", ")
        )
    };
    let u = Box::new(Unavailable {
        requested_models,
        excluded,
        attempts: Vec::new(),
        retry_after: None,
        message,
    });
    if !any_endpoint {
        Error::NoEndpoints(u)
    } else if privacy {
        Error::PrivacyRestricted(u)
    } else {
        Error::ConstraintFiltered(u)
    }
}

fn route_router(
    catalog: &Catalog,
    req: &ChatRequest,
    slug: &str,
    ctx: &PlanContext<'_>,
    prefs: &ProviderPreferences,
    facts: &RequestFacts,
) -> Result<(Vec<ResolvedModel>, Value)> {
    let env = FilterEnv {
        credentials: ctx.credentials,
        variant_tier: None,
    };
    let eligible = |m: &crate::catalog::Model| {
        m.endpoints
            .iter()
            .zip(catalog.routes_of(&m.id))
            .any(|(e, r)| {
                r.dialect.is_translated() && filters::check(&env, prefs, facts, m, e).is_none()
            })
    };
    let decision = crate::auto::route(
        slug,
        catalog,
        req,
        &eligible,
        ctx.seed,
        ctx.previous_router_model,
    )?;
    let strategy = match decision.strategy {
        RouterKind::Free => Strategy::Free,
        RouterKind::Pareto => Strategy::Pareto,
        RouterKind::Auto => Strategy::Auto,
    };
    let info = json!({
        "router": slug,
        "task_type": decision.task_type.map(|t| t.as_str()),
        "tier": decision.tier,
        "models": decision.models,
        "explanation": decision.explanation,
    });
    let models = decision
        .models
        .iter()
        .map(|id| ResolvedModel {
            requested: slug.to_string(),
            id: id.clone(),
            strategy,
            variant: None,
        })
        .collect();
    Ok((models, info))
}

impl Plan {
    /// The first attempt.
    #[must_use]
    pub fn first(&self) -> Option<&Attempt> {
        self.attempts.first()
    }

    /// Attempts recorded so far.
    #[must_use]
    pub fn records(&self) -> &[AttemptRecord] {
        &self.records
    }

    /// The attempt records, moved out of the plan (which keeps none after): for the caller's last use of them.
    pub fn take_records(&mut self) -> Vec<AttemptRecord> {
        std::mem::take(&mut self.records)
    }

    /// Report the outcome of the current attempt and get the decision.
    ///
    /// Rules: success ends the plan. A context-length failure skips the model's remaining endpoints whose context
    /// is not larger. An invalid-request failure skips the model's remaining endpoints (the next model is still
    /// tried: any error triggers model fallback). Every other failure moves to the next attempt. When nothing is
    /// left: all attempts rate limited → `capacity_exhausted` (retry after the smallest hint); all availability
    /// failures → `temporarily_unavailable`; otherwise the last provider's error, with every attempt kept.
    pub fn next(&mut self, outcome: &Outcome) -> Next {
        let Some(cur) = self.attempts.get(self.cursor).cloned() else {
            return Next::Fail(self.aggregate());
        };
        self.records.push(AttemptRecord {
            model: cur.model.clone(),
            provider: cur.provider.clone(),
            endpoint: cur.tag.clone(),
            status: outcome.status,
            class: outcome.class,
            retry_after: outcome.retry_after,
            latency_ms: outcome.latency_ms,
        });
        self.last_message = Some(outcome.message.clone());
        if outcome.class == OutcomeClass::Success {
            return Next::Done;
        }
        for i in self.cursor + 1..self.attempts.len() {
            let a = &self.attempts[i];
            if a.model_index != cur.model_index {
                continue;
            }
            let pass = match outcome.class {
                OutcomeClass::ContextLength => a.context_length <= cur.context_length,
                OutcomeClass::InvalidRequest => true,
                _ => false,
            };
            if pass {
                if self.skip.is_empty() {
                    self.skip = vec![false; self.attempts.len()];
                }
                self.skip[i] = true;
            }
        }
        self.cursor += 1;
        while self.cursor < self.attempts.len() && self.skip.get(self.cursor) == Some(&true) {
            self.cursor += 1;
        }
        match self.attempts.get(self.cursor) {
            Some(a) => Next::Try(a.clone()),
            None => Next::Fail(self.aggregate()),
        }
    }

    fn aggregate(&self) -> Error {
        let last = self.records.last();
        let all_rate = !self.records.is_empty()
            && self
                .records
                .iter()
                .all(|r| r.class == OutcomeClass::RateLimited);
        let all_avail =
            !self.records.is_empty() && self.records.iter().all(|r| r.class.is_availability());
        let retry_after = self
            .records
            .iter()
            .filter_map(|r| r.retry_after)
            .min_by(f64::total_cmp);
        let mk = |message: String| {
            Box::new(Unavailable {
                requested_models: self.requested_models.clone(),
                excluded: self.excluded.clone(),
                attempts: self.records.clone(),
                retry_after,
                message,
            })
        };
        let n = self.records.len();
        if all_rate {
            return Error::CapacityExhausted(mk(format!(
                "all {n} providers tried are rate limited"
            )));
        }
        if all_avail {
            // Name what actually happened, in a fixed order: "unreachable" is a configuration problem more often
            // than a load problem, so it must not read as "overloaded".
            let mut seen: Vec<&str> = Vec::new();
            for (class, word) in [
                (OutcomeClass::Unreachable, "unreachable"),
                (OutcomeClass::Overloaded, "overloaded or failing"),
                (OutcomeClass::Timeout, "timing out"),
                (OutcomeClass::RateLimited, "rate limited"),
            ] {
                if self.records.iter().any(|r| r.class == class) {
                    seen.push(word);
                }
            }
            return Error::TemporarilyUnavailable(mk(format!(
                "all {n} providers tried are unavailable ({})",
                seen.join(", ")
            )));
        }
        match last {
            Some(r) => {
                // A success is never the last record of a failed plan; treat it as an overload if it were.
                let class = match r.class {
                    OutcomeClass::Success => OutcomeClass::Overloaded,
                    c => c,
                };
                let status = match class {
                    OutcomeClass::Overloaded | OutcomeClass::Unreachable => 502,
                    OutcomeClass::Timeout => 408,
                    OutcomeClass::Moderation => 403,
                    _ if r.status >= 400 => r.status,
                    _ => 502,
                };
                Error::Provider {
                    status,
                    error_type: class.error_type().to_string(),
                    message: self
                        .last_message
                        .clone()
                        .filter(|m| !m.is_empty())
                        .unwrap_or_else(|| "Provider returned error".into()),
                    provider: r.provider.clone(),
                    attempts: self.records.clone(),
                }
            }
            None => Error::Internal {
                message: "plan has no attempts".into(),
            },
        }
    }

    /// The plan as JSON (what `polyroute plan --json` prints and the bindings return).
    #[must_use]
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|e| json!({ "error": e.to_string() }))
    }
}

#[cfg(test)]
mod tests {
    use super::{order, ChaCha8Rng, Draws, SeedableRng};

    /// The exclusion details are joined with `[..].concat()`: what `format!` writes of the same pieces, into a
    /// string of exactly their length.
    #[test]
    fn concat_is_format() {
        for (a, b, c) in [
            ("", "", ""),
            ("google-vertex", " speaks the ", "openai-vertex"),
            ("azure", ": ", "the Azure resource is not configured"),
            ("é/ü", "", " ✓"),
        ] {
            let s = [a, b, c].concat();
            assert_eq!(s, format!("{a}{b}{c}"));
            assert_eq!(s.capacity(), s.len());
        }
    }

    /// Owed draws made late give the very numbers a generator seeded up front gives when each draw is made in
    /// its place: for many seeds and interleavings of groups of one (owing 0 or 1 draw) and larger groups
    /// (drawing 2-4).
    #[test]
    fn owed_draws_keep_the_eager_sequence() {
        for seed in 0..200u64 {
            let mut eager = ChaCha8Rng::seed_from_u64(seed);
            let mut lazy = Draws {
                seed,
                rng: None,
                owed: 0,
            };
            let mut step = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            for _ in 0..12 {
                step ^= step << 13;
                step ^= step >> 7;
                step ^= step << 17;
                if step % 3 == 0 {
                    let n = usize::try_from(2 + step % 3).unwrap_or(2);
                    let want: Vec<f64> = (0..n).map(|_| order::draw(&mut eager)).collect();
                    let rng = lazy.get();
                    let got: Vec<f64> = (0..n).map(|_| order::draw(rng)).collect();
                    assert_eq!(got, want, "seed {seed}");
                } else {
                    let owed = usize::from(step % 2 == 0);
                    for _ in 0..owed {
                        order::draw(&mut eager);
                    }
                    lazy.owe(owed);
                }
            }
        }
        // A plan that owes only never seeds.
        let mut d = Draws {
            seed: 1,
            rng: None,
            owed: 0,
        };
        d.owe(1);
        assert!(d.rng.is_none());
    }
}
