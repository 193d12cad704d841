//! The `Router` class (one immutable router shared by every thread) and its chunk iterators.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;
use polyroute::{ChatStream, CostInputs, Error, PlanInputs, RequestContext};
use pyo3::exceptions::{PyStopAsyncIteration, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyCFunction, PyDict};
use serde_json::Value;
use tokio::runtime::Runtime;
use tokio::task::AbortHandle;

use crate::convert::{self, EngineConfig};
use crate::errors::core_err;
use crate::hooks::PyHooks;
use crate::reader::Reader;
use crate::surfaces::Surface;
use crate::{detached, fork_generation, http, runtime};

/// An LLM router: a catalog, provider settings and the engine that executes plans.
#[pyclass(frozen, module = "polyroute._polyroute")]
pub struct Router {
    config: EngineConfig,
    hooks: Option<Arc<dyn polyroute::Hooks>>,
    engine: Mutex<(u64, Arc<polyroute::Router>)>,
    /// The HTTP surface over `engine`, built on first use (per process, as the engine).
    api: Mutex<Option<(u64, polyroute::HttpApi)>>,
    /// The Python objects of plan results that depend only on the catalog.
    plans: convert::PlanCache,
}

fn build_engine(
    c: &EngineConfig,
    hooks: Option<&Arc<dyn polyroute::Hooks>>,
) -> Result<polyroute::Router, Error> {
    let mut b = polyroute::Router::builder()
        .catalog(c.catalog.clone())
        .config(&c.config);
    if let Some(h) = hooks {
        b = b.hooks(h.clone());
    }
    if !c.config.state.is_empty() {
        // The same stores the gateway opens for the same `state`, connected on this process's runtime.
        let rt = runtime().map_err(|e| Error::Internal {
            message: e.to_string(),
        })?;
        let shared = rt.block_on(polyroute_stores::open(
            &c.config.state,
            c.config.ledger_path.as_deref(),
        ))?;
        if let Some(s) = shared {
            b = b.stores(s.stores);
        }
    }
    b.build()
}

impl Router {
    /// This process's engine, shared (what `plan`, `cost` and `models` read: one reference count, not a clone of
    /// the router and its HTTP pool handle); a forked child builds its own on first use.
    fn shared_engine(&self, py: Python<'_>) -> PyResult<Arc<polyroute::Router>> {
        let generation = fork_generation();
        let mut slot = self.engine.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.0 != generation {
            let fresh =
                build_engine(&self.config, self.hooks.as_ref()).map_err(|e| core_err(py, &e))?;
            // The parent's HTTP pool belongs to a runtime that does not exist here: leak it, never drop it.
            std::mem::forget(std::mem::replace(&mut *slot, (generation, Arc::new(fresh))));
        }
        Ok(slot.1.clone())
    }

    /// This process's engine, owned (for calls that move it into a future or a stream).
    fn engine(&self, py: Python<'_>) -> PyResult<polyroute::Router> {
        Ok(polyroute::Router::clone(&*self.shared_engine(py)?))
    }

    /// This process's HTTP surface ([`polyroute::HttpApi`]).
    fn api(&self, py: Python<'_>) -> PyResult<polyroute::HttpApi> {
        let engine = self.engine(py)?;
        let generation = fork_generation();
        let mut slot = self.api.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((g, api)) = &*slot {
            if *g == generation {
                return Ok(api.clone());
            }
        }
        let api = polyroute::HttpApi::new(engine);
        // As for the engine: a parent's HTTP pool is leaked in a forked child, never dropped.
        std::mem::forget(slot.replace((generation, api.clone())));
        Ok(api)
    }

    fn open_stream(
        &self,
        py: Python<'_>,
        body: Value,
        ctx: RequestContext,
    ) -> PyResult<(Arc<Runtime>, ChatStream)> {
        let engine = self.engine(py)?;
        let rt = runtime()?;
        let stream = {
            let _entered = rt.enter();
            engine.chat_stream_with(body, ctx)
        };
        Ok((rt, stream))
    }
}

fn ctx(
    user: Option<String>,
    session_id: Option<String>,
    metadata: bool,
    traceparent: Option<String>,
) -> RequestContext {
    RequestContext {
        user,
        session_id,
        metadata,
        traceparent,
        ..RequestContext::default()
    }
}

#[pymethods]
impl Router {
    #[new]
    #[pyo3(signature = (catalog=None, providers=None, *, overlay=None, hooks=None, **options))]
    fn new(
        py: Python<'_>,
        catalog: Option<&Bound<'_, PyAny>>,
        providers: Option<&Bound<'_, PyAny>>,
        overlay: Option<&Bound<'_, PyAny>>,
        hooks: Option<&Bound<'_, PyAny>>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let hooks: Option<Arc<dyn polyroute::Hooks>> = match PyHooks::from_py(hooks)? {
            Some(h) => Some(Arc::new(h)),
            None => None,
        };
        let src = convert::catalog_source(catalog)?;
        let overlay = convert::overlay(overlay)?;
        let router_config = convert::router_config(providers, options)?;
        let catalog = detached(py, || convert::load_catalog(src, overlay.as_ref()))
            .map_err(|e| core_err(py, &e))?;
        let config = EngineConfig {
            catalog,
            config: router_config,
        };
        let engine =
            detached(py, || build_engine(&config, hooks.as_ref())).map_err(|e| core_err(py, &e))?;
        Ok(Self {
            config,
            hooks,
            engine: Mutex::new((fork_generation(), Arc::new(engine))),
            api: Mutex::new(None),
            plans: convert::PlanCache::default(),
        })
    }

    /// Provider slugs that hold a credential (a key given or found in the environment, or `no_auth`).
    #[getter]
    fn credentials(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        Ok(self
            .shared_engine(py)?
            .credentials()
            .iter()
            .cloned()
            .collect())
    }

    /// The ordered attempt plan for a request, with every exclusion and its reason.
    #[allow(clippy::too_many_arguments)] // one per Python keyword argument
    #[pyo3(signature = (request, *, seed=None, health=None, credentials=None, sticky=None, previous_model=None))]
    fn plan<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyAny>,
        seed: Option<u64>,
        health: Option<&Bound<'py, PyAny>>,
        credentials: Option<&Bound<'py, PyAny>>,
        sticky: Option<&str>,
        previous_model: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut req = polyroute::ChatRequest::default();
        convert::request_into(request, &mut req)?;
        let engine = self.shared_engine(py)?;
        let inputs = PlanInputs {
            seed,
            health: health
                .filter(|h| !h.is_none())
                .map(|h| convert::health(Some(h)))
                .transpose()?,
            credentials: convert::credentials(credentials)?.map(|c| c.into_iter().collect()),
            sticky: sticky.map(str::to_owned),
            previous_model: previous_model.map(str::to_owned),
        };
        // Planning takes microseconds of pure CPU: releasing the GIL would cost more than it frees.
        let out = engine.plan_with(&req, &inputs);
        let p = out.map_err(|e| core_err(py, &e))?;
        self.plans.to_py(py, &p)
    }

    /// The itemized cost of `usage` on `model` (at `provider`'s price, else the model-level price).
    #[pyo3(signature = (model, usage, provider=None, *, utc_minute=None, finish_reason=None))]
    fn cost<'py>(
        &self,
        py: Python<'py>,
        model: &str,
        usage: &Bound<'py, PyAny>,
        provider: Option<&str>,
        utc_minute: Option<u16>,
        finish_reason: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let usage = convert::to_value(usage)?;
        let engine = self.shared_engine(py)?;
        let out = if utc_minute.is_none() && finish_reason.is_none() {
            engine.cost(model, &usage, provider)
        } else {
            let inputs = CostInputs {
                utc_minute,
                finish_reason: finish_reason.map(str::to_owned),
            };
            engine.cost_with(model, &usage, provider, &inputs)
        };
        out.map_err(|e| core_err(py, &e))
            .and_then(|v| convert::to_py(py, &v))
    }

    /// Catalog models passing every given filter, as OpenRouter model rows.
    #[pyo3(signature = (**filters))]
    fn models<'py>(
        &self,
        py: Python<'py>,
        filters: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let f = convert::filters(filters)?;
        let rows = self
            .shared_engine(py)?
            .models(&f)
            .map_err(|e| core_err(py, &e))?;
        convert::to_py_list(py, &rows)
    }

    /// A chat completion, served by the first provider of the plan that succeeds.
    #[pyo3(signature = (request, *, user=None, session_id=None, metadata=false, traceparent=None))]
    fn chat<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyAny>,
        user: Option<String>,
        session_id: Option<String>,
        metadata: bool,
        traceparent: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let body = convert::body(request)?;
        let engine = self.engine(py)?;
        let rt = runtime()?;
        let c = ctx(user, session_id, metadata, traceparent);
        let out = detached(py, || rt.block_on(engine.chat_with(body, &c)));
        out.map_err(|e| core_err(py, &e))
            .and_then(|v| convert::to_py(py, &v))
    }

    /// `await router.achat(request)`: [`Router.chat`] on the running asyncio loop.
    #[pyo3(signature = (request, *, user=None, session_id=None, metadata=false, traceparent=None))]
    fn achat<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyAny>,
        user: Option<String>,
        session_id: Option<String>,
        metadata: bool,
        traceparent: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let body = convert::body(request)?;
        let engine = self.engine(py)?;
        let c = ctx(user, session_id, metadata, traceparent);
        awaitable(
            py,
            async move { engine.chat_with(body, &c).await },
            |py, r| match r {
                Ok(v) => Ok(convert::to_py(py, &v)?.unbind()),
                Err(e) => Err(core_err(py, &e)),
            },
        )
    }

    /// Embeddings (`input` strings or token arrays; `dimensions`, `encoding_format`, `provider`, `models`),
    /// billed and recorded like a completion.
    #[pyo3(signature = (request, *, user=None))]
    fn embeddings<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyAny>,
        user: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let body = convert::body(request)?;
        let engine = self.engine(py)?;
        let rt = runtime()?;
        let c = ctx(user, None, false, None);
        let out = detached(py, || rt.block_on(engine.embeddings_with(body, &c)));
        out.map_err(|e| core_err(py, &e))
            .and_then(|v| convert::to_py(py, &v))
    }

    /// `await router.aembeddings(request)`: [`Router.embeddings`] on the running asyncio loop.
    #[pyo3(signature = (request, *, user=None))]
    fn aembeddings<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyAny>,
        user: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let body = convert::body(request)?;
        let engine = self.engine(py)?;
        let c = ctx(user, None, false, None);
        awaitable(
            py,
            async move { engine.embeddings_with(body, &c).await },
            |py, r| match r {
                Ok(v) => Ok(convert::to_py(py, &v)?.unbind()),
                Err(e) => Err(core_err(py, &e)),
            },
        )
    }

    /// The chunks of a streamed completion, as dicts; errors before the first chunk raise.
    #[pyo3(signature = (request, *, user=None, session_id=None, metadata=false, traceparent=None))]
    fn stream(
        &self,
        py: Python<'_>,
        request: &Bound<'_, PyAny>,
        user: Option<String>,
        session_id: Option<String>,
        metadata: bool,
        traceparent: Option<String>,
    ) -> PyResult<ChunkIterator> {
        let body = convert::body(request)?;
        let (rt, stream) =
            self.open_stream(py, body, ctx(user, session_id, metadata, traceparent))?;
        Ok(ChunkIterator::new(rt, stream, None, false))
    }

    /// `async for chunk in router.astream(request)`.
    #[pyo3(signature = (request, *, user=None, session_id=None, metadata=false, traceparent=None))]
    fn astream(
        &self,
        py: Python<'_>,
        request: &Bound<'_, PyAny>,
        user: Option<String>,
        session_id: Option<String>,
        metadata: bool,
        traceparent: Option<String>,
    ) -> PyResult<AsyncChunkIterator> {
        let body = convert::body(request)?;
        let (rt, stream) =
            self.open_stream(py, body, ctx(user, session_id, metadata, traceparent))?;
        Ok(AsyncChunkIterator {
            reader: Reader::new(rt, stream),
        })
    }

    /// A streamed completion as server-sent-event bytes. Waits for the first chunk, so an error before any
    /// content raises (and can become an HTTP error status); later errors are written as an error event.
    #[pyo3(signature = (request, *, user=None, session_id=None, metadata=false, traceparent=None))]
    fn stream_sse(
        &self,
        py: Python<'_>,
        request: &Bound<'_, PyAny>,
        user: Option<String>,
        session_id: Option<String>,
        metadata: bool,
        traceparent: Option<String>,
    ) -> PyResult<ChunkIterator> {
        let body = convert::body(request)?;
        let (rt, mut stream) =
            self.open_stream(py, body, ctx(user, session_id, metadata, traceparent))?;
        let first = detached(py, || rt.block_on(stream.next()));
        match first {
            Some(Err(e)) => Err(core_err(py, &e)),
            first => Ok(ChunkIterator::new(
                rt,
                stream,
                first.and_then(Result::ok),
                true,
            )),
        }
    }

    /// An Anthropic Messages request (OpenRouter's `models`/`provider` too): the `message` dict, or with
    /// `"stream": True` an iterator of event dicts.
    #[pyo3(signature = (request, *, user=None, session_id=None, metadata=false))]
    fn messages<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyAny>,
        user: Option<String>,
        session_id: Option<String>,
        metadata: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (body, engine) = (convert::body(request)?, self.engine(py)?);
        crate::surfaces::call(
            py,
            engine,
            Surface::Messages,
            body,
            ctx(user, session_id, metadata, None),
        )
    }

    /// `await router.amessages(request)`: [`Router.messages`] on the running asyncio loop.
    #[pyo3(signature = (request, *, user=None, session_id=None, metadata=false))]
    fn amessages<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyAny>,
        user: Option<String>,
        session_id: Option<String>,
        metadata: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (body, engine) = (convert::body(request)?, self.engine(py)?);
        crate::surfaces::acall(
            py,
            engine,
            Surface::Messages,
            body,
            ctx(user, session_id, metadata, None),
        )
    }

    /// An OpenAI Responses request (stateless): the `response` dict, or with `"stream": True` an iterator of
    /// event dicts.
    #[pyo3(signature = (request, *, user=None, session_id=None, metadata=false))]
    fn responses<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyAny>,
        user: Option<String>,
        session_id: Option<String>,
        metadata: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (body, engine) = (convert::body(request)?, self.engine(py)?);
        crate::surfaces::call(
            py,
            engine,
            Surface::Responses,
            body,
            ctx(user, session_id, metadata, None),
        )
    }

    /// `await router.aresponses(request)`: [`Router.responses`] on the running asyncio loop.
    #[pyo3(signature = (request, *, user=None, session_id=None, metadata=false))]
    fn aresponses<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyAny>,
        user: Option<String>,
        session_id: Option<String>,
        metadata: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (body, engine) = (convert::body(request)?, self.engine(py)?);
        crate::surfaces::acall(
            py,
            engine,
            Surface::Responses,
            body,
            ctx(user, session_id, metadata, None),
        )
    }

    /// One request through the engine's OpenRouter HTTP surface (what the httpx transports send):
    /// `(status, headers, body)`, the body `bytes` or a `ByteStream` of SSE chunks.
    #[pyo3(signature = (method, target, headers=Vec::new(), body=None))]
    fn http(
        &self,
        py: Python<'_>,
        method: &str,
        target: &str,
        headers: Vec<(http::Text, http::Text)>,
        body: Option<&[u8]>,
    ) -> PyResult<http::Answer> {
        let api = self.api(py)?;
        http::handle(py, &api, http::request(method, target, headers, body))
    }

    /// `await router.ahttp(...)`: [`Router.http`] on the running asyncio loop.
    #[pyo3(signature = (method, target, headers=Vec::new(), body=None))]
    fn ahttp<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        target: &str,
        headers: Vec<(http::Text, http::Text)>,
        body: Option<&[u8]>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let api = self.api(py)?;
        http::ahandle(py, api, http::request(method, target, headers, body))
    }

    /// The router's metrics as a dict: `{name: {"type", "help", "samples": [{"labels", "value"}]}}` (a
    /// histogram sample has `count`, `sum` and `buckets` instead of `value`).
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let snap = self.engine(py)?.metrics().snapshot();
        convert::to_py(py, &snap)
    }

    /// Export the finished trace spans now (when `telemetry` is configured; otherwise they go in batches).
    fn flush_telemetry(&self, py: Python<'_>) -> PyResult<()> {
        let engine = self.engine(py)?;
        detached(py, || engine.flush_telemetry());
        Ok(())
    }

    /// The router's metrics in the Prometheus text exposition format (to serve from the application's own
    /// `/metrics`).
    fn metrics_text(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.engine(py)?.metrics().render())
    }

    /// The ledger record of a generation (`gen-…` id), or None.
    fn generation<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.engine(py)?;
        let rt = runtime()?;
        let rec = detached(py, || rt.block_on(engine.generation(id)));
        convert::to_py(py, &rec.unwrap_or(Value::Null))
    }
}

/// What a [`ChunkIterator`] holds besides its stream.
struct Extra {
    /// The first chunk, read before the iterator was made (`stream_sse`).
    peeked: Option<Value>,
    /// The end was given (SSE: its `[DONE]`), or the iterator was closed.
    finished: bool,
}

/// A blocking iterator over a streamed completion: chunk dicts, or SSE bytes for the HTTP transports. Chunks
/// already read ahead are taken without releasing the GIL (see [`Reader`]).
#[pyclass(frozen, module = "polyroute._polyroute")]
pub struct ChunkIterator {
    reader: Reader<ChatStream>,
    extra: Mutex<Extra>,
    sse: bool,
}

impl ChunkIterator {
    fn new(rt: Arc<Runtime>, stream: ChatStream, peeked: Option<Value>, sse: bool) -> Self {
        Self {
            reader: Reader::new(rt, stream),
            extra: Mutex::new(Extra {
                peeked,
                finished: false,
            }),
            sse,
        }
    }

    fn extra(&self) -> std::sync::MutexGuard<'_, Extra> {
        self.extra.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[pymethods]
impl ChunkIterator {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let peeked = self.extra().peeked.take();
        let item = match peeked {
            Some(v) => Some(Ok(v)),
            None => self.reader.next_blocking(py),
        };
        match (item, self.sse) {
            (None, sse) => {
                // The end: once as `[DONE]` for SSE, and nothing after it.
                let first_end = !std::mem::replace(&mut self.extra().finished, true);
                if sse && first_end {
                    Ok(Some(PyBytes::new(py, b"data: [DONE]\n\n").into_any()))
                } else {
                    Ok(None)
                }
            }
            (Some(Ok(v)), false) => convert::to_py(py, &v).map(Some),
            (Some(Ok(v)), true) => Ok(Some(PyBytes::new(py, &convert::sse_event(&v)).into_any())),
            (Some(Err(e)), false) => Err(core_err(py, &e)),
            (Some(Err(e)), true) => Ok(Some(
                PyBytes::new(py, &convert::sse_event(&e.to_envelope())).into_any(),
            )),
        }
    }

    /// Stop the stream and cancel the upstream request.
    fn close(&self) {
        self.reader.close();
        *self.extra() = Extra {
            peeked: None,
            finished: true,
        };
    }
}

/// An async iterator over a streamed completion's chunk dicts: chunks already read ahead are answered at once
/// (see [`Reader`]).
#[pyclass(frozen, module = "polyroute._polyroute")]
pub struct AsyncChunkIterator {
    reader: Reader<ChatStream>,
}

#[pymethods]
impl AsyncChunkIterator {
    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.reader.anext(py, |py, item| match item {
            None => Err(PyStopAsyncIteration::new_err(())),
            Some(Ok(v)) => Ok(convert::to_py(py, &v)?.unbind()),
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
        done(py, Ok(py.None()))
    }
}

/// Cancels the Tokio task behind an asyncio future when the future is cancelled.
#[pyclass(frozen)]
struct Canceller(AbortHandle);

#[pymethods]
impl Canceller {
    fn __call__(&self, fut: &Bound<'_, PyAny>) -> PyResult<()> {
        if fut.call_method0("cancelled")?.is_truthy()? {
            self.0.abort();
        }
        Ok(())
    }
}

/// Settle an asyncio future on its loop's thread, unless it was cancelled meanwhile.
#[pyfunction]
fn settle(fut: &Bound<'_, PyAny>, ok: bool, value: &Bound<'_, PyAny>) -> PyResult<()> {
    if fut.call_method0("done")?.is_truthy()? {
        return Ok(());
    }
    fut.call_method1(if ok { "set_result" } else { "set_exception" }, (value,))?;
    Ok(())
}

static SETTLE: PyOnceLock<Py<PyCFunction>> = PyOnceLock::new();

static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The running asyncio event loop (`asyncio.get_running_loop()`, the function looked up once).
fn running_loop(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let get = GET_RUNNING_LOOP.get_or_try_init(py, || {
        py.import("asyncio")?
            .getattr("get_running_loop")
            .map(Bound::unbind)
    })?;
    get.bind(py).call0().map_err(|_| {
        PyTypeError::new_err("no running asyncio event loop: call this from async code")
    })
}

/// An asyncio future of the running loop that is already done: its result is `out`'s value, or it raises
/// `out`'s exception (awaiting it returns at once).
pub(crate) fn done<'py>(py: Python<'py>, out: PyResult<Py<PyAny>>) -> PyResult<Bound<'py, PyAny>> {
    let fut = running_loop(py)?.call_method0("create_future")?;
    match out {
        Ok(v) => fut.call_method1("set_result", (v,))?,
        Err(e) => fut.call_method1("set_exception", (e.into_value(py),))?,
    };
    Ok(fut)
}

/// Run `fut` on the Tokio runtime and return an asyncio future of the running loop that `finish` settles.
pub(crate) fn awaitable<'py, T, F>(
    py: Python<'py>,
    fut: F,
    finish: fn(Python<'_>, T) -> PyResult<Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let rt = runtime()?;
    let event_loop = running_loop(py)?;
    let py_fut = event_loop.call_method0("create_future")?;
    let settle = SETTLE.get_or_try_init(py, || wrap_pyfunction!(settle, py).map(Bound::unbind))?;
    let (lp, pf, cb) = (
        event_loop.unbind(),
        py_fut.clone().unbind(),
        settle.clone_ref(py),
    );
    let task = rt.spawn(async move {
        let out = fut.await;
        Python::attach(|py| {
            let (ok, value) = match finish(py, out) {
                Ok(v) => (true, v),
                Err(e) => (false, e.into_value(py).into_any()),
            };
            // A closed loop means nobody is waiting any more.
            let _ = lp.bind(py).call_method1(
                "call_soon_threadsafe",
                (cb.bind(py), pf.bind(py), ok, value),
            );
        });
    });
    py_fut.call_method1("add_done_callback", (Canceller(task.abort_handle()),))?;
    Ok(py_fut)
}
