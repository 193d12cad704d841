//! In-process stores: [`MemoryLedger`], [`MemoryBudget`], [`MemoryRate`], [`MemorySticky`] (and the health window,
//! [`MemoryHealth`](crate::MemoryHealth)). Lost on exit; each process has its own.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use polyroute_core::Result;
use rust_decimal::Decimal;

use super::{
    now_ms, ActivityQuery, ActivityRow, BoxFut, Budget, GenerationRecord, HoldRequest, Ledger,
    LedgerQuery, RateDecision, RateLimiter, Refusal, ReservationId, Reserved, Scope, Span,
    SpendSummary, StickyStore, Totals, UsageGroup, UsageQuery, UsageRow, Window, DAY_MS,
};

/// The stores' maps hash with foldhash (seeded per map from the process's random state) rather than SipHash:
/// several lookups per request, keyed by generation ids, scopes and rate keys, some of them caller-chosen.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn ready<'a, T: Send + 'a>(v: T) -> BoxFut<'a, T> {
    Box::pin(std::future::ready(v))
}

// ---------------------------------------------------------------------------------------------------------------

/// How many records a [`MemoryLedger`] keeps by default (the router's ledger when no SQLite file is given).
pub const MEMORY_LEDGER_CAPACITY: usize = 10_000;

/// The newest records, kept in memory (lost on exit): at most a capacity, the oldest dropped first, so that a
/// long-running process does not grow by one record per request. Spend totals and limits do not depend on it
/// (the [`Budget`] keeps them); only [`Ledger::get`] of an older generation comes back empty, and the aggregates
/// cover the records kept. Records are boxed, so that growing the map moves pointers rather than records (a
/// rehash of a large map of records stalled every request behind the lock for milliseconds).
#[derive(Debug)]
pub struct MemoryLedger {
    recs: Mutex<MemoryRecords>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct MemoryRecords {
    by_id: HashMap<Arc<str>, Box<GenerationRecord>>,
    /// Insertion order, oldest first (the same shared ids as the map's keys).
    order: VecDeque<Arc<str>>,
}

impl Default for MemoryLedger {
    fn default() -> Self {
        Self::with_capacity(MEMORY_LEDGER_CAPACITY)
    }
}

impl MemoryLedger {
    /// A ledger keeping the newest `capacity` records (at least one).
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            recs: Mutex::new(MemoryRecords::default()),
            capacity: capacity.max(1),
        }
    }

    /// Number of records.
    #[must_use]
    pub fn len(&self) -> usize {
        lock(&self.recs).by_id.len()
    }

    /// Whether empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert_now(&self, rec: GenerationRecord) {
        let id: Arc<str> = Arc::from(rec.id.as_str());
        let rec = Box::new(rec);
        let mut m = lock(&self.recs);
        if m.by_id.insert(Arc::clone(&id), rec).is_none() {
            m.order.push_back(id);
        }
        // One record in, at most one out.
        if m.order.len() > self.capacity {
            if let Some(old) = m.order.pop_front() {
                m.by_id.remove(&old);
            }
        }
    }

    fn matching<'a>(
        m: &'a MemoryRecords,
        user: Option<&'a str>,
        since_ms: i64,
    ) -> impl Iterator<Item = &'a GenerationRecord> + 'a {
        m.order
            .iter()
            .filter_map(|id| m.by_id.get(id).map(AsRef::as_ref))
            .filter(move |r| {
                r.created_ms >= since_ms && user.is_none_or(|u| r.user.as_deref() == Some(u))
            })
    }
}

impl Ledger for MemoryLedger {
    fn insert(&self, rec: GenerationRecord) -> BoxFut<'_, Result<()>> {
        self.insert_now(rec);
        ready(Ok(()))
    }

    fn get(&self, id: &str) -> BoxFut<'_, Result<Option<GenerationRecord>>> {
        let r = lock(&self.recs)
            .by_id
            .get(id)
            .map(|r| GenerationRecord::clone(r));
        ready(Ok(r))
    }

    fn list(&self, q: LedgerQuery) -> BoxFut<'_, Result<Vec<GenerationRecord>>> {
        let m = lock(&self.recs);
        let mut v: Vec<GenerationRecord> =
            Self::matching(&m, q.user.as_deref(), q.since_ms.unwrap_or(i64::MIN))
                .cloned()
                .collect();
        drop(m);
        v.sort_by_key(|r| std::cmp::Reverse(r.created_ms));
        if let Some(n) = q.limit {
            v.truncate(n);
        }
        ready(Ok(v))
    }

    fn summary(&self, user: Option<&str>, since_ms: i64) -> BoxFut<'_, Result<SpendSummary>> {
        let m = lock(&self.recs);
        let mut s = SpendSummary::default();
        for r in Self::matching(&m, user, since_ms) {
            s.requests += 1;
            s.cost += r.cost;
            s.free_requests += u64::from(r.free);
        }
        ready(Ok(s))
    }

    fn activity(&self, q: ActivityQuery) -> BoxFut<'_, Result<Vec<ActivityRow>>> {
        let m = lock(&self.recs);
        let mut groups: BTreeMap<ActivityKey, ActivityRow> = BTreeMap::new();
        let until = q.until();
        for r in Self::matching(&m, Some(&q.user), q.since_ms).filter(|r| r.created_ms < until) {
            let day = r.created_ms.div_euclid(DAY_MS);
            let key = (
                day,
                r.app_title.clone(),
                r.app_referer.clone(),
                r.model.clone(),
                r.provider_name.clone(),
            );
            let g = groups.entry(key).or_insert_with(|| ActivityRow {
                day,
                app_title: r.app_title.clone(),
                app_referer: r.app_referer.clone(),
                model: r.model.clone(),
                provider_name: r.provider_name.clone(),
                ..ActivityRow::default()
            });
            add_activity(g, r);
        }
        ready(Ok(groups
            .into_values()
            .rev()
            .skip(q.offset)
            .take(q.page())
            .collect()))
    }

    fn usage(&self, q: UsageQuery) -> BoxFut<'_, Result<Vec<UsageRow>>> {
        let m = lock(&self.recs);
        let b = q.bucket();
        let mut groups: BTreeMap<(i64, Option<String>), UsageRow> = BTreeMap::new();
        for r in Self::matching(&m, q.user.as_deref(), q.since_ms) {
            let key = (r.created_ms.div_euclid(b) * b, usage_group(r, q.group));
            let g = groups.entry(key.clone()).or_insert_with(|| UsageRow {
                bucket_ms: key.0,
                group: key.1,
                ..UsageRow::default()
            });
            g.requests += 1;
            g.cost += r.cost;
            g.prompt_tokens += r.usage.prompt_tokens;
            g.completion_tokens += r.usage.completion_tokens;
        }
        ready(Ok(groups.into_values().collect()))
    }

    fn totals(&self) -> BoxFut<'_, Result<Totals>> {
        let m = lock(&self.recs);
        let mut t = Totals::default();
        for r in m.by_id.values() {
            add_total(&mut t, r.user.as_deref(), r.cost);
        }
        ready(Ok(t))
    }
}

/// The value of `group` for a record (see [`UsageGroup`]).
#[must_use]
pub fn usage_group(r: &GenerationRecord, group: UsageGroup) -> Option<String> {
    let set = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    match group {
        UsageGroup::App => set(&r.app_title).or_else(|| set(&r.app_referer)),
        UsageGroup::Model => Some(r.model.clone()),
        UsageGroup::Provider => Some(r.provider.clone()),
        UsageGroup::Key => r.user.clone(),
    }
}

/// (UTC day, app title, app referer, model, provider name).
type ActivityKey = (i64, Option<String>, Option<String>, String, String);

pub(crate) fn add_activity(g: &mut ActivityRow, r: &GenerationRecord) {
    g.requests += 1;
    g.cost += r.cost;
    g.prompt_tokens += r.usage.prompt_tokens;
    g.completion_tokens += r.usage.completion_tokens;
    g.reasoning_tokens += r.usage.completion_tokens_details.reasoning_tokens;
}

pub(crate) fn add_total(t: &mut Totals, user: Option<&str>, cost: Decimal) {
    t.all += cost;
    t.count += 1;
    if let Some(u) = user {
        *t.by_user.entry(u.to_string()).or_default() += cost;
    }
}

// ---------------------------------------------------------------------------------------------------------------

/// How many settled reservation ids a [`MemoryBudget`] remembers (for idempotent settles), at most.
pub const MEMORY_SETTLED_IDS: usize = 10_000;

#[derive(Debug)]
struct HoldEntry {
    amount: Decimal,
    scopes: Vec<Scope>,
    expires: Instant,
    seq: u64,
}

#[derive(Debug, Default)]
struct BudgetState {
    spent: HashMap<Scope, Decimal>,
    held: HashMap<Scope, Decimal>,
    holds: HashMap<ReservationId, HoldEntry>,
    /// Expiry index of `holds`.
    expiry: BTreeMap<(Instant, u64), ReservationId>,
    settled: HashMap<ReservationId, ()>,
    settled_order: VecDeque<ReservationId>,
    seq: u64,
}

impl BudgetState {
    fn unhold(&mut self, id: &ReservationId) -> bool {
        let Some(h) = self.holds.remove(id) else {
            return false;
        };
        self.expiry.remove(&(h.expires, h.seq));
        for s in &h.scopes {
            if let Some(v) = self.held.get_mut(s) {
                *v -= h.amount;
                if v.is_zero() {
                    self.held.remove(s);
                }
            }
        }
        true
    }

    fn expire(&mut self, now: Instant) {
        while let Some((&(at, seq), _)) = self.expiry.first_key_value() {
            if at > now {
                break;
            }
            if let Some(id) = self.expiry.remove(&(at, seq)) {
                self.unhold(&id);
            }
        }
    }

    fn remember_settled(&mut self, id: ReservationId) {
        if self.settled.insert(id.clone(), ()).is_none() {
            self.settled_order.push_back(id);
        }
        while self.settled_order.len() > MEMORY_SETTLED_IDS {
            if let Some(old) = self.settled_order.pop_front() {
                self.settled.remove(&old);
            }
        }
    }
}

/// Spend and holds in process memory, seeded from a ledger's totals at start ([`MemoryBudget::seeded`]).
#[derive(Debug, Default)]
pub struct MemoryBudget {
    state: Mutex<BudgetState>,
}

impl MemoryBudget {
    /// A budget whose settled spend starts at `totals` ([`seed_scopes`](super::seed_scopes)).
    #[must_use]
    pub fn seeded(totals: &Totals) -> Self {
        let mut st = BudgetState::default();
        st.spent.extend(super::seed_scopes(totals));
        Self {
            state: Mutex::new(st),
        }
    }

    fn reserve_now(&self, req: &HoldRequest) -> Reserved {
        let now = Instant::now();
        let mut st = lock(&self.state);
        st.expire(now);
        if st.holds.contains_key(&req.id) || st.settled.contains_key(&req.id) {
            return Reserved::Held;
        }
        for sl in &req.scopes {
            let Some(limit) = sl.limit else { continue };
            let spent = st.spent.get(&sl.scope).copied().unwrap_or_default();
            let held = st.held.get(&sl.scope).copied().unwrap_or_default();
            if spent + held + req.amount > limit {
                return Reserved::Refused(Refusal {
                    scope: sl.scope.clone(),
                    limit,
                    spent,
                    held,
                    amount: req.amount,
                });
            }
        }
        for sl in &req.scopes {
            *st.held.entry(sl.scope.clone()).or_default() += req.amount;
        }
        st.seq += 1;
        let seq = st.seq;
        let expires = now + req.ttl;
        st.expiry.insert((expires, seq), req.id.clone());
        st.holds.insert(
            req.id.clone(),
            HoldEntry {
                amount: req.amount,
                scopes: req.scopes.iter().map(|s| s.scope.clone()).collect(),
                expires,
                seq,
            },
        );
        Reserved::Held
    }

    fn settle_now(&self, id: &ReservationId, scopes: &[Scope], billed: Option<Decimal>) -> bool {
        let mut st = lock(&self.state);
        if st.settled.contains_key(id) {
            return false;
        }
        st.unhold(id);
        if let Some(c) = billed {
            for s in scopes {
                // The scope is cloned only the first time it spends.
                match st.spent.get_mut(s) {
                    Some(v) => *v += c,
                    None => {
                        st.spent.insert(s.clone(), c);
                    }
                }
            }
        }
        st.remember_settled(id.clone());
        true
    }
}

impl Budget for MemoryBudget {
    fn reserve(&self, req: &HoldRequest) -> BoxFut<'_, Result<Reserved>> {
        ready(Ok(self.reserve_now(req)))
    }

    fn settle(
        &self,
        id: &ReservationId,
        scopes: &[Scope],
        billed: Option<Decimal>,
    ) -> BoxFut<'_, Result<bool>> {
        ready(Ok(self.settle_now(id, scopes, billed)))
    }

    fn spent(&self, scope: &Scope) -> BoxFut<'_, Result<Decimal>> {
        ready(Ok(lock(&self.state)
            .spent
            .get(scope)
            .copied()
            .unwrap_or_default()))
    }

    fn held(&self, scope: &Scope) -> BoxFut<'_, Result<Decimal>> {
        let mut st = lock(&self.state);
        st.expire(Instant::now());
        ready(Ok(st.held.get(scope).copied().unwrap_or_default()))
    }

    fn release_now(&self, id: &ReservationId) -> bool {
        self.settle_now(id, &[], None);
        true
    }
}

// ---------------------------------------------------------------------------------------------------------------

/// Start (Unix ms) of what `span` covers at `now_ms`.
pub(crate) fn span_start(span: Span, now: i64) -> i64 {
    match span {
        Span::Sliding(d) => now - i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2),
        Span::UtcDay => now - now.rem_euclid(DAY_MS),
    }
}

/// `Duration` of whole seconds (at least one) from a millisecond wait.
pub(crate) fn retry_secs(wait_ms: i64) -> Duration {
    let secs = (wait_ms.max(0) + 999) / 1000;
    Duration::from_secs(u64::try_from(secs.max(1)).unwrap_or(1))
}

/// The decision for `windows` given the events `(at_ms, amount)` of one key, oldest first, at `now`.
pub(crate) fn decide(
    events: &[(i64, u64)],
    windows: &[Window],
    amount: u64,
    now: i64,
) -> RateDecision {
    for w in windows {
        let start = span_start(w.span, now);
        // Events inside the span: those after `start` (a sliding window counts `(start, now]`, a day `[start, now]`).
        let inside = |at: i64| match w.span {
            Span::Sliding(_) => at > start,
            Span::UtcDay => at >= start,
        };
        let used: u64 = events.iter().filter(|e| inside(e.0)).map(|e| e.1).sum();
        if used.saturating_add(amount) <= w.limit {
            continue;
        }
        let wait = match w.span {
            Span::UtcDay => DAY_MS - now.rem_euclid(DAY_MS),
            Span::Sliding(d) => {
                // The oldest events leave first; wait until enough have left.
                let span = i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2);
                let mut left = used.saturating_add(amount) - w.limit;
                let mut wait = span;
                for (at, a) in events.iter().filter(|e| inside(e.0)) {
                    wait = at + span - now;
                    left = left.saturating_sub(*a);
                    if left == 0 {
                        break;
                    }
                }
                wait
            }
        };
        return RateDecision::Limited {
            window: w.name.clone(),
            retry_after: retry_secs(wait),
        };
    }
    RateDecision::Allowed
}

/// Rate windows in process memory: per key, the counted events of the last day (or of the longest sliding window
/// asked about, when longer).
#[derive(Debug, Default)]
pub struct MemoryRate {
    keys: Mutex<HashMap<String, VecDeque<(i64, u64)>>>,
}

impl RateLimiter for MemoryRate {
    fn hit(&self, key: &str, windows: &[Window], amount: u64) -> BoxFut<'_, Result<RateDecision>> {
        let now = now_ms();
        let keep_from = windows
            .iter()
            .map(|w| span_start(w.span, now))
            .min()
            .unwrap_or(now)
            .min(now - DAY_MS);
        let mut m = lock(&self.keys);
        let q = m.entry(key.to_string()).or_default();
        while q.front().is_some_and(|e| e.0 < keep_from) {
            q.pop_front();
        }
        let d = decide(q.make_contiguous(), windows, amount, now);
        if d == RateDecision::Allowed {
            q.push_back((now, amount));
        }
        ready(Ok(d))
    }

    fn used(&self, key: &str, span: Span) -> BoxFut<'_, Result<u64>> {
        let now = now_ms();
        let start = span_start(span, now);
        let m = lock(&self.keys);
        let n = m.get(key).map_or(0, |q| {
            q.iter()
                .filter(|e| match span {
                    Span::Sliding(_) => e.0 > start,
                    Span::UtcDay => e.0 >= start,
                })
                .map(|e| e.1)
                .sum()
        });
        ready(Ok(n))
    }
}

// ---------------------------------------------------------------------------------------------------------------

/// How many conversations a [`MemorySticky`] remembers by default.
pub const MEMORY_STICKY_CAPACITY: usize = 100_000;

/// Sticky routing in process memory, bounded: 16 shards, each its own lock, map and insertion queue. Over
/// capacity a shard drops its oldest conversation (an expired one, when TTLs are alike), so an insert costs O(1)
/// amortized whatever the number of conversations, and no lock spans the whole store.
#[derive(Debug)]
pub struct MemorySticky {
    shards: Vec<Mutex<StickyShard>>,
    per_shard: usize,
}

const STICKY_SHARDS: usize = 16;

#[derive(Debug, Default)]
struct StickyShard {
    /// Key → (tag, expiry, generation of its newest queue entry).
    map: HashMap<u64, (String, Instant, u64)>,
    /// Keys in insertion order with the generation they were queued at (stale when the key was put again or
    /// forgotten since).
    queue: VecDeque<(u64, u64)>,
    gen: u64,
}

impl StickyShard {
    /// Drop the oldest live entry.
    fn evict_one(&mut self) {
        while let Some((k, g)) = self.queue.pop_front() {
            if self.map.get(&k).is_some_and(|e| e.2 == g) {
                self.map.remove(&k);
                return;
            }
        }
    }

    /// Rebuild the queue from live entries once stale ones dominate (amortized O(1) per put).
    fn compact(&mut self) {
        if self.queue.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.queue
                .retain(|(k, g)| map.get(k).is_some_and(|e| e.2 == *g));
        }
    }
}

impl Default for MemorySticky {
    fn default() -> Self {
        Self::with_capacity(MEMORY_STICKY_CAPACITY)
    }
}

impl MemorySticky {
    /// At most `capacity` conversations (at least one per shard).
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            shards: (0..STICKY_SHARDS)
                .map(|_| Mutex::new(StickyShard::default()))
                .collect(),
            per_shard: capacity.div_ceil(STICKY_SHARDS).max(1),
        }
    }

    fn shard(&self, key: u64) -> MutexGuard<'_, StickyShard> {
        // Keys are hashes already; mix anyway so that a pattern in low bits does not pick one shard.
        let i = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize % STICKY_SHARDS;
        lock(&self.shards[i])
    }

    /// Number of entries (expired ones included until evicted or read).
    #[must_use]
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).map.len()).sum()
    }

    /// Whether empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl StickyStore for MemorySticky {
    fn get(&self, key: u64) -> BoxFut<'_, Result<Option<String>>> {
        let mut m = self.shard(key);
        let r = match m.map.get(&key) {
            Some((tag, until, _)) if Instant::now() < *until => Some(tag.clone()),
            Some(_) => {
                m.map.remove(&key);
                None
            }
            None => None,
        };
        ready(Ok(r))
    }

    fn put(&self, key: u64, tag: &str, ttl: Duration) -> BoxFut<'_, Result<()>> {
        let now = Instant::now();
        let mut m = self.shard(key);
        if m.map.len() >= self.per_shard && !m.map.contains_key(&key) {
            m.evict_one();
        }
        m.gen += 1;
        let g = m.gen;
        m.map.insert(key, (tag.to_string(), now + ttl, g));
        m.queue.push_back((key, g));
        m.compact();
        ready(Ok(()))
    }

    fn forget(&self, key: u64) -> BoxFut<'_, Result<()>> {
        self.shard(key).map.remove(&key);
        ready(Ok(()))
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    /// Past capacity an insert stays O(1): 20,000 inserts into a full store of 100,000 conversations take about
    /// what 20,000 inserts into an empty one do (each used to scan the whole map).
    #[test]
    #[allow(clippy::unwrap_used)]
    fn sticky_inserts_past_capacity_stay_cheap() {
        let s = MemorySticky::with_capacity(100_000);
        let ttl = Duration::from_secs(600);
        let t0 = Instant::now();
        for k in 0..100_000u64 {
            block_on(s.put(k, "tag", ttl)).unwrap();
        }
        let fill = t0.elapsed();
        let t1 = Instant::now();
        for k in 100_000..120_000u64 {
            block_on(s.put(k, "tag", ttl)).unwrap();
        }
        let past = t1.elapsed();
        assert!(s.len() <= 100_000 + STICKY_SHARDS, "{}", s.len());
        // 20k inserts vs 100k inserts: past capacity must not be slower per insert by more than a wide margin.
        assert!(
            past < fill + Duration::from_millis(200),
            "fill {fill:?}, past capacity {past:?}"
        );
        // The newest are kept, the oldest gone.
        assert_eq!(block_on(s.get(119_999)).unwrap().as_deref(), Some("tag"));
        assert_eq!(block_on(s.get(0)).unwrap(), None);
        // Re-putting one key many times does not grow the queue without bound.
        for _ in 0..100_000 {
            block_on(s.put(7, "t", ttl)).unwrap();
        }
        let queued: usize = s.shards.iter().map(|m| lock(m).queue.len()).sum();
        assert!(queued < 300_000, "{queued}");
    }
    use futures::executor::block_on;
    use polyroute_core::Usage;
    use serde_json::Value;

    fn rec(id: &str, user: &str, cost: i64) -> GenerationRecord {
        GenerationRecord {
            id: id.to_string(),
            created_ms: 1,
            model: "m".into(),
            provider: "p".into(),
            provider_name: "P".into(),
            endpoint: "p".into(),
            streamed: false,
            usage: Usage::default(),
            cost: Decimal::new(cost, 2),
            cost_details: Value::Null.into(),
            finish_reason: None,
            attempts: Vec::new(),
            app_referer: None,
            app_title: None,
            user: Some(user.to_string()),
            free: false,
            latency_ms: 0.0,
            ttft_ms: None,
            dropped_params: Vec::new(),
            cancelled: false,
            session_id: None,
            overhead_ms: None,
            api_type: crate::ledger::ApiType::Completions,
        }
    }

    #[test]
    fn memory_ledger_keeps_the_newest_records() -> Result<()> {
        let l = MemoryLedger::with_capacity(3);
        for i in 0..5 {
            block_on(l.insert(rec(&format!("gen-{i}"), "k", i)))?;
        }
        assert_eq!(l.len(), 3);
        for i in 0..2 {
            assert!(
                block_on(l.get(&format!("gen-{i}")))?.is_none(),
                "gen-{i} kept"
            );
        }
        for i in 2..5 {
            assert_eq!(
                block_on(l.get(&format!("gen-{i}")))?.map(|r| r.cost),
                Some(Decimal::new(i, 2))
            );
        }
        // The same id again replaces the record and keeps one slot for it.
        block_on(l.insert(rec("gen-4", "k", 99)))?;
        assert_eq!(l.len(), 3);
        assert_eq!(
            block_on(l.get("gen-4"))?.map(|r| r.cost),
            Some(Decimal::new(99, 2))
        );
        assert!(block_on(l.get("gen-2"))?.is_some());
        block_on(l.insert(rec("gen-5", "k", 5)))?;
        assert!(block_on(l.get("gen-2"))?.is_none() && block_on(l.get("gen-3"))?.is_some());
        let t = block_on(l.totals())?;
        assert_eq!((t.count, t.all), (3, Decimal::new(3 + 99 + 5, 2)));
        Ok(())
    }

    #[test]
    fn memory_ledger_capacity_is_at_least_one_and_defaults_to_the_constant() -> Result<()> {
        let l = MemoryLedger::with_capacity(0);
        block_on(l.insert(rec("a", "k", 1)))?;
        block_on(l.insert(rec("b", "k", 1)))?;
        assert_eq!(l.len(), 1);
        assert!(block_on(l.get("b"))?.is_some());
        assert_eq!(MemoryLedger::default().capacity, MEMORY_LEDGER_CAPACITY);
        Ok(())
    }
}
