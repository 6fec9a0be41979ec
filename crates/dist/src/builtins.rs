//! Functions every distributed node registers, so the drills' rpc and remote spawn
//! lines work: `Kernel.node/0` (and `erlang:node/0`), `Node.list/0`,
//! `System.schedulers_online/0`, `Enum.sum/1` (a list, or a range `%{first, last,
//! step}`), `Kernel.self/0`, `IO.puts/1` (through the group leader: `rt::io`),
//! `global:whereis_name/1`, and `binary:copy/2` (Drill 7's big message; at most 256
//! MiB). Each is registered under its plain module name and its Elixir alias
//! (`Elixir.Kernel`), the Erlang modules under theirs only.

use crate::node::Net;
use crate::rt::{Ctx, Node, io};
use crate::term::{Atom, Term};

fn both(
    node: &Node,
    module: &str,
    function: &str,
    arity: usize,
    f: impl Fn(&mut Ctx, Vec<Term>) -> Term + Send + Sync + Clone + 'static,
) {
    for m in [module.to_owned(), format!("Elixir.{module}")] {
        node.functions()
            .register(Atom::new(&m), Atom::new(function), arity, f.clone());
    }
}

fn sum(t: &Term) -> Term {
    if let Some(items) = t.as_list() {
        let mut int = 0i64;
        let mut float = None::<f64>;
        for x in items {
            match x {
                Term::Int(i) => int = int.wrapping_add(*i),
                Term::Float(f) => *float.get_or_insert(0.0) += f,
                _ => return Term::tuple(vec![Term::atom("error"), Term::atom("badarith")]),
            }
        }
        return match float {
            Some(f) => Term::Float(f + int as f64),
            None => Term::Int(int),
        };
    }
    if let Some(m) = t.as_map() {
        let get = |k: &str| m.get(&Term::atom(k)).and_then(|v| v.as_int());
        if let (Some(first), Some(last)) = (get("first"), get("last")) {
            let step = get("step").unwrap_or(if last >= first { 1 } else { -1 });
            if step == 0 {
                return Term::Int(0);
            }
            let n = (last - first) / step + 1;
            if n <= 0 {
                return Term::Int(0);
            }
            // Arithmetic series, no iteration.
            return Term::Int(
                n.wrapping_mul(first.wrapping_add(first.wrapping_add((n - 1).wrapping_mul(step))))
                    / 2,
            );
        }
    }
    Term::tuple(vec![Term::atom("error"), Term::atom("badarg")])
}

/// The largest binary `:binary.copy/2` makes (beyond it, `system_limit`: a typo'd
/// count must not take the node's memory).
const MAX_COPY: usize = 256 << 20;

/// `:binary.copy(subject, n)`: `subject` repeated `n` times (a string stays a string).
fn binary_copy(subject: &Term, n: &Term) -> Term {
    let badarg = || Term::tuple(vec![Term::atom("error"), Term::atom("badarg")]);
    let Some(n) = n.as_int().and_then(|n| usize::try_from(n).ok()) else {
        return badarg();
    };
    let bytes: &[u8] = match subject {
        Term::Str(s) => s.as_bytes(),
        Term::Binary(b) => b.as_ref(),
        _ => return badarg(),
    };
    if bytes
        .len()
        .checked_mul(n)
        .is_none_or(|total| total > MAX_COPY)
    {
        return Term::tuple(vec![Term::atom("error"), Term::atom("system_limit")]);
    }
    match subject {
        Term::Str(s) => Term::str(&s.repeat(n)),
        _ => Term::Binary(bytes.repeat(n).into()),
    }
}

/// Registers the built-ins on `net`'s node.
pub fn register(net: &Net) {
    let node = net.node();
    both(node, "Kernel", "node", 0, |ctx: &mut Ctx, _| {
        Term::Atom(ctx.node().name())
    });
    node.functions().register(
        Atom::new("erlang"),
        Atom::new("node"),
        0,
        |ctx: &mut Ctx, _| Term::Atom(ctx.node().name()),
    );
    both(node, "Kernel", "self", 0, |ctx: &mut Ctx, _| {
        Term::Pid(ctx.pid())
    });
    both(node, "Node", "list", 0, |ctx: &mut Ctx, _| {
        match Net::of(ctx.node()) {
            Some(net) => Term::list(net.nodes().into_iter().map(Term::Atom).collect::<Vec<_>>()),
            None => Term::list(vec![]),
        }
    });
    both(
        node,
        "System",
        "schedulers_online",
        0,
        |ctx: &mut Ctx, _| Term::from(ctx.node().config().workers),
    );
    both(node, "Enum", "sum", 1, |_: &mut Ctx, args: Vec<Term>| {
        sum(&args[0])
    });
    node.functions().register(
        Atom::new("binary"),
        Atom::new("copy"),
        2,
        |_: &mut Ctx, args: Vec<Term>| binary_copy(&args[0], &args[1]),
    );
    node.functions().register(
        Atom::new("global"),
        Atom::new("whereis_name"),
        1,
        |ctx: &mut Ctx, args: Vec<Term>| match super::global::whereis_name(ctx.node(), &args[0]) {
            Some(p) => Term::Pid(p),
            None => Term::atom("undefined"),
        },
    );
    // Through the group leader (`rt::io`): a process spawned here by another node's
    // process prints where that process's output goes.
    both(node, "IO", "puts", 1, |ctx: &mut Ctx, args: Vec<Term>| {
        let line = match args[0].as_str() {
            Some(s) => format!("{s}\n"),
            None => format!("{}\n", args[0]),
        };
        match io::put_chars(ctx, &line) {
            Ok(_) => Term::ok(),
            Err(e) => e.into(),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_lists_and_ranges() {
        assert_eq!(
            sum(&Term::list(vec![Term::Int(1), Term::Int(2)])),
            Term::Int(3)
        );
        let range = |a: i64, b: i64| {
            Term::map(vec![
                (Term::atom("first"), Term::Int(a)),
                (Term::atom("last"), Term::Int(b)),
            ])
        };
        assert_eq!(sum(&range(1, 1000)), Term::Int(500_500));
        assert_eq!(sum(&range(5, 1)), Term::Int(15));
        assert!(sum(&Term::atom("x")).tagged("error").is_some());
    }
}
