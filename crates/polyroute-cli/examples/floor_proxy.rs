//! The loopback floor for `scripts/bench-serve`: the least any Rust HTTP gateway does per request. It accepts a
//! chat request with axum, forwards the body and `Authorization` header with one pooled reqwest client to a fixed
//! upstream URL, and relays the answer (streams chunk by chunk). No parsing, routing, keys or accounting.
//!
//! `floor_proxy --upstream http://127.0.0.1:PORT/v1/chat/completions [--current-thread]` prints
//! `listening on http://ADDR`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use axum::routing::post;
use axum::serve::ListenerExt;

struct Upstream {
    url: String,
    http: reqwest::Client,
}

async fn forward(State(up): State<Arc<Upstream>>, headers: HeaderMap, body: Bytes) -> Response {
    let mut rb = up
        .http
        .post(&up.url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(a) = headers.get("authorization") {
        rb = rb.header("authorization", a);
    }
    let r = match rb.send().await {
        Ok(r) => r,
        Err(e) => {
            let mut r = Response::new(Body::from(e.to_string()));
            *r.status_mut() = axum::http::StatusCode::BAD_GATEWAY;
            return r;
        }
    };
    let status = r.status();
    let ct = r.headers().get("content-type").cloned();
    let mut out = Response::new(Body::from_stream(r.bytes_stream()));
    *out.status_mut() = status;
    out.headers_mut().insert(
        "content-type",
        ct.unwrap_or(HeaderValue::from_static("application/json")),
    );
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let upstream = match args.as_slice() {
        [flag, url, ..] if flag == "--upstream" => url.clone(),
        _ => panic!("usage: floor_proxy --upstream URL [--current-thread]"),
    };
    let rt = if args.iter().any(|a| a == "--current-thread") {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    rt.block_on(async move {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .build()
            .unwrap();
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(forward))
            .with_state(Arc::new(Upstream {
                url: upstream,
                http,
            }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("listening on http://{}", listener.local_addr().unwrap());
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await.unwrap();
    });
}
