//! The contract battery: checks every [`Stores`] implementation must pass, run by this crate against the memory
//! and SQLite stores and by store crates (Redis, PostgreSQL) against theirs. Enable the `test-battery` feature:
//!
//! ```toml
//! [dev-dependencies]
//! polyroute = { version = "…", features = ["test-battery"] }
//! ```
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread")]
//! async fn redis_stores_pass_the_battery() {
//!     let stores = my_redis_stores().await;            // a polyroute::Stores
//!     polyroute::state::battery::run_all(&stores).await.unwrap();
//! }
//! ```
//!
//! Every check uses fresh, unique user and key names, so a shared store (one Redis database for many test runs)
//! can be used as it is, and the checks may run concurrently. The router-wide scope is never limited here. A
//! check answers `Err(what failed)`; checks with holds or windows sleep a few hundred milliseconds for TTLs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use polyroute_core::Usage;
use rust_decimal::Decimal;
use serde_json::Value;

use super::{
    now_ms, ActivityQuery, GenerationRecord, HoldRequest, LedgerQuery, PendingSettle, RateDecision,
    Refusal, ReservationId, Reserved, Scope, ScopeLimit, SettleOrder, Span, Stores, UsageGroup,
    UsageQuery, UsageRow, Window, DAY_MS,
};

/// What a failed check reports.
pub type Outcome = std::result::Result<(), String>;

macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

fn st<T>(r: polyroute_core::Result<T>, what: &str) -> std::result::Result<T, String> {
    r.map_err(|e| format!("{what}: store error: {e}"))
}

/// A name no other check (or run) uses.
#[must_use]
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!(
        "{prefix}-{}-{}-{n}",
        std::process::id(),
        now_ms().rem_euclid(1_000_000_000)
    )
}

fn usd(s: &str) -> Decimal {
    s.parse().unwrap_or_default()
}

/// A record for the ledger checks.
#[must_use]
pub fn record(id: &str, user: Option<&str>, created_ms: i64, cost: &str) -> GenerationRecord {
    GenerationRecord {
        id: id.to_string(),
        created_ms,
        model: "test/model".into(),
        provider: "alpha".into(),
        provider_name: "Alpha".into(),
        endpoint: "alpha".into(),
        streamed: false,
        usage: Usage {
            prompt_tokens: 10,
            completion_tokens: 5,
            total_tokens: 15,
            ..Usage::default()
        },
        cost: usd(cost),
        cost_details: Value::Null.into(),
        finish_reason: Some("stop".into()),
        attempts: Vec::new(),
        app_referer: None,
        app_title: None,
        user: user.map(str::to_string),
        free: false,
        latency_ms: 1.0,
        ttft_ms: Some(0.5),
        dropped_params: Vec::new(),
        cancelled: false,
        session_id: None,
        overhead_ms: None,
        api_type: crate::ledger::ApiType::Completions,
    }
}

/// Run every check; the first failure is returned.
///
/// # Errors
/// What failed.
pub async fn run_all(s: &Stores) -> Outcome {
    ledger_insert_get_replace(s).await?;
    ledger_summary_activity_list(s).await?;
    ledger_usage_buckets(s).await?;
    ledger_notes_settles(s).await?;
    budget_holds_against_limits(s).await?;
    budget_settle_is_idempotent(s).await?;
    budget_release_frees_the_hold(s).await?;
    budget_holds_expire(s).await?;
    budget_scopes_are_atomic(s).await?;
    budget_concurrent_holds_never_exceed_the_limit(s).await?;
    rate_windows_count_and_refuse(s).await?;
    rate_concurrent_hits_never_exceed_the_limit(s).await?;
    sticky_put_get_forget_expire(s).await?;
    Ok(())
}

/// Settles noted with their records ([`Ledger::insert_noting_settle`](super::Ledger::insert_noting_settle)),
/// for a ledger that notes them: listed oldest first by age and up to a limit, forgotten by id, noted once when
/// the insert is replayed, never noted under the record's id for another reservation. A ledger that notes nothing
/// must still store the record and list no note of it.
///
/// # Errors
/// What failed.
pub async fn ledger_notes_settles(s: &Stores) -> Outcome {
    let l = &s.ledger;
    let user = unique("noted");
    let order = |id: &str, billed: &str| SettleOrder {
        id: ReservationId(id.into()),
        scopes: vec![
            Scope::Router,
            Scope::User(format!("{user} \"q\"")),
            Scope::Key(format!("{user}:k")),
        ],
        billed: usd(billed),
    };
    let ours = |all: Vec<PendingSettle>, ids: &[&str]| -> Vec<PendingSettle> {
        all.into_iter()
            .filter(|p| ids.contains(&p.order.id.0.as_str()))
            .collect()
    };
    let (n1, n2, n3) = (
        format!("{user}-1"),
        format!("{user}-2"),
        format!("{user}-3"),
    );
    let ids = [n1.as_str(), n2.as_str(), n3.as_str()];
    let first = st(
        l.insert_noting_settle(record(&n2, Some(&user), 2_000, "0.25"), &order(&n2, "0.25"))
            .await,
        "insert noting",
    )?;
    if !first {
        check!(
            st(l.get(&n2).await, "get")?.is_some(),
            "a ledger that notes nothing stores the record all the same"
        );
        let notes = ours(st(l.pending_settles(i64::MAX, 1_000).await, "list")?, &ids);
        check!(
            notes.is_empty(),
            "no note was taken, yet {notes:?} is listed"
        );
        return Ok(());
    }
    for _ in 0..2 {
        // The second time is a replayed insert: noted once.
        let noted = st(
            l.insert_noting_settle(
                record(&n1, Some(&user), 1_000, "0.000000000001"),
                &order(&n1, "0.000000000001"),
            )
            .await,
            "insert noting",
        )?;
        check!(
            noted,
            "a noting ledger noted the first settle but not {n1}'s"
        );
    }
    let other = st(
        l.insert_noting_settle(record(&n3, Some(&user), 500, "1"), &order("other", "1"))
            .await,
        "insert noting another id",
    )?;
    check!(
        !other,
        "a settle for another id was noted under the record's"
    );
    check!(
        st(l.get(&n3).await, "get")?.is_some(),
        "{n3} was not stored"
    );
    let all = ours(st(l.pending_settles(i64::MAX, 1_000).await, "list")?, &ids);
    let want = vec![
        PendingSettle {
            order: order(&n1, "0.000000000001"),
            created_ms: 1_000,
        },
        PendingSettle {
            order: order(&n2, "0.25"),
            created_ms: 2_000,
        },
    ];
    check!(all == want, "notes {all:?}, want {want:?}");
    let before = ours(st(l.pending_settles(2_000, 1_000).await, "list")?, &ids);
    check!(before == want[..1], "notes created before 2000: {before:?}");
    let one = st(l.pending_settles(i64::MAX, 1).await, "list")?;
    check!(one.len() == 1, "a limit of 1 listed {}", one.len());
    st(
        l.settles_landed(&[ReservationId(n1.clone())]).await,
        "forget",
    )?;
    let left = ours(st(l.pending_settles(i64::MAX, 1_000).await, "list")?, &ids);
    check!(left == want[1..], "after forgetting {n1}: {left:?}");
    st(
        l.settles_landed(&[ReservationId(n2.clone())]).await,
        "forget",
    )?;
    Ok(())
}

/// Insert, get, and insert the same id again: replaced, counted once.
///
/// # Errors
/// What failed.
pub async fn ledger_insert_get_replace(s: &Stores) -> Outcome {
    let user = unique("ledger-user");
    let id = unique("gen");
    let now = now_ms();
    st(
        s.ledger.insert(record(&id, Some(&user), now, "0.25")).await,
        "insert",
    )?;
    let got = st(s.ledger.get(&id).await, "get")?;
    check!(
        got.as_ref().map(|r| r.cost) == Some(usd("0.25")),
        "get after insert: {got:?}"
    );
    check!(
        st(s.ledger.get(&unique("missing")).await, "get")?.is_none(),
        "an unknown id must be None"
    );
    let mut again = record(&id, Some(&user), now, "0.5");
    again.cancelled = true;
    st(s.ledger.insert(again.clone()).await, "insert again")?;
    let got = st(s.ledger.get(&id).await, "get")?;
    check!(
        got.as_ref() == Some(&again),
        "a second insert replaces: {got:?}"
    );
    let sum = st(s.ledger.summary(Some(&user), 0).await, "summary")?;
    check!(
        sum.requests == 1 && sum.cost == usd("0.5"),
        "a replayed insert is counted once: {sum:?}"
    );
    Ok(())
}

/// `summary`, `activity` and `list` over one user's records on two days, with another user's beside them.
///
/// # Errors
/// What failed.
pub async fn ledger_summary_activity_list(s: &Stores) -> Outcome {
    let user = unique("activity-user");
    let other = unique("activity-other");
    let today = now_ms() - now_ms().rem_euclid(DAY_MS) + 1000;
    let yesterday = today - DAY_MS;
    let mut recs = vec![
        record(&unique("gen"), Some(&user), yesterday, "0.1"),
        record(&unique("gen"), Some(&user), today, "0.2"),
        record(&unique("gen"), Some(&user), today + 1, "0.3"),
        record(&unique("gen"), Some(&other), today, "7"),
    ];
    recs[2].app_title = Some("App".into());
    recs[2].free = true;
    recs[2].usage.completion_tokens_details.reasoning_tokens = 2;
    for r in &recs {
        st(s.ledger.insert(r.clone()).await, "insert")?;
    }
    let all = st(s.ledger.summary(Some(&user), yesterday).await, "summary")?;
    check!(
        (all.requests, all.cost, all.free_requests) == (3, usd("0.6"), 1),
        "summary since yesterday: {all:?}"
    );
    let day = st(s.ledger.summary(Some(&user), today).await, "summary")?;
    check!(
        (day.requests, day.cost) == (2, usd("0.5")),
        "summary since today: {day:?}"
    );
    let page = |offset: usize, limit: usize, until_ms: Option<i64>| ActivityQuery {
        user: user.clone(),
        since_ms: yesterday,
        until_ms,
        offset,
        limit,
    };
    let rows = st(s.ledger.activity(page(0, 10, None)).await, "activity")?;
    check!(
        rows.len() == 3,
        "three groups (two days, two apps today): {rows:?}"
    );
    check!(
        rows[2].day == yesterday.div_euclid(DAY_MS) && rows[2].cost == usd("0.1"),
        "newest day first: {rows:?}"
    );
    check!(
        rows[0].app_title.as_deref() == Some("App") && rows[1].app_title.is_none(),
        "an app before no app: {rows:?}"
    );
    check!(
        rows[0].requests == 1
            && rows[0].prompt_tokens == 10
            && rows[0].completion_tokens == 5
            && rows[0].reasoning_tokens == 2
            && rows[0].provider_name == "Alpha"
            && rows[0].model == "test/model",
        "sums of a group: {rows:?}"
    );
    let second = st(s.ledger.activity(page(1, 1, None)).await, "activity page")?;
    check!(
        second == rows[1..2],
        "offset 1, limit 1: the second row only: {second:?}"
    );
    let past = st(s.ledger.activity(page(2, 5, None)).await, "activity page")?;
    check!(past == rows[2..], "the last page: {past:?}");
    let none = st(s.ledger.activity(page(0, 0, None)).await, "activity page")?;
    check!(none.is_empty(), "limit 0: no rows: {none:?}");
    let day = st(
        s.ledger.activity(page(0, 10, Some(today - 1000))).await,
        "activity until",
    )?;
    check!(
        day == rows[2..],
        "until the start of today: yesterday only: {day:?}"
    );
    check!(
        rows.iter().map(|r| r.cost).sum::<Decimal>() == usd("0.6"),
        "another user's records are not in the activity: {rows:?}"
    );
    let listed = st(
        s.ledger
            .list(LedgerQuery {
                user: Some(user.clone()),
                since_ms: Some(today),
                limit: Some(1),
            })
            .await,
        "list",
    )?;
    check!(
        listed.len() == 1 && listed[0].id == recs[2].id,
        "list: newest first, limited: {listed:?}"
    );
    Ok(())
}

/// `usage`: one user's records in two hourly buckets grouped by app, model, provider and key, bucket starts,
/// the `since` bound, and every user's records grouped by key (another user's beside them).
///
/// # Errors
/// What failed.
pub async fn ledger_usage_buckets(s: &Stores) -> Outcome {
    const HOUR: i64 = 3_600_000;
    let user = unique("usage-user");
    let other = unique("usage-other");
    let b0 = now_ms().div_euclid(HOUR) * HOUR - 2 * HOUR;
    let b1 = b0 + HOUR;
    let mut recs = vec![
        record(&unique("gen"), Some(&user), b0 + 1000, "0.1"),
        record(&unique("gen"), Some(&user), b0 + 2000, "0.2"),
        record(&unique("gen"), Some(&user), b0 + 3000, "0.4"),
        record(&unique("gen"), Some(&user), b1 + 5, "0.3"),
        record(&unique("gen"), Some(&other), b0 + 1000, "5"),
    ];
    recs[0].app_title = Some("App A".into());
    recs[0].app_referer = Some("https://ignored.example".into());
    recs[1].app_referer = Some("https://b.example".into());
    recs[1].model = "test/other".into();
    recs[1].usage.completion_tokens = 7;
    recs[3].app_title = Some(String::new());
    recs[3].app_referer = Some("https://c.example".into());
    recs[4].provider = "beta".into();
    for r in &recs {
        st(s.ledger.insert(r.clone()).await, "insert")?;
    }
    let q = |group, since_ms, user: Option<&str>| UsageQuery {
        user: user.map(str::to_string),
        since_ms,
        bucket_ms: HOUR,
        group,
    };
    let brief = |rows: &[UsageRow]| -> Vec<(i64, Option<String>, u64, Decimal)> {
        rows.iter()
            .map(|r| (r.bucket_ms, r.group.clone(), r.requests, r.cost))
            .collect()
    };
    let some = |t: &str| Some(t.to_string());

    let rows = st(
        s.ledger.usage(q(UsageGroup::App, b0, Some(&user))).await,
        "usage",
    )?;
    let want = vec![
        (b0, None, 1, usd("0.4")),
        (b0, some("App A"), 1, usd("0.1")),
        (b0, some("https://b.example"), 1, usd("0.2")),
        (b1, some("https://c.example"), 1, usd("0.3")),
    ];
    check!(
        brief(&rows) == want,
        "by app (title, else referer; none first): {rows:?}"
    );

    let rows = st(
        s.ledger.usage(q(UsageGroup::Model, b0, Some(&user))).await,
        "usage",
    )?;
    let want = vec![
        (b0, some("test/model"), 2, usd("0.5")),
        (b0, some("test/other"), 1, usd("0.2")),
        (b1, some("test/model"), 1, usd("0.3")),
    ];
    check!(brief(&rows) == want, "by model: {rows:?}");
    check!(
        rows[0].prompt_tokens == 20
            && rows[0].completion_tokens == 10
            && rows[1].completion_tokens == 7,
        "token sums: {rows:?}"
    );

    let rows = st(
        s.ledger
            .usage(q(UsageGroup::Provider, b1, Some(&user)))
            .await,
        "usage",
    )?;
    check!(
        brief(&rows) == vec![(b1, some("alpha"), 1, usd("0.3"))],
        "by provider since the second bucket: {rows:?}"
    );

    let rows = st(s.ledger.usage(q(UsageGroup::Key, b0, None)).await, "usage")?;
    let mine: Vec<_> = brief(&rows)
        .into_iter()
        .filter(|r| r.1 == some(&user) || r.1 == some(&other))
        .collect();
    let mut want = vec![
        (b0, some(&user), 3, usd("0.7")),
        (b0, some(&other), 1, usd("5")),
        (b1, some(&user), 1, usd("0.3")),
    ];
    want.sort();
    check!(
        mine == want,
        "every user's records by key: {mine:?} (of {rows:?})"
    );
    let ordered = rows
        .windows(2)
        .all(|w| (w[0].bucket_ms, &w[0].group) < (w[1].bucket_ms, &w[1].group));
    check!(ordered, "rows ascending by (bucket, group): {rows:?}");
    Ok(())
}

fn hold(id: &str, amount: &str, scopes: Vec<ScopeLimit>, ttl: Duration) -> HoldRequest {
    HoldRequest {
        id: ReservationId(id.to_string()),
        amount: usd(amount),
        scopes,
        ttl,
    }
}

fn limited(scope: &Scope, limit: &str) -> ScopeLimit {
    ScopeLimit {
        scope: scope.clone(),
        limit: Some(usd(limit)),
    }
}

const LONG: Duration = Duration::from_secs(600);

/// Holds count against the limit until settled; the settled cost then counts instead.
///
/// # Errors
/// What failed.
pub async fn budget_holds_against_limits(s: &Stores) -> Outcome {
    let key = Scope::Key(unique("budget-key"));
    let b = &s.budget;
    let (a, c, d) = (unique("res"), unique("res"), unique("res"));
    let r = st(
        b.reserve(&hold(&a, "6", vec![limited(&key, "10")], LONG))
            .await,
        "reserve",
    )?;
    check!(r == Reserved::Held, "6 of 10 fits: {r:?}");
    check!(st(b.held(&key).await, "held")? == usd("6"), "6 held");
    let r = st(
        b.reserve(&hold(&c, "6", vec![limited(&key, "10")], LONG))
            .await,
        "reserve",
    )?;
    check!(
        r == Reserved::Refused(Refusal {
            scope: key.clone(),
            limit: usd("10"),
            spent: Decimal::ZERO,
            held: usd("6"),
            amount: usd("6"),
        }),
        "6 + 6 > 10 is refused naming the scope: {r:?}"
    );
    check!(
        st(b.held(&key).await, "held")? == usd("6"),
        "a refusal places nothing"
    );
    check!(
        st(
            b.settle(
                &ReservationId(a.clone()),
                std::slice::from_ref(&key),
                Some(usd("4"))
            )
            .await,
            "settle"
        )?,
        "first settle applies"
    );
    check!(st(b.spent(&key).await, "spent")? == usd("4"), "4 spent");
    check!(
        st(b.held(&key).await, "held")?.is_zero(),
        "nothing held after settle"
    );
    let r = st(
        b.reserve(&hold(&d, "6", vec![limited(&key, "10")], LONG))
            .await,
        "reserve",
    )?;
    check!(r == Reserved::Held, "4 spent + 6 = 10 fits exactly: {r:?}");
    let r = st(
        b.reserve(&hold(
            &unique("res"),
            "0.000001",
            vec![limited(&key, "10")],
            LONG,
        ))
        .await,
        "reserve",
    )?;
    check!(
        matches!(r, Reserved::Refused(_)),
        "10 + a millionth does not: {r:?}"
    );
    st(
        b.settle(&ReservationId(d), std::slice::from_ref(&key), None)
            .await,
        "release",
    )?;
    Ok(())
}

/// A settle replayed with the same id bills once; reserving a settled id places nothing.
///
/// # Errors
/// What failed.
pub async fn budget_settle_is_idempotent(s: &Stores) -> Outcome {
    let user = Scope::User(unique("budget-user"));
    let id = ReservationId(unique("res"));
    let b = &s.budget;
    st(
        b.reserve(&hold(&id.0, "1", vec![limited(&user, "100")], LONG))
            .await,
        "reserve",
    )?;
    let first = st(
        b.settle(&id, std::slice::from_ref(&user), Some(usd("0.75")))
            .await,
        "settle",
    )?;
    let second = st(
        b.settle(&id, std::slice::from_ref(&user), Some(usd("0.75")))
            .await,
        "settle",
    )?;
    let third = st(
        b.settle(&id, std::slice::from_ref(&user), None).await,
        "settle",
    )?;
    check!(
        first && !second && !third,
        "settle answers true, then false: {first} {second} {third}"
    );
    check!(
        st(b.spent(&user).await, "spent")? == usd("0.75"),
        "billed once"
    );
    let r = st(
        b.reserve(&hold(&id.0, "1", vec![limited(&user, "100")], LONG))
            .await,
        "reserve",
    )?;
    check!(
        r == Reserved::Held,
        "reserving a settled id answers Held: {r:?}"
    );
    check!(
        st(b.held(&user).await, "held")?.is_zero(),
        "…and places nothing"
    );
    Ok(())
}

/// Settling without a cost frees the hold and adds nothing; `release_now`, when a store offers it, does the same.
///
/// # Errors
/// What failed.
pub async fn budget_release_frees_the_hold(s: &Stores) -> Outcome {
    let key = Scope::Key(unique("budget-key"));
    let b = &s.budget;
    let a = ReservationId(unique("res"));
    st(
        b.reserve(&hold(&a.0, "3", vec![limited(&key, "3")], LONG))
            .await,
        "reserve",
    )?;
    st(
        b.settle(&a, std::slice::from_ref(&key), None).await,
        "release",
    )?;
    check!(st(b.held(&key).await, "held")?.is_zero(), "released");
    check!(st(b.spent(&key).await, "spent")?.is_zero(), "nothing spent");
    let c = ReservationId(unique("res"));
    let r = st(
        b.reserve(&hold(&c.0, "3", vec![limited(&key, "3")], LONG))
            .await,
        "reserve",
    )?;
    check!(r == Reserved::Held, "the limit is whole again: {r:?}");
    if b.release_now(&c) {
        check!(
            st(b.held(&key).await, "held")?.is_zero(),
            "release_now frees at once"
        );
    } else {
        st(
            b.settle(&c, std::slice::from_ref(&key), None).await,
            "release",
        )?;
    }
    Ok(())
}

/// A hold past its TTL no longer counts (a crashed process frees its holds); a late settle still bills.
///
/// # Errors
/// What failed.
pub async fn budget_holds_expire(s: &Stores) -> Outcome {
    let key = Scope::Key(unique("budget-key"));
    let b = &s.budget;
    let a = ReservationId(unique("res"));
    let ttl = Duration::from_millis(200);
    st(
        b.reserve(&hold(&a.0, "5", vec![limited(&key, "5")], ttl))
            .await,
        "reserve",
    )?;
    let r = st(
        b.reserve(&hold(&unique("res"), "5", vec![limited(&key, "5")], LONG))
            .await,
        "reserve",
    )?;
    check!(
        matches!(r, Reserved::Refused(_)),
        "full while the hold lives: {r:?}"
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    check!(
        st(b.held(&key).await, "held")?.is_zero(),
        "expired holds do not count"
    );
    let later = ReservationId(unique("res"));
    let r = st(
        b.reserve(&hold(&later.0, "5", vec![limited(&key, "5")], LONG))
            .await,
        "reserve",
    )?;
    check!(r == Reserved::Held, "room again after expiry: {r:?}");
    st(
        b.settle(&later, std::slice::from_ref(&key), None).await,
        "release",
    )?;
    check!(
        st(
            b.settle(&a, std::slice::from_ref(&key), Some(usd("1")))
                .await,
            "late settle"
        )?,
        "a settle after expiry applies"
    );
    check!(st(b.spent(&key).await, "spent")? == usd("1"), "and bills");
    Ok(())
}

/// A hold refused on one scope is placed on none; an unlimited scope is counted but never refuses.
///
/// # Errors
/// What failed.
pub async fn budget_scopes_are_atomic(s: &Stores) -> Outcome {
    let user = Scope::User(unique("budget-user"));
    let key = Scope::Key(unique("budget-key"));
    let b = &s.budget;
    let scopes = |kl: &str| {
        vec![
            ScopeLimit {
                scope: user.clone(),
                limit: None,
            },
            limited(&key, kl),
        ]
    };
    let r = st(
        b.reserve(&hold(&unique("res"), "2", scopes("1"), LONG))
            .await,
        "reserve",
    )?;
    check!(
        matches!(&r, Reserved::Refused(x) if x.scope == key),
        "the key refuses: {r:?}"
    );
    check!(
        st(b.held(&user).await, "held")?.is_zero(),
        "nothing placed on the user"
    );
    let id = ReservationId(unique("res"));
    let r = st(
        b.reserve(&hold(&id.0, "2", scopes("5"), LONG)).await,
        "reserve",
    )?;
    check!(r == Reserved::Held, "fits: {r:?}");
    check!(
        st(b.held(&user).await, "held")? == usd("2") && st(b.held(&key).await, "held")? == usd("2"),
        "held on both"
    );
    st(
        b.settle(&id, &[user.clone(), key.clone()], Some(usd("1.5")))
            .await,
        "settle",
    )?;
    check!(
        st(b.spent(&user).await, "spent")? == usd("1.5")
            && st(b.spent(&key).await, "spent")? == usd("1.5"),
        "billed to both"
    );
    Ok(())
}

/// 64 concurrent holds of 1 against a limit of 10: exactly 10 are placed.
///
/// # Errors
/// What failed.
pub async fn budget_concurrent_holds_never_exceed_the_limit(s: &Stores) -> Outcome {
    let key = Scope::Key(unique("budget-key"));
    let budget = s.budget.clone();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let b = Arc::clone(&budget);
        let req = hold(&unique("res"), "1", vec![limited(&key, "10")], LONG);
        tasks.push(tokio::spawn(async move { b.reserve(&req).await }));
    }
    let mut held = 0;
    for t in tasks {
        match t.await.map_err(|e| format!("task: {e}"))? {
            Ok(Reserved::Held) => held += 1,
            Ok(Reserved::Refused(_)) => {}
            Err(e) => return Err(format!("reserve: {e}")),
        }
    }
    check!(
        held == 10,
        "{held} of 64 holds placed against a limit of 10"
    );
    check!(st(budget.held(&key).await, "held")? == usd("10"), "10 held");
    Ok(())
}

/// Windows count hits, refuse when full (naming the window, with a retry time), and free up as time passes.
///
/// # Errors
/// What failed.
pub async fn rate_windows_count_and_refuse(s: &Stores) -> Outcome {
    let key = unique("rate-key");
    let r = &s.rate;
    let w = |limit| {
        vec![
            Window {
                name: "per-day".into(),
                limit: 100,
                span: Span::UtcDay,
            },
            Window {
                name: "per-burst".into(),
                limit,
                span: Span::Sliding(Duration::from_millis(300)),
            },
        ]
    };
    for i in 0..2 {
        let d = st(r.hit(&key, &w(2), 1).await, "hit")?;
        check!(d == RateDecision::Allowed, "hit {i}: {d:?}");
    }
    let d = st(r.hit(&key, &w(2), 1).await, "hit")?;
    check!(
        matches!(&d, RateDecision::Limited { window, retry_after } if window == "per-burst" && *retry_after >= Duration::from_secs(1)),
        "the third hit in the burst window is refused: {d:?}"
    );
    check!(
        st(r.used(&key, Span::UtcDay).await, "used")? == 2,
        "a refused hit is not counted"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let d = st(r.hit(&key, &w(2), 1).await, "hit")?;
    check!(
        d == RateDecision::Allowed,
        "room after the window slid: {d:?}"
    );
    check!(
        st(
            r.used(&key, Span::Sliding(Duration::from_millis(300)))
                .await,
            "used"
        )? == 1,
        "one in the burst window"
    );
    let d = st(r.hit(&key, &w(10), 98).await, "hit")?;
    check!(
        matches!(&d, RateDecision::Limited { window, .. } if window == "per-day"),
        "amounts count: 3 + 98 > 100 per day: {d:?}"
    );
    let d = st(r.hit(&key, &w(100), 97).await, "hit")?;
    check!(d == RateDecision::Allowed, "3 + 97 = 100 fits: {d:?}");
    check!(
        st(r.used(&unique("rate-key"), Span::UtcDay).await, "used")? == 0,
        "keys are separate"
    );
    Ok(())
}

/// 40 concurrent hits against a window of 5: exactly 5 are allowed.
///
/// # Errors
/// What failed.
pub async fn rate_concurrent_hits_never_exceed_the_limit(s: &Stores) -> Outcome {
    let key = unique("rate-key");
    let w = vec![Window {
        name: "per-minute".into(),
        limit: 5,
        span: Span::Sliding(Duration::from_secs(60)),
    }];
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let r = Arc::clone(&s.rate);
        let (k, w) = (key.clone(), w.clone());
        tasks.push(tokio::spawn(async move { r.hit(&k, &w, 1).await }));
    }
    let mut allowed = 0;
    for t in tasks {
        if st(t.await.map_err(|e| format!("task: {e}"))?, "hit")? == RateDecision::Allowed {
            allowed += 1;
        }
    }
    check!(allowed == 5, "{allowed} of 40 allowed against a limit of 5");
    Ok(())
}

/// Sticky entries: get what was put, forget, expire after their TTL.
///
/// # Errors
/// What failed.
pub async fn sticky_put_get_forget_expire(s: &Stores) -> Outcome {
    let k = now_ms().unsigned_abs() ^ 0x5717_C4E5 ^ (u64::from(std::process::id()) << 32);
    let sticky = &s.sticky;
    check!(st(sticky.get(k).await, "get")?.is_none(), "empty at first");
    st(sticky.put(k, "alpha", LONG).await, "put")?;
    check!(
        st(sticky.get(k).await, "get")?.as_deref() == Some("alpha"),
        "get after put"
    );
    st(sticky.put(k, "beta", LONG).await, "put")?;
    check!(
        st(sticky.get(k).await, "get")?.as_deref() == Some("beta"),
        "put replaces"
    );
    st(sticky.forget(k).await, "forget")?;
    check!(st(sticky.get(k).await, "get")?.is_none(), "forgotten");
    st(sticky.forget(k).await, "forget twice")?;
    st(
        sticky.put(k + 1, "gamma", Duration::from_millis(150)).await,
        "put",
    )?;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    check!(
        st(sticky.get(k + 1).await, "get")?.is_none(),
        "expired after its TTL"
    );
    Ok(())
}
