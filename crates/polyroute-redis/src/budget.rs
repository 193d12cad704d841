//! [`RedisBudget`]: spend and holds per scope, each change one atomic Lua script.
//!
//! Layout (all under the `{prefix}` hash tag, one cluster slot):
//!
//! | key | type | content |
//! |---|---|---|
//! | `{p}:b:<scope>` | hash | `spent` (settled pico-USD), `held` (sum of live holds), `h:<reservation id>` (each hold's amount) |
//! | `{p}:bz:<scope>` | sorted set | reservation id → expiry (Unix ms, Redis's clock) |
//! | `{p}:bd:<reservation id>` | string | settled marker, expires after [`RedisBudget::settled_ttl`] |
//!
//! `reserve.lua` (one call per admission): if the id is settled or already held, answer "held" and place
//! nothing; otherwise drop each scope's expired holds (their amounts leave `held`), then, when for every scope
//! with a limit `spent + held + amount ≤ limit`, add the hold to every scope (`h:<id>`, `held`, the expiry set),
//! else place nothing and answer the first refusing scope with its `spent` and `held`. Time is Redis's `TIME`,
//! so routers with skewed clocks agree on expiry.
//!
//! `settle.lua` (one call per billed or abandoned request): `SET {p}:bd:<id> NX PX` decides once; the first call
//! removes the hold from every scope (if it has not expired) and adds the billed cost to each scope's `spent`;
//! later calls change nothing and answer `false`. A settle after its hold expired still bills.
//!
//! A process killed while holding never settles: its holds stop counting when their TTL passes and are removed
//! by the next `reserve` or `held` on that scope.

use std::time::Duration;

use polyroute::state::{BoxFut, Budget, HoldRequest, Refusal, ReservationId, Reserved, Scope};
use polyroute::{Error, Result};
use redis::Script;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::{store_error, RedisState};

/// Pico-dollars per dollar: the integer unit money is kept in.
const PICO_SCALE: u32 = 12;

static RESERVE: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("lua/reserve.lua")));
static SETTLE: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("lua/settle.lua")));
static HELD: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("lua/held.lua")));

/// Spend limits shared by every router connected to one Valkey/Redis. Nothing is cached in process: each call is
/// one script or command.
#[derive(Debug, Clone)]
pub struct RedisBudget {
    st: RedisState,
    settled_ttl: Duration,
}

impl RedisBudget {
    pub(crate) fn new(st: RedisState) -> Self {
        Self {
            st,
            settled_ttl: Duration::from_secs(25 * 3_600),
        }
    }

    /// How long a settled reservation id is remembered (default 25 hours: the contract's day plus a margin;
    /// settling the same id again within it changes nothing). Each marker is one small key, about 100 bytes:
    /// budget ~9 MB per request per second of steady traffic.
    #[must_use]
    pub fn settled_ttl(mut self, ttl: Duration) -> Self {
        self.settled_ttl = ttl.max(Duration::from_millis(1));
        self
    }

    fn scope_keys(&self, scope: &Scope) -> (String, String) {
        let s = scope.as_key();
        (
            self.st.key(&format!("b:{s}")),
            self.st.key(&format!("bz:{s}")),
        )
    }

    fn done_key(&self, id: &ReservationId) -> String {
        self.st.key(&format!("bd:{}", id.0))
    }

    fn err(&self, e: &redis::RedisError) -> Error {
        store_error(&self.st.server, e)
    }
}

/// `d` in whole pico-dollars, rounded by `how`, as Redis integer text (at least 0 when `floor_zero`).
fn to_pico(d: Decimal, how: RoundingStrategy, floor_zero: bool) -> Result<String> {
    let d = if floor_zero { d.max(Decimal::ZERO) } else { d };
    let p = d
        .checked_mul(Decimal::from(1_000_000_000_000_i64))
        .map(|p| p.round_dp_with_strategy(0, how))
        .and_then(|p| i64::try_from(p).ok())
        .ok_or_else(|| Error::Internal {
            message: format!("budget amount {d} is out of range for the redis store"),
        })?;
    Ok(p.to_string())
}

/// Redis integer text (pico-dollars) back to dollars.
fn from_pico(text: &str) -> Decimal {
    text.trim()
        .parse::<i64>()
        .map(|p| Decimal::new(p, PICO_SCALE).normalize())
        .unwrap_or_default()
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Budget for RedisBudget {
    fn reserve(&self, req: &HoldRequest) -> BoxFut<'_, Result<Reserved>> {
        let req = req.clone();
        Box::pin(async move {
            let amount = to_pico(req.amount, RoundingStrategy::AwayFromZero, true)?;
            let mut inv = RESERVE.prepare_invoke();
            inv.key(self.done_key(&req.id));
            for sl in &req.scopes {
                let (h, z) = self.scope_keys(&sl.scope);
                inv.key(h).key(z);
            }
            inv.arg(&req.id.0).arg(&amount).arg(ms(req.ttl));
            for sl in &req.scopes {
                match sl.limit {
                    Some(l) => inv.arg(to_pico(l, RoundingStrategy::ToNegativeInfinity, false)?),
                    None => inv.arg(""),
                };
            }
            let mut conn = self.st.conn.clone();
            let reply: Vec<redis::Value> = inv
                .invoke_async(&mut conn)
                .await
                .map_err(|e| self.err(&e))?;
            let code = reply.first().and_then(int).unwrap_or(-1);
            match code {
                1 | 2 => Ok(Reserved::Held),
                0 => {
                    let i = reply.get(1).and_then(int).unwrap_or(1);
                    let idx = usize::try_from(i - 1).unwrap_or(0);
                    let sl = req.scopes.get(idx).ok_or_else(|| Error::Internal {
                        message: format!("redis {}: reserve answered scope {i}", self.st.server),
                    })?;
                    Ok(Reserved::Refused(Refusal {
                        scope: sl.scope.clone(),
                        limit: sl.limit.unwrap_or_default(),
                        spent: reply
                            .get(2)
                            .map(text)
                            .map_or(Decimal::ZERO, |t| from_pico(&t)),
                        held: reply
                            .get(3)
                            .map(text)
                            .map_or(Decimal::ZERO, |t| from_pico(&t)),
                        amount: req.amount,
                    }))
                }
                _ => Err(Error::Internal {
                    message: format!(
                        "redis {}: unexpected reserve reply {reply:?}",
                        self.st.server
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
        let id = id.clone();
        let scopes = scopes.to_vec();
        Box::pin(async move {
            let billed = match billed {
                Some(b) => to_pico(b, RoundingStrategy::MidpointAwayFromZero, false)?,
                None => String::new(),
            };
            let mut inv = SETTLE.prepare_invoke();
            inv.key(self.done_key(&id));
            for s in &scopes {
                let (h, z) = self.scope_keys(s);
                inv.key(h).key(z);
            }
            inv.arg(&id.0).arg(billed).arg(ms(self.settled_ttl));
            let mut conn = self.st.conn.clone();
            let applied: i64 = inv
                .invoke_async(&mut conn)
                .await
                .map_err(|e| self.err(&e))?;
            Ok(applied == 1)
        })
    }

    fn spent(&self, scope: &Scope) -> BoxFut<'_, Result<Decimal>> {
        let (h, _) = self.scope_keys(scope);
        Box::pin(async move {
            let mut conn = self.st.conn.clone();
            let v: Option<String> = redis::cmd("HGET")
                .arg(h)
                .arg("spent")
                .query_async(&mut conn)
                .await
                .map_err(|e| self.err(&e))?;
            Ok(v.map_or(Decimal::ZERO, |t| from_pico(&t)))
        })
    }

    fn held(&self, scope: &Scope) -> BoxFut<'_, Result<Decimal>> {
        let (h, z) = self.scope_keys(scope);
        Box::pin(async move {
            let mut conn = self.st.conn.clone();
            let v: String = HELD
                .key(h)
                .key(z)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| self.err(&e))?;
            Ok(from_pico(&v))
        })
    }

    fn is_remote(&self) -> bool {
        true
    }
}

fn int(v: &redis::Value) -> Option<i64> {
    match v {
        redis::Value::Int(i) => Some(*i),
        _ => None,
    }
}

fn text(v: &redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Int(i) => i.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pico_conversion_rounds_as_documented() -> Result<()> {
        let d = |s: &str| s.parse::<Decimal>().unwrap_or_default();
        assert_eq!(
            to_pico(d("0.03"), RoundingStrategy::AwayFromZero, true)?,
            "30000000000"
        );
        // Holds round up, limits down, billed costs to the nearest pico-dollar.
        assert_eq!(
            to_pico(d("0.0000000000011"), RoundingStrategy::AwayFromZero, true)?,
            "2"
        );
        assert_eq!(
            to_pico(
                d("1.0000000000019"),
                RoundingStrategy::ToNegativeInfinity,
                false
            )?,
            "1000000000001"
        );
        assert_eq!(
            to_pico(
                d("0.0000000000015"),
                RoundingStrategy::MidpointAwayFromZero,
                false
            )?,
            "2"
        );
        assert_eq!(to_pico(d("-3"), RoundingStrategy::AwayFromZero, true)?, "0");
        assert!(to_pico(d("100000000"), RoundingStrategy::AwayFromZero, true).is_err());
        assert_eq!(from_pico("30000000000"), d("0.03"));
        assert_eq!(from_pico("-5"), d("-0.000000000005"));
        assert_eq!(from_pico("junk"), Decimal::ZERO);
        Ok(())
    }
}
