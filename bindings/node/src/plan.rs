//! `router.plan` without a JSON round trip of the attempts: most of a plan is its attempts, and an attempt is an
//! endpoint route of the catalog (the same `Arc` on every plan) plus a reason and a model index. The addon names
//! each route once per router (a small integer, with its JSON sent the first time), and the package entry
//! (`polyroute.cjs`) keeps, per router, a function that builds a fresh object for each route: a plan crosses the
//! boundary as the JSON of its other fields plus three numbers per attempt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use polyroute::core::catalog::EndpointRoute;
use polyroute::core::plan::Plan;
use polyroute::{ChatRequest, Error as CoreError, PlanInputs};
use serde::Deserialize;
use serde_json::Value;

use crate::errors;

/// The routes a router's plans have named, by the address of their `Arc` (a catalog's routes live as long as
/// the router; the `Arc`s are kept here too, so an address is never reused while it has a number).
#[derive(Default)]
pub struct Routes {
    inner: Mutex<RoutesInner>,
}

#[derive(Default)]
struct RoutesInner {
    ids: HashMap<usize, u32>,
    routes: Vec<Arc<EndpointRoute>>,
}

/// The request as JSON text, read straight into the typed request (the `Value` path names the field of a
/// request that does not parse).
fn request(text: &str) -> Result<ChatRequest, CoreError> {
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

/// The plan in the compact form: `{"p": plan with "attempts": [], "r": [reasons], "a": [route, reason, model
/// index, …], "t": [route, route JSON text, …] (routes named for the first time)}`.
pub fn plan_compact(
    router: &polyroute::Router,
    routes: &Routes,
    request_text: &str,
    context: Option<Value>,
) -> Result<String, CoreError> {
    let req = request(request_text)?;
    let mut plan = match context.filter(|c| !c.is_null()) {
        None => router.plan_request(&req)?,
        Some(c) => {
            let inputs = PlanInputs::deserialize(&c)
                .map_err(|e| errors::invalid("context", e.to_string()))?;
            router.plan_with(&req, &inputs)?
        }
    };
    let attempts = std::mem::take(&mut plan.attempts);
    let head = serde_json::to_string::<Plan>(&plan).map_err(|e| internal(&e))?;
    let mut out = String::with_capacity(head.len() + 16 * attempts.len() + 64);
    out.push_str("{\"p\":");
    out.push_str(&head);
    let mut reasons: Vec<&str> = Vec::new();
    let mut nums = String::with_capacity(12 * attempts.len());
    let mut fresh = String::new();
    {
        let mut g = routes
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for a in &attempts {
            let key = Arc::as_ptr(&a.route) as usize;
            let id = match g.ids.get(&key) {
                Some(&id) => id,
                None => {
                    let id = u32::try_from(g.routes.len()).map_err(|_| CoreError::Internal {
                        message: "too many endpoint routes".into(),
                    })?;
                    g.ids.insert(key, id);
                    g.routes.push(Arc::clone(&a.route));
                    if !fresh.is_empty() {
                        fresh.push(',');
                    }
                    number(&mut fresh, id as usize);
                    fresh.push(',');
                    let text = serde_json::to_string(&*a.route).map_err(|e| internal(&e))?;
                    fresh.push_str(&serde_json::to_string(&text).map_err(|e| internal(&e))?);
                    id
                }
            };
            let r = match reasons.iter().position(|r| *r == a.reason) {
                Some(i) => i,
                None => {
                    reasons.push(&a.reason);
                    reasons.len() - 1
                }
            };
            if !nums.is_empty() {
                nums.push(',');
            }
            number(&mut nums, id as usize);
            nums.push(',');
            number(&mut nums, r);
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
    let g = routes
        .inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let r = g.routes.get(usize::try_from(id).ok()?)?;
    serde_json::to_string(&**r).ok()
}

/// Append `n` in decimal (without `core::fmt`, which costs more than the rest of a compact attempt).
fn number(out: &mut String, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}
