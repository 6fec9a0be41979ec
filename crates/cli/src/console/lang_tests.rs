//! The console's blocks, closures and interpolation on one node (the multi-node
//! drills, closures crossing nodes among them, are in `tests/console_drills.rs`).

use super::tests::{run, session, value};

#[test]
fn interpolation_shows_values_as_to_string_does() {
    let mut s = session("lang_interp");
    assert_eq!(value(&mut s, "sum = 42"), "42");
    assert_eq!(value(&mut s, "\"Sum: #{sum}\""), "\"Sum: 42\"");
    assert_eq!(
        value(&mut s, "\"#{:a}-#{1.5}-#{nil}-#{[104, \"i\"]}\""),
        "\"a-1.5--hi\""
    );
    assert_eq!(
        value(&mut s, "\"#{\"nested #{sum + 1}\"}\""),
        "\"nested 43\""
    );
    assert!(value(&mut s, "\"#{self()}\"").starts_with("** (Protocol.UndefinedError)"));
    assert_eq!(
        run(&mut s, "IO.puts(\"Sum: #{sum}\")"),
        vec!["Sum: 42", ":ok"]
    );
}

#[test]
fn closures_capture_what_they_use_and_apply_with_clauses() {
    let mut s = session("lang_fn");
    assert_eq!(value(&mut s, "n = 2"), "2");
    assert_eq!(
        value(&mut s, "add = fn x -> x + n end"),
        value(&mut s, "add")
    );
    assert!(
        value(&mut s, "add").starts_with("#Function<"),
        "{}",
        value(&mut s, "add")
    );
    assert!(value(&mut s, "add").ends_with("/1 in :oxbeam_eval>"));
    assert_eq!(value(&mut s, "add.(40)"), "42");
    // The closure keeps n as it was.
    assert_eq!(value(&mut s, "n = 100"), "100");
    assert_eq!(value(&mut s, "add.(1)"), "3");
    // Clauses, guards, and a clause error.
    assert_eq!(
        value(
            &mut s,
            "f = fn {:ok, v} -> v; {:error, _} -> nil; x when is_integer(x) and x > 0 -> :pos end"
        ),
        value(&mut s, "f")
    );
    assert_eq!(value(&mut s, "f.({:ok, 7})"), "7");
    assert_eq!(value(&mut s, "f.({:error, :x})"), "nil");
    assert_eq!(value(&mut s, "f.(3)"), ":pos");
    assert!(value(&mut s, "f.(-3)").starts_with("** (FunctionClauseError)"));
    assert!(value(&mut s, "f.(1, 2)").starts_with("** (BadArityError)"));
    assert!(
        value(&mut s, "5.(1)").starts_with("** (BadFunctionError)")
            || value(&mut s, "x = 5; x.(1)").starts_with("** (BadFunctionError)")
    );
    // A closure's own variables don't leak out.
    assert_eq!(
        value(&mut s, "g = fn -> inner = 1; inner + 1 end; g.()"),
        "2"
    );
    assert!(value(&mut s, "inner").contains("undefined variable"));
    // Multi-line, as typed at the prompt.
    assert_eq!(run(&mut s, "h = fn a, b ->"), vec!["<incomplete>"]);
    assert_eq!(
        value(
            &mut s,
            "h = fn a, b ->\n  c = a * b\n  c + 1\nend\nh.(3, 4)"
        ),
        "13"
    );
    // A capture applies too.
    assert_eq!(value(&mut s, "(&Kernel.node/0).()"), ":lang_fn@localhost");
}

#[test]
fn case_cond_if_and_for() {
    let mut s = session("lang_blocks");
    assert_eq!(
        value(
            &mut s,
            "case {:ok, 5} do\n  {:ok, n} when n > 3 -> n * 2\n  _ -> :other\nend"
        ),
        "10"
    );
    assert!(
        value(&mut s, "n").contains("undefined variable"),
        "case bindings are scoped"
    );
    assert!(value(&mut s, "case 1 do 2 -> :x end").starts_with("** (CaseClauseError)"));
    assert_eq!(
        value(&mut s, "cond do\n  1 > 2 -> :a\n  true -> :b\nend"),
        ":b"
    );
    assert_eq!(value(&mut s, "if 1 < 2 do :yes else :no end"), ":yes");
    assert_eq!(value(&mut s, "if nil, do: 1, else: 2"), "2");
    assert_eq!(value(&mut s, "unless false do :ran end"), ":ran");
    assert_eq!(value(&mut s, "if false do :x end"), "nil");
    assert_eq!(
        value(&mut s, "for x <- [1, 2, 3], x != 2 do x * 10 end"),
        "[10, 30]"
    );
    assert_eq!(
        value(&mut s, "for x <- 1..3, y <- [:a], do: {x, y}"),
        "[{1, :a}, {2, :a}, {3, :a}]"
    );
    assert_eq!(
        value(
            &mut s,
            "for {:ok, v} <- [{:ok, 1}, :skip, {:ok, 2}] do v end"
        ),
        "[1, 2]"
    );
    assert_eq!(value(&mut s, "true and false or true"), "true");
    assert_eq!(value(&mut s, "nil || :fallback"), ":fallback");
    assert!(value(&mut s, "1 and true").starts_with("** (BadBooleanError)"));
    assert_eq!(value(&mut s, "2 in [1, 2]"), "true");
    assert_eq!(value(&mut s, "5 in 1..3"), "false");
    // The chapter's Drill 4 loop, as printed, with the block on three lines.
    assert_eq!(
        run(
            &mut s,
            "for pid <- [self()] do\n  send(pid, {:broadcast, \"Hello everyone\"})\nend"
        ),
        vec!["[broadcast: \"Hello everyone\"]"]
    );
    assert!(value(&mut s, "for x <- 1..100_000_000 do x end").contains("not enumerated"));
}

#[test]
fn receive_takes_the_first_matching_message_or_times_out() {
    let mut s = session("lang_receive");
    assert_eq!(
        value(&mut s, "send(self(), :noise); send(self(), {:result, 7})"),
        "{:result, 7}"
    );
    assert_eq!(
        run(
            &mut s,
            "receive do\n  {:result, sum} -> IO.puts(\"Sum: #{sum}\")\nend"
        ),
        vec!["Sum: 7", ":ok"]
    );
    // :noise is still there; a guard skips it.
    assert_eq!(
        value(
            &mut s,
            "receive do x when is_integer(x) -> x after 10 -> :timeout end"
        ),
        ":timeout"
    );
    assert_eq!(value(&mut s, "receive do m -> m end"), ":noise");
    assert_eq!(value(&mut s, "receive do after 0 -> :empty end"), ":empty");
    assert!(value(&mut s, "receive do after -1 -> :x end").starts_with("** (ArgumentError)"));
}

#[test]
fn spawned_closures_run_in_their_own_process() {
    let mut s = session("lang_spawn");
    assert_eq!(value(&mut s, "caller = self()"), value(&mut s, "self()"));
    let pid = value(
        &mut s,
        "pid = spawn(fn ->\n  receive do\n    :stop -> send(caller, {:stopped, self()})\n  end\nend)",
    );
    assert!(pid.starts_with("#PID<"), "{pid}");
    assert_eq!(value(&mut s, "Process.alive?(pid)"), "true");
    assert_eq!(value(&mut s, "send(pid, :stop)"), ":stop");
    assert_eq!(
        value(
            &mut s,
            "receive do {:stopped, ^pid} -> :ok after 5000 -> :timeout end"
        ),
        ":ok"
    );
    // spawn_monitor: the DOWN comes with the closure's exit (an error's reason).
    assert_eq!(
        value(
            &mut s,
            "{p, ref} = spawn_monitor(fn -> 1 = 2 end); is_pid(p)"
        ),
        "true"
    );
    let down = value(
        &mut s,
        "receive do {:DOWN, ^ref, :process, _, reason} -> reason after 5000 -> :timeout end",
    );
    assert!(down.contains("MatchError"), "{down}");
    assert!(value(&mut s, "spawn(fn x -> x end)").contains("takes no arguments"));
}

#[test]
fn runaway_recursion_and_deep_nesting_are_errors_not_crashes() {
    let mut s = session("lang_deep");
    assert!(
        value(&mut s, "f = fn g -> g.(g) end; f.(f)").starts_with("** (SystemLimitError)"),
        "recursion through closures is bounded"
    );
    // The same inside a spawned closure's process (a scheduler thread's stack): it
    // exits with the error and the node goes on.
    let n = crate::console::parse::MAX_NESTING - 6;
    let deep = format!("{}1{}", "[".repeat(n), "]".repeat(n));
    assert_eq!(
        value(
            &mut s,
            &format!("{{p, ref}} = spawn_monitor(fn -> {deep} end); is_pid(p)")
        ),
        "true"
    );
    let down = value(
        &mut s,
        "receive do {:DOWN, ^ref, :process, _, r} -> r after 5000 -> :timeout end",
    );
    assert_eq!(down, ":normal");
    assert_eq!(
        value(
            &mut s,
            "{p, ref} = spawn_monitor(fn -> f = fn g -> g.(g) end; f.(f) end); is_pid(p)"
        ),
        "true"
    );
    let down = value(
        &mut s,
        "receive do {:DOWN, ^ref, :process, _, r} -> r after 5000 -> :timeout end",
    );
    assert!(down.contains("SystemLimitError"), "{down}");
    assert_eq!(value(&mut s, "1 + 1"), "2");
}

#[test]
fn the_chapters_modules_answer_as_the_chapter_says() {
    let mut s = session("lang_chapter");
    let started = value(&mut s, "DistributedCounter.start_link()");
    assert!(started.starts_with("{:ok, #PID<0."), "{started}");
    assert_eq!(value(&mut s, "DistributedCounter.increment()"), ":ok");
    assert_eq!(value(&mut s, "DistributedCounter.increment()"), ":ok");
    assert_eq!(value(&mut s, "DistributedCounter.get()  # => 2"), "2");
    let again = value(&mut s, "DistributedCounter.start_link()");
    assert!(
        again.starts_with("{:error, {:already_started, #PID<0."),
        "{again}"
    );
    assert_eq!(
        value(
            &mut s,
            ":global.whereis_name(DistributedCounter) |> is_pid()"
        ),
        "true"
    );
    assert_eq!(value(&mut s, "PubSub.subscribe(:news)"), ":ok");
    assert_eq!(
        value(
            &mut s,
            "PubSub.publish(:news, \"Breaking: Elixir is awesome!\")"
        ),
        "[{:message, :news, \"Breaking: Elixir is awesome!\"}]"
    );
    assert_eq!(
        run(&mut s, "flush()"),
        vec!["{:message, :news, \"Breaking: Elixir is awesome!\"}", ":ok"]
    );
    assert_eq!(value(&mut s, "PubSub.unsubscribe(:news)"), ":ok");
    assert_eq!(value(&mut s, "PubSub.publish(:news, 1)"), "[]");
    assert!(value(&mut s, "DistributedCounter.reset()").contains("undefined"));
}

#[test]
fn big_values_show_as_iex_shows_them() {
    let mut s = session("lang_big");
    let shown = value(&mut s, "big_data = :binary.copy(\"x\", 10_000_000)");
    assert_eq!(shown, format!("\"{}\" <> ...", "x".repeat(4096)));
    assert_eq!(value(&mut s, "byte_size(big_data)"), "10000000");
    let shown = value(&mut s, "for x <- 1..100, do: x");
    assert!(shown.ends_with(", 50, ...]"), "{shown}");
    assert!(value(&mut s, ":binary.copy(\"x\", 1_000_000_000_000)").contains("system_limit"));
}

#[test]
fn enum_takes_closures() {
    let mut s = session("lang_enum");
    assert_eq!(
        value(&mut s, "Enum.map(1..3, fn x -> x * x end)"),
        "[1, 4, 9]"
    );
    assert_eq!(
        value(
            &mut s,
            "Enum.filter([1, 2, 3, 4], fn x -> rem(x, 2) == 0 end)"
        ),
        "[2, 4]"
    );
    assert_eq!(
        value(&mut s, "Enum.reduce(1..10, 0, fn x, acc -> x + acc end)"),
        "55"
    );
    assert_eq!(value(&mut s, "Enum.sum(1..10)"), "55");
    assert_eq!(
        value(&mut s, "Enum.join([:a, 1, \"b\"], \", \")"),
        "\"a, 1, b\""
    );
    assert_eq!(
        value(&mut s, "[node()] |> Enum.map(fn n -> {n, :up} end)"),
        "[lang_enum@localhost: :up]"
    );
    assert_eq!(
        run(&mut s, "Enum.each([1, 2], fn x -> IO.puts(x) end)"),
        vec!["1", "2", ":ok"]
    );
    assert_eq!(
        value(&mut s, "Enum.find([1, 2, 3], fn x -> x > 1 end)"),
        "2"
    );
    assert_eq!(value(&mut s, "Enum.count(%{a: 1, b: 2})"), "2");
    assert!(value(&mut s, "Enum.map(5, fn x -> x end)").contains("Enumerable not implemented"));
}

#[test]
fn a_node_without_the_evaluator_refuses_a_closure_with_undef() {
    let mut s = session("lang_undef");
    // A bare node: distribution and the built-ins, not the console's evaluator.
    let mut config = crate::node::NetConfig::named("lang_bare@localhost");
    config.use_mapper = false;
    config.cookie = Some("console-unit".into());
    let bare = crate::node::Net::start(config).expect("node starts");
    crate::dist::start(&bare).expect("dist starts");
    let port = bare.address().port();
    assert_eq!(
        value(
            &mut s,
            &format!("Node.connect(:\"lang_bare@localhost:{port}\")")
        ),
        "true"
    );
    let refused = value(&mut s, "Node.spawn(:lang_bare@localhost, fn -> :ok end)");
    assert!(
        refused.contains("{:undef, {:oxbeam_eval, :apply, 2}}"),
        "{refused}"
    );
    // The MFA form works there.
    assert!(
        value(
            &mut s,
            "Node.spawn(:lang_bare@localhost, Kernel, :node, [])"
        )
        .starts_with("#PID<")
    );
    bare.shutdown();
}

#[test]
fn genserver_calls_reach_any_server_by_any_address() {
    let mut s = session("lang_gs");
    assert!(value(&mut s, "DistributedCounter.start_link()").starts_with("{:ok, "));
    assert_eq!(
        value(
            &mut s,
            "GenServer.cast({:global, DistributedCounter}, :increment)"
        ),
        ":ok"
    );
    assert_eq!(
        value(
            &mut s,
            "GenServer.call({:global, DistributedCounter}, :get)"
        ),
        "1"
    );
    assert_eq!(
        value(
            &mut s,
            "GenServer.call({:global, DistributedCounter}, :get, 1000)"
        ),
        "1"
    );
    assert!(
        value(&mut s, "GenServer.whereis({:global, DistributedCounter})").starts_with("#PID<0.")
    );
    // A missing server: noproc at once, shown as OTP's exit.
    assert_eq!(
        value(&mut s, "GenServer.call({:global, :nobody}, :get)"),
        "** (exit) {:noproc, {GenServer, :call, [{:global, :nobody}, :get, 5000]}}"
    );
    assert!(
        value(&mut s, "GenServer.call({:nobody, :lang_gs@localhost}, :x)")
            .starts_with("** (exit) {:noproc,")
    );
    assert_eq!(value(&mut s, "GenServer.whereis(:nobody)"), "nil");
}
