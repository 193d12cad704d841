//! Resolution: `model` / `models[]` strings → concrete catalog models with their routing modifiers.
//!
//! Steps for each requested string, in order:
//! 1. Router slugs (`openrouter/auto`, `openrouter/pareto-code`, `openrouter/free`) are expanded by the auto
//!    routers into concrete models (see [`crate::auto`]).
//! 2. An exact catalog id (static variants such as `:free`, `:batch`, `:thinking`, `:extended` are their own rows)
//!    or canonical slug resolves directly.
//! 3. `~author/family-latest` resolves to its `alias_target` (or, for aliases the catalog does not list, to the
//!    newest concrete model of that family).
//! 4. A dynamic variant suffix (`:nitro`, `:floor`, `:exacto`) is split off and turned into a sort override.
//! 5. Legacy spellings (`claude-3-5-sonnet` → `claude-3.5-sonnet`, letter case) are normalized and retried.
//! 6. Retired models fail with `model_deprecated` naming the current successor; a missing `:free` row of a model that
//!    exists fails with `free_variant_ended`; anything else fails with `model_not_found` and the closest slugs.

use serde::Serialize;

use crate::catalog::{Catalog, Model};
use crate::error::{Error, Result};
use crate::types::SortBy;

/// Retired slugs that tutorials still use → the `~latest` family alias whose target is their successor.
const RETIRED: &[(&str, &str)] = &[
    (
        "anthropic/claude-3.5-sonnet",
        "~anthropic/claude-sonnet-latest",
    ),
    (
        "anthropic/claude-3.5-sonnet-20240620",
        "~anthropic/claude-sonnet-latest",
    ),
    (
        "anthropic/claude-3.7-sonnet",
        "~anthropic/claude-sonnet-latest",
    ),
    ("anthropic/claude-3-opus", "~anthropic/claude-opus-latest"),
    (
        "anthropic/claude-3.5-haiku",
        "~anthropic/claude-haiku-latest",
    ),
    ("google/gemini-2.0-flash-exp", "~google/gemini-flash-latest"),
    ("google/gemini-2.0-flash-001", "~google/gemini-flash-latest"),
    ("google/gemini-pro-1.5", "~google/gemini-pro-latest"),
    ("google/gemini-flash-1.5", "~google/gemini-flash-latest"),
    ("openai/gpt-4-turbo", "~openai/gpt-latest"),
    ("openai/gpt-4", "~openai/gpt-latest"),
    ("openai/gpt-3.5-turbo", "~openai/gpt-mini-latest"),
];

/// How a requested string became a concrete model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// An exact catalog id.
    Direct,
    /// A legacy alias or canonical slug.
    Alias,
    /// A `~…-latest` alias.
    Latest,
    /// Chosen by `openrouter/auto`.
    Auto,
    /// Chosen by `openrouter/pareto-code`.
    Pareto,
    /// Chosen by `openrouter/free`.
    Free,
}

/// A dynamic variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DynamicVariant {
    /// Sort by throughput, admit `priority` tier endpoints.
    Nitro,
    /// Sort by price, admit `flex` tier endpoints.
    Floor,
    /// Quality-first ordering.
    Exacto,
}

impl DynamicVariant {
    /// The sort this variant implies.
    #[must_use]
    pub fn sort(self) -> SortBy {
        match self {
            Self::Nitro => SortBy::Throughput,
            Self::Floor => SortBy::Price,
            Self::Exacto => SortBy::Exacto,
        }
    }

    /// The service tier this variant admits.
    #[must_use]
    pub fn tier(self) -> Option<&'static str> {
        match self {
            Self::Nitro => Some("priority"),
            Self::Floor => Some("flex"),
            Self::Exacto => None,
        }
    }
}

/// One resolved model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedModel {
    /// The string as requested.
    pub requested: String,
    /// The catalog id.
    pub id: String,
    /// How it was resolved.
    pub strategy: Strategy,
    /// Dynamic variant, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<DynamicVariant>,
}

/// Split a trailing `:variant`.
fn split_variant(s: &str) -> (&str, Option<&str>) {
    match s.rsplit_once(':') {
        Some((base, v)) if !v.is_empty() && !v.contains('/') => (base, Some(v)),
        _ => (s, None),
    }
}

/// Resolve a `~author/family-latest` alias.
fn resolve_latest<'c>(catalog: &'c Catalog, slug: &str) -> Option<&'c Model> {
    if let Some(m) = catalog.model(slug) {
        if let Some(t) = &m.alias_target {
            return catalog.model(&t.slug).filter(|t| !t.is_router());
        }
    }
    let rest = slug.strip_prefix('~')?;
    let family = rest.strip_suffix("-latest")?;
    catalog
        .models()
        .iter()
        .filter(|m| !m.is_router() && !m.id.contains(':') && m.id.starts_with(family))
        .max_by(|a, b| a.created.cmp(&b.created).then_with(|| b.id.cmp(&a.id)))
}

/// Resolve one requested string (not a router slug) to a catalog model.
///
/// # Errors
/// `model_not_found`, `model_deprecated`, `free_variant_ended` or `invalid_request` (unsupported forms).
pub fn resolve_one(catalog: &Catalog, requested: &str) -> Result<ResolvedModel> {
    let requested_s = requested.trim();
    let make = |id: &str, strategy, variant| ResolvedModel {
        requested: requested.to_string(),
        id: id.to_string(),
        strategy,
        variant,
    };
    if requested_s.starts_with("@preset/") {
        return Err(Error::invalid(
            "model",
            "presets (`@preset/…`) are server-side OpenRouter settings; polyroute has none",
        ));
    }
    if let Some(m) = catalog.model(requested_s).filter(|m| !m.is_router()) {
        let strategy = if m.id == requested_s {
            Strategy::Direct
        } else {
            Strategy::Alias
        };
        return Ok(make(&m.id, strategy, None));
    }
    let (base, variant) = split_variant(requested_s);
    let dynamic = match variant {
        Some("nitro") => Some(DynamicVariant::Nitro),
        Some("floor") => Some(DynamicVariant::Floor),
        Some("exacto") => Some(DynamicVariant::Exacto),
        Some("online") => {
            return Err(Error::invalid(
                "model",
                "the :online variant (web search plugin) is not supported by polyroute; use a tool instead",
            ))
        }
        _ => None,
    };
    let lookup = if dynamic.is_some() { base } else { requested_s };
    if lookup.starts_with('~') {
        return match resolve_latest(catalog, lookup) {
            Some(m) => Ok(make(&m.id, Strategy::Latest, dynamic)),
            None => Err(not_found(catalog, requested_s)),
        };
    }
    if let Some(m) = catalog.model(lookup).filter(|m| !m.is_router()) {
        return Ok(make(&m.id, Strategy::Direct, dynamic));
    }
    let norm = crate::catalog::normalize_slug(lookup);
    if let Some(m) = catalog.model(&norm).filter(|m| !m.is_router()) {
        return Ok(make(&m.id, Strategy::Alias, dynamic));
    }
    if let Some((_, alias)) = RETIRED
        .iter()
        .find(|(s, _)| *s == norm || *s == split_variant(&norm).0)
    {
        let successor = resolve_latest(catalog, alias).map(|m| m.id.clone());
        return Err(Error::ModelDeprecated {
            slug: requested.to_string(),
            successor,
        });
    }
    if variant == Some("free") && catalog.model(base).is_some() {
        return Err(Error::FreeVariantEnded {
            slug: requested.to_string(),
            paid: base.to_string(),
        });
    }
    if catalog.model(requested_s).is_some_and(Model::is_router) {
        return Err(Error::invalid(
            "model",
            format!("{requested_s} is a router that polyroute does not implement (supported: openrouter/auto, openrouter/pareto-code, openrouter/free)"),
        ));
    }
    Err(not_found(catalog, requested_s))
}

fn not_found(catalog: &Catalog, slug: &str) -> Error {
    Error::ModelNotFound {
        slug: slug.to_string(),
        suggestions: closest(catalog, slug, 3),
    }
}

/// The `n` catalog ids closest to `slug` (see [`Catalog::closest_ids`]).
#[must_use]
pub fn closest(catalog: &Catalog, slug: &str, n: usize) -> Vec<String> {
    catalog.closest_ids(slug, n)
}

/// Whether `slug` names one of the model-choosing routers.
#[must_use]
pub fn is_router_slug(slug: &str) -> bool {
    matches!(
        slug.trim(),
        "openrouter/auto" | "openrouter/auto-beta" | "openrouter/pareto-code" | "openrouter/free"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_variants() {
        assert_eq!(split_variant("a/b:nitro"), ("a/b", Some("nitro")));
        assert_eq!(split_variant("a/b"), ("a/b", None));
    }
}
