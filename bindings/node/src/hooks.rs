//! `new Router({ hooks: { onAttempt, onGeneration } })`: JavaScript functions called for every attempt and every
//! generation. The engine calls them from its hook thread (never on a request's path) through weak thread-safe
//! functions (they do not keep the process alive), queued non-blocking on the JavaScript thread. The package entry
//! (`polyroute.cjs`) wraps each function so that a throw or a rejected promise is reported as a process warning
//! instead of an uncaught exception.

use napi::bindgen_prelude::{Function, JsObjectValue, Object, Unknown};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use polyroute::{AttemptEvent, GenerationRecord, Hooks};
use serde_json::Value;

type Tsfn = ThreadsafeFunction<Value, Unknown<'static>, Value, napi::Status, false, true>;

/// The thread-safe forms of the hook functions.
pub struct JsHooks {
    on_attempt: Option<Tsfn>,
    on_generation: Option<Tsfn>,
}

fn tsfn(obj: &Object<'_>, name: &str) -> napi::Result<Option<Tsfn>> {
    let f: Option<Function<'_, Value, Unknown<'static>>> = obj.get_named_property(name)?;
    match f {
        None => Ok(None),
        Some(f) => Ok(Some(
            f.build_threadsafe_function()
                .weak::<true>()
                .callee_handled::<false>()
                .build()?,
        )),
    }
}

impl JsHooks {
    /// From `{ onAttempt?, onGeneration? }`; None when neither is set.
    pub fn from_js(obj: Option<Object<'_>>) -> napi::Result<Option<Self>> {
        let Some(obj) = obj else { return Ok(None) };
        let h = Self {
            on_attempt: tsfn(&obj, "onAttempt")?,
            on_generation: tsfn(&obj, "onGeneration")?,
        };
        Ok((h.on_attempt.is_some() || h.on_generation.is_some()).then_some(h))
    }
}

fn call(f: Option<&Tsfn>, v: Value) {
    if let Some(f) = f {
        // A full JavaScript queue or a closing environment drops the event.
        let _ = f.call(v, ThreadsafeFunctionCallMode::NonBlocking);
    }
}

impl Hooks for JsHooks {
    fn on_attempt(&self, e: &AttemptEvent) {
        call(self.on_attempt.as_ref(), e.to_json());
    }

    fn on_generation(&self, r: &GenerationRecord) {
        call(self.on_generation.as_ref(), r.to_json());
    }
}
