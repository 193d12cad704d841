//! The connection the stores share: one server (a `redis` connection manager) or a Redis Cluster (the `redis`
//! crate's async cluster connection, which follows `MOVED`/`ASK` and re-reads the slot map).
//!
//! Cluster URLs: `redis+cluster://[user:password@]host:port,host:port,...[/]` (`rediss+cluster://` for TLS);
//! the hosts are seed nodes, the rest of the cluster is discovered from them.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// One server or a cluster.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// The seed nodes' URLs of a cluster URL (each `redis://` or `rediss://` with the credentials); `None` when
/// `url` is not a cluster URL.
pub(crate) fn cluster_nodes(url: &str) -> Option<Result<Vec<String>, String>> {
    let (scheme, rest) = url.split_once("://")?;
    let node_scheme = match scheme {
        "redis+cluster" => "redis",
        "rediss+cluster" => "rediss",
        _ => return None,
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') || rest.contains('?') || rest.contains('#') {
        return Some(Err(
            "a cluster URL names hosts only (no database, path or parameters: a cluster has database 0)".into(),
        ));
    }
    let (auth, hosts) = match rest.rfind('@') {
        Some(at) => (&rest[..=at], &rest[at + 1..]),
        None => ("", rest),
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| format!("{node_scheme}://{auth}{h}/"))
        .collect();
    if nodes.is_empty() {
        return Some(Err("a cluster URL needs at least one host:port".into()));
    }
    Some(Ok(nodes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::cluster_nodes;

    #[test]
    fn cluster_urls_name_seed_nodes() {
        assert_eq!(
            cluster_nodes("redis+cluster://u:fake-pw@10.0.0.1:7000,10.0.0.2:7001/")
                .unwrap()
                .unwrap(),
            vec![
                "redis://u:fake-pw@10.0.0.1:7000/",
                "redis://u:fake-pw@10.0.0.2:7001/"
            ]
        );
        assert_eq!(
            cluster_nodes("rediss+cluster://h:7000").unwrap().unwrap(),
            vec!["rediss://h:7000/"]
        );
        assert!(cluster_nodes("redis://h:6379/0").is_none());
        assert!(cluster_nodes("redis+cluster://h:7000/3").unwrap().is_err());
        assert!(cluster_nodes("redis+cluster://").unwrap().is_err());
    }
}
