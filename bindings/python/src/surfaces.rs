//! `Router.messages / amessages` (Anthropic Messages) and `Router.responses / aresponses` (OpenAI Responses):
//! a request dict in, the surface's answer dict out; with `"stream": True` in the request, an iterator of the
//! surface's event dicts (each carries its event name in `type`). Routed, limited and billed as chat.

use polyroute::{RequestContext, SurfaceStream};
use pyo3::exceptions::PyStopAsyncIteration;
use pyo3::prelude::*;
use serde_json::Value;

use crate::convert;
use crate::errors::core_err;
use crate::reader::Reader;
use crate::{detached, runtime};

/// Which surface.
#[derive(Clone, Copy)]
pub(crate) enum Surface {
    Messages,
    Responses,
}

fn wants_stream(body: &Value) -> bool {
    body.get("stream").and_then(Value::as_bool) == Some(true)
}

fn open(
    engine: &polyroute::Router,
    s: Surface,
    body: Value,
    ctx: RequestContext,
) -> polyroute::Result<SurfaceStream> {
    match s {
        Surface::Messages => engine.messages_stream(body, ctx),
        Surface::Responses => engine.responses_stream(body, ctx),
    }
}

async fn unary(
    engine: &polyroute::Router,
    s: Surface,
    body: Value,
    ctx: &RequestContext,
) -> polyroute::Result<Value> {
    match s {
        Surface::Messages => engine.messages(body, ctx).await,
        Surface::Responses => engine.responses(body, ctx).await,
    }
}

/// The blocking call: the answer dict, or an [`EventIterator`] for a streamed request.
pub(crate) fn call<'py>(
    py: Python<'py>,
    engine: polyroute::Router,
    s: Surface,
    body: Value,
    ctx: RequestContext,
) -> PyResult<Bound<'py, PyAny>> {
    let rt = runtime()?;
    if wants_stream(&body) {
        let stream = {
            let _entered = rt.enter();
            open(&engine, s, body, ctx).map_err(|e| core_err(py, &e))?
        };
        let it = EventIterator {
            reader: Reader::new(rt, stream),
        };
        return Ok(Bound::new(py, it)?.into_any());
    }
    let out = detached(py, || rt.block_on(unary(&engine, s, body, &ctx)));
    out.map_err(|e| core_err(py, &e))
        .and_then(|v| convert::to_py(py, &v))
}

/// The asyncio call: an awaitable of the answer dict, or of an [`AsyncEventIterator`] for a streamed request.
pub(crate) fn acall<'py>(
    py: Python<'py>,
    engine: polyroute::Router,
    s: Surface,
    body: Value,
    ctx: RequestContext,
) -> PyResult<Bound<'py, PyAny>> {
    if wants_stream(&body) {
        return crate::router::awaitable(
            py,
            async move { open(&engine, s, body, ctx) },
            |py, r| match r {
                Ok(stream) => Ok(Py::new(
                    py,
                    AsyncEventIterator {
                        reader: Reader::new(runtime()?, stream),
                    },
                )?
                .into_any()),
                Err(e) => Err(core_err(py, &e)),
            },
        );
    }
    crate::router::awaitable(
        py,
        async move { unary(&engine, s, body, &ctx).await },
        |py, r| match r {
            Ok(v) => Ok(convert::to_py(py, &v)?.unbind()),
            Err(e) => Err(core_err(py, &e)),
        },
    )
}

/// A blocking iterator over a streamed Messages or Responses request's event dicts. An error before any
/// content raises; later failures are `error` events. Events already read ahead are taken without releasing the
/// GIL (see [`Reader`]).
#[pyclass(frozen, module = "polyroute._polyroute")]
pub struct EventIterator {
    reader: Reader<SurfaceStream>,
}

#[pymethods]
impl EventIterator {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.reader.next_blocking(py) {
            None => Ok(None),
            Some(Ok(e)) => convert::to_py(py, &e.data).map(Some),
            Some(Err(e)) => Err(core_err(py, &e)),
        }
    }

    /// Stop the stream and cancel the upstream request.
    fn close(&self) {
        self.reader.close();
    }
}

/// An async iterator over a streamed Messages or Responses request's event dicts: events already read ahead
/// are answered at once (see [`Reader`]).
#[pyclass(frozen, module = "polyroute._polyroute")]
pub struct AsyncEventIterator {
    reader: Reader<SurfaceStream>,
}

#[pymethods]
impl AsyncEventIterator {
    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.reader.anext(py, |py, item| match item {
            None => Err(PyStopAsyncIteration::new_err(())),
            Some(Ok(e)) => Ok(convert::to_py(py, &e.data)?.unbind()),
            Some(Err(e)) => Err(core_err(py, &e)),
        })
    }

    /// Stop the stream and cancel the upstream request.
    fn close(&self) {
        self.reader.close();
    }

    /// `close` as an awaitable (for `contextlib.aclosing`).
    fn aclose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.reader.close();
        crate::router::done(py, Ok(py.None()))
    }
}
