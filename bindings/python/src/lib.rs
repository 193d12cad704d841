//! `polyroute._polyroute`: the native module behind the `polyroute` Python package.

mod convert;
mod errors;
mod router;

use pyo3::prelude::*;

/// Run `f` with the GIL released: catalog parsing, planning and I/O go through here.
pub(crate) fn detached<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> T {
    py.detach(f)
}

/// Every stable error code of the core.
#[pyfunction]
fn all_codes() -> Vec<&'static str> {
    polyroute_core::error::all_codes().to_vec()
}

/// Parse and validate a chat request; raise the core's error when it is invalid.
#[pyfunction]
fn validate_request(py: Python<'_>, request: &Bound<'_, PyAny>) -> PyResult<()> {
    let v = convert::body(request)?;
    polyroute_core::ChatRequest::from_value(&v)
        .map(|_| ())
        .map_err(|e| errors::core_err(py, &e))
}

#[pymodule(gil_used = false)]
fn _polyroute(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<router::Router>()?;
    m.add_function(wrap_pyfunction!(all_codes, m)?)?;
    m.add_function(wrap_pyfunction!(validate_request, m)?)?;
    Ok(())
}
