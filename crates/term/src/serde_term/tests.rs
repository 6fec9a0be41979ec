use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::*;
use crate::{Atom, Binary, Pid, Ref};

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Unit;

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Meters(f64);

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Pair(i32, String);

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
enum Shape {
    Empty,
    Circle(f64),
    Rect(u32, u32),
    Named { name: String, sides: Option<u8> },
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Envelope {
    from: Pid,
    tag: Ref,
    kind: Atom,
    payload: Term,
    shapes: Vec<Shape>,
    extra: Option<Box<Envelope>>,
}

fn round_trip<T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(v: T) {
    let t = to_term(&v).unwrap();
    assert_eq!(from_term::<T>(&t).unwrap(), v, "via {t:?}");
}

#[test]
fn the_mapping_is_the_documented_one() {
    assert_eq!(to_term(&true).unwrap(), Term::atom("true"));
    assert_eq!(to_term(&-3i8).unwrap(), Term::Int(-3));
    assert_eq!(to_term(&1.5f32).unwrap(), Term::Float(1.5));
    assert_eq!(to_term(&'x').unwrap(), Term::str("x"));
    assert_eq!(to_term(&None::<i32>).unwrap(), Term::nil());
    assert_eq!(to_term(&Some(4)).unwrap(), Term::Int(4));
    assert_eq!(to_term(&()).unwrap(), Term::nil());
    assert_eq!(to_term(&Unit).unwrap(), Term::nil());
    assert_eq!(to_term(&Meters(2.0)).unwrap(), Term::Float(2.0));
    let pair = Term::tuple(vec![Term::Int(1), Term::str("a")]);
    assert_eq!(to_term(&Pair(1, "a".into())).unwrap(), pair);
    assert_eq!(to_term(&(1, "a")).unwrap(), pair);
    assert_eq!(
        to_term(&vec![1, 2]).unwrap(),
        Term::list(vec![Term::Int(1), Term::Int(2)])
    );
    assert_eq!(to_term(&Shape::Empty).unwrap(), Term::atom("Empty"));
    let circle = Term::tuple(vec![Term::atom("Circle"), Term::Float(1.0)]);
    assert_eq!(to_term(&Shape::Circle(1.0)).unwrap(), circle);
    let rect = Term::tuple(vec![Term::atom("Rect"), Term::Int(2), Term::Int(3)]);
    assert_eq!(to_term(&Shape::Rect(2, 3)).unwrap(), rect);
    let named = Shape::Named {
        name: "tri".into(),
        sides: Some(3),
    };
    let fields = Term::map(vec![
        (Term::atom("name"), Term::str("tri")),
        (Term::atom("sides"), Term::Int(3)),
    ]);
    assert_eq!(
        to_term(&named).unwrap(),
        Term::tuple(vec![Term::atom("Named"), fields])
    );
    let mut m = BTreeMap::new();
    m.insert("k", 1);
    assert_eq!(
        to_term(&m).unwrap(),
        Term::map(vec![(Term::str("k"), Term::Int(1))])
    );
    // Binary serializes with `serialize_bytes`.
    let bytes = Binary::from_slice(b"\x00\xff");
    assert_eq!(to_term(&bytes).unwrap(), Term::binary(b"\x00\xff"));
}

#[test]
fn derived_types_round_trip() {
    round_trip(Unit);
    round_trip(Meters(-0.5));
    round_trip(Pair(-7, "x".into()));
    for s in [
        Shape::Empty,
        Shape::Circle(2.5),
        Shape::Rect(1, 2),
        Shape::Named {
            name: "sq".into(),
            sides: None,
        },
    ] {
        round_trip(s);
    }
    round_trip(vec![
        Some(1u64),
        None,
        Some(u64::try_from(i64::MAX).unwrap()),
    ]);
    round_trip(HashMap::from([
        ("a".to_string(), vec![1u8]),
        ("b".to_string(), vec![]),
    ]));
    round_trip(BTreeMap::from([(1i64, (true, 'c')), (2, (false, 'd'))]));
    round_trip((i128::from(i64::MIN), u128::from(0u8), 0.25f32));
}

#[test]
fn terms_pids_refs_and_atoms_inside_structs_stay_themselves() {
    let node = Atom::new("node9@host");
    let payload = Term::tuple(vec![
        Term::atom("data"),
        Term::binary(&[1, 2]),
        Term::Float(f64::NAN),
        Term::map(vec![(Term::Int(1), Term::list(vec![Term::str("x")]))]),
        Term::Pid(Pid::from_parts(node, 1, u64::MAX)),
    ]);
    let env = Envelope {
        from: Pid::from_parts(node, 4, 17),
        tag: Ref::from_parts(node, 4, 99),
        kind: Atom::new("cast"),
        payload: payload.clone(),
        shapes: vec![Shape::Rect(1, 1)],
        extra: None,
    };
    let t = to_term(&env).unwrap();
    let fields = t.as_map().unwrap();
    assert_eq!(fields[&Term::atom("from")], Term::Pid(env.from));
    assert_eq!(fields[&Term::atom("tag")], Term::Ref(env.tag));
    assert_eq!(fields[&Term::atom("kind")], Term::atom("cast"));
    assert_eq!(fields[&Term::atom("payload")], payload);
    let back: Envelope = from_term(&t).unwrap();
    // NaN != NaN as f64, but Term compares floats by bits.
    assert_eq!(back.payload, payload);
    assert_eq!(
        (back.from, back.tag, back.kind),
        (env.from, env.tag, env.kind)
    );
    assert_eq!(to_term(&payload).unwrap(), payload);
    assert_eq!(from_term::<Term>(&payload).unwrap(), payload);
}

#[test]
fn lenient_forms_are_accepted() {
    assert_eq!(from_term::<String>(&Term::binary(b"hi")).unwrap(), "hi");
    assert_eq!(from_term::<String>(&Term::atom("hi")).unwrap(), "hi");
    assert_eq!(from_term::<f64>(&Term::Int(3)).unwrap(), 3.0);
    assert_eq!(
        from_term::<Vec<i32>>(&Term::tuple(vec![Term::Int(1)])).unwrap(),
        vec![1]
    );
    assert_eq!(
        from_term::<(i32,)>(&Term::list(vec![Term::Int(1)])).unwrap(),
        (1,)
    );
    let b: Binary = from_term(&Term::str("ab")).unwrap();
    assert_eq!(b.as_slice(), b"ab");
    let s: Shape = from_term(&Term::str("Empty")).unwrap();
    assert_eq!(s, Shape::Empty);
    let by_atom: HashMap<String, i32> =
        from_term(&Term::map(vec![(Term::atom("a"), Term::Int(1))])).unwrap();
    assert_eq!(by_atom["a"], 1);
}

#[test]
fn mismatches_are_errors_that_say_what_was_found() {
    let err = from_term::<u8>(&Term::Int(300)).unwrap_err();
    assert!(err.message().contains("300"), "{err}");
    let err = from_term::<String>(&Term::Int(3)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid type: integer 3, expected a string"
    );
    assert!(from_term::<String>(&Term::binary(&[0xff])).is_err());
    assert!(from_term::<bool>(&Term::atom("yes")).is_err());
    assert!(from_term::<(i32, i32)>(&Term::tuple(vec![Term::Int(1)])).is_err());
    let err = from_term::<(i32,)>(&Term::tuple(vec![Term::Int(1), Term::Int(2)])).unwrap_err();
    assert!(err.message().contains("invalid length 2"), "{err}");
    assert!(from_term::<Shape>(&Term::atom("Hexagon")).is_err());
    assert!(from_term::<Shape>(&Term::tuple(vec![Term::atom("Circle")])).is_err());
    assert!(from_term::<Shape>(&Term::Int(1)).is_err());
    assert!(from_term::<Pid>(&Term::Int(1)).is_err());
    let err = to_term(&u64::MAX).unwrap_err();
    assert!(err.message().contains("does not fit"), "{err}");
    assert!(to_term(&i128::MAX).is_err());
}

#[test]
fn an_embedded_term_deeper_than_the_default_is_an_error() {
    let depth = crate::codec::DEFAULT_MAX_DEPTH + 1;
    let deep = (0..depth).fold(Term::Int(0), |t, _| Term::list(vec![t]));
    let err = to_term(&deep).unwrap_err();
    assert!(err.message().contains("nested deeper"), "{err}");
    assert!(from_term::<Term>(&deep).is_err());
}
