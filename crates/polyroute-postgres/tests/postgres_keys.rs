//! The key store on a real throwaway PostgreSQL: revisions grow with every write, a replica reads only what
//! changed, lookups by hash, one hash per id.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use polyroute_postgres::PostgresState;
use polyroute_testsupport::{skip_unless_available, PostgresServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_put_read_changes_and_refuse_a_hash_twice() {
    if !skip_unless_available("postgres keys test").expect("servers required") {
        return;
    }
    let pg = PostgresServer::start().unwrap();
    let url = pg.create_database("keys").unwrap();
    let keys = PostgresState::connect(&url).await.unwrap().keys();
    assert!(keys.all().await.unwrap().is_empty());
    let r1 = keys.put("key-1", "aa", r#"{"v":1}"#).await.unwrap();
    let r2 = keys.put("key-2", "bb", r#"{"v":2}"#).await.unwrap();
    assert!(r2 > r1);
    let changed = keys.changed_since(r1).await.unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].record, r#"{"v":2}"#);
    // An update takes a new revision: a replica polling from r2 sees it.
    let r3 = keys.put("key-1", "aa", r#"{"v":3}"#).await.unwrap();
    assert!(r3 > r2);
    let changed = keys.changed_since(r2).await.unwrap();
    assert_eq!((changed.len(), changed[0].rev), (1, r3));
    assert_eq!(
        keys.by_hash("aa").await.unwrap().unwrap().record,
        r#"{"v":3}"#
    );
    assert!(keys.by_hash("cc").await.unwrap().is_none());
    // A hash belongs to one id.
    let e = keys.put("key-3", "aa", "{}").await.unwrap_err().to_string();
    assert!(e.contains("postgres 127.0.0.1:"), "{e}");
    assert_eq!(keys.all().await.unwrap().len(), 2);
}
