//! Every conversion between Python objects and the Rust values of polyroute lives here.
//!
//! Requests, usages, filters and catalogs arrive as dicts (or JSON text) and become `serde_json::Value`s; results
//! go back as plain dicts, lists, strings and numbers. Nothing else in the binding touches Python object layout.
//! The hot path (`Router.plan`) skips the `Value` tree both ways: [`request`] reads the dict straight into a
//! `ChatRequest` (the common fields one by one, `req`, else through serde, `de`), and [`PlanCache`] builds the
//! plan's dicts from the typed plan, each catalog route's part made once per router (`plan`, over the generic
//! serializer `ser`).

mod de;
mod plan;
mod req;
mod ser;

pub use plan::PlanCache;

use std::collections::BTreeSet;
use std::path::PathBuf;

use polyroute::core::plan::HealthSnapshot;
use polyroute::{Catalog, ChatRequest, Error, RouterConfig};
use pyo3::exceptions::{PyAssertionError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::Deserialize;
use serde_json::{Map, Number, Value};

use crate::errors::core_err;

/// A Python value as JSON. Dicts need string keys; tuples become arrays; floats must be finite.
pub fn to_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if let Ok(s) = obj.cast_exact::<PyString>() {
        return Ok(Value::String(s.to_str()?.to_owned()));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            let key = k.cast::<PyString>().map_err(|_| {
                PyTypeError::new_err(format!("dict keys must be str, got {}", type_name(&k)))
            })?;
            map.insert(key.to_str()?.to_owned(), to_value(&v)?);
        }
        return Ok(Value::Object(map));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return l
            .iter()
            .map(|x| to_value(&x))
            .collect::<PyResult<_>>()
            .map(Value::Array);
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::Number(i.into()));
        }
        return obj
            .extract::<u64>()
            .map(|u| Value::Number(u.into()))
            .map_err(|_| PyValueError::new_err("integer out of the 64-bit range"));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Number::from_f64(f.value())
            .map(Value::Number)
            .ok_or_else(|| PyValueError::new_err("NaN and infinity are not valid JSON numbers"));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_str()?.to_owned()));
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t
            .iter()
            .map(|x| to_value(&x))
            .collect::<PyResult<_>>()
            .map(Value::Array);
    }
    Err(PyTypeError::new_err(format!(
        "{} is not JSON-serializable (use dict, list, str, int, float, bool or None)",
        type_name(obj)
    )))
}

pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "object".to_owned(), |n| n.to_string())
}

/// A JSON value as a Python object (dict, list, str, int, float, bool, None).
pub fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    ser::to_py(py, v)
}

/// A list of JSON values as a Python list.
pub fn to_py_list<'py>(py: Python<'py>, rows: &[Value]) -> PyResult<Bound<'py, PyAny>> {
    ser::to_py(py, rows)
}

/// A request body: a dict, or JSON text as str or bytes.
pub fn body(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    let text = if let Ok(s) = obj.cast::<PyString>() {
        s.to_str()?.to_owned()
    } else if let Ok(b) = obj.cast::<PyBytes>() {
        String::from_utf8(b.as_bytes().to_vec())
            .map_err(|_| PyValueError::new_err("request bytes are not valid UTF-8"))?
    } else {
        return to_value(obj);
    };
    serde_json::from_str(&text).map_err(|e| {
        core_err(
            obj.py(),
            &Error::invalid("$", format!("body is not valid JSON: {e}")),
        )
    })
}

/// A chat request: a dict (read directly, no `Value` in between), or JSON text as str or bytes.
///
/// Raises what [`body`] followed by `ChatRequest::from_value` raises: `TypeError`/`ValueError` for objects that are
/// not JSON, the core's invalid-request error (naming the field) for a request that does not parse or validate.
pub fn request(obj: &Bound<'_, PyAny>) -> PyResult<ChatRequest> {
    let mut r = ChatRequest::default();
    request_into(obj, &mut r)?;
    Ok(r)
}

/// [`request`] into `out` (made by `ChatRequest::default()`), so the large request is built where it is used, not moved
/// there; on an error `out` holds no meaningful request.
pub fn request_into(obj: &Bound<'_, PyAny>, out: &mut ChatRequest) -> PyResult<()> {
    let py = obj.py();
    let Ok(d) = obj.cast::<PyDict>() else {
        let v = body(obj)?;
        // `from_value` validates.
        *out = ChatRequest::from_value(&v).map_err(|e| core_err(py, &e))?;
        return Ok(());
    };
    if req::read(d, out).is_some() {
        if cfg!(debug_assertions) {
            let generic = serde_request(obj);
            if !generic.as_ref().is_ok_and(|g| req::same(out, g)) {
                return Err(PyAssertionError::new_err(format!(
                    "request read differs from the serde path:\n{out:?}\n{generic:?}"
                )));
            }
        }
    } else {
        *out = serde_request(obj)?;
    }
    out.validate_in_place().map_err(|e| core_err(py, &e))
}

/// A request dict read through serde ([`de`]), not yet validated.
fn serde_request(obj: &Bound<'_, PyAny>) -> PyResult<ChatRequest> {
    use serde::Deserialize;
    let py = obj.py();
    let parsed = match ChatRequest::deserialize(de::PyDe(obj)) {
        Ok(r) => Ok(r),
        Err(de::DeError::Py(e)) => return Err(e),
        // Parse again with path tracking to name the field.
        Err(de::DeError::Msg(_)) => match serde_path_to_error::deserialize(de::PyDe(obj)) {
            Ok(r) => Ok(r),
            Err(e) => {
                let path = e.path().to_string();
                match e.into_inner() {
                    de::DeError::Py(e) => return Err(e),
                    de::DeError::Msg(m) => Err(ChatRequest::parse_error(&path, &m)),
                }
            }
        },
    };
    parsed.map_err(|e| core_err(py, &e))
}

/// Where a catalog comes from.
pub enum CatalogSource {
    /// The embedded default.
    Embedded,
    /// JSON text.
    Text(String),
    /// A parsed JSON document.
    Value(Value),
    /// A file to read.
    File(std::path::PathBuf),
}

/// `catalog=`: `None` (embedded), a dict, JSON text (a str starting with `{`), or a path (str or `os.PathLike`).
pub fn catalog_source(obj: Option<&Bound<'_, PyAny>>) -> PyResult<CatalogSource> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(CatalogSource::Embedded);
    };
    if let Ok(s) = obj.cast::<PyString>() {
        let s = s.to_str()?;
        return Ok(if s.trim_start().starts_with('{') {
            CatalogSource::Text(s.to_owned())
        } else {
            CatalogSource::File(s.into())
        });
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return String::from_utf8(b.as_bytes().to_vec())
            .map(CatalogSource::Text)
            .map_err(|_| PyValueError::new_err("catalog bytes are not valid UTF-8"));
    }
    if obj.cast::<PyDict>().is_ok() {
        return to_value(obj).map(CatalogSource::Value);
    }
    obj.extract::<std::path::PathBuf>()
        .map(CatalogSource::File)
        .map_err(|_| PyTypeError::new_err("catalog must be None, a dict, JSON text or a path"))
}

/// Load a catalog and apply an overlay. Runs without the GIL (parsing and file reads).
pub fn load_catalog(src: CatalogSource, overlay: Option<&Value>) -> Result<Catalog, Error> {
    let base = match src {
        CatalogSource::Embedded => Catalog::embedded()?,
        CatalogSource::Text(t) => Catalog::from_json(&t)?,
        CatalogSource::Value(v) => Catalog::from_value(&v)?,
        CatalogSource::File(p) => {
            let t = std::fs::read_to_string(&p).map_err(|e| Error::Internal {
                message: format!("cannot read catalog {}: {e}", p.display()),
            })?;
            Catalog::from_json(&t)?
        }
    };
    match overlay {
        Some(o) => base.overlay(o),
        None => Ok(base),
    }
}

/// `overlay=`: a dict or JSON text.
pub fn overlay(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Value>> {
    obj.filter(|o| !o.is_none()).map(body).transpose()
}

/// `health=`: `{"model@tag" | "tag": {recent_outage, latency_p50_ms, …}}`.
pub fn health(obj: Option<&Bound<'_, PyAny>>) -> PyResult<HealthSnapshot> {
    match obj.filter(|o| !o.is_none()) {
        None => Ok(HealthSnapshot::default()),
        Some(o) => serde_json::from_value(to_value(o)?)
            .map_err(|e| core_err(o.py(), &Error::invalid("health", e.to_string()))),
    }
}

/// `credentials=`: provider slugs that hold a key.
pub fn credentials(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<BTreeSet<String>>> {
    obj.filter(|o| !o.is_none())
        .map(|o| {
            o.try_iter()?
                .map(|x| x.and_then(|x| x.extract::<String>()))
                .collect::<PyResult<BTreeSet<String>>>()
        })
        .transpose()
}

/// The attempts an error aggregates, as JSON rows.
pub fn attempts(err: &Error) -> Value {
    serde_json::to_value(err.attempts()).unwrap_or(Value::Array(Vec::new()))
}

/// `models(**filters)` keyword arguments as a `ModelFilter` document.
pub fn filters(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Value> {
    let Some(kw) = kwargs else {
        return Ok(Value::Null);
    };
    let mut v = to_value(kw.as_any())?;
    if let Some(m) = v.as_object_mut() {
        // Accept one parameter name as a string and prices as numbers.
        if let Some(p) = m.remove("supported_parameter") {
            m.insert("supported_parameters".into(), Value::Array(vec![p]));
        }
        if let Some(Value::Number(n)) = m.get("max_prompt_price") {
            let s = n.to_string();
            m.insert("max_prompt_price".into(), Value::String(s));
        }
        m.retain(|_, x| !x.is_null());
    }
    Ok(v)
}

/// `data: {json}\n\n`: one server-sent event.
pub fn sse_event(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"data: ");
    // Writing a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, v);
    out.extend_from_slice(b"\n\n");
    out
}

/// Everything a `Router` is built from, kept so a forked child can build its own engine.
#[derive(Clone)]
pub struct EngineConfig {
    /// The parsed catalog (overlay applied).
    pub catalog: Catalog,
    /// Every other option (its `catalog` and `overlay` unset).
    pub config: RouterConfig,
}

/// Python's seconds spellings, kept working: `timeout`, `connect_timeout`, `first_token_timeout` and
/// `idle_timeout` (router-wide and per provider), `retry_backoff` and `sticky_ttl`, all in seconds, become the
/// configuration's `_ms` fields.
fn seconds_to_ms(m: &mut Map<String, Value>, what: &str, top: bool) -> PyResult<()> {
    let ms = |v: &Value, key: &str| -> PyResult<Value> {
        v.as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Value::from((s * 1000.0).round() as u64))
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "{what}{key}: expected a non-negative number of seconds"
                ))
            })
    };
    for (old, new) in [
        ("timeout", "total_ms"),
        ("connect_timeout", "connect_ms"),
        ("first_token_timeout", "first_token_ms"),
        ("idle_timeout", "idle_ms"),
    ] {
        if let Some(v) = m.remove(old).filter(|v| !v.is_null()) {
            let v = ms(&v, old)?;
            let t = m
                .entry("timeouts")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(t) = t {
                t.insert(new.into(), v);
            }
        }
    }
    if top {
        for (old, new) in [
            ("retry_backoff", "retry_backoff_ms"),
            ("sticky_ttl", "sticky_ttl_ms"),
        ] {
            if let Some(v) = m.remove(old).filter(|v| !v.is_null()) {
                let v = ms(&v, old)?;
                m.insert(new.into(), v);
            }
        }
    }
    Ok(())
}

/// `Router(catalog, providers, **options)` as the engine's [`RouterConfig`] (the same type the gateway's TOML
/// and Node's `new Router({...})` read; unknown options are a `TypeError`, bad values a `ValueError`).
pub fn router_config(
    providers: Option<&Bound<'_, PyAny>>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<RouterConfig> {
    let mut ledger = None;
    if let Some(kw) = options {
        if let Some(p) = kw.get_item("ledger_path")? {
            kw.del_item("ledger_path")?;
            if !p.is_none() {
                ledger = Some(p.extract::<PathBuf>()?);
            }
        }
    }
    let mut m = match options {
        Some(kw) => match to_value(kw.as_any())? {
            Value::Object(m) => m,
            _ => Map::new(),
        },
        None => Map::new(),
    };
    m.retain(|_, v| !v.is_null());
    seconds_to_ms(&mut m, "", true)?;
    if let Some(p) = providers.filter(|p| !p.is_none()) {
        let Value::Object(mut all) = to_value(p)? else {
            return Err(PyTypeError::new_err(
                "providers must be a dict of provider slug to settings",
            ));
        };
        for (slug, v) in &mut all {
            if let Value::Object(s) = v {
                s.retain(|_, v| !v.is_null());
                seconds_to_ms(s, &format!("providers[{slug:?}]."), false)?;
            }
        }
        m.insert("providers".into(), Value::Object(all));
    }
    if let Some(p) = ledger {
        m.insert(
            "ledger_path".into(),
            Value::String(p.to_string_lossy().into_owned()),
        );
    }
    let v = Value::Object(m);
    RouterConfig::deserialize(&v).map_err(|e| {
        let text = e.to_string();
        if text.contains("unknown field") || text.contains("invalid type") {
            PyTypeError::new_err(format!("Router: {text}"))
        } else {
            PyValueError::new_err(format!("Router: {text}"))
        }
    })
}
