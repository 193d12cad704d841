//! The HTTP parity table (`tests/parity/http.json`) through the gateway over real HTTP on 127.0.0.1, with one key
//! (no limit) as the bearer token: the answers equal the engine's (`http.expected.json`, written by
//! `cargo test -p polyroute --test http_parity`), as the Python and Node in-process runs do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../polyroute/tests/common/http_table.rs"]
mod http_table;

use std::sync::Arc;

use polyroute::RouterConfig;
use polyroute_cli::serve::{self, Config, Gateway};
use polyroute_mock::MockServer;
use serde_json::Value;

#[tokio::test]
async fn the_gateway_answers_the_http_parity_table() {
    let mock = MockServer::start().await.unwrap();
    let t = http_table::table(&mock.url());
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        router: RouterConfig::from_value(&t["router"]).unwrap(),
        ..Config::default()
    };
    cfg.router.catalog = Some(t["catalog"].clone());
    let key = serve::keys::create(dir.path(), "parity", None).unwrap().1;
    let gw = Arc::new(Gateway::new(&cfg, dir.path()).unwrap());
    let srv = serve::start(gw, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut gens: Vec<Option<String>> = Vec::new();
    let mut got = Vec::new();
    for case in t["requests"].as_array().unwrap() {
        let (method, path, headers, body) = http_table::request(case, &gens);
        let mut rb = client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", srv.url()),
            )
            .bearer_auth(&key);
        for (k, v) in headers {
            rb = rb.header(k, v);
        }
        if method == "POST" {
            rb = rb.body(body);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let h = |n: &str| {
            r.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (ct, gen) = (h("content-type"), h("x-generation-id"));
        let bytes = r.bytes().await.unwrap();
        got.push(http_table::record(
            &t,
            status,
            ct.as_deref(),
            gen.is_some(),
            &bytes,
        ));
        gens.push(gen);
    }
    http_table::check(&Value::Array(got), false);
    srv.shutdown().await;
}
