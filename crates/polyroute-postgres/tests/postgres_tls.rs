//! `sslmode=…` against a throwaway PostgreSQL started with `ssl=on` and a certificate for `localhost` signed by a
//! test CA (made with the `openssl` command): verified with the CA as the root (given as an option or as the
//! URL's `sslrootcert`), the connections really encrypted (`pg_stat_ssl`); refused without the CA (the system's
//! trust store does not know it) and, with `verify-full`, for a host name the certificate does not name;
//! `sslmode=disable` stays plain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use polyroute::state::{Budget, HoldRequest, ReservationId, Reserved, Scope, ScopeLimit};
use polyroute_postgres::{PostgresOptions, PostgresState};
use polyroute_testsupport::{skip_unless_available, PostgresServer, TestCerts};
use rust_decimal::Decimal;

async fn hold_and_settle(st: &PostgresState, id: &str) {
    let b = st.budget();
    let scope = Scope::Key(format!("tls-{id}"));
    let hold = HoldRequest {
        id: ReservationId(id.into()),
        amount: Decimal::new(5, 2),
        scopes: vec![ScopeLimit {
            scope: scope.clone(),
            limit: Some(Decimal::ONE),
        }],
        ttl: std::time::Duration::from_secs(60),
    };
    assert_eq!(b.reserve(&hold).await.unwrap(), Reserved::Held);
    assert!(b
        .settle(
            &hold.id,
            std::slice::from_ref(&scope),
            Some(Decimal::new(3, 2))
        )
        .await
        .unwrap());
    assert_eq!(b.spent(&scope).await.unwrap(), Decimal::new(3, 2));
}

fn one() -> PostgresOptions {
    PostgresOptions {
        connections: 1,
        ..PostgresOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_urls_verify_the_server() {
    if !skip_unless_available("postgres tls test").expect("servers required") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(TestCerts { ca, cert, key }) = TestCerts::make(dir.path(), "DNS:localhost") else {
        eprintln!("skipping the postgres tls test: the openssl command cannot make certificates");
        return;
    };
    let pg = PostgresServer::start_tls(&cert, &key).expect("postgres with ssl=on");
    let port = pg.port();
    let pem = std::fs::read(&ca).unwrap();
    let encrypted = || {
        pg.psql("select count(*) from pg_stat_ssl where ssl")
            .unwrap()
            .parse::<u32>()
            .unwrap()
    };
    assert_eq!(encrypted(), 0);

    // verify-full to the name on the certificate, the CA given as an option: works, and is encrypted.
    let full = format!("postgres://postgres@localhost:{port}/postgres?sslmode=verify-full");
    let st = PostgresState::connect_with(
        &full,
        PostgresOptions {
            tls_root_cert: Some(pem.clone()),
            ..one()
        },
    )
    .await
    .unwrap();
    hold_and_settle(&st, "full").await;
    assert!(encrypted() >= 1, "the connection is not encrypted");
    drop(st);

    // verify-ca to an address the certificate does not name, the CA as the URL's sslrootcert: the chain is
    // what counts.
    let ca_q = ca.to_string_lossy().replace('/', "%2F");
    let by_ip = format!(
        "postgres://postgres@127.0.0.1:{port}/postgres?sslmode=verify-ca&sslrootcert={ca_q}"
    );
    let st = PostgresState::connect_with(&by_ip, one()).await.unwrap();
    hold_and_settle(&st, "ca").await;
    drop(st);

    // verify-full to that address: refused (the name), naming the server.
    let full_ip = by_ip.replace("verify-ca", "verify-full");
    let err = PostgresState::connect_with(&full_ip, one())
        .await
        .expect_err("a certificate for another name was accepted");
    let msg = err.to_string();
    eprintln!("verify-full to 127.0.0.1: {msg}");
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(msg.contains("certificate"), "{msg}");

    // require without the CA: the system's trust store does not know it, refused.
    let err = PostgresState::connect_with(
        &format!("postgres://postgres@localhost:{port}/postgres?sslmode=require"),
        one(),
    )
    .await
    .expect_err("an untrusted certificate was accepted");
    let msg = err.to_string();
    eprintln!("require without the CA: {msg}");
    assert!(msg.contains(&format!("localhost:{port}")), "{msg}");
    assert!(msg.contains("certificate"), "{msg}");

    // A root file that does not exist: a clear error before any connection.
    let err = PostgresState::connect_with(
        &format!("{full}&sslrootcert=%2Fnonexistent%2Fca.pem"),
        one(),
    )
    .await
    .expect_err("a missing root file was accepted");
    assert!(
        err.to_string().contains("sslrootcert /nonexistent/ca.pem"),
        "{err}"
    );

    // sslmode=disable: plain, and still works against the same server.
    let before = encrypted();
    let plain = format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable");
    let st = PostgresState::connect_with(&plain, one()).await.unwrap();
    hold_and_settle(&st, "plain").await;
    assert_eq!(
        encrypted(),
        before,
        "sslmode=disable opened a TLS connection"
    );
}
