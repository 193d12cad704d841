//! [`ChatStream`]: the caller's end of a streamed completion.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use polyroute_core::Result;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The chunks of a streamed completion. Dropping it aborts the upstream request.
pub struct ChatStream {
    rx: mpsc::Receiver<Result<Value>>,
    task: JoinHandle<()>,
}

impl ChatStream {
    pub(crate) fn new(rx: mpsc::Receiver<Result<Value>>, task: JoinHandle<()>) -> Self {
        Self { rx, task }
    }
}

impl std::fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChatStream")
    }
}

impl Stream for ChatStream {
    type Item = Result<Value>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for ChatStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}
