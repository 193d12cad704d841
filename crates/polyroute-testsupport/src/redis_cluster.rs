//! A throwaway Redis Cluster: three `redis-server --cluster-enabled yes` masters on loopback ports (each with its
//! cluster bus on another free port), joined by `redis-cli --cluster create … --cluster-replicas 0`.

use std::io;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{free_port, which};
use crate::redis::RedisServer;

/// Three masters sharing the 16384 slots; each node is stopped by PID when dropped.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    tls_ports: Vec<u16>,
}

impl RedisCluster {
    /// Start three masters and create the cluster; waits (bounded, 30 s) until every node reports
    /// `cluster_state:ok`.
    ///
    /// # Errors
    /// When `redis-server` or `redis-cli` (or `valkey-cli`) is missing, a node does not start, or the cluster
    /// does not form.
    pub fn start() -> io::Result<Self> {
        Self::start_inner(None)
    }

    /// As [`RedisCluster::start`], each node also listening with TLS on another port (`--tls-port`, the cluster
    /// bus in TLS too) with the PEM certificate `cert`, its `key` and the CA `ca`; clients are not asked for
    /// certificates. [`RedisCluster::tls_url`] names those ports.
    ///
    /// # Errors
    /// As [`RedisCluster::start`].
    pub fn start_tls(cert: &Path, key: &Path, ca: &Path) -> io::Result<Self> {
        Self::start_inner(Some((cert, key, ca)))
    }

    fn start_inner(tls: Option<(&Path, &Path, &Path)>) -> io::Result<Self> {
        let cli = which(&["redis-cli", "valkey-cli"]).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "redis-cli (or valkey-cli) is not installed",
            )
        })?;
        let mut nodes = Vec::new();
        let mut tls_ports = Vec::new();
        for _ in 0..3 {
            let bus = free_port()?.to_string();
            let mut args: Vec<String> = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "5000",
                "--cluster-port",
                &bus,
            ]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
            if let Some((cert, key, ca)) = tls {
                let p = free_port()?;
                tls_ports.push(p);
                for a in [
                    "--tls-port",
                    &p.to_string(),
                    "--tls-cluster",
                    "yes",
                    "--tls-cert-file",
                    &cert.to_string_lossy(),
                    "--tls-key-file",
                    &key.to_string_lossy(),
                    "--tls-ca-cert-file",
                    &ca.to_string_lossy(),
                    "--tls-auth-clients",
                    "no",
                ] {
                    args.push(a.to_string());
                }
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            nodes.push(RedisServer::start_with(None, &args)?);
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
        Ok(Self { nodes, tls_ports })
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

    /// `rediss+cluster://127.0.0.1:<tls port>,…/` for a cluster started with [`RedisCluster::start_tls`]
    /// (`None` otherwise).
    #[must_use]
    pub fn tls_url(&self) -> Option<String> {
        if self.tls_ports.is_empty() {
            return None;
        }
        let hosts: Vec<String> = self
            .tls_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        Some(format!("rediss+cluster://{}/", hosts.join(",")))
    }

    /// The nodes (e.g. for their ports or PIDs).
    #[must_use]
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }
}
