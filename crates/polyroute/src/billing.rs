//! Billing, the last step of every generation: cost → [`GenerationRecord`] → ledger → the reservation committed
//! with the cost → sticky endpoint remembered → the `usage` JSON with `cost`.

use std::time::Instant;

use polyroute_core::cost::{self, CostContext};
use polyroute_core::plan::{Attempt, OutcomeClass};
use polyroute_core::resolve::Strategy;
use polyroute_core::types::ChatRequest;
use polyroute_core::{Result, Usage};
use serde_json::{json, Value};

use crate::admission::Admission;
use crate::attempt::prepare::ms;
use crate::attempt::Served;
use crate::config::RequestContext;
use crate::hooks::Event;
use crate::ledger::{CostDetails, GenerationRecord};
use crate::router::{utc_minute, Router};

/// How a generation ended, for its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The answer ended normally (or in-band with an error after content).
    Complete,
    /// The caller went away first.
    Cancelled,
}

/// The usage to bill for an answer that did not end normally: the provider's usage so far; when it reported no
/// completion tokens although content was relayed, one token per relayed chunk (at most the request's output
/// limit), and the request's prompt estimate when it reported no prompt tokens. So a stream cut after content
/// is billed for it (the zero-completion waiver is for answers without content).
fn usage_so_far(served: &Served, req: &ChatRequest, default_out: u64) -> Usage {
    let mut u = served.usage;
    if u.completion_tokens == 0 && served.relayed > 0 {
        let cap = req.output_limit().unwrap_or(default_out).max(1);
        u.completion_tokens = served.relayed.min(cap);
        if u.prompt_tokens == 0 {
            u.prompt_tokens = req.estimate_prompt_tokens();
        }
        u.total_tokens = u.prompt_tokens + u.completion_tokens;
    }
    u
}

/// What [`Router::bill`] billed: the usage and its cost.
pub(crate) struct Billed {
    pub usage: Usage,
    pub cost: cost::CostBreakdown,
}

impl Billed {
    /// The answer's `usage` object: the usage with `cost` and `cost_details`.
    pub fn to_value(&self) -> Value {
        let mut usage = serde_json::to_value(self.usage).unwrap_or(Value::Null);
        usage["cost"] = json!(cost::usd(self.cost.total));
        usage["cost_details"] = self.cost.openrouter_details();
        usage
    }

    /// [`Billed::to_value`] written as JSON text (the same bytes serializing it gives).
    pub fn write_json(&self, buf: &mut Vec<u8>) {
        // Writing into a `Vec` cannot fail, nor can serializing these plain numbers; the keys are plain ASCII.
        write_usage_fields(buf, &self.usage);
        buf.extend_from_slice(b",\"cost\":");
        let _ = serde_json::to_writer(&mut *buf, &cost::usd(self.cost.total));
        buf.extend_from_slice(b",\"cost_details\":{");
        for (i, (k, v)) in self.cost.openrouter_detail_fields().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.push(b'"');
            buf.extend_from_slice(k.as_bytes());
            buf.extend_from_slice(b"\":");
            let _ = serde_json::to_writer(&mut *buf, &v);
        }
        buf.extend_from_slice(b"}}");
    }
}

/// `{` and the fields of `usage` as its `Serialize` writes them (zeros left out where it leaves them out), without
/// the closing brace.
fn write_usage_fields(buf: &mut Vec<u8>, u: &Usage) {
    fn num(buf: &mut Vec<u8>, key: &str, n: u64) {
        buf.push(b'"');
        buf.extend_from_slice(key.as_bytes());
        buf.extend_from_slice(b"\":");
        buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }
    let (p, c) = (&u.prompt_tokens_details, &u.completion_tokens_details);
    buf.push(b'{');
    num(buf, "prompt_tokens", u.prompt_tokens);
    buf.push(b',');
    num(buf, "completion_tokens", u.completion_tokens);
    buf.push(b',');
    num(buf, "total_tokens", u.total_tokens);
    buf.extend_from_slice(b",\"prompt_tokens_details\":{");
    num(buf, "cached_tokens", p.cached_tokens);
    buf.push(b',');
    num(buf, "cache_write_tokens", p.cache_write_tokens);
    for (k, n) in [
        ("cache_write_1h_tokens", p.cache_write_1h_tokens),
        ("audio_tokens", p.audio_tokens),
    ] {
        if n != 0 {
            buf.push(b',');
            num(buf, k, n);
        }
    }
    buf.extend_from_slice(b"},\"completion_tokens_details\":{");
    num(buf, "reasoning_tokens", c.reasoning_tokens);
    for (k, n) in [
        ("image_tokens", c.image_tokens),
        ("audio_tokens", c.audio_tokens),
    ] {
        if n != 0 {
            buf.push(b',');
            num(buf, k, n);
        }
    }
    buf.push(b'}');
    for (k, n, skip) in [
        ("images", u.images, 0),
        ("web_search_requests", u.web_search_requests, 0),
        ("requests", u.requests, 1),
    ] {
        if n != skip {
            buf.push(b',');
            num(buf, k, n);
        }
    }
}

impl Router {
    /// Bill `served` (attempt `a` of `ad`): the record, the reservation committed, the sticky endpoint; returns
    /// what was billed (its `usage` object with `cost` and `cost_details`: [`Billed`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn bill(
        &self,
        ad: &mut Admission,
        a: &Attempt,
        served: &Served,
        req: &ChatRequest,
        streamed: bool,
        ending: Ending,
        ctx: &RequestContext,
        t0: Instant,
    ) -> Result<Billed> {
        let partial = ending == Ending::Cancelled || served.finish.as_deref() == Some("error");
        let usage = if partial {
            usage_so_far(served, req, self.inner.opts.limits.default_output_estimate)
        } else {
            served.usage
        };
        let finish = match ending {
            Ending::Cancelled => served
                .finish
                .clone()
                .or_else(|| (usage.completion_tokens > 0).then(|| "cancelled".to_string())),
            Ending::Complete => served.finish.clone(),
        };
        let b = cost::cost(
            &a.pricing,
            &usage,
            CostContext {
                utc_minute: Some(utc_minute()),
                finish_reason: finish.as_deref(),
            },
        );
        let rec = GenerationRecord {
            id: ad.gen_id.clone(),
            created_ms: ad.created_ms,
            model: a.model.clone(),
            provider: a.provider.clone(),
            provider_name: a.provider_name.clone(),
            endpoint: a.tag.clone(),
            streamed,
            usage,
            cost: b.total,
            cost_details: CostDetails::Breakdown(b.clone()),
            finish_reason: finish,
            // The plan's records are read again only by the `openrouter_metadata` block: moved, not copied,
            // when it was not asked for.
            attempts: if ctx.metadata {
                ad.plan.records().to_vec()
            } else {
                ad.plan.take_records()
            },
            app_referer: ctx.http_referer.clone(),
            app_title: ctx.title.clone(),
            user: ctx.user.clone(),
            free: ad.free,
            latency_ms: ms(t0.elapsed()),
            ttft_ms: served.ttft_ms,
            dropped_params: served.dropped.clone(),
            cancelled: ending == Ending::Cancelled,
            session_id: req.session_id.clone().or_else(|| ctx.session_id.clone()),
            overhead_ms: Some(ad.waited.overhead_ms(t0.elapsed())),
            api_type: ad.api_type,
        };
        self.inner.metrics.generation(&rec);
        if let Some(t) = &ad.trace {
            t.generation(&rec);
        }
        let hook_copy = self.inner.hooks.as_ref().map(|q| (q, rec.clone()));
        let stores = &self.inner.stores;
        // The record first: a cost is counted only for a recorded generation. A failed insert releases the hold
        // (the reservation is dropped) and fails the request. When the ledger keeps the budget too (one SQLite
        // file), the record and its settle are one write, so a crash cannot keep one without the other.
        let settle_later = match ad.reservation.take() {
            Some(r) if stores.ledger.settles_with(r.budget()) => {
                stores
                    .ledger
                    .insert_settled(rec, r.settle_order(b.total))
                    .await?;
                r.settled_with_record();
                None
            }
            // A budget in another store is settled after the answer: the ledger notes the settle with the
            // record, so a process killed before the budget answered leaves it for `Router::sweep_settles`.
            Some(r) if r.budget().is_remote() => {
                let noted = stores
                    .ledger
                    .insert_noting_settle(rec, &r.settle_order(b.total))
                    .await?;
                Some((r, noted.then(|| stores.ledger.clone())))
            }
            r => {
                stores.ledger.insert(rec).await?;
                r.map(|r| (r, None))
            }
        };
        if let Some((q, rec)) = hook_copy {
            if !q.send(Event::Generation(Box::new(rec))) {
                self.inner.metrics.hook_dropped();
            }
        }
        // The settle never fails the request once the record exists: with a remote budget it runs after the
        // answer, and one that fails is retried until the store answers (see `Reservation::commit_or_retry`).
        if let Some((r, noted)) = settle_later {
            r.commit_or_retry(b.total, &self.inner.settles, noted).await;
        }
        if let Some(k) = ad.sticky_key {
            let (sticky, tag, ttl) = (
                stores.sticky.clone(),
                a.tag.clone(),
                self.inner.opts.sticky_ttl,
            );
            // A conversation's first answer (or one served elsewhere than its sticky endpoint) sets where its
            // next turn goes: written before the answer, so a next turn sent at once to any replica finds it.
            // Otherwise the write only renews the entry's life.
            let renews = ad.sticky_found.as_deref() == Some(a.tag.as_str());
            if sticky.is_remote() && renews {
                // After the answer, in the same write as the settle (one multiplexed connection).
                self.inner.settles.spawn(async move {
                    let _ = sticky.put(k, &tag, ttl).await;
                });
            } else {
                let _ = sticky.put(k, &tag, ttl).await;
            }
        }
        Ok(Billed { usage, cost: b })
    }

    /// The `openrouter_metadata` block (opt-in: `X-OpenRouter-Metadata: enabled`, in-process the `metadata`
    /// request option), in OpenRouter's shape: `requested` (the model string asked for), `strategy` (OpenRouter's
    /// `RoutingStrategy`: `direct`, `alias`, `latest`, `auto`, `free`, `pareto`, or `fallback` when a later model
    /// of `models` served), `summary`, `attempt` (1-indexed attempt that served; the number of attempts when none
    /// did), `attempts[] {provider, model, status}`, `endpoints {total, available[] {provider, model, selected}}`,
    /// `is_byok`, `region` (null), `generation_time` (ms), and for router models (`openrouter/auto` …) a `pipeline`
    /// stage with the router's decision. polyroute's own details ride along under names
    /// OpenRouter does not use: `generation_id`, `provider_order` (how endpoints were ordered), per attempt
    /// `endpoint`, `code`, `latency_ms`, `retry_after`, and `dropped_params`.
    pub(crate) fn metadata(
        ad: &Admission,
        served: Option<&Attempt>,
        dropped: &[String],
        t0: Instant,
    ) -> Value {
        let generation_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
        let plan = &ad.plan;
        let records = plan.records();
        let requested = plan.requested_models.first().cloned().unwrap_or_default();
        let strategy = match served {
            Some(a) if a.model_index > 0 => "fallback",
            _ => plan.models.first().map_or("direct", |m| match m.strategy {
                Strategy::Direct => "direct",
                Strategy::Alias => "alias",
                Strategy::Latest => "latest",
                Strategy::Auto => "auto",
                Strategy::Pareto => "pareto",
                Strategy::Free => "free",
            }),
        };
        let attempt = records
            .iter()
            .position(|r| r.class == OutcomeClass::Success)
            .map_or(records.len(), |i| i + 1);
        let summary = match served {
            Some(a) => format!(
                "{requested} -> {} via {} (attempt {attempt} of {} planned, {strategy})",
                a.model,
                a.provider,
                plan.attempts.len()
            ),
            None => format!(
                "{requested}: no endpoint served ({} attempts)",
                records.len()
            ),
        };
        let available: Vec<Value> = plan
            .attempts
            .iter()
            .map(|x| {
                json!({"provider": x.provider, "model": x.model,
                       "selected": served.is_some_and(|a| a.tag == x.tag && a.model == x.model)})
            })
            .collect();
        let mut out = json!({
            "requested": requested,
            "strategy": strategy,
            "summary": summary,
            "attempt": attempt,
            "attempts": records.iter().map(|r| json!({
                "provider": r.provider, "model": r.model, "status": r.status,
                "endpoint": r.endpoint, "code": r.class.code(), "latency_ms": r.latency_ms,
                "retry_after": r.retry_after})).collect::<Vec<_>>(),
            "endpoints": {"total": available.len(), "available": available},
            "is_byok": false,
            "region": null,
            "generation_time": generation_ms,
            "generation_id": ad.gen_id,
            "provider_order": plan.strategy,
            "dropped_params": dropped,
        });
        // A router model's decision (task type, tier, candidate models) as OpenRouter's plugin pipeline stage.
        if let Some(decision) = &plan.router {
            let name = match strategy {
                "pareto" => "pareto-router",
                "free" => "free-router",
                _ => "auto-router",
            };
            out["pipeline"] = json!([{"type": "plugin", "name": name, "data": decision}]);
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use polyroute_core::types::{CompletionTokensDetails, PromptTokensDetails};
    use rust_decimal::Decimal;

    /// The usage text is what serializing the `Value` gives, for zero and non-zero optional fields.
    #[test]
    fn usage_text_matches_the_value() {
        for i in 0u64..64 {
            let bit = |b: u64| if i & (1 << b) != 0 { 3 + b } else { 0 };
            let usage = Usage {
                prompt_tokens: 10 + i,
                completion_tokens: i,
                total_tokens: 10 + 2 * i,
                prompt_tokens_details: PromptTokensDetails {
                    cached_tokens: bit(0),
                    cache_write_tokens: 1,
                    cache_write_1h_tokens: bit(1),
                    audio_tokens: bit(2),
                },
                completion_tokens_details: CompletionTokensDetails {
                    reasoning_tokens: 0,
                    image_tokens: bit(3),
                    audio_tokens: bit(4),
                },
                images: bit(5),
                web_search_requests: bit(1),
                requests: if i % 3 == 0 { 1 } else { i },
            };
            let cost = cost::CostBreakdown {
                total: Decimal::new(15 + i as i64, 7),
                prompt: Decimal::new(5, 7),
                completion: Decimal::new(10 + i as i64, 7),
                web_search: Decimal::new(i as i64 % 2, 2),
                ..cost::CostBreakdown::default()
            };
            let b = Billed { usage, cost };
            let mut text = Vec::new();
            b.write_json(&mut text);
            assert_eq!(
                String::from_utf8(text).unwrap(),
                serde_json::to_string(&b.to_value()).unwrap(),
                "case {i}"
            );
        }
    }
}
