//! Hard filters (semantics §3.2). Each filter returns the exclusion reason and a detail naming what did not fit.
//!
//! Filters run in this order and the first that fails is reported: disabled status, `only`, `ignore`, service tier,
//! credentials, `zdr`, `data_collection`, `quantizations`, `max_price`, context fit, `require_parameters`, input
//! modality. (Tools support is the soft preference in the plan, not a hard filter; an endpoint whose dialect polyroute
//! does not translate is excluded by the plan after these filters.)

use rust_decimal::Decimal;

use crate::catalog::{Catalog, Endpoint, Model, Quantization};
use crate::error::ExclusionReason;
use crate::types::{ChatRequest, DataCollection, ProviderPreferences};

/// Request facts computed once per plan and shared by every filter.
#[derive(Debug, Clone)]
pub struct RequestFacts {
    /// Estimated prompt tokens.
    pub prompt_tokens: u64,
    /// Requested output limit.
    pub output_limit: Option<u64>,
    /// `supported_parameters` names the request uses (computed only when `require_parameters` is set).
    pub used_params: Vec<&'static str>,
    /// The request parameters of the soft default-parameter preference it uses (`tools`, `response_format`,
    /// `structured_outputs`, `verbosity`).
    pub preferred_params: Vec<&'static str>,
    /// Non-text input modalities.
    pub modalities: Vec<&'static str>,
    /// The request uses function tools.
    pub uses_tools: bool,
    /// Service tier the request opts into (`priority` or `flex`), from `service_tier` or a dynamic variant.
    pub tier: Option<&'static str>,
    /// `max_price` prompt and completion limits converted once to USD per token.
    pub max_token_price: (Option<Decimal>, Option<Decimal>),
}

impl RequestFacts {
    /// Compute the facts of `req`.
    #[must_use]
    pub fn new(req: &ChatRequest) -> Self {
        let tier = match req.service_tier.as_deref() {
            Some("priority" | "fast") => Some("priority"),
            Some("flex") => Some("flex"),
            _ => None,
        };
        Self {
            prompt_tokens: req.estimate_prompt_tokens(),
            output_limit: req.output_limit(),
            used_params: if req
                .provider
                .as_ref()
                .is_some_and(|p| p.require_parameters == Some(true))
            {
                req.used_parameters()
            } else {
                Vec::new()
            },
            preferred_params: preferred_params(req),
            modalities: req.input_modalities(),
            uses_tools: req.tools.as_ref().is_some_and(|t| !t.is_empty()),
            tier,
            max_token_price: req
                .provider
                .as_ref()
                .and_then(|p| p.max_price.as_ref())
                .map_or((None, None), |m| {
                    let per_token = |x: Option<Decimal>| x.map(|v| v * Decimal::new(1, 6));
                    (per_token(m.prompt), per_token(m.completion))
                }),
        }
    }
}

/// The parameters of the soft preference that `req` uses, without scanning every sampling field.
fn preferred_params(req: &ChatRequest) -> Vec<&'static str> {
    let mut out = Vec::new();
    if req.tools.as_ref().is_some_and(|t| !t.is_empty()) {
        out.push("tools");
    }
    match req
        .response_format
        .as_ref()
        .and_then(|rf| rf.get("type"))
        .and_then(serde_json::Value::as_str)
    {
        Some("json_schema") => {
            out.push("response_format");
            out.push("structured_outputs");
        }
        Some("text") | None => {}
        Some(_) => out.push("response_format"),
    }
    if req.extra.get("verbosity").is_some_and(|v| !v.is_null()) {
        out.push("verbosity");
    }
    out
}

/// Whether each endpoint's provider is in `creds`, in endpoint order, from `by_provider` (the endpoint indices
/// sorted by provider slug): one merge over the two sorted sequences instead of a set lookup per endpoint.
#[must_use]
pub(crate) fn credentialed(
    creds: &std::collections::BTreeSet<String>,
    endpoints: &[Endpoint],
    by_provider: &[u32],
) -> Vec<bool> {
    let mut out = vec![false; endpoints.len()];
    let mut set = creds.iter().peekable();
    for &i in by_provider {
        let Some(e) = endpoints.get(i as usize) else {
            continue;
        };
        let p = e.provider.as_bytes();
        while let Some(c) = set.peek() {
            match cmp_bytes(c.as_bytes(), p) {
                std::cmp::Ordering::Less => {
                    set.next();
                }
                std::cmp::Ordering::Equal => {
                    out[i as usize] = true;
                    break;
                }
                std::cmp::Ordering::Greater => break,
            }
        }
    }
    out
}

/// Whether each endpoint's provider holds a credential, for one catalog and one credential set, made per model
/// on first need and kept: a router plans against the same set every time, so a plan reads these flags instead
/// of merging the set against the model's providers (see [`crate::plan::PlanContext::credential_marks`]).
#[derive(Debug)]
pub struct CredentialMarks {
    catalog: Catalog,
    credentials: std::collections::BTreeSet<String>,
    per_model: Box<[std::sync::OnceLock<Box<[bool]>>]>,
}

impl CredentialMarks {
    /// Marks for `credentials` over `catalog`'s models (each model's computed when first read).
    #[must_use]
    pub fn new(catalog: &Catalog, credentials: std::collections::BTreeSet<String>) -> Self {
        Self {
            catalog: catalog.clone(),
            credentials,
            per_model: (0..catalog.model_count())
                .map(|_| std::sync::OnceLock::new())
                .collect(),
        }
    }

    /// The credential set the marks are for (pass this very set as the plan's `credentials`).
    #[must_use]
    pub fn credentials(&self) -> &std::collections::BTreeSet<String> {
        &self.credentials
    }

    /// The marks of model `index` of `catalog`, in endpoint order; `None` for another catalog.
    pub(crate) fn of(&self, catalog: &Catalog, index: usize) -> Option<&[bool]> {
        if !self.catalog.is(catalog) {
            return None;
        }
        let (model, by_provider) = catalog.model_at(index)?;
        let cell = self.per_model.get(index)?;
        Some(cell.get_or_init(|| {
            credentialed(&self.credentials, &model.endpoints, by_provider).into_boxed_slice()
        }))
    }
}

/// Byte-wise lexicographic order (the order of `str`), deciding on the first byte without a `memcmp` call when
/// it differs (slugs mostly differ there).
fn cmp_bytes(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    match a.first().cmp(&b.first()) {
        std::cmp::Ordering::Equal => a.cmp(b),
        o => o,
    }
}

/// Whether a provider reference (`deepinfra`, `deepinfra/fp8`, `DeepInfra`, `openai/priority`) matches an endpoint;
/// see [`Endpoint::matches_provider`].
#[must_use]
pub fn provider_matches(reference: &str, e: &Endpoint) -> bool {
    e.matches_provider(reference)
}

fn listed(list: Option<&Vec<String>>, e: &Endpoint) -> bool {
    list.is_some_and(|l| l.iter().any(|r| e.matches_provider(r)))
}

/// Inputs that come from outside the request.
pub struct FilterEnv<'a> {
    /// Provider slugs that have a credential; `None` = do not filter on credentials.
    pub credentials: Option<&'a std::collections::BTreeSet<String>>,
    /// Tier admitted by a dynamic variant of this model.
    pub variant_tier: Option<&'static str>,
}

/// Check one endpoint against every hard filter.
#[must_use]
pub fn check(
    env: &FilterEnv<'_>,
    prefs: &ProviderPreferences,
    facts: &RequestFacts,
    model: &Model,
    e: &Endpoint,
) -> Option<(ExclusionReason, String)> {
    let credential = env.credentials.map(|c| c.contains(&e.provider));
    check_with(env, prefs, facts, model, e, credential)
}

/// [`check`] with the credential lookup done by the caller: `credential` is whether `env.credentials` holds the
/// endpoint's provider (`None` when `env.credentials` is `None`).
#[must_use]
pub(crate) fn check_with(
    env: &FilterEnv<'_>,
    prefs: &ProviderPreferences,
    facts: &RequestFacts,
    model: &Model,
    e: &Endpoint,
    credential: Option<bool>,
) -> Option<(ExclusionReason, String)> {
    if e.status < 0 {
        return Some((
            ExclusionReason::Disabled,
            format!("endpoint status {}", e.status),
        ));
    }
    if let Some(only) = &prefs.only {
        if !listed(Some(only), e) {
            return Some((
                ExclusionReason::AllowedProviders,
                format!("{} is not in provider.only {:?}", e.tag, only),
            ));
        }
    }
    if listed(prefs.ignore.as_ref(), e) {
        return Some((
            ExclusionReason::IgnoredProviders,
            [&e.tag, " is in provider.ignore"].concat(),
        ));
    }
    if let Some(tier) = e.service_tier.as_deref() {
        let explicit = listed(prefs.order.as_ref(), e) || listed(prefs.only.as_ref(), e);
        let by_variant = env.variant_tier == Some(tier) && prefs.order.is_none();
        if !(explicit || by_variant || facts.tier == Some(tier)) {
            return Some((
                ExclusionReason::ServiceTier,
                [
                    tier,
                    " tier endpoint; opt in with service_tier, its tag, :nitro or :floor",
                ]
                .concat(),
            ));
        }
    }
    if let Some(has) = credential {
        if !has {
            return Some((
                ExclusionReason::NoCredentials,
                ["no API key configured for ", &e.provider].concat(),
            ));
        }
    }
    if prefs.zdr == Some(true) && !e.data_policy.zdr {
        return Some((
            ExclusionReason::DataPolicyZdr,
            [&e.tag, " is not zero-data-retention"].concat(),
        ));
    }
    if prefs.data_collection == Some(DataCollection::Deny)
        && (e.data_policy.training || e.data_policy.retains_prompts)
    {
        let what = if e.data_policy.training {
            "may train on prompts"
        } else {
            "retains prompts"
        };
        return Some((
            ExclusionReason::DataPolicyTraining,
            [&e.tag, " ", what].concat(),
        ));
    }
    if let Some(qs) = &prefs.quantizations {
        let q = e.quantization.unwrap_or(Quantization::Unknown);
        if !qs.iter().any(|w| q.satisfies(*w)) {
            let mut detail = format!("quantization {} not in [", q.as_str());
            for (i, w) in qs.iter().enumerate() {
                if i > 0 {
                    detail.push_str(", ");
                }
                detail.push_str(w.as_str());
            }
            detail.push(']');
            return Some((ExclusionReason::Quantization, detail));
        }
    }
    if let Some(mp) = &prefs.max_price {
        let million = Decimal::from(1_000_000);
        let over = |name: &str, price: Decimal, limit: Decimal, unit: &str| {
            Some((
                ExclusionReason::MaxPrice,
                format!(
                    "{name} price ${}{unit} exceeds max_price.{name} ${limit}",
                    price.normalize()
                ),
            ))
        };
        if let (Some(lim), Some(l)) = (facts.max_token_price.0, mp.prompt) {
            if e.pricing.prompt > lim {
                return over("prompt", e.pricing.prompt * million, l, "/M tokens");
            }
        }
        if let (Some(lim), Some(l)) = (facts.max_token_price.1, mp.completion) {
            if e.pricing.completion > lim {
                return over("completion", e.pricing.completion * million, l, "/M tokens");
            }
        }
        let fees = [
            (
                "image",
                mp.image,
                e.pricing.image,
                Decimal::ONE,
                " per image",
            ),
            ("audio", mp.audio, e.pricing.audio, million, "/M tokens"),
            (
                "request",
                mp.request,
                e.pricing.request,
                Decimal::ONE,
                " per request",
            ),
        ];
        for (name, limit, price, scale, unit) in fees {
            if let (Some(limit), Some(price)) = (limit, price) {
                if price * scale > limit {
                    return over(name, price * scale, limit, unit);
                }
            }
        }
    }
    let out = facts.output_limit.unwrap_or(0);
    if let Some(max_out) = e.max_completion_tokens {
        if out > max_out {
            return Some((
                ExclusionReason::ContextLength,
                format!("max_tokens {out} exceeds the endpoint's output limit {max_out}"),
            ));
        }
    }
    // Saturating: a request built without validation may carry any `u64`.
    let need = facts.prompt_tokens.saturating_add(out);
    if need > e.context_length {
        return Some((
            ExclusionReason::ContextLength,
            format!(
                "about {need} tokens requested ({} prompt + {out} output) but the context is {}",
                facts.prompt_tokens, e.context_length
            ),
        ));
    }
    if let Some(max_prompt) = e.max_prompt_tokens {
        if facts.prompt_tokens > max_prompt {
            return Some((
                ExclusionReason::ContextLength,
                format!(
                    "about {} prompt tokens exceed the prompt limit {max_prompt}",
                    facts.prompt_tokens
                ),
            ));
        }
    }
    if prefs.require_parameters == Some(true) {
        let missing: Vec<&str> = facts
            .used_params
            .iter()
            .copied()
            .filter(|p| !e.supports(p))
            .collect();
        if !missing.is_empty() {
            return Some((
                ExclusionReason::RequireParameters,
                format!("does not support {missing:?}"),
            ));
        }
    }
    for m in &facts.modalities {
        let ok = match &e.input_modalities {
            Some(list) => list.iter().any(|x| x == m),
            None => model.accepts(m),
        };
        if !ok {
            return Some((
                ExclusionReason::Modality,
                format!("does not accept {m} input"),
            ));
        }
    }
    None
}

/// Parameters of the soft "default parameter preference" (§3.3): when some endpoints of a model support one of
/// these and the request uses it, endpoints without it are dropped; when none do, all stay and the parameter is
/// dropped by the dialect.
pub const PREFERRED_PARAMS: &[&str] = &[
    "tools",
    "response_format",
    "structured_outputs",
    "verbosity",
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::Catalog;
    use proptest::prelude::*;

    proptest! {
        /// The merge gives, for every endpoint of every embedded model, what a set lookup gives.
        #[test]
        fn credentialed_is_a_lookup(mask in any::<u64>(), extra in proptest::collection::vec("[a-z]{0,3}", 0..4)) {
            let cat = Catalog::embedded().map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut creds: BTreeSet<String> = cat
                .providers()
                .iter()
                .enumerate()
                .filter(|(i, _)| mask >> (i % 64) & 1 == 1)
                .map(|(_, p)| p.slug.clone())
                .collect();
            creds.extend(extra);
            for m in cat.models() {
                let Some((model, _, by_provider, _)) = cat.model_entry(&m.id) else {
                    return Err(TestCaseError::fail("model without entry"));
                };
                let got = credentialed(&creds, &model.endpoints, by_provider);
                let want: Vec<bool> = model.endpoints.iter().map(|e| creds.contains(&e.provider)).collect();
                prop_assert_eq!(got, want, "{}", m.id);
            }
        }
    }

    #[test]
    fn cmp_bytes_is_str_order() {
        let words = [
            "",
            "a",
            "ab",
            "b",
            "deepinfra",
            "deepinfra/turbo",
            "z-ai",
            "zz",
            "A",
        ];
        for a in words {
            for b in words {
                assert_eq!(cmp_bytes(a.as_bytes(), b.as_bytes()), a.cmp(b), "{a} {b}");
            }
        }
    }
}
