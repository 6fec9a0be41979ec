//! The machine's own limits (group `physics`, ours only), to read the remote rows
//! against: plain loopback TCP between two OS processes with std sockets and no
//! processing at all, pinned as the BEAM harness pins its nodes (`taskset`).
//!
//! - `physics_tcp_rtt_same_cpu_us`, `physics_tcp_rtt_cross_cpu_us`: 8-byte ping-pong
//!   with blocking sockets (each side sleeps in `read` until the other's bytes come,
//!   as an idle node's I/O thread does).
//! - `physics_tcp_rtt_spin_cross_cpu_us`: the same with both sides spinning on
//!   non-blocking sockets (no wake-up at all: the floor for a remote round trip).
//! - `physics_tcp_64k_mb_per_s`: one side writes 64 KiB buffers as fast as it can,
//!   the other reads them (unpinned), payload MB/s.
//!
//! Each runs in child processes of this binary (`OXBEAM_BENCH_CHILD=tcp_echo` and
//! `tcp_client`): the echo prints its port, the client its result.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::Metric;

const ROUNDS: usize = 20_000;
const BULK: usize = 10_000;
const CHUNK: usize = 64 * 1024;

/// Child: accepts one connection and echoes 8-byte pings (`spin`: non-blocking,
/// spinning), or reads until end of stream (`sink`).
pub fn echo_child(mode: &str) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    println!("{}", listener.local_addr().expect("addr").port());
    let (mut s, _) = listener.accept().expect("accept");
    let _ = s.set_nodelay(true);
    let mut buf = vec![0u8; CHUNK];
    if mode == "sink" {
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        return;
    }
    let _ = s.set_nonblocking(mode == "spin");
    loop {
        match read_exact_spin(&mut s, &mut buf[..8]) {
            Ok(()) => {}
            Err(_) => return,
        }
        if s.write_all(&buf[..8]).is_err() {
            return;
        }
    }
}

/// Child: connects to `port` and prints microseconds per round trip, or MB/s.
pub fn client_child(mode: &str, port: u16) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let _ = s.set_nodelay(true);
    if mode == "bulk" {
        let chunk = vec![7u8; CHUNK];
        let start = Instant::now();
        for _ in 0..BULK {
            s.write_all(&chunk).expect("write");
        }
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        let mb = (BULK * CHUNK) as f64 / 1e6;
        println!("{}", mb / start.elapsed().as_secs_f64());
        return;
    }
    let _ = s.set_nonblocking(mode == "spin");
    let mut buf = [0u8; 8];
    let mut once = || {
        s.write_all(&buf).expect("write");
        read_exact_spin(&mut s, &mut buf).expect("read");
    };
    for _ in 0..1000 {
        once();
    }
    let start = Instant::now();
    for _ in 0..ROUNDS {
        once();
    }
    println!("{}", start.elapsed().as_secs_f64() * 1e6 / ROUNDS as f64);
}

/// `read_exact` that also works on a non-blocking socket (spinning on `WouldBlock`).
fn read_exact_spin(s: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Runs one echo/client pair pinned to `cpus` (echo, client), returns the client's figure.
fn pair(echo_mode: &str, client_mode: &str, cpus: Option<(usize, usize)>) -> f64 {
    let exe = std::env::current_exe().expect("own path");
    let command = |cpu: Option<usize>| match cpu {
        Some(c) => {
            let mut t = Command::new("taskset");
            t.args(["-c", &c.to_string()]).arg(&exe);
            t
        }
        None => Command::new(&exe),
    };
    let mut echo = command(cpus.map(|c| c.0))
        .env("OXBEAM_BENCH_CHILD", format!("tcp_echo:{echo_mode}"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the echo");
    let mut line = String::new();
    let _ = BufReader::new(echo.stdout.take().expect("stdout")).read_line(&mut line);
    let out = command(cpus.map(|c| c.1))
        .env(
            "OXBEAM_BENCH_CHILD",
            format!("tcp_client:{client_mode}:{}", line.trim()),
        )
        .output();
    let _ = echo.kill();
    let _ = echo.wait();
    out.ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// One measurement: its name, the echo's and the client's modes, the CPUs (echo,
/// client) or none, and the unit.
struct Case {
    name: &'static str,
    echo: &'static str,
    client: &'static str,
    cpus: Option<(usize, usize)>,
    unit: &'static str,
}

pub fn physics() -> Vec<Metric> {
    let case = |name, echo, client, cpus, unit| Case {
        name,
        echo,
        client,
        cpus,
        unit,
    };
    let cases = [
        case(
            "physics_tcp_rtt_same_cpu_us",
            "block",
            "block",
            Some((0, 0)),
            "us",
        ),
        case(
            "physics_tcp_rtt_cross_cpu_us",
            "block",
            "block",
            Some((0, 1)),
            "us",
        ),
        case(
            "physics_tcp_rtt_spin_cross_cpu_us",
            "spin",
            "spin",
            Some((0, 1)),
            "us",
        ),
        case("physics_tcp_64k_mb_per_s", "sink", "bulk", None, "MB/s"),
    ];
    cases
        .into_iter()
        .map(|c| {
            let samples: Vec<f64> = (0..3).map(|_| pair(c.echo, c.client, c.cpus)).collect();
            eprintln!("  {}: {samples:?}", c.name);
            Metric {
                name: c.name,
                unit: c.unit,
                samples,
                params: "{}".into(),
            }
        })
        .collect()
}
