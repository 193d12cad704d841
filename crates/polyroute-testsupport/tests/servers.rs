//! The throwaway servers start, answer, restart on the same port, and are gone (by PID) after drop.
#![allow(clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use polyroute_testsupport::{skip_unless_available, PostgresServer, RedisServer};

fn alive(pid: u32) -> bool {
    // A zombie would still be "alive" to kill -0; the servers are reaped by stop(), so this is exact.
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn redis_cmd(port: u16, line: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    s.write_all(format!("{line}\r\n").as_bytes())
        .expect("write");
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).expect("read");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn redis_starts_restarts_and_stops_by_pid() {
    if !skip_unless_available("redis server test").expect("servers") {
        return;
    }
    let t = Instant::now();
    let mut r = RedisServer::start().expect("start redis");
    eprintln!("redis ready in {:?}", t.elapsed());
    let port = r.port();
    assert!(r.url().starts_with("redis://127.0.0.1:"));
    assert_eq!(redis_cmd(port, "SET k v"), "+OK\r\n");
    assert_eq!(redis_cmd(port, "GET k"), "$1\r\nv\r\n");
    let pid = r.pid().expect("pid");
    r.stop();
    assert!(!alive(pid), "redis {pid} still running after stop");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    r.restart().expect("restart");
    assert_eq!(r.port(), port);
    // No persistence: the restarted server is empty.
    assert_eq!(redis_cmd(port, "GET k"), "$-1\r\n");
    let pid = r.pid().expect("pid");
    drop(r);
    assert!(!alive(pid), "redis {pid} still running after drop");
}

#[test]
fn redis_with_a_password_refuses_anonymous_commands() {
    if !skip_unless_available("redis auth test").expect("servers") {
        return;
    }
    let r = RedisServer::start_with(Some("fake-test-pass"), &[]).expect("start redis");
    assert!(r.url().contains(":fake-test-pass@127.0.0.1:"));
    assert!(redis_cmd(r.port(), "GET k").starts_with("-NOAUTH"));
}

#[test]
fn postgres_starts_creates_databases_restarts_and_stops_by_pid() {
    if !skip_unless_available("postgres server test").expect("servers") {
        return;
    }
    let t = Instant::now();
    let mut pg = PostgresServer::start().expect("start postgres");
    eprintln!("postgres ready in {:?}", t.elapsed());
    let url = pg.create_database("battery_one").expect("createdb");
    assert_eq!(
        url,
        format!("postgres://postgres@127.0.0.1:{}/battery_one", pg.port())
    );
    assert!(
        pg.create_database("battery_one").is_err(),
        "duplicate name accepted"
    );
    let pid = pg.pid().expect("pid");
    pg.stop();
    assert!(!alive(pid), "postgres {pid} still running after stop");
    pg.restart().expect("restart");
    // The data survived the restart: the database exists, so creating it again fails.
    assert!(pg.create_database("battery_one").is_err());
    pg.create_database("battery_two")
        .expect("createdb after restart");
    let pid = pg.pid().expect("pid");
    drop(pg);
    assert!(!alive(pid), "postgres {pid} still running after drop");
}
