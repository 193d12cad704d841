//! `Router.plan`'s result as Python objects, the per-router parts made once.
//!
//! An attempt is its catalog route (an `Arc<EndpointRoute>` that never changes) plus a reason and a model index,
//! so the route's part of the dict (names, dialect, decimal prices as text, limits) is built the first time the
//! route is planned and copied after that (`dict.copy()` of a cached dict is one C call); unit prices are cached
//! by their exact decimal representation the same way. The result is the same objects, in the same key order,
//! as the generic serializer ([`super::ser`]) makes from the `Plan`; debug builds (the test suite's wheel) build
//! both and raise if they differ.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use polyroute::core::catalog::{EndpointRoute, UnitPrices};
use polyroute::core::plan::{Attempt, Plan};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyList, PyString};
use rustc_hash::FxHashMap;

use super::ser::{interned, to_py};

/// The plan's own dict keys, interned once per process.
struct Keys {
    requested_models: Py<PyString>,
    models: Py<PyString>,
    router: Py<PyString>,
    strategy: Py<PyString>,
    attempts: Py<PyString>,
    excluded: Py<PyString>,
    primary_prices: Py<PyString>,
    worst_case_prices: Py<PyString>,
    fallback_costs_more: Py<PyString>,
    prices: Py<PyString>,
    reason: Py<PyString>,
    model_index: Py<PyString>,
}

static KEYS: PyOnceLock<Keys> = PyOnceLock::new();

fn keys(py: Python<'_>) -> &Keys {
    KEYS.get_or_init(py, || {
        let k = |s: &str| PyString::intern(py, s).unbind();
        Keys {
            requested_models: k("requested_models"),
            models: k("models"),
            router: k("router"),
            strategy: k("strategy"),
            attempts: k("attempts"),
            excluded: k("excluded"),
            primary_prices: k("primary_prices"),
            worst_case_prices: k("worst_case_prices"),
            fallback_costs_more: k("fallback_costs_more"),
            prices: k("prices"),
            reason: k("reason"),
            model_index: k("model_index"),
        }
    })
}

/// At most this many routes (and as many price triples) are kept per router; past that, results are built
/// without the cache.
const CAP: usize = 4096;

struct Route {
    /// Held so the address used as the key stays this route's for as long as the entry lives.
    _route: Arc<EndpointRoute>,
    /// Every field of the route, `prices` included, then `reason` and `model_index` (None here): an attempt
    /// is a copy with those two replaced, so its dict never grows.
    dict: Py<PyDict>,
    /// The route's `prices` dict (copied into each attempt so callers never share it).
    prices: Py<PyDict>,
    /// The last attempt made of this route whose reason is a static string: (reason address, its length,
    /// model index) and the dict (with this entry's `prices`), so the same attempt again is one copy.
    last: Option<(usize, usize, usize, Py<PyDict>)>,
}

type PriceKey = [[u8; 16]; 3];

/// The per-router cache of route and price dicts, and of the static strings (reasons, strategies) by address.
#[derive(Default)]
pub struct PlanCache {
    routes: Mutex<FxHashMap<usize, Route>>,
    prices: Mutex<FxHashMap<PriceKey, Py<PyDict>>>,
    statics: Mutex<FxHashMap<(usize, usize), Py<PyString>>>,
}

fn price_key(p: &UnitPrices) -> PriceKey {
    // `serialize` is the exact representation (scale included), so "1.0" and "1.00" stay apart.
    [
        p.prompt.serialize(),
        p.completion.serialize(),
        p.request.serialize(),
    ]
}

impl PlanCache {
    /// `p` as the dicts and lists the generic serializer makes of it.
    pub fn to_py<'py>(&self, py: Python<'py>, p: &Plan) -> PyResult<Bound<'py, PyAny>> {
        let fast = self.build(py, p)?;
        if cfg!(debug_assertions) {
            let generic = to_py(py, p)?;
            if fast.repr()?.to_str()? != generic.repr()?.to_str()? {
                return Err(pyo3::exceptions::PyAssertionError::new_err(format!(
                    "plan conversion differs from the generic one:\n{}\n{}",
                    fast.repr()?,
                    generic.repr()?
                )));
            }
        }
        Ok(fast.into_any())
    }

    fn build<'py>(&self, py: Python<'py>, p: &Plan) -> PyResult<Bound<'py, PyDict>> {
        let k = keys(py);
        let d = PyDict::new(py);
        d.set_item(&k.requested_models, to_py(py, &p.requested_models)?)?;
        d.set_item(&k.models, to_py(py, &p.models)?)?;
        if let Some(r) = &p.router {
            d.set_item(&k.router, to_py(py, r)?)?;
        }
        let mut statics = self.statics.try_lock().ok();
        d.set_item(
            &k.strategy,
            static_str(py, statics.as_deref_mut(), p.strategy),
        )?;
        let mut attempts = Vec::with_capacity(p.attempts.len());
        {
            // A finalizer run by an allocation below could re-enter `plan` on this thread: never wait for a lock.
            let mut routes = self.routes.try_lock().ok();
            for a in &p.attempts {
                let ad = match routes.as_deref_mut() {
                    Some(cache) => attempt_dict(py, k, cache, a, statics.as_deref_mut())?,
                    None => {
                        let d = to_py(py, &*a.route)?.cast_into::<PyDict>()?;
                        set_reason(py, k, &d, a, statics.as_deref_mut())?;
                        d
                    }
                };
                attempts.push(ad);
            }
        }
        drop(statics);
        d.set_item(&k.attempts, PyList::new(py, attempts)?)?;
        d.set_item(&k.excluded, to_py(py, &p.excluded)?)?;
        d.set_item(&k.primary_prices, self.prices(py, &p.primary_prices)?)?;
        d.set_item(&k.worst_case_prices, self.prices(py, &p.worst_case_prices)?)?;
        d.set_item(
            &k.fallback_costs_more,
            PyBool::new(py, p.fallback_costs_more),
        )?;
        Ok(d)
    }

    fn prices<'py>(&self, py: Python<'py>, u: &UnitPrices) -> PyResult<Bound<'py, PyAny>> {
        let Ok(mut cache) = self.prices.try_lock() else {
            return to_py(py, u);
        };
        let key = price_key(u);
        if let Some(d) = cache.get(&key) {
            return Ok(d.bind(py).copy()?.into_any());
        }
        let d = to_py(py, u)?.cast_into::<PyDict>()?;
        if cache.len() < CAP {
            cache.insert(key, d.copy()?.unbind());
        }
        Ok(d.into_any())
    }
}

/// A `&'static str` as a Python string, cached by its address.
fn static_str<'py>(
    py: Python<'py>,
    cache: Option<&mut FxHashMap<(usize, usize), Py<PyString>>>,
    s: &'static str,
) -> Bound<'py, PyString> {
    let Some(cache) = cache else {
        return interned(py, s);
    };
    let id = (s.as_ptr() as usize, s.len());
    if let Some(v) = cache.get(&id) {
        return v.bind(py).clone();
    }
    let v = interned(py, s);
    if cache.len() < CAP {
        cache.insert(id, v.clone().unbind());
    }
    v
}

/// Set an attempt dict's `reason` and `model_index`.
fn set_reason(
    py: Python<'_>,
    k: &Keys,
    d: &Bound<'_, PyDict>,
    a: &Attempt,
    statics: Option<&mut FxHashMap<(usize, usize), Py<PyString>>>,
) -> PyResult<()> {
    let reason = match &a.reason {
        Cow::Borrowed(s) => static_str(py, statics, s),
        Cow::Owned(s) => PyString::new(py, s),
    };
    d.set_item(&k.reason, reason)?;
    d.set_item(&k.model_index, a.model_index)
}

/// A fresh dict of attempt `a` (its own `prices` dict too), from the cache when its route is there.
fn attempt_dict<'py>(
    py: Python<'py>,
    k: &Keys,
    cache: &mut FxHashMap<usize, Route>,
    a: &Attempt,
    statics: Option<&mut FxHashMap<(usize, usize), Py<PyString>>>,
) -> PyResult<Bound<'py, PyDict>> {
    let addr = Arc::as_ptr(&a.route) as usize;
    let stat = match &a.reason {
        Cow::Borrowed(s) => Some((s.as_ptr() as usize, s.len(), a.model_index)),
        Cow::Owned(_) => None,
    };
    if let Some(r) = cache.get_mut(&addr) {
        if let (Some(id), Some((p, l, i, t))) = (stat, &r.last) {
            if id == (*p, *l, *i) {
                let d = t.bind(py).copy()?;
                d.set_item(&k.prices, r.prices.bind(py).copy()?)?;
                return Ok(d);
            }
        }
        let d = r.dict.bind(py).copy()?;
        set_reason(py, k, &d, a, statics)?;
        if let Some((p, l, i)) = stat {
            let t = d.copy()?;
            t.set_item(&k.prices, r.prices.bind(py))?;
            r.last = Some((p, l, i, t.unbind()));
        }
        d.set_item(&k.prices, r.prices.bind(py).copy()?)?;
        return Ok(d);
    }
    // First time: the route's fields, with `reason` and `model_index` in their places.
    let d = to_py(py, &*a.route)?.cast_into::<PyDict>()?;
    d.set_item(&k.reason, py.None())?;
    d.set_item(&k.model_index, py.None())?;
    if cache.len() < CAP {
        if let Some(prices) = d.get_item(&k.prices)? {
            let prices = prices.cast_into::<PyDict>()?;
            cache.insert(
                addr,
                Route {
                    _route: a.route.clone(),
                    dict: d.copy()?.unbind(),
                    prices: prices.copy()?.unbind(),
                    last: None,
                },
            );
        }
    }
    set_reason(py, k, &d, a, statics)?;
    Ok(d)
}
