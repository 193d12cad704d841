//! Azure OpenAI and Azure AI Foundry: which API a provider speaks, its base URL from the resource name, the
//! deployment of each model, and the Entra ID token that replaces the `api-key` header.

use std::collections::HashMap;

use polyroute_core::catalog::ProviderInfo;
use polyroute_core::providers::azure::AzureApi;
use polyroute_core::providers::Dialect;
use polyroute_core::{Error, Result};

use crate::config::ProviderSettings;
use crate::secret::ApiKey;

/// The `api-version` of the Foundry models API when none is configured.
pub(crate) const FOUNDRY_API_VERSION: &str = "2024-05-01-preview";

/// The placeholder host of the catalog's Azure base URL: a provider still pointing there is not configured.
const PLACEHOLDER: &str = "YOUR-RESOURCE";

/// How one Azure provider is reached.
#[derive(Debug, Clone)]
pub(crate) struct AzureTarget {
    pub api: AzureApi,
    pub api_version: Option<String>,
    deployment: Option<String>,
    deployments: HashMap<String, String>,
    /// Entra ID access token (sent as a bearer token instead of the `api-key` header).
    pub ad_token: Option<ApiKey>,
}

impl AzureTarget {
    /// The deployment serving catalog model `model` (upstream id `upstream`): `deployments[model]`, then
    /// `deployments[upstream]`, then `deployment`, then `upstream` itself.
    pub fn deployment_for<'a>(&'a self, model: &str, upstream: &'a str) -> &'a str {
        self.deployments
            .get(model)
            .or_else(|| self.deployments.get(upstream))
            .or(self.deployment.as_ref())
            .map_or(upstream, String::as_str)
    }

    /// The chat completions path of `deployment`, with the `api-version` query when the API takes one.
    pub fn chat_path(&self, deployment: &str) -> String {
        polyroute_core::providers::azure::chat_path(
            self.api,
            deployment,
            self.api_version.as_deref(),
        )
    }
}

/// The Azure target of a provider (None for other dialects), its base URL when the settings give one (a
/// `resource`), and what is missing when the provider cannot be reached (no `resource`, no `base_url` and the
/// catalog's placeholder URL).
///
/// # Errors
/// Azure settings on a provider of another dialect, an unknown `azure_api`, or a resource name that is not a
/// DNS label.
pub(crate) fn resolve(
    p: &ProviderInfo,
    s: &ProviderSettings,
) -> Result<(Option<AzureTarget>, Option<String>, Option<String>)> {
    let a = &s.azure;
    if p.dialect != Dialect::AzureOpenAi {
        if a.is_empty() {
            return Ok((None, None, None));
        }
        return Err(Error::invalid(
            "providers",
            format!(
                "{}: resource, deployment(s), api_version, azure_api and azure_ad_token apply to Azure \
                 providers (dialect azure-openai) only; {} speaks {}",
                p.slug, p.slug, p.dialect
            ),
        ));
    }
    let api = match (a.api.as_deref().map(str::trim), &a.api_version) {
        (None | Some("openai" | "azure-openai" | ""), None) => AzureApi::V1,
        (None | Some("openai" | "azure-openai" | ""), Some(_)) => AzureApi::Deployments,
        (Some("foundry" | "ai-foundry" | "models"), _) => AzureApi::Foundry,
        (Some(other), _) => {
            return Err(Error::invalid(
                "providers",
                format!(
                    "{}: azure_api {other:?} is not one of openai, foundry",
                    p.slug
                ),
            ))
        }
    };
    let api_version = match (api, &a.api_version) {
        (_, Some(v)) if !v.trim().is_empty() => Some(v.trim().to_string()),
        (AzureApi::Foundry, _) => Some(FOUNDRY_API_VERSION.to_string()),
        _ => None,
    };
    let base = match a.resource.as_deref().map(str::trim) {
        Some(r) if !r.is_empty() => {
            if !r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(Error::invalid(
                    "providers",
                    format!(
                        "{}: resource {r:?} is not an Azure resource name (letters, digits and '-'); give a \
                         full URL as base_url",
                        p.slug
                    ),
                ));
            }
            Some(api.base_url(r))
        }
        _ => None,
    };
    let missing = (base.is_none()
        && s.base_url.as_deref().is_none_or(|u| u.trim().is_empty())
        && p.base_url.contains(PLACEHOLDER))
    .then(|| {
        "the Azure resource is not configured: set `resource` (the NAME in https://NAME.openai.azure.com) \
         or `base_url`"
            .to_string()
    });
    let target = AzureTarget {
        api,
        api_version,
        deployment: a.deployment.clone().filter(|d| !d.trim().is_empty()),
        deployments: a.deployments.iter().cloned().collect(),
        ad_token: a.ad_token.clone().filter(|t| !t.is_empty()),
    };
    Ok((Some(target), base, missing))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::config::AzureSettings;

    fn info(dialect: Dialect) -> ProviderInfo {
        ProviderInfo {
            slug: "azure".into(),
            name: "Azure".into(),
            dialect,
            base_url: "https://YOUR-RESOURCE.openai.azure.com/openai/v1".into(),
            api_key_env: None,
        }
    }

    fn with(a: AzureSettings) -> ProviderSettings {
        ProviderSettings::default().azure(a)
    }

    #[test]
    fn api_base_and_missing_settings() {
        let p = info(Dialect::AzureOpenAi);
        let (t, base, missing) = resolve(&p, &ProviderSettings::default()).unwrap();
        assert_eq!(t.unwrap().api, AzureApi::V1);
        assert_eq!(base, None);
        assert!(missing.unwrap().contains("resource"));

        let s = with(AzureSettings {
            resource: Some("contoso".into()),
            api_version: Some("2024-10-21".into()),
            deployment: Some("prod".into()),
            deployments: vec![("openai/gpt-4o".into(), "gpt4o-eu".into())],
            ..AzureSettings::default()
        });
        let (t, base, missing) = resolve(&p, &s).unwrap();
        let t = t.unwrap();
        assert_eq!(t.api, AzureApi::Deployments);
        assert_eq!(
            base.as_deref(),
            Some("https://contoso.openai.azure.com/openai")
        );
        assert_eq!(missing, None);
        assert_eq!(t.deployment_for("openai/gpt-4o", "gpt-4o"), "gpt4o-eu");
        assert_eq!(t.deployment_for("x/y", "y"), "prod");
        assert_eq!(
            t.chat_path("prod"),
            "/deployments/prod/chat/completions?api-version=2024-10-21"
        );

        let foundry = with(AzureSettings {
            api: Some("foundry".into()),
            ..AzureSettings::default()
        })
        .base_url("http://127.0.0.1:9/models");
        let (t, _, missing) = resolve(&p, &foundry).unwrap();
        let t = t.unwrap();
        assert_eq!(missing, None);
        assert_eq!(t.deployment_for("x/y", "y"), "y");
        assert_eq!(
            t.chat_path("y"),
            format!("/chat/completions?api-version={FOUNDRY_API_VERSION}")
        );
    }

    #[test]
    fn refuses_bad_settings() {
        let p = info(Dialect::AzureOpenAi);
        for a in [
            AzureSettings {
                api: Some("classic".into()),
                ..AzureSettings::default()
            },
            AzureSettings {
                resource: Some("contoso.openai.azure.com/x".into()),
                ..AzureSettings::default()
            },
        ] {
            assert!(resolve(&p, &with(a)).is_err());
        }
        let other = info(Dialect::OpenAi);
        let a = AzureSettings {
            deployment: Some("d".into()),
            ..AzureSettings::default()
        };
        assert!(resolve(&other, &with(a)).is_err());
        assert!(resolve(&other, &ProviderSettings::default()).is_ok());
    }
}
