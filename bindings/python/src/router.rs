//! The `Router` class: one immutable router shared by every thread.

use polyroute_core::catalog::ModelFilter;
use polyroute_core::cost::{cost, CostContext};
use polyroute_core::plan::{plan, PlanContext};
use polyroute_core::{Catalog, ChatRequest, Error, Usage};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::Value;

use crate::errors::core_err;
use crate::{convert, detached};

/// An LLM router over a catalog of models and providers.
#[pyclass(frozen, module = "polyroute._polyroute")]
pub struct Router {
    catalog: Catalog,
}

#[pymethods]
impl Router {
    #[new]
    #[pyo3(signature = (catalog=None, providers=None, *, overlay=None))]
    fn new(
        py: Python<'_>,
        catalog: Option<&Bound<'_, PyAny>>,
        providers: Option<&Bound<'_, PyAny>>,
        overlay: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let _ = providers;
        let src = convert::catalog_source(catalog)?;
        let overlay = convert::overlay(overlay)?;
        let catalog = detached(py, || convert::load_catalog(src, overlay.as_ref()))
            .map_err(|e| core_err(py, &e))?;
        Ok(Self { catalog })
    }

    /// The ordered attempt plan for a request, with every exclusion and its reason.
    #[allow(clippy::too_many_arguments)] // one per Python keyword argument
    #[pyo3(signature = (request, *, seed=None, health=None, credentials=None, sticky=None, previous_model=None))]
    fn plan<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyAny>,
        seed: Option<u64>,
        health: Option<&Bound<'py, PyAny>>,
        credentials: Option<&Bound<'py, PyAny>>,
        sticky: Option<&str>,
        previous_model: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let body = convert::body(request)?;
        let health = convert::health(health)?;
        let creds = convert::credentials(credentials)?;
        let out = detached(py, || {
            let req = ChatRequest::from_value(&body)?;
            let ctx = PlanContext {
                seed: seed.unwrap_or(0),
                health: &health,
                credentials: creds.as_ref(),
                sticky,
                previous_router_model: previous_model,
            };
            plan(&self.catalog, &req, &ctx).map(|p| p.to_json())
        });
        out.map_err(|e| core_err(py, &e))
            .and_then(|v| convert::to_py(py, &v))
    }

    /// The itemized cost of `usage` on `model` (at `provider`'s price, else the model-level price).
    #[pyo3(signature = (model, usage, provider=None, *, utc_minute=None, finish_reason=None))]
    fn cost<'py>(
        &self,
        py: Python<'py>,
        model: &str,
        usage: &Bound<'py, PyAny>,
        provider: Option<&str>,
        utc_minute: Option<u16>,
        finish_reason: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let usage = convert::to_value(usage)?;
        let out = (|| -> Result<Value, Error> {
            let pricing = self.catalog.pricing_for(model, provider)?;
            let u: Usage = serde_json::from_value(usage)
                .map_err(|e| Error::invalid("usage", e.to_string()))?;
            let ctx = CostContext {
                utc_minute,
                finish_reason: Some(finish_reason.unwrap_or("stop")),
            };
            serde_json::to_value(cost(pricing, &u, ctx)).map_err(|e| Error::Internal {
                message: e.to_string(),
            })
        })();
        out.map_err(|e| core_err(py, &e))
            .and_then(|v| convert::to_py(py, &v))
    }

    /// Catalog models passing every given filter, as OpenRouter model rows.
    #[pyo3(signature = (**filters))]
    fn models<'py>(
        &self,
        py: Python<'py>,
        filters: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let f = convert::filters(filters)?;
        let rows = (|| -> Result<Vec<Value>, Error> {
            let f: ModelFilter = if f.is_null() {
                ModelFilter::default()
            } else {
                serde_json::from_value(f).map_err(|e| Error::invalid("filters", e.to_string()))?
            };
            Ok(self
                .catalog
                .filter_models(&f)
                .into_iter()
                .filter_map(|m| serde_json::to_value(m).ok())
                .collect())
        })();
        rows.map_err(|e| core_err(py, &e))
            .and_then(|r| convert::to_py_list(py, &r))
    }
}
