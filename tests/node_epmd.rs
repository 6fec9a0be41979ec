//! The port mapper: our client, our server, take-over between Mappers, and interop with
//! Erlang's real `epmd` (skipped with a note when the binary is not installed).
mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oxbeam::node::epmd::{
    EpmdError, EpmdServer, Mapper, NodeEntry, Registration, names, port_please, register,
};
use support::{SOON, wait_for};

const T: Duration = Duration::from_secs(5);

fn sorted_names(port: u16) -> Result<Vec<(String, u16)>, String> {
    let mut n = names(port, T).map_err(|e| e.to_string())?;
    n.sort();
    Ok(n)
}

fn pairs(list: &[(&str, u16)]) -> Vec<(String, u16)> {
    list.iter().map(|(n, p)| (n.to_string(), *p)).collect()
}

/// Registers, polling until the name is free (a just-closed holder may linger briefly).
fn register_soon(port: u16, entry: &NodeEntry) -> Registration {
    let deadline = Instant::now() + SOON;
    loop {
        match register(port, entry, T) {
            Ok(reg) => return reg,
            Err(e) if Instant::now() >= deadline => panic!("could not register {entry:?}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

#[test]
fn server_registers_lists_and_looks_up() {
    let server = EpmdServer::start(0).unwrap();
    let port = server.port();
    let a = NodeEntry::oxbeam("alpha@localhost", 5001, false);
    let b = NodeEntry::oxbeam("beta", 5002, true);
    let ra = register(port, &a, T).unwrap();
    let rb = register(port, &b, T).unwrap();
    assert_ne!(ra.creation(), 0);
    assert_ne!(rb.creation(), 0);
    assert_eq!(
        sorted_names(port).unwrap(),
        pairs(&[("alpha", 5001), ("beta", 5002)])
    );
    assert_eq!(port_please(port, "alpha", T).unwrap(), a);
    assert_eq!(port_please(port, "alpha@localhost", T).unwrap(), a);
    let got = port_please(port, "beta", T).unwrap();
    assert_eq!(got, b);
    assert!(got.is_oxbeam());
    assert!(matches!(
        port_please(port, "gamma", T),
        Err(EpmdError::NotFound(n)) if n == "gamma"
    ));
    server.stop();
}

#[test]
fn duplicate_names_are_refused_until_the_holder_closes() {
    let server = EpmdServer::start(0).unwrap();
    let port = server.port();
    let e = NodeEntry::oxbeam("dup", 6000, false);
    let first = register(port, &e, T).unwrap();
    let other = NodeEntry::oxbeam("dup", 6001, false);
    assert!(matches!(register(port, &other, T), Err(EpmdError::NameTaken(n)) if n == "dup"));
    // The refused attempt changed nothing.
    assert_eq!(port_please(port, "dup", T).unwrap().port, 6000);
    let c1 = first.creation();
    drop(first);
    let _ = wait_for("the name to be freed", SOON, || {
        let n = sorted_names(port);
        (n == Ok(vec![]), n)
    });
    let second = register(port, &other, T).unwrap();
    assert_ne!(
        second.creation(),
        c1,
        "a new incarnation gets a new creation"
    );
    assert_eq!(port_please(port, "dup", T).unwrap().port, 6001);
}

#[test]
fn registrations_see_the_server_stop() {
    let server = EpmdServer::start(0).unwrap();
    let port = server.port();
    let mut reg = register(port, &NodeEntry::oxbeam("n", 7000, false), T).unwrap();
    assert!(!reg.wait_closed(Some(Duration::from_millis(50))));
    server.stop();
    assert!(reg.wait_closed(Some(SOON)));
    assert!(reg.wait_closed(Some(Duration::ZERO)), "closed stays closed");
    assert!(matches!(names(port, T), Err(EpmdError::NoMapper)));
}

#[test]
fn nothing_listening_is_no_mapper() {
    let (_held, port) = support::refused_port();
    assert!(matches!(names(port, T), Err(EpmdError::NoMapper)));
    assert!(matches!(
        port_please(port, "x", T),
        Err(EpmdError::NoMapper)
    ));
    let e = NodeEntry::oxbeam("x", 1, false);
    assert!(matches!(register(port, &e, T), Err(EpmdError::NoMapper)));
}

/// Sends `bytes` on a fresh connection and returns whether the server closed it.
fn server_closes_after(port: u16, bytes: &[u8]) -> bool {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    s.set_read_timeout(Some(SOON)).unwrap();
    if s.write_all(bytes).is_err() {
        return true;
    }
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
            }
        }
    }
}

#[test]
fn garbage_and_stalled_clients_leave_the_server_serving() {
    let server = EpmdServer::start(0).unwrap();
    let port = server.port();
    let _keep = register(port, &NodeEntry::oxbeam("steady", 8000, false), T).unwrap();

    // Connections that stall mid-request, or never send anything, hold nobody up.
    let mut stalled = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    stalled.write_all(&[0, 30, 120, 0]).unwrap();
    let _silent = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();

    let oversized = [0xff, 0xff, 120];
    let unknown = [0, 1, 99];
    let empty = [0, 0];
    let truncated_alive = [0, 4, 120, 1, 2, 3];
    let bad_name = {
        let mut b = vec![0, 18, 120, 0, 1, 77, 0, 0, 6, 0, 6, 0, 5];
        b.extend_from_slice(b"a\nb c\x00\x00");
        b
    };
    let trailing = [0, 1, 110, 7, 7, 7];
    for garbage in [
        &oversized[..],
        &unknown,
        &empty,
        &truncated_alive,
        &bad_name,
        &trailing,
        b"GET / HTTP/1.1\r\n\r\n",
    ] {
        assert!(
            server_closes_after(port, garbage),
            "server kept {garbage:?} open"
        );
    }

    assert_eq!(sorted_names(port).unwrap(), pairs(&[("steady", 8000)]));
    let e = NodeEntry::oxbeam("later", 8001, false);
    let _later = register(port, &e, T).unwrap();
    assert_eq!(port_please(port, "later", T).unwrap(), e);
    drop(stalled);
}

#[test]
fn mappers_take_over_when_the_host_stops() {
    // Port 0: a hosts a new mapper on a port the system picks.
    let a = Mapper::start(0, NodeEntry::oxbeam("a", 9001, false)).unwrap();
    let port = a.port();
    assert_ne!(port, 0);
    let b = Mapper::start(port, NodeEntry::oxbeam("b", 9002, false)).unwrap();
    let c = Mapper::start(port, NodeEntry::oxbeam("c", 9003, true)).unwrap();
    assert!(a.is_hosting(), "the first mapper found nobody and hosts");
    assert!(!b.is_hosting() && !c.is_hosting());
    assert_ne!(b.creation(), 0);
    assert_eq!(
        sorted_names(port).unwrap(),
        pairs(&[("a", 9001), ("b", 9002), ("c", 9003)])
    );

    a.stop();
    let seen = wait_for("b and c registered with a new host", SOON, || {
        let n = sorted_names(port);
        let hosts = [b.is_hosting(), c.is_hosting()];
        let ok = n == Ok(pairs(&[("b", 9002), ("c", 9003)]))
            && hosts.iter().filter(|h| **h).count() == 1;
        (ok, (n, hosts))
    });
    let (new_host, survivor) = if seen.1[0] { (b, c) } else { (c, b) };
    assert_eq!(port_please(port, "c", T).unwrap().node_type, 72);

    assert!(!survivor.is_hosting());

    // Once more: the last one standing hosts for itself.
    new_host.stop();
    let last = wait_for("the last mapper hosts for itself", SOON, || {
        let n = sorted_names(port);
        let ok = survivor.is_hosting() && n.as_ref().is_ok_and(|n| n.len() == 1);
        (ok, n)
    });
    let last = last.unwrap();
    assert!(last[0].0 == "b" || last[0].0 == "c", "{last:?}");
    survivor.stop();
    assert!(matches!(names(port, T), Err(EpmdError::NoMapper)));
}

#[test]
fn a_second_mapper_with_the_same_name_is_refused() {
    let first = Mapper::start(0, NodeEntry::oxbeam("same", 9100, false)).unwrap();
    let port = first.port();
    let second = Mapper::start(port, NodeEntry::oxbeam("same", 9101, false));
    assert!(matches!(second, Err(EpmdError::NameTaken(n)) if n == "same"));
    assert_eq!(port_please(port, "same", T).unwrap().port, 9100);
    first.stop();
}

#[test]
fn a_node_given_port_0_hosts_a_private_mapper_that_others_find_it_by() {
    let cookie = support::test_cookie();
    let a = support::net("pm0a", 0, &cookie);
    let port = a.epmd_port();
    assert_ne!(port, 0, "the port it picked");
    let registered = |port| sorted_names(port).map(|n| n.into_iter().map(|(n, _)| n).collect());
    assert_eq!(registered(port), Ok(vec!["pm0a".to_owned()]));
    let b = support::net("pm0b", port, &cookie);
    assert_eq!(b.epmd_port(), port);
    // By name: b asks the mapper a hosts where a listens.
    assert!(b.connect("pm0a@localhost").is_ok());
    assert_eq!(b.nodes(), vec![a.name()]);
    assert_eq!(
        registered(port),
        Ok(vec!["pm0a".to_owned(), "pm0b".to_owned()])
    );
    b.shutdown();
    a.shutdown();
}

// ---- Erlang's epmd ----

/// Kills and reaps the child when dropped, also when a test fails.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether an `epmd` executable is on the PATH.
fn have_epmd() -> bool {
    on_path("epmd")
}

/// Runs Erlang's `epmd -port P -address 127.0.0.1` and waits until it listens; returns
/// it and P.
///
/// `epmd` must be told its port, so P is chosen first (bound to port 0 and released),
/// and something else may take it before `epmd` binds it. That is detected, not
/// assumed away: the port must end up listened on by this `epmd` process (its socket in
/// `/proc`), else it is tried again with another port.
fn start_erlang_epmd() -> (ChildGuard, u16) {
    for _ in 0..5 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("bind 127.0.0.1:0")
            .port();
        let child = Command::new("epmd")
            .args(["-port", &port.to_string(), "-address", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn epmd");
        let mut guard = ChildGuard(child);
        let pid = guard.0.id();
        // Until it listens there, or exits (most likely: the port was taken).
        let listening = wait_for("Erlang's epmd to listen or exit", SOON, || {
            let listens = support::harness::procfs::listens_on(pid, port);
            let exited = guard.0.try_wait().ok().flatten().is_some();
            (listens || exited, listens)
        });
        if listening {
            return (guard, port);
        }
        eprintln!("note: port {port} was taken before epmd could bind it; another one");
    }
    panic!("could not start epmd on a free port in 5 attempts")
}

/// The output of `epmd -port P -names`, killed if it takes longer than [`SOON`].
fn epmd_names_command(port: u16) -> String {
    let mut child = ChildGuard(
        Command::new("epmd")
            .args(["-port", &port.to_string(), "-names"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn epmd -names"),
    );
    let _ = wait_for("epmd -names to exit", SOON, || {
        let done = child.0.try_wait().expect("try_wait");
        (done.is_some(), done)
    });
    let mut out = String::new();
    if let Some(mut stdout) = child.0.stdout.take() {
        stdout
            .read_to_string(&mut out)
            .expect("read epmd -names output");
    }
    out
}

#[test]
fn our_client_works_with_erlangs_epmd() {
    if !have_epmd() {
        return;
    }
    let (_epmd, port) = start_erlang_epmd();
    let e = NodeEntry::oxbeam("oxinterop@localhost", 5555, false);
    let reg = register(port, &e, T).unwrap();
    assert_ne!(reg.creation(), 0);
    let out = epmd_names_command(port);
    assert!(
        out.contains("name oxinterop at port 5555"),
        "epmd -names said: {out:?}"
    );
    assert_eq!(port_please(port, "oxinterop", T).unwrap(), e);
    assert!(matches!(
        register(port, &NodeEntry::oxbeam("oxinterop", 5556, false), T),
        Err(EpmdError::NameTaken(_))
    ));
    assert!(matches!(
        port_please(port, "nobody", T),
        Err(EpmdError::NotFound(_))
    ));
    assert_eq!(sorted_names(port).unwrap(), pairs(&[("oxinterop", 5555)]));
    drop(reg);
    let _ = wait_for("epmd to forget the closed registration", SOON, || {
        let n = sorted_names(port);
        (n == Ok(vec![]), n)
    });
    let again = register_soon(port, &e);
    assert_ne!(again.creation(), 0);
}

#[test]
fn erlangs_epmd_names_command_reads_our_server() {
    if !have_epmd() {
        return;
    }
    let server = EpmdServer::start(0).unwrap();
    let port = server.port();
    let _a = register(port, &NodeEntry::oxbeam("one", 4101, false), T).unwrap();
    let _b = register(port, &NodeEntry::oxbeam("two", 4102, true), T).unwrap();
    let out = epmd_names_command(port);
    assert!(
        out.contains(&format!("up and running on port {port}")),
        "epmd -names said: {out:?}"
    );
    assert!(out.contains("name one at port 4101"), "{out:?}");
    assert!(out.contains("name two at port 4102"), "{out:?}");
}

#[test]
fn a_mapper_takes_over_when_erlangs_epmd_dies() {
    if !have_epmd() {
        return;
    }
    let (epmd, port) = start_erlang_epmd();
    let m = Mapper::start(port, NodeEntry::oxbeam("heir", 4200, false)).unwrap();
    assert!(
        !m.is_hosting(),
        "Erlang's epmd answered, so nothing to host"
    );
    drop(epmd);
    let n = wait_for("the mapper to host after epmd died", SOON, || {
        let n = sorted_names(port);
        (m.is_hosting() && n == Ok(pairs(&[("heir", 4200)])), n)
    });
    assert!(n.is_ok());
    m.stop();
}

/// Whether `prog` is an executable on the PATH; prints a skip note when it is not.
fn on_path(prog: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(prog).is_file()));
    if !found {
        eprintln!("note: no `{prog}` on PATH; skipping this Erlang interop test");
    }
    found
}

#[test]
fn an_erlang_node_registers_with_our_server() {
    if !on_path("erl") {
        return;
    }
    let server = EpmdServer::start(0).unwrap();
    let port = server.port();
    let _peer = register(port, &NodeEntry::oxbeam("oxpeer", 4300, false), T).unwrap();
    // `-start_epmd false`: the node must use our mapper, never start a daemon of its own.
    let mut erl = ChildGuard(
        Command::new("erl")
            .args([
                "-sname",
                "oxerl",
                "-start_epmd",
                "false",
                "-noshell",
                "-setcookie",
                "oxbeam_test",
                "-eval",
                "io:format(\"~p~n\", [net_adm:names()]), timer:sleep(1000), halt().",
            ])
            .env("ERL_EPMD_PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn erl"),
    );
    let entry = wait_for("the Erlang node to register", SOON, || {
        let e = port_please(port, "oxerl", T);
        (e.is_ok(), e.map_err(|e| e.to_string()))
    })
    .unwrap();
    assert!(!entry.is_oxbeam(), "{entry:?}");
    assert_eq!((entry.node_type, entry.protocol), (77, 0));
    assert!(entry.lowest <= 6 && entry.highest >= 6, "{entry:?}");
    let _ = wait_for("the Erlang node to halt", SOON, || {
        let done = erl.0.try_wait().expect("try_wait");
        (done.is_some(), done)
    });
    let mut out = String::new();
    if let Some(mut stdout) = erl.0.stdout.take() {
        stdout.read_to_string(&mut out).expect("read erl output");
    }
    assert!(out.contains("{\"oxpeer\",4300}"), "erl printed {out:?}");
    let _ = wait_for("the halted node's name to be freed", SOON, || {
        let n = sorted_names(port);
        (n == Ok(pairs(&[("oxpeer", 4300)])), n)
    });
}

/// Set (to anything) in the environment of the child that hosts the mapper in
/// `a_mapper_takes_over_when_the_hosting_process_is_killed`.
const CHILD_VAR: &str = "OXBEAM_TEST_EPMD_CHILD";
/// What the child prints before the port its mapper got.
const CHILD_HOSTS: &str = "epmd-child hosts on port ";

/// In the child only (a re-run of this test binary): host a private mapper as node
/// `victim`, print its port, and live until killed (at most a minute, should the parent
/// be gone).
#[test]
fn hosting_child_process() {
    if std::env::var_os(CHILD_VAR).is_none() {
        return;
    }
    let m = Mapper::start(0, NodeEntry::oxbeam("victim", 4400, false)).unwrap();
    assert!(m.is_hosting());
    println!("{CHILD_HOSTS}{}", m.port());
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_mapper_takes_over_when_the_hosting_process_is_killed() {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", "hosting_child_process", "--nocapture"])
        .env(CHILD_VAR, "1")
        .stderr(Stdio::null());
    let child = support::harness::ChildProc::spawn(&mut cmd, None).expect("re-run the test binary");
    // The test harness prints lines of its own around the child's.
    let port: u16 = wait_for("the child to host and say where", SOON, || {
        let line = child.next_line(SOON).unwrap_or_default();
        let port = line.strip_prefix(CHILD_HOSTS).and_then(|p| p.parse().ok());
        (port.is_some(), port.unwrap_or(0))
    });
    assert_eq!(sorted_names(port), Ok(pairs(&[("victim", 4400)])));
    let heir = Mapper::start(port, NodeEntry::oxbeam("heir2", 4401, false)).unwrap();
    assert!(!heir.is_hosting());
    drop(child); // SIGKILL: no goodbye, the kernel closes its sockets
    let _ = wait_for("the heir to host after the child was killed", SOON, || {
        let n = sorted_names(port);
        (heir.is_hosting() && n == Ok(pairs(&[("heir2", 4401)])), n)
    });
    heir.stop();
}
