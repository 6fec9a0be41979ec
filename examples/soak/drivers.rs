//! The soak's traffic drivers, one per kind (see `main.rs` for what the counts mean).

use super::*;

/// Sequenced messages to one echo process.
#[derive(Default)]
struct Lane {
    kind: usize,
    echo: Option<Pid>,
    next: i64,
    out: VecDeque<(i64, Instant)>,
    /// Received by the echoes of c's former incarnations.
    base: u64,
    /// Received by this echo.
    count: u64,
}

impl Lane {
    fn send(&mut self, me: &Attached, n: usize) {
        let Some(echo) = self.echo else { return };
        for _ in 0..n {
            self.next += 1;
            me.send(echo, term!({:ping, (me.pid()), (self.next)}));
            self.out.push_back((self.next, Instant::now()));
        }
        add(self.kind, SENT, n as u64);
    }

    fn echoed(&mut self, n: i64, count: u64) {
        self.count = count;
        COUNTS[self.kind][DELIV].store(self.base + count, Relaxed);
        let Some(i) = self.out.iter().position(|(s, _)| *s == n) else {
            return lost(self.kind, format!("echo of {n}, not in flight"));
        };
        if i > 0 {
            let first = self.out[0].0;
            lost_n(self.kind, i as u64, format!("echo of {n} before {first}"));
        }
        self.out.drain(..=i);
        add(self.kind, ACKED, 1);
    }

    fn echo_down(&mut self, reason: &Term) {
        let n = self.out.len() as u64;
        match self.kind {
            MSG_B => lost_n(MSG_B, n, format!("b's echo went down: {reason}")),
            _ => add(self.kind, DOUBT, n),
        }
        self.out.clear();
        (self.base, self.count, self.echo) = (self.base + self.count, 0, None);
    }

    fn expire(&mut self, limit: Duration) {
        while let Some((n, at)) = self.out.front().copied() {
            if at.elapsed() < limit {
                break;
            }
            self.out.pop_front();
            lost(self.kind, format!("no echo of {n} in {limit:?}"));
        }
    }
}

/// msg->b, msg->c: `{:ping, from, n}` to an echo process on b and one on c, 200/s
/// each. acked: the echo came back in order; deliv: how many the echo says it got;
/// doubt: in flight when c died; lost: no echo within 5 s (10 s on c while its echo
/// lives), or a gap, or out of order.
pub(super) fn msg_driver(net: Net) {
    let mut me = net.node().attach();
    let lanes = [MSG_B, MSG_C].map(|kind| (kind, Lane::default()));
    let mut lanes = lanes.map(|(kind, l)| Lane { kind, ..l });
    match net.spawn_within(
        &mut me,
        b_node(),
        mfa("echo", vec![]),
        oxbeam::node::SpawnRequest::MONITOR,
        SLOW,
    ) {
        Ok((p, _)) => lanes[0].echo = Some(p),
        Err(e) => return lost(MSG_B, format!("cannot spawn the echo on b: {e}")),
    }
    let period = Duration::from_millis(10);
    let (mut next_send, mut next_try_c) = (Instant::now(), Instant::now());
    let mut stopping: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if stopping.is_none() && STOP.load(Relaxed) {
            stopping = Some(now);
        }
        // At the end, what is in flight drains (or expires).
        let drained = lanes.iter().all(|l| l.out.is_empty());
        if stopping.is_some_and(|s| drained || s.elapsed() > 2 * DEADLINE) {
            break;
        }
        if stopping.is_none() && now >= next_send {
            next_send = (next_send + period).max(now);
            lanes.iter_mut().for_each(|l| l.send(&me, 2));
        }
        // c's echo goes with c: a new one once c is back.
        if lanes[1].echo.is_none() && stopping.is_none() && now >= next_try_c {
            next_try_c = now + Duration::from_millis(500);
            let echo = mfa("echo", vec![]);
            if net.nodes().contains(&c_node())
                && let Ok((p, _)) = net.spawn_within(
                    &mut me,
                    c_node(),
                    echo,
                    oxbeam::node::SpawnRequest::MONITOR,
                    TICK,
                )
            {
                lanes[1].echo = Some(p);
            }
        }
        lanes[0].expire(DEADLINE);
        lanes[1].expire(2 * DEADLINE);
        let mut wait = next_send.saturating_duration_since(Instant::now());
        while let Some(msg) = me.receive_timeout(wait) {
            wait = Duration::ZERO;
            if let Some([Term::Pid(from), Term::Int(n), Term::Int(k)]) = msg.tagged("echo") {
                match lanes.iter_mut().find(|l| l.echo == Some(*from)) {
                    Some(l) => l.echoed(*n, *k as u64),
                    None => problem(format!("an echo from {from:?}, not a live echo")),
                }
            } else if let Some([_, _, Term::Pid(p), reason]) = msg.tagged("DOWN")
                && let Some(l) = lanes.iter_mut().find(|l| l.echo == Some(*p))
            {
                l.echo_down(reason);
            }
        }
    }
    lanes[0].expire(Duration::ZERO);
    add(MSG_C, DOUBT, lanes[1].out.len() as u64);
    for echo in lanes.iter().filter_map(|l| l.echo) {
        me.send(echo, Term::atom("stop"));
    }
}

/// A worker watched through a link and a monitor.
#[derive(Default)]
struct Watch {
    kind: usize,
    mref: Option<Ref>,
    /// The exit reason it was asked for (None: a resident, `noconnection` only).
    want: Option<Term>,
    /// Since when its DOWN and EXIT are due (None: a resident still expected alive).
    due: Option<Instant>,
    down: Option<Term>,
    exit: Option<Term>,
}

/// A `Soak.echo` on `node`, linked and monitored: by spawn options or afterwards.
fn spawn_watched(me: &mut Attached, node: Atom, opts: bool) -> Result<(Pid, Watch), Term> {
    let net = Net::of(me.node()).ok_or(Term::atom("not_distributed"))?;
    let (pid, r) = net.spawn_within(
        me,
        node,
        mfa("echo", vec![]),
        oxbeam::node::SpawnRequest {
            link: opts,
            monitor: opts,
        },
        2 * TICK,
    )?;
    // Link and monitor go before the exit request sent next (signals between two
    // processes keep their order): `noproc` would show one overtaken.
    let mref = match r {
        Some(r) => r,
        None => me.link(pid).map(|_| me.monitor(pid))?,
    };
    let mut w = Watch::default();
    (w.kind, w.mref) = (if node == c_node() { MON_C } else { MON_B }, Some(mref));
    Ok((pid, w))
}

/// Records a DOWN (with its reference) or an EXIT; judges the worker once it has both.
fn watched(live: &mut HashMap<Pid, Watch>, pid: Pid, mref: Option<Ref>, reason: &Term) {
    let what = if mref.is_some() { "DOWN" } else { "EXIT" };
    let kind = if pid.node() == c_node() { MON_C } else { MON_B };
    let Some(w) = live.get_mut(&pid) else {
        return lost(kind, format!("{what} {reason} for {pid:?}, not watched"));
    };
    if mref.is_some_and(|r| Some(r) != w.mref) {
        return lost(kind, format!("DOWN for {pid:?}, wrong reference"));
    }
    let slot = if mref.is_some() {
        &mut w.down
    } else {
        &mut w.exit
    };
    if slot.replace(reason.clone()).is_some() {
        return lost(kind, format!("a second {what} {reason} for {pid:?}"));
    }
    let (Some(down), Some(exit)) = (&w.down, &w.exit) else {
        return;
    };
    let noconn = down.is_atom("noconnection");
    if down == exit && (Some(down) == w.want.as_ref() || (kind == MON_C && noconn)) {
        add(kind, DELIV, 1);
        add(kind, X, u64::from(noconn));
    } else {
        lost(
            kind,
            format!("{pid:?}: DOWN {down}, EXIT {exit}, wanted {:?}", w.want),
        );
    }
    live.remove(&pid);
}

/// mon->b, mon->c: every 100 ms, alternating b and c, a `Soak.echo` spawned by name,
/// linked and monitored (by spawn options or by `link`/`monitor` after), told to exit
/// with `{:soak, n}`; two residents per node stay until the end (or c's death). acked:
/// spawned; deliv: one DOWN and one EXIT with the same right reason (`noconnection`
/// only on c, also counted as noconn); lost: not both within 10 s, a second one, a
/// wrong reason. spawn_err: spawns on c that failed as it died.
pub(super) fn mon_driver(net: Net) {
    let (b, c) = (b_node(), c_node());
    let mut me = net.node().attach();
    me.trap_exit(true);
    net.monitor_nodes(me.pid(), oxbeam::node::NodeMonitor::On);
    let mut live: HashMap<Pid, Watch> = HashMap::new();
    let (mut n, mut next) = (0i64, Instant::now());
    let mut stopping: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let exit = |me: &Attached, pid: Pid, w: &mut Watch, r: Term| {
            me.send(pid, term!({:exit, (r.clone())}));
            (w.want, w.due) = (Some(r), Some(now));
        };
        if stopping.is_none() && STOP.load(Relaxed) {
            stopping = Some(now);
            // The residents go too, with a reason of their own.
            for (pid, w) in live.iter_mut().filter(|(_, w)| w.due.is_none()) {
                exit(&me, *pid, w, term!({:soak, :end}));
            }
        }
        if stopping.is_some_and(|s| live.is_empty() || s.elapsed() > 3 * DEADLINE) {
            break;
        }
        if stopping.is_none() && now >= next {
            next = now + Duration::from_millis(100);
            n += 1;
            let (node, kind) = [(b, MON_B), (c, MON_C)][n as usize % 2];
            let resident = |w: &&Watch| w.kind == kind && w.due.is_none();
            let residents = live.values().filter(resident).count();
            if node == b || net.nodes().contains(&c) {
                add(kind, SENT, 1);
                match spawn_watched(&mut me, node, n % 4 < 2) {
                    Ok((pid, mut w)) => {
                        add(kind, ACKED, 1);
                        if residents >= 2 {
                            exit(&me, pid, &mut w, term!({:soak, n}));
                        }
                        live.insert(pid, w);
                    }
                    Err(e) if kind == MON_B => lost(kind, format!("spawn on b: {e}")),
                    Err(_) => add(kind, X + 1, 1),
                }
            }
        }
        live.retain(|pid, w| {
            let late = w.due.is_some_and(|d| d.elapsed() > 2 * DEADLINE);
            if late {
                let (d, e) = (&w.down, &w.exit);
                lost(
                    w.kind,
                    format!("{pid:?}: after 10 s DOWN {d:?}, EXIT {e:?}"),
                );
            }
            !late
        });
        let mut wait = next.saturating_duration_since(Instant::now());
        while let Some(msg) = me.receive_timeout(wait) {
            wait = Duration::ZERO;
            if let Some([Term::Pid(pid), reason]) = msg.tagged("EXIT") {
                watched(&mut live, *pid, None, reason);
            } else if let Some([Term::Ref(r), _, Term::Pid(pid), why]) = msg.tagged("DOWN") {
                watched(&mut live, *pid, Some(*r), why);
            } else if let Some([Term::Atom(node)]) = msg.tagged("nodedown") {
                if *node == b {
                    B_DOWNS.fetch_add(1, Relaxed);
                    problem("b went down".into());
                }
                // c's residents are due now: DOWN and EXIT `noconnection`.
                let now = Some(Instant::now());
                let residents = live.values_mut().filter(|w| w.kind == MON_C);
                residents
                    .filter(|w| w.due.is_none())
                    .for_each(|w| w.due = now);
            }
        }
    }
    for (pid, w) in &live {
        lost(w.kind, format!("{pid:?} still unresolved at the end"));
    }
}

/// rpc->b, rpc->c: `erlang:node/0`, alternating, every 100 ms, timeout 2 s. acked: ok;
/// deliv: ok with the callee's name; lost: a call to b that failed while b was
/// connected before and after it (or a wrong answer).
pub(super) fn rpc_driver(net: Net) {
    let mut me = net.node().attach();
    let (m, f) = (Atom::new("erlang"), Atom::new("node"));
    for n in 0u64.. {
        if STOP.load(Relaxed) {
            break;
        }
        let (node, kind) = [(b_node(), RPC_B), (c_node(), RPC_C)][n as usize % 2];
        let before = net.nodes().contains(&node);
        add(kind, SENT, 1);
        match rpc::call(&mut me, node, m, f, vec![], Some(TICK)) {
            Ok(v) if v == Term::Atom(node) => add(kind, DELIV, 1),
            Ok(v) => lost(kind, format!("erlang:node() on {node} gave {v}")),
            Err(e) => {
                std::thread::sleep(Duration::from_millis(100));
                let col = match e {
                    rpc::RpcError::NodeDown => X,
                    rpc::RpcError::Timeout => X + 1,
                    rpc::RpcError::Exit(_) => X + 2,
                };
                add(kind, col, 1);
                if kind == RPC_B && before && net.nodes().contains(&node) {
                    lost(kind, format!("call to b failed while connected: {e}"));
                }
                continue;
            }
        }
        add(kind, ACKED, 1);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// locks: a locker here (this thread) and one on b, every 50 ms each: `global:trans`
/// around get, set +1 of a counter process here. acked: increments reported done;
/// deliv: the counter (the highest value seen; read at the end); lost: a value given
/// twice, or a final counter other than the acked increments. gave_up: no lock after
/// 40 retries.
pub(super) fn lock_driver(net: Net) {
    let mut me = net.node().attach();
    let mut value = 0i64;
    let counter = net.node().spawn(move |ctx: &mut Ctx, msg: Term| {
        if let Some([Term::Pid(from)]) = msg.tagged("get") {
            ctx.send(*from, term!({:value, value}));
        } else if let Some([Term::Int(v), Term::Pid(from)]) = msg.tagged("set") {
            value = *v;
            ctx.send(*from, Term::atom("set_ok"));
        } else if msg.is_atom("stop") {
            return Flow::stop_normal();
        }
        Flow::Continue
    });
    let spec = mfa("locker", vec![Term::Pid(counter), Term::Pid(me.pid())]);
    let locker = match net.spawn_within(
        &mut me,
        b_node(),
        spec,
        oxbeam::node::SpawnRequest::default(),
        SLOW,
    ) {
        Ok((p, _)) => p,
        Err(e) => return lost(LOCKS, format!("cannot spawn the locker on b: {e}")),
    };
    // Values seen: all of 1..=low, and those above it (a few, in flight).
    let (mut low, mut above) = (0i64, BTreeSet::new());
    let mut on_report = |msg: &Term| {
        add(LOCKS, SENT, u64::from(msg.tagged("locker_done").is_none()));
        if let Some([Term::Int(v)]) = msg.tagged("incr") {
            add(LOCKS, ACKED, 1);
            COUNTS[LOCKS][DELIV].fetch_max(*v as u64, Relaxed);
            if *v <= low || !above.insert(*v) {
                lost(LOCKS, format!("value {v} given twice: a lost update"));
            }
            while above.remove(&(low + 1)) {
                low += 1;
            }
        }
        add(LOCKS, X, u64::from(msg.tagged("gave_up").is_some()));
        msg.tagged("locker_done").is_some()
    };
    let mut next = Instant::now();
    while !STOP.load(Relaxed) {
        if Instant::now() >= next {
            next = Instant::now() + Duration::from_millis(50);
            let r = locked_incr(&mut me, counter);
            on_report(&r.map_or(term!({:gave_up}), |v| term!({:incr, v})));
        }
        if let Some(msg) = me.receive_timeout(next.saturating_duration_since(Instant::now())) {
            on_report(&msg);
        }
    }
    me.send(locker, Term::atom("stop"));
    loop {
        match me.receive_timeout(SLOW) {
            Some(m) if on_report(&m) => break,
            Some(_) => {}
            None => return lost(LOCKS, "the locker on b did not stop".into()),
        }
    }
    me.send(counter, term!({:get, (me.pid())}));
    let last = me.receive_with(|m| m.tagged("value")?[0].as_int(), Some(SLOW));
    me.send(counter, Term::atom("stop"));
    let acked = get(LOCKS, ACKED) as i64;
    match last {
        Some(v) if v == acked => COUNTS[LOCKS][DELIV].store(v as u64, Relaxed),
        v => lost(LOCKS, format!("counter {v:?} after {acked} increments")),
    }
}
