//! The calls the console knows by name: Kernel's local functions (`self()`, `send/2`,
//! `flush()`...), `Node`, `Process`, `:global`, `:pg`, `:rpc`/`:erpc`, `:erlang`,
//! `:net_kernel`, `:net_adm`, `IO` and `System`, each mapped onto oxbeam's API with the
//! results iex would print. [`HELP`] lists them all; `h` prints it.

use std::time::Duration;

use super::closure;
use super::eval::{EvalError, Interp, atom_term};
use super::ops;
use crate::dist::{PgError, global, pg, rpc};
use crate::rt::{Dest, StartError};
use crate::term::{Atom, Pid, Term};

/// Every supported form, for `h`.
pub const HELP: &str = "\
Values: :atom  :\"quoted atom\"  123  1.5  \"string\"  'charlist'  {a, b}  [a, b | tail]  1..10
        %{a: 1, \"k\" => v}  [a: 1]  Kernel (an alias is an atom)  x = expr  {:ok, v} = expr  ^x
        + - * /  == != === !== < > <= >=  ++ -- <>  and or not && || in  |>   (a; b)
        \"Sum: #{sum}\"  fn x -> x + 1 end  f.(1)  &Kernel.node/0  (closures are data: they run
        on any node they are sent to, e.g. spawn(fn -> ... end), Node.spawn(n, fn -> ... end))
Blocks: case x do p when guard -> ... end  receive do p -> ... after ms -> ... end  cond do ... end
        if c do ... else ... end  if c, do: a, else: b  unless  for x <- list, filter do ... end
        (a block may span lines: the prompt becomes ...> until its end)
Shell:  h  flush()  processes  i(pid)  stats  self()  node()  node(pid)  make_ref()
        send(dest, msg)  spawn(M, :f, args)  spawn_link(M, :f, args)  spawn_monitor(M, :f, args)
        hd/tl/length/elem/tuple_size/map_size/is_pid/is_atom/inspect
Node:   Node.self()  Node.alive?()  Node.list()  Node.list(:visible|:hidden|:connected|:this|:known|[...])
        Node.connect(n)  Node.disconnect(n)  Node.ping(n)  Node.monitor(n, bool)
        Node.spawn(n, M, :f, args)  Node.spawn_link(n, M, :f, args)  Node.spawn_monitor(n, M, :f, args)
        Node.get_cookie()  Node.set_cookie(cookie)  Node.set_cookie(n, cookie)
Process: Process.monitor(pid | name | {name, node})  Process.demonitor(ref)  Process.link(pid)
        Process.unlink(pid)  Process.exit(pid, reason)  Process.alive?(pid)  Process.flag(:trap_exit, bool)
        Process.register(pid, name)  Process.unregister(name)  Process.whereis(name)
        Process.registered()  Process.list()  Process.info(pid)  Process.sleep(ms)  Process.send(dest, msg, [])
:global: register_name(name, pid[, &:global.random_exit_name/3 | &:global.notify_all_name/3 | &M.f/3])
        whereis_name(name)  unregister_name(name)  re_register_name(name, pid)  send(name, msg)
        registered_names()  set_lock({res, requester}[, nodes[, retries]])  del_lock(id[, nodes])
        trans(id, fn[, nodes[, retries]])  sync()
:pg:    start_link([scope])  start(scope)  join([scope,] group, pid | pids)  leave([scope,] group, pid | pids)
        get_members([scope,] group)  get_local_members([scope,] group)  which_groups([scope])
        monitor_scope([scope])  monitor([scope,] group)  demonitor([scope,] ref)
:rpc:   call(n, M, :f, args[, timeout])  block_call(...)  cast(n, M, :f, args)
        multicall(M, :f, args)  multicall(nodes, M, :f, args[, timeout])
:erpc:  call(n, M, :f, args[, timeout])   (raises instead of returning {:badrpc, _})
Also:   :erlang.node/0,1 nodes/0,1 self/0 monitor/2 demonitor/1 link/1 unlink/1 exit/2 send/2
        monitor_node/2 get_cookie/0 set_cookie/1,2 whereis/1 register/2 spawn/4 is_alive/0
        :net_kernel.connect_node/1 disconnect/1 monitor_nodes/1,2   :net_adm.ping/1
        IO.puts(x)  IO.inspect(x)  :timer.sleep(ms)  System.halt()  apply(fun, args)
        Enum.map/each/filter/reject/reduce/find/any?/all?/count/member?/sort/reverse/max/min/
        with_index/join/to_list (over lists, ranges and maps)
GenServer: call(server, request[, timeout])  cast(server, request)  whereis(server)  stop(server)
        (server: a pid, a name, {name, node} or {:global, name})
The chapter's modules: DistributedCounter.start_link()/increment()/get()
        PubSub.subscribe(topic)/publish(topic, message)/unsubscribe(topic)
Other Module.fun(args) calls run the node's registered functions (those rpc and remote spawn use),
e.g. Enum.sum(1..10), System.schedulers_online(), Kernel.node().
Not supported: defining modules (def, defmodule), with, try, &(&1) captures, map update syntax.";

/// Names that work without parentheses when no variable has that name (`flush`, `h`).
pub fn is_bare_helper(name: &str) -> bool {
    matches!(
        name,
        "flush" | "h" | "help" | "processes" | "stats" | "self" | "node" | "make_ref"
    )
}

fn type_error(what: &str, got: &Term) -> EvalError {
    EvalError::arg(format!("expected {what}, got {got}"))
}

pub(crate) fn atom_arg(t: &Term, what: &str) -> Result<Atom, EvalError> {
    t.as_atom().ok_or_else(|| type_error(what, t))
}

fn node_arg(t: &Term) -> Result<Atom, EvalError> {
    atom_arg(t, "a node name (an atom like :node2@localhost)")
}

pub(crate) fn pid_arg(t: &Term) -> Result<Pid, EvalError> {
    t.as_pid().ok_or_else(|| type_error("a pid", t))
}

fn bool_arg(t: &Term) -> Result<bool, EvalError> {
    match t.as_atom().map(|a| a.as_str()) {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        _ => Err(type_error("true or false", t)),
    }
}

fn timeout_arg(t: &Term) -> Result<Option<Duration>, EvalError> {
    match t {
        Term::Int(ms) if *ms >= 0 => Ok(Some(Duration::from_millis(*ms as u64))),
        t if t.is_atom("infinity") => Ok(None),
        _ => Err(type_error("a timeout in ms or :infinity", t)),
    }
}

fn list_arg<'a>(t: &'a Term, what: &str) -> Result<&'a [Term], EvalError> {
    t.as_list().ok_or_else(|| type_error(what, t))
}

fn pids_arg(t: &Term) -> Result<Vec<Pid>, EvalError> {
    match t {
        Term::Pid(p) => Ok(vec![*p]),
        Term::List(l) => l.iter().map(pid_arg).collect(),
        _ => Err(type_error("a pid or a list of pids", t)),
    }
}

pub(crate) fn nodes_arg(t: &Term) -> Result<Vec<Atom>, EvalError> {
    list_arg(t, "a list of node names")?
        .iter()
        .map(node_arg)
        .collect()
}

pub(crate) fn dest_arg(t: &Term) -> Result<Dest, EvalError> {
    match t {
        Term::Pid(p) => Ok(Dest::Pid(*p)),
        Term::Atom(a) => Ok(Dest::Name(*a)),
        Term::Tuple(parts) => match parts.as_ref() {
            [Term::Atom(name), Term::Atom(node)] => Ok(Dest::NameAt(*name, *node)),
            _ => Err(type_error("a pid, a name or {name, node}", t)),
        },
        _ => Err(type_error("a pid, a name or {name, node}", t)),
    }
}

fn pids_term(pids: Vec<Pid>) -> Term {
    Term::list(pids.into_iter().map(Term::Pid).collect::<Vec<_>>())
}

fn atoms_term(atoms: Vec<Atom>) -> Term {
    Term::list(atoms.into_iter().map(Term::Atom).collect::<Vec<_>>())
}

fn mfa(m: &Term, f: &Term, a: &Term) -> Result<(Atom, Atom, Vec<Term>), EvalError> {
    Ok((
        atom_arg(m, "a module")?,
        atom_arg(f, "a function name")?,
        list_arg(a, "a list of arguments")?.to_vec(),
    ))
}

fn yes_no<E>(r: Result<(), E>) -> Term {
    Term::atom(if r.is_ok() { "yes" } else { "no" })
}

fn raise(reason: impl Into<Term>) -> EvalError {
    let reason = reason.into();
    EvalError::new("ErlangError", format!("Erlang error: {reason}"))
}

/// `name(args)` with no module: the console's own helpers and Kernel's functions.
/// `None` when there is no such function.
pub fn call_local(s: &mut Interp<'_>, f: &str, args: Vec<Term>) -> Result<Option<Term>, EvalError> {
    let a = args.as_slice();
    Ok(Some(match (f, a) {
        ("h" | "help", [] | [_]) => {
            s.say_all(HELP.lines().map(str::to_owned));
            Term::atom("ok")
        }
        ("flush", []) => {
            for m in s.me.flush() {
                s.say(closure::show(&m));
            }
            Term::atom("ok")
        }
        ("processes", []) => ops::processes(s),
        ("stats", []) => ops::stats(s),
        ("i", [p]) => {
            let pid = pid_arg(p)?;
            ops::info(s, pid, true)
        }
        ("self", []) => Term::Pid(s.me.pid()),
        ("node", []) => Term::Atom(s.net.name()),
        ("node", [t]) => match t {
            Term::Pid(p) => Term::Atom(p.node()),
            Term::Ref(r) => Term::Atom(r.node()),
            _ => return Err(type_error("a pid or a reference", t)),
        },
        ("make_ref", []) => Term::Ref(s.me.make_ref()),
        ("send", [dest, msg]) => {
            let dest = dest_arg(dest)?;
            s.me.send_to(dest, msg.clone())
                .map_err(|r| EvalError::arg(format!("send to an unregistered name failed: {r}")))?;
            msg.clone()
        }
        ("spawn" | "spawn_link" | "spawn_monitor", [m, fun, a]) => {
            let here = s.net.name();
            spawn_as(s, f, here, mfa(m, fun, a)?)?
        }
        ("spawn" | "spawn_link" | "spawn_monitor", [fun]) => {
            let here = s.net.name();
            spawn_as(s, f, here, closure_mfa(fun)?)?
        }
        ("exit", [_]) => {
            return Err(EvalError::arg(
                "exit/1 would end the console's own process; use Process.exit(pid, reason)",
            ));
        }
        ("hd", [t]) => list_arg(t, "a non-empty list")?
            .first()
            .cloned()
            .ok_or_else(|| EvalError::arg("hd of an empty list"))?,
        ("tl", [t]) => {
            let l = list_arg(t, "a non-empty list")?;
            if l.is_empty() {
                return Err(EvalError::arg("tl of an empty list"));
            }
            Term::list(l[1..].to_vec())
        }
        ("length", [t]) => Term::from(list_arg(t, "a list")?.len()),
        ("tuple_size", [t]) => {
            Term::from(t.as_tuple().ok_or_else(|| type_error("a tuple", t))?.len())
        }
        ("map_size", [t]) => Term::from(t.as_map().ok_or_else(|| type_error("a map", t))?.len()),
        ("elem", [t, Term::Int(i)]) => {
            let items = t.as_tuple().ok_or_else(|| type_error("a tuple", t))?;
            usize::try_from(*i)
                .ok()
                .and_then(|i| items.get(i))
                .cloned()
                .ok_or_else(|| EvalError::arg(format!("index {i} out of range for {t}")))?
        }
        ("byte_size", [t]) => Term::from(match t {
            Term::Str(x) => x.len(),
            Term::Binary(b) => b.len(),
            _ => return Err(type_error("a binary", t)),
        }),
        ("is_pid", [t]) => Term::from(t.as_pid().is_some()),
        ("is_atom", [t]) => Term::from(t.as_atom().is_some()),
        ("is_integer", [t]) => Term::from(matches!(t, Term::Int(_))),
        ("is_list", [t]) => Term::from(t.as_list().is_some()),
        ("is_tuple", [t]) => Term::from(t.as_tuple().is_some()),
        ("inspect", [t]) => Term::str(&t.to_string()),
        (f, a) if super::eval::is_guard_fn(f) => super::eval::guard_call(f, a)?,
        _ => return Ok(None),
    }))
}

/// A closure of no arguments, as the mfa that applies it (`spawn(fn -> ... end)`).
fn closure_mfa(t: &Term) -> Result<(Atom, Atom, Vec<Term>), EvalError> {
    match closure::decode(t).map(|f| f.definition()) {
        Some(Ok(def)) if def.arity() == 0 => Ok(closure::spawn_mfa(t)),
        Some(Ok(def)) => Err(EvalError::arg(format!(
            "a spawned fn takes no arguments, this one takes {}",
            def.arity()
        ))),
        Some(Err(e)) => Err(e),
        None => Err(type_error("a function (fn -> ... end)", t)),
    }
}

/// `spawn`, `spawn_link` or `spawn_monitor` (as `kind` says) of `mfa` on `node`: a
/// pid, or `{pid, ref}` for `spawn_monitor`.
fn spawn_as(
    s: &mut Interp<'_>,
    kind: &str,
    node: Atom,
    mfa: (Atom, Atom, Vec<Term>),
) -> Result<Term, EvalError> {
    let (pid, r) = spawn_on(s, node, mfa, kind == "spawn_link", kind == "spawn_monitor")?;
    Ok(match kind {
        "spawn_monitor" => Term::tuple(vec![
            Term::Pid(pid),
            r.map(Term::Ref).unwrap_or_else(Term::nil),
        ]),
        _ => Term::Pid(pid),
    })
}

/// Spawns `mfa` on `node` (this one or another), optionally linked or monitored.
fn spawn_on(
    s: &mut Interp<'_>,
    node: Atom,
    (m, f, a): (Atom, Atom, Vec<Term>),
    link: bool,
    monitor: bool,
) -> Result<(Pid, Option<crate::term::Ref>), EvalError> {
    let net = s.net.clone();
    net.spawn(
        s.me,
        node,
        (m, f, a),
        crate::node::SpawnRequest { link, monitor },
    )
    .map_err(|e| {
        let reason = e.reason();
        EvalError::new("ErlangError", format!("spawn on {node} failed: {reason}"))
    })
}

/// `Module.fun(args)` for the modules the console implements itself; `None` when it is
/// not one of them (the caller then tries the node's registered functions).
pub fn call(
    s: &mut Interp<'_>,
    module: &str,
    f: &str,
    args: Vec<Term>,
) -> Result<Option<Term>, EvalError> {
    match module {
        "Kernel" => call_local(s, f, args),
        "Node" => node_call(s, f, &args),
        "Process" => super::ops::process_call(s, f, &args),
        ":global" => global_call(s, f, &args),
        ":pg" => pg_call(s, f, &args),
        ":rpc" | ":erpc" => rpc_call(s, module == ":erpc", f, &args),
        ":erlang" => erlang_call(s, f, args),
        ":net_kernel" | ":net_adm" => net_kernel_call(s, f, &args),
        "DistributedCounter" => super::chapter::distributed_counter(s, f, &args),
        "PubSub" => super::chapter::pubsub(s, f, &args),
        "DistributedKV" => super::exercises::distributed_kv(s, f, &args),
        "DistributedQueue" => super::exercises::distributed_queue(s, f, &args),
        "LockManager" => super::exercises::lock_manager(s, f, &args),
        "Enum" => super::enumerable::call(s, f, &args),
        "GenServer" => super::ops::genserver_call(s, f, &args),
        "IO" => Ok(match (f, args.as_slice()) {
            ("puts", [t]) => {
                s.say(
                    t.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| t.to_string()),
                );
                Some(Term::atom("ok"))
            }
            ("inspect", [t]) => {
                s.say(closure::show(t));
                Some(t.clone())
            }
            _ => None,
        }),
        ":timer" if f == "sleep" => super::ops::process_call(s, f, &args),
        "System" if matches!(f, "halt" | "stop") => {
            s.quit = true;
            Ok(Some(Term::atom("ok")))
        }
        ":init" if f == "stop" => {
            s.quit = true;
            Ok(Some(Term::atom("ok")))
        }
        _ => Ok(None),
    }
}

fn node_call(s: &mut Interp<'_>, f: &str, a: &[Term]) -> Result<Option<Term>, EvalError> {
    let net = s.net.clone();
    Ok(Some(match (f, a) {
        ("self", []) => Term::Atom(net.name()),
        ("alive?", []) => Term::from(true),
        ("list", []) => atoms_term(net.nodes()),
        ("list", [which]) => atoms_term(ops::node_list(&net, which)?),
        ("connect", [n]) => Term::from(net.connect(node_arg(n)?.as_str()).is_ok()),
        ("disconnect", [n]) => Term::from(net.disconnect(node_arg(n)?)),
        ("ping", [n]) => {
            let n = node_arg(n)?;
            let up = n == net.name() || net.connect(n.as_str()).is_ok();
            Term::atom(if up { "pong" } else { "pang" })
        }
        ("monitor", [n, on]) => {
            net.monitor_node(s.me.pid(), node_arg(n)?, bool_arg(on)?);
            Term::from(true)
        }
        ("spawn" | "spawn_link" | "spawn_monitor", [n, m, fun, args]) => {
            let n = node_arg(n)?;
            spawn_as(s, f, n, mfa(m, fun, args)?)?
        }
        ("spawn" | "spawn_link" | "spawn_monitor", [n, fun]) => {
            let n = node_arg(n)?;
            spawn_as(s, f, n, closure_mfa(fun)?)?
        }
        ("get_cookie", []) => atom_term(&net.cookie())?,
        ("set_cookie", [c]) => {
            net.set_cookie(atom_arg(c, "a cookie atom")?.as_str())
                .map_err(|e| EvalError::arg(e.to_string()))?;
            Term::from(true)
        }
        ("set_cookie", [n, c]) => {
            let n = node_arg(n)?;
            let c = atom_arg(c, "a cookie atom")?;
            if n == net.name() {
                net.set_cookie(c.as_str())
            } else {
                net.set_peer_cookie(n, c.as_str())
            }
            .map_err(|e| EvalError::arg(e.to_string()))?;
            Term::from(true)
        }
        _ => return Ok(None),
    }))
}

fn resolver_arg(t: &Term) -> Result<global::Resolver, EvalError> {
    match t.tagged("&") {
        Some([Term::Atom(m), Term::Atom(f), Term::Int(3)]) => Ok(match (m.as_str(), f.as_str()) {
            ("global", "random_exit_name") => global::Resolver::ExitOne,
            ("global", "notify_all_name" | "random_notify_name") => global::Resolver::NotifyAll,
            _ => global::Resolver::Function(*m, *f),
        }),
        _ => Err(type_error(
            "a resolver &Module.fun/3 (e.g. &:global.notify_all_name/3)",
            t,
        )),
    }
}

/// `:global.set_lock`/`del_lock`'s id `{resource, requester}`; anything else is OTP's
/// `FunctionClauseError`.
fn lock_id_arg(t: &Term, f: &str, arity: usize) -> Result<global::LockId, EvalError> {
    global::LockId::from_term(t).ok_or_else(|| {
        EvalError::new(
            "FunctionClauseError",
            format!(
                "no function clause matching in :global.{f}/{arity} \
                 (the id is {{resource_id, lock_requester_id}}, got {t})"
            ),
        )
    })
}

fn lock_nodes_arg(t: &Term) -> Result<global::LockNodes, EvalError> {
    Ok(global::LockNodes::Only(nodes_arg(t)?))
}

fn global_call(s: &mut Interp<'_>, f: &str, a: &[Term]) -> Result<Option<Term>, EvalError> {
    let me = &mut s.me;
    Ok(Some(match (f, a) {
        ("register_name", [n, p]) => yes_no(global::register_name(me, n, pid_arg(p)?)),
        ("register_name", [n, p, r]) => yes_no(global::register_name_with(
            me,
            n,
            pid_arg(p)?,
            resolver_arg(r)?,
        )),
        ("whereis_name", [n]) => match global::whereis_name(me.node(), n) {
            Some(p) => Term::Pid(p),
            None => Term::atom("undefined"),
        },
        ("unregister_name", [n]) => {
            global::unregister_name(me, n);
            Term::atom("ok")
        }
        ("re_register_name", [n, p]) => {
            global::re_register_name(me, n, pid_arg(p)?);
            Term::atom("yes")
        }
        ("send", [n, msg]) => match global::send(me, n, msg.clone()) {
            Ok(p) => Term::Pid(p),
            Err(_) => {
                return Err(EvalError::new(
                    "exit",
                    Term::tuple(vec![
                        Term::atom("badarg"),
                        Term::tuple(vec![n.clone(), msg.clone()]),
                    ])
                    .to_string(),
                ));
            }
        },
        ("registered_names", []) => Term::list(global::registered_names(me.node())),
        ("set_lock", [id]) => {
            let id = lock_id_arg(id, f, 1)?;
            Term::from(global::set_lock(me, id, global::LockWait::Infinity).is_ok())
        }
        ("set_lock", [id, nodes]) => {
            let (id, nodes) = (lock_id_arg(id, f, 2)?, lock_nodes_arg(nodes)?);
            Term::from(global::set_lock_on(me, id, nodes, global::LockWait::Infinity).is_ok())
        }
        ("set_lock", [id, nodes, r]) => {
            let (id, nodes) = (lock_id_arg(id, f, 3)?, lock_nodes_arg(nodes)?);
            let wait = match r {
                Term::Int(n) if *n >= 0 => global::LockWait::Retries(*n as u32),
                t if t.is_atom("infinity") => global::LockWait::Infinity,
                _ => return Err(type_error("retries (an integer or :infinity)", r)),
            };
            Term::from(global::set_lock_on(me, id, nodes, wait).is_ok())
        }
        ("del_lock", [id]) => {
            global::del_lock(me, lock_id_arg(id, f, 1)?);
            Term::from(true)
        }
        ("del_lock", [id, nodes]) => {
            let (id, nodes) = (lock_id_arg(id, f, 2)?, lock_nodes_arg(nodes)?);
            global::del_lock_on(me, id, nodes);
            Term::from(true)
        }
        ("sync", []) => {
            if global::sync(me, Duration::from_secs(10)).is_err() {
                return Err(raise(Term::atom("timeout")));
            }
            Term::atom("ok")
        }
        ("trans", [id, fun, rest @ ..]) if rest.len() <= 2 => {
            let id = lock_id_arg(id, f, 2 + rest.len())?;
            let nodes = match rest.first() {
                Some(n) => lock_nodes_arg(n)?,
                None => global::LockNodes::All,
            };
            let wait = match rest.get(1) {
                Some(Term::Int(n)) if *n >= 0 => global::LockWait::Retries(*n as u32),
                Some(t) if !t.is_atom("infinity") => {
                    return Err(type_error("retries (an integer or :infinity)", t));
                }
                _ => global::LockWait::Infinity,
            };
            if !closure::is_fun(fun) {
                return Err(EvalError::new(
                    "BadFunctionError",
                    format!("expected a function, got: {fun}"),
                ));
            }
            if global::set_lock_on(s.me, id.clone(), nodes.clone(), wait).is_err() {
                return Ok(Some(Term::atom("aborted")));
            }
            let r = s.apply(fun, Vec::new());
            global::del_lock_on(s.me, id, nodes);
            r?
        }
        _ => return Ok(None),
    }))
}

fn pg_call(s: &mut Interp<'_>, f: &str, a: &[Term]) -> Result<Option<Term>, EvalError> {
    let default = pg::default_scope();
    let scope_of = |t: &Term| atom_arg(t, "a scope name");
    let me = &mut s.me;
    let node = me.node().clone();
    Ok(Some(match (f, a) {
        ("start_link" | "start", []) => start_scope(&node, default)?,
        ("start_link" | "start", [sc]) => start_scope(&node, scope_of(sc)?)?,
        ("join", [g, p]) => pg_done(pg::join(me, default, g.clone(), &pids_arg(p)?))?,
        ("join", [sc, g, p]) => pg_done(pg::join(me, scope_of(sc)?, g.clone(), &pids_arg(p)?))?,
        ("leave", [g, p]) => pg_left(pg::leave(me, default, g.clone(), &pids_arg(p)?))?,
        ("leave", [sc, g, p]) => pg_left(pg::leave(me, scope_of(sc)?, g.clone(), &pids_arg(p)?))?,
        ("get_members", [g]) => pids_term(pg::get_members(&node, default, g)),
        ("get_members", [sc, g]) => pids_term(pg::get_members(&node, scope_of(sc)?, g)),
        ("get_local_members", [g]) => pids_term(pg::get_local_members(&node, default, g)),
        ("get_local_members", [sc, g]) => pids_term(pg::get_local_members(&node, scope_of(sc)?, g)),
        ("which_groups", []) => Term::list(pg::which_groups(&node, default)),
        ("which_groups", [sc]) => Term::list(pg::which_groups(&node, scope_of(sc)?)),
        ("monitor_scope", []) | ("monitor_scope", [_]) => {
            let sc = a.first().map(scope_of).transpose()?.unwrap_or(default);
            let (r, current) = pg::monitor_scope(me, sc).map_err(raise)?;
            Term::tuple(vec![Term::Ref(r), current])
        }
        ("monitor", [g]) | ("monitor", [_, g]) => {
            let sc = if a.len() == 2 {
                scope_of(&a[0])?
            } else {
                default
            };
            let (r, pids) = pg::monitor(me, sc, g.clone()).map_err(raise)?;
            Term::tuple(vec![Term::Ref(r), pids_term(pids)])
        }
        ("demonitor", [r]) | ("demonitor", [_, r]) => {
            let sc = if a.len() == 2 {
                scope_of(&a[0])?
            } else {
                default
            };
            let r = r
                .as_ref()
                .ok_or_else(|| type_error("a monitor reference", r))?;
            match pg::demonitor(me, sc, r).map_err(raise)? {
                true => Term::atom("ok"),
                false => Term::from(false),
            }
        }
        _ => return Ok(None),
    }))
}

/// `:pg.start_link(scope)`: the default scope runs on every oxbeam node already, so this
/// returns `{:ok, pid}` of the running scope (OTP would say `{:error, {:already_started,
/// pid}}`, but in iex the drill's first `:pg.start_link()` prints `{:ok, pid}`).
fn start_scope(node: &crate::rt::Node, scope: Atom) -> Result<Term, EvalError> {
    match pg::start_scope(node, scope) {
        Ok(pid) => Ok(Term::tuple(vec![Term::atom("ok"), Term::Pid(pid)])),
        Err(StartError::AlreadyStarted(p)) => Ok(Term::tuple(vec![Term::atom("ok"), Term::Pid(p)])),
        Err(e) => Ok(Term::tuple(vec![Term::atom("error"), e.reason()])),
    }
}

fn pg_done(r: Result<(), PgError>) -> Result<Term, EvalError> {
    r.map(|()| Term::atom("ok")).map_err(raise)
}

fn pg_left(r: Result<bool, PgError>) -> Result<Term, EvalError> {
    match r.map_err(raise)? {
        true => Ok(Term::atom("ok")),
        false => Ok(Term::atom("not_joined")),
    }
}

fn rpc_call(
    s: &mut Interp<'_>,
    raises: bool,
    f: &str,
    a: &[Term],
) -> Result<Option<Term>, EvalError> {
    let net = s.net.clone();
    let me = &mut s.me;
    let result = |r: Result<Term, rpc::RpcError>| -> Result<Term, EvalError> {
        match (r, raises) {
            (Ok(t), _) => Ok(t),
            (Err(e), false) => Ok(e.badrpc()),
            (Err(rpc::RpcError::Exit(reason)), true) => {
                Err(EvalError::new("exit", reason.to_string()))
            }
            (Err(rpc::RpcError::NodeDown), true) => Err(raise(Term::tuple(vec![
                Term::atom("erpc"),
                Term::atom("noconnection"),
            ]))),
            (Err(rpc::RpcError::Timeout), true) => Err(raise(Term::tuple(vec![
                Term::atom("erpc"),
                Term::atom("timeout"),
            ]))),
        }
    };
    Ok(Some(match (f, a) {
        ("call" | "block_call", [n, m, fun, args]) => {
            let (m, fun, args) = mfa(m, fun, args)?;
            result(rpc::call(me, node_arg(n)?, m, fun, args, None))?
        }
        ("call" | "block_call", [n, m, fun, args, t]) => {
            let (m, fun, args) = mfa(m, fun, args)?;
            result(rpc::call(me, node_arg(n)?, m, fun, args, timeout_arg(t)?))?
        }
        ("cast", [n, m, fun, args]) if !raises => {
            let (m, fun, args) = mfa(m, fun, args)?;
            rpc::cast(me, node_arg(n)?, m, fun, args);
            Term::from(true)
        }
        ("multicall", [m, fun, args]) if !raises => {
            let (m, fun, args) = mfa(m, fun, args)?;
            multicall(me, &net.nodes_and_this(), (m, fun, args), None)
        }
        ("multicall", [ns @ Term::List(_), m, fun, args]) if !raises => {
            let (m, fun, args) = mfa(m, fun, args)?;
            multicall(me, &nodes_arg(ns)?, (m, fun, args), None)
        }
        ("multicall", [m, fun, args, t]) if !raises => {
            let (m, fun, args) = mfa(m, fun, args)?;
            multicall(me, &net.nodes_and_this(), (m, fun, args), timeout_arg(t)?)
        }
        ("multicall", [ns, m, fun, args, t]) if !raises => {
            let (m, fun, args) = mfa(m, fun, args)?;
            multicall(me, &nodes_arg(ns)?, (m, fun, args), timeout_arg(t)?)
        }
        _ => return Ok(None),
    }))
}

fn multicall(
    me: &mut crate::rt::Ctx,
    nodes: &[Atom],
    (m, f, a): (Atom, Atom, Vec<Term>),
    timeout: Option<Duration>,
) -> Term {
    let (results, bad) = rpc::multicall(me, nodes, m, f, a, timeout);
    Term::tuple(vec![Term::list(results), atoms_term(bad)])
}

fn erlang_call(s: &mut Interp<'_>, f: &str, args: Vec<Term>) -> Result<Option<Term>, EvalError> {
    let net = s.net.clone();
    Ok(Some(match (f, args.as_slice()) {
        ("node" | "self" | "send" | "make_ref" | "whereis" | "register", _) => {
            return match f {
                "whereis" | "register" => super::ops::process_call(s, f, &args),
                _ => call_local(s, f, args),
            };
        }
        ("nodes", []) => atoms_term(net.nodes()),
        ("nodes", [which]) => atoms_term(ops::node_list(&net, which)?),
        ("is_alive", []) => Term::from(true),
        ("monitor", [kind, p]) if kind.is_atom("process") => super::ops::monitor(s, p)?,
        ("demonitor", [r]) => Term::from(
            s.me.demonitor(
                r.as_ref()
                    .ok_or_else(|| type_error("a monitor reference", r))?,
            ),
        ),
        ("link" | "unlink" | "exit", _) => return super::ops::process_call(s, f, &args),
        ("monitor_node", [n, on]) => {
            net.monitor_node(s.me.pid(), node_arg(n)?, bool_arg(on)?);
            Term::from(true)
        }
        ("get_cookie" | "set_cookie", _) => return node_call(s, f, &args),
        ("spawn" | "spawn_link" | "spawn_monitor", [n, m, fun, a]) => {
            let n = node_arg(n)?;
            spawn_as(s, f, n, mfa(m, fun, a)?)?
        }
        ("spawn" | "spawn_link" | "spawn_monitor", [fun]) => {
            let here = s.net.name();
            spawn_as(s, f, here, closure_mfa(fun)?)?
        }
        ("apply", [fun, Term::List(args)]) => s.apply(fun, args.to_vec())?,
        _ => return Ok(None),
    }))
}

fn net_kernel_call(s: &mut Interp<'_>, f: &str, a: &[Term]) -> Result<Option<Term>, EvalError> {
    let net = s.net.clone();
    Ok(Some(match (f, a) {
        ("connect_node", [n]) => Term::from(net.connect(node_arg(n)?.as_str()).is_ok()),
        ("disconnect", [n]) => Term::from(net.disconnect(node_arg(n)?)),
        ("ping", [_]) => return node_call(s, "ping", a),
        ("monitor_nodes", [on]) | ("monitor_nodes", [on, _]) => {
            net.monitor_nodes(
                s.me.pid(),
                if bool_arg(on)? {
                    if a.len() == 2 {
                        crate::node::NodeMonitor::WithReasons
                    } else {
                        crate::node::NodeMonitor::On
                    }
                } else {
                    crate::node::NodeMonitor::Off
                },
            );
            Term::atom("ok")
        }
        _ => return Ok(None),
    }))
}
