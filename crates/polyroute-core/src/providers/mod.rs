//! Provider dialects: the OpenAI Chat Completions request is the canonical input; each dialect turns it into the
//! provider's native request and turns the native response, stream and errors back into OpenAI shape.
//!
//! Pure code, no I/O: the engine sends [`NativeRequest::body`] (JSON text, see [`NativeBody`]) to
//! `base_url + path` with the credential placed in the header named by [`Dialect::auth_header`], then hands the
//! answer to [`parse_response`] (whole body), a [`StreamTranslator`] (SSE body, fed as bytes arrive) or
//! [`map_error`] (non-2xx status). The Anthropic and Gemini request bodies are typed views borrowing from the
//! request, serialized straight to text; reading a body as a `Value` parses it on demand.
//!
//! Parameters a provider does not support are dropped and listed in [`NativeRequest::dropped`], or rejected with
//! [`Error::InvalidRequest`] when [`TranslateOptions::strict`] (`provider.require_parameters`) is set.
//!
//! Chunks are OpenAI `chat.completion.chunk` objects as [`serde_json::Value`]; the engine writes each as
//! `data: <json>\n\n` and ends the stream with `data: [DONE]\n\n` after [`StreamTranslator::finish`].
//! [`StreamTranslator::push_sse_into`] and [`StreamTranslator::finish_sse_into`] write those events directly
//! (the same bytes, without building the chunk objects).
//!
//! ```
//! use polyroute_core::providers::{build_request, Dialect, ResponseContext, StreamTranslator, TranslateOptions};
//! use polyroute_core::types::ChatRequest;
//!
//! let req = ChatRequest::from_json(r#"{"model": "anthropic/claude-sonnet-4.5",
//!     "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}"#)?;
//! let mut opts = TranslateOptions::new("anthropic", "claude-sonnet-4-5");
//! opts.stream = true;
//! let native = build_request(Dialect::Anthropic, &req, &opts)?;
//! assert_eq!(native.path, "/v1/messages");
//! assert_eq!(native.body["system"][0]["text"], "Be brief.");
//!
//! // The engine posts native.body, then feeds the SSE body as it arrives.
//! let ctx = ResponseContext { id: "gen-1".into(), created: 1_700_000_000, hints: native.hints, ..Default::default() };
//! let mut stream = StreamTranslator::new(Dialect::Anthropic, ctx);
//! let mut chunks = stream.push(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":3}}}\n\n");
//! chunks.extend(stream.push(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":1}}\n\n"));
//! chunks.extend(stream.finish());
//! assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
//! assert_eq!(stream.finish_reason(), Some("stop"));
//! assert_eq!(stream.usage().map(|u| u.total_tokens), Some(4));
//! # Ok::<(), polyroute_core::Error>(())
//! ```

pub mod anthropic;
pub mod azure;
pub mod bedrock;
mod body;
mod common;
mod errors;
mod fast;
mod fast_event;
pub mod gemini;
mod json;
pub mod openai;
pub(crate) mod splice;
mod stream;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::outcome::Outcome;
use crate::types::{ChatRequest, Usage};

pub use crate::dialect::{AuthScheme, Credential, Dialect, Framing};
pub use body::NativeBody;
pub use errors::map_error;
pub use fast::{splice_response, write_json_str, SplicedAnswer};
pub use stream::StreamTranslator;

/// Gemini REST API version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GeminiApiVersion {
    /// `v1beta` (newest fields).
    #[default]
    V1Beta,
    /// `v1` (google-genai 3.x default).
    V1,
}

impl GeminiApiVersion {
    fn as_str(self) -> &'static str {
        match self {
            Self::V1Beta => "v1beta",
            Self::V1 => "v1",
        }
    }
}

/// How to translate one request.
#[derive(Debug, Clone, Copy)]
pub struct TranslateOptions<'a> {
    /// Provider slug (`groq`, `anthropic`, …): selects the OpenAI-compatible quirk table row.
    pub provider: &'a str,
    /// The model id the provider knows.
    pub upstream_model: &'a str,
    /// `provider.require_parameters`: an unsupported parameter is an error instead of being dropped.
    pub strict: bool,
    /// The endpoint supports native structured output (Anthropic `output_config.format`); otherwise a forced
    /// tool carries the JSON schema.
    pub supports_native_structured_output: bool,
    /// Ask for an SSE stream.
    pub stream: bool,
    /// Gemini API version.
    pub gemini_api_version: GeminiApiVersion,
    /// `anthropic-version` header value.
    pub anthropic_version: &'a str,
    /// Anthropic `anthropic_version` body field for [`Dialect::AnthropicVertex`] (`vertex-2023-10-16`).
    pub anthropic_vertex_version: &'a str,
    /// Anthropic `max_tokens` when the request gives no output limit (the model's max output, from the catalog).
    pub default_max_tokens: u64,
    /// Anthropic model takes adaptive thinking (`thinking: {type: adaptive}` + `output_config.effort`, Claude
    /// 4.6 and later; 4.7+ reject `budget_tokens`). Otherwise reasoning becomes a `budget_tokens` budget.
    pub anthropic_adaptive_thinking: bool,
    /// The model accepts sampling parameters (`temperature`, `top_p`, `top_k`). Claude 4.7+ and Anthropic API
    /// version `2026-10-21` reject them; when false they are dropped and reported (an error when strict).
    pub sampling_params: bool,
}

impl<'a> TranslateOptions<'a> {
    /// Defaults: not strict, no native structured output, not streaming, Gemini `v1beta`, Anthropic `2023-06-01`
    /// (`vertex-2023-10-16` on Vertex),
    /// default `max_tokens` 4096, budget (not adaptive) thinking, sampling parameters accepted.
    #[must_use]
    pub fn new(provider: &'a str, upstream_model: &'a str) -> Self {
        Self {
            provider,
            upstream_model,
            strict: false,
            supports_native_structured_output: false,
            stream: false,
            gemini_api_version: GeminiApiVersion::V1Beta,
            anthropic_version: "2023-06-01",
            anthropic_vertex_version: "vertex-2023-10-16",
            default_max_tokens: 4096,
            anthropic_adaptive_thinking: false,
            sampling_params: true,
        }
    }
}

/// Facts about a translated request that translating the answer needs. Carry it from [`NativeRequest`] into
/// [`ResponseContext`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseHints {
    /// Name of the synthetic tool that carries `response_format` JSON (Anthropic fallback); its input becomes
    /// message content and `finish_reason` becomes `stop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_tool: Option<String>,
    /// The schema root was not an object, so the synthetic tool's input is `{"value": <answer>}`; the answer is
    /// unwrapped.
    #[serde(default)]
    pub json_tool_wrapped: bool,
    /// Tool names rewritten to fit the provider's name rules: `(sent, original)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_names: Vec<(String, String)>,
    /// `reasoning.exclude`: the model reasons but the reasoning text is not returned.
    #[serde(default)]
    pub exclude_reasoning: bool,
}

impl ResponseHints {
    pub(crate) fn original_tool_name<'s>(&'s self, sent: &'s str) -> &'s str {
        self.tool_names
            .iter()
            .find(|(s, _)| s == sent)
            .map_or(sent, |(_, o)| o.as_str())
    }
}

/// The provider-native request.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeRequest {
    /// JSON body: the text to send, readable as a [`Value`] (see [`NativeBody`]).
    pub body: NativeBody,
    /// Path below the provider base URL: `/chat/completions`, `/v1/messages`,
    /// `/v1beta/models/{m}:generateContent` or `/v1beta/models/{m}:streamGenerateContent?alt=sse`.
    pub path: String,
    /// Non-secret headers (`anthropic-version`). Never credentials.
    pub headers: Vec<(String, String)>,
    /// Request parameters left out because the provider does not support them (dotted paths).
    pub dropped: Vec<String>,
    /// What the response translation needs to know.
    pub hints: ResponseHints,
}

/// Context for translating an answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResponseContext {
    /// Generation id to put in `id` (`gen-…`); empty keeps the provider's id.
    pub id: String,
    /// Unix seconds for `created` (the core never reads the clock).
    pub created: u64,
    /// Model slug to report (`anthropic/claude-sonnet-4.5`); empty keeps the provider's model string.
    pub model: String,
    /// Provider display name (`Anthropic`), reported in `provider` and error metadata.
    pub provider_name: String,
    /// Hints from the request translation.
    pub hints: ResponseHints,
}

/// A failed attempt: the classified outcome and the OpenRouter error envelope to show the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderFailure {
    /// Classification for the fallback plan.
    pub outcome: Outcome,
    /// `{error: {code, message, metadata: {provider_name, error_type, provider_code, raw}}}`.
    pub envelope: Value,
}

/// Translate a canonical request into the provider's native request.
///
/// # Errors
/// [`Error::InvalidRequest`] when the request cannot be expressed (unparseable tool-call arguments, a tool result
/// without a matching call), or when `opts.strict` is set and a used parameter is unsupported.
pub fn build_request(
    dialect: Dialect,
    req: &ChatRequest,
    opts: &TranslateOptions<'_>,
) -> Result<NativeRequest> {
    match dialect {
        Dialect::OpenAi => openai::build_request(req, opts),
        Dialect::AzureOpenAi => azure::build_request(req, opts),
        Dialect::Anthropic => anthropic::build_request(req, opts),
        Dialect::AnthropicVertex => anthropic::build_vertex_request(req, opts),
        Dialect::Gemini => gemini::build_request(req, opts),
        Dialect::GeminiVertex => gemini::build_vertex_request(req, opts),
        Dialect::BedrockConverse => bedrock::build_request(req, opts),
        Dialect::OpenAiVertex => Err(Error::invalid(
            "provider",
            format!(
                "provider {} speaks the {dialect} dialect, which polyroute does not translate yet",
                opts.provider
            ),
        )),
    }
}

/// Translate a whole (non-streaming) provider answer into an OpenAI `chat.completion` plus normalized usage.
///
/// # Errors
/// A [`ProviderFailure`] for a non-2xx status, an error body, or a body that is not a valid answer.
#[allow(clippy::result_large_err)] // returned once per attempt; boxing buys nothing
pub fn parse_response(
    dialect: Dialect,
    status: u16,
    body: &[u8],
    ctx: &ResponseContext,
) -> std::result::Result<(Value, Usage), ProviderFailure> {
    if !(200..300).contains(&status) {
        return Err(map_error(dialect, status, None, body, &ctx.provider_name));
    }
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Err(errors::invalid_response(
                &ctx.provider_name,
                &format!("invalid upstream json: {e}"),
                body,
            ))
        }
    };
    if dialect != Dialect::BedrockConverse && v.get("error").is_some_and(|e| !e.is_null()) {
        return Err(map_error(dialect, status, None, body, &ctx.provider_name));
    }
    let out = match answer_family(dialect) {
        Dialect::BedrockConverse => bedrock::parse_response(&v, ctx),
        Dialect::Anthropic => anthropic::parse_response(&v, ctx),
        Dialect::Gemini => gemini::parse_response(&v, ctx),
        _ => openai::parse_response(v, ctx),
    };
    out.ok_or_else(|| {
        errors::invalid_response(
            &ctx.provider_name,
            "upstream answer has an unexpected shape",
            body,
        )
    })
}

/// The dialect whose answers, streams and errors a dialect's answers look like: Anthropic on Vertex answers as
/// Anthropic; Bedrock Converse is its own; the untranslated dialect is read as OpenAI (its requests are never
/// built).
pub(crate) fn answer_family(d: Dialect) -> Dialect {
    match d {
        Dialect::AnthropicVertex => Dialect::Anthropic,
        Dialect::GeminiVertex => Dialect::Gemini,
        Dialect::OpenAiVertex | Dialect::AzureOpenAi => Dialect::OpenAi,
        other => other,
    }
}

/// How a dialect supports a capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "support", content = "note", rename_all = "snake_case")]
pub enum Support {
    /// The provider supports it natively.
    Native,
    /// Supported through a translation (note says how).
    Emulated(&'static str),
    /// Not supported (note says what happens to the parameter).
    Unsupported(&'static str),
}

/// The capability names every dialect answers, in order.
pub const CAPABILITIES: &[&str] = &[
    "text",
    "stream",
    "tools",
    "parallel_tools",
    "json_schema",
    "images",
    "reasoning",
    "usage",
    "refusal",
    "logprobs",
    "errors",
];

/// What a dialect supports, one answer per entry of [`CAPABILITIES`].
#[must_use]
pub fn capabilities(dialect: Dialect) -> Vec<(&'static str, Support)> {
    use Support::{Emulated, Native, Unsupported};
    let answers: [Support; 11] = match dialect {
        Dialect::BedrockConverse => [
            Native,
            Native,
            Native,
            Unsupported("parallel_tool_calls=false is dropped; the model decides"),
            Emulated("a forced json_tool_call tool carries the schema"),
            Emulated("base64 images and PDFs as bytes; image URLs are dropped"),
            Emulated("Claude: thinking in additionalModelRequestFields; other families: dropped"),
            Native,
            Emulated("stopReason guardrail_intervened and content_filtered become finish_reason content_filter"),
            Unsupported("logprobs and top_logprobs are dropped"),
            Native,
        ],
        Dialect::OpenAiVertex => {
            [Unsupported("the dialect is not translated yet; its endpoints are excluded from plans"); 11]
        }
        Dialect::OpenAi | Dialect::AzureOpenAi => [Native, Native, Native, Native, Native, Native, Native, Native, Native, Native, Native],
        Dialect::Anthropic | Dialect::AnthropicVertex => [
            Native,
            Native,
            Native,
            Emulated("parallel_tool_calls=false becomes tool_choice.disable_parallel_tool_use"),
            Emulated("output_config.format when native structured output is supported, else a forced json_tool_call tool"),
            Native,
            Emulated("reasoning effort becomes thinking.budget_tokens by ratio of max_tokens"),
            Native,
            Emulated("stop_reason refusal becomes finish_reason content_filter"),
            Unsupported("logprobs and top_logprobs are dropped"),
            Native,
        ],
        Dialect::Gemini | Dialect::GeminiVertex => [
            Native,
            Native,
            Native,
            Unsupported("parallel_tool_calls is dropped; the model decides"),
            Emulated("responseMimeType application/json plus a cleaned responseSchema"),
            Native,
            Emulated("reasoning becomes thinkingConfig (thinkingLevel on gemini 3+, thinkingBudget before)"),
            Native,
            Emulated("safety finish reasons and prompt blocks become finish_reason content_filter"),
            Native,
            Native,
        ],
    };
    CAPABILITIES.iter().copied().zip(answers).collect()
}

/// Raise an error if strict, else record the dropped parameter.
pub(crate) fn drop_param(
    dropped: &mut Vec<String>,
    strict: bool,
    provider: &str,
    path: &str,
) -> Result<()> {
    if strict {
        return Err(Error::invalid(
            path.to_string(),
            format!(
                "provider {provider} does not support this parameter and require_parameters is set"
            ),
        ));
    }
    if !dropped.iter().any(|d| d == path) {
        dropped.push(path.to_string());
    }
    Ok(())
}
