//! The [`term!`](crate!) macro: terms written the way iex prints them.

/// Builds a [`Term`](crate::Term) from Elixir-like syntax.
///
/// | syntax                 | term                                              |
/// |------------------------|---------------------------------------------------|
/// | `{a, b, ...}`          | tuple                                             |
/// | `[a, b, ...]`          | list                                              |
/// | `%{k => v, ...}`       | map (keys and values are elements too)            |
/// | `:name`, `:_`          | atom `name` (any identifier, keywords included)   |
/// | `:"any text"`          | atom with that text                               |
/// | `1`, `-1`, `2.5`, `"s"`, `true` | `Term::from` the literal                 |
/// | `var`, `(expr)`        | `Term::from(var)`, `Term::from(expr)`             |
///
/// An element that is more than one token (`x + 1`, `a.b`, `f(x)`) must be
/// parenthesised: `(x + 1)`. Trailing commas are allowed. Anything with an
/// `Into<Term>`-style `From` impl works as a variable or expression: integers, floats,
/// `bool` (the atoms `true`/`false`), `&str`/`String` (strings), [`Atom`](crate::Atom),
/// [`Pid`](crate::Pid), [`Ref`](crate::Ref), [`Binary`](crate::Binary),
/// `Vec<Term>` (a list), Rust tuples (tuples) and `Term` itself.
///
/// ```
/// use oxbeam_term::{Term, term};
///
/// let who = "ann";
/// let n = 3;
/// let t = term!({:ping, 1, -2, "x", [:a, :"b c"], %{:count => (n + 1), "who" => who}});
/// assert_eq!(
///     t,
///     Term::tuple(vec![
///         Term::atom("ping"),
///         Term::Int(1),
///         Term::Int(-2),
///         Term::str("x"),
///         Term::list(vec![Term::atom("a"), Term::atom("b c")]),
///         Term::map(vec![
///             (Term::atom("count"), Term::Int(4)),
///             (Term::str("who"), Term::str("ann")),
///         ]),
///     ])
/// );
/// assert_eq!(t.to_string(), r#"{:ping, 1, -2, "x", [:a, :"b c"], %{:count => 4, "who" => "ann"}}"#);
/// ```
///
/// Nesting, empty containers and the wildcard atom used in patterns:
///
/// ```
/// use oxbeam_term::{Term, term};
///
/// let reply = term!({:ok, {}, [], %{}, {[{:deep}]}});
/// assert_eq!(reply.tagged("ok").map(|rest| rest.len()), Some(4));
/// let pattern = term!({:ok, :_, :_, :_, :_});
/// assert!(reply.matches(&pattern));
/// assert_eq!(term!(:true), Term::from(true));
/// assert_eq!(term!(-1.5), Term::Float(-1.5));
/// ```
#[macro_export]
macro_rules! term {
    ({ $($elems:tt)* }) => {
        $crate::Term::tuple($crate::__term_elems!([] $($elems)*))
    };
    ([ $($elems:tt)* ]) => {
        $crate::Term::list($crate::__term_elems!([] $($elems)*))
    };
    (% { $($pairs:tt)* }) => {
        $crate::Term::map($crate::__term_pairs!([] $($pairs)*))
    };
    (: _) => {
        $crate::Term::atom("_")
    };
    (: $name:ident) => {
        $crate::Term::atom(::core::stringify!($name))
    };
    (: $text:literal) => {
        $crate::Term::atom($text)
    };
    ($lit:literal) => {
        $crate::Term::from($lit)
    };
    ($value:expr) => {
        $crate::Term::from($value)
    };
}

/// Munches comma-separated `term!` elements into a `Vec<Term>`; not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __term_elems {
    ([$($out:expr,)*]) => {
        ::std::vec![$($out,)*]
    };
    ([$($out:expr,)*] : _ $(, $($rest:tt)*)?) => {
        $crate::__term_elems!([$($out,)* $crate::term!(:_),] $($($rest)*)?)
    };
    ([$($out:expr,)*] : $name:ident $(, $($rest:tt)*)?) => {
        $crate::__term_elems!([$($out,)* $crate::term!(:$name),] $($($rest)*)?)
    };
    ([$($out:expr,)*] : $text:literal $(, $($rest:tt)*)?) => {
        $crate::__term_elems!([$($out,)* $crate::term!(:$text),] $($($rest)*)?)
    };
    ([$($out:expr,)*] % $map:tt $(, $($rest:tt)*)?) => {
        $crate::__term_elems!([$($out,)* $crate::term!(%$map),] $($($rest)*)?)
    };
    ([$($out:expr,)*] $lit:literal $(, $($rest:tt)*)?) => {
        $crate::__term_elems!([$($out,)* $crate::term!($lit),] $($($rest)*)?)
    };
    ([$($out:expr,)*] $elem:tt $(, $($rest:tt)*)?) => {
        $crate::__term_elems!([$($out,)* $crate::term!($elem),] $($($rest)*)?)
    };
}

/// Munches `key => value` pairs of a `term!` map into a `Vec<(Term, Term)>`; not public
/// API. A key is taken first (`@value` then takes its value), each by the element rules.
#[doc(hidden)]
#[macro_export]
macro_rules! __term_pairs {
    (@value [$($out:expr,)*] ($($key:tt)*) : _ $(, $($rest:tt)*)?) => {
        $crate::__term_pairs!([$($out,)* ($crate::term!($($key)*), $crate::term!(:_)),] $($($rest)*)?)
    };
    (@value [$($out:expr,)*] ($($key:tt)*) : $name:ident $(, $($rest:tt)*)?) => {
        $crate::__term_pairs!([$($out,)* ($crate::term!($($key)*), $crate::term!(:$name)),] $($($rest)*)?)
    };
    (@value [$($out:expr,)*] ($($key:tt)*) : $text:literal $(, $($rest:tt)*)?) => {
        $crate::__term_pairs!([$($out,)* ($crate::term!($($key)*), $crate::term!(:$text)),] $($($rest)*)?)
    };
    (@value [$($out:expr,)*] ($($key:tt)*) % $map:tt $(, $($rest:tt)*)?) => {
        $crate::__term_pairs!([$($out,)* ($crate::term!($($key)*), $crate::term!(%$map)),] $($($rest)*)?)
    };
    (@value [$($out:expr,)*] ($($key:tt)*) $lit:literal $(, $($rest:tt)*)?) => {
        $crate::__term_pairs!([$($out,)* ($crate::term!($($key)*), $crate::term!($lit)),] $($($rest)*)?)
    };
    (@value [$($out:expr,)*] ($($key:tt)*) $elem:tt $(, $($rest:tt)*)?) => {
        $crate::__term_pairs!([$($out,)* ($crate::term!($($key)*), $crate::term!($elem)),] $($($rest)*)?)
    };
    ([$($out:expr,)*]) => {
        ::std::vec![$($out,)*]
    };
    // The key is passed on as one token tree (a group of its own tokens) to `@value`.
    ([$($out:expr,)*] : _ => $($rest:tt)+) => {
        $crate::__term_pairs!(@value [$($out,)*] (: _) $($rest)+)
    };
    ([$($out:expr,)*] : $name:ident => $($rest:tt)+) => {
        $crate::__term_pairs!(@value [$($out,)*] (: $name) $($rest)+)
    };
    ([$($out:expr,)*] : $text:literal => $($rest:tt)+) => {
        $crate::__term_pairs!(@value [$($out,)*] (: $text) $($rest)+)
    };
    ([$($out:expr,)*] % $map:tt => $($rest:tt)+) => {
        $crate::__term_pairs!(@value [$($out,)*] (% $map) $($rest)+)
    };
    ([$($out:expr,)*] $lit:literal => $($rest:tt)+) => {
        $crate::__term_pairs!(@value [$($out,)*] ($lit) $($rest)+)
    };
    ([$($out:expr,)*] $key:tt => $($rest:tt)+) => {
        $crate::__term_pairs!(@value [$($out,)*] ($key) $($rest)+)
    };
}

#[cfg(test)]
mod tests {
    use crate::{Atom, Pid, Term};

    #[test]
    fn every_element_form_builds_the_expected_term() {
        let pid = Pid::from_parts(Atom::new("n@h"), 1, 2);
        let name = String::from("ann");
        let xs = vec![Term::Int(1)];
        let t = term!({
            :ok, :_, :"with space", :true,
            0, -1, 2.5, -0.5, "s", true, false,
            pid, name, (xs.clone()), (1 + 2), (),
            {}, [], %{},
            {:nested, [1, [2, {3}]]},
            %{:a => 1, "b" => [:c], -1 => -2, {1} => %{}, :_ => :"x y", (40 + 2) => pid,},
        });
        let expected = Term::tuple(vec![
            Term::atom("ok"),
            Term::atom("_"),
            Term::atom("with space"),
            Term::atom("true"),
            Term::Int(0),
            Term::Int(-1),
            Term::Float(2.5),
            Term::Float(-0.5),
            Term::str("s"),
            Term::atom("true"),
            Term::atom("false"),
            Term::Pid(pid),
            Term::str("ann"),
            Term::list(xs),
            Term::Int(3),
            Term::tuple(vec![]),
            Term::tuple(vec![]),
            Term::list(vec![]),
            Term::map(vec![]),
            Term::tuple(vec![
                Term::atom("nested"),
                Term::list(vec![
                    Term::Int(1),
                    Term::list(vec![Term::Int(2), Term::tuple(vec![Term::Int(3)])]),
                ]),
            ]),
            Term::map(vec![
                (Term::atom("a"), Term::Int(1)),
                (Term::str("b"), Term::list(vec![Term::atom("c")])),
                (Term::Int(-1), Term::Int(-2)),
                (Term::tuple(vec![Term::Int(1)]), Term::map(vec![])),
                (Term::atom("_"), Term::atom("x y")),
                (Term::Int(42), Term::Pid(pid)),
            ]),
        ]);
        assert_eq!(t, expected);
    }

    #[test]
    fn single_elements_and_trailing_commas() {
        assert_eq!(term!(:ok), Term::ok());
        assert_eq!(term!(-7), Term::Int(-7));
        assert_eq!(term!("x"), Term::str("x"));
        assert_eq!(term!([1,]), Term::list(vec![Term::Int(1)]));
        assert_eq!(term!({:a}), Term::tuple(vec![Term::atom("a")]));
        assert_eq!(
            term!(%{:k => :v}),
            Term::map(vec![(Term::atom("k"), Term::atom("v"))])
        );
        let v = 5u8;
        assert_eq!(term!(v), Term::Int(5));
        assert_eq!(
            term!([(v), (-(v as i64))]),
            Term::list(vec![Term::Int(5), Term::Int(-5)])
        );
    }
}
