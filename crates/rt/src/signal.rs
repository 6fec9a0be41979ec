//! Signals: everything one process can send another.
//!
//! Messages, exit signals, link and monitor requests all travel through the receiver's
//! one inbound queue, so between a pair of processes they arrive in the order they were
//! sent (Erlang's signal ordering guarantee). The receiver acts on control signals when
//! it next looks at its queue; [`exit_action`] is the pure rule for exit signals.
//!
//! The enum is public because the distribution layer carries the same signals between
//! nodes (see [`Router`](super::Router)); how they look on the wire is the node
//! layer's business (`node::wire`), not this enum's.

use std::sync::Arc;

use crate::term::codec::decode_embedded;
use crate::term::{Atom, Pid, Ref, Term};

/// A signal from one process to another.
///
/// Not serializable: the node layer writes the signals that cross nodes in its own
/// table of message kinds (`node::wire`), so this enum can change without changing
/// the protocol.
#[derive(Clone, Debug, PartialEq)]
pub enum Signal {
    /// An ordinary message.
    Message(Term),
    /// An exit signal: `linked` when it comes from a link (the linked process exited),
    /// not when sent explicitly with `exit(pid, reason)`.
    Exit {
        /// The process that sent or caused it.
        from: Pid,
        /// The exit reason.
        reason: Term,
        /// Whether it is due to a link.
        linked: bool,
    },
    /// `from` linked to the receiver.
    Link {
        /// The process that linked.
        from: Pid,
    },
    /// `from` removed its link to the receiver.
    Unlink {
        /// The process that unlinked.
        from: Pid,
    },
    /// `from` monitors the receiver under `reference`.
    Monitor {
        /// The watcher.
        from: Pid,
        /// The monitor reference.
        reference: Ref,
    },
    /// `from` no longer monitors the receiver.
    Demonitor {
        /// The watcher.
        from: Pid,
        /// The monitor reference.
        reference: Ref,
    },
    /// The process `from`, monitored by the receiver under `reference`, is gone.
    Down {
        /// The monitored process.
        from: Pid,
        /// The monitor reference.
        reference: Ref,
        /// Why it exited (`noproc` if it never existed, `noconnection` if its node went).
        reason: Term,
    },
    /// `from` monitors the process registered as `name` on the node this signal is sent
    /// to, under `reference` (`erlang:monitor(process, {name, node})` for a name on
    /// another node). Addressed to the node, not to a process ([`node_pid`]): that node
    /// looks the name up and makes it a [`Signal::Monitor`] of the process registered
    /// there now, or answers at once with a [`Signal::Down`] `noproc`. The watcher's
    /// `DOWN` names `{name, node}`, not the pid.
    MonitorName {
        /// The watcher.
        from: Pid,
        /// The registered name.
        name: Atom,
        /// The monitor reference.
        reference: Ref,
    },
    /// `from` drops its monitor `reference` made with [`Signal::MonitorName`]: the node
    /// it is sent to passes a [`Signal::Demonitor`] to the process registered as `name`
    /// (if the name has moved meanwhile, the first process's `DOWN` comes later and is
    /// dropped by the watcher, as OTP's does).
    DemonitorName {
        /// The watcher.
        from: Pid,
        /// The registered name.
        name: Atom,
        /// The monitor reference.
        reference: Ref,
    },
    /// `from` asks for the receiver's links and monitors (`Process.info`); the answer is
    /// the message `{reference, info}` (`{reference, nil}` from a process that is gone).
    Info {
        /// Who asks.
        from: Pid,
        /// Tags the answer.
        reference: Ref,
    },
    /// Plain messages from another node still in their wire form, in order: the
    /// receiving process decodes them on its own thread when it takes them from its
    /// mailbox (see [`EncodedMessages`]). Made only by the distribution layer, for a
    /// local process (nothing outside the crate can make one); never sent to another
    /// node.
    Encoded(Box<EncodedMessages>),
}

/// Where [`EncodedMessages`] came from: told when one of them does not decode (a
/// connection closes itself, as the BEAM closes a connection that brought a bad
/// message).
pub trait MessageSource: Send + Sync {
    /// The message does not decode, for the reason given; the ones after it in the
    /// same batch are dropped.
    fn malformed(&self, why: String);
}

/// Consecutive plain messages for one process, as the bytes their terms arrived in.
///
/// A connection's I/O thread finds a message's destination without decoding the
/// term, and the receiving process decodes it on its own thread: the I/O thread stays
/// free to read, and the term is allocated on the thread that also frees it (with
/// glibc's allocator, a block freed by another thread than the one that allocated it
/// takes the slow path). The BEAM decodes distributed messages in the receiving
/// process too.
#[derive(Clone)]
pub struct EncodedMessages {
    bytes: Vec<u8>,
    ends: Vec<u32>,
    /// Messages already taken out by [`EncodedMessages::take_next`].
    taken: usize,
    source: Arc<dyn MessageSource>,
}

impl EncodedMessages {
    /// An empty batch of messages from `source`.
    pub fn new(source: Arc<dyn MessageSource>) -> EncodedMessages {
        EncodedMessages {
            bytes: Vec::new(),
            ends: Vec::new(),
            taken: 0,
            source,
        }
    }

    /// Makes room for `bytes` more bytes of terms, `msgs` more messages.
    pub fn reserve(&mut self, bytes: usize, msgs: usize) {
        self.bytes.reserve(bytes);
        self.ends.reserve(msgs);
    }

    /// Adds a message: its term as [`decode_embedded`] reads it.
    pub fn push(&mut self, term: &[u8]) {
        self.bytes.extend_from_slice(term);
        // A batch is one read's worth of frames: far below 4 GiB.
        self.ends.push(self.bytes.len() as u32);
    }

    /// Drops the messages, keeping the memory for more.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.taken = 0;
    }

    /// Decodes the next message not yet taken: `None` once all are, `Err` (with why)
    /// for one that does not decode (see [`EncodedMessages::malformed`]).
    pub fn take_next(&mut self) -> Option<Result<Term, String>> {
        let end = *self.ends.get(self.taken)? as usize;
        let start = match self.taken {
            0 => 0,
            i => self.ends[i - 1] as usize,
        };
        self.taken += 1;
        Some(decode_embedded(&self.bytes[start..end]))
    }

    /// Decodes the messages not yet taken, only to see that they do: the first that
    /// does not is reported to the source (for messages whose process is gone, which
    /// would otherwise be dropped unseen).
    pub(crate) fn check_rest(mut self) {
        while let Some(decoded) = self.take_next() {
            if let Err(why) = decoded {
                self.malformed(why);
                return;
            }
        }
    }

    /// Messages not yet taken.
    pub(crate) fn remaining(&self) -> usize {
        self.ends.len() - self.taken
    }

    /// Tells the messages' source that one of them did not decode.
    pub fn malformed(&self, why: String) {
        self.source.malformed(why);
    }

    /// Messages held.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Whether the messages came from `source`.
    pub fn is_from(&self, source: &Arc<dyn MessageSource>) -> bool {
        Arc::ptr_eq(&self.source, source)
    }
}

impl std::fmt::Debug for EncodedMessages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncodedMessages({} messages)", self.ends.len())
    }
}

impl PartialEq for EncodedMessages {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes && self.ends == other.ends
    }
}

impl Signal {
    /// The process a control signal comes from (`None` for a plain message, which
    /// doesn't say).
    pub fn sender(&self) -> Option<Pid> {
        match self {
            Signal::Message(_) | Signal::Encoded(_) => None,
            Signal::Exit { from, .. }
            | Signal::Link { from }
            | Signal::Unlink { from }
            | Signal::Monitor { from, .. }
            | Signal::Demonitor { from, .. }
            | Signal::MonitorName { from, .. }
            | Signal::DemonitorName { from, .. }
            | Signal::Down { from, .. }
            | Signal::Info { from, .. } => Some(*from),
        }
    }

    /// Messages this signal holds beyond one (a [`Signal::Encoded`] batch holds many).
    pub(crate) fn extra_messages(&self) -> usize {
        match self {
            Signal::Encoded(m) => m.len().saturating_sub(1),
            _ => 0,
        }
    }

    /// A signal that changes only what the receiver does when it exits, so it need not
    /// wake the receiver: it waits in the queue for the next time the process runs
    /// anyway. A monitor still queued when the process exits is answered with the real
    /// reason (see `Ctx::finish`), and a `DOWN` for a reference its watcher has
    /// demonitored meanwhile is dropped by the watcher. This spares a server a second
    /// run per call: every `gen_server` call ends with a demonitor of the server. A
    /// monitor by name goes to a node, which acts on it when it arrives; it too can wait
    /// for the sender's next send or wait, as only a receive can see its answer.
    pub fn is_lazy(&self) -> bool {
        matches!(
            self,
            Signal::Monitor { .. }
                | Signal::Demonitor { .. }
                | Signal::MonitorName { .. }
                | Signal::DemonitorName { .. }
        )
    }
}

/// What a process does with an exit signal.
#[derive(Debug, PartialEq)]
#[must_use]
pub enum ExitAction {
    /// Nothing: a `normal` exit from a link, or a link that no longer exists.
    Ignore,
    /// Deliver this `{:EXIT, from, reason}` message (the process traps exits).
    Message(Term),
    /// Exit with this reason.
    Die(Term),
}

/// Erlang's rules for an exit signal arriving at `me`.
///
/// `link_existed` says whether `from` was in `me`'s link set (only relevant when `linked`:
/// a link exit from a process we have since unlinked is ignored).
pub fn exit_action(
    me: Pid,
    trap_exit: bool,
    from: Pid,
    reason: &Term,
    linked: bool,
    link_existed: bool,
) -> ExitAction {
    if linked && !link_existed {
        return ExitAction::Ignore;
    }
    // `exit(pid, kill)` cannot be trapped; a linked process that died *with* reason
    // `kill` sends an ordinary (trappable) signal.
    if !linked && reason.as_atom() == Some(Atom::KILL) {
        return ExitAction::Die(Term::Atom(Atom::KILLED));
    }
    if trap_exit {
        return ExitAction::Message(exit_message(from, reason.clone()));
    }
    if reason.as_atom() == Some(Atom::NORMAL) {
        // `exit(self(), normal)` does end the caller; other normal exits are ignored.
        return if !linked && from == me {
            ExitAction::Die(reason.clone())
        } else {
            ExitAction::Ignore
        };
    }
    ExitAction::Die(reason.clone())
}

/// `{:EXIT, from, reason}`
pub fn exit_message(from: Pid, reason: Term) -> Term {
    Term::tuple(vec![Term::Atom(Atom::EXIT), Term::Pid(from), reason])
}

/// `{:DOWN, reference, :process, from, reason}`
pub fn down_message(reference: Ref, from: Pid, reason: Term) -> Term {
    down_message_of(reference, Term::Pid(from), reason)
}

/// `{:DOWN, reference, :process, {name, node}, reason}`: the `DOWN` of a monitor set up
/// by name (OTP names the object as it was monitored, not by the pid it found).
pub fn down_message_named(reference: Ref, name: Atom, node: Atom, reason: Term) -> Term {
    down_message_of(
        reference,
        Term::tuple(vec![Term::Atom(name), Term::Atom(node)]),
        reason,
    )
}

fn down_message_of(reference: Ref, object: Term, reason: Term) -> Term {
    Term::tuple(vec![
        Term::Atom(Atom::DOWN),
        Term::Ref(reference),
        Term::Atom(Atom::PROCESS),
        object,
        reason,
    ])
}

/// The pid a signal to `node` itself, not to one of its processes, is addressed to
/// ([`Signal::MonitorName`], [`Signal::DemonitorName`]): number 0 of creation 0, which
/// no process of any node has.
pub fn node_pid(node: Atom) -> Pid {
    Pid::from_parts(node, 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that records what it is told.
    #[derive(Default)]
    struct Told(parking_lot::Mutex<Vec<String>>);

    impl MessageSource for Told {
        fn malformed(&self, why: String) {
            self.0.lock().push(why);
        }
    }

    fn run_of(source: &Arc<dyn MessageSource>, terms: &[Option<Term>]) -> EncodedMessages {
        let mut run = EncodedMessages::new(source.clone());
        for t in terms {
            match t {
                Some(t) => run.push(&postcard::to_stdvec(t).unwrap()),
                // An unfinished variant tag: does not decode.
                None => run.push(&[0xff, 0xff, 0xff]),
            }
        }
        run
    }

    #[test]
    fn a_run_decodes_in_order_up_to_a_bad_message_told_only_when_reached() {
        let told = Arc::new(Told::default());
        let source: Arc<dyn MessageSource> = told.clone();
        let terms = [Some(Term::Int(1)), None, Some(Term::Int(3))];
        // Directly: the good one, then the bad one as an error (the source is told
        // only by whoever reaches it), then the one after it.
        let mut run = run_of(&source, &terms);
        assert_eq!(run.take_next(), Some(Ok(Term::Int(1))));
        assert_eq!(run.remaining(), 2);
        assert!(matches!(run.take_next(), Some(Err(_))));
        assert!(told.0.lock().is_empty(), "not told before it is reached");
        // Checking what is left of a run tells the source of the first bad one.
        let mut run = run_of(&source, &terms);
        assert_eq!(run.take_next(), Some(Ok(Term::Int(1))));
        run.check_rest();
        assert_eq!(told.0.lock().len(), 1);
        told.0.lock().clear();

        // Through a mailbox: counted one by one, the good one received, the bad one
        // told when the process comes to it, the one after it dropped.
        let node = crate::Node::start(crate::Config {
            name: "encoded@localhost".into(),
            workers: 1,
            ..crate::Config::default()
        });
        let mut me = node.attach();
        let run = Signal::Encoded(Box::new(run_of(&source, &terms)));
        node.deliver_batch(me.pid(), &mut vec![run]);
        assert_eq!(me.message_queue_len(), 3);
        let short = std::time::Duration::from_millis(200);
        assert_eq!(me.receive_timeout(short), Some(Term::Int(1)));
        assert!(
            told.0.lock().is_empty(),
            "told before the process came to it"
        );
        assert_eq!(me.receive_timeout(short), None);
        assert_eq!(told.0.lock().len(), 1);
        assert_eq!(me.message_queue_len(), 0);
        drop(me);
        node.shutdown();
    }

    fn pids() -> (Pid, Pid) {
        let n = Atom::new("sig@test");
        (Pid::from_parts(n, 1, 1), Pid::from_parts(n, 1, 2))
    }

    #[test]
    fn erlang_exit_rules() {
        let (me, other) = pids();
        let normal = Term::Atom(Atom::NORMAL);
        let boom = Term::atom("boom");
        let kill = Term::Atom(Atom::KILL);
        let killed = Term::Atom(Atom::KILLED);
        assert_eq!(
            exit_action(me, false, other, &normal, true, true),
            ExitAction::Ignore
        );
        assert_eq!(
            exit_action(me, false, other, &normal, false, false),
            ExitAction::Ignore
        );
        assert_eq!(
            exit_action(me, false, me, &normal, false, false),
            ExitAction::Die(normal.clone())
        );
        assert_eq!(
            exit_action(me, false, other, &boom, true, true),
            ExitAction::Die(boom.clone())
        );
        assert_eq!(
            exit_action(me, false, other, &boom, true, false),
            ExitAction::Ignore
        );
        assert_eq!(
            exit_action(me, true, other, &boom, true, true),
            ExitAction::Message(exit_message(other, boom.clone()))
        );
        assert_eq!(
            exit_action(me, true, other, &kill, false, false),
            ExitAction::Die(killed.clone())
        );
        assert_eq!(
            exit_action(me, true, other, &kill, true, true),
            ExitAction::Message(exit_message(other, kill.clone()))
        );
        assert_eq!(
            exit_action(me, false, other, &kill, true, true),
            ExitAction::Die(kill)
        );
        assert_eq!(
            exit_action(me, true, other, &normal, true, true),
            ExitAction::Message(exit_message(other, normal))
        );
    }
}
