//! A throwaway PostgreSQL cluster: `initdb` into a temporary directory, `postgres` on a free loopback port.

use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::process::{free_port, log_tail, stop_child, wait_ready, watchdog, which};

/// The directory holding `initdb`, `postgres` and `pg_isready`: the newest `/usr/lib/postgresql/<v>/bin`
/// (Debian's layout), else the directory of `initdb` on `PATH`.
pub(crate) fn bin_dir() -> io::Result<PathBuf> {
    let mut best: Option<(u32, PathBuf)> = None;
    if let Ok(rd) = std::fs::read_dir("/usr/lib/postgresql") {
        for e in rd.flatten() {
            let v: u32 = e
                .file_name()
                .to_string_lossy()
                .split('.')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let bin = e.path().join("bin");
            if bin.join("initdb").is_file() && best.as_ref().is_none_or(|(b, _)| v > *b) {
                best = Some((v, bin));
            }
        }
    }
    if let Some((_, b)) = best {
        return Ok(b);
    }
    which(&["initdb"])
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "PostgreSQL's initdb is not installed (apt-get install postgresql; .ci/run does)",
            )
        })
}

/// The uid and gid to run PostgreSQL as: none when this process is not root; the `postgres` system user when
/// it is (PostgreSQL refuses to run as root).
fn run_as() -> io::Result<Option<(u32, u32)>> {
    let euid = Command::new("id").arg("-u").output()?;
    if String::from_utf8_lossy(&euid.stdout).trim() != "0" {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() > 3 && f[0] == "postgres" {
            if let (Ok(u), Ok(g)) = (f[2].parse(), f[3].parse()) {
                return Ok(Some((u, g)));
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        "running as root and there is no `postgres` user to run PostgreSQL as (the postgresql package creates it)",
    ))
}

/// One PostgreSQL cluster (superuser `postgres`, trust authentication, loopback only, `fsync=off`: a test
/// server), its data directory and unix socket in a temporary directory; stopped by PID (`SIGINT` = fast
/// shutdown, then `SIGKILL`) on drop.
#[derive(Debug)]
pub struct PostgresServer {
    bin: PathBuf,
    user: Option<(u32, u32)>,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    guard: Option<Child>,
    tls: bool,
}

impl PostgresServer {
    /// `initdb` and start a server.
    ///
    /// # Errors
    /// When the binaries are missing, `initdb` fails, or the server is not ready within 30 s.
    pub fn start() -> io::Result<Self> {
        Self::start_inner(None)
    }

    /// Start a server that also accepts TLS (`ssl=on`) with the PEM certificate `cert` and its key `key`
    /// (copied into the server's directory, owned by the server's user, the key mode 0600).
    ///
    /// # Errors
    /// As [`PostgresServer::start`], or when the files cannot be copied.
    pub fn start_tls(cert: &Path, key: &Path) -> io::Result<Self> {
        Self::start_inner(Some((cert, key)))
    }

    fn start_inner(tls: Option<(&Path, &Path)>) -> io::Result<Self> {
        let bin = bin_dir()?;
        let user = run_as()?;
        let dir = tempfile::Builder::new().prefix("polyroute-pg-").tempdir()?;
        if let Some((u, g)) = user {
            std::os::unix::fs::chown(dir.path(), Some(u), Some(g))?;
        }
        let data = dir.path().join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .current_dir(dir.path())
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some((u, g)) = user {
            initdb.uid(u).gid(g);
        }
        let out = initdb.output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "initdb failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        if let Some((cert, key)) = tls {
            use std::os::unix::fs::PermissionsExt;
            for (from, to, mode) in [(cert, "server.crt", 0o644), (key, "server.key", 0o600)] {
                let to = dir.path().join(to);
                std::fs::copy(from, &to)?;
                std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode))?;
                if let Some((u, g)) = user {
                    std::os::unix::fs::chown(&to, Some(u), Some(g))?;
                }
            }
        }
        let mut s = Self {
            bin,
            user,
            dir,
            port: 0,
            child: None,
            guard: None,
            tls: tls.is_some(),
        };
        let mut last = None;
        for _ in 0..3 {
            s.port = free_port()?;
            match s.spawn() {
                Ok(()) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("postgres did not start")))
    }

    fn spawn(&mut self) -> io::Result<()> {
        let log_path = self.dir.path().join("postgres.log");
        let log = File::options().create(true).append(true).open(&log_path)?;
        let mut cmd = Command::new(self.bin.join("postgres"));
        cmd.current_dir(self.dir.path())
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "max_connections=300", "-c", "shared_buffers=16MB"])
            .args(if self.tls {
                vec![
                    "-c".to_string(),
                    "ssl=on".to_string(),
                    "-c".to_string(),
                    format!(
                        "ssl_cert_file={}",
                        self.dir.path().join("server.crt").display()
                    ),
                    "-c".to_string(),
                    format!(
                        "ssl_key_file={}",
                        self.dir.path().join("server.key").display()
                    ),
                ]
            } else {
                Vec::new()
            })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        if let Some((u, g)) = self.user {
            cmd.uid(u).gid(g);
        }
        let mut child = cmd.spawn()?;
        let ready = self.bin.join("pg_isready");
        let port = self.port.to_string();
        let res = wait_ready(&mut child, "postgres", Duration::from_secs(30), || {
            Command::new(&ready)
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        if let Err(e) = res {
            stop_child(&mut child, "KILL", Duration::from_millis(500));
            return Err(io::Error::new(
                e.kind(),
                format!("{e}; log:\n{}", log_tail(&log_path, 15)),
            ));
        }
        self.guard = watchdog(child.id(), "INT").ok();
        self.child = Some(child);
        Ok(())
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    #[must_use]
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// The URL of database `db` on this server.
    #[must_use]
    pub fn url_for(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's PID while it runs.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Create an empty database and return its URL (one per test keeps tests independent on one server).
    ///
    /// # Errors
    /// When `createdb` fails (e.g. the name exists).
    pub fn create_database(&self, name: &str) -> io::Result<String> {
        let out = Command::new(self.bin.join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .arg(name)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "createdb {name} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(self.url_for(name))
    }

    /// Run `sql` with `psql` (a plain, non-TLS connection to database `postgres`); answers its unaligned,
    /// tuples-only output, trimmed.
    ///
    /// # Errors
    /// When `psql` fails.
    pub fn psql(&self, sql: &str) -> io::Result<String> {
        let out = Command::new(self.bin.join("psql"))
            .env("PGSSLMODE", "disable")
            .args(["-X", "-At", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-c", sql])
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "psql failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Stop the server (fast shutdown, `SIGKILL` after 10 s); the data stays for [`PostgresServer::restart`].
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, "INT", Duration::from_secs(10));
        }
        if let Some(mut g) = self.guard.take() {
            stop_child(&mut g, "KILL", Duration::from_millis(100));
        }
    }

    /// Start it again on the same port and data (after [`PostgresServer::stop`]); a no-op while it runs.
    ///
    /// # Errors
    /// When it does not come back within 30 s.
    pub fn restart(&mut self) -> io::Result<()> {
        if self.child.is_some() {
            return Ok(());
        }
        self.spawn()
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
    }
}
