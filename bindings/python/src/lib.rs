//! `polyroute._polyroute`: the native module behind the `polyroute` Python package.
//!
//! One Tokio runtime per process, made on first use. After `os.fork()` the child's first call makes a new one
//! (the parent's worker threads do not exist in the child), and each `Router` rebuilds its engine (HTTP pool
//! included) the same way; the parent's runtime and engine are leaked in the child, never dropped.

mod convert;
mod errors;
mod hooks;
mod http;
mod reader;
mod router;
mod surfaces;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tokio::runtime::Runtime;

/// Bumped in the child after every `os.fork()`.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static RUNTIME: Mutex<Option<(u64, Arc<Runtime>)>> = Mutex::new(None);

/// The current fork generation of this process.
pub(crate) fn fork_generation() -> u64 {
    FORK_GENERATION.load(Ordering::Acquire)
}

/// This process's Tokio runtime.
pub(crate) fn runtime() -> PyResult<Arc<Runtime>> {
    let generation = fork_generation();
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((g, rt)) = slot.as_ref() {
        if *g == generation {
            return Ok(rt.clone());
        }
    }
    if let Some(stale) = slot.take() {
        // Inherited from the parent: its threads are gone, so dropping it could wait forever.
        std::mem::forget(stale);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("polyroute")
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the tokio runtime: {e}")))?;
    *slot = Some((generation, rt.clone()));
    Ok(rt)
}

/// Run `f` with the GIL released: catalog parsing, planning and all I/O go through here.
pub(crate) fn detached<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> T {
    py.detach(f)
}

#[pyfunction]
fn _after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// Every stable error code of the core.
#[pyfunction]
fn all_codes() -> Vec<&'static str> {
    polyroute::core::error::all_codes().to_vec()
}

/// Parse and validate a chat request; raise the core's error when it is invalid.
#[pyfunction]
fn validate_request(request: &Bound<'_, PyAny>) -> PyResult<()> {
    convert::request(request).map(|_| ())
}

#[pymodule(gil_used = false)]
fn _polyroute(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<router::Router>()?;
    m.add_class::<router::ChunkIterator>()?;
    m.add_class::<router::AsyncChunkIterator>()?;
    m.add_class::<surfaces::EventIterator>()?;
    m.add_class::<surfaces::AsyncEventIterator>()?;
    m.add_class::<http::ByteStream>()?;
    m.add_function(wrap_pyfunction!(all_codes, m)?)?;
    m.add_function(wrap_pyfunction!(validate_request, m)?)?;
    let hook = wrap_pyfunction!(_after_fork_in_child, m)?;
    let kw = PyDict::new(py);
    kw.set_item("after_in_child", hook)?;
    if let Ok(register) = py
        .import("os")
        .and_then(|os| os.getattr("register_at_fork"))
    {
        register.call((), Some(&kw))?;
    }
    Ok(())
}
