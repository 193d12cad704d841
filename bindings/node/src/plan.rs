//! `router.plan` without a JSON round trip: most of a plan is its attempts, and an attempt is an endpoint route of
//! the catalog (the same `Arc` on every plan) plus a reason and a model index; the rest of a plan (its head: the
//! models, the exclusions, the prices) repeats across requests too. The addon numbers each route and each distinct
//! head (with the plan's reasons) once per router, and the package entry (`polyroute.cjs`) keeps, per router, a
//! function per route and per head that builds fresh objects from constants. A plan then crosses the boundary as
//! numbers written into a `Uint32Array` the caller owns: `[head, (route, reason, model index) × attempts]`. A
//! route's or a head's JSON crosses once, the first time JavaScript meets its number (`planRoute`, `planHead`).
//! A head that is not numbered (a router's decision, or past [`MAX_HEADS`]) makes the plan come back as the JSON
//! text of [`plan_compact`] instead.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use polyroute::core::catalog::EndpointRoute;
use polyroute::core::plan::{Attempt, Plan};
use polyroute::core::types::{Message, Role};
use polyroute::{ChatRequest, Error as CoreError, PlanInputs};
use serde::Deserialize;
use serde_json::Value;

use crate::errors;

/// Distinct plan heads a router numbers (each kept as a copy of the plan without attempts: a few KiB); past this,
/// plans with new heads come back as JSON text.
pub const MAX_HEADS: usize = 1024;

// The maps here hash with FxHash (`rustc-hash`): their keys are addresses and digests, which SipHash's flooding
// resistance does not need to protect.

type FxMap<K, V> = HashMap<K, V, rustc_hash::FxBuildHasher>;

/// The routes and heads a router's plans have named.
#[derive(Default)]
pub struct Routes {
    inner: Mutex<RoutesInner>,
}

#[derive(Default)]
struct RoutesInner {
    /// Route numbers by the address of the route's `Arc` (a catalog's routes live as long as the router; the
    /// `Arc`s are kept in `routes` too, so an address is never reused while it has a number).
    ids: FxMap<usize, u32>,
    routes: Vec<Arc<EndpointRoute>>,
    /// Head numbers by [`digest`]; equal digests are told apart by comparing the heads.
    head_ids: FxMap<u64, Vec<u32>>,
    heads: Vec<Head>,
}

/// A plan without its attempts, and the distinct reasons of its attempts in order.
struct Head {
    plan: Plan,
    reasons: Vec<Cow<'static, str>>,
}

impl Routes {
    fn lock(&self) -> MutexGuard<'_, RoutesInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl RoutesInner {
    /// The number of `route`, numbering it the first time; the bool says whether it is new.
    fn route(&mut self, route: &Arc<EndpointRoute>) -> Result<(u32, bool), CoreError> {
        let key = Arc::as_ptr(route) as usize;
        if let Some(&id) = self.ids.get(&key) {
            return Ok((id, false));
        }
        let id = u32::try_from(self.routes.len()).map_err(|_| CoreError::Internal {
            message: "too many endpoint routes".into(),
        })?;
        self.ids.insert(key, id);
        self.routes.push(Arc::clone(route));
        Ok((id, true))
    }

    /// The number of the head `(plan, reasons)`, numbering it when there is room; None when it has none.
    fn head(&mut self, plan: &Plan, reasons: &[Cow<'static, str>]) -> Option<u32> {
        // A router's decision is free-form JSON, whose equality ignores key order: never numbered.
        if plan.router.is_some() {
            return None;
        }
        let d = digest(plan, reasons);
        if let Some(ids) = self.head_ids.get(&d) {
            for &id in ids {
                if self.heads.get(id as usize).is_some_and(|h| {
                    same_head(&h.plan, plan)
                        && h.reasons.len() == reasons.len()
                        && h.reasons
                            .iter()
                            .zip(reasons)
                            .all(|(a, b)| same_reason(a, b))
                }) {
                    return Some(id);
                }
            }
        }
        if self.heads.len() >= MAX_HEADS {
            return None;
        }
        let id = u32::try_from(self.heads.len()).ok()?;
        self.head_ids.entry(d).or_default().push(id);
        self.heads.push(Head {
            plan: plan.clone(),
            reasons: reasons.to_vec(),
        });
        Some(id)
    }
}

/// A digest of a head: its strings, prices and flags.
fn digest(p: &Plan, reasons: &[Cow<'static, str>]) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    p.requested_models.hash(&mut h);
    for m in &p.models {
        m.requested.hash(&mut h);
        m.id.hash(&mut h);
    }
    p.strategy.hash(&mut h);
    for e in &p.excluded {
        e.model.hash(&mut h);
        e.endpoint.hash(&mut h);
        e.detail.hash(&mut h);
    }
    // A decimal's exact representation (`Hash` normalizes it first, which cost more than the rest of the digest):
    // equal prices written with another scale only get a head of their own.
    for d in [
        &p.primary_prices.prompt,
        &p.primary_prices.completion,
        &p.worst_case_prices.prompt,
        &p.worst_case_prices.completion,
    ] {
        h.write(&d.serialize());
    }
    p.fallback_costs_more.hash(&mut h);
    for r in reasons {
        r.as_ref().hash(&mut h);
    }
    h.finish()
}

/// Whether two plans without attempts serialize alike: every serialized field is equal (the prices are
/// normalized decimals, so equal prices are written alike). Debug builds check the claim on every match.
fn same_head(a: &Plan, b: &Plan) -> bool {
    let same = a.requested_models == b.requested_models
        && a.models == b.models
        && a.router == b.router
        && a.strategy == b.strategy
        && a.excluded == b.excluded
        && a.primary_prices == b.primary_prices
        && a.worst_case_prices == b.worst_case_prices
        && a.fallback_costs_more == b.fallback_costs_more;
    debug_assert!(
        !same || serde_json::to_string(a).ok() == serde_json::to_string(b).ok(),
        "plan heads compared equal but serialize differently"
    );
    same
}

/// The request as JSON text, read straight into the typed request (the `Value` path names the field of a
/// request that does not parse).
pub fn request(text: &str) -> Result<ChatRequest, CoreError> {
    match serde_json::from_str::<ChatRequest>(text) {
        Ok(r) => r.validated(),
        Err(_) => {
            let v: Value = serde_json::from_str(text)
                .map_err(|e| errors::invalid("request", e.to_string()))?;
            ChatRequest::from_value(&v)
        }
    }
}

fn internal(e: &serde_json::Error) -> CoreError {
    CoreError::Internal {
        message: e.to_string(),
    }
}

/// The request `{"model", "messages": [{"role", "content"} …], "max_tokens"?}` from its strings, as the package
/// entry hands over a request whose JSON text would hold exactly these (`messages` is `[role, content, …]`;
/// the entry checked the roles and that every string is well formed): the typed request [`request`] reads from
/// that text, without writing and parsing the text. Debug builds (the test suite's addon) read the text too and
/// fail if the two differ.
pub fn request_from_parts(
    model: String,
    messages: Vec<String>,
    max_tokens: Option<i64>,
) -> Result<ChatRequest, CoreError> {
    let parts_error = |what: &str| CoreError::Internal {
        message: format!("plan parts: {what}"),
    };
    if !messages.len().is_multiple_of(2) {
        return Err(parts_error("messages are not role and content pairs"));
    }
    let text = cfg!(debug_assertions).then(|| parts_text(&model, &messages, max_tokens));
    let max_tokens = max_tokens
        .map(|n| u64::try_from(n).map_err(|_| parts_error("max_tokens is negative")))
        .transpose()?;
    let mut it = messages.into_iter();
    let mut msgs = Vec::with_capacity(it.len() / 2);
    while let (Some(role), Some(content)) = (it.next(), it.next()) {
        let role = match role.as_str() {
            "system" => Role::System,
            "developer" => Role::Developer,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => Role::Tool,
            _ => return Err(parts_error("unknown role")),
        };
        msgs.push(Message {
            role,
            content: Some(Value::String(content)),
            name: None,
            tool_calls: None,
            tool_call_id: None,
            extra: serde_json::Map::new(),
        });
    }
    let r = ChatRequest {
        model: Some(model),
        messages: msgs,
        max_tokens,
        ..ChatRequest::default()
    };
    let r = r.validated();
    if let Some(text) = text {
        let same = match (&r, &request(&text)) {
            (Ok(a), Ok(b)) => a == b,
            (Err(a), Err(b)) => a.to_string() == b.to_string(),
            _ => false,
        };
        if !same {
            return Err(parts_error(&format!(
                "the request read from parts differs from the one read from {text}"
            )));
        }
    }
    r
}

/// The JSON text of the parts of [`request_from_parts`], as `JSON.stringify` writes the request.
fn parts_text(model: &str, messages: &[String], max_tokens: Option<i64>) -> String {
    let msgs: Vec<Value> = messages
        .chunks(2)
        .map(|p| serde_json::json!({"role": p[0], "content": p.get(1)}))
        .collect();
    let mut v = serde_json::json!({"model": model, "messages": msgs});
    if let (Some(n), Some(o)) = (max_tokens, v.as_object_mut()) {
        o.insert("max_tokens".into(), Value::from(n));
    }
    v.to_string()
}

/// The engine's plan (the router's credentials and observed health), or the core plan with exactly the inputs
/// of `context`.
fn make_plan(
    router: &polyroute::Router,
    req: Result<ChatRequest, CoreError>,
    context: Option<Value>,
) -> Result<Plan, CoreError> {
    let req = req?;
    match context.filter(|c| !c.is_null()) {
        None => router.plan_request(&req),
        Some(c) => {
            let inputs = PlanInputs::deserialize(&c)
                .map_err(|e| errors::invalid("context", e.to_string()))?;
            router.plan_with(&req, &inputs)
        }
    }
}

/// Whether two reasons are the same text: the same `&'static str` (most reasons are) without reading it.
fn same_reason(a: &str, b: &str) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

/// The distinct reasons of `attempts` in order, and each attempt's index into them.
fn reasons_of(attempts: &[Attempt]) -> (Vec<Cow<'static, str>>, Vec<u32>) {
    let mut reasons: Vec<Cow<'static, str>> = Vec::new();
    let mut at = Vec::with_capacity(attempts.len());
    for a in attempts {
        let i = match reasons.iter().position(|r| same_reason(r, &a.reason)) {
            Some(i) => i,
            None => {
                reasons.push(a.reason.clone());
                reasons.len() - 1
            }
        };
        at.push(u32::try_from(i).unwrap_or(u32::MAX));
    }
    (reasons, at)
}

/// What [`plan_into`] gives back.
pub enum Planned {
    /// How many numbers the plan takes; they are in the buffer when it had room for them.
    Numbers(u32),
    /// The plan as the JSON text of [`plan_compact`] (its head is not numbered).
    Text(String),
}

/// The plan as numbers in `out` (see the module documentation), or as the compact JSON text.
pub fn plan_into(
    router: &polyroute::Router,
    routes: &Routes,
    req: Result<ChatRequest, CoreError>,
    context: Option<Value>,
    out: &mut [u32],
) -> Result<Planned, CoreError> {
    let mut plan = make_plan(router, req, context)?;
    let attempts = std::mem::take(&mut plan.attempts);
    let (reasons, reason_at) = reasons_of(&attempts);
    let mut g = routes.lock();
    let Some(head) = g.head(&plan, &reasons) else {
        drop(g);
        return compact(plan, &attempts, routes).map(Planned::Text);
    };
    let n = 1 + 3 * attempts.len();
    let fits = n <= out.len();
    if fits {
        out[0] = head;
    }
    for (i, (a, r)) in attempts.iter().zip(reason_at).enumerate() {
        let (id, _) = g.route(&a.route)?;
        if fits {
            let mi = u32::try_from(a.model_index).map_err(|_| CoreError::Internal {
                message: "model index out of range".into(),
            })?;
            out[1 + 3 * i..4 + 3 * i].copy_from_slice(&[id, r, mi]);
        }
    }
    u32::try_from(n)
        .map(Planned::Numbers)
        .map_err(|_| CoreError::Internal {
            message: "plan too long".into(),
        })
}

/// The plan in the compact form (for `plan_compact` and heads that are not numbered): `{"p": plan with
/// "attempts": [], "r": [reasons], "a": [route, reason, model index, …], "t": [route, route JSON text, …]
/// (routes named for the first time)}`.
pub fn plan_compact(
    router: &polyroute::Router,
    routes: &Routes,
    request_text: &str,
    context: Option<Value>,
) -> Result<String, CoreError> {
    let mut plan = make_plan(router, request(request_text), context)?;
    let attempts = std::mem::take(&mut plan.attempts);
    compact(plan, &attempts, routes)
}

fn compact(plan: Plan, attempts: &[Attempt], routes: &Routes) -> Result<String, CoreError> {
    let head = serde_json::to_string::<Plan>(&plan).map_err(|e| internal(&e))?;
    let (reasons, reason_at) = reasons_of(attempts);
    let mut out = String::with_capacity(head.len() + 16 * attempts.len() + 64);
    out.push_str("{\"p\":");
    out.push_str(&head);
    let mut nums = String::with_capacity(12 * attempts.len());
    let mut fresh = String::new();
    {
        let mut g = routes.lock();
        for (a, r) in attempts.iter().zip(reason_at) {
            let (id, new) = g.route(&a.route)?;
            if new {
                if !fresh.is_empty() {
                    fresh.push(',');
                }
                number(&mut fresh, id as usize);
                fresh.push(',');
                let text = serde_json::to_string(&*a.route).map_err(|e| internal(&e))?;
                fresh.push_str(&serde_json::to_string(&text).map_err(|e| internal(&e))?);
            }
            if !nums.is_empty() {
                nums.push(',');
            }
            number(&mut nums, id as usize);
            nums.push(',');
            number(&mut nums, r as usize);
            nums.push(',');
            number(&mut nums, a.model_index);
        }
    }
    out.push_str(",\"r\":");
    out.push_str(&serde_json::to_string(&reasons).map_err(|e| internal(&e))?);
    out.push_str(",\"a\":[");
    out.push_str(&nums);
    out.push_str("],\"t\":[");
    out.push_str(&fresh);
    out.push_str("]}");
    Ok(out)
}

/// The JSON text of route `id` (for a package entry that lost its copy), or None.
pub fn route_text(routes: &Routes, id: u32) -> Option<String> {
    let g = routes.lock();
    let r = g.routes.get(usize::try_from(id).ok()?)?;
    serde_json::to_string(&**r).ok()
}

/// The JSON text `{"p": plan without attempts ("attempts": []), "r": [reasons]}` of head `id`, or None.
pub fn head_text(routes: &Routes, id: u32) -> Option<String> {
    let g = routes.lock();
    let h = g.heads.get(usize::try_from(id).ok()?)?;
    let p = serde_json::to_string(&h.plan).ok()?;
    let r = serde_json::to_string(&h.reasons).ok()?;
    Some(format!("{{\"p\":{p},\"r\":{r}}}"))
}

/// Append `n` in decimal (with `itoa`: `core::fmt` costs more than the rest of a compact attempt).
fn number(out: &mut String, n: usize) {
    out.push_str(itoa::Buffer::new().format(n));
}
