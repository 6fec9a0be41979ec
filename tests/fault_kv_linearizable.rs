//! The replicated KV is linearizable through faults, and the checker would say so if it
//! were not.
//!
//! A table on three test nodes that are separate OS processes; every link between two
//! of them goes through a fault proxy (`OXBEAM_TEST_PEER_PORTS`, read by the test node).
//! Four clients in this process (attached processes of a node here) put, get and
//! compare-and-set a few keys through `oxbeam_test:kv_*` by rpc, each call bounded, on
//! a node picked at random, while the test injects, in turn:
//! 1. kill -9 of the writer (found by asking each node), then its restart as a joining
//!    replica (its state is gone);
//! 2. SIGSTOP of the writer for longer than the tick time, then SIGCONT;
//! 3. a cut of the writer's links to the two others (the proxies close them and refuse
//!    new ones), healed after a while. During the cut a probe writes a key of its own
//!    through the cut-off writer and then, once the other side has elected a writer,
//!    reads it there.
//!
//! Every call is recorded as it is made and as it returns. A call that timed out or
//! failed in a way that leaves its outcome open (`unknown`, any rpc error) keeps its
//! invocation without a return: it may or may not have taken effect. One refused with
//! `no_quorum` or `not_committed` did not, and is dropped. Per key (linearizability is
//! local), stateright's `LinearizabilityTester` then looks for an order of the
//! operations that respects real time and a compare-and-set register's rules.
//!
//! The control run is the same scenario on a table that acknowledges before replicating
//! (`commit_without_majority`): the cut-off writer acknowledges the probe's write, and
//! the other side's read cannot see it. The checker must find that history not
//! linearizable; if it did not, the first run would prove nothing.
//!
//! Waits are bounded and poll a condition; the only sleeps are the faults' own
//! durations and the clients' think time (a pace, not a wait). The history and its
//! check are in `fault_kv_linearizable/history.rs`. The two runs take a lock so that
//! they do not share the two cores.
#[path = "fault_kv_linearizable/history.rs"]
mod history;
mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use history::{History, Op, Outcome, Ret, check_key, finish, invoke};
use oxbeam::dist::rpc;
use oxbeam::node::Net;
use oxbeam::rt::Attached;
use oxbeam::term::{Atom, Term};
use parking_lot::Mutex;
use support::fault::cluster::a;
use support::fault::watched::LoggedNode;
use support::proxy::{Mode, Proxy};
use support::{PortMapper, SOON, TICK, net_configured, private_mapper, send_signal, test_cookie};

/// The clients' keys are `0..KEYS`; the probe's is [`PROBE`].
const KEYS: i64 = 3;
const PROBE: i64 = 100;
const CLIENTS: usize = 4;
/// Each rpc's bound (the table's own is 2 s: `kv_start`).
const CALL: Duration = Duration::from_secs(3);
/// How long a node stays frozen: longer than the tick time, so it is declared down.
const FREEZE: Duration = Duration::from_secs(3);
/// How long the writer stays cut off (at least: the probe may need longer).
const CUT: Duration = Duration::from_secs(3);
/// Operations completed between two faults.
const OPS_BETWEEN: u64 = 200;
/// A client's think time between two operations (a loopback rpc takes well under a
/// millisecond: without it the history would hold 100 000 operations).
const THINK: Duration = Duration::from_millis(10);
/// How long the checker may take per key before it gives up on an answer (a
/// linearizable history takes milliseconds; a key of the control run that is not
/// linearizable may take forever, and the control needs only one).
const CHECK_BUDGET: Duration = Duration::from_secs(20);
const CONTROL_CHECK_BUDGET: Duration = Duration::from_secs(3);

/// Takes the two runs one at a time: each is timing-sensitive on two cores.
static SERIAL: Mutex<()> = Mutex::new(());

// ---- The cluster ----

struct Cluster {
    _mapper: PortMapper,
    cookie: String,
    epmd: u16,
    ctl: Net,
    short: Vec<String>,
    names: Vec<Atom>,
    /// Each node's distribution port (kept across a restart: the proxies point there).
    ports: Vec<u16>,
    procs: Mutex<Vec<Option<LoggedNode>>>,
    /// `proxies[i][j]`: node i's way to node j.
    proxies: Vec<Vec<Option<Proxy>>>,
    table: Atom,
    broken: bool,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().unwrap().port()
}

#[derive(Debug)]
struct Status {
    leads: bool,
    term: i64,
    applied: i64,
    known: Option<Atom>,
}

impl Cluster {
    fn start(prefix: &str, broken: bool) -> Cluster {
        let (mapper, epmd) = private_mapper();
        let cookie = test_cookie();
        let ctl = net_configured(&format!("{prefix}ctl"), epmd, &cookie, |c| {
            c.prevent_overlapping_partitions = false
        });
        let short: Vec<String> = (1..=3).map(|i| format!("{prefix}{i}")).collect();
        let names = short
            .iter()
            .map(|s| Atom::new(&format!("{s}@localhost")))
            .collect();
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let proxies = (0..3)
            .map(|i| {
                (0..3)
                    .map(|j| (i != j).then(|| Proxy::start(ports[j])))
                    .collect()
            })
            .collect();
        let c = Cluster {
            _mapper: mapper,
            cookie,
            epmd,
            ctl,
            short,
            names,
            ports,
            procs: Mutex::new((0..3).map(|_| None).collect()),
            proxies,
            table: Atom::new(&format!("{prefix}_table")),
            broken,
        };
        let mut me = c.ctl.node().attach();
        for i in 0..3 {
            c.start_node(&mut me, i, false);
        }
        c.wait_settled(&mut me, "a writer elected");
        c
    }

    /// Starts node `i` (its port, its proxies) and its replica of the table.
    fn start_node(&self, me: &mut Attached, i: usize, joining: bool) {
        let peers: Vec<String> = (0..3)
            .filter(|j| *j != i)
            .map(|j| {
                format!(
                    "{}={}",
                    self.names[j].as_str(),
                    self.proxies[i][j].as_ref().unwrap().port
                )
            })
            .collect();
        let port = self.ports[i].to_string();
        let ctl = self.ctl.name();
        let tick = TICK.as_millis().to_string();
        let extra = [
            "--port",
            &port,
            "--tick-ms",
            &tick,
            "--prevent-overlapping-partitions",
            "false",
            "--connect",
            ctl.as_str(),
        ];
        let peers = peers.join(",");
        let env = [("OXBEAM_TEST_PEER_PORTS", peers.as_str())];
        let node = LoggedNode::start_with_env(
            &self.short[i],
            &self.cookie,
            self.epmd,
            &extra,
            &std::env::var("KV_LIN_LOG").unwrap_or_else(|_| "warn".into()),
            &env,
        );
        self.procs.lock()[i] = Some(node);
        support::wait_for("the node connected here", SOON, || {
            (self.ctl.nodes().contains(&self.names[i]), self.ctl.nodes())
        });
        let mut opts = Vec::new();
        if joining {
            opts.push(Term::atom("joining"));
        }
        if self.broken {
            opts.push(Term::atom("broken"));
        }
        let nodes: Vec<Term> = self.names.iter().map(|n| Term::Atom(*n)).collect();
        let args = vec![Term::Atom(self.table), Term::from(nodes), Term::from(opts)];
        let started = rpc::call(
            me,
            self.names[i],
            a("oxbeam_test"),
            a("kv_start"),
            args,
            Some(SOON),
        );
        assert_eq!(started, Ok(Term::ok()), "kv_start on {}", self.names[i]);
    }

    fn status(&self, me: &mut Attached, i: usize) -> Option<Status> {
        let args = vec![Term::Atom(self.table)];
        let t = rpc::call(
            me,
            self.names[i],
            a("oxbeam_test"),
            a("kv_status"),
            args,
            Some(Duration::from_secs(1)),
        );
        match t.ok()?.tagged("status")? {
            [leads, Term::Int(term), Term::Int(applied), known] => Some(Status {
                leads: leads.is_atom("true"),
                term: *term,
                applied: *applied,
                known: known.as_atom().filter(|k| k.as_str() != "none"),
            }),
            _ => None,
        }
    }

    /// The node among `among` that leads the highest term, once one does.
    fn wait_leader(&self, me: &mut Attached, among: &[usize], above_term: i64) -> (usize, i64) {
        support::wait_for("a writer", SOON * 2, || {
            let seen: Vec<(usize, Option<Status>)> =
                among.iter().map(|&i| (i, self.status(me, i))).collect();
            let best = seen
                .iter()
                .filter_map(|(i, s)| {
                    s.as_ref()
                        .filter(|s| s.leads && s.term > above_term)
                        .map(|s| (*i, s.term))
                })
                .max_by_key(|(_, t)| *t);
            (best.is_some(), (best, seen))
        })
        .0
        .unwrap()
    }

    /// Waits until every node answers, all know the same writer, it leads, and each has
    /// applied what the writer had applied when first seen so.
    fn wait_settled(&self, me: &mut Attached, what: &str) -> usize {
        let mut target: Option<i64> = None;
        support::wait_for(what, SOON * 3, || {
            let seen: Vec<Option<Status>> = (0..3).map(|i| self.status(me, i)).collect();
            let all: Option<Vec<&Status>> = seen.iter().map(Option::as_ref).collect();
            let leader = all.as_ref().and_then(|all| {
                let known = all[0].known?;
                let l = self.names.iter().position(|n| *n == known)?;
                (all.iter().all(|s| s.known == Some(known)) && all[l].leads).then_some(l)
            });
            let (Some(all), Some(l)) = (all, leader) else {
                target = None;
                return (false, (None, seen));
            };
            let goal = *target.get_or_insert(all[l].applied);
            let done = all.iter().all(|s| s.applied >= goal);
            (done, (Some(l), seen))
        })
        .0
        .unwrap()
    }

    fn cut(&self, l: usize, mode: Mode) {
        for x in (0..3).filter(|x| *x != l) {
            self.proxies[l][x].as_ref().unwrap().set(mode);
            self.proxies[x][l].as_ref().unwrap().set(mode);
        }
    }

    fn os_pid(&self, i: usize) -> u32 {
        self.procs.lock()[i].as_ref().unwrap().os_pid()
    }

    /// SIGKILL node `i`, and reap it; its log lines that mention a panic.
    fn kill(&self, i: usize) -> Vec<String> {
        let mut node = self.procs.lock()[i].take().expect("a running node");
        node.kill();
        panics(&node)
    }

    /// Log lines of the running nodes that mention a panic.
    fn panics(&self) -> Vec<String> {
        self.procs
            .lock()
            .iter()
            .flatten()
            .flat_map(panics)
            .collect()
    }
}

/// On a failure, the nodes' last log lines (`KV_LIN_LOG=info` for more than warnings).
impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for node in self.procs.lock().iter().flatten() {
                let lines = node.log_since(0);
                for l in &lines[lines.len().saturating_sub(40)..] {
                    eprintln!("kv-lin {}: {l}", node.name);
                }
            }
        }
    }
}

fn panics(node: &LoggedNode) -> Vec<String> {
    let lines = node.log_since(0).into_iter();
    lines.filter(|l| l.contains("panic")).collect()
}

// ---- The clients ----

/// xorshift64*: a seeded stream, so a failing run can be replayed (`KV_LIN_SEED`).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// What a client last learnt of a key: its value and last-write revision.
type Known = Option<(i64, i64)>;

/// Makes one recorded call of `op` on `key` through node `at`; what it learnt of the key.
fn call(
    me: &mut Attached,
    h: &Mutex<History>,
    (client, at, table): (usize, Atom, Atom),
    key: i64,
    op: Op,
    known: Known,
) -> (Outcome, Option<Known>) {
    let (fun, mut args) = match &op {
        Op::Put(v) => ("kv_put", vec![Term::Int(key), Term::Int(*v)]),
        Op::Get => ("kv_get", vec![Term::Int(key)]),
        Op::Cas { new, .. } => {
            let expect = known.map_or(Term::atom("absent"), |(_, rev)| Term::Int(rev));
            ("kv_cas", vec![Term::Int(key), expect, Term::Int(*new)])
        }
    };
    args.insert(0, Term::Atom(table));
    let id = invoke(h, client, key, op.clone());
    let answer = rpc::call(me, at, a("oxbeam_test"), a(fun), args, Some(CALL));
    let row = |t: &Term| -> Option<Known> {
        match t.as_tuple() {
            Some([Term::Int(v), Term::Int(rev)]) => Some(Some((*v, *rev))),
            _ if t.is_atom("none") => Some(None),
            _ => None,
        }
    };
    let (outcome, learnt) = match (&op, answer.as_ref().ok().and_then(Term::as_tuple)) {
        (Op::Put(v), Some([tag, Term::Int(rev)])) if tag.is_atom("ok") => {
            (Outcome::Returned(Ret::PutOk), Some(Some((*v, *rev))))
        }
        (Op::Get, Some([tag, r])) if tag.is_atom("ok") && row(r).is_some() => {
            let r = row(r).unwrap();
            (Outcome::Returned(Ret::GetOk(r.map(|(v, _)| v))), Some(r))
        }
        (Op::Cas { new, .. }, Some([tag, Term::Int(rev)])) if tag.is_atom("ok") => {
            (Outcome::Returned(Ret::CasOk), Some(Some((*new, *rev))))
        }
        (Op::Cas { .. }, Some([tag, r])) if tag.is_atom("conflict") && row(r).is_some() => {
            let r = row(r).unwrap();
            (Outcome::Returned(Ret::CasFail(r.map(|(v, _)| v))), Some(r))
        }
        (_, Some([tag, why])) if tag.is_atom("error") && why.is_atom("no_quorum") => {
            (Outcome::Refused("no_quorum"), None)
        }
        (_, Some([tag, why])) if tag.is_atom("error") && why.is_atom("not_committed") => {
            (Outcome::Refused("not_committed"), None)
        }
        _ => (Outcome::Ambiguous(format!("{answer:?}")), None),
    };
    finish(h, id, outcome.clone());
    (outcome, learnt)
}

/// A client: random operations on random keys through random nodes (not those in
/// `avoid`, a bit mask: a node being restarted) until `stop`.
fn client(c: usize, cl: &Cluster, h: &Mutex<History>, run: &Run, seed: u64) {
    let mut me = cl.ctl.node().attach();
    let mut rng = Rng(seed ^ (c as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut known: HashMap<i64, Known> = HashMap::new();
    let mut seq = 0i64;
    while !run.stop.load(Ordering::SeqCst) {
        let key = rng.below(KEYS as u64) as i64;
        let avoid = run.avoid.load(Ordering::SeqCst);
        let at = loop {
            let i = rng.below(3) as usize;
            if avoid & (1 << i) == 0 {
                break i;
            }
        };
        seq += 1;
        let value = (c as i64 + 1) * 1_000_000 + seq;
        let k = known.get(&key).copied().flatten();
        let op = match rng.below(10) {
            0..4 => Op::Put(value),
            4..8 => Op::Get,
            _ => Op::Cas {
                expect: k.map(|(v, _)| v),
                new: value,
            },
        };
        let (_, learnt) = call(&mut me, h, (c, cl.names[at], cl.table), key, op, k);
        if let Some(l) = learnt {
            known.insert(key, l);
        }
        run.done.fetch_add(1, Ordering::SeqCst);
        // Think time: a pace, not a wait for anything (nothing is sent to a client).
        me.receive_timeout(THINK);
    }
}

struct Run {
    stop: AtomicBool,
    avoid: AtomicU64,
    done: AtomicU64,
}

/// Stops the clients when dropped: also when the test fails while they run.
struct StopOnDrop<'a>(&'a Run);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::SeqCst);
    }
}

/// Waits until the clients completed `n` more operations.
fn wait_ops(run: &Run, n: u64) {
    let from = run.done.load(Ordering::SeqCst);
    support::wait_for("the clients' operations", SOON * 3, || {
        let done = run.done.load(Ordering::SeqCst);
        (done >= from + n, done - from)
    });
}

// ---- The scenario ----

struct Report {
    /// Per key: linearizable, or no answer within the budget.
    linearizable: Vec<(i64, Option<bool>)>,
    /// What the probe's write through the cut-off writer gave.
    probe_write: Option<Outcome>,
}

impl Report {
    fn verdict(&self) -> Option<bool> {
        if self.linearizable.iter().any(|(_, v)| *v == Some(false)) {
            Some(false)
        } else if self.linearizable.iter().all(|(_, v)| *v == Some(true)) {
            Some(true)
        } else {
            None
        }
    }
}

/// The three faults in turn under the clients' load, then the check.
fn scenario(prefix: &str, broken: bool) -> Report {
    let _serial = SERIAL.lock();
    let started = Instant::now();
    let seed = std::env::var("KV_LIN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            t.map_or(1, |d| d.as_nanos() as u64)
        });
    // More rounds of the three faults for a longer soak (`KV_LIN_ROUNDS`; CI runs one).
    let rounds: i64 = std::env::var("KV_LIN_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let cl = Cluster::start(prefix, broken);
    let h = Mutex::new(History::default());
    let run = Run {
        stop: AtomicBool::new(false),
        avoid: AtomicU64::new(0),
        done: AtomicU64::new(0),
    };
    let mut faults: Vec<String> = Vec::new();
    let mut panics = Vec::new();
    let mut probe_write = None;
    let mut me = cl.ctl.node().attach();
    let all = [0, 1, 2];
    std::thread::scope(|s| {
        let (cl, h, run) = (&cl, &h, &run);
        let _stop = StopOnDrop(run);
        for c in 0..CLIENTS {
            s.spawn(move || client(c, cl, h, run, seed));
        }
        wait_ops(run, OPS_BETWEEN);

        for round in 0..rounds {
            // 1. kill -9 the writer; a new one is elected; restart it, joining.
            let (l, term) = cl.wait_leader(&mut me, &all, 0);
            run.avoid.store(1 << l, Ordering::SeqCst);
            panics.extend(cl.kill(l));
            let others: Vec<usize> = all.iter().copied().filter(|i| *i != l).collect();
            let (next, _) = cl.wait_leader(&mut me, &others, term);
            faults.push(format!(
                "kill -9 of writer {}; {} took over",
                cl.names[l], cl.names[next]
            ));
            cl.start_node(&mut me, l, true);
            run.avoid.store(0, Ordering::SeqCst);
            cl.wait_settled(&mut me, "the restarted replica caught up");
            faults.push(format!("{} restarted, joining", cl.names[l]));
            wait_ops(run, OPS_BETWEEN);

            // 2. SIGSTOP the writer past the tick time, then SIGCONT.
            let (l, _) = cl.wait_leader(&mut me, &all, 0);
            let pid = cl.os_pid(l);
            send_signal(pid, "-STOP");
            std::thread::sleep(FREEZE); // the fault's own duration
            send_signal(pid, "-CONT");
            let w = cl.wait_settled(&mut me, "the cluster settled after the freeze");
            faults.push(format!(
                "SIGSTOP of writer {} for {FREEZE:?}; then {} writes",
                cl.names[l], cl.names[w]
            ));
            wait_ops(run, OPS_BETWEEN);

            // 3. Cut the writer off; the probe writes through it, then reads on the other
            // side once that side has a writer; heal.
            let (l, term) = cl.wait_leader(&mut me, &all, 0);
            let probe = CLIENTS;
            let (at_l, other) = (cl.names[l], cl.names[(l + 1) % 3]);
            let first = call(
                &mut me,
                h,
                (probe, at_l, cl.table),
                PROBE,
                Op::Put(-2 * round - 1),
                None,
            );
            let cut_at = Instant::now();
            // Silent (traffic swallowed, noticed by tick) in even rounds, clean
            // (connections closed, new ones refused) in odd ones.
            let how = if round % 2 == 0 {
                Mode::Blackhole
            } else {
                Mode::Drop
            };
            cl.cut(l, how);
            let (written, _) = call(
                &mut me,
                h,
                (probe, at_l, cl.table),
                PROBE,
                Op::Put(-2 * round - 2),
                None,
            );
            probe_write = Some(written.clone());
            let others: Vec<usize> = all.iter().copied().filter(|i| *i != l).collect();
            let (w, _) = cl.wait_leader(&mut me, &others, term);
            let (read, _) = call(&mut me, h, (probe, other, cl.table), PROBE, Op::Get, None);
            if let Some(rest) = CUT.checked_sub(cut_at.elapsed()) {
                std::thread::sleep(rest); // the fault's own duration
            }
            cl.cut(l, Mode::Pass);
            faults.push(format!(
                "cut ({how:?}) of writer {} for {:?} ({} elected on the other side); probe: put {first:?}, \
                 put through the cut-off writer {written:?}, get on the other side {read:?}",
                cl.names[l],
                cut_at.elapsed(),
                cl.names[w]
            ));
            cl.wait_settled(&mut me, "the cluster settled after the heal");
            wait_ops(run, OPS_BETWEEN);
        }
    });
    panics.extend(cl.panics());
    let ran = started.elapsed();

    let h = h.into_inner();
    let checking = Instant::now();
    let budget = if broken {
        CONTROL_CHECK_BUDGET
    } else {
        CHECK_BUDGET
    };
    let keys: Vec<i64> = [PROBE].into_iter().chain(0..KEYS).collect();
    let linearizable: Vec<(i64, Option<bool>)> = keys
        .iter()
        .map(|&k| (k, check_key(&h, k, budget)))
        .collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    let mut ambiguous: HashMap<String, usize> = HashMap::new();
    for r in &h.ops {
        let kind = match (&r.op, &r.outcome) {
            (_, Some(Outcome::Refused(why))) => why,
            (_, Some(Outcome::Ambiguous(why))) => {
                *ambiguous.entry(why.clone()).or_default() += 1;
                "ambiguous"
            }
            (Op::Get, _) => "ok get",
            (Op::Put(_), _) => "ok put",
            (Op::Cas { .. }, Some(Outcome::Returned(Ret::CasOk))) => "ok cas",
            (Op::Cas { .. }, _) => "ok cas refused",
        };
        *counts.entry(kind).or_default() += 1;
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort();
    eprintln!(
        "kv-lin {} (seed {seed}): {} ops in {ran:.1?} ({counts:?}); checked in {:.1?}",
        if broken {
            "control run, broken table"
        } else {
            "correct table"
        },
        h.ops.len(),
        checking.elapsed()
    );
    for f in &faults {
        eprintln!("kv-lin   fault: {f}");
    }
    eprintln!("kv-lin   ambiguous: {ambiguous:?}");
    eprintln!("kv-lin   linearizable per key (None: undecided in {budget:?}): {linearizable:?}");
    assert!(panics.is_empty(), "panics in the nodes: {panics:?}");
    Report {
        linearizable,
        probe_write,
    }
}

#[test]
fn a_table_stays_linearizable_through_kill_freeze_and_cut() {
    let r = scenario("kvl", false);
    assert_eq!(r.verdict(), Some(true), "{:?}", r.linearizable);
}

#[test]
fn the_checker_catches_a_table_that_acknowledges_before_replicating() {
    let r = scenario("kvb", true);
    assert!(
        matches!(r.probe_write, Some(Outcome::Returned(Ret::PutOk))),
        "the cut-off writer acknowledged the probe's write: {:?}",
        r.probe_write
    );
    assert_eq!(r.verdict(), Some(false), "{:?}", r.linearizable);
}
