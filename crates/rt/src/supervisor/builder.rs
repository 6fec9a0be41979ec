//! [`Supervisor::builder`]: a supervisor put together step by step, and
//! [`Supervisor`], the handle to a running one.

use std::time::Duration;

use super::{ChildError, ChildSpec, Shutdown, Strategy, SupervisorSpec, supervisor_of};
use crate::gen_server::{self, CallError, StartOpts};
use crate::server::{self, Server, StartError};
use crate::term::{Atom, Pid, Term};
use crate::{Ctx, Dest, Node, Timeout};

/// A handle to a running supervisor (a pid or a name, as [`Dest`]), with the
/// [`supervisor`](super) functions as methods; [`Supervisor::builder`] starts one.
///
/// ```
/// use std::time::Duration;
/// use oxbeam_rt::{ChildSpec, Ctx, Node, Reply, ReplyTo, Server, ServerRef, Strategy};
/// use oxbeam_rt::{Supervisor, Timeout};
///
/// /// Counts the calls it gets.
/// #[derive(Default)]
/// struct Hits(u64);
///
/// impl Server for Hits {
///     type Call = ();
///     type Reply = u64;
///     type Cast = ();
///
///     fn handle_call(&mut self, _: &mut Ctx, _: (), _: ReplyTo) -> Reply<u64> {
///         self.0 += 1;
///         Reply::Now(self.0)
///     }
/// }
///
/// let node = Node::local();
/// let mut me = node.attach();
/// let sup = Supervisor::builder()
///     .strategy(Strategy::OneForOne)
///     .intensity(3, Duration::from_secs(5))
///     .child(ChildSpec::server("hits", Hits::default))
///     .start(&node)
///     .unwrap();
/// let hits = ServerRef::<Hits>::named("hits");
/// assert_eq!(hits.call(&mut me, (), Timeout::default()), Ok(1));
/// assert_eq!(sup.which_children(&mut me).unwrap().len(), 1);
/// sup.stop(&mut me, Timeout::default()).unwrap();
/// drop(me);
/// node.shutdown();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Supervisor {
    dest: Dest,
}

impl Supervisor {
    /// A builder with OTP's defaults: `OneForOne`, 3 restarts in 5 s, no children, no
    /// name, a 5 s start timeout.
    pub fn builder() -> SupervisorBuilder {
        SupervisorBuilder {
            spec: SupervisorSpec::new(Strategy::OneForOne, Vec::new()),
            name: None,
            timeout: Timeout::default(),
        }
    }

    /// A handle to the supervisor at `dest`.
    pub fn new(dest: impl Into<Dest>) -> Supervisor {
        Supervisor { dest: dest.into() }
    }

    /// A handle to the supervisor registered as `name` on this node.
    pub fn named(name: impl Into<Atom>) -> Supervisor {
        Supervisor::new(Dest::Name(name.into()))
    }

    /// Where the handle points.
    pub fn dest(&self) -> &Dest {
        &self.dest
    }

    /// The pid, for a handle by pid (as [`start`](SupervisorBuilder::start) returns).
    pub fn pid(&self) -> Option<Pid> {
        self.dest.pid()
    }

    /// Each child's id and pid (`None` when not running), in start order
    /// ([`which_children`](super::which_children)).
    pub fn which_children(&self, ctx: &mut Ctx) -> Result<Vec<(Term, Option<Pid>)>, CallError> {
        super::which_children(ctx, &self.dest)
    }

    /// Adds and starts a child ([`start_child`](super::start_child)).
    pub fn start_child(&self, ctx: &mut Ctx, spec: ChildSpec) -> Result<Pid, ChildError> {
        super::start_child(ctx, &self.dest, spec)
    }

    /// Stops a child ([`terminate_child`](super::terminate_child)).
    pub fn terminate_child(&self, ctx: &mut Ctx, id: impl Into<Term>) -> Result<(), ChildError> {
        super::terminate_child(ctx, &self.dest, id)
    }

    /// Starts a stopped child again ([`restart_child`](super::restart_child)).
    pub fn restart_child(&self, ctx: &mut Ctx, id: impl Into<Term>) -> Result<Pid, ChildError> {
        super::restart_child(ctx, &self.dest, id)
    }

    /// Removes a stopped child's spec ([`delete_child`](super::delete_child)).
    pub fn delete_child(&self, ctx: &mut Ctx, id: impl Into<Term>) -> Result<(), ChildError> {
        super::delete_child(ctx, &self.dest, id)
    }

    /// Stops the supervisor (its children first, in reverse start order) with reason
    /// `shutdown`, and waits up to `timeout` for it to exit.
    pub fn stop(&self, ctx: &mut Ctx, timeout: impl Into<Timeout>) -> Result<(), CallError> {
        gen_server::stop(
            ctx,
            &self.dest,
            Term::Atom(Atom::SHUTDOWN),
            timeout.into().as_duration(),
        )
    }
}

impl From<Supervisor> for Dest {
    fn from(s: Supervisor) -> Dest {
        s.dest
    }
}

/// A supervisor being put together: strategy, restart intensity, children, name (from
/// [`Supervisor::builder`]; it is a [`SupervisorSpec`] plus how to start it).
#[derive(Clone)]
pub struct SupervisorBuilder {
    spec: SupervisorSpec,
    name: Option<Atom>,
    timeout: Timeout,
}

impl SupervisorBuilder {
    /// Which children restart when one exits.
    pub fn strategy(mut self, strategy: Strategy) -> SupervisorBuilder {
        self.spec.strategy = strategy;
        self
    }

    /// At most `restarts` restarts within `period`; one more and the supervisor stops
    /// its children and exits with `shutdown`.
    pub fn intensity(mut self, restarts: u32, period: Duration) -> SupervisorBuilder {
        self.spec.intensity = restarts;
        self.spec.period = period;
        self
    }

    /// Adds a child (children start in the order they are added).
    pub fn child(mut self, child: ChildSpec) -> SupervisorBuilder {
        self.spec.children.push(child);
        self
    }

    /// Adds children.
    pub fn children(mut self, children: impl IntoIterator<Item = ChildSpec>) -> SupervisorBuilder {
        self.spec.children.extend(children);
        self
    }

    /// Registers the supervisor locally as `name`.
    pub fn name(mut self, name: impl Into<Atom>) -> SupervisorBuilder {
        self.name = Some(name.into());
        self
    }

    /// How long starting may take, children included (default 5 s).
    pub fn start_timeout(mut self, timeout: impl Into<Timeout>) -> SupervisorBuilder {
        self.timeout = timeout.into();
        self
    }

    /// The spec built so far (for [`supervisor::start_link`](super::start_link)).
    pub fn spec(&self) -> &SupervisorSpec {
        &self.spec
    }

    /// The spec built so far, by value.
    pub fn into_spec(self) -> SupervisorSpec {
        self.spec
    }

    fn opts(&self, link: bool) -> StartOpts {
        StartOpts {
            name: self.name,
            link,
            timeout: self.timeout.as_duration(),
            never_blocks: false,
        }
    }

    /// Starts the supervisor linked to the calling process (usually its own supervisor)
    /// and waits for its children to start.
    pub fn start_link(self, ctx: &mut Ctx) -> Result<Supervisor, StartError> {
        let opts = self.opts(true);
        gen_server::start_opts(ctx, supervisor_of(self.spec), opts).map(Supervisor::new)
    }

    /// Starts an unlinked supervisor from outside any process and waits for its
    /// children to start.
    pub fn start(self, node: &Node) -> Result<Supervisor, StartError> {
        let opts = self.opts(false);
        gen_server::start_from(node, supervisor_of(self.spec), opts).map(Supervisor::new)
    }
}

impl ChildSpec {
    /// A permanent typed [`Server`] made by `make` (called at each start), registered
    /// as `name`, which is also its id: a [`ServerRef::named`](crate::ServerRef::named)
    /// handle reaches each incarnation in turn.
    pub fn server<S: Server>(
        name: impl Into<Atom>,
        make: impl Fn() -> S + Send + Sync + 'static,
    ) -> ChildSpec {
        let name = name.into();
        ChildSpec::new(name, move |ctx: &mut Ctx| {
            let opts = StartOpts {
                link: true,
                ..StartOpts::named(name)
            };
            server::start_pid(ctx, make(), opts).map_err(|e| e.reason())
        })
    }

    /// A child supervisor started from `builder`, with id `id` and an infinite
    /// shutdown (it stops its own children first, however long that takes).
    pub fn supervisor(id: impl Into<Term>, builder: SupervisorBuilder) -> ChildSpec {
        ChildSpec::new(id, move |ctx: &mut Ctx| {
            builder
                .clone()
                .start_link(ctx)
                .map(|s| s.pid().expect("a started supervisor's handle is its pid"))
                .map_err(|e| e.reason())
        })
        .shutdown(Shutdown::Infinity)
    }
}
