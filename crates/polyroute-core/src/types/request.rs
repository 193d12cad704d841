//! The OpenAI Chat Completions request with OpenRouter's routing extensions.
//!
//! [`ChatRequest::from_value`] validates strictly where routing depends on a field (`provider`, `models`,
//! `messages`, token limits) and reports the dotted path of the bad field and the allowed values. Fields polyroute
//! does not interpret are kept in `extra` and forwarded.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::catalog::Quantization;
use crate::error::{Error, Result};

/// A chat message. `content` is a string, an array of parts, or null. (Deserialized by hand: see
/// `request_de.rs`.)
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: Role,
    /// String or array of content parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Value>,
    /// Participant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Assistant tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<Value>>,
    /// For `tool` messages: the call being answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Everything else (`reasoning`, `reasoning_details`, `cache_control`, `refusal`, …), forwarded.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Message role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// System prompt.
    System,
    /// Developer instructions (newer OpenAI name for system).
    Developer,
    /// End user.
    User,
    /// Model.
    Assistant,
    /// Tool result.
    Tool,
}

/// `provider.sort` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortBy {
    /// Lowest price first.
    Price,
    /// Highest tokens per second first.
    Throughput,
    /// Lowest time to first token first.
    Latency,
    /// Quality first (tool-call success, then throughput); polyroute orders by catalog quality signals then price.
    Exacto,
}

/// `provider.sort.partition`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Partition {
    /// The primary model's endpoints always first.
    #[default]
    Model,
    /// All endpoints of all models sorted together.
    None,
}

/// `provider.sort`: a metric or `{by, partition}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sort {
    /// Metric.
    pub by: SortBy,
    /// Grouping across `models`.
    pub partition: Partition,
}

impl<'de> Deserialize<'de> for Sort {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Obj {
            by: SortBy,
            #[serde(default)]
            partition: Partition,
        }
        let v = Value::deserialize(d)?;
        if let Value::String(s) = &v {
            return serde_json::from_value::<SortBy>(Value::String(s.clone()))
                .map(|by| Sort {
                    by,
                    partition: Partition::Model,
                })
                .map_err(serde::de::Error::custom);
        }
        if v.is_object() {
            return serde_json::from_value::<Obj>(v)
                .map(|o| Sort {
                    by: o.by,
                    partition: o.partition,
                })
                .map_err(serde::de::Error::custom);
        }
        Err(serde::de::Error::custom(
            "expected one of `price`, `throughput`, `latency`, `exacto` or an object {by, partition}",
        ))
    }
}

/// `data_collection`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataCollection {
    /// Any provider.
    #[default]
    Allow,
    /// Only providers that neither train on nor retain prompts.
    Deny,
}

/// A percentile cutoff: a number (applies to p50) or `{p50, p75, p90, p99}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median cutoff.
    pub p50: Option<f64>,
    /// 75th percentile cutoff.
    pub p75: Option<f64>,
    /// 90th percentile cutoff.
    pub p90: Option<f64>,
    /// 99th percentile cutoff.
    pub p99: Option<f64>,
}

impl<'de> Deserialize<'de> for Percentiles {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Obj {
            p50: Option<f64>,
            p75: Option<f64>,
            p90: Option<f64>,
            p99: Option<f64>,
        }
        let v = Value::deserialize(d)?;
        if let Some(n) = v.as_f64() {
            return Ok(Self {
                p50: Some(n),
                ..Self::default()
            });
        }
        if v.is_object() {
            let o: Obj = serde_json::from_value(v).map_err(serde::de::Error::custom)?;
            return Ok(Self {
                p50: o.p50,
                p75: o.p75,
                p90: o.p90,
                p99: o.p99,
            });
        }
        Err(serde::de::Error::custom(
            "expected a number or an object {p50, p75, p90, p99}",
        ))
    }
}

/// A price in `max_price`: USD per million tokens (prompt, completion) or per unit; a number or a decimal string.
fn de_price<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Decimal>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    let dec = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.to_string().parse::<Decimal>().ok(),
        Some(Value::String(s)) => s.trim().parse::<Decimal>().ok(),
        Some(_) => None,
    };
    match dec {
        Some(x) if x.is_sign_negative() => {
            Err(serde::de::Error::custom("price must not be negative"))
        }
        Some(x) => Ok(Some(x)),
        None => Err(serde::de::Error::custom(
            "expected a non-negative number or decimal string",
        )),
    }
}

/// `provider.max_price`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxPrice {
    /// USD per million prompt tokens.
    #[serde(default, deserialize_with = "de_price")]
    pub prompt: Option<Decimal>,
    /// USD per million completion tokens.
    #[serde(default, deserialize_with = "de_price")]
    pub completion: Option<Decimal>,
    /// USD per image.
    #[serde(default, deserialize_with = "de_price")]
    pub image: Option<Decimal>,
    /// USD per audio unit.
    #[serde(default, deserialize_with = "de_price")]
    pub audio: Option<Decimal>,
    /// USD per request.
    #[serde(default, deserialize_with = "de_price")]
    pub request: Option<Decimal>,
}

/// OpenRouter provider preferences (`provider` object).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderPreferences {
    /// Providers to try first, in order.
    #[serde(default)]
    pub order: Option<Vec<String>>,
    /// Whether providers outside `order` (or after the first choice) may be used. Default true.
    #[serde(default)]
    pub allow_fallbacks: Option<bool>,
    /// Only endpoints supporting every request parameter.
    #[serde(default)]
    pub require_parameters: Option<bool>,
    /// `deny` keeps only providers that neither train on nor retain prompts.
    #[serde(default)]
    pub data_collection: Option<DataCollection>,
    /// Only zero-data-retention endpoints.
    #[serde(default)]
    pub zdr: Option<bool>,
    /// Only models whose author allows text distillation.
    #[serde(default)]
    pub enforce_distillable_text: Option<bool>,
    /// Allowlist of providers (slugs, endpoint tags or display names).
    #[serde(default)]
    pub only: Option<Vec<String>>,
    /// Denylist of providers.
    #[serde(default)]
    pub ignore: Option<Vec<String>>,
    /// Allowed quantizations.
    #[serde(default)]
    pub quantizations: Option<Vec<Quantization>>,
    /// Explicit ordering.
    #[serde(default)]
    pub sort: Option<Sort>,
    /// Soft throughput floor (tokens/s).
    #[serde(default)]
    pub preferred_min_throughput: Option<Percentiles>,
    /// Soft latency ceiling (seconds).
    #[serde(default)]
    pub preferred_max_latency: Option<Percentiles>,
    /// Hard price ceiling.
    #[serde(default)]
    pub max_price: Option<MaxPrice>,
}

/// The request, typed where routing needs it. (Deserialized by hand: see `request_de.rs`; the default is the
/// request with no field set, what a reader fills.)
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChatRequest {
    /// Model slug (or router, alias, variant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Fallback models (at most 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// Deprecated alias of `provider.sort.partition`: `fallback` → model, `sort` → none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Provider preferences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderPreferences>,
    /// Conversation.
    pub messages: Vec<Message>,
    /// Function tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Value>>,
    /// Tool choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// Structured output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    /// Output limit (deprecated name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Output limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    /// Stream the answer as SSE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Sticky-routing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// OpenAI prompt cache key (sticky-routing key when no session id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache_key: Option<String>,
    /// `auto`, `default`, `fast`, `flex`, `priority`, `scale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// Plugins (`auto-router`, `pareto-router`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins: Option<Vec<Value>>,
    /// Every other field (sampling parameters, `reasoning`, `user`, …), forwarded as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Parameters whose presence `require_parameters` checks, mapped to the `supported_parameters` name.
const CHECKED_PARAMS: &[(&str, &str)] = &[
    ("temperature", "temperature"),
    ("top_p", "top_p"),
    ("top_k", "top_k"),
    ("min_p", "min_p"),
    ("top_a", "top_a"),
    ("frequency_penalty", "frequency_penalty"),
    ("presence_penalty", "presence_penalty"),
    ("repetition_penalty", "repetition_penalty"),
    ("logit_bias", "logit_bias"),
    ("logprobs", "logprobs"),
    ("top_logprobs", "top_logprobs"),
    ("seed", "seed"),
    ("stop", "stop"),
    ("parallel_tool_calls", "parallel_tool_calls"),
    ("prediction", "prediction"),
    ("reasoning", "reasoning"),
    ("reasoning_effort", "reasoning_effort"),
    ("include_reasoning", "include_reasoning"),
    ("web_search_options", "web_search_options"),
    ("verbosity", "verbosity"),
];

impl ChatRequest {
    /// Parse and validate a request body.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] naming the field and what is allowed.
    pub fn from_value(v: &Value) -> Result<Self> {
        if !v.is_object() {
            return Err(Error::invalid(
                "$",
                "the request body must be a JSON object",
            ));
        }
        // Fast path without path tracking; on failure, parse again with it to name the field.
        let req: ChatRequest = match ChatRequest::deserialize(v) {
            Ok(r) => r,
            Err(_) => serde_path_to_error::deserialize(v)
                .map_err(|e| Self::parse_error(&e.path().to_string(), &e.inner().to_string()))?,
        };
        req.validated()
    }

    /// The error for a body that does not deserialize: `path` as `serde_path_to_error` prints it (`.` for the
    /// root), `message` as serde words it.
    #[must_use]
    pub fn parse_error(path: &str, message: &str) -> Error {
        let msg = message.split(" at line ").next().unwrap_or(message);
        // Both may echo a client's field name or value: bounded, whatever was sent.
        Error::invalid(
            if path == "." {
                "$".to_string()
            } else {
                super::limits::shown(path)
            },
            super::limits::clip(msg, 512),
        )
    }

    /// Finish a request deserialized from something other than a `Value` (the Python binding reads dicts
    /// directly): trim the provider lists and validate, as [`ChatRequest::from_value`] does.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] naming the field and what is allowed.
    pub fn validated(self) -> Result<Self> {
        let mut req = self;
        req.validate_in_place()?;
        Ok(req)
    }

    /// [`ChatRequest::validated`] without moving the request (a large value): trim the provider lists and
    /// validate.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] naming the field and what is allowed.
    pub fn validate_in_place(&mut self) -> Result<()> {
        if let Some(p) = self.provider.as_mut() {
            for list in [p.order.as_mut(), p.only.as_mut(), p.ignore.as_mut()]
                .into_iter()
                .flatten()
            {
                for r in list.iter_mut() {
                    if r.trim().len() != r.len() {
                        *r = r.trim().to_string();
                    }
                }
            }
        }
        self.validate()
    }

    /// Parse from JSON text.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`].
    pub fn from_json(text: &str) -> Result<Self> {
        Self::from_slice(text.as_bytes())
    }

    fn validate(&self) -> Result<()> {
        if self.messages.is_empty() {
            return Err(Error::invalid(
                "messages",
                "must contain at least one message",
            ));
        }
        if let Some(m) = &self.models {
            if m.len() > 3 {
                return Err(Error::invalid(
                    "models",
                    "'models' array must have 3 items or fewer.",
                ));
            }
            if let Some(i) = m.iter().position(|s| s.trim().is_empty()) {
                return Err(Error::invalid(
                    format!("models[{i}]"),
                    "must be a non-empty model slug",
                ));
            }
        }
        if self.model.is_none() && self.models.as_ref().is_none_or(Vec::is_empty) {
            return Err(Error::invalid(
                "model",
                "required: give `model` or a non-empty `models` list",
            ));
        }
        if let Some(m) = &self.model {
            if m.trim().is_empty() {
                return Err(Error::invalid("model", "must be a non-empty model slug"));
            }
        }
        super::limits::check(self)?;
        if let Some(r) = &self.route {
            if r != "fallback" && r != "sort" {
                return Err(Error::invalid(
                    "route",
                    format!("{r:?} is not one of `fallback`, `sort`"),
                ));
            }
        }
        if let Some(t) = &self.service_tier {
            if !matches!(
                t.as_str(),
                "auto" | "default" | "fast" | "flex" | "priority" | "scale"
            ) {
                return Err(Error::invalid(
                    "service_tier",
                    format!("{t:?} is not one of auto, default, fast, flex, priority, scale"),
                ));
            }
        }
        if let Some(t) = self.extra.get("temperature") {
            match t.as_f64() {
                Some(x) if (0.0..=2.0).contains(&x) => {}
                _ => {
                    return Err(Error::invalid(
                        "temperature",
                        "must be a number between 0 and 2",
                    ))
                }
            }
        }
        if let Some(tools) = &self.tools {
            for (i, t) in tools.iter().enumerate() {
                let name = t.pointer("/function/name").and_then(Value::as_str);
                let ty = t.get("type").and_then(Value::as_str);
                if ty == Some("function") && name.is_none_or(str::is_empty) {
                    return Err(Error::invalid(
                        format!("tools[{i}].function.name"),
                        "required for function tools",
                    ));
                }
                if ty.is_none() {
                    return Err(Error::invalid(
                        format!("tools[{i}].type"),
                        "required (`function` or a server tool)",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The requested output limit (`max_completion_tokens` wins over `max_tokens`).
    #[must_use]
    pub fn output_limit(&self) -> Option<u64> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// The `supported_parameters` names this request uses (for `require_parameters`).
    #[must_use]
    pub fn used_parameters(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        if self.tools.as_ref().is_some_and(|t| !t.is_empty()) {
            out.push("tools");
        }
        if self.tool_choice.is_some() {
            out.push("tool_choice");
        }
        if let Some(rf) = &self.response_format {
            match rf.get("type").and_then(Value::as_str) {
                Some("json_schema") => {
                    out.push("response_format");
                    out.push("structured_outputs");
                }
                Some("text") | None => {}
                Some(_) => out.push("response_format"),
            }
        }
        if self.max_tokens.is_some() {
            out.push("max_tokens");
        }
        if self.max_completion_tokens.is_some() {
            out.push("max_tokens");
        }
        for (field, param) in CHECKED_PARAMS {
            if self.extra.get(*field).is_some_and(|v| !v.is_null()) {
                out.push(param);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Input modalities the messages carry besides text (`image`, `audio`, `file`, `video`).
    #[must_use]
    pub fn input_modalities(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for m in &self.messages {
            if let Some(Value::Array(parts)) = &m.content {
                for p in parts {
                    let kind = match p.get("type").and_then(Value::as_str) {
                        Some("image_url" | "image") => "image",
                        Some("input_audio" | "audio") => "audio",
                        Some("file") => "file",
                        Some("video_url" | "input_video" | "video") => "video",
                        _ => continue,
                    };
                    if !out.contains(&kind) {
                        out.push(kind);
                    }
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// A fast prompt-size estimate in tokens: characters / 4 over text and tool definitions, plus a fixed
    /// allowance per image. Used for context fit; providers count the real number.
    #[must_use]
    pub fn estimate_prompt_tokens(&self) -> u64 {
        let mut chars: usize = 0;
        let mut images: u64 = 0;
        for m in &self.messages {
            chars += 4;
            match &m.content {
                Some(Value::String(s)) => chars += s.len(),
                Some(Value::Array(parts)) => {
                    for p in parts {
                        if let Some(t) = p.get("text").and_then(Value::as_str) {
                            chars += t.len();
                        } else if p.get("type").and_then(Value::as_str) == Some("image_url") {
                            images += 1;
                        }
                    }
                }
                _ => {}
            }
            if let Some(tc) = &m.tool_calls {
                for c in tc {
                    chars += c
                        .pointer("/function/arguments")
                        .and_then(Value::as_str)
                        .map_or(0, str::len);
                }
            }
        }
        if let Some(tools) = &self.tools {
            for t in tools {
                chars += json_len(t);
            }
        }
        (chars as u64).div_ceil(4) + images * 765
    }
}

fn json_len(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len() + 2,
        Value::Array(a) => a.iter().map(json_len).sum::<usize>() + 2,
        Value::Object(o) => {
            o.iter()
                .map(|(k, v)| k.len() + 3 + json_len(v))
                .sum::<usize>()
                + 2
        }
        _ => 4,
    }
}
