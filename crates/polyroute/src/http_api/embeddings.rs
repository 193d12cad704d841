//! `POST …/embeddings` and `GET …/embeddings/models`: the caller's admission and request context as for chat,
//! then [`Router::embeddings_with`](crate::Router::embeddings_with) (no stream: one JSON answer).

use serde_json::Value;

use super::catalog::list_models;
use super::reply::{context, error_response, parse_object};
use super::routes::Call;
use super::{HttpApi, Response};
use crate::state::BoxFut;

pub(super) fn create<'a>(api: &'a HttpApi, c: Call<'a>) -> BoxFut<'a, Response> {
    Box::pin(async move {
        let mut request: Value = match parse_object(&c.req.body) {
            Ok(v) => v,
            Err(r) => return r,
        };
        if let Some(a) = &c.caller.admit {
            if let Err(r) = a.admit(&mut request).await {
                return r;
            }
        }
        let mut ctx = context(c.req, &c.caller.context);
        let gen_id = ctx
            .generation_id
            .get_or_insert_with(|| api.router.new_generation_id())
            .clone();
        let r = match api.router.embeddings_with(request, &ctx).await {
            Ok(answer) => Response::json(200, &answer),
            Err(e) => error_response(&e, api.free_limits()),
        };
        r.with_header("x-generation-id", gen_id)
    })
}

/// The `/models` listing of embedding models (its other filters apply).
pub(super) fn models<'a>(api: &'a HttpApi, c: Call<'a>) -> BoxFut<'a, Response> {
    let mut q = c.query;
    q.insert("output_modalities".into(), "embeddings".into());
    let r = match list_models(api, &q) {
        Ok(v) => Response::json(200, &v),
        Err(r) => r,
    };
    Box::pin(async move { r })
}
