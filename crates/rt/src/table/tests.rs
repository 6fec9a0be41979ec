//! Unit tests of the tables.
use super::*;
use TableKind::{Bag, DuplicateBag, Set};
use proptest::prelude::*;
use std::sync::atomic::AtomicUsize;

/// Iterations per thread in the concurrency tests.
const STRESS: usize = 10_000;

fn table(kind: TableKind, key_pos: usize) -> Table {
    Table::new(Atom::new("t"), TableOptions { kind, key_pos }, None)
}

fn k(i: i64) -> Term {
    Term::Int(i)
}

fn a(name: &str) -> Term {
    Term::atom(name)
}

fn obj(key: impl Into<Term>, value: impl Into<Term>) -> Term {
    Term::from((key.into(), value.into()))
}

fn sorted(mut terms: Vec<Term>) -> Vec<Term> {
    terms.sort();
    terms
}

/// Checks every shard's invariants and recounts its objects.
fn check_invariants(t: &Table) {
    for (i, shard) in t.shards.iter().enumerate() {
        let shard = shard.read();
        for (key, objects) in &shard.objects {
            assert_eq!(t.shard_index(key), i, "{key} is in the wrong shard");
            assert!(!objects.is_empty(), "{key} has an empty entry");
            assert!(t.kind() != Set || objects.len() == 1, "set: {objects:?}");
            for (j, o) in objects.iter().enumerate() {
                assert_eq!(t.key_of(o).as_ref(), Ok(key));
                assert!(
                    t.kind() != Bag || !objects[..j].contains(o),
                    "bag: {objects:?}"
                );
            }
        }
        assert_eq!(shard.count, shard.objects.values().map(Vec::len).sum());
    }
}

#[test]
fn a_set_replaces_and_insert_new_keeps_the_first() {
    let t = table(Set, 0);
    t.insert(obj(1, "a")).unwrap();
    t.insert(obj(1, "b")).unwrap();
    assert_eq!(t.lookup(&k(1)), [obj(1, "b")]);
    assert!(!t.insert_new(obj(1, "c")).unwrap());
    assert!(t.insert_new(obj(2, "c")).unwrap());
    assert_eq!(t.lookup(&k(1)), [obj(1, "b")]);
    assert_eq!(
        (t.len(), t.member(&k(2)), t.member(&k(3))),
        (2, true, false)
    );
    check_invariants(&t);
}

#[test]
fn a_bag_keeps_distinct_objects_in_insertion_order() {
    let t = table(Bag, 0);
    for v in ["x", "y", "x", "z", "y"] {
        t.insert(obj(1, v)).unwrap();
    }
    assert_eq!(t.lookup(&k(1)), [obj(1, "x"), obj(1, "y"), obj(1, "z")]);
    assert!(!t.insert_new(obj(1, "w")).unwrap());
    assert!(t.delete_object(&obj(1, "y")) && !t.delete_object(&obj(1, "y")));
    assert_eq!(t.lookup(&k(1)), [obj(1, "x"), obj(1, "z")]);
    assert_eq!(t.len(), 2);
    check_invariants(&t);
}

#[test]
fn a_duplicate_bag_keeps_identical_objects() {
    let t = table(DuplicateBag, 0);
    for v in ["x", "y", "x", "z"] {
        t.insert(obj(1, v)).unwrap();
    }
    let all = [obj(1, "x"), obj(1, "y"), obj(1, "x"), obj(1, "z")];
    assert_eq!((t.lookup(&k(1)), t.len()), (all.to_vec(), 4));
    assert!(t.delete_object(&obj(1, "x")), "removes every copy");
    assert_eq!(t.take(&k(1)), [obj(1, "y"), obj(1, "z")]);
    assert!(t.is_empty() && t.take(&k(1)).is_empty() && !t.delete(&k(1)));
    check_invariants(&t);
}

#[test]
fn delete_delete_object_take_and_lookup_element() {
    let t = table(Set, 0);
    t.insert_many([obj(1, "a"), obj(2, "b"), obj(3, "c")])
        .unwrap();
    assert!(t.delete(&k(1)) && !t.delete(&k(1)));
    assert!(!t.delete_object(&obj(2, "other")), "only that exact object");
    assert!(!t.delete_object(&k(2)) && !t.delete_object(&Term::tuple(vec![])));
    assert_eq!(t.lookup_element(&k(2), 1), Some(vec![Term::str("b")]));
    assert_eq!(
        (t.lookup_element(&k(2), 2), t.lookup_element(&k(9), 0)),
        (None, None)
    );
    assert!(t.delete_object(&obj(2, "b")));
    assert_eq!(t.take(&k(3)), [obj(3, "c")]);
    assert!(t.is_empty() && t.to_list().is_empty());
    let bag = table(Bag, 0);
    bag.insert_many([obj(1, "a"), obj(1, "b")]).unwrap();
    let both = vec![Term::str("a"), Term::str("b")];
    assert_eq!(bag.lookup_element(&k(1), 1), Some(both));
}

#[test]
fn the_key_can_sit_at_another_position() {
    let t = table(Set, 1);
    let ann = Term::from((a("user"), 7, "ann"));
    t.insert_many([ann.clone(), Term::from((a("user"), 8, "bob"))])
        .unwrap();
    assert_eq!(
        (t.lookup(&k(7)), t.lookup(&a("user"))),
        (vec![ann.clone()], vec![])
    );
    let short = Term::from((a("x"),));
    let no_key = TableError::NoKey {
        key_pos: 1,
        object: short.clone(),
    };
    assert_eq!(t.insert(short), Err(no_key));
    let pattern = Term::from((a("_"), 7, a("_")));
    assert_eq!(t.plan(&pattern), Plan::Key(&k(7)));
    assert_eq!(t.match_object(&pattern), [ann]);
    assert_eq!(
        t.update_counter(&k(7), 1, 1, None),
        Err(TableError::CounterIsKey(1))
    );
    let default = Term::from((a("c"), a("ignored"), 10));
    assert_eq!(t.update_counter(&k(9), 2, 5, Some(default)), Ok(15));
    assert_eq!(t.lookup(&k(9)), [Term::from((a("c"), 9, 15))]);
    check_invariants(&t);
}

#[test]
fn bad_objects_and_names_are_errors() {
    let t = table(Set, 0);
    let empty = Term::tuple(vec![]);
    let no_key = TableError::NoKey {
        key_pos: 0,
        object: empty.clone(),
    };
    assert_eq!(t.insert(k(5)), Err(TableError::NotATuple(k(5))));
    assert_eq!(t.insert_new(empty), Err(no_key.clone()));
    assert_eq!(
        t.insert_many([obj(1, "a"), k(5)]),
        Err(TableError::NotATuple(k(5)))
    );
    assert!(t.is_empty(), "a failed insert_many stores nothing");
    let (tables, name) = (Tables::new(), Atom::new("users"));
    tables.create(name, TableOptions::default(), None).unwrap();
    let again = tables.create(
        name,
        TableOptions {
            kind: Bag,
            key_pos: 0,
        },
        None,
    );
    assert_eq!(again.unwrap_err(), TableError::AlreadyExists(name));
    assert_eq!(tables.get(name).unwrap().kind(), Set);
    let missing = tables.get(Atom::new("nope")).unwrap_err();
    assert_eq!(missing.to_string(), "no table named :nope");
    let exists = TableError::AlreadyExists(name).to_string();
    assert_eq!(exists, "a table named :users already exists");
    let not_tuple = TableError::NotATuple(k(5)).to_string();
    assert_eq!(not_tuple, "table objects must be tuples, got 5");
    assert_eq!(
        no_key.to_string(),
        "object {} has no element at key position 0"
    );
}

#[test]
fn match_object_scans_unless_the_key_is_bound() {
    let t = table(Set, 0);
    let eu1 = Term::from((("eu", 1), "ann", a("admin")));
    let eu2 = Term::from((("eu", 2), "bob", a("user")));
    let us1 = Term::from((("us", 1), "cyd", a("admin")));
    let map_key = Term::map([(a("a"), k(1)), (a("b"), k(2))]);
    let mapped = Term::from((map_key.clone(), "dan", a("user")));
    t.insert_many([eu1.clone(), eu2.clone(), us1.clone(), mapped.clone()])
        .unwrap();
    let admins = Term::from((a("_"), a("_"), a("admin")));
    assert_eq!(t.plan(&admins), Plan::Scan);
    assert_eq!(
        sorted(t.match_object(&admins)),
        sorted(vec![eu1.clone(), us1])
    );
    let in_eu = Term::from((("eu", a("_")), a("_"), a("_")));
    assert_eq!(t.plan(&in_eu), Plan::Scan, "a wildcard nested in the key");
    assert_eq!(
        sorted(t.match_object(&in_eu)),
        sorted(vec![eu1.clone(), eu2])
    );
    let exact = Term::from((("eu", 1), a("_"), a("_")));
    assert_eq!(t.plan(&exact), Plan::Key(&Term::from(("eu", 1))));
    assert_eq!(t.match_object(&exact), [eu1]);
    assert!(
        t.match_object(&Term::from((("eu", 1), a("_"), a("user"))))
            .is_empty()
    );
    // A map pattern matches any map holding its keys, so it must not be looked up.
    let by_map = Term::from((Term::map([(a("a"), k(1))]), a("_"), a("_")));
    assert_eq!(t.plan(&by_map), Plan::Scan);
    assert_eq!(t.match_object(&by_map), [mapped]);
    assert_eq!(
        (t.match_object(&a("_")).len(), t.plan(&k(5))),
        (4, Plan::Nothing)
    );
    assert_eq!(t.plan(&Term::tuple(vec![])), Plan::Nothing);
    let eu_keys = sorted(t.select_keys(&Term::from(("eu", a("_")))));
    assert_eq!(eu_keys, [Term::from(("eu", 1)), Term::from(("eu", 2))]);
    assert_eq!(t.select_keys(&map_key), [map_key]);
    assert!(t.select_keys(&Term::from(("eu", 3))).is_empty());
}

#[test]
fn select_delete_removes_exactly_the_matches() {
    let t = table(Bag, 0);
    let empty_bytes = t.memory_bytes();
    for i in 0..10 {
        t.insert_many([obj(i, "all"), obj(i, ["x", "y"][i as usize % 2])])
            .unwrap();
    }
    assert_eq!(t.select_delete(&obj(a("_"), "y")), 5);
    assert_eq!(t.len(), 15);
    assert_eq!(t.select_delete(&obj(2, a("_"))), 2, "bound key");
    assert_eq!(t.select_delete(&obj(4, "x")), 1);
    assert_eq!(t.lookup(&k(4)), [obj(4, "all")]);
    assert_eq!(t.select_delete(&obj(4, "none")), 0);
    check_invariants(&t);
    let bytes = t.memory_bytes();
    t.insert(obj(100, Term::binary(&[0; 1000]))).unwrap();
    assert!(t.memory_bytes() >= bytes + 1000);
    assert_eq!(t.select_delete(&a("_")), 13);
    assert_eq!((t.len(), t.memory_bytes()), (0, empty_bytes));
}

#[test]
fn update_counter_adds_with_a_default_and_refuses_nonsense() {
    let t = table(Set, 0);
    let none = t.update_counter(&k(1), 1, 1, None);
    assert_eq!(none, Err(TableError::KeyNotFound(k(1))));
    assert_eq!(t.update_counter(&k(1), 1, 3, Some(obj(a("_"), 10))), Ok(13));
    assert_eq!(t.update_counter(&k(1), 1, -5, Some(obj(a("_"), 10))), Ok(8));
    assert_eq!(t.lookup(&k(1)), [obj(1, 8)]);
    t.insert(obj(2, "text")).unwrap();
    let text = TableError::NotAnInteger(Term::str("text"));
    assert_eq!(t.update_counter(&k(2), 1, 1, None), Err(text));
    let short = TableError::NoElement(2, obj(1, 8));
    assert_eq!(t.update_counter(&k(1), 2, 1, None), Err(short));
    t.insert(obj(3, i64::MAX)).unwrap();
    let overflow = TableError::CounterOverflow(i64::MAX, 1);
    assert_eq!(t.update_counter(&k(3), 1, 1, None), Err(overflow));
    assert_eq!(t.lookup(&k(3)), [obj(3, i64::MAX)]);
    let not_set = TableError::NotASet(Atom::new("t"), Bag);
    let bag = table(Bag, 0).update_counter(&k(1), 1, 1, Some(obj(1, 0)));
    assert_eq!(bag, Err(not_set.clone()));
    assert_eq!(
        not_set.to_string(),
        "update_counter needs a set table; :t is a bag"
    );
    check_invariants(&t);
}

#[test]
fn concurrent_update_counter_loses_no_increment() {
    let t = table(Set, 0);
    let bump = || t.update_counter(&k(0), 1, 1, Some(obj(0, 0))).unwrap();
    let mut seen: Vec<i64> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| s.spawn(|| (0..STRESS).map(|_| bump()).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    seen.sort_unstable();
    let total = 4 * STRESS as i64;
    assert!(
        seen == (1..=total).collect::<Vec<_>>(),
        "each call saw its own value"
    );
    assert_eq!(t.lookup(&k(0)), [obj(0, total)]);
}

/// A reader's check of one shared set key: at most one object, and each writer's
/// sequence numbers never go back.
fn check_set_read(found: &[Term], last: &mut [i64; 2]) {
    assert!(found.len() <= 1, "a set shows {found:?}");
    if let Some([_, Term::Int(w), Term::Int(n)]) = found.first().and_then(Term::as_tuple) {
        let last = &mut last[*w as usize];
        assert!(*n >= *last, "a value went back from {last} to {n}");
        *last = *n;
    }
}

/// A reader's check of a bag key: each writer's objects in the order written.
fn check_bag_read(found: &[Term]) {
    for writer in 0..2 {
        let seqs: Vec<i64> = (found.iter().filter_map(Term::as_tuple))
            .filter_map(|o| match o {
                [_, Term::Int(w), Term::Int(n)] if *w == writer => Some(*n),
                _ => None,
            })
            .collect();
        assert!(seqs.windows(2).all(|p| p[0] < p[1]), "bag order {seqs:?}");
    }
}

#[test]
fn readers_see_consistent_keys_while_writers_run() {
    let (set, bag, done) = (table(Set, 0), table(Bag, 0), AtomicUsize::new(0));
    let shared = |i: usize| Term::from(("shared", i as i64 % 8));
    std::thread::scope(|s| {
        for w in 0..2i64 {
            let (set, bag, done) = (&set, &bag, &done);
            s.spawn(move || {
                for (seq, n) in (0..STRESS).zip(0i64..) {
                    set.insert(Term::from((shared(seq), w, n))).unwrap();
                    let own = Term::from(("own", w, n));
                    set.insert(obj(own.clone(), n)).unwrap();
                    assert!(seq % 2 == 0 || set.delete(&own));
                    bag.insert(Term::from((n % 64, w, n))).unwrap();
                }
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        for _ in 0..2 {
            s.spawn(|| {
                let (mut last, mut round) = ([[-1; 2]; 8], 0);
                while done.load(Ordering::SeqCst) < 2 || round < 100 {
                    for (i, last) in last.iter_mut().enumerate() {
                        check_set_read(&set.lookup(&shared(i)), last);
                    }
                    check_bag_read(&bag.lookup(&k(round % 64)));
                    round += 1;
                }
            });
        }
    });
    assert_eq!((set.len(), bag.len()), (8 + STRESS, 2 * STRESS));
    check_invariants(&set);
    check_invariants(&bag);
}

#[test]
fn insert_many_appears_at_once() {
    let t = table(Set, 0);
    let first = k(0);
    let second = (1..)
        .map(k)
        .find(|key| t.shard_index(key) != t.shard_index(&first));
    let second = second.unwrap();
    let value = |key: &Term| {
        t.lookup(key)
            .first()
            .and_then(|o| o.as_tuple()?[1].as_int())
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            for n in 0..STRESS as i64 {
                t.insert_many([obj(first.clone(), n), obj(second.clone(), n)])
                    .unwrap();
            }
        });
        for _ in 0..STRESS {
            let (a, b) = (value(&first), value(&second));
            assert!(
                b >= a,
                "saw {a:?} for the first key but {b:?} for the second"
            );
        }
    });
}

#[test]
fn an_exited_owner_takes_its_tables_along() {
    let (tables, name) = (Tables::new(), Atom::new);
    let pid = |n| Pid::from_parts(Atom::new("n@h"), 1, n);
    let create = |n, owner| {
        tables
            .create(name(n), TableOptions::default(), owner)
            .unwrap()
    };
    let t1 = create("t1", Some(pid(1)));
    create("t2", Some(pid(1)));
    create("t3", Some(pid(2)));
    create("t4", None);
    t1.insert(obj(1, 1)).unwrap();
    assert_eq!(
        (
            tables.delete_owned_by(pid(1)),
            tables.delete_owned_by(pid(1))
        ),
        (2, 0)
    );
    assert_eq!(tables.names(), [name("t3"), name("t4")]);
    assert!(t1.is_deleted() && t1.is_empty() && t1.lookup(&k(1)).is_empty());
    let gone = Err(TableError::NoSuchTable(name("t1")));
    assert_eq!(
        (t1.insert(obj(2, 2)), t1.insert_many([obj(2, 2)])),
        (gone.clone(), gone)
    );
    assert_eq!(
        tables.get(name("t1")).unwrap_err(),
        TableError::NoSuchTable(name("t1"))
    );
    let fresh = create("t1", None);
    assert!(fresh.is_empty() && !fresh.is_deleted());
    assert!(tables.delete(name("t3")) && !tables.delete(name("t3")));
    // Another node in the same process has tables of its own.
    let other = Tables::new();
    let theirs = other
        .create(name("t1"), TableOptions::default(), None)
        .unwrap();
    theirs.insert(obj(1, 1)).unwrap();
    assert!(fresh.is_empty() && tables.get(name("t1")).unwrap().is_empty());
}

#[test]
fn no_write_outlives_the_tables_deletion() {
    let tables = Tables::new();
    for round in 0..STRESS / 50 {
        let name = Atom::new(&format!("doomed{}", round % 2));
        let t = tables.create(name, TableOptions::default(), None).unwrap();
        std::thread::scope(|s| {
            for w in 0..2i64 {
                let t = &t;
                s.spawn(move || {
                    let mut n = 0;
                    while t.insert_many([obj((w, n), n), obj((w, -n), n)]).is_ok() {
                        n += 1;
                    }
                });
            }
            while t.len() < 10 {
                std::hint::spin_loop();
            }
            assert!(tables.delete(name));
        });
        assert!(
            t.is_empty(),
            "round {round}: {} objects outlived it",
            t.len()
        );
    }
}

/// An operation of the model test, on keys 0..4 and values 0..3.
#[derive(Debug, Clone)]
enum Op {
    Insert(i64, i64),
    InsertNew(i64, i64),
    Delete(i64),
    DeleteObject(i64, i64),
    Take(i64),
    SelectDelete(i64),
}

fn op() -> impl Strategy<Value = Op> {
    let kv = (0..4i64, 0..3i64);
    prop_oneof![
        3 => kv.clone().prop_map(|(k, v)| Op::Insert(k, v)),
        1 => kv.clone().prop_map(|(k, v)| Op::InsertNew(k, v)),
        1 => (0..4i64).prop_map(Op::Delete),
        1 => kv.prop_map(|(k, v)| Op::DeleteObject(k, v)),
        1 => (0..4i64).prop_map(Op::Take),
        1 => (0..3i64).prop_map(Op::SelectDelete),
    ]
}

/// Runs `op` on a list model of the table, returning what the table should answer.
fn model_step(kind: TableKind, model: &mut Vec<(i64, i64)>, op: &Op) -> Term {
    let with_key = |m: &[(i64, i64)], key| m.iter().filter(|o| o.0 == key).count();
    let before = model.clone();
    match *op {
        Op::Insert(key, v) => {
            if kind == Set {
                model.retain(|o| o.0 != key);
            }
            if kind != Bag || !model.contains(&(key, v)) {
                model.push((key, v));
            }
            return Term::ok();
        }
        Op::InsertNew(key, v) => {
            let fresh = with_key(model, key) == 0;
            if fresh {
                model.push((key, v));
            }
            return fresh.into();
        }
        Op::Delete(key) => model.retain(|o| o.0 != key),
        Op::DeleteObject(key, v) => model.retain(|o| *o != (key, v)),
        Op::SelectDelete(v) => model.retain(|o| o.1 != v),
        Op::Take(key) => {
            model.retain(|o| o.0 != key);
            let taken = before.iter().filter(|o| o.0 == key);
            return Term::list(taken.map(|o| obj(o.0, o.1)).collect::<Vec<_>>());
        }
    }
    match op {
        Op::SelectDelete(_) => Term::from(before.len() - model.len()),
        _ => Term::from(before.len() != model.len()),
    }
}

fn table_step(t: &Table, op: &Op) -> Term {
    match *op {
        Op::Insert(key, v) => t.insert(obj(key, v)).map_or(Term::nil(), |()| Term::ok()),
        Op::InsertNew(key, v) => t.insert_new(obj(key, v)).unwrap().into(),
        Op::Delete(key) => t.delete(&k(key)).into(),
        Op::DeleteObject(key, v) => t.delete_object(&obj(key, v)).into(),
        Op::SelectDelete(v) => t.select_delete(&obj(a("_"), v)).into(),
        Op::Take(key) => Term::list(t.take(&k(key))),
    }
}

proptest! {
    /// Every kind behaves like a plain list of objects under ETS's rules.
    #[test]
    fn tables_follow_a_list_model(
        kind in prop_oneof![Just(Set), Just(Bag), Just(DuplicateBag)],
        ops in proptest::collection::vec(op(), 0..60),
    ) {
        let (t, mut model) = (table(kind, 0), Vec::new());
        for op in &ops {
            prop_assert_eq!(table_step(&t, op), model_step(kind, &mut model, op), "{:?}", op);
            for key in 0..4 {
                let objects = model.iter().filter(|o| o.0 == key).map(|o| obj(o.0, o.1));
                prop_assert_eq!(t.lookup(&k(key)), objects.collect::<Vec<_>>());
            }
            prop_assert_eq!(t.len(), model.len());
            check_invariants(&t);
        }
    }
}
