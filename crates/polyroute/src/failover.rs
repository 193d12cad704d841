//! The one failover loop, shared by unary and streamed attempts: try the plan's attempt, retry the same endpoint
//! after an availability failure (with backoff), observe every result in the health store, forget a failed
//! sticky endpoint, and let [`Plan::next`](polyroute_core::plan::Plan::next) decide what comes next.

use std::time::{Duration, Instant};

use polyroute_core::plan::{Attempt, Next, Outcome, OutcomeClass};
use polyroute_core::providers::ProviderFailure;
use polyroute_core::Result;
use serde_json::Value;

use crate::admission::Admission;
use crate::attempt::prepare::{internal, ms};
use crate::attempt::{AttemptEnd, Driver, Served};
use crate::health::Observation;
use crate::hooks::{AttemptEvent, Event};
use crate::router::{now_ms, splitmix, Router};
use crate::secret::{scrub, scrub_value, ApiKey};
use crate::wire;

/// How the loop ended, when it did not end in an error (one value per request).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Ended<T> {
    /// An attempt succeeded.
    Served {
        attempt: Attempt,
        out: T,
        served: Served,
    },
    /// Content reached the caller, then the attempt failed.
    Broken {
        attempt: Attempt,
        failure: ProviderFailure,
        partial: Served,
        err_chunk: Option<Value>,
    },
    /// The caller went away (`partial`: what the provider produced, if it had started answering).
    Abandoned {
        attempt: Attempt,
        partial: Option<Served>,
    },
}

impl Router {
    /// Record an attempt's end: health, metrics, and the `on_attempt` hook (`n`: its 0-based index).
    fn observe(
        &self,
        (a, ad, n): (&Attempt, &Admission, u32),
        outcome: &Outcome,
        ttft_ms: Option<f64>,
        throughput: Option<f64>,
    ) {
        self.inner
            .metrics
            .attempt(&a.provider, &a.model, outcome.class.code());
        if let Some(q) = &self.inner.hooks {
            let ev = AttemptEvent {
                generation_id: ad.gen_id.clone(),
                index: n,
                model: a.model.clone(),
                provider: a.provider.clone(),
                endpoint: a.tag.clone(),
                code: outcome.class.code().to_string(),
                status: outcome.status,
                latency_ms: outcome.latency_ms,
                message: (outcome.class != OutcomeClass::Success).then(|| outcome.message.clone()),
            };
            if !q.send(Event::Attempt(ev)) {
                self.inner.metrics.hook_dropped();
            }
        }
        if let Some(t) = &ad.trace {
            let took = Duration::from_secs_f64(outcome.latency_ms.unwrap_or(0.0).max(0.0) / 1000.0);
            let started = std::time::SystemTime::now()
                .checked_sub(took)
                .unwrap_or_else(std::time::SystemTime::now);
            t.attempt(a, n, outcome, started);
        }
        let ok = outcome.class == OutcomeClass::Success;
        let outage = matches!(
            outcome.class,
            OutcomeClass::Overloaded
                | OutcomeClass::Unreachable
                | OutcomeClass::Timeout
                | OutcomeClass::RateLimited
        );
        self.inner.stores.health.record(
            &polyroute_core::health::health_key(&a.model, &a.tag),
            Observation {
                ok,
                outage,
                ttft_ms: ttft_ms.filter(|_| ok),
                throughput,
            },
        );
    }

    async fn backoff(&self, retry: u32) {
        let base = self.inner.opts.retry_backoff.as_millis() as u64;
        let cap = base.saturating_mul(1 << retry.min(10)).max(1);
        let jitter = splitmix(now_ms() as u64 ^ u64::from(retry)) % cap;
        tokio::time::sleep(Duration::from_millis(jitter)).await;
    }

    /// Every configured provider credential (pools included).
    fn secrets(&self) -> Vec<&ApiKey> {
        self.inner
            .upstreams
            .values()
            .flat_map(|u| u.key.iter().chain(u.pool.iter().flat_map(|p| p.keys())))
            .collect()
    }

    /// The credential pool of an attempt's provider, if it has one.
    fn pool_of(&self, a: &Attempt) -> Option<std::sync::Arc<crate::pool::CredentialPool>> {
        self.inner.upstreams.get(&a.provider)?.pool.clone()
    }

    /// Scrub a provider's failure (its message and its whole envelope) with every configured credential, before it
    /// reaches the plan, the health store, the ledger, a log or the caller.
    pub(crate) fn scrub_failure(&self, f: &mut ProviderFailure) {
        let keys = self.secrets();
        if keys.is_empty() {
            return;
        }
        f.outcome.message = scrub(&f.outcome.message, &keys);
        if let Some(c) = &f.outcome.provider_code {
            f.outcome.provider_code = Some(scrub(c, &keys));
        }
        scrub_value(&mut f.envelope, &keys);
    }

    /// Scrub an in-band chunk (a translator's error chunk) the same way.
    pub(crate) fn scrub_chunk(&self, v: &mut Value) {
        let keys = self.secrets();
        if !keys.is_empty() {
            scrub_value(v, &keys);
        }
    }

    async fn forget_sticky(&self, key: Option<u64>) {
        if let Some(k) = key {
            let _ = self.inner.stores.sticky.forget(k).await;
        }
    }

    /// Run the plan of `ad` with `driver` until an attempt serves, breaks after content, the caller goes away, or
    /// the plan gives up (its aggregated error).
    pub(crate) async fn failover<D: Driver>(
        &self,
        ad: &mut Admission,
        driver: &mut D,
        deadline: Instant,
    ) -> Result<Ended<D::Out>> {
        let Some(mut attempt) = ad.plan.first().cloned() else {
            return Err(internal("plan has no attempts"));
        };
        let mut tries = 0;
        let mut n: u32 = 0;
        // Pool credentials already tried on the current endpoint.
        let mut tried: Vec<usize> = Vec::new();
        loop {
            if driver.caller_gone() {
                return Ok(Ended::Abandoned {
                    attempt,
                    partial: None,
                });
            }
            let started = Instant::now();
            let pool = self.pool_of(&attempt);
            let seed = splitmix(now_ms() as u64 ^ u64::from(n));
            ad.credential = pool.as_ref().and_then(|p| {
                p.pick(
                    &attempt.model,
                    &attempt.upstream_model,
                    &tried,
                    now_ms(),
                    seed,
                )
            });
            let end = if Instant::now() >= deadline {
                AttemptEnd::Failed(wire::transport_failure(
                    OutcomeClass::Timeout,
                    0,
                    "total request timeout",
                    &attempt.provider_name,
                ))
            } else if pool.is_some() && ad.credential.is_none() {
                AttemptEnd::Failed(wire::transport_failure(
                    OutcomeClass::Auth,
                    401,
                    &format!(
                        "no credential of {} is allowed for model {}",
                        attempt.provider, attempt.model
                    ),
                    &attempt.provider_name,
                ))
            } else {
                driver.attempt(self, ad, &attempt, deadline).await
            };
            let lat = ms(started.elapsed());
            let at = n;
            n += 1;
            match end {
                AttemptEnd::Served { out, served, tput } => {
                    if let (Some(p), Some(i)) = (&pool, ad.credential) {
                        p.succeeded(i);
                    }
                    let mut ok = Outcome::success(200);
                    ok.latency_ms = Some(lat);
                    self.observe((&attempt, ad, at), &ok, served.ttft_ms, tput);
                    let _ = ad.plan.next(&ok);
                    return Ok(Ended::Served {
                        attempt,
                        out,
                        served,
                    });
                }
                AttemptEnd::Broken {
                    mut failure,
                    partial,
                    mut err_chunk,
                } => {
                    self.scrub_failure(&mut failure);
                    if let Some(c) = err_chunk.as_mut() {
                        self.scrub_chunk(c);
                    }
                    failure.outcome.latency_ms = Some(lat);
                    self.observe((&attempt, ad, at), &failure.outcome, None, None);
                    let _ = ad.plan.next(&failure.outcome);
                    return Ok(Ended::Broken {
                        attempt,
                        failure,
                        partial,
                        err_chunk,
                    });
                }
                AttemptEnd::Abandoned(partial) => {
                    return Ok(Ended::Abandoned { attempt, partial });
                }
                AttemptEnd::Failed(mut f) => {
                    self.scrub_failure(&mut f);
                    f.outcome.latency_ms = Some(lat);
                    self.observe((&attempt, ad, at), &f.outcome, None, None);
                    // A pool rotates on 401, 403 and 429: the next credential of this endpoint first.
                    if let (Some(p), Some(i)) = (&pool, ad.credential) {
                        if p.failed(i, f.outcome.status, f.outcome.retry_after, now_ms()) {
                            tried.push(i);
                            let next = p.pick(
                                &attempt.model,
                                &attempt.upstream_model,
                                &tried,
                                now_ms(),
                                seed,
                            );
                            if next.is_some() && Instant::now() < deadline {
                                continue;
                            }
                        }
                    }
                    let availability = f.outcome.class.is_availability();
                    if availability
                        && tries < self.inner.opts.same_endpoint_retries
                        && Instant::now() < deadline
                    {
                        tries += 1;
                        ad.waited.time(self.backoff(tries)).await;
                        continue;
                    }
                    tries = 0;
                    if availability {
                        self.forget_sticky(ad.sticky_key).await;
                    }
                    match ad.plan.next(&f.outcome) {
                        Next::Try(a) => {
                            self.inner.metrics.fallback(&attempt.provider);
                            tried.clear();
                            attempt = a;
                        }
                        Next::Fail(e) => return Err(e),
                        Next::Done => return Err(internal("plan reported done after a failure")),
                    }
                }
            }
        }
    }
}
