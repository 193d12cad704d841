//! `Router(..., hooks=...)`: Python callables called for every attempt and every generation, on the router's hook
//! thread (never on the request's path; see `polyroute::hooks`). A callable that raises is reported as an
//! unraisable exception (`sys.unraisablehook`, printed to stderr by default) and the request is unaffected.

use polyroute::{AttemptEvent, GenerationRecord, Hooks};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::Value;

use crate::convert;

/// The callables of a hooks object or dict (`on_attempt`, `on_generation`; either may be absent).
pub struct PyHooks {
    on_attempt: Option<Py<PyAny>>,
    on_generation: Option<Py<PyAny>>,
}

fn callable(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Option<Py<PyAny>>> {
    let f = match obj.cast::<PyDict>() {
        Ok(d) => d.get_item(name)?,
        Err(_) => obj.getattr_opt(name)?,
    };
    match f {
        None => Ok(None),
        Some(f) if f.is_none() => Ok(None),
        Some(f) if f.is_callable() => Ok(Some(f.unbind())),
        Some(_) => Err(PyTypeError::new_err(format!(
            "hooks.{name} must be callable"
        ))),
    }
}

impl PyHooks {
    /// From an object with `on_attempt` / `on_generation` methods, or a dict of them; None for `None`.
    pub fn from_py(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Self>> {
        let Some(obj) = obj.filter(|o| !o.is_none()) else {
            return Ok(None);
        };
        let h = Self {
            on_attempt: callable(obj, "on_attempt")?,
            on_generation: callable(obj, "on_generation")?,
        };
        if h.on_attempt.is_none() && h.on_generation.is_none() {
            return Err(PyTypeError::new_err(
                "hooks must have on_attempt or on_generation (a method, or a dict key)",
            ));
        }
        Ok(Some(h))
    }
}

fn call(f: Option<&Py<PyAny>>, v: &Value) {
    let Some(f) = f else { return };
    // Not during interpreter shutdown: the event is dropped then.
    let _ = Python::try_attach(|py| {
        let r = convert::to_py(py, v).and_then(|arg| f.call1(py, (arg,)));
        if let Err(e) = r {
            e.write_unraisable(py, Some(f.bind(py)));
        }
    });
}

impl Hooks for PyHooks {
    fn on_attempt(&self, e: &AttemptEvent) {
        call(self.on_attempt.as_ref(), &e.to_json());
    }

    fn on_generation(&self, r: &GenerationRecord) {
        call(self.on_generation.as_ref(), &r.to_json());
    }
}
