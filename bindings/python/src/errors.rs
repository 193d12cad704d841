//! Core errors become instances of the exception classes in `polyroute/errors.py`.
//!
//! The class is chosen in Python, by code, from the table there (`polyroute.errors.from_core`); this file only
//! hands over the fields.

use polyroute::core::Error;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

use crate::convert;

static FACTORY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn factory(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    FACTORY
        .get_or_try_init(py, || {
            py.import("polyroute.errors")?
                .getattr("from_core")
                .map(Bound::unbind)
        })
        .map(|f| f.bind(py))
}

/// The Python exception for a core error.
pub fn core_err(py: Python<'_>, err: &Error) -> PyErr {
    build(py, err).unwrap_or_else(|e| e)
}

fn build(py: Python<'_>, err: &Error) -> Result<PyErr, PyErr> {
    let kw = PyDict::new(py);
    kw.set_item("code", err.code())?;
    kw.set_item("status", err.http_status())?;
    kw.set_item("retryable", err.retryable())?;
    kw.set_item("retry_after", err.retry_after())?;
    kw.set_item("attempts", convert::to_py(py, &convert::attempts(err))?)?;
    kw.set_item("body", convert::to_py(py, &err.to_envelope())?)?;
    let exc = match factory(py) {
        Ok(f) => f.call((err.to_string(),), Some(&kw))?,
        Err(_) => return Ok(PyRuntimeError::new_err(format!("{}: {err}", err.code()))),
    };
    Ok(PyErr::from_value(exc))
}
