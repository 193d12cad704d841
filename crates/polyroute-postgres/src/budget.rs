//! [`PostgresBudget`]: spend limits in PostgreSQL, for fleets without Redis. Each change is one call of a
//! PL/pgSQL function (migration 2, `budget.sql`), so one round trip and one transaction:
//!
//! - `polyroute_budget_reserve(id, amount, ttl_ms, scopes, limits)` locks the scopes' spend rows (ascending
//!   order: concurrent reservations of a scope serialize, never deadlock), answers "held" when the id is settled
//!   or already held, deletes the scopes' expired holds, and when every limited scope has
//!   `spent + live holds + amount ≤ limit` inserts one hold row per scope (expiring `ttl` from now by the
//!   server's clock); otherwise answers the first refusing scope with its spent and held.
//! - `polyroute_budget_settle(id, scopes, billed)` inserts the id into `polyroute_budget_settled` (a conflict
//!   means settled before: answer false, change nothing), then under the same locks deletes the id's holds and
//!   adds `billed` to each scope's spend. Settled ids are forgotten after two days.
//!
//! Money is `numeric`: exact, no rounding. Holds of a killed process stop counting at their expiry.
//! A reservation costs a few row locks on the scope rows: expect hundreds to a few thousand per second per
//! scope, below Redis's; prefer the `polyroute-redis` budget under load.

use std::sync::Arc;

use polyroute::state::{BoxFut, Budget, HoldRequest, Refusal, ReservationId, Reserved, Scope};
use polyroute::{Error, Result};
use rust_decimal::Decimal;

use crate::Pool;

const RESERVE: usize = crate::ledger::COUNT;
const SETTLE: usize = crate::ledger::COUNT + 1;
const SPENT: usize = crate::ledger::COUNT + 2;
const HELD: usize = crate::ledger::COUNT + 3;
/// How many statements the budget prepares (the key store's follow).
pub(crate) const COUNT: usize = 4;

pub(crate) fn statements() -> Vec<String> {
    vec![
        "SELECT code, idx, spent::text, held::text
         FROM polyroute_budget_reserve($1, $2::text::numeric, $3, $4::text[], $5::text[]::numeric[])"
            .to_string(),
        "SELECT polyroute_budget_settle($1, $2::text[], $3::text::numeric)".to_string(),
        "SELECT spent::text FROM polyroute_budget_spent WHERE scope = $1".to_string(),
        "SELECT coalesce(sum(amount), 0)::text FROM polyroute_budget_holds
         WHERE scope = $1 AND expires_at > clock_timestamp()"
            .to_string(),
    ]
}

/// Spend limits shared through PostgreSQL (see the module docs). Nothing is cached in process.
pub struct PostgresBudget {
    pub(crate) pool: Arc<Pool>,
}

impl std::fmt::Debug for PostgresBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBudget")
            .field("server", &self.pool.server)
            .finish_non_exhaustive()
    }
}

fn dec(text: &str) -> Decimal {
    text.parse::<Decimal>()
        .map(|d| d.normalize())
        .unwrap_or_default()
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4).max(1)
}

impl Budget for PostgresBudget {
    fn reserve(&self, req: &HoldRequest) -> BoxFut<'_, Result<Reserved>> {
        let req = req.clone();
        Box::pin(async move {
            let amount = req.amount.max(Decimal::ZERO).to_string();
            let scopes: Vec<String> = req.scopes.iter().map(|s| s.scope.as_key()).collect();
            let limits: Vec<Option<String>> = req
                .scopes
                .iter()
                .map(|s| s.limit.map(|l| l.to_string()))
                .collect();
            let c = self.pool.get().await?;
            let row = c
                .client
                .query_one(
                    &c.st[RESERVE],
                    &[&req.id.0, &amount, &ms(req.ttl), &scopes, &limits],
                )
                .await
                .map_err(|e| self.pool.db_error("reserve", &e))?;
            let code: i32 = row.get(0);
            match code {
                1 | 2 => Ok(Reserved::Held),
                0 => {
                    let i: i32 = row.get(1);
                    let sl = usize::try_from(i - 1)
                        .ok()
                        .and_then(|i| req.scopes.get(i))
                        .ok_or_else(|| self.pool.error(&format!("reserve answered scope {i}")))?;
                    Ok(Reserved::Refused(Refusal {
                        scope: sl.scope.clone(),
                        limit: sl.limit.unwrap_or_default(),
                        spent: dec(row.get(2)),
                        held: dec(row.get(3)),
                        amount: req.amount,
                    }))
                }
                other => Err(Error::Internal {
                    message: format!(
                        "postgres {}: unexpected reserve answer {other}",
                        self.pool.server
                    ),
                }),
            }
        })
    }

    fn settle(
        &self,
        id: &ReservationId,
        scopes: &[Scope],
        billed: Option<Decimal>,
    ) -> BoxFut<'_, Result<bool>> {
        let id = id.0.clone();
        let scopes: Vec<String> = scopes.iter().map(Scope::as_key).collect();
        let billed = billed.map(|b| b.to_string());
        Box::pin(async move {
            let c = self.pool.get().await?;
            let row = c
                .client
                .query_one(&c.st[SETTLE], &[&id, &scopes, &billed])
                .await
                .map_err(|e| self.pool.db_error("settle", &e))?;
            Ok(row.get::<_, bool>(0))
        })
    }

    fn spent(&self, scope: &Scope) -> BoxFut<'_, Result<Decimal>> {
        let scope = scope.as_key();
        Box::pin(async move {
            let c = self.pool.get().await?;
            let row = c
                .client
                .query_opt(&c.st[SPENT], &[&scope])
                .await
                .map_err(|e| self.pool.db_error("spent", &e))?;
            Ok(row.map_or(Decimal::ZERO, |r| dec(r.get(0))))
        })
    }

    fn held(&self, scope: &Scope) -> BoxFut<'_, Result<Decimal>> {
        let scope = scope.as_key();
        Box::pin(async move {
            let c = self.pool.get().await?;
            let row = c
                .client
                .query_one(&c.st[HELD], &[&scope])
                .await
                .map_err(|e| self.pool.db_error("held", &e))?;
            Ok(dec(row.get(0)))
        })
    }

    fn is_remote(&self) -> bool {
        true
    }
}
