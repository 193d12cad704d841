//! Blocking calls served on the calling thread.
//!
//! A blocking `Router.chat` or `Router.http` on the shared multi-thread runtime crosses threads several times per
//! call: the request task is spawned on a worker, the upstream connection is driven by another task, and the
//! answer wakes the waiting Python thread. Here each Python thread that makes blocking calls gets a current-thread
//! runtime of its own, and each router an engine handle with its own upstream connection pool on that thread
//! (`polyroute::Router::with_own_connections`, as the gateway's thread-per-core workers do): `block_on` then runs
//! the whole call, connection included, on the thread that asked (the GIL released meanwhile). Everything else
//! of the engine (catalog, credentials, ledger, spend, health, metrics, hooks) is the one shared engine.
//!
//! A thread gets its handles from its third blocking call on (a thread that makes one or two calls, as in a
//! thread-per-request server, keeps using the shared connection pool), and they are dropped when the thread exits.
//! The asyncio calls stay on the shared runtime. A forked child builds new runtimes and handles (the parent's
//! are leaked there, never dropped), as for the shared ones.

use std::cell::{Cell, RefCell};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::ThreadId;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use rustc_hash::FxHashMap;
use tokio::runtime::Runtime;

use crate::fork_generation;

/// Threads that get handles of their own per router; calls from more threads use the shared engine.
const MAX_THREADS: usize = 64;
/// Blocking calls a thread makes on the shared engine before it gets handles of its own.
const SHARED_CALLS: u32 = 2;

type Slots = Mutex<FxHashMap<ThreadId, Handles>>;

/// The routers that hold handles of this thread: its handles are removed from them when the thread exits.
struct Owned {
    thread: ThreadId,
    routers: Vec<Weak<Slots>>,
}

impl Drop for Owned {
    fn drop(&mut self) {
        for slots in self.routers.drain(..).filter_map(|w| w.upgrade()) {
            let removed = slots
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&self.thread);
            drop(removed);
        }
    }
}

thread_local! {
    static RUNTIME: RefCell<Option<(u64, Arc<Runtime>)>> = const { RefCell::new(None) };
    static CALLS: Cell<u32> = const { Cell::new(0) };
    static OWNED: RefCell<Option<Owned>> = const { RefCell::new(None) };
}

/// Whether this thread has made enough blocking calls to get handles of its own (counting this one).
fn settled() -> bool {
    CALLS
        .try_with(|c| {
            let n = c.get();
            c.set(n.saturating_add(1));
            n >= SHARED_CALLS
        })
        .unwrap_or(false)
}

/// This thread's current-thread runtime.
pub(crate) fn runtime() -> PyResult<Arc<Runtime>> {
    let generation = fork_generation();
    let made = RUNTIME.try_with(|slot| {
        let mut slot = slot.borrow_mut();
        if let Some((g, rt)) = slot.as_ref() {
            if *g == generation {
                return Ok(rt.clone());
            }
        }
        if let Some(stale) = slot.take() {
            // Made before a fork: its blocking-pool threads are gone, so dropping it could wait forever.
            std::mem::forget(stale);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(Arc::new)
            .map_err(|e| PyRuntimeError::new_err(format!("cannot start a tokio runtime: {e}")))?;
        *slot = Some((generation, rt.clone()));
        Ok(rt)
    });
    // The thread is exiting: the shared runtime still serves it.
    made.unwrap_or_else(|_| crate::runtime())
}

/// One thread's handles of one router.
struct Handles {
    generation: u64,
    engine: polyroute::Router,
    api: Option<polyroute::HttpApi>,
}

/// A router's per-thread engine handles.
#[derive(Default)]
pub(crate) struct Local {
    threads: Arc<Slots>,
}

impl Local {
    /// `f` with this thread's handles of the router whose shared engine is `shared`, made on first use; None
    /// when too many threads already have theirs (the caller then uses the shared engine and runtime).
    fn with<T>(
        &self,
        shared: &polyroute::Router,
        f: impl FnOnce(&mut Handles) -> T,
    ) -> PyResult<Option<T>> {
        if !settled() {
            return Ok(None);
        }
        let generation = fork_generation();
        let id = std::thread::current().id();
        let mut threads = self.threads.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(h) = threads.get_mut(&id) {
            if h.generation == generation {
                return Ok(Some(f(h)));
            }
            // Inherited from the parent process: its connections belong to a runtime that is not running here.
            if let Some(stale) = threads.remove(&id) {
                std::mem::forget(stale);
            }
        }
        if threads.len() >= MAX_THREADS {
            return Ok(None);
        }
        // Without a way to drop them when the thread exits, the thread keeps to the shared engine.
        let registered = OWNED.try_with(|o| {
            let mut o = o.borrow_mut();
            let routers = &mut o
                .get_or_insert_with(|| Owned {
                    thread: id,
                    routers: Vec::new(),
                })
                .routers;
            // Routers dropped since: forget them.
            routers.retain(|w| w.strong_count() > 0);
            routers.push(Arc::downgrade(&self.threads));
        });
        if registered.is_err() {
            return Ok(None);
        }
        let engine = shared
            .with_own_connections()
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        let h = threads.entry(id).or_insert(Handles {
            generation,
            engine,
            api: None,
        });
        Ok(Some(f(h)))
    }

    /// This thread's engine handle and runtime, or the shared ones.
    pub(crate) fn engine(
        &self,
        shared: polyroute::Router,
    ) -> PyResult<(polyroute::Router, Arc<Runtime>)> {
        match self.with(&shared, |h| h.engine.clone())? {
            Some(engine) => Ok((engine, runtime()?)),
            None => Ok((shared, crate::runtime()?)),
        }
    }

    /// This thread's HTTP surface (over its engine handle, sharing `shared`'s `/models` rows) and runtime, or
    /// the shared ones.
    pub(crate) fn api(
        &self,
        shared: polyroute::HttpApi,
    ) -> PyResult<(polyroute::HttpApi, Arc<Runtime>)> {
        let local = self.with(shared.router(), |h| {
            h.api
                .get_or_insert_with(|| shared.with_router(h.engine.clone()))
                .clone()
        })?;
        match local {
            Some(api) => Ok((api, runtime()?)),
            None => Ok((shared, crate::runtime()?)),
        }
    }
}
