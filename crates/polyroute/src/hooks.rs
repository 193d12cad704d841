//! Hooks: an application's own telemetry or logs fed from every attempt and every generation, off the request's
//! hot path.
//!
//! A request only puts an event on a bounded queue ([`HOOK_QUEUE`] events, `try_send`: it never waits); one
//! thread per router (`polyroute-hooks`) takes them off and calls the [`Hooks`]. A slow hook therefore delays
//! only later hook calls, never a request; a hook that panics is caught and the next event is delivered as
//! usual. When the queue is full (the hooks fall behind), new events are dropped and counted in
//! `polyroute_hook_events_dropped_total`. The thread ends when the last clone of the router is dropped, after
//! delivering what is queued.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

use serde::Serialize;

use crate::ledger::GenerationRecord;

/// Events queued at most before new ones are dropped.
pub const HOOK_QUEUE: usize = 4096;

/// One attempt against one endpoint, as it ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptEvent {
    /// The generation (request) the attempt belongs to.
    pub generation_id: String,
    /// 0-based position among the request's attempts (same-endpoint retries included).
    pub index: u32,
    /// Model slug.
    pub model: String,
    /// Provider slug.
    pub provider: String,
    /// Endpoint tag.
    pub endpoint: String,
    /// Outcome code: `success`, `overloaded`, `timeout`, `rate_limited`, `unreachable`, ….
    pub code: String,
    /// HTTP status the provider answered with (0 when none arrived).
    pub status: u16,
    /// Milliseconds the attempt took.
    pub latency_ms: Option<f64>,
    /// The provider's (scrubbed) error message, for a failed attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl AttemptEvent {
    /// As JSON.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Called for every attempt and every billed generation, on the router's hook thread (see the module
/// documentation). Both methods do nothing by default.
pub trait Hooks: Send + Sync + 'static {
    /// An attempt ended (success or failure).
    fn on_attempt(&self, _event: &AttemptEvent) {}
    /// A generation was recorded in the ledger (the same record `generation(id)` returns).
    fn on_generation(&self, _record: &GenerationRecord) {}
}

pub(crate) enum Event {
    Attempt(AttemptEvent),
    Generation(Box<GenerationRecord>),
}

/// The sending side of a router's hook queue.
pub(crate) struct HookQueue {
    tx: SyncSender<Event>,
}

impl HookQueue {
    /// Start the hook thread for `hooks`.
    pub(crate) fn start(hooks: Arc<dyn Hooks>) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel::<Event>(HOOK_QUEUE);
        std::thread::Builder::new()
            .name("polyroute-hooks".into())
            .spawn(move || {
                while let Ok(ev) = rx.recv() {
                    let h = &hooks;
                    let r = catch_unwind(AssertUnwindSafe(|| match &ev {
                        Event::Attempt(a) => h.on_attempt(a),
                        Event::Generation(g) => h.on_generation(g),
                    }));
                    if r.is_err() {
                        tracing::warn!("a hook panicked; its event was skipped");
                    }
                }
            })?;
        Ok(Self { tx })
    }

    /// Queue `ev`; false when the queue is full (the event is dropped).
    pub(crate) fn send(&self, ev: Event) -> bool {
        match self.tx.try_send(ev) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}
