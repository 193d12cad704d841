//! One attempt against one endpoint, unary ([`unary`]) or streamed ([`stream`]), each a [`Driver`] of the one
//! failover loop ([`crate::failover`]); [`prepare`] builds the request.

pub(crate) mod prepare;
pub(crate) mod stream;
pub(crate) mod unary;

use std::future::Future;
use std::time::Instant;

use polyroute_core::plan::Attempt;
use polyroute_core::providers::ProviderFailure;
use polyroute_core::Usage;
use serde_json::Value;

use crate::admission::Admission;
use crate::router::Router;

/// The largest non-streamed upstream answer read (32 MiB): a larger one fails the attempt with a clear error
/// instead of being buffered whole.
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// The largest upstream error body read (1 MiB); the rest is dropped.
pub(crate) const MAX_ERROR_BYTES: usize = 1024 * 1024;

/// Why [`read_capped`] stopped.
pub(crate) enum ReadError {
    /// The body is larger than the cap.
    TooLarge,
    /// The transport failed.
    Transport(crate::http_client::TransportError),
}

/// Read a response body of at most `cap` bytes (a `Content-Length` above it fails before reading anything).
/// With `truncate`, a larger body is cut at `cap` instead of failing (error bodies).
pub(crate) async fn read_capped(
    resp: crate::http_client::UpResponse,
    cap: usize,
    truncate: bool,
) -> Result<bytes::Bytes, ReadError> {
    if !truncate && resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut body = resp.into_body();
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = body.chunk().await.map_err(ReadError::Transport)? {
        if buf.len() + chunk.len() > cap {
            if truncate {
                buf.extend_from_slice(&chunk[..cap - buf.len()]);
                break;
            }
            return Err(ReadError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// What an attempt produced, for billing.
#[derive(Debug, Clone, Default)]
pub(crate) struct Served {
    pub usage: Usage,
    pub finish: Option<String>,
    pub ttft_ms: Option<f64>,
    /// Request parameters the dialect left out for this provider.
    pub dropped: Vec<String>,
    /// Content chunks relayed to the caller (the completion estimate when the provider reported no usage).
    pub relayed: u64,
}

/// How an attempt ended (one value per attempt, so its size does not matter).
#[allow(clippy::large_enum_variant)]
pub(crate) enum AttemptEnd<T> {
    /// Success: the answer (unary) and what to bill, with the throughput observed.
    Served {
        out: T,
        served: Served,
        tput: Option<f64>,
    },
    /// Failed before anything reached the caller: the plan may move on.
    Failed(ProviderFailure),
    /// Content reached the caller, then the attempt failed: no failover; bill what was produced and end with the
    /// error chunk (the translator's, when it made one).
    Broken {
        failure: ProviderFailure,
        partial: Served,
        err_chunk: Option<Value>,
    },
    /// The caller went away. `Some`: the provider had started answering (bill what it produced, `cancelled`);
    /// `None`: nothing to bill.
    Abandoned(Option<Served>),
}

/// Runs attempts for the failover loop.
pub(crate) trait Driver: Send {
    /// The successful answer (a JSON completion, or nothing for a stream whose chunks went out already).
    type Out: Send;

    /// Try attempt `a` until `deadline`.
    fn attempt<'a>(
        &'a mut self,
        router: &'a Router,
        ad: &'a Admission,
        a: &'a Attempt,
        deadline: Instant,
    ) -> impl Future<Output = AttemptEnd<Self::Out>> + Send + 'a;

    /// Whether the caller went away (no further attempt is started then).
    fn caller_gone(&self) -> bool;
}
