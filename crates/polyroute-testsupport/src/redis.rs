//! A throwaway `redis-server` / `valkey-server`.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::process::{free_port, log_tail, stop_child, wait_ready, watchdog, which};

pub(crate) fn server_binary() -> io::Result<PathBuf> {
    which(&["redis-server", "valkey-server"]).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "neither redis-server nor valkey-server is installed (apt-get install redis-server; .ci/run does)",
        )
    })
}

/// One `redis-server` on `127.0.0.1:<free port>`, without persistence, its files in a temporary directory;
/// stopped by PID (`SIGTERM`, then `SIGKILL`) on drop.
#[derive(Debug)]
pub struct RedisServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    extra: Vec<String>,
    password: Option<String>,
    child: Option<Child>,
    guard: Option<Child>,
}

impl RedisServer {
    /// Start a server without authentication.
    ///
    /// # Errors
    /// When the binary is missing or the server does not answer within 10 s.
    pub fn start() -> io::Result<Self> {
        Self::start_with(None, &[])
    }

    /// Start a server requiring `password` (as `requirepass`, i.e. the `default` user's password), with extra
    /// `redis-server` arguments.
    ///
    /// # Errors
    /// As [`RedisServer::start`].
    pub fn start_with(password: Option<&str>, extra: &[&str]) -> io::Result<Self> {
        let bin = server_binary()?;
        let mut last = None;
        for _ in 0..3 {
            let mut s = Self {
                bin: bin.clone(),
                dir: tempfile::Builder::new()
                    .prefix("polyroute-redis-")
                    .tempdir()?,
                port: free_port()?,
                extra: extra.iter().map(|s| (*s).to_string()).collect(),
                password: password.map(str::to_string),
                child: None,
                guard: None,
            };
            match s.spawn() {
                Ok(()) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("redis-server did not start")))
    }

    fn spawn(&mut self) -> io::Result<()> {
        let log = self.dir.path().join("redis.log");
        let mut cmd = Command::new(&self.bin);
        cmd.args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--logfile")
            .arg(&log)
            .args(["--protected-mode", "no"]);
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        cmd.args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn()?;
        let port = self.port;
        let res = wait_ready(&mut child, "redis-server", Duration::from_secs(10), || {
            ping(port)
        });
        if let Err(e) = res {
            stop_child(&mut child, "KILL", Duration::from_millis(500));
            return Err(io::Error::new(
                e.kind(),
                format!("{e}; log:\n{}", log_tail(&log, 10)),
            ));
        }
        self.guard = watchdog(child.id(), "KILL").ok();
        self.child = Some(child);
        Ok(())
    }

    /// `redis://127.0.0.1:<port>/` (with the password when one was set).
    #[must_use]
    pub fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's PID while it runs.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stop the server (`SIGTERM`, then `SIGKILL` after 5 s); its data is gone (no persistence).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, "TERM", Duration::from_secs(5));
        }
        if let Some(mut g) = self.guard.take() {
            stop_child(&mut g, "KILL", Duration::from_millis(100));
        }
    }

    /// Start it again on the same port (after [`RedisServer::stop`]); a no-op while it runs.
    ///
    /// # Errors
    /// When it does not come back within 10 s.
    pub fn restart(&mut self) -> io::Result<()> {
        if self.child.is_some() {
            return Ok(());
        }
        self.spawn()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether something on `port` answers `PING` like Redis (`+PONG`, or `-NOAUTH` when a password is required).
fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(n) => {
            let r = &buf[..n];
            r.starts_with(b"+PONG") || r.starts_with(b"-NOAUTH")
        }
        Err(_) => false,
    }
}
