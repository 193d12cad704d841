//! `rediss://` against a throwaway redis-server listening with TLS (a test CA and a certificate for 127.0.0.1 made
//! with the `openssl` command): verified with the CA given as the root, refused without it (the system's trust
//! store does not know it; the error names the server). Verification cannot be turned off (the
//! crate is built without `tls-rustls-insecure`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use polyroute::state::{Budget, HoldRequest, ReservationId, Reserved, Scope, ScopeLimit};
use polyroute_redis::{RedisOptions, RedisState};
use polyroute_testsupport::{skip_unless_available, RedisServer, TestCerts};
use rust_decimal::Decimal;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_urls_verify_the_server() {
    if !skip_unless_available("redis tls test").expect("servers required") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(certs) = TestCerts::make(dir.path(), "IP:127.0.0.1") else {
        eprintln!("skipping the redis tls test: the openssl command cannot make certificates");
        return;
    };
    let (ca, cert, key) = (
        certs.ca.to_string_lossy().into_owned(),
        certs.cert.to_string_lossy().into_owned(),
        certs.key.to_string_lossy().into_owned(),
    );
    let port = free_port();
    let p = port.to_string();
    let server = RedisServer::start_with(
        None,
        &[
            "--tls-port",
            &p,
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
        ],
    );
    let Ok(_server) = server else {
        eprintln!("skipping the redis tls test: this redis-server does not take TLS options");
        return;
    };
    let url = format!("rediss://127.0.0.1:{port}/");
    let pem = std::fs::read(&ca).unwrap();

    // Verified against the given root: a hold and its settle work over TLS.
    let st = RedisState::connect_with(
        &url,
        RedisOptions {
            tls_root_cert: Some(pem),
            ..RedisOptions::default()
        },
    )
    .await
    .unwrap();
    let b = st.budget();
    let scope = Scope::Key("tls".into());
    let hold = HoldRequest {
        id: ReservationId("tls-1".into()),
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

    // Without the root the certificate is not trusted: the connection is refused, naming the server.
    let err = RedisState::connect(&url)
        .await
        .expect_err("an untrusted certificate was accepted");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}
