use super::*;

fn one(src: &str) -> Expr {
    let mut v = parse(src).unwrap_or_else(|e| panic!("{src}: {e:?}"));
    assert_eq!(v.len(), 1, "{src}");
    v.remove(0)
}

fn atom(a: &str) -> Expr {
    Expr::Atom(a.into())
}

fn remote(m: Expr, f: &str, args: Vec<Expr>) -> Expr {
    Expr::Remote(Box::new(m), f.into(), args)
}

#[test]
fn the_drills_lines_parse() {
    assert_eq!(
        one("Node.connect(:node1@localhost)"),
        remote(
            Expr::Alias("Node".into()),
            "connect",
            vec![atom("node1@localhost")]
        )
    );
    assert_eq!(
        one("Node.list([:this, :visible])"),
        remote(
            Expr::Alias("Node".into()),
            "list",
            vec![Expr::List(vec![atom("this"), atom("visible")], None)]
        )
    );
    assert_eq!(
        one("pid = :global.whereis_name(:counter)"),
        Expr::Match(
            Box::new(Expr::Var("pid".into())),
            Box::new(remote(
                atom("global"),
                "whereis_name",
                vec![atom("counter")]
            ))
        )
    );
    assert_eq!(
        one(":rpc.call(:node2@localhost, Enum, :sum, [1..1000])"),
        remote(
            atom("rpc"),
            "call",
            vec![
                atom("node2@localhost"),
                Expr::Alias("Enum".into()),
                atom("sum"),
                Expr::List(
                    vec![Expr::Range(
                        Box::new(Expr::Int(1)),
                        Box::new(Expr::Int(1000))
                    )],
                    None
                )
            ]
        )
    );
    assert_eq!(
        one("[node() | Node.list()]"),
        Expr::List(
            vec![Expr::Local("node".into(), vec![])],
            Some(Box::new(remote(Expr::Alias("Node".into()), "list", vec![])))
        )
    );
    assert_eq!(one("flush()"), Expr::Local("flush".into(), vec![]));
    assert_eq!(one("flush"), Expr::Var("flush".into()));
    assert_eq!(
        one("send(pid, :hello)"),
        Expr::Local("send".into(), vec![Expr::Var("pid".into()), atom("hello")])
    );
    assert_eq!(
        one("{:ok, v} = x"),
        Expr::Match(
            Box::new(Expr::Tuple(vec![atom("ok"), Expr::Var("v".into())])),
            Box::new(Expr::Var("x".into()))
        )
    );
}

#[test]
fn literals_maps_keywords_and_operators() {
    assert_eq!(
        one("%{a: 1, \"b\" => -2.5}"),
        Expr::Map(vec![
            (atom("a"), Expr::Int(1)),
            (Expr::Str("b".into()), Expr::Float(-2.5))
        ])
    );
    assert_eq!(
        one("[a: 1, b: :x]"),
        Expr::List(
            vec![
                Expr::Tuple(vec![atom("a"), Expr::Int(1)]),
                Expr::Tuple(vec![atom("b"), atom("x")])
            ],
            None
        )
    );
    assert_eq!(
        one("1 + 2 * 3"),
        Expr::BinOp(
            "+",
            Box::new(Expr::Int(1)),
            Box::new(Expr::BinOp(
                "*",
                Box::new(Expr::Int(2)),
                Box::new(Expr::Int(3))
            ))
        )
    );
    assert_eq!(
        one("1..10 |> Enum.sum()"),
        remote(
            Expr::Alias("Enum".into()),
            "sum",
            vec![Expr::Range(Box::new(Expr::Int(1)), Box::new(Expr::Int(10)))]
        )
    );
    assert_eq!(one("true"), atom("true"));
    assert_eq!(
        one("&:global.notify_all_name/3"),
        Expr::Capture(Box::new(atom("global")), "notify_all_name".into(), 3)
    );
}

#[test]
fn calls_without_parentheses_as_in_iex() {
    assert_eq!(
        one("IO.puts \"hi\""),
        remote(
            Expr::Alias("IO".into()),
            "puts",
            vec![Expr::Str("hi".into())]
        )
    );
    assert_eq!(
        one("send pid, :hi"),
        Expr::Local("send".into(), vec![Expr::Var("pid".into()), atom("hi")])
    );
    assert_eq!(
        one("Node.list"),
        remote(Expr::Alias("Node".into()), "list", vec![])
    );
}

#[test]
fn several_expressions_and_continuation() {
    assert_eq!(parse("a = 1; b = 2\nc").unwrap().len(), 3);
    for open in [
        "{1, 2",
        "[1,",
        "foo(",
        "%{a: 1",
        "\"abc",
        "x =",
        "Node.spawn(:node2@localhost, fn ->",
        "Node.spawn(:node2@localhost, fn ->\n  send(caller, {:hello, node()})",
        "receive do",
        "receive do\n  {:result, sum} -> IO.puts(\"Sum: #{sum}\")",
        "case x do\n  1 -> :a",
        "for pid <- :pg.get_members(:workers) do",
        "if x do 1 else",
        "\"#{x",
    ] {
        let e = parse(open).unwrap_err();
        assert!(e.incomplete, "{open}: {e:?}");
    }
    // The same, finished.
    for done in [
        "Node.spawn(:node2@localhost, fn ->\n  send(caller, {:hello, node()})\nend)",
        "receive do\n  {:result, sum} -> IO.puts(\"Sum: #{sum}\")\nend",
        "for pid <- :pg.get_members(:workers) do\n  send(pid, {:broadcast, \"Hello everyone\"})\nend",
    ] {
        assert_eq!(parse(done).map(|e| e.len()), Ok(1), "{done}");
    }
}

#[test]
fn a_closure_keeps_its_source() {
    let src = "f = fn x ->\n  x + 1\nend";
    match parse(src).unwrap().remove(0) {
        Expr::Match(_, rhs) => match *rhs {
            Expr::Fn(def) => {
                assert_eq!(def.source, "fn x ->\n  x + 1\nend");
                assert_eq!(def.arity(), 1);
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn unsupported_forms_say_what_to_do() {
    for (src, says) in [
        ("with {:ok, x} <- f() do x end", "`with` is not supported"),
        ("try do 1 end", "`try` is not supported"),
        ("defmodule A do end", "modules can't be defined"),
        ("%{m | a: 1}", "map update"),
        ("&(&1 + 1)", "capture shorthand"),
        ("1 2", "unexpected"),
        ("@x", "attributes"),
        ("fn x -> 1; a, b -> 2 end", "same number of arguments"),
        ("for x do 1 end", "starts with a generator"),
    ] {
        let e = parse(src).unwrap_err();
        assert!(e.message.contains(says), "{src}: {e:?}");
        assert!(!e.incomplete, "{src}");
    }
}
