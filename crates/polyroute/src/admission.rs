//! Admission, the first step of every request: seed, sticky lookup, plan, rate limits, budget hold. What comes
//! out is an [`Admission`] holding the plan and the [`Reservation`]; a refusal is an error before any provider
//! is called.

use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::time::Duration;

use polyroute_core::plan::{self, Plan, PlanContext};
use polyroute_core::types::{ChatRequest, Role};
use polyroute_core::{Catalog, Error, Result};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::config::RequestContext;
use crate::reservation::Reservation;
use crate::router::{now_ms, splitmix, Router};
use crate::state::{HoldRequest, RateDecision, ReservationId, Scope, ScopeLimit, Span, Window};

/// Extra life of a hold beyond the request's total timeout (billing after the last byte).
const HOLD_MARGIN: Duration = Duration::from_secs(60);

/// An admitted request: what the failover loop and billing need.
pub(crate) struct Admission {
    pub plan: Plan,
    pub gen_id: String,
    pub created_ms: i64,
    pub sticky_key: Option<u64>,
    /// The endpoint the sticky lookup found (None: no key, a miss, or a store that failed).
    pub sticky_found: Option<String>,
    pub reservation: Option<Reservation>,
    pub free: bool,
    /// Time spent waiting (providers, the caller, backoff): the request's overhead is the rest.
    pub waited: crate::metrics::Waited,
    /// The request's span, when traces are on (set by the lifecycle).
    pub trace: Option<crate::otel::ReqSpan>,
    /// The pool credential the current attempt uses (set by the failover loop).
    pub credential: Option<usize>,
    /// What the generation's record says it was (set by the embeddings driver).
    pub api_type: crate::ledger::ApiType,
}

/// Feeds a JSON value into a hasher without serializing it: values equal as JSON text hash equally (objects
/// in their order, as in their text).
fn hash_value(v: &Value, h: &mut impl Hasher) {
    match v {
        Value::Null => h.write_u8(0),
        Value::Bool(b) => {
            h.write_u8(1);
            b.hash(h);
        }
        Value::Number(n) => {
            h.write_u8(2);
            if let Some(u) = n.as_u64() {
                h.write_u64(u);
            } else if let Some(i) = n.as_i64() {
                h.write_i64(i);
            } else {
                h.write_u64(n.as_f64().map_or(0, f64::to_bits));
            }
        }
        Value::String(s) => hash_str(s, h),
        Value::Array(a) => {
            h.write_u8(4);
            h.write_usize(a.len());
            for x in a {
                hash_value(x, h);
            }
        }
        Value::Object(m) => {
            h.write_u8(5);
            h.write_usize(m.len());
            for (k, x) in m {
                k.hash(h);
                hash_value(x, h);
            }
        }
    }
}

fn hash_str(s: &str, h: &mut impl Hasher) {
    h.write_u8(3);
    s.hash(h);
}

fn hash_opt(v: Option<&Value>, h: &mut impl Hasher) {
    match v {
        Some(v) => hash_value(v, h),
        None => h.write_u8(0xff),
    }
}

/// The conversation key of sticky routing: model(s) and the session key, else the opening messages. None when
/// the request pins its provider order or has no user message.
fn sticky_key(req: &ChatRequest, ctx: &RequestContext) -> Option<u64> {
    if req.provider.as_ref().is_some_and(|p| p.order.is_some()) {
        return None;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    // As the request's `Value` hashed them (the key is shared through the store with processes of other
    // versions); an explicit `null` hashes as absent.
    match &req.model {
        Some(m) => hash_str(m, &mut h),
        None => h.write_u8(0xff),
    }
    match &req.models {
        Some(ms) => {
            h.write_u8(4);
            h.write_usize(ms.len());
            for m in ms {
                hash_str(m, &mut h);
            }
        }
        None => h.write_u8(0xff),
    }
    if let Some(k) = req
        .session_id
        .as_ref()
        .or(ctx.session_id.as_ref())
        .or(req.prompt_cache_key.as_ref())
    {
        ("key", k).hash(&mut h);
    } else {
        let sys = req
            .messages
            .iter()
            .find(|m| matches!(m.role, Role::System | Role::Developer));
        let first = req
            .messages
            .iter()
            .find(|m| !matches!(m.role, Role::System | Role::Developer));
        first?;
        for m in [sys, first].into_iter().flatten() {
            hash_opt(m.content.as_ref(), &mut h);
        }
    }
    Some(h.finish())
}

impl Router {
    /// Plan the request and admit it under the free-tier and spend limits.
    pub(crate) async fn admit(&self, req: &ChatRequest, ctx: &RequestContext) -> Result<Admission> {
        self.admit_planned(req, ctx, |c, p| plan::plan(c, req, p))
            .await
    }

    /// [`Router::admit`] with another planner over the same routing request (the embeddings API plans its own
    /// planning view with `plan_embeddings`; everything else — sticky, free tier, the hold — is shared).
    pub(crate) async fn admit_planned(
        &self,
        req: &ChatRequest,
        ctx: &RequestContext,
        planner: impl Fn(&Catalog, &PlanContext<'_>) -> Result<Plan>,
    ) -> Result<Admission> {
        let inner = &self.inner;
        let n = inner.seq.fetch_add(1, Ordering::Relaxed);
        let seed = splitmix(inner.seed_base ^ n);
        let sticky_key = sticky_key(req, ctx);
        let plan_with = |sticky: Option<&str>| {
            let health = inner.stores.health.snapshot();
            let pctx = PlanContext {
                seed,
                health: &health,
                // The set the router's precomputed credential marks were made from (the same as
                // `inner.credentials`), so the planner uses the marks instead of comparing the set again.
                credentials: Some(inner.credential_marks.credentials()),
                credential_marks: Some(&inner.credential_marks),
                unconfigured: Some(&inner.unconfigured),
                sticky,
                ..PlanContext::default()
            };
            planner(&inner.catalog, &pctx)
        };
        let created_ms = now_ms();
        let gen_id = ctx.generation_id.clone().unwrap_or_else(|| {
            crate::router::generation_id(created_ms / 1000, splitmix(seed ^ 0x5EED))
        });
        let remote = inner.stores.sticky.is_remote() && inner.stores.budget.is_remote();
        let mut sticky_found = None;
        let (plan, reservation) = match sticky_key {
            // Shared stores: one round trip for the sticky lookup and the hold. The hold is sized on the plan
            // without the sticky endpoint; stickiness only reorders the same endpoints, so the worst case is the
            // same (when it is not, e.g. `allow_fallbacks: false`, a second hold is sized on the sticky plan).
            Some(k) if remote => {
                let plan0 = plan_with(None)?;
                let free = plan0.attempts.iter().any(|a| a.model.ends_with(":free"));
                if free {
                    self.check_free(ctx.user.as_deref()).await?;
                }
                let (tag, rate, held) = tokio::join!(
                    inner.stores.sticky.get(k),
                    self.check_user_rpm(ctx.user.as_deref()),
                    self.reserve(&plan0, req, ctx, &gen_id)
                );
                // Over the rpm: the hold (if placed) is released as it drops. Refused by the budget: the rpm
                // window counted the request anyway (never under-counts).
                let held = held?;
                rate?;
                sticky_found = tag.ok().flatten();
                match &sticky_found {
                    None => (plan0, held),
                    Some(tag) => {
                        let plan = plan_with(Some(tag))?;
                        if plan.worst_case_prices == plan0.worst_case_prices {
                            (plan, held)
                        } else {
                            drop(held);
                            let again = self
                                .reserve(&plan, req, ctx, &format!("{gen_id}~sticky"))
                                .await?;
                            (plan, again)
                        }
                    }
                }
            }
            _ => {
                // A sticky store that fails is a miss, not an error.
                if let Some(k) = sticky_key {
                    sticky_found = inner.stores.sticky.get(k).await.ok().flatten();
                }
                let plan = plan_with(sticky_found.as_deref())?;
                let free = plan.attempts.iter().any(|a| a.model.ends_with(":free"));
                if free {
                    self.check_free(ctx.user.as_deref()).await?;
                }
                self.check_user_rpm(ctx.user.as_deref()).await?;
                let held = self.reserve(&plan, req, ctx, &gen_id).await?;
                (plan, held)
            }
        };
        let free = plan.attempts.iter().any(|a| a.model.ends_with(":free"));
        Ok(Admission {
            plan,
            gen_id,
            created_ms,
            sticky_key,
            sticky_found,
            reservation: Some(reservation),
            free,
            waited: crate::metrics::Waited::default(),
            trace: None,
            credential: None,
            api_type: crate::ledger::ApiType::default(),
        })
    }

    /// The free tier: requests per UTC day, then per minute, per user key (or router-wide without one).
    async fn check_free(&self, user: Option<&str>) -> Result<()> {
        let lim = &self.inner.opts.limits;
        let windows = [
            Window {
                name: "free-models-per-day".into(),
                limit: u64::from(lim.free_per_day),
                span: Span::UtcDay,
            },
            Window {
                name: "free-models-per-minute".into(),
                limit: u64::from(lim.free_per_minute),
                span: Span::Sliding(Duration::from_secs(60)),
            },
        ];
        match self
            .inner
            .stores
            .rate
            .hit(user.unwrap_or(""), &windows, 1)
            .await?
        {
            RateDecision::Allowed => Ok(()),
            RateDecision::Limited {
                window,
                retry_after,
            } => {
                self.inner.metrics.limit_refused("free_tier");
                Err(Error::RateLimited {
                    limit: window,
                    retry_after: Some(retry_after.as_secs_f64().ceil().max(1.0)),
                })
            }
        }
    }

    /// `limits.user_rpm`: the user's requests per minute, every model (no user or no limit: nothing counted).
    async fn check_user_rpm(&self, user: Option<&str>) -> Result<()> {
        let (Some(user), Some(rpm)) = (user, self.inner.opts.limits.user_rpm) else {
            return Ok(());
        };
        let w = [Window {
            name: "user-requests-per-minute".into(),
            limit: rpm,
            span: Span::Sliding(Duration::from_secs(60)),
        }];
        match self
            .inner
            .stores
            .rate
            .hit(&format!("user-rpm:{user}"), &w, 1)
            .await?
        {
            RateDecision::Allowed => Ok(()),
            RateDecision::Limited {
                window,
                retry_after,
            } => Err(Error::RateLimited {
                limit: window,
                retry_after: Some(retry_after.as_secs_f64().ceil().max(1.0)),
            }),
        }
    }

    /// The worst-case cost of the request under its plan (the dearest endpoint, the longest answer).
    fn worst_case(&self, plan: &Plan, req: &ChatRequest) -> Decimal {
        let lim = &self.inner.opts.limits;
        let w = &plan.worst_case_prices;
        let prompt = Decimal::from(req.estimate_prompt_tokens());
        let out = Decimal::from(req.output_limit().unwrap_or(lim.default_output_estimate));
        (w.prompt * prompt + w.completion * out) / Decimal::from(1_000_000) + w.request
    }

    /// Hold the worst case against the router's, the user's and the gateway key's limits.
    async fn reserve(
        &self,
        plan: &Plan,
        req: &ChatRequest,
        ctx: &RequestContext,
        gen_id: &str,
    ) -> Result<Reservation> {
        let lim = &self.inner.opts.limits;
        // Room for the user's and the key's scopes.
        let mut scopes = Vec::with_capacity(3);
        scopes.push(ScopeLimit {
            scope: Scope::Router,
            limit: lim.router_usd,
        });
        if let Some(u) = &ctx.user {
            scopes.push(ScopeLimit {
                scope: Scope::User(u.clone()),
                limit: lim.user_usd.get(u).copied().or(lim.default_user_usd),
            });
        }
        if let Some(k) = &ctx.key_id {
            scopes.push(ScopeLimit {
                scope: Scope::Key(k.clone()),
                limit: ctx.key_limit,
            });
        }
        let amount = self.worst_case(plan, req);
        let hold = HoldRequest {
            id: ReservationId(gen_id.to_string()),
            amount,
            scopes,
            ttl: self.inner.opts.timeouts.total + HOLD_MARGIN,
        };
        match Reservation::place(self.inner.stores.budget.clone(), hold).await? {
            Ok(r) => Ok(r.counted_by(&self.inner.settles)),
            Err(r) => {
                self.inner.metrics.limit_refused(match r.scope {
                    Scope::Router => "router_budget",
                    Scope::User(_) => "user_budget",
                    Scope::Key(_) => "key_credit",
                });
                let have = (r.spent + r.held).round_dp(6).normalize();
                let est = r.amount.round_dp(6);
                let l = r.limit;
                let message = match r.scope {
                    Scope::Router => format!("router spend limit ${l} would be exceeded: spent ${have}, this request may cost up to ${est}"),
                    Scope::User(_) => format!("spend limit ${l} of this key would be exceeded: spent ${have}, this request may cost up to ${est}"),
                    Scope::Key(_) => format!("This API key has reached its credit limit: used ${have} of ${}, and this request may cost up to ${est}. Raise the limit with a new key.", l.normalize()),
                };
                Err(Error::PaymentRequired { message })
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn h(v: Option<&Value>) -> u64 {
        let mut s = std::collections::hash_map::DefaultHasher::new();
        hash_opt(v, &mut s);
        s.finish()
    }

    #[test]
    fn sticky_hash_follows_json_equality() {
        let same = [
            (
                json!({"a": 1, "b": [true, null, "x"]}),
                r#"{"a":1,"b":[true,null,"x"]}"#,
            ),
            (json!("hello"), r#""hello""#),
            (json!(-3), "-3"),
            (json!(2.5), "2.5"),
        ];
        for (v, text) in same {
            let parsed: Value = serde_json::from_str(text).expect("json");
            assert_eq!(h(Some(&v)), h(Some(&parsed)), "{text}");
        }
        let distinct = [
            json!(null),
            json!("1"),
            json!(1),
            json!(1.5),
            json!(["1"]),
            json!([["1"]]),
            json!({"1": null}),
            json!({"a": 1}),
            json!({"a": 2}),
            json!({"b": 1}),
            json!(["a", "b"]),
            json!(["ab"]),
            json!(true),
            json!(false),
        ];
        let mut seen: Vec<u64> = distinct.iter().map(|v| h(Some(v))).collect();
        seen.push(h(None));
        let n = seen.len();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), n, "two distinct values hashed alike");
    }
}
