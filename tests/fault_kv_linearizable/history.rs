//! The history of `fault_kv_linearizable.rs` and its check: a compare-and-set register
//! per key as the sequential specification, invocations and returns recorded in the
//! order they happened, and stateright's `LinearizabilityTester` run on one key's
//! operations with a time budget.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};

/// An operation on one key. Values are unique, so a compare-and-set against the
/// revision a client last saw is one against the value written at that revision.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Put(i64),
    Get,
    Cas { expect: Option<i64>, new: i64 },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Ret {
    PutOk,
    GetOk(Option<i64>),
    CasOk,
    /// Refused, with what the key held.
    CasFail(Option<i64>),
}

/// One key's sequential specification, and the checker's time budget: the search is a
/// plain depth-first walk, exponential on a history that is not linearizable, so once
/// the budget is spent every step is refused (the walk unwinds at once) and the answer
/// is "undecided".
#[derive(Clone, Debug)]
pub struct Cell(Option<i64>, Budget);

#[derive(Clone, Debug)]
pub struct Budget(Arc<(Instant, AtomicBool)>);

impl Budget {
    fn spent(&self) -> bool {
        let (deadline, spent) = &*self.0;
        if !spent.load(Ordering::Relaxed) && Instant::now() >= *deadline {
            spent.store(true, Ordering::Relaxed);
        }
        spent.load(Ordering::Relaxed)
    }
}

impl SequentialSpec for Cell {
    type Op = Op;
    type Ret = Ret;
    fn invoke(&mut self, op: &Op) -> Ret {
        match op {
            Op::Put(v) => {
                self.0 = Some(*v);
                Ret::PutOk
            }
            Op::Get => Ret::GetOk(self.0),
            Op::Cas { expect, new } if *expect == self.0 => {
                self.0 = Some(*new);
                Ret::CasOk
            }
            Op::Cas { .. } => Ret::CasFail(self.0),
        }
    }

    fn is_valid_step(&mut self, op: &Op, ret: &Ret) -> bool {
        !self.1.spent() && self.invoke(op) == *ret
    }
}

#[derive(Clone, Debug)]
pub enum Outcome {
    Returned(Ret),
    /// Timed out or failed with its effect unknown: no return.
    Ambiguous(String),
    /// Definitely not applied: dropped from the history.
    Refused(&'static str),
}

pub struct Record {
    pub client: usize,
    pub key: i64,
    pub op: Op,
    pub outcome: Option<Outcome>,
}

/// Invocations and returns in the order they happened (each pushed under one lock, an
/// invocation before its call is sent, a return after its answer came).
#[derive(Default)]
pub struct History {
    pub ops: Vec<Record>,
    /// (operation, is a return)
    pub events: Vec<(usize, bool)>,
}

pub fn invoke(h: &Mutex<History>, client: usize, key: i64, op: Op) -> usize {
    let mut h = h.lock();
    let id = h.ops.len();
    h.ops.push(Record {
        client,
        key,
        op,
        outcome: None,
    });
    h.events.push((id, false));
    id
}

pub fn finish(h: &Mutex<History>, id: usize, outcome: Outcome) {
    let mut h = h.lock();
    if matches!(outcome, Outcome::Returned(_)) {
        h.events.push((id, true));
    }
    h.ops[id].outcome = Some(outcome);
}

/// Feeds `key`'s operations to a tester. A client whose call was left ambiguous goes on
/// as a new thread of the tester (the old one keeps its call in flight forever).
pub fn tester_for(h: &History, key: i64, budget: Budget) -> LinearizabilityTester<u64, Cell> {
    let mut t = LinearizabilityTester::new(Cell(None, budget));
    let mut incarnation: HashMap<usize, u64> = HashMap::new();
    for &(id, is_return) in &h.events {
        let r = &h.ops[id];
        if r.key != key {
            continue;
        }
        let thread = (r.client as u64) << 32 | incarnation.get(&r.client).copied().unwrap_or(0);
        match (&r.outcome, is_return) {
            (Some(Outcome::Returned(ret)), true) => {
                t.on_return(thread, ret.clone())
                    .expect("a return after its call");
            }
            (Some(Outcome::Returned(_)), false) => {
                t.on_invoke(thread, r.op.clone())
                    .expect("one call at a time");
            }
            // A read that never returned constrains nothing.
            (Some(Outcome::Ambiguous(_)), false) if r.op != Op::Get => {
                t.on_invoke(thread, r.op.clone())
                    .expect("one call at a time");
                *incarnation.entry(r.client).or_default() += 1;
            }
            _ => {}
        }
    }
    t
}

/// Whether `key`'s history is linearizable (`None`: undecided within `budget`). The
/// search recurses as deep as the history: it runs on a thread with a large stack.
pub fn check_key(h: &History, key: i64, budget: Duration) -> Option<bool> {
    let budget = Budget(Arc::new((Instant::now() + budget, AtomicBool::new(false))));
    let tester = tester_for(h, key, budget.clone());
    let verdict = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || tester.is_consistent())
        .expect("a checker thread")
        .join()
        .expect("the checker");
    (verdict || !budget.spent()).then_some(verdict)
}
