//! The SQL of the SQLite stores: each function runs on a connection it is given (the writer's, inside its batch
//! transaction, or a read connection) and knows nothing of threads or batches.

use polyroute_core::Result;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};
use rust_decimal::Decimal;

use super::super::memory::{add_total, decide, span_start};
use super::super::{
    now_ms, ActivityQuery, ActivityRow, GenerationRecord, HoldRequest, LedgerQuery, PendingSettle,
    RateDecision, Refusal, ReservationId, Reserved, Scope, SettleOrder, Span, SpendSummary, Totals,
    UsageGroup, UsageQuery, UsageRow, Window, DAY_MS,
};
use super::writer::{Empty, Hot, Writer};
use super::{db, internal};
use crate::ledger::{decimal_text, parse_decimal, push_decimal};

/// Settled reservation ids are remembered this long in `budget_settled` (idempotent settles); a reservation
/// settled with the record of its id is remembered by the record's row, as long as the record is kept.
const SETTLED_KEEP_MS: i64 = 2 * DAY_MS;

fn dec(text: &str) -> Decimal {
    parse_decimal(text.as_bytes()).unwrap_or_default()
}

/// Sum of space-separated decimals (an SQL `group_concat(cost, ' ')`), exactly.
fn dec_sum(text: Option<String>) -> Decimal {
    text.as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(dec)
        .sum()
}

fn n(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------------------------
// Ledger
// ---------------------------------------------------------------------------------------------------------------

pub(super) fn totals(c: &Connection) -> Result<Totals> {
    let mut st = c
        .prepare_cached(
            "SELECT user_key, group_concat(cost, ' '), count(*) FROM generations GROUP BY user_key",
        )
        .map_err(|e| db(&e))?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(|e| db(&e))?;
    let mut t = Totals::default();
    for row in rows {
        let (user, costs, count) = row.map_err(|e| db(&e))?;
        let c = dec_sum(costs);
        add_total(&mut t, user.as_deref(), c);
        t.count += n(count).saturating_sub(1);
    }
    Ok(t)
}

fn parse_rec(text: &str) -> Result<GenerationRecord> {
    serde_json::from_str(text).map_err(|e| internal(format!("ledger record: {e}")))
}

/// Whether `generations` has its `settled` column (a ledger written by an earlier version has not).
pub(super) fn has_settled_column(c: &Connection) -> Result<bool> {
    c.query_row(
        "SELECT count(*) FROM pragma_table_info('generations') WHERE name = 'settled'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(|e| db(&e))
}

/// Store (or replace) a generation; `?9` 1 marks it settled too (a replaced record keeps its mark either way).
pub(super) const UPSERT_GENERATION: &str =
    "INSERT INTO generations (id, created_ms, user_key, model, provider, cost, free, record, settled)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
     ON CONFLICT(id) DO UPDATE SET created_ms = excluded.created_ms, user_key = excluded.user_key,
         model = excluded.model, provider = excluded.provider, cost = excluded.cost, free = excluded.free,
         record = excluded.record, settled = max(settled, excluded.settled)";

/// Store a generation that is not stored yet, marked settled (nothing changes when its id is taken).
pub(super) const INSERT_NEW_GENERATION: &str =
    "INSERT OR IGNORE INTO generations (id, created_ms, user_key, model, provider, cost, free, record, settled)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1)";

/// Whether the reservation `?1` was settled apart from its record (in `budget_settled`).
pub(super) const SETTLED_APART: &str = "SELECT EXISTS (SELECT 1 FROM budget_settled WHERE id = ?1)";

/// The spend of the scope `?1`.
pub(super) const GET_SPENT: &str = "SELECT spent FROM budget_spent WHERE scope = ?1";

/// Add the amounts `?2` (decimal text, space-separated, in order) to the spend of the scopes `?3`… (one to four
/// of them); a scope without a row gets `?1`, their sum in that order ([`add_spent_in_order`]).
pub(super) const ADD_SPENT_IN_ORDER: [&str; 4] = [
    "INSERT INTO budget_spent (scope, spent) VALUES (?3, ?1)
     ON CONFLICT(scope) DO UPDATE SET spent = polyroute_dec_add(spent, ?2)",
    "INSERT INTO budget_spent (scope, spent) VALUES (?3, ?1), (?4, ?1)
     ON CONFLICT(scope) DO UPDATE SET spent = polyroute_dec_add(spent, ?2)",
    "INSERT INTO budget_spent (scope, spent) VALUES (?3, ?1), (?4, ?1), (?5, ?1)
     ON CONFLICT(scope) DO UPDATE SET spent = polyroute_dec_add(spent, ?2)",
    "INSERT INTO budget_spent (scope, spent) VALUES (?3, ?1), (?4, ?1), (?5, ?1), (?6, ?1)
     ON CONFLICT(scope) DO UPDATE SET spent = polyroute_dec_add(spent, ?2)",
];

/// Drop the holds of the reservation `?1`.
pub(super) const DELETE_HOLDS: &str = "DELETE FROM budget_holds WHERE id = ?1";

/// Whether `budget_holds` and `budget_settled` have no row ([`Writer::empty`]).
pub(super) const EMPTY: &str = "SELECT NOT EXISTS (SELECT 1 FROM budget_holds),
     NOT EXISTS (SELECT 1 FROM budget_settled)";

/// Add `?1` to the spend of the scopes `?2`… (one to four of them), [`add_spent`].
pub(super) const ADD_SPENT: [&str; 4] = [
    "INSERT INTO budget_spent (scope, spent) VALUES (?2, ?1)
     ON CONFLICT(scope) DO UPDATE SET spent = polyroute_dec_add(spent, excluded.spent)",
    "INSERT INTO budget_spent (scope, spent) VALUES (?2, ?1), (?3, ?1)
     ON CONFLICT(scope) DO UPDATE SET spent = polyroute_dec_add(spent, excluded.spent)",
    "INSERT INTO budget_spent (scope, spent) VALUES (?2, ?1), (?3, ?1), (?4, ?1)
     ON CONFLICT(scope) DO UPDATE SET spent = polyroute_dec_add(spent, excluded.spent)",
    "INSERT INTO budget_spent (scope, spent) VALUES (?2, ?1), (?3, ?1), (?4, ?1), (?5, ?1)
     ON CONFLICT(scope) DO UPDATE SET spent = polyroute_dec_add(spent, excluded.spent)",
];

/// The record's columns as the statements that store it bind them (`?1`…`?8`).
fn bind_record(
    st: &mut rusqlite::Statement<'_>,
    rec: &GenerationRecord,
    json: &str,
) -> rusqlite::Result<()> {
    st.raw_bind_parameter(1, &rec.id)?;
    st.raw_bind_parameter(2, rec.created_ms)?;
    st.raw_bind_parameter(3, &rec.user)?;
    st.raw_bind_parameter(4, &rec.model)?;
    st.raw_bind_parameter(5, &rec.provider)?;
    st.raw_bind_parameter(6, decimal_text(&rec.cost))?;
    st.raw_bind_parameter(7, i64::from(rec.free))?;
    st.raw_bind_parameter(8, json)
}

/// Store (or replace) a record whose JSON form is `json`; with `settled`, mark it settled too (a replaced
/// record keeps its mark either way).
fn upsert(w: &Writer<'_>, rec: &GenerationRecord, json: &str, settled: bool) -> Result<()> {
    w.with(Hot::Upsert, |st| {
        bind_record(st, rec, json)?;
        st.raw_bind_parameter(9, i64::from(settled))?;
        st.raw_execute()
    })
    .map_err(|e| db(&e))?;
    Ok(())
}

/// Store a record not stored yet, marked settled; false (nothing changed) when its id is taken.
fn insert_new(w: &Writer<'_>, rec: &GenerationRecord, json: &str) -> Result<bool> {
    w.with(Hot::InsertNew, |st| {
        bind_record(st, rec, json)?;
        st.raw_execute()
    })
    .map(|n| n == 1)
    .map_err(|e| db(&e))
}

/// Store (or replace) a record whose JSON form is `json`.
pub(super) fn insert(w: &Writer<'_>, rec: &GenerationRecord, json: &str) -> Result<()> {
    upsert(w, rec, json, false)
}

/// Whether `budget_holds` and `budget_settled` have no row.
pub(super) fn empty(w: &Writer<'_>) -> Result<Empty> {
    w.with(Hot::Empty, |st| {
        st.query_row([], |r| {
            Ok(Empty {
                holds: r.get(0)?,
                settled: r.get(1)?,
            })
        })
    })
    .map_err(|e| db(&e))
}

/// Whether the reservation `id` was settled apart from its record (in `budget_settled`).
fn settled_apart(w: &Writer<'_>, id: &str) -> Result<bool> {
    if w.empty()?.settled {
        return Ok(false);
    }
    w.with(Hot::SettledApart, |st| {
        st.query_row([id], |r| r.get::<_, bool>(0))
    })
    .map_err(|e| db(&e))
}

/// Whether the row of the record `id` marks its reservation settled ([`insert_settled`]).
fn marked(c: &Connection, id: &str) -> Result<bool> {
    c.prepare_cached("SELECT EXISTS (SELECT 1 FROM generations WHERE id = ?1 AND settled)")
        .and_then(|mut st| st.query_row([id], |r| r.get(0)))
        .map_err(|e| db(&e))
}

/// [`Ledger::insert_settled`](super::super::Ledger::insert_settled) of a record settling the reservation of its
/// own id: the record, marked settled in its row (not in `budget_settled`), the reservation's holds gone and
/// `billed` added to each of `scopes`. A reservation settled before (apart, or with an earlier copy of the
/// record) only has its record stored (or replaced).
pub(super) fn insert_settled(
    w: &Writer<'_>,
    rec: &GenerationRecord,
    json: &str,
    scopes: &[String],
    billed: Decimal,
) -> Result<()> {
    if settled_apart(w, &rec.id)? {
        return insert(w, rec, json);
    }
    // The usual case, a new record: one insert, no lookup of its id before it.
    if !insert_new(w, rec, json)? {
        if marked(w, &rec.id)? {
            return insert(w, rec, json);
        }
        upsert(w, rec, json, true)?;
    }
    delete_holds(w, &rec.id)?;
    w.add_spent(scopes, billed)
}

/// Note the settle of the record `id` (`scopes`: a JSON array of scope texts); a note already there stays.
pub(super) fn note_settle(
    c: &Connection,
    id: &str,
    created_ms: i64,
    scopes: &str,
    billed: Decimal,
) -> Result<()> {
    c.prepare_cached(
        "INSERT OR IGNORE INTO settles_pending (id, created_ms, scopes, billed) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut st| st.execute(params![id, created_ms, scopes, decimal_text(&billed)]))
    .map_err(|e| db(&e))?;
    Ok(())
}

/// Forget the notes of these ids.
pub(super) fn forget_notes(c: &Connection, ids: &[String]) -> Result<()> {
    let mut st = c
        .prepare_cached("DELETE FROM settles_pending WHERE id = ?1")
        .map_err(|e| db(&e))?;
    for id in ids {
        st.execute([id]).map_err(|e| db(&e))?;
    }
    Ok(())
}

/// Notes of generations created before `before_ms`, oldest first, at most `limit`.
pub(super) fn pending_settles(
    c: &Connection,
    before_ms: i64,
    limit: usize,
) -> Result<Vec<PendingSettle>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut st = c
        .prepare_cached(
            "SELECT id, created_ms, scopes, billed FROM settles_pending WHERE created_ms < ?1
             ORDER BY created_ms LIMIT ?2",
        )
        .map_err(|e| db(&e))?;
    let rows = st
        .query_map(params![before_ms, limit], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .map_err(|e| db(&e))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, created_ms, scopes, billed) = row.map_err(|e| db(&e))?;
        let bad = |what: &str| {
            internal(format!(
                "sqlite ledger: the noted settle {id} has a bad {what}"
            ))
        };
        let texts: Vec<String> = serde_json::from_str(&scopes).map_err(|_| bad("scope list"))?;
        let scopes = texts
            .iter()
            .map(|t| Scope::from_key(t).ok_or_else(|| bad("scope")))
            .collect::<Result<Vec<_>>>()?;
        let billed = billed.parse::<Decimal>().map_err(|_| bad("amount"))?;
        out.push(PendingSettle {
            order: SettleOrder {
                id: ReservationId(id),
                scopes,
                billed,
            },
            created_ms,
        });
    }
    Ok(out)
}

pub(super) fn get(c: &Connection, id: &str) -> Result<Option<GenerationRecord>> {
    let text: Option<String> = c
        .prepare_cached("SELECT record FROM generations WHERE id = ?1")
        .and_then(|mut st| st.query_row([id], |r| r.get(0)).optional())
        .map_err(|e| db(&e))?;
    text.as_deref().map(parse_rec).transpose()
}

/// The filter on one user's generations (`user_key = ?1`, which `generations_user_time` serves with the time
/// range) or on every user's (`?1 IS NULL`: `?1` is bound to NULL, and `generations_time` serves the range). One
/// `(?1 IS NULL OR user_key = ?1)` for both made SQLite plan every query as the all-users one, scanning every
/// user's rows of the period for one user's.
fn user_filter(user: Option<&str>) -> &'static str {
    if user.is_some() {
        "user_key = ?1"
    } else {
        "?1 IS NULL"
    }
}

/// [`list`]'s statement (`?1` user, `?2` since, `?3` limit).
pub(super) fn list_sql(user: Option<&str>) -> String {
    format!(
        "SELECT record FROM generations WHERE {} AND created_ms >= ?2 ORDER BY created_ms DESC LIMIT ?3",
        user_filter(user)
    )
}

/// [`summary`]'s statement (`?1` user, `?2` since).
pub(super) fn summary_sql(user: Option<&str>) -> String {
    format!(
        "SELECT count(*), group_concat(cost, ' '), coalesce(sum(free), 0) FROM generations
         WHERE {} AND created_ms >= ?2",
        user_filter(user)
    )
}

pub(super) fn list(c: &Connection, q: &LedgerQuery) -> Result<Vec<GenerationRecord>> {
    let limit = q.limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let since = q.since_ms.unwrap_or(i64::MIN);
    let mut st = c
        .prepare_cached(&list_sql(q.user.as_deref()))
        .map_err(|e| db(&e))?;
    let rows = st
        .query_map(params![q.user, since, limit], |r| r.get::<_, String>(0))
        .map_err(|e| db(&e))?;
    let mut out = Vec::new();
    for t in rows {
        out.push(parse_rec(&t.map_err(|e| db(&e))?)?);
    }
    Ok(out)
}

pub(super) fn summary(c: &Connection, user: Option<&str>, since_ms: i64) -> Result<SpendSummary> {
    c.prepare_cached(&summary_sql(user))
        .and_then(|mut st| {
            st.query_row(params![user, since_ms], |r| {
                Ok(SpendSummary {
                    requests: n(r.get(0)?),
                    cost: dec_sum(r.get(1)?),
                    free_requests: n(r.get(2)?),
                })
            })
        })
        .map_err(|e| db(&e))
}

pub(super) fn activity(c: &Connection, q: &ActivityQuery) -> Result<Vec<ActivityRow>> {
    let mut st = c
        .prepare_cached(
            "SELECT created_ms / 86400000 AS day,
                    json_extract(record, '$.app_title') AS title,
                    json_extract(record, '$.app_referer') AS referer,
                    model,
                    json_extract(record, '$.provider_name') AS pname,
                    count(*),
                    group_concat(cost, ' '),
                    coalesce(sum(json_extract(record, '$.usage.prompt_tokens')), 0),
                    coalesce(sum(json_extract(record, '$.usage.completion_tokens')), 0),
                    coalesce(sum(json_extract(record, '$.usage.completion_tokens_details.reasoning_tokens')), 0)
             FROM generations WHERE user_key = ?1 AND created_ms >= ?2 AND created_ms < ?3
             GROUP BY day, title, referer, model, pname
             ORDER BY day DESC, title DESC, referer DESC, model DESC, pname DESC
             LIMIT ?4 OFFSET ?5",
        )
        .map_err(|e| db(&e))?;
    let page = i64::try_from(q.page()).unwrap_or(i64::MAX);
    let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
    let rows = st
        .query_map(params![q.user, q.since_ms, q.until(), page, offset], |r| {
            Ok(ActivityRow {
                day: r.get(0)?,
                app_title: r.get(1)?,
                app_referer: r.get(2)?,
                model: r.get(3)?,
                provider_name: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                requests: n(r.get(5)?),
                cost: dec_sum(r.get(6)?),
                prompt_tokens: n(r.get(7)?),
                completion_tokens: n(r.get(8)?),
                reasoning_tokens: n(r.get(9)?),
            })
        })
        .map_err(|e| db(&e))?;
    rows.map(|r| r.map_err(|e| db(&e))).collect()
}

pub(super) fn usage(c: &Connection, q: &UsageQuery) -> Result<Vec<UsageRow>> {
    let grp = match q.group {
        UsageGroup::App => {
            "coalesce(nullif(json_extract(record, '$.app_title'), ''),
                      nullif(json_extract(record, '$.app_referer'), ''))"
        }
        UsageGroup::Model => "model",
        UsageGroup::Provider => "provider",
        UsageGroup::Key => "user_key",
    };
    let sql = format!(
        "SELECT created_ms - ((created_ms % ?3) + ?3) % ?3 AS bucket, {grp} AS grp, count(*),
                group_concat(cost, ' '),
                coalesce(sum(json_extract(record, '$.usage.prompt_tokens')), 0),
                coalesce(sum(json_extract(record, '$.usage.completion_tokens')), 0)
         FROM generations WHERE {user} AND created_ms >= ?2
         GROUP BY bucket, grp ORDER BY bucket, grp",
        user = user_filter(q.user.as_deref())
    );
    let mut st = c.prepare_cached(&sql).map_err(|e| db(&e))?;
    let rows = st
        .query_map(params![q.user, q.since_ms, q.bucket()], |r| {
            Ok(UsageRow {
                bucket_ms: r.get(0)?,
                group: r.get(1)?,
                requests: n(r.get(2)?),
                cost: dec_sum(r.get(3)?),
                prompt_tokens: n(r.get(4)?),
                completion_tokens: n(r.get(5)?),
            })
        })
        .map_err(|e| db(&e))?;
    rows.map(|r| r.map_err(|e| db(&e))).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Budget
// ---------------------------------------------------------------------------------------------------------------

/// Live holds on `scope` at `now`.
pub(super) fn held(c: &Connection, scope: &str, now: i64) -> Result<Decimal> {
    let mut st = c
        .prepare_cached("SELECT amount FROM budget_holds WHERE scope = ?1 AND expires_ms > ?2")
        .map_err(|e| db(&e))?;
    let rows = st
        .query_map(params![scope, now], |r| r.get::<_, String>(0))
        .map_err(|e| db(&e))?;
    let mut total = Decimal::ZERO;
    for r in rows {
        total += dec(&r.map_err(|e| db(&e))?);
    }
    Ok(total)
}

pub(super) fn spent(c: &Connection, scope: &str) -> Result<Decimal> {
    c.prepare_cached("SELECT spent FROM budget_spent WHERE scope = ?1")
        .and_then(|mut st| st.query_row([scope], |r| r.get::<_, String>(0)).optional())
        .map(|v| v.as_deref().map(dec).unwrap_or_default())
        .map_err(|e| db(&e))
}

/// Seed `scope`'s spend (a ledger from before the budget tables).
pub(super) fn set_spent(c: &Connection, scope: &str, total: Decimal) -> Result<()> {
    c.prepare_cached("INSERT OR REPLACE INTO budget_spent (scope, spent) VALUES (?1, ?2)")
        .and_then(|mut st| st.execute(params![scope, decimal_text(&total)]))
        .map(drop)
        .map_err(|e| db(&e))
}

/// [`Budget::reserve`](super::super::Budget::reserve), inside the caller's transaction.
pub(super) fn reserve(c: &Writer<'_>, req: &HoldRequest) -> Result<Reserved> {
    let now = now_ms();
    c.prepare_cached("DELETE FROM budget_holds WHERE expires_ms <= ?1")
        .and_then(|mut st| st.execute([now]))
        .map_err(|e| db(&e))?;
    let known: i64 = c
        .prepare_cached(
            "SELECT (SELECT count(*) FROM budget_holds WHERE id = ?1)
                  + (SELECT count(*) FROM budget_settled WHERE id = ?1)
                  + (SELECT count(*) FROM generations WHERE id = ?1 AND settled)",
        )
        .and_then(|mut st| st.query_row([&req.id.0], |r| r.get(0)))
        .map_err(|e| db(&e))?;
    if known > 0 {
        return Ok(Reserved::Held);
    }
    for sl in &req.scopes {
        let Some(limit) = sl.limit else { continue };
        let key = sl.scope.as_key();
        let spent = c.spent(&key)?;
        let held = held(c, &key, now)?;
        if spent + held + req.amount > limit {
            return Ok(Reserved::Refused(Refusal {
                scope: sl.scope.clone(),
                limit,
                spent,
                held,
                amount: req.amount,
            }));
        }
    }
    let expires = now.saturating_add(i64::try_from(req.ttl.as_millis()).unwrap_or(i64::MAX / 2));
    let mut st = c
        .prepare_cached(
            "INSERT OR IGNORE INTO budget_holds (id, scope, amount, expires_ms) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(|e| db(&e))?;
    let amount = decimal_text(&req.amount);
    c.added(true, false);
    for sl in &req.scopes {
        st.execute(params![req.id.0, sl.scope.as_key(), amount, expires])
            .map_err(|e| db(&e))?;
    }
    Ok(Reserved::Held)
}

/// The exact decimal sum `polyroute_dec_add(spent, amounts)` that [`add_spent_now`] and [`add_spent_in_order`]
/// run in SQL, registered on the writer's connection: `spent` plus each of the space-separated `amounts` in
/// order (one amount: one sum). Spends stay decimal text (exact, any scale), and each scope's spend changes in
/// one statement instead of a read and a write.
pub(super) fn register_functions(c: &Connection) -> Result<()> {
    c.create_scalar_function(
        "polyroute_dec_add",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let mut total = text_dec(ctx.get_raw(0));
            let amounts = match ctx.get_raw(1) {
                ValueRef::Text(t) => t,
                _ => b"",
            };
            for a in amounts.split(|&b| b == b' ').filter(|a| !a.is_empty()) {
                // The amounts are the writer's own decimal text: one that does not read fails the statement
                // rather than counting as zero.
                let a = parse_decimal(a).ok_or_else(|| {
                    rusqlite::Error::UserFunctionError("an amount is not a decimal".into())
                })?;
                total = total.checked_add(a).ok_or_else(|| {
                    rusqlite::Error::UserFunctionError("the spend does not fit a decimal".into())
                })?;
            }
            Ok(decimal_text(&total))
        },
    )
    .map_err(|e| db(&e))
}

/// A decimal stored as text (anything else, or text that does not parse, reads as zero, as [`dec`] does).
fn text_dec(v: ValueRef<'_>) -> Decimal {
    match v {
        ValueRef::Text(t) => parse_decimal(t).unwrap_or_default(),
        _ => Decimal::ZERO,
    }
}

/// The stored spend of `scope` (None: no row), for the writer ([`Writer::spent`], [`Writer::add_spent`]).
pub(super) fn read_spent(w: &Writer<'_>, scope: &str) -> Result<Option<Decimal>> {
    w.with(Hot::GetSpent, |st| {
        st.query_row([scope], |r| Ok(text_dec(r.get_ref(0)?)))
            .optional()
    })
    .map_err(|e| db(&e))
}

/// `start` plus each of `amounts` in order (without `start`, the first amount is where the sum starts), as the
/// settles of one statement each would have summed them; None past the largest decimal.
pub(super) fn add_in_order(start: Option<Decimal>, amounts: &[Decimal]) -> Option<Decimal> {
    let (mut total, rest) = match (start, amounts) {
        (Some(s), _) => (s, amounts),
        (None, [first, rest @ ..]) => (*first, rest),
        (None, []) => (Decimal::ZERO, amounts),
    };
    for a in rest {
        total = total.checked_add(*a)?;
    }
    Some(total)
}

/// Add `amounts` to the spend of each of `scopes`, in order, a few scopes per statement
/// ([`Writer::flush_spends`]: the scopes its settles gave the same amounts).
pub(super) fn add_spent_in_order(
    w: &Writer<'_>,
    scopes: &[&str],
    amounts: &[Decimal],
) -> Result<()> {
    const BY_SCOPES: [Hot; 4] = [
        Hot::AddInOrder1,
        Hot::AddInOrder2,
        Hot::AddInOrder3,
        Hot::AddInOrder4,
    ];
    let fresh = add_in_order(None, amounts)
        .ok_or_else(|| internal("sqlite store: the spend does not fit a decimal"))?;
    let fresh = decimal_text(&fresh);
    let mut list = String::with_capacity(amounts.len() * 12);
    for (i, a) in amounts.iter().enumerate() {
        if i > 0 {
            list.push(' ');
        }
        push_decimal(&mut list, a);
    }
    for chunk in scopes.chunks(BY_SCOPES.len()) {
        w.with(BY_SCOPES[chunk.len() - 1], |st| {
            st.raw_bind_parameter(1, &fresh)?;
            st.raw_bind_parameter(2, &list)?;
            for (i, s) in chunk.iter().enumerate() {
                st.raw_bind_parameter(i + 3, s)?;
            }
            st.raw_execute()
        })
        .map_err(|e| db(&e))?;
    }
    Ok(())
}

/// Add `amount` to the spend of each of `scopes` (a scope listed twice gets it twice) in SQL, a few scopes per
/// statement (the writer's [`Writer::add_spent`] once a batch runs with savepoints).
pub(super) fn add_spent_now(w: &Writer<'_>, scopes: &[String], amount: Decimal) -> Result<()> {
    const BY_SCOPES: [Hot; 4] = [
        Hot::AddSpent1,
        Hot::AddSpent2,
        Hot::AddSpent3,
        Hot::AddSpent4,
    ];
    let amount = decimal_text(&amount);
    for chunk in scopes.chunks(BY_SCOPES.len()) {
        w.with(BY_SCOPES[chunk.len() - 1], |st| {
            st.raw_bind_parameter(1, &amount)?;
            for (i, s) in chunk.iter().enumerate() {
                st.raw_bind_parameter(i + 2, s)?;
            }
            st.raw_execute()
        })
        .map_err(|e| db(&e))?;
    }
    Ok(())
}

/// Forget settled ids older than they are kept (the writer runs it now and then, not per settle).
pub(super) fn forget_old_settles(c: &Connection, now: i64) -> Result<()> {
    c.prepare_cached("DELETE FROM budget_settled WHERE at_ms < ?1")
        .and_then(|mut st| st.execute([now - SETTLED_KEEP_MS]))
        .map(drop)
        .map_err(|e| db(&e))
}

/// Drop the holds of the reservation `id`.
fn delete_holds(w: &Writer<'_>, id: &str) -> Result<()> {
    if w.empty()?.holds {
        return Ok(());
    }
    w.with(Hot::DeleteHolds, |st| st.execute([id]))
        .map(drop)
        .map_err(|e| db(&e))
}

/// [`Budget::settle`](super::super::Budget::settle), inside the caller's transaction.
pub(super) fn settle(
    c: &Writer<'_>,
    id: &str,
    scopes: &[String],
    billed: Option<Decimal>,
) -> Result<bool> {
    let now = now_ms();
    let marked: bool = c
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM generations WHERE id = ?1 AND settled)")
        .and_then(|mut st| st.query_row([id], |r| r.get(0)))
        .map_err(|e| db(&e))?;
    if marked {
        return Ok(false);
    }
    c.added(false, true);
    let fresh = c
        .prepare_cached("INSERT OR IGNORE INTO budget_settled (id, at_ms) VALUES (?1, ?2)")
        .and_then(|mut st| st.execute(params![id, now]))
        .map_err(|e| db(&e))?
        == 1;
    if !fresh {
        return Ok(false);
    }
    delete_holds(c, id)?;
    if let Some(b) = billed {
        c.add_spent(scopes, b)?;
    }
    Ok(true)
}

// ---------------------------------------------------------------------------------------------------------------
// Rate windows
// ---------------------------------------------------------------------------------------------------------------

/// [`RateLimiter::hit`](super::super::RateLimiter::hit), inside the caller's transaction.
pub(super) fn hit(
    c: &Connection,
    key: &str,
    windows: &[Window],
    amount: u64,
) -> Result<RateDecision> {
    let now = now_ms();
    let from = windows
        .iter()
        .map(|w| span_start(w.span, now))
        .min()
        .unwrap_or(now);
    c.prepare_cached("DELETE FROM rate_events WHERE key = ?1 AND at_ms < ?2")
        .and_then(|mut st| st.execute(params![key, from.min(now - DAY_MS)]))
        .map_err(|e| db(&e))?;
    let events: Vec<(i64, u64)> = {
        let mut st = c
            .prepare_cached(
                "SELECT at_ms, amount FROM rate_events WHERE key = ?1 AND at_ms >= ?2 ORDER BY at_ms",
            )
            .map_err(|e| db(&e))?;
        let rows = st
            .query_map(params![key, from], |r| {
                Ok((r.get::<_, i64>(0)?, n(r.get::<_, i64>(1)?)))
            })
            .map_err(|e| db(&e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| db(&e))?
    };
    let d = decide(&events, windows, amount, now);
    if d == RateDecision::Allowed {
        c.prepare_cached("INSERT INTO rate_events (key, at_ms, amount) VALUES (?1, ?2, ?3)")
            .and_then(|mut st| {
                st.execute(params![key, now, i64::try_from(amount).unwrap_or(i64::MAX)])
            })
            .map_err(|e| db(&e))?;
    }
    Ok(d)
}

pub(super) fn used(c: &Connection, key: &str, span: Span) -> Result<u64> {
    let now = now_ms();
    let start = span_start(span, now);
    let start = match span {
        Span::Sliding(_) => start + 1,
        Span::UtcDay => start,
    };
    c.prepare_cached(
        "SELECT coalesce(sum(amount), 0) FROM rate_events WHERE key = ?1 AND at_ms >= ?2",
    )
    .and_then(|mut st| st.query_row(params![key, start], |r| r.get::<_, i64>(0)))
    .map(n)
    .map_err(|e| db(&e))
}
