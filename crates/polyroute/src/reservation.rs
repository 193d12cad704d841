//! [`Reservation`]: the only way the engine holds money. Admission places it; billing commits it with the actual
//! cost; dropping it uncommitted (a cancelled task, a caller's timeout, a failed request) releases the hold.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use polyroute_core::Result;
use rust_decimal::Decimal;

use crate::state::{
    Budget, HoldRequest, Ledger, Refusal, ReservationId, Reserved, Scope, SettleOrder,
};

/// A hold on a [`Budget`] over one request's scopes. Commit it with [`Reservation::commit`]; dropping it
/// uncommitted releases the hold (at once for stores that can, else on a task spawned on the runtime the hold
/// was placed from; a hold whose release never runs expires after its TTL).
pub struct Reservation {
    budget: Arc<dyn Budget>,
    id: ReservationId,
    scopes: Vec<Scope>,
    amount: Decimal,
    rt: Option<tokio::runtime::Handle>,
    /// Whether a hold was placed (none is when no scope has a limit: there is nothing to refuse or release, and
    /// the commit alone counts the spend).
    placed: bool,
    done: bool,
    /// The router's background work, which counts a release spawned on drop ([`Reservation::counted_by`]).
    settles: Option<Arc<Settles>>,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("id", &self.id)
            .field("scopes", &self.scopes)
            .field("amount", &self.amount)
            .finish_non_exhaustive()
    }
}

impl Reservation {
    /// Place `req` on `budget`: the guard, or the refusal.
    ///
    /// # Errors
    /// The store failed.
    pub async fn place(
        budget: Arc<dyn Budget>,
        req: HoldRequest,
    ) -> Result<std::result::Result<Reservation, Refusal>> {
        if req.scopes.iter().all(|s| s.limit.is_none()) {
            return Ok(Ok(Reservation {
                budget,
                id: req.id,
                scopes: req.scopes.into_iter().map(|s| s.scope).collect(),
                amount: req.amount,
                rt: None,
                placed: false,
                done: false,
                settles: None,
            }));
        }
        match budget.reserve(&req).await? {
            Reserved::Refused(r) => Ok(Err(r)),
            Reserved::Held => Ok(Ok(Reservation {
                budget,
                id: req.id,
                scopes: req.scopes.into_iter().map(|s| s.scope).collect(),
                amount: req.amount,
                rt: tokio::runtime::Handle::try_current().ok(),
                placed: true,
                done: false,
                settles: None,
            })),
        }
    }

    /// A release this reservation spawns when dropped uncommitted is background work of `settles` (so a
    /// stopping gateway waits for it, as for a settle, and the hold does not outlive the process until its TTL).
    #[must_use]
    pub(crate) fn counted_by(mut self, settles: &Arc<Settles>) -> Self {
        self.settles = Some(settles.clone());
        self
    }

    /// The id (the generation id).
    #[must_use]
    pub fn id(&self) -> &ReservationId {
        &self.id
    }

    /// The amount held.
    #[must_use]
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// The budget the hold is on.
    #[must_use]
    pub fn budget(&self) -> &dyn Budget {
        &*self.budget
    }

    /// The settle that commits this reservation with `billed`, for a ledger that writes it with the record
    /// ([`Ledger::insert_settled`](crate::state::Ledger::insert_settled)); mark it done with
    /// [`Reservation::settled_with_record`] once that write succeeded.
    #[must_use]
    pub fn settle_order(&self, billed: Decimal) -> SettleOrder {
        SettleOrder {
            id: self.id.clone(),
            scopes: self.scopes.clone(),
            billed,
        }
    }

    /// The reservation was settled with its record: nothing is left to release.
    pub fn settled_with_record(mut self) {
        self.done = true;
    }

    /// End the hold and add `billed` to the spend of every scope. Idempotent in the store (by id).
    ///
    /// # Errors
    /// The store failed (the hold then expires after its TTL; the cost is not counted).
    pub async fn commit(mut self, billed: Decimal) -> Result<()> {
        self.done = true;
        self.budget
            .settle(&self.id, &self.scopes, Some(billed))
            .await
            .map(|_| ())
    }
}

/// Settles this router handed to the background (after the answer, or after a failed settle), and the releases
/// of holds whose requests were dropped before billing, so readers of the spend and a stopping gateway can wait
/// for them ([`Settles::wait`]).
#[derive(Debug, Default)]
pub(crate) struct Settles {
    pending: AtomicUsize,
    idle: tokio::sync::Notify,
    /// Settles noted in the ledger that landed, to forget there in the next batch.
    landed: std::sync::Mutex<Vec<ReservationId>>,
}

/// How long landed settles gather before their notes are forgotten in one ledger write.
const LANDED_BATCH: Duration = Duration::from_millis(100);

impl Settles {
    /// Until no background settle is pending, or `max` passed.
    pub(crate) async fn wait(&self, max: Duration) {
        let deadline = tokio::time::Instant::now() + max;
        loop {
            let idle = self.idle.notified();
            if self.pending.load(Ordering::Acquire) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return;
            }
        }
    }

    fn done(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// One more piece of background work, done when the guard is dropped (also when its task is dropped
    /// unrun, as a runtime that stops drops it).
    fn start(self: &Arc<Self>) -> Counted {
        self.pending.fetch_add(1, Ordering::AcqRel);
        Counted(self.clone())
    }

    /// Run `work` on a task of its own as background work of the request that [`Settles::wait`] waits for
    /// (a sticky write sent after the answer).
    pub(crate) fn spawn(
        self: &Arc<Self>,
        work: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        let me = self.clone();
        tokio::spawn(async move {
            work.await;
            me.done();
        });
    }

    /// `id`'s settle, noted in `ledger` with its record, reached the budget: forget the note. The ids gather for
    /// [`LANDED_BATCH`] and are forgotten in one write, by a task counted as background work. A note whose
    /// forgetting fails stays for the sweep, which applies it again (a no-op: budgets settle once per id).
    fn landed(self: &Arc<Self>, id: ReservationId, ledger: Arc<dyn Ledger>) {
        let first = {
            let mut ids = self
                .landed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            ids.push(id);
            ids.len() == 1
        };
        if first {
            let me = self.clone();
            self.spawn(async move {
                tokio::time::sleep(LANDED_BATCH).await;
                let ids = std::mem::take(
                    &mut *me
                        .landed
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                );
                if let Err(e) = ledger.settles_landed(&ids).await {
                    tracing::warn!(error = %e, n = ids.len(),
                                   "cannot forget landed settles in the ledger; the sweep will");
                }
            });
        }
    }

    /// Background settles pending now.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }
}

/// How long a settle that keeps failing is retried (the store's settled markers live a day).
const SETTLE_RETRY_FOR: Duration = Duration::from_secs(3_600);

impl Reservation {
    /// [`Reservation::commit`] that never fails the request: with a remote budget ([`Budget::is_remote`]) the
    /// settle runs on a task (off the request path); with a local one it runs here. A settle that fails is
    /// retried on a task with backoff (50 ms doubling to 2 s, for up to an hour) until the store answers:
    /// settles are idempotent by id, so a retry never bills twice, and the hold keeps counting against the
    /// limits until the settle lands, so no limit is exceeded meanwhile.
    ///
    /// `noted`: the ledger that noted this settle with its record ([`Ledger::insert_noting_settle`]), told once it
    /// landed.
    pub(crate) async fn commit_or_retry(
        mut self,
        billed: Decimal,
        settles: &Arc<Settles>,
        noted: Option<Arc<dyn Ledger>>,
    ) {
        self.done = true;
        let (budget, id, scopes) = (
            self.budget.clone(),
            self.id.clone(),
            std::mem::take(&mut self.scopes),
        );
        if !budget.is_remote() {
            match budget.settle(&id, &scopes, Some(billed)).await {
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(error = %e, id = %id, "settle failed; retrying in the background")
                }
            }
        }
        settles.pending.fetch_add(1, Ordering::AcqRel);
        let settles = settles.clone();
        let task = async move {
            let t0 = tokio::time::Instant::now();
            let mut wait = Duration::from_millis(50);
            let mut logged = false;
            loop {
                match budget.settle(&id, &scopes, Some(billed)).await {
                    Ok(_) => {
                        if logged {
                            tracing::warn!(id = %id, "deferred settle applied");
                        }
                        if let Some(ledger) = noted {
                            settles.landed(id.clone(), ledger);
                        }
                        break;
                    }
                    Err(e) if t0.elapsed() < SETTLE_RETRY_FOR => {
                        if !logged {
                            tracing::warn!(error = %e, id = %id, "settle failed; retrying");
                            logged = true;
                        }
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(2));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, id = %id, cost = %billed,
                                        "settle abandoned: the spend is in the ledger, not in the budget");
                        break;
                    }
                }
            }
            settles.done();
        };
        match self
            .rt
            .clone()
            .or_else(|| tokio::runtime::Handle::try_current().ok())
        {
            Some(rt) => {
                rt.spawn(task);
            }
            None => task.await,
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.done || !self.placed || self.budget.release_now(&self.id) {
            return;
        }
        let (budget, id, scopes) = (
            self.budget.clone(),
            self.id.clone(),
            std::mem::take(&mut self.scopes),
        );
        if let Some(rt) = &self.rt {
            let counted = self.settles.as_ref().map(Settles::start);
            rt.spawn(async move {
                let _ = budget.settle(&id, &scopes, None).await;
                drop(counted);
            });
        }
    }
}

/// A piece of background work counted in [`Settles`] until this is dropped.
struct Counted(Arc<Settles>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.done();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::state::memory::MemoryBudget;
    use crate::state::{BoxFut, ScopeLimit};

    /// A memory budget whose settles wait for a permit of `gate` (so a release can be held in flight), and which
    /// never releases synchronously (as a remote store).
    struct Gated {
        inner: MemoryBudget,
        gate: tokio::sync::Semaphore,
    }

    impl Default for Gated {
        fn default() -> Self {
            Self {
                inner: MemoryBudget::default(),
                gate: tokio::sync::Semaphore::new(0),
            }
        }
    }

    impl Budget for Gated {
        fn reserve(&self, req: &HoldRequest) -> BoxFut<'_, Result<Reserved>> {
            self.inner.reserve(req)
        }
        fn settle(
            &self,
            id: &ReservationId,
            scopes: &[Scope],
            billed: Option<Decimal>,
        ) -> BoxFut<'_, Result<bool>> {
            let (id, scopes) = (id.clone(), scopes.to_vec());
            Box::pin(async move {
                self.gate.acquire().await.expect("gate").forget();
                self.inner.settle(&id, &scopes, billed).await
            })
        }
        fn spent(&self, scope: &Scope) -> BoxFut<'_, Result<Decimal>> {
            self.inner.spent(scope)
        }
        fn held(&self, scope: &Scope) -> BoxFut<'_, Result<Decimal>> {
            self.inner.held(scope)
        }
    }

    fn hold(id: &str) -> HoldRequest {
        HoldRequest {
            id: ReservationId(id.into()),
            amount: Decimal::ONE,
            scopes: vec![ScopeLimit {
                scope: Scope::Router,
                limit: Some(Decimal::TEN),
            }],
            ttl: Duration::from_secs(600),
        }
    }

    #[tokio::test]
    async fn a_release_on_drop_is_background_work_a_stop_waits_for() {
        let budget = Arc::new(Gated::default());
        let settles = Arc::new(Settles::default());
        let r = Reservation::place(budget.clone(), hold("gen-a"))
            .await
            .unwrap()
            .expect("held")
            .counted_by(&settles);
        assert_eq!(budget.held(&Scope::Router).await.unwrap(), Decimal::ONE);
        // Dropped uncommitted (a cancelled request): the release is spawned, and counted until it ran.
        drop(r);
        assert_eq!(settles.pending(), 1);
        settles.wait(Duration::from_millis(100)).await;
        assert_eq!(
            settles.pending(),
            1,
            "the wait returned with the release pending"
        );
        budget.gate.add_permits(1);
        settles.wait(Duration::from_secs(5)).await;
        assert_eq!(settles.pending(), 0);
        assert_eq!(budget.held(&Scope::Router).await.unwrap(), Decimal::ZERO);
    }

    #[test]
    fn a_release_dropped_with_its_runtime_is_no_longer_counted() {
        let budget = Arc::new(Gated::default());
        let settles = Arc::new(Settles::default());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let r = rt
            .block_on(Reservation::place(budget.clone(), hold("gen-b")))
            .unwrap()
            .expect("held")
            .counted_by(&settles);
        drop(r);
        assert_eq!(settles.pending(), 1);
        // The runtime stops before the release ran: its task is dropped, and with it the count.
        drop(rt);
        assert_eq!(settles.pending(), 0);
    }
}
