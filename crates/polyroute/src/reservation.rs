//! [`Reservation`]: the only way the engine holds money. Admission places it; billing commits it with the actual
//! cost; dropping it uncommitted (a cancelled task, a caller's timeout, a failed request) releases the hold.

use std::sync::Arc;

use polyroute_core::Result;
use rust_decimal::Decimal;

use crate::state::{Budget, HoldRequest, Refusal, ReservationId, Reserved, Scope};

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
            })),
        }
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
            rt.spawn(async move {
                let _ = budget.settle(&id, &scopes, None).await;
            });
        }
    }
}
