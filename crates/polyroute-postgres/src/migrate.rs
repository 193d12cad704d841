//! Versioned schema migrations, applied in order on connect (and by [`crate::migrate`]), each once.
//!
//! `polyroute_migrations(version, name, applied_at)` records what ran. A run takes a transaction-scoped advisory
//! lock first, so routers starting together apply each migration exactly once; every migration runs in the same
//! transaction as its bookkeeping row (all or nothing). A database migrated by a newer polyroute (a version this
//! build does not know) is refused rather than written with an older schema in mind.

use tokio_postgres::Client;

/// (version, name, SQL). Append only: never edit a released migration.
pub(crate) const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "generations",
        "CREATE TABLE polyroute_generations (
         id                text PRIMARY KEY,
         created_ms        bigint NOT NULL,
         user_key          text,
         model             text NOT NULL,
         provider          text NOT NULL,
         provider_name     text NOT NULL,
         app_title         text,
         app_referer       text,
         cost              numeric NOT NULL,
         free              boolean NOT NULL,
         prompt_tokens     bigint NOT NULL,
         completion_tokens bigint NOT NULL,
         reasoning_tokens  bigint NOT NULL,
         record            text NOT NULL
     );
     CREATE INDEX polyroute_generations_user_time ON polyroute_generations (user_key, created_ms);
     CREATE INDEX polyroute_generations_time ON polyroute_generations (created_ms);",
    ),
    (2, "budget", include_str!("budget.sql")),
    (3, "keys", crate::keys::MIGRATION),
    (
        4,
        "settles pending",
        "CREATE TABLE polyroute_settles_pending (
         id         text PRIMARY KEY,
         created_ms bigint NOT NULL,
         scopes     text[] NOT NULL,
         billed     numeric NOT NULL
     );
     CREATE INDEX polyroute_settles_pending_time ON polyroute_settles_pending (created_ms);",
    ),
];

/// An arbitrary constant naming polyroute's migration lock (`pg_advisory_xact_lock`).
const LOCK_ID: i64 = 0x706f_6c79_726f_7574; // "polyrout"

/// Apply the migrations `client`'s database lacks; answers the versions applied now.
pub(crate) async fn run(client: &mut Client) -> Result<Vec<i32>, String> {
    let e = |what: &str, err: tokio_postgres::Error| format!("{what}: {}", crate::describe(&err));
    let tx = client.transaction().await.map_err(|x| e("begin", x))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_ID])
        .await
        .map_err(|x| e("migration lock", x))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS polyroute_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(|x| e("migrations table", x))?;
    let done: Vec<i32> = tx
        .query(
            "SELECT version FROM polyroute_migrations ORDER BY version",
            &[],
        )
        .await
        .map_err(|x| e("read migrations", x))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if let Some(newest) = done.iter().max().filter(|v| **v > known) {
        return Err(format!(
            "the database is at schema version {newest}, newer than this polyroute knows ({known}); upgrade polyroute"
        ));
    }
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        tx.batch_execute(sql)
            .await
            .map_err(|x| e(&format!("migration {version} ({name})"), x))?;
        tx.execute(
            "INSERT INTO polyroute_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await
        .map_err(|x| e("record migration", x))?;
        applied.push(*version);
    }
    tx.commit().await.map_err(|x| e("commit migrations", x))?;
    Ok(applied)
}
