//! `Router.http` / `Router.ahttp`: one request through the engine's OpenRouter HTTP surface
//! (`polyroute::http_api`), for the httpx transports; streamed bodies come back as a [`ByteStream`].

use std::sync::Arc;

use polyroute::http_api::{Body, Bytes, Caller, Request, Response, SseBody};
use pyo3::exceptions::{PyStopAsyncIteration, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use tokio::runtime::Runtime;

use crate::reader::Reader;
use crate::router::awaitable;
use crate::{detached, runtime};

/// `(status, headers, body)`: body is `bytes`, or a [`ByteStream`] of SSE chunks.
pub(crate) type Answer = (u16, Vec<(String, String)>, Py<PyAny>);

/// A header name or value: `str`, or `bytes` as httpx keeps them (`Headers.raw`, so the transports skip
/// decoding every header in Python), read as UTF-8 and else as Latin-1.
pub(crate) struct Text(String);

impl<'a, 'py> FromPyObject<'a, 'py> for Text {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(s) = obj.cast::<PyString>() {
            return Ok(Self(s.to_str()?.to_owned()));
        }
        if let Ok(b) = obj.cast::<PyBytes>() {
            let b = b.as_bytes();
            return Ok(Self(match std::str::from_utf8(b) {
                Ok(s) => s.to_owned(),
                Err(_) => b.iter().map(|&c| char::from(c)).collect(),
            }));
        }
        Err(PyTypeError::new_err(
            "header names and values must be str or bytes",
        ))
    }
}

pub(crate) fn request(
    method: &str,
    target: &str,
    headers: Vec<(Text, Text)>,
    body: Option<&[u8]>,
) -> Request {
    Request {
        method: method.to_string(),
        target: target.to_string(),
        headers: headers.into_iter().map(|(k, v)| (k.0, v.0)).collect(),
        body: body.map(Bytes::copy_from_slice).unwrap_or_default(),
    }
}

pub(crate) fn answer(py: Python<'_>, rt: Arc<Runtime>, r: Response) -> PyResult<Answer> {
    let body = match r.body {
        Body::Full(b) => PyBytes::new(py, &b).into_any().unbind(),
        Body::Sse(s) => Py::new(
            py,
            ByteStream {
                reader: Reader::new(rt, s),
            },
        )?
        .into_any(),
    };
    Ok((r.status, r.headers, body))
}

/// Answer `req` on the runtime, blocking (the GIL released).
pub(crate) fn handle(py: Python<'_>, api: &polyroute::HttpApi, req: Request) -> PyResult<Answer> {
    let rt = runtime()?;
    let r = detached(py, || rt.block_on(api.handle(req, &Caller::in_process())));
    answer(py, rt, r)
}

/// Answer `req` as an asyncio future.
pub(crate) fn ahandle<'py>(
    py: Python<'py>,
    api: polyroute::HttpApi,
    req: Request,
) -> PyResult<Bound<'py, PyAny>> {
    awaitable(
        py,
        async move { api.handle(req, &Caller::in_process()).await },
        |py, r| {
            let (status, headers, body) = answer(py, runtime()?, r)?;
            Ok((status, headers, body)
                .into_pyobject(py)?
                .into_any()
                .unbind())
        },
    )
}

/// The SSE chunks of a streamed answer (`bytes`), for `for` and `async for`; closing it (or dropping it) cancels
/// the upstream request. Chunks already read ahead are answered at once (see [`Reader`]).
#[pyclass(frozen, module = "polyroute._polyroute")]
pub struct ByteStream {
    reader: Reader<SseBody>,
}

#[pymethods]
impl ByteStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.reader.next_blocking(py).map(|b| PyBytes::new(py, &b))
    }

    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.reader.anext(py, |py, item| match item {
            None => Err(PyStopAsyncIteration::new_err(())),
            Some(b) => Ok(PyBytes::new(py, &b).into_any().unbind()),
        })
    }

    /// Stop the stream and cancel the upstream request (never waits: a pending read ends and drops it).
    fn close(&self) {
        self.reader.close();
    }
}
