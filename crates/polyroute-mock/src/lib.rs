//! # polyroute-mock
//!
//! Loopback mock LLM providers for testing and benchmarking polyroute. One server speaks all three dialects:
//!
//! * OpenAI-compatible: `POST /v1/chat/completions` (any path ending in `/chat/completions`), `GET /v1/models`
//! * Anthropic: `POST /v1/messages`
//! * Gemini: `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`
//! * OpenAI embeddings: `POST /v1/embeddings` (any path ending in `/embeddings`) and Gemini
//!   `POST /v1beta/models/{model}:batchEmbedContents` (see [`embeddings`])
//!
//! Responses are synthetic by default (generated in code: the text is `"{label}: {last user message}"`), or
//! replayed from recorded payloads in a wire directory (`x-mock-replay: openai/stream.text.sse`, or
//! `anthropic/exchange.stream_429_rate_limit_then_sse.json#2` for one exchange of a recorded conversation).
//! A synthetic answer to a request that asks for JSON (`response_format`, Anthropic `output_config.format`,
//! Gemini `responseMimeType: application/json`) is the text `{"answer": "{label}: …"}`; a request with tools
//! gets a call to the forced (else first) tool with arguments `{"query": "{last user message}"}`, in each
//! dialect's native shape, streamed or whole.
//!
//! Faults are chosen per request by the `x-mock-fault` header (see [`Faults::parse`]), else by the next entry
//! of the server's script ([`MockServer::script`] or `POST /__mock/script`), else by the server's standing
//! fault ([`MockServer::set_fault`]). A credential can carry its own fault ([`MockServer::fault_for_key`] or
//! `POST /__mock/key-fault {"key": …, "fault": "401"}`), which wins over both. `GET /__mock/calls` reports call
//! counts and the received bodies.
//!
//! Before a synthetic answer, an Anthropic request body is checked against Anthropic's documented rules
//! ([`shape`]); one Anthropic would refuse gets its 400 `invalid_request_error` (replays and injected faults
//! answer whatever the body).
//!
//! Every response is written with one send on a `TCP_NODELAY` socket (a stream's head and first event
//! together), so loopback timings are not distorted by Nagle's algorithm.

mod dialect;
pub mod embeddings;
mod fault;
mod http;
pub mod replay;
mod server;
pub mod shape;

pub use dialect::{Call, Dialect};
pub use fault::Faults;
pub use server::{MockConfig, MockServer, Received};
