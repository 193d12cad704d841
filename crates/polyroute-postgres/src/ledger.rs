//! [`PostgresLedger`]: generation records and their aggregates in `polyroute_generations`.

use std::collections::HashMap;
use std::sync::Arc;

use polyroute::state::{
    ActivityQuery, ActivityRow, BoxFut, GenerationRecord, Ledger, LedgerQuery, PendingSettle,
    ReservationId, Scope, SettleOrder, SpendSummary, Totals, UsageGroup, UsageQuery, UsageRow,
    DAY_MS,
};
use polyroute::{Error, Result};
use rust_decimal::Decimal;

use crate::{Pool, PostgresOptions, PostgresState};

const COLUMNS: &str =
    "id, created_ms, user_key, model, provider, provider_name, app_title, app_referer, cost, \
                       free, prompt_tokens, completion_tokens, reasoning_tokens, record";

// Statement indices in `STATEMENTS`.
const INSERT: usize = 0;
const GET: usize = 1;
const LIST_USER: usize = 2;
const LIST_ALL: usize = 3;
const SUMMARY_USER: usize = 4;
const SUMMARY_ALL: usize = 5;
const ACTIVITY: usize = 6;
const TOTALS: usize = 7;
const INSERT_NOTING: usize = 8;
const LANDED: usize = 9;
const PENDING: usize = 10;
/// How many statements the ledger prepares (the budget's follow).
pub(crate) const COUNT: usize = 11;

pub(crate) fn statements() -> Vec<String> {
    let insert = format!(
        "INSERT INTO polyroute_generations ({COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::numeric, $10, $11, $12, $13, $14)
         ON CONFLICT (id) DO UPDATE SET
             created_ms = EXCLUDED.created_ms, user_key = EXCLUDED.user_key, model = EXCLUDED.model,
             provider = EXCLUDED.provider, provider_name = EXCLUDED.provider_name,
             app_title = EXCLUDED.app_title, app_referer = EXCLUDED.app_referer, cost = EXCLUDED.cost,
             free = EXCLUDED.free, prompt_tokens = EXCLUDED.prompt_tokens,
             completion_tokens = EXCLUDED.completion_tokens, reasoning_tokens = EXCLUDED.reasoning_tokens,
             record = EXCLUDED.record"
    );
    vec![
        insert.clone(),
        "SELECT record FROM polyroute_generations WHERE id = $1".to_string(),
        "SELECT record FROM polyroute_generations WHERE user_key = $1 AND created_ms >= $2
         ORDER BY created_ms DESC LIMIT $3"
            .to_string(),
        "SELECT record FROM polyroute_generations WHERE created_ms >= $1 ORDER BY created_ms DESC LIMIT $2"
            .to_string(),
        "SELECT count(*), coalesce(sum(cost), 0)::text, count(*) FILTER (WHERE free)
         FROM polyroute_generations WHERE user_key = $1 AND created_ms >= $2"
            .to_string(),
        "SELECT count(*), coalesce(sum(cost), 0)::text, count(*) FILTER (WHERE free)
         FROM polyroute_generations WHERE created_ms >= $1"
            .to_string(),
        format!(
            "SELECT floor(created_ms::numeric / {DAY_MS})::bigint AS day, app_title, app_referer, model,
                    provider_name, count(*), sum(cost)::text, sum(prompt_tokens)::bigint,
                    sum(completion_tokens)::bigint, sum(reasoning_tokens)::bigint
             FROM polyroute_generations WHERE user_key = $1 AND created_ms >= $2 AND created_ms < $3
             GROUP BY day, app_title, app_referer, model, provider_name
             ORDER BY day DESC, app_title COLLATE \"C\" DESC NULLS LAST,
                      app_referer COLLATE \"C\" DESC NULLS LAST, model COLLATE \"C\" DESC,
                      provider_name COLLATE \"C\" DESC
             LIMIT $4 OFFSET $5"
        ),
        "SELECT user_key, sum(cost)::text, count(*) FROM polyroute_generations GROUP BY user_key".to_string(),
        // The record and its noted settle in one statement (a data-modifying `WITH` always runs to completion).
        format!(
            "WITH g AS ({insert})
             INSERT INTO polyroute_settles_pending (id, created_ms, scopes, billed)
             VALUES ($1, $2, $15, $16::text::numeric) ON CONFLICT (id) DO NOTHING"
        ),
        "DELETE FROM polyroute_settles_pending WHERE id = ANY($1)".to_string(),
        "SELECT id, created_ms, scopes, billed::text FROM polyroute_settles_pending WHERE created_ms < $1
         ORDER BY created_ms LIMIT $2"
            .to_string(),
    ]
}

/// The dashboard's aggregate ([`Ledger::usage`]) for one grouping: run unprepared (one statement per grouping;
/// a dashboard query, not a per-request one).
fn usage_sql(group: UsageGroup) -> String {
    let grp = match group {
        UsageGroup::App => "coalesce(nullif(app_title, ''), nullif(app_referer, ''))",
        UsageGroup::Model => "model",
        UsageGroup::Provider => "provider",
        UsageGroup::Key => "user_key",
    };
    format!(
        "SELECT * FROM (
             SELECT created_ms - ((created_ms % $3) + $3) % $3 AS bucket, {grp} AS grp, count(*),
                    sum(cost)::text, sum(prompt_tokens)::bigint, sum(completion_tokens)::bigint
             FROM polyroute_generations WHERE ($1::text IS NULL OR user_key = $1::text) AND created_ms >= $2
             GROUP BY bucket, grp) AS u
         ORDER BY bucket, grp COLLATE \"C\" NULLS FIRST"
    )
}

/// The generation ledger on PostgreSQL (see the crate docs for durability and schema).
pub struct PostgresLedger {
    pub(crate) pool: Arc<Pool>,
}

impl std::fmt::Debug for PostgresLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresLedger")
            .field("server", &self.pool.server)
            .finish_non_exhaustive()
    }
}

fn dec(text: &str) -> Decimal {
    text.parse::<Decimal>()
        .map(|d| d.normalize())
        .unwrap_or_default()
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn tokens(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PostgresLedger {
    /// Connect with default options and apply pending migrations.
    ///
    /// # Errors
    /// The server cannot be reached or a migration fails (the error names the server).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// Connect with `opts` and apply pending migrations.
    ///
    /// # Errors
    /// As [`PostgresLedger::connect`].
    pub async fn connect_with(url: &str, opts: PostgresOptions) -> Result<Self> {
        Ok(PostgresState::connect_with(url, opts).await?.ledger())
    }

    /// The server's `host:port/db` (for messages).
    #[must_use]
    pub fn server(&self) -> &str {
        &self.pool.server
    }

    async fn conn(&self) -> Result<Arc<crate::Conn>> {
        self.pool.get().await
    }

    fn err(&self, what: &str, e: &tokio_postgres::Error) -> Error {
        self.pool.db_error(what, e)
    }

    fn decode(&self, text: &str) -> Result<GenerationRecord> {
        serde_json::from_str(text).map_err(|e| {
            self.pool
                .error(&format!("a stored record does not parse: {e}"))
        })
    }
}

impl PostgresLedger {
    /// Insert `rec` (statement `INSERT`), or with its noted settle (`INSERT_NOTING`).
    async fn write(&self, rec: &GenerationRecord, settle: Option<&SettleOrder>) -> Result<()> {
        // The same bytes as `serde_json::to_string`, written directly.
        let json = rec.to_json_string();
        let c = self.conn().await?;
        let cost = rec.cost.to_string();
        let (p, k, r) = (
            tokens(rec.usage.prompt_tokens),
            tokens(rec.usage.completion_tokens),
            tokens(rec.usage.completion_tokens_details.reasoning_tokens),
        );
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![
            &rec.id,
            &rec.created_ms,
            &rec.user,
            &rec.model,
            &rec.provider,
            &rec.provider_name,
            &rec.app_title,
            &rec.app_referer,
            &cost,
            &rec.free,
            &p,
            &k,
            &r,
            &json,
        ];
        let scopes: Vec<String>;
        let billed: String;
        let st = match settle {
            Some(s) => {
                scopes = s.scopes.iter().map(Scope::as_key).collect();
                billed = s.billed.to_string();
                params.push(&scopes);
                params.push(&billed);
                INSERT_NOTING
            }
            None => INSERT,
        };
        c.client
            .execute(&c.st[st], &params)
            .await
            .map_err(|e| self.err("insert", &e))?;
        Ok(())
    }
}

impl Ledger for PostgresLedger {
    fn insert(&self, rec: GenerationRecord) -> BoxFut<'_, Result<()>> {
        Box::pin(async move { self.write(&rec, None).await })
    }

    /// The record and the note in one statement. The note's id is the record's (the generation id a reservation
    /// is placed under); a settle for another id is written as asked all the same.
    fn insert_noting_settle(
        &self,
        rec: GenerationRecord,
        settle: &SettleOrder,
    ) -> BoxFut<'_, Result<bool>> {
        let settle = settle.clone();
        Box::pin(async move {
            if settle.id.0 != rec.id {
                // The statement keys both rows by the record's id: note another id apart.
                self.write(&rec, None).await?;
                return Ok(false);
            }
            self.write(&rec, Some(&settle)).await.map(|()| true)
        })
    }

    fn settles_landed(&self, ids: &[ReservationId]) -> BoxFut<'_, Result<()>> {
        let ids: Vec<String> = ids.iter().map(|i| i.0.clone()).collect();
        Box::pin(async move {
            if ids.is_empty() {
                return Ok(());
            }
            let c = self.conn().await?;
            c.client
                .execute(&c.st[LANDED], &[&ids])
                .await
                .map_err(|e| self.err("forget landed settles", &e))?;
            Ok(())
        })
    }

    fn pending_settles(
        &self,
        before_ms: i64,
        limit: usize,
    ) -> BoxFut<'_, Result<Vec<PendingSettle>>> {
        Box::pin(async move {
            let c = self.conn().await?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = c
                .client
                .query(&c.st[PENDING], &[&before_ms, &limit])
                .await
                .map_err(|e| self.err("pending settles", &e))?;
            rows.iter()
                .map(|r| {
                    let scopes: Vec<String> = r.get(2);
                    let scopes = scopes
                        .iter()
                        .map(|k| {
                            Scope::from_key(k).ok_or_else(|| {
                                self.pool.error(&format!("a noted settle's scope {k:?}"))
                            })
                        })
                        .collect::<Result<Vec<_>>>()?;
                    Ok(PendingSettle {
                        order: SettleOrder {
                            id: ReservationId(r.get(0)),
                            scopes,
                            billed: dec(r.get(3)),
                        },
                        created_ms: r.get(1),
                    })
                })
                .collect()
        })
    }

    fn get(&self, id: &str) -> BoxFut<'_, Result<Option<GenerationRecord>>> {
        let id = id.to_string();
        Box::pin(async move {
            let c = self.conn().await?;
            let row = c
                .client
                .query_opt(&c.st[GET], &[&id])
                .await
                .map_err(|e| self.err("get", &e))?;
            row.map(|r| self.decode(r.get(0))).transpose()
        })
    }

    fn list(&self, q: LedgerQuery) -> BoxFut<'_, Result<Vec<GenerationRecord>>> {
        Box::pin(async move {
            let c = self.conn().await?;
            let since = q.since_ms.unwrap_or(i64::MIN);
            let limit: Option<i64> = q.limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
            let rows = match &q.user {
                Some(u) => c.client.query(&c.st[LIST_USER], &[u, &since, &limit]).await,
                None => c.client.query(&c.st[LIST_ALL], &[&since, &limit]).await,
            }
            .map_err(|e| self.err("list", &e))?;
            rows.iter().map(|r| self.decode(r.get(0))).collect()
        })
    }

    fn summary(&self, user: Option<&str>, since_ms: i64) -> BoxFut<'_, Result<SpendSummary>> {
        let user = user.map(str::to_string);
        Box::pin(async move {
            let c = self.conn().await?;
            let row = match &user {
                Some(u) => {
                    c.client
                        .query_one(&c.st[SUMMARY_USER], &[u, &since_ms])
                        .await
                }
                None => c.client.query_one(&c.st[SUMMARY_ALL], &[&since_ms]).await,
            }
            .map_err(|e| self.err("summary", &e))?;
            Ok(SpendSummary {
                requests: count(row.get(0)),
                cost: dec(row.get(1)),
                free_requests: count(row.get(2)),
            })
        })
    }

    fn activity(&self, q: ActivityQuery) -> BoxFut<'_, Result<Vec<ActivityRow>>> {
        Box::pin(async move {
            let c = self.conn().await?;
            let (until, page) = (q.until(), i64::try_from(q.page()).unwrap_or(i64::MAX));
            let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
            let rows = c
                .client
                .query(
                    &c.st[ACTIVITY],
                    &[&q.user, &q.since_ms, &until, &page, &offset],
                )
                .await
                .map_err(|e| self.err("activity", &e))?;
            Ok(rows
                .iter()
                .map(|r| ActivityRow {
                    day: r.get(0),
                    app_title: r.get(1),
                    app_referer: r.get(2),
                    model: r.get(3),
                    provider_name: r.get(4),
                    requests: count(r.get(5)),
                    cost: dec(r.get(6)),
                    prompt_tokens: count(r.get(7)),
                    completion_tokens: count(r.get(8)),
                    reasoning_tokens: count(r.get(9)),
                })
                .collect())
        })
    }

    fn usage(&self, q: UsageQuery) -> BoxFut<'_, Result<Vec<UsageRow>>> {
        Box::pin(async move {
            let c = self.conn().await?;
            let sql = usage_sql(q.group);
            let rows = c
                .client
                .query(sql.as_str(), &[&q.user, &q.since_ms, &q.bucket()])
                .await
                .map_err(|e| self.err("usage", &e))?;
            Ok(rows
                .iter()
                .map(|r| UsageRow {
                    bucket_ms: r.get(0),
                    group: r.get(1),
                    requests: count(r.get(2)),
                    cost: dec(r.get(3)),
                    prompt_tokens: count(r.get(4)),
                    completion_tokens: count(r.get(5)),
                })
                .collect())
        })
    }

    fn totals(&self) -> BoxFut<'_, Result<Totals>> {
        Box::pin(async move {
            let c = self.conn().await?;
            let rows = c
                .client
                .query(&c.st[TOTALS], &[])
                .await
                .map_err(|e| self.err("totals", &e))?;
            let mut t = Totals {
                all: Decimal::ZERO,
                by_user: HashMap::new(),
                count: 0,
            };
            for r in rows {
                let user: Option<String> = r.get(0);
                let cost = dec(r.get(1));
                t.all += cost;
                t.count += count(r.get(2));
                if let Some(u) = user {
                    t.by_user.insert(u, cost);
                }
            }
            Ok(t)
        })
    }
}
