//! A throwaway Redis Cluster: three `redis-server --cluster-enabled yes` masters on loopback ports (each with its
//! cluster bus on another free port), joined by `redis-cli --cluster create … --cluster-replicas 0`.

use std::io;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{free_port, which};
use crate::redis::RedisServer;

/// Three masters sharing the 16384 slots; each node is stopped by PID when dropped.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Start three masters and create the cluster; waits (bounded, 30 s) until every node reports
    /// `cluster_state:ok`.
    ///
    /// # Errors
    /// When `redis-server` or `redis-cli` (or `valkey-cli`) is missing, a node does not start, or the cluster
    /// does not form.
    pub fn start() -> io::Result<Self> {
        let cli = which(&["redis-cli", "valkey-cli"]).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "redis-cli (or valkey-cli) is not installed",
            )
        })?;
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let bus = free_port()?.to_string();
            nodes.push(RedisServer::start_with(
                None,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                    "--cluster-port",
                    &bus,
                ],
            )?);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let out = Command::new(&cli)
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for n in &nodes {
            loop {
                let info = Command::new(&cli)
                    .args([
                        "-h",
                        "127.0.0.1",
                        "-p",
                        &n.port().to_string(),
                        "cluster",
                        "info",
                    ])
                    .stdin(Stdio::null())
                    .output()?;
                if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(io::Error::other(format!(
                        "the cluster did not form within 30 s (node {})",
                        n.port()
                    )));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(Self { nodes })
    }

    /// `redis+cluster://127.0.0.1:<p1>,127.0.0.1:<p2>,127.0.0.1:<p3>/`.
    #[must_use]
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        format!("redis+cluster://{}/", hosts.join(","))
    }

    /// The nodes (e.g. for their ports or PIDs).
    #[must_use]
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }
}
