//! The evaluator on one node (no peers; the multi-node drills are in
//! `tests/console_*.rs`).

use super::*;
use crate::node::{Net, NetConfig};

pub(super) fn session(name: &str) -> Session {
    let mut config = NetConfig::named(&format!("{name}@localhost"));
    config.use_mapper = false;
    config.cookie = Some("console-unit".into());
    let net = Net::start(config).expect("node starts");
    crate::dist::start(&net).expect("dist starts");
    closure::register(net.node().functions());
    Session::new(net)
}

/// Evaluates one input: its printed lines and then its value (or error), as the prompt
/// shows them.
pub(super) fn run(s: &mut Session, src: &str) -> Vec<String> {
    let r = s.eval_source(src);
    let mut lines = s.take_output();
    match r {
        Ok(Outcome::Value(v)) => lines.push(closure::show(&v)),
        Ok(Outcome::Nothing) => {}
        Ok(Outcome::Incomplete) => lines.push("<incomplete>".into()),
        Err(e) => lines.push(e.to_string()),
    }
    lines
}

pub(super) fn value(s: &mut Session, src: &str) -> String {
    let lines = run(s, src);
    lines.last().cloned().unwrap_or_default()
}

#[test]
fn values_bindings_and_patterns() {
    let mut s = session("con_values");
    assert_eq!(value(&mut s, "x = {:ok, [1, 2 | [3]]}"), "{:ok, [1, 2, 3]}");
    assert_eq!(value(&mut s, "{:ok, [h | t]} = x"), "{:ok, [1, 2, 3]}");
    assert_eq!(value(&mut s, "{h, t}"), "{1, [2, 3]}");
    assert_eq!(value(&mut s, "^h = 1"), "1");
    assert_eq!(
        value(&mut s, "^h = 2"),
        "** (MatchError) no match of right hand side value: 2"
    );
    assert_eq!(value(&mut s, "%{a: a} = %{a: :x, b: 2}; a"), ":x");
    assert_eq!(value(&mut s, "1..1000 |> Enum.sum()"), "500500");
    assert_eq!(value(&mut s, "Enum.sum([1, 2.5])"), "3.5");
    assert_eq!(value(&mut s, "1..3"), "1..3");
    assert_eq!(value(&mut s, "[a: 1] ++ [b: 2]"), "[a: 1, b: 2]");
    assert_eq!(value(&mut s, "\"ab\" <> \"c\""), "\"abc\"");
    assert_eq!(value(&mut s, "7 / 2"), "3.5");
    assert_eq!(value(&mut s, "1 == 1.0"), "true");
    assert_eq!(value(&mut s, "1 === 1.0"), "false");
    assert_eq!(value(&mut s, "Kernel"), "Kernel");
    assert_eq!(value(&mut s, ":\"a b\""), ":\"a b\"");
    assert_eq!(value(&mut s, "'ab'"), "[97, 98]");
    assert!(value(&mut s, "nope").contains("undefined variable \"nope\""));
}

#[test]
fn the_mailbox_is_the_consoles_own() {
    let mut s = session("con_mailbox");
    assert_eq!(value(&mut s, "send(self(), :hello)"), ":hello");
    assert_eq!(value(&mut s, "send self(), {:a, 1}"), "{:a, 1}");
    assert_eq!(run(&mut s, "flush()"), vec![":hello", "{:a, 1}", ":ok"]);
    assert_eq!(run(&mut s, "flush"), vec![":ok"]);
    // A process spawned by MFA, monitored: its DOWN comes to the console.
    let pid = value(&mut s, "pid = spawn(:erpc, :nonexistent, [])");
    assert!(pid.starts_with("** (ErlangError)"), "{pid}");
    assert_eq!(value(&mut s, "Process.flag(:trap_exit, true)"), "false");
    assert_eq!(value(&mut s, "Process.flag(:trap_exit, false)"), "true");
}

#[test]
fn the_consoles_process_is_replaced_when_killed() {
    let mut s = session("con_killed");
    let before = value(&mut s, "self()");
    let r = value(&mut s, "Process.exit(self(), :kill)");
    assert!(r.starts_with("** (EXIT) shell process"), "{r}");
    let after = value(&mut s, "self()");
    assert_ne!(before, after);
    // Variables survive.
    assert_eq!(value(&mut s, "x = 5"), "5");
    assert_eq!(value(&mut s, "x + 1"), "6");
}

#[test]
fn cluster_services_on_one_node() {
    let mut s = session("con_services");
    assert!(value(&mut s, ":pg.start_link()").starts_with("{:ok, #PID<0."));
    assert_eq!(value(&mut s, ":pg.join(:workers, self())"), ":ok");
    assert_eq!(
        value(&mut s, "[self()] == :pg.get_members(:workers)"),
        "true"
    );
    assert_eq!(value(&mut s, ":pg.which_groups()"), "[:workers]");
    assert_eq!(value(&mut s, ":pg.leave(:workers, self())"), ":ok");
    assert_eq!(value(&mut s, ":pg.leave(:workers, self())"), ":not_joined");
    assert_eq!(
        value(&mut s, ":global.register_name(:counter, self())"),
        ":yes"
    );
    assert_eq!(
        value(&mut s, ":global.whereis_name(:counter) == self()"),
        "true"
    );
    assert_eq!(value(&mut s, ":global.registered_names()"), "[:counter]");
    assert_eq!(value(&mut s, ":global.set_lock({:res, self()})"), "true");
    assert_eq!(value(&mut s, ":global.del_lock({:res, self()})"), "true");
    // Any term names a process globally (the capstone's users and rooms).
    assert_eq!(
        value(&mut s, ":global.register_name({:user, \"alice\"}, self())"),
        ":no",
        "a pid has one global name"
    );
    assert_eq!(value(&mut s, ":global.unregister_name(:counter)"), ":ok");
    assert_eq!(
        value(&mut s, ":global.register_name({:user, \"alice\"}, self())"),
        ":yes"
    );
    assert_eq!(
        value(&mut s, ":global.registered_names()"),
        "[user: \"alice\"]"
    );
    assert_eq!(
        value(&mut s, ":global.whereis_name({:user, \"alice\"}) == self()"),
        "true"
    );
    assert_eq!(
        value(&mut s, ":global.send({:user, \"bob\"}, :hi)"),
        "** (exit) {:badarg, {{:user, \"bob\"}, :hi}}"
    );
    // OTP's lock id {ResourceId, LockRequesterId}: another requester is refused.
    assert_eq!(
        value(&mut s, ":global.set_lock({:db, :a}, [node()], 0)"),
        "true"
    );
    assert_eq!(
        value(&mut s, ":global.set_lock({:db, :b}, [node()], 0)"),
        "false"
    );
    assert_eq!(
        value(&mut s, ":global.del_lock({:db, :a}, [node()])"),
        "true"
    );
    assert_eq!(
        value(&mut s, ":global.set_lock({:db, :b}, [node()], 0)"),
        "true"
    );
    assert!(
        value(&mut s, ":global.set_lock(:db)").starts_with("** (FunctionClauseError)"),
        "a lock id must be a pair"
    );
    assert_eq!(
        value(&mut s, ":global.send(:nobody, :x)"),
        "** (exit) {:badarg, {:nobody, :x}}"
    );
    assert_eq!(
        value(&mut s, ":rpc.call(node(), Kernel, :node, [])"),
        ":con_services@localhost"
    );
    assert_eq!(
        value(&mut s, ":rpc.call(node(), NonExistent, :foo, [])"),
        "{:badrpc, {:EXIT, {:undef, {NonExistent, :foo, 0}}}}"
    );
    assert_eq!(
        value(&mut s, ":rpc.call(:missing@localhost, Kernel, :node, [])"),
        "{:badrpc, :nodedown}"
    );
    assert_eq!(
        value(&mut s, ":erpc.call(:missing@localhost, Kernel, :node, [])"),
        "** (ErlangError) Erlang error: {:erpc, :noconnection}"
    );
    let mc = value(
        &mut s,
        ":rpc.multicall([node() | Node.list()], System, :schedulers_online, [])",
    );
    assert!(mc.starts_with("{[") && mc.ends_with("], []}"), "{mc}");
    assert_eq!(value(&mut s, "Node.ping(:missing@localhost)"), ":pang");
    assert_eq!(
        value(&mut s, "Node.list([:this, :visible])"),
        "[:con_services@localhost]"
    );
    assert_eq!(value(&mut s, "Node.get_cookie()"), ":\"console-unit\"");
    assert_eq!(
        value(&mut s, "Node.set_cookie(:other@localhost, :x)"),
        "true"
    );
}

#[test]
fn unsupported_forms_give_one_error_and_the_session_goes_on() {
    let mut s = session("con_unsupported");
    for (src, says) in [
        ("try do 1 end", "not supported"),
        ("Foo.bar(1)", "Foo.bar/1 is undefined"),
        ("frob(1)", "undefined function frob/1"),
        ("1 + :a", "ArithmeticError"),
        ("Node.connect(42)", "expected a node name"),
        ("\"#{x}\"", "undefined variable"),
        (":global.trans({:x, self()}, 1)", "BadFunctionError"),
        ("Node.set_cookie(:\"a\\0b\")", "NUL byte"),
        ("%{a: 1", "<incomplete>"),
    ] {
        let out = value(&mut s, src);
        assert!(out.contains(says), "{src}: {out}");
    }
    assert_eq!(value(&mut s, "1 + 1"), "2");
    let help = run(&mut s, "h");
    assert!(help.iter().any(|l| l.contains(":global.")), "{help:?}");
    assert!(
        run(&mut s, "processes")
            .iter()
            .any(|l| l.contains("thread"))
    );
    assert!(
        run(&mut s, "i(self())")
            .iter()
            .any(|l| l.starts_with("Pid: #PID<0."))
    );
    assert!(
        run(&mut s, "stats")
            .iter()
            .any(|l| l.contains("connections"))
    );
}

#[test]
fn monitors_by_name_print_their_down_as_iex_does() {
    let mut s = session("con_monitor_name");
    let noproc = ", :process, {:nobody, :con_monitor_name@localhost}, :noproc}";
    for src in [
        "Process.monitor(:nobody)",
        "Process.monitor({:nobody, node()})",
        ":erlang.monitor(:process, {:nobody, :con_monitor_name@localhost})",
    ] {
        assert!(value(&mut s, src).starts_with("#Reference<"), "{src}");
        // A name not registered: its DOWN is there at once.
        let out = run(&mut s, "flush()");
        assert_eq!(out.len(), 2, "{src}: {out:?}");
        assert!(
            out[0].starts_with("{:DOWN, #Reference<") && out[0].ends_with(noproc),
            "{src}: {out:?}"
        );
    }
    assert!(
        value(&mut s, "Process.monitor({:a, :b, :c})")
            .contains("takes a pid, a registered name or {name, node}")
    );
}
