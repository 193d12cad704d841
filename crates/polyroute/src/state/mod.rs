//! State behind traits: everything the engine remembers between requests, so that one process or many share it.
//!
//! | trait | what | hot path | implementations |
//! |---|---|---|---|
//! | [`Ledger`] | one [`GenerationRecord`] per generation, and the aggregates `/generation`, `/key`, `/activity` and the dashboard read | after the answer | memory, SQLite |
//! | [`Budget`] | spend per [`Scope`] (router, user, gateway key) and holds against limits | admission, billing | memory, SQLite |
//! | [`RateLimiter`] | windows of counted events (the `:free` tiers today; per-key rpm/tpm next) | admission | memory, SQLite |
//! | [`StickyStore`] | conversation → endpoint tag, with a TTL | admission, billing | memory |
//! | [`HealthStore`] | attempt observations → planning snapshot (synchronous) | every attempt | memory |
//! | [`cache::ResponseCache`] | OpenRouter's opt-in response cache (used by front ends, not the engine) | before and after the answer | memory, Redis |
//!
//! Every trait but [`HealthStore`] is async with boxed futures ([`BoxFut`]), so a Redis or PostgreSQL store
//! implements it without blocking a runtime thread, and the engine calls the memory stores the same way. A store
//! shared between processes keeps no totals in process: each call reads or changes the shared state.
//! [`Stores`] holds one of each; give it to [`RouterBuilder::stores`](crate::RouterBuilder::stores).
//!
//! Money is [`Decimal`] everywhere; times are Unix milliseconds (`i64`) from the wall clock, so that a restarted
//! process and other processes agree on them.
//!
//! The `test-battery` cargo feature exposes `state::battery`: one set of contract checks that every implementation
//! must pass (`polyroute::state::battery::run_all(&stores)`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use polyroute_core::Result;
use rust_decimal::Decimal;

pub use crate::health::{HealthStore, MemoryHealth, Observation};
pub use crate::ledger::{GenerationRecord, Totals};

#[cfg(feature = "test-battery")]
pub mod battery;
pub mod cache;
pub mod memory;
pub mod policy;
pub mod sqlite;

/// A boxed, sendable future: what the async state traits return.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Milliseconds in a UTC day.
pub const DAY_MS: i64 = 86_400_000;

/// Unix milliseconds now (wall clock).
#[must_use]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------------------------
// Ledger
// ---------------------------------------------------------------------------------------------------------------

/// Spend of one user (or of all users) since a time: what `/key` shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpendSummary {
    /// Generations recorded.
    pub requests: u64,
    /// Their summed cost (USD).
    pub cost: Decimal,
    /// How many of them were `:free` models.
    pub free_requests: u64,
}

/// One `/activity` row: the generations of one UTC day, app, model and provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityRow {
    /// UTC day as days since 1970-01-01 (`created_ms.div_euclid(DAY_MS)`).
    pub day: i64,
    /// `X-Title` of the app (None when not sent).
    pub app_title: Option<String>,
    /// `HTTP-Referer` of the app (None when not sent).
    pub app_referer: Option<String>,
    /// Model that served.
    pub model: String,
    /// Provider display name.
    pub provider_name: String,
    /// Generations in the group.
    pub requests: u64,
    /// Their summed cost (USD).
    pub cost: Decimal,
    /// Summed prompt tokens.
    pub prompt_tokens: u64,
    /// Summed completion tokens.
    pub completion_tokens: u64,
    /// Summed reasoning tokens.
    pub reasoning_tokens: u64,
}

/// The most rows one [`Ledger::activity`] call returns (what the gateway's `/activity` pages by).
pub use polyroute_core::account_query::ACTIVITY_PAGE_MAX;

/// Which `/activity` rows [`Ledger::activity`] returns: one page of a user's groups, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityQuery {
    /// Only this user's records.
    pub user: String,
    /// Only records created at or after this time (Unix ms).
    pub since_ms: i64,
    /// Only records created before this time (Unix ms); None: no upper bound.
    pub until_ms: Option<i64>,
    /// Skip this many rows of the ordered result.
    pub offset: usize,
    /// At most this many rows (the store caps it at [`ACTIVITY_PAGE_MAX`]).
    pub limit: usize,
}

impl ActivityQuery {
    /// The row count actually returned at most (`limit` capped at [`ACTIVITY_PAGE_MAX`]).
    #[must_use]
    pub fn page(&self) -> usize {
        self.limit.min(ACTIVITY_PAGE_MAX)
    }

    /// The upper time bound actually used (exclusive; `i64::MAX` when none).
    #[must_use]
    pub fn until(&self) -> i64 {
        self.until_ms.unwrap_or(i64::MAX)
    }
}

/// Which records [`Ledger::list`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerQuery {
    /// Only this user's records (None: every user's, including records without a user).
    pub user: Option<String>,
    /// Only records created at or after this time (Unix ms).
    pub since_ms: Option<i64>,
    /// At most this many (the newest first); None: all that match.
    pub limit: Option<usize>,
}

/// What [`Ledger::usage`] groups records by, besides the time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UsageGroup {
    /// The calling app: its title (`X-OpenRouter-Title` / `X-Title`), else its `HTTP-Referer`; None when neither
    /// was sent (an empty value counts as not sent).
    App,
    /// The model that served.
    Model,
    /// The provider (slug) that served.
    Provider,
    /// The user key the generation is billed to (a gateway key's id); None for records without one.
    Key,
}

/// Which records [`Ledger::usage`] aggregates, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    /// Only this user's records (None: every record).
    pub user: Option<String>,
    /// Only records created at or after this time (Unix ms).
    pub since_ms: i64,
    /// Width of a time bucket in ms (values below 1 count as 1); buckets start at multiples of it since the
    /// Unix epoch (`created_ms.div_euclid(bucket_ms) * bucket_ms`).
    pub bucket_ms: i64,
    /// The second grouping.
    pub group: UsageGroup,
}

impl UsageQuery {
    /// The bucket width actually used (at least 1 ms).
    #[must_use]
    pub fn bucket(&self) -> i64 {
        self.bucket_ms.max(1)
    }
}

/// One [`Ledger::usage`] row: the records of one time bucket and group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageRow {
    /// Start of the bucket (Unix ms).
    pub bucket_ms: i64,
    /// The group's value (see [`UsageGroup`]).
    pub group: Option<String>,
    /// Generations in the row.
    pub requests: u64,
    /// Their summed cost (USD).
    pub cost: Decimal,
    /// Summed prompt tokens.
    pub prompt_tokens: u64,
    /// Summed completion tokens.
    pub completion_tokens: u64,
}

/// Where generation records are kept, and the queries the account endpoints need, aggregated by the store.
pub trait Ledger: Send + Sync + 'static {
    /// Store a record. Idempotent by `rec.id`: inserting an id that exists replaces that record (a replayed
    /// insert never makes a second row, and aggregates count it once). Durable when it returns for durable
    /// stores (SQLite, PostgreSQL); the memory store keeps a bounded number of the newest records.
    fn insert(&self, rec: GenerationRecord) -> BoxFut<'_, Result<()>>;

    /// Whether this ledger keeps `budget`'s spend in its own store, so that [`Ledger::insert_settled`] can write a
    /// record and its settle in one transaction.
    fn settles_with(&self, budget: &dyn Budget) -> bool {
        let _ = budget;
        false
    }

    /// Store `rec` and apply `settle` (as [`Budget::settle`] with `Some(billed)`) in one atomic write: after a
    /// crash both are there or neither is, and a failure applies neither. Only for a budget this ledger
    /// [`settles_with`](Ledger::settles_with); the engine otherwise inserts, then settles.
    fn insert_settled(&self, rec: GenerationRecord, settle: SettleOrder) -> BoxFut<'_, Result<()>> {
        let _ = (rec, settle);
        Box::pin(std::future::ready(Err(polyroute_core::Error::Internal {
            message: "this ledger cannot settle a budget with its records".into(),
        })))
    }

    /// Store `rec` and note `settle` as pending, in one atomic write, for a budget kept elsewhere that the engine
    /// settles after the answer (Redis beside PostgreSQL). A settle lost with its process (killed before the
    /// budget answered) then stays noted until [`Ledger::pending_settles`] hands it to
    /// [`Router::sweep_settles`](crate::Router::sweep_settles); the engine forgets the note once the settle
    /// landed ([`Ledger::settles_landed`]). Answers whether the settle was noted: the default inserts `rec` alone
    /// and answers false.
    fn insert_noting_settle(
        &self,
        rec: GenerationRecord,
        settle: &SettleOrder,
    ) -> BoxFut<'_, Result<bool>> {
        let _ = settle;
        Box::pin(async move { self.insert(rec).await.map(|()| false) })
    }

    /// Forget the noted settles of these ids (they reached their budget).
    fn settles_landed(&self, ids: &[ReservationId]) -> BoxFut<'_, Result<()>> {
        let _ = ids;
        Box::pin(std::future::ready(Ok(())))
    }

    /// Noted settles whose generation was created before `before_ms`, oldest first, at most `limit`.
    fn pending_settles(
        &self,
        before_ms: i64,
        limit: usize,
    ) -> BoxFut<'_, Result<Vec<PendingSettle>>> {
        let _ = (before_ms, limit);
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    /// The record with this id, if kept.
    fn get(&self, id: &str) -> BoxFut<'_, Result<Option<GenerationRecord>>>;

    /// Records matching `q`, newest first (ties: any order), at most `q.limit`.
    fn list(&self, q: LedgerQuery) -> BoxFut<'_, Result<Vec<GenerationRecord>>>;

    /// Count, cost and `:free` count of `user`'s records (None: all records) created at or after `since_ms`.
    /// Computed by the store (an SQL aggregate, not every record loaded into the caller).
    fn summary(&self, user: Option<&str>, since_ms: i64) -> BoxFut<'_, Result<SpendSummary>>;

    /// `q.user`'s records created in `[q.since_ms, q.until_ms)`, grouped by (UTC day, app title, app referer,
    /// model, provider name); rows in descending order of that tuple (newest day first, Some before None, strings
    /// compared bytewise), then `q.offset` rows skipped and at most [`ActivityQuery::page`] returned. Computed by
    /// the store: one call's memory is bounded by the page whatever the ledger size.
    fn activity(&self, q: ActivityQuery) -> BoxFut<'_, Result<Vec<ActivityRow>>>;

    /// Spend totals over every record kept (router-wide and per user): what a process-local [`Budget`] seeds its
    /// spend from at start.
    fn totals(&self) -> BoxFut<'_, Result<Totals>>;

    /// Records matching `q` grouped by (time bucket, [`UsageGroup`] value): what the gateway's dashboard charts.
    /// Rows in ascending order of (bucket, group), None before Some, groups compared bytewise. Computed by the
    /// store (an SQL aggregate, not every record loaded into the caller).
    fn usage(&self, q: UsageQuery) -> BoxFut<'_, Result<Vec<UsageRow>>>;
}

// ---------------------------------------------------------------------------------------------------------------
// Budget
// ---------------------------------------------------------------------------------------------------------------

/// Who a spend is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// The whole router (every generation).
    Router,
    /// One user key of the engine (`RequestContext::user`).
    User(String),
    /// One gateway API key (its credit limit).
    Key(String),
}

impl Scope {
    /// A stable text form for stores that key by string: `router`, `user:<id>`, `key:<id>`.
    #[must_use]
    pub fn as_key(&self) -> String {
        // Built by hand: `format!` costs about four times as much, on every settle of every request.
        let (prefix, id) = match self {
            Scope::Router => return "router".to_string(),
            Scope::User(u) => ("user:", u),
            Scope::Key(k) => ("key:", k),
        };
        let mut s = String::with_capacity(prefix.len() + id.len());
        s.push_str(prefix);
        s.push_str(id);
        s
    }

    /// The scope of a text form [`Scope::as_key`] wrote.
    #[must_use]
    pub fn from_key(key: &str) -> Option<Scope> {
        if key == "router" {
            return Some(Scope::Router);
        }
        if let Some(u) = key.strip_prefix("user:") {
            return Some(Scope::User(u.to_string()));
        }
        key.strip_prefix("key:").map(|k| Scope::Key(k.to_string()))
    }
}

/// A scope a reservation counts against, and its limit there (None: counted, never refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeLimit {
    /// The scope.
    pub scope: Scope,
    /// Most the scope may spend, in USD (settled spend + live holds + this hold must stay at or below it).
    pub limit: Option<Decimal>,
}

/// The id of a reservation: unique per request (the engine uses the generation id). Settling is idempotent by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReservationId(pub String);

impl std::fmt::Display for ReservationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A settle written with its generation record ([`Ledger::insert_settled`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettleOrder {
    /// The reservation settled (the generation id).
    pub id: ReservationId,
    /// Every scope of the reservation.
    pub scopes: Vec<Scope>,
    /// The cost added to each scope's spend.
    pub billed: Decimal,
}

/// A settle noted with its generation record ([`Ledger::insert_noting_settle`]) and not yet known to have
/// reached its budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSettle {
    /// The settle.
    pub order: SettleOrder,
    /// When its generation was created (ms since the epoch).
    pub created_ms: i64,
}

/// A hold to place: `amount` against every scope in `scopes`, alive until settled or until `ttl` passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRequest {
    /// Unique id (settle and release by it).
    pub id: ReservationId,
    /// The worst-case cost of the request (USD, ≥ 0).
    pub amount: Decimal,
    /// Every scope the request's spend counts against (the router's, a user's, a key's), each with its limit.
    pub scopes: Vec<ScopeLimit>,
    /// After this the hold no longer counts (a crashed process frees its holds); the engine uses the request's
    /// total timeout plus a margin.
    pub ttl: Duration,
}

/// Why a hold was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The first scope (in the request's order) whose limit the hold would exceed.
    pub scope: Scope,
    /// That scope's limit.
    pub limit: Decimal,
    /// Its settled spend.
    pub spent: Decimal,
    /// Its live holds (other requests in flight).
    pub held: Decimal,
    /// The amount asked for.
    pub amount: Decimal,
}

/// What [`Budget::reserve`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// The hold is placed on every scope.
    Held,
    /// Nothing was placed.
    Refused(Refusal),
}

/// Spend and holds per [`Scope`]. The engine holds money only through a [`Reservation`](crate::Reservation)
/// guard, which settles on billing and releases when dropped.
pub trait Budget: Send + Sync + 'static {
    /// Atomically, over all scopes of `req`: when for every scope with a limit `spent + live holds + amount ≤
    /// limit`, place the hold on every scope and answer [`Reserved::Held`]; otherwise place nothing and answer
    /// the first refusing scope. Expired holds (older than their `ttl`) do not count and may be removed here.
    /// Reserving an id that is already held or settled places nothing more and answers `Held`.
    fn reserve(&self, req: &HoldRequest) -> BoxFut<'_, Result<Reserved>>;

    /// End the reservation `id`: remove its hold (if still live) from every scope, and when `billed` is Some add
    /// that cost to the spend of every scope in `scopes` (the same scopes as reserved). Idempotent by `id`: the
    /// first call applies and answers `true`; later calls with the same id change nothing and answer `false`
    /// (a replayed settle never bills twice). A settle after the hold expired still adds `billed` (spend is
    /// spend). Shared stores remember settled ids for at least a day; the memory store remembers the newest
    /// [`MEMORY_SETTLED_IDS`](memory::MEMORY_SETTLED_IDS).
    fn settle(
        &self,
        id: &ReservationId,
        scopes: &[Scope],
        billed: Option<Decimal>,
    ) -> BoxFut<'_, Result<bool>>;

    /// Settled spend of `scope` (holds not included). Read from the store on every call for shared stores.
    fn spent(&self, scope: &Scope) -> BoxFut<'_, Result<Decimal>>;

    /// Live (unexpired, unsettled) holds on `scope`.
    fn held(&self, scope: &Scope) -> BoxFut<'_, Result<Decimal>>;

    /// Release `id` without billing, synchronously, when the store can do so without I/O (the memory store);
    /// answers whether it did. A reservation dropped without billing calls this first and falls back to a
    /// spawned [`Budget::settle`]`(id, scopes, None)`, so in-process releases are visible at once.
    fn release_now(&self, id: &ReservationId) -> bool {
        let _ = id;
        false
    }

    /// This budget as [`Any`](std::any::Any), for a ledger of the same store to recognize it
    /// ([`Ledger::settles_with`]); None for budgets no ledger writes.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }

    /// Whether each call is a network round trip (Redis, PostgreSQL). The engine then settles after the answer
    /// is sent (retrying until the store answers) and places the hold in the same round trip as the sticky
    /// lookup; for local stores it settles before answering.
    fn is_remote(&self) -> bool {
        false
    }
}

/// The spend of each scope implied by a ledger's totals, for seeding a budget that starts without its own
/// history: the router's total, and each user's total as that user's spend and as the spend of the gateway key
/// of the same id (a gateway bills a key as its user, and records carry the user only).
#[must_use]
pub fn seed_scopes(t: &Totals) -> Vec<(Scope, Decimal)> {
    let mut v = vec![(Scope::Router, t.all)];
    for (u, c) in &t.by_user {
        v.push((Scope::User(u.clone()), *c));
        v.push((Scope::Key(u.clone()), *c));
    }
    v
}

// ---------------------------------------------------------------------------------------------------------------
// Rate limiter
// ---------------------------------------------------------------------------------------------------------------

/// How long a window counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// The last `Duration` (sliding).
    Sliding(Duration),
    /// The current UTC day (resets at midnight UTC).
    UtcDay,
}

/// One limit: at most `limit` units within `span`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Its name, reported when it refuses (`free-models-per-minute`).
    pub name: String,
    /// Most units in the span.
    pub limit: u64,
    /// The span.
    pub span: Span,
}

/// What [`RateLimiter::hit`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum RateDecision {
    /// Counted in every window.
    Allowed,
    /// Counted nowhere: `window` is full.
    Limited {
        /// Name of the first full window (in the order given).
        window: String,
        /// When a unit frees up in it (at least 1 s).
        retry_after: Duration,
    },
}

/// Counted events in windows, per key (a user key, or `""` for the router). Free-tier limits today; per-key
/// requests and tokens per minute later (hit with `amount` = tokens).
pub trait RateLimiter: Send + Sync + 'static {
    /// Atomically over all `windows` of `key`: when every window has room for `amount` more units (its count in
    /// span + `amount` ≤ `limit`), count `amount` at now in all of them and answer `Allowed`; otherwise count
    /// nothing and answer the first full window with the time until it has room. Counts survive a restart for
    /// durable stores and are shared between processes for shared stores.
    fn hit(&self, key: &str, windows: &[Window], amount: u64) -> BoxFut<'_, Result<RateDecision>>;

    /// Units counted for `key` in `span` now (for `/key` and tests).
    fn used(&self, key: &str, span: Span) -> BoxFut<'_, Result<u64>>;
}

// ---------------------------------------------------------------------------------------------------------------
// Sticky routing
// ---------------------------------------------------------------------------------------------------------------

/// Conversation (a hash of its model and opening or session key) → the endpoint tag that served it.
pub trait StickyStore: Send + Sync + 'static {
    /// The tag stored for `key` if its TTL has not passed.
    fn get(&self, key: u64) -> BoxFut<'_, Result<Option<String>>>;
    /// Store `tag` for `key` for `ttl` (replacing any earlier tag). Bounded: a store may drop entries (expired
    /// first) to stay under its capacity.
    fn put(&self, key: u64, tag: &str, ttl: Duration) -> BoxFut<'_, Result<()>>;
    /// Forget `key` (its endpoint failed). Forgetting a missing key is not an error.
    fn forget(&self, key: u64) -> BoxFut<'_, Result<()>>;

    /// Whether each call is a network round trip: the engine then stores the served endpoint after the answer
    /// is sent, and looks it up in the same round trip as the budget hold.
    fn is_remote(&self) -> bool {
        false
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Stores
// ---------------------------------------------------------------------------------------------------------------

/// One store of each kind: the engine's whole state.
#[derive(Clone)]
pub struct Stores {
    /// Generation records.
    pub ledger: Arc<dyn Ledger>,
    /// Spend and holds.
    pub budget: Arc<dyn Budget>,
    /// Rate windows.
    pub rate: Arc<dyn RateLimiter>,
    /// Sticky routing.
    pub sticky: Arc<dyn StickyStore>,
    /// Endpoint health (synchronous).
    pub health: Arc<dyn HealthStore>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stores")
    }
}

impl Stores {
    /// Everything in process memory (the library default): a bounded memory ledger, a budget seeded at zero.
    #[must_use]
    pub fn memory() -> Self {
        Self {
            ledger: Arc::new(memory::MemoryLedger::default()),
            budget: Arc::new(memory::MemoryBudget::default()),
            rate: Arc::new(memory::MemoryRate::default()),
            sticky: Arc::new(memory::MemorySticky::default()),
            health: Arc::new(MemoryHealth::default()),
        }
    }

    /// Ledger, budget and rate windows in one SQLite file (durable, shared by the processes on this machine that
    /// open the same file); sticky routing and health in memory.
    ///
    /// # Errors
    /// The file cannot be opened or initialized.
    pub fn sqlite(path: &std::path::Path) -> Result<Self> {
        let db = sqlite::SqliteStore::open(path)?;
        Ok(Self {
            ledger: Arc::new(db.ledger()),
            budget: Arc::new(db.budget()),
            rate: Arc::new(db.rate()),
            sticky: Arc::new(memory::MemorySticky::default()),
            health: Arc::new(MemoryHealth::default()),
        })
    }
}

/// The oldest noted settle [`sweep_settles`] applies (budgets remember settled ids for 25 hours).
const SWEEP_HORIZON: Duration = Duration::from_secs(23 * 3_600);

/// Apply to `budget` the settles `ledger` noted with their records ([`Ledger::insert_noting_settle`]) and never
/// saw land: their process was killed between a generation's answer and its settle reaching a remote budget.
/// Only generations created at least `min_age` ago are swept; answers how many settles were applied.
///
/// Safe beside live processes: a budget settles each id once, so a settle that did land, or lands meanwhile, is
/// not counted twice. A note older than 23 hours is forgotten unapplied and logged as an error, since budgets
/// remember settled ids for about a day and applying it could count it twice.
///
/// # Errors
/// The ledger or the budget failed; what was applied before stays applied.
pub async fn sweep_settles(
    ledger: &dyn Ledger,
    budget: &dyn Budget,
    min_age: Duration,
) -> Result<usize> {
    const BATCH: usize = 256;
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let now = crate::router::now_ms();
    let (before, horizon) = (now - ms(min_age), now - ms(SWEEP_HORIZON));
    let mut applied = 0;
    loop {
        let batch = ledger.pending_settles(before, BATCH).await?;
        let mut done = Vec::with_capacity(batch.len());
        for p in &batch {
            if p.created_ms < horizon {
                tracing::error!(id = %p.order.id, cost = %p.order.billed,
                                "noted settle too old to apply safely: the spend is in the ledger, not in the budget");
            } else {
                budget
                    .settle(&p.order.id, &p.order.scopes, Some(p.order.billed))
                    .await?;
                tracing::warn!(id = %p.order.id, cost = %p.order.billed,
                               "applied a settle its process did not confirm");
                applied += 1;
            }
            done.push(p.order.id.clone());
        }
        ledger.settles_landed(&done).await?;
        if batch.len() < BATCH {
            return Ok(applied);
        }
    }
}

/// Run [`sweep_settles`] every half of `min_age` (at least 50 ms, at most 30 s) on a task of the current runtime,
/// until the ledger or the budget is dropped.
pub fn spawn_settle_sweep(ledger: &Arc<dyn Ledger>, budget: &Arc<dyn Budget>, min_age: Duration) {
    let every = (min_age / 2).clamp(Duration::from_millis(50), Duration::from_secs(30));
    let (ledger, budget) = (Arc::downgrade(ledger), Arc::downgrade(budget));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let (Some(l), Some(b)) = (ledger.upgrade(), budget.upgrade()) else {
                return;
            };
            match sweep_settles(&*l, &*b, min_age).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(applied = n, "applied settles noted by stopped processes"),
                Err(e) => tracing::warn!(error = %e, "settle sweep failed; retrying"),
            }
        }
    });
}
