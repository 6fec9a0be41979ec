//! Operator helpers of the console: `processes`, `i(pid)`, `stats`, `Process.*`, and the
//! `Node.list/1` selector.

use std::time::Duration;

use super::api::{atom_arg, pid_arg};
use super::eval::{EvalError, Interp};
use crate::node::Net;
use crate::term::{Atom, Pid, Term};

/// At most this many processes are listed by `processes` (the count is always shown).
const MAX_LISTED: usize = 200;

/// `Node.list(selector)`: `:visible`, `:hidden`, `:connected`, `:this`, `:known`, or a
/// list of them (in the order given, as Erlang's `nodes/1`).
pub fn node_list(net: &Net, which: &Term) -> Result<Vec<Atom>, EvalError> {
    let selectors: Vec<Term> = match which {
        Term::List(l) => l.to_vec(),
        other => vec![other.clone()],
    };
    let mut out: Vec<Atom> = Vec::new();
    for sel in &selectors {
        let add: Vec<Atom> = match sel.as_atom().map(|a| a.as_str()) {
            Some("visible") => net.nodes(),
            Some("hidden") => net.hidden_nodes(),
            Some("connected") => {
                let mut v = net.nodes();
                v.extend(net.hidden_nodes());
                v
            }
            Some("this") => vec![net.name()],
            Some("known") => {
                let mut v = vec![net.name()];
                v.extend(net.nodes());
                v.extend(net.hidden_nodes());
                v
            }
            _ => {
                return Err(EvalError::arg(format!(
                    "unknown node selector {sel} (:visible, :hidden, :connected, :this, :known)"
                )));
            }
        };
        for n in add {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    Ok(out)
}

/// `processes`: one line per local process (pid, name, status, queue), then `:ok`.
pub fn processes(s: &mut Interp<'_>) -> Term {
    let all = s.net.node().process_summaries();
    s.say(format!(
        "{:<18} {:<28} {:<9} {:>7}  kind",
        "pid", "name", "status", "queue"
    ));
    for p in all.iter().take(MAX_LISTED) {
        let name = p.name.map(|n| n.as_str().to_owned()).unwrap_or_default();
        s.say(format!(
            "{:<18} {:<28} {:<9} {:>7}  {}",
            Term::Pid(p.pid).to_string(),
            name,
            p.status,
            p.queue_len,
            if p.thread { "thread" } else { "process" }
        ));
    }
    if all.len() > MAX_LISTED {
        s.say(format!("... and {} more", all.len() - MAX_LISTED));
    }
    s.say(format!("{} processes", all.len()));
    Term::atom("ok")
}

/// Asks `pid` (local or remote) for its links and monitors; `nil` when it is gone, and
/// `:timeout` when it did not answer within a second (busy in a long computation).
fn query_info(s: &mut Interp<'_>, pid: Pid) -> Term {
    if pid == s.me.pid() {
        return Term::map(vec![
            (
                Term::atom("links"),
                Term::list(s.me.links().into_iter().map(Term::Pid).collect::<Vec<_>>()),
            ),
            (Term::atom("trap_exit"), Term::from(s.me.traps_exit())),
        ]);
    }
    let reference = s.me.make_ref();
    s.net.node().deliver(
        pid,
        crate::rt::Signal::Info {
            from: s.me.pid(),
            reference,
        },
    );
    let tag = Term::Ref(reference);
    match s.receive_match(
        |m| m.as_tuple().is_some_and(|t| t.len() == 2 && t[0] == tag),
        Duration::from_secs(1),
    ) {
        Some(reply) => reply
            .as_tuple()
            .map(|t| t[1].clone())
            .unwrap_or_else(Term::nil),
        None => Term::atom("timeout"),
    }
}

/// `i(pid)` / `Process.info(pid)`: what is known of a process. With `print`, one line per
/// item (as `i/1` does) and `:ok`; otherwise the keyword list.
pub fn info(s: &mut Interp<'_>, pid: Pid, print: bool) -> Term {
    let mut items: Vec<(String, Term)> = Vec::new();
    if s.net.node().is_local(pid) {
        let Some(p) = s
            .net
            .node()
            .process_summaries()
            .into_iter()
            .find(|p| p.pid == pid)
        else {
            if print {
                s.say(format!("{} is not alive", Term::Pid(pid)));
            }
            return Term::nil();
        };
        if let Some(name) = p.name {
            items.push(("registered_name".into(), Term::Atom(name)));
        }
        items.push(("status".into(), Term::atom(p.status)));
        items.push(("message_queue_len".into(), Term::from(p.queue_len)));
        items.push((
            "kind".into(),
            Term::atom(if p.thread { "thread" } else { "process" }),
        ));
    } else {
        items.push(("node".into(), Term::Atom(pid.node())));
    }
    let answer = query_info(s, pid);
    match answer.as_map() {
        Some(m) => {
            for (k, v) in m {
                items.push((
                    k.as_atom()
                        .map(|a| a.as_str().to_owned())
                        .unwrap_or_default(),
                    v.clone(),
                ));
            }
        }
        None if answer.is_atom("timeout") => {
            items.push(("links".into(), Term::atom("busy_no_answer_within_1s")));
        }
        None => {
            if print {
                s.say(format!("{} is not alive", Term::Pid(pid)));
            }
            return Term::nil();
        }
    }
    if print {
        s.say(format!("Pid: {}", Term::Pid(pid)));
        for (k, v) in &items {
            s.say(format!("{k}: {v}"));
        }
        return Term::atom("ok");
    }
    Term::list(
        items
            .into_iter()
            .map(|(k, v)| Term::tuple(vec![Term::atom(&k), v]))
            .collect::<Vec<_>>(),
    )
}

/// `stats`: message and byte counters per connection, and the node's process count.
pub fn stats(s: &mut Interp<'_>) -> Term {
    let conns = s.net.conn_stats();
    s.say(format!(
        "{:<28} {:>10} {:>12} {:>10} {:>12}",
        "peer", "msgs out", "bytes out", "msgs in", "bytes in"
    ));
    for (peer, c) in &conns {
        s.say(format!(
            "{:<28} {:>10} {:>12} {:>10} {:>12}",
            peer.as_str(),
            c.msgs_out,
            c.bytes_out,
            c.msgs_in,
            c.bytes_in
        ));
    }
    s.say(format!(
        "{} connections, {} local processes",
        conns.len(),
        s.net.node().process_count()
    ));
    Term::atom("ok")
}

/// `Process.monitor(target)`, `:erlang.monitor(:process, target)`: a pid, a name
/// registered here, or `{name, node}` (here or on another node). A monitor by name
/// gets its `DOWN` as `{:DOWN, ref, :process, {name, node}, reason}`: `noproc` at
/// once if nothing is registered as `name` there, `noconnection` if the node is
/// unreachable or goes down.
pub fn monitor(s: &mut Interp<'_>, target: &Term) -> Result<Term, EvalError> {
    let reference = match target {
        Term::Pid(pid) => s.me.monitor(*pid),
        Term::Atom(name) => {
            let here = s.net.name();
            s.me.monitor_name(*name, here)
        }
        _ => match target.as_tuple() {
            Some([Term::Atom(name), Term::Atom(node)]) => s.me.monitor_name(*name, *node),
            _ => return Err(monitor_badarg(target)),
        },
    };
    Ok(Term::Ref(reference))
}

fn monitor_badarg(target: &Term) -> EvalError {
    EvalError::arg(format!(
        "Process.monitor takes a pid, a registered name or {{name, node}}, got {target}"
    ))
}

/// `Process.*` (and the `:erlang` calls that are the same thing).
pub fn process_call(s: &mut Interp<'_>, f: &str, a: &[Term]) -> Result<Option<Term>, EvalError> {
    let node = s.net.node().clone();
    Ok(Some(match (f, a) {
        ("monitor", [p]) => monitor(s, p)?,
        ("demonitor", [r]) | ("demonitor", [r, _]) => {
            let r = r
                .as_ref()
                .ok_or_else(|| EvalError::arg(format!("expected a reference, got {r}")))?;
            if a.len() == 2 {
                s.me.demonitor_flush(r);
            } else {
                s.me.demonitor(r);
            }
            Term::from(true)
        }
        ("link", [p]) => {
            let pid = pid_arg(p)?;
            s.me.link(pid)
                .map_err(|r| EvalError::new("ErlangError", format!("link failed: {r}")))?;
            Term::from(true)
        }
        ("unlink", [p]) => {
            s.me.unlink(pid_arg(p)?);
            Term::from(true)
        }
        ("exit", [p, reason]) => {
            s.me.exit_pid(pid_arg(p)?, reason.clone());
            Term::from(true)
        }
        ("alive?", [p]) => {
            let pid = pid_arg(p)?;
            if !node.is_local(pid) {
                return Err(EvalError::arg(format!(
                    "Process.alive? takes a local pid; {} is on {}",
                    Term::Pid(pid),
                    pid.node().as_str()
                )));
            }
            Term::from(node.is_alive(pid))
        }
        ("flag", [flag, v]) if flag.is_atom("trap_exit") => {
            let on = match v.as_atom().map(|a| a.as_str()) {
                Some("true") => true,
                Some("false") => false,
                _ => return Err(EvalError::arg(format!("expected true or false, got {v}"))),
            };
            Term::from(s.me.trap_exit(on))
        }
        ("flag", [flag, _]) => {
            return Err(EvalError::arg(format!(
                "unsupported process flag {flag} (only :trap_exit)"
            )));
        }
        ("register", [p, n]) => {
            let (pid, name) = (pid_arg(p)?, atom_arg(n, "a name atom")?);
            node.register(name, pid)
                .map_err(|r| EvalError::arg(format!("could not register {name}: {r}")))?;
            Term::from(true)
        }
        ("unregister", [n]) => {
            let name = atom_arg(n, "a name atom")?;
            if !node.unregister(name) {
                return Err(EvalError::arg(format!(
                    "{} is not registered",
                    Term::Atom(name)
                )));
            }
            Term::from(true)
        }
        ("whereis", [n]) => match node.whereis(atom_arg(n, "a name atom")?) {
            Some(p) => Term::Pid(p),
            None => Term::nil(),
        },
        ("registered", []) => {
            let mut names = node.registered();
            names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            Term::list(names.into_iter().map(Term::Atom).collect::<Vec<_>>())
        }
        ("list", []) => Term::list(
            node.processes()
                .into_iter()
                .map(Term::Pid)
                .collect::<Vec<_>>(),
        ),
        ("info", [p]) => {
            let pid = pid_arg(p)?;
            info(s, pid, false)
        }
        ("sleep", [t]) => {
            let ms = match t {
                Term::Int(ms) if *ms >= 0 => *ms as u64,
                _ => return Err(EvalError::arg(format!("expected a time in ms, got {t}"))),
            };
            // Messages keep arriving meanwhile; they stay queued for flush().
            let _ =
                s.me.receive_match(|_| false, Some(Duration::from_millis(ms)));
            Term::atom("ok")
        }
        ("send", [dest, msg, _opts]) => {
            return super::api::call_local(s, "send", vec![dest.clone(), msg.clone()]);
        }
        _ => return Ok(None),
    }))
}

/// A GenServer's address: what `send` takes ([`dest_arg`](super::api::dest_arg)), or
/// `{:global, name}`.
fn server_arg(t: &Term) -> Result<crate::rt::Dest, EvalError> {
    match t.tagged("global") {
        Some([name]) => Ok(crate::rt::Dest::global(name)),
        _ => super::api::dest_arg(t),
    }
}

/// `GenServer.call/2,3`, `cast/2`, `whereis/1`, `stop/1`: any OTP-style server, here or
/// on another node. A call that fails exits as OTP's does: `{reason, {GenServer, :call,
/// [server, request, timeout]}}`.
pub fn genserver_call(s: &mut Interp<'_>, f: &str, a: &[Term]) -> Result<Option<Term>, EvalError> {
    use crate::rt::gen_server;
    Ok(Some(match (f, a) {
        ("call", [server, request]) | ("call", [server, request, _]) => {
            let dest = server_arg(server)?;
            let (timeout, shown) = match a.get(2) {
                None => (Some(Duration::from_secs(5)), Term::Int(5000)),
                Some(Term::Int(ms)) if *ms >= 0 => {
                    (Some(Duration::from_millis(*ms as u64)), Term::Int(*ms))
                }
                Some(t) if t.is_atom("infinity") => (None, t.clone()),
                Some(t) => {
                    return Err(EvalError::arg(format!(
                        "a timeout is milliseconds or :infinity, got {t}"
                    )));
                }
            };
            match gen_server::call(s.me, dest, request.clone(), timeout) {
                Ok(reply) => reply,
                Err(e) => {
                    let how = Term::tuple(vec![
                        Term::atom("Elixir.GenServer"),
                        Term::atom("call"),
                        Term::list(vec![server.clone(), request.clone(), shown]),
                    ]);
                    let reason = Term::tuple(vec![e.reason(), how]);
                    return Err(EvalError::new("exit", reason.to_string()));
                }
            }
        }
        ("cast", [server, request]) => {
            gen_server::cast(s.me.node(), server_arg(server)?, request.clone());
            Term::atom("ok")
        }
        ("whereis", [server]) => match server_arg(server)? {
            crate::rt::Dest::NameAt(..) => server.clone(),
            dest => {
                s.me.node()
                    .resolve(&dest)
                    .map(Term::Pid)
                    .unwrap_or_else(Term::nil)
            }
        },
        ("stop", [server]) => {
            let dest = server_arg(server)?;
            gen_server::stop(
                s.me,
                dest,
                Term::atom("normal"),
                Some(Duration::from_secs(5)),
            )
            .map_err(|e| EvalError::new("exit", e.reason().to_string()))?;
            Term::atom("ok")
        }
        _ => return Ok(None),
    }))
}
