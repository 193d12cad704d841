//! `Router.plan`'s result as Python objects, the per-router parts made once.
//!
//! An attempt is its catalog route (an `Arc<EndpointRoute>` that never changes) plus a reason and a model index,
//! so the route's part of the dict (names, dialect, decimal prices as text, limits) is built the first time the
//! route is planned and copied after that (`dict.copy()` of a cached dict is one C call); unit prices are cached
//! by their exact decimal representation the same way, resolved models and exclusions by their content, and the
//! requested model strings too (Python strings are immutable, so results may share them; every dict and list is
//! fresh). The top-level dict is a copy of a template that already has every key in its place (and, for a plan
//! without `router`, its strategy and `fallback_costs_more` values), so filling it never resizes it. The result is the same objects, in the same key order, as the generic serializer
//! ([`super::ser`]) makes from the `Plan`; debug builds (the test suite's wheel) build both and raise if they
//! differ. When the cache is in use (another thread, or a finalizer re-entering `plan` on this one), the result
//! is built by the generic serializer: no call ever waits for a lock.

use std::borrow::Cow;
use std::hash::{Hash, Hasher};
use std::mem::discriminant;
use std::sync::{Arc, Mutex};

use polyroute::core::catalog::{EndpointRoute, UnitPrices};
use polyroute::core::error::Exclusion;
use polyroute::core::plan::{Attempt, Plan};
use polyroute::core::resolve::ResolvedModel;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyList, PyString};
use rustc_hash::{FxHashMap, FxHasher};

use super::ser::{interned, to_py};

/// The plan's own dict keys, interned once per process, and the two top-level templates.
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
    /// Every key of a plan without `router`, in the serializer's order, each set to None (never handed out).
    top: Py<PyDict>,
    /// The same with `router` after `models`.
    top_router: Py<PyDict>,
}

static KEYS: PyOnceLock<Keys> = PyOnceLock::new();

fn keys(py: Python<'_>) -> PyResult<&Keys> {
    KEYS.get_or_try_init(py, || {
        let k = |s: &str| PyString::intern(py, s).unbind();
        let template = |with_router: bool| -> PyResult<Py<PyDict>> {
            let d = PyDict::new(py);
            for name in [
                "requested_models",
                "models",
                "router",
                "strategy",
                "attempts",
                "excluded",
                "primary_prices",
                "worst_case_prices",
                "fallback_costs_more",
            ] {
                if with_router || name != "router" {
                    d.set_item(PyString::intern(py, name), py.None())?;
                }
            }
            Ok(d.unbind())
        };
        Ok(Keys {
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
            top: template(false)?,
            top_router: template(true)?,
        })
    })
}

/// At most this many entries are kept in each of a router's caches; past that, results are built without
/// caching the new parts.
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

/// Dicts of values that hold only strings (so a shallow copy is a fresh, independent result), found by a hash
/// of their content and then compared.
struct Memo<K> {
    map: FxHashMap<u64, Vec<(K, Py<PyDict>)>>,
    len: usize,
}

impl<K> Default for Memo<K> {
    fn default() -> Self {
        Self {
            map: FxHashMap::default(),
            len: 0,
        }
    }
}

impl<K: PartialEq + Clone + serde::Serialize> Memo<K> {
    /// A fresh dict of `key`: a copy of the cached one, else made by the generic serializer (and cached).
    fn dict<'py>(&mut self, py: Python<'py>, hash: u64, key: &K) -> PyResult<Bound<'py, PyDict>> {
        if let Some(bucket) = self.map.get(&hash) {
            if let Some((_, d)) = bucket.iter().find(|(k, _)| k == key) {
                return d.bind(py).copy();
            }
        }
        let d = to_py(py, key)?.cast_into::<PyDict>()?;
        if self.len < CAP {
            let kept = d.copy()?.unbind();
            self.map.entry(hash).or_default().push((key.clone(), kept));
            self.len += 1;
        }
        Ok(d)
    }
}

fn hash_with(f: impl FnOnce(&mut FxHasher)) -> u64 {
    let mut h = FxHasher::default();
    f(&mut h);
    h.finish()
}

/// A router's cached parts of plan results.
#[derive(Default)]
struct Parts {
    routes: FxHashMap<usize, Route>,
    prices: FxHashMap<PriceKey, Py<PyDict>>,
    /// `&'static str`s (reasons, strategies) by address.
    statics: FxHashMap<(usize, usize), Py<PyString>>,
    /// Top-level templates of plans without `router`, by strategy (address) and `fallback_costs_more`.
    tops: FxHashMap<(usize, usize, bool), Py<PyDict>>,
    /// Requested model strings.
    strings: FxHashMap<Box<str>, Py<PyString>>,
    models: Memo<ResolvedModel>,
    exclusions: Memo<Exclusion>,
}

/// The per-router cache of the Python objects of plan results.
#[derive(Default)]
pub struct PlanCache {
    parts: Mutex<Parts>,
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
        // A finalizer run by an allocation below could re-enter `plan` on this thread: never wait for the lock.
        let fast = match self.parts.try_lock() {
            Ok(mut parts) => build(py, &mut parts, p)?.into_any(),
            Err(_) => to_py(py, p)?,
        };
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
        Ok(fast)
    }
}

fn build<'py>(py: Python<'py>, c: &mut Parts, p: &Plan) -> PyResult<Bound<'py, PyDict>> {
    let k = keys(py)?;
    let d = match &p.router {
        None => top(py, k, c, p)?,
        Some(r) => {
            let d = k.top_router.bind(py).copy()?;
            d.set_item(&k.router, to_py(py, r)?)?;
            d.set_item(&k.strategy, static_str(py, &mut c.statics, p.strategy))?;
            d.set_item(
                &k.fallback_costs_more,
                PyBool::new(py, p.fallback_costs_more),
            )?;
            d
        }
    };
    // Each list is filled as its items are made (no vector of them first).
    let requested = PyList::new(
        py,
        p.requested_models
            .iter()
            .map(|s| string(py, &mut c.strings, s)),
    )?;
    d.set_item(&k.requested_models, requested)?;
    let models = PyList::new(
        py,
        p.models.iter().map(|m| {
            let h = hash_with(|h| {
                m.requested.hash(h);
                m.id.hash(h);
                discriminant(&m.strategy).hash(h);
                m.variant.map(|v| discriminant(&v)).hash(h);
            });
            Made(c.models.dict(py, h, m))
        }),
    )?;
    d.set_item(&k.models, models)?;
    let attempts = PyList::new(
        py,
        p.attempts.iter().map(|a| Made(attempt_dict(py, k, c, a))),
    )?;
    d.set_item(&k.attempts, attempts)?;
    let excluded = PyList::new(
        py,
        p.excluded.iter().map(|e| {
            let h = hash_with(|h| {
                e.model.hash(h);
                e.endpoint.hash(h);
                e.reason.hash(h);
                e.detail.hash(h);
            });
            Made(c.exclusions.dict(py, h, e))
        }),
    )?;
    d.set_item(&k.excluded, excluded)?;
    d.set_item(&k.primary_prices, prices(py, c, &p.primary_prices)?)?;
    d.set_item(&k.worst_case_prices, prices(py, c, &p.worst_case_prices)?)?;
    Ok(d)
}

/// A fresh top-level dict of a plan without `router`: a copy of the template for its strategy and
/// `fallback_costs_more` (every other key None, filled by the caller), made the first time that pair is seen.
fn top<'py>(py: Python<'py>, k: &Keys, c: &mut Parts, p: &Plan) -> PyResult<Bound<'py, PyDict>> {
    let id = (
        p.strategy.as_ptr() as usize,
        p.strategy.len(),
        p.fallback_costs_more,
    );
    if let Some(t) = c.tops.get(&id) {
        return t.bind(py).copy();
    }
    let d = k.top.bind(py).copy()?;
    d.set_item(&k.strategy, static_str(py, &mut c.statics, p.strategy))?;
    d.set_item(
        &k.fallback_costs_more,
        PyBool::new(py, p.fallback_costs_more),
    )?;
    if c.tops.len() < CAP {
        c.tops.insert(id, d.copy()?.unbind());
    }
    Ok(d)
}

/// A list item made while the list is filled: a failure to make it fails the list.
struct Made<'py>(PyResult<Bound<'py, PyDict>>);

impl<'py> IntoPyObject<'py> for Made<'py> {
    type Target = PyDict;
    type Output = Bound<'py, PyDict>;
    type Error = PyErr;

    fn into_pyobject(self, _py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.0
    }
}

fn prices<'py>(py: Python<'py>, c: &mut Parts, u: &UnitPrices) -> PyResult<Bound<'py, PyDict>> {
    let key = price_key(u);
    if let Some(d) = c.prices.get(&key) {
        return d.bind(py).copy();
    }
    let d = to_py(py, u)?.cast_into::<PyDict>()?;
    if c.prices.len() < CAP {
        c.prices.insert(key, d.copy()?.unbind());
    }
    Ok(d)
}

/// A string that repeats from call to call (a requested model), shared between results.
fn string<'py>(
    py: Python<'py>,
    cache: &mut FxHashMap<Box<str>, Py<PyString>>,
    s: &str,
) -> Bound<'py, PyString> {
    if let Some(v) = cache.get(s) {
        return v.bind(py).clone();
    }
    let v = PyString::new(py, s);
    if cache.len() < CAP {
        cache.insert(s.into(), v.clone().unbind());
    }
    v
}

/// A `&'static str` as a Python string, cached by its address.
fn static_str<'py>(
    py: Python<'py>,
    cache: &mut FxHashMap<(usize, usize), Py<PyString>>,
    s: &'static str,
) -> Bound<'py, PyString> {
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
    statics: &mut FxHashMap<(usize, usize), Py<PyString>>,
) -> PyResult<()> {
    let reason = match &a.reason {
        Cow::Borrowed(s) => static_str(py, statics, s),
        Cow::Owned(s) => PyString::new(py, s),
    };
    d.set_item(&k.reason, reason)?;
    d.set_item(&k.model_index, a.model_index)
}

/// A copy of `t` with `key` set to a copy of `value` (one attempt: its route's dict and its own `prices`).
fn copy_with<'py>(
    py: Python<'py>,
    t: &Py<PyDict>,
    key: &Py<PyString>,
    value: &Py<PyDict>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = t.bind(py).copy()?;
    d.set_item(key, value.bind(py).copy()?)?;
    Ok(d)
}

/// A fresh dict of attempt `a` (its own `prices` dict too), from the cache when its route is there.
fn attempt_dict<'py>(
    py: Python<'py>,
    k: &Keys,
    c: &mut Parts,
    a: &Attempt,
) -> PyResult<Bound<'py, PyDict>> {
    let addr = Arc::as_ptr(&a.route) as usize;
    let stat = match &a.reason {
        Cow::Borrowed(s) => Some((s.as_ptr() as usize, s.len(), a.model_index)),
        Cow::Owned(_) => None,
    };
    if let Some(r) = c.routes.get_mut(&addr) {
        if let (Some(id), Some((p, l, i, t))) = (stat, &r.last) {
            if id == (*p, *l, *i) {
                return copy_with(py, t, &k.prices, &r.prices);
            }
        }
        let d = r.dict.bind(py).copy()?;
        set_reason(py, k, &d, a, &mut c.statics)?;
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
    if c.routes.len() < CAP {
        if let Some(prices) = d.get_item(&k.prices)? {
            let prices = prices.cast_into::<PyDict>()?;
            c.routes.insert(
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
    set_reason(py, k, &d, a, &mut c.statics)?;
    Ok(d)
}
