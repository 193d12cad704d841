//! The route table and path matching: a path matches a route when its last segments are the route's, so any base
//! (`/api/v1`, `/v1`, `http://polyroute.local/api/v1`) works; the longest matching route wins.

use std::collections::HashMap;

use super::{
    account, catalog, chat, embeddings, percent_decode, surfaces, Caller, HttpApi, Request,
    Response,
};
use crate::state::BoxFut;

/// Who may call a route (the gateway authenticates accordingly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// Anyone (catalog facts); a known caller may see more.
    Public,
    /// A caller with a scope (an inference key in the gateway).
    Caller,
}

/// One matched request as a handler sees it.
pub(crate) struct Call<'a> {
    pub req: &'a Request,
    /// The `{…}` segments of the route, in order.
    pub params: Vec<String>,
    /// The query parameters (last value wins).
    pub query: HashMap<String, String>,
    pub caller: &'a Caller,
}

pub(crate) type Handler = for<'a> fn(&'a HttpApi, Call<'a>) -> BoxFut<'a, Response>;

pub(crate) struct Route {
    method: &'static str,
    /// Segments; `{}` matches any one segment.
    path: &'static [&'static str],
    access: Access,
    handler: Handler,
}

/// Every route. Add a line to serve another path.
pub(crate) const ROUTES: &[Route] = &[
    Route {
        method: "POST",
        path: &["chat", "completions"],
        access: Access::Caller,
        handler: chat::completions,
    },
    Route {
        method: "POST",
        path: &["messages"],
        access: Access::Caller,
        handler: surfaces::messages,
    },
    Route {
        method: "POST",
        path: &["messages", "count_tokens"],
        access: Access::Caller,
        handler: surfaces::count_tokens,
    },
    Route {
        method: "POST",
        path: &["responses"],
        access: Access::Caller,
        handler: surfaces::responses,
    },
    Route {
        method: "POST",
        path: &["embeddings"],
        access: Access::Caller,
        handler: embeddings::create,
    },
    Route {
        method: "GET",
        path: &["embeddings", "models"],
        access: Access::Public,
        handler: embeddings::models,
    },
    Route {
        method: "GET",
        path: &["models"],
        access: Access::Public,
        handler: catalog::models,
    },
    Route {
        method: "GET",
        path: &["models", "count"],
        access: Access::Public,
        handler: catalog::count,
    },
    Route {
        method: "GET",
        path: &["models", "{}", "{}"],
        access: Access::Public,
        handler: catalog::one,
    },
    Route {
        method: "GET",
        path: &["model", "{}", "{}"],
        access: Access::Public,
        handler: catalog::one,
    },
    Route {
        method: "GET",
        path: &["models", "{}", "{}", "endpoints"],
        access: Access::Public,
        handler: catalog::endpoints,
    },
    Route {
        method: "GET",
        path: &["providers"],
        access: Access::Public,
        handler: catalog::providers,
    },
    Route {
        method: "GET",
        path: &["generation"],
        access: Access::Caller,
        handler: account::generation,
    },
    Route {
        method: "GET",
        path: &["credits"],
        access: Access::Caller,
        handler: account::credits,
    },
];

pub(crate) struct Matched {
    pub access: Access,
    pub handler: Handler,
    pub params: Vec<String>,
    pub query: HashMap<String, String>,
}

fn split_target(target: &str) -> (&str, &str) {
    // A full URL: drop the scheme and authority.
    let t = match target.find("://") {
        Some(i) => {
            let rest = &target[i + 3..];
            rest.find(['/', '?']).map_or("", |j| &rest[j..])
        }
        None => target,
    };
    let t = t.split_once('#').map_or(t, |(a, _)| a);
    t.split_once('?').unwrap_or((t, ""))
}

/// The route of `method target`, or the 404 / 405 answer.
pub(crate) fn find(method: &str, target: &str) -> Result<Matched, Response> {
    let (path, q) = split_target(target);
    // Decoded before splitting: the SDKs send a model id's slash as `%2F`.
    let decoded = if path.contains('%') {
        std::borrow::Cow::Owned(percent_decode(path, false))
    } else {
        std::borrow::Cow::Borrowed(path)
    };
    let segs: Vec<&str> = decoded.split('/').filter(|s| !s.is_empty()).collect();
    let mut best: Option<(&Route, Vec<String>)> = None;
    let mut other_method = false;
    for r in ROUTES {
        let n = r.path.len();
        if n > segs.len() {
            continue;
        }
        let tail = &segs[segs.len() - n..];
        let ok = r.path.iter().zip(tail).all(|(p, s)| *p == "{}" || p == s);
        if !ok {
            continue;
        }
        if !r.method.eq_ignore_ascii_case(method) {
            other_method = true;
            continue;
        }
        if best.as_ref().is_none_or(|(b, _)| b.path.len() < n) {
            let params = r
                .path
                .iter()
                .zip(tail)
                .filter(|(p, _)| **p == "{}")
                .map(|(_, s)| (*s).to_string())
                .collect();
            best = Some((r, params));
        }
    }
    match best {
        Some((r, params)) => Ok(Matched {
            access: r.access,
            handler: r.handler,
            params,
            query: polyroute_core::account_query::query_pairs(q),
        }),
        None if other_method => Err(Response::error(
            405,
            "invalid_request",
            format!("{} is not allowed on {path}", method.to_ascii_uppercase()),
        )),
        None => Err(Response::error(404, "not_found", "Not Found")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn params(method: &str, t: &str) -> Option<Vec<String>> {
        find(method, t).ok().map(|m| m.params)
    }

    #[test]
    fn any_base_longest_route_and_decoded_ids() {
        assert_eq!(params("GET", "/api/v1/models"), Some(vec![]));
        assert_eq!(params("GET", "/v1/models/count/"), Some(vec![]));
        assert_eq!(
            params("get", "http://polyroute.local/v1/models/test%2Fchat"),
            Some(vec!["test".into(), "chat".into()])
        );
        assert_eq!(
            params("GET", "/api/v1/models/acme/chat:free/endpoints"),
            Some(vec!["acme".into(), "chat:free".into()])
        );
        let m = find("GET", "/api/v1/generation?id=gen-1%2B2&x=a+b")
            .ok()
            .unwrap();
        assert_eq!(m.query["id"], "gen-1+2");
        assert_eq!(m.query["x"], "a b");
        assert_eq!(
            find("GET", "/api/v1/chat/completions")
                .err()
                .map(|r| r.status),
            Some(405)
        );
        assert_eq!(
            find("GET", "/api/v1/nothing").err().map(|r| r.status),
            Some(404)
        );
    }
}
