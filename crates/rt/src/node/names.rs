//! The node's names: its registry of local names, the seam to the cluster-wide one
//! (global), and the extensions the layers above hang off the node.

use std::any::{Any, TypeId};
use std::sync::Arc;

use super::{GlobalNamesSeam, Node};
use crate::Dest;
use crate::errors::RegisterError;
use crate::term::{Atom, Pid, Term};

impl Node {
    /// Registers `pid` (a live local process with no name) under `name`.
    pub fn register(&self, name: Atom, pid: Pid) -> Result<(), RegisterError> {
        if name == Atom::UNDEFINED {
            return Err(RegisterError::Undefined);
        }
        if !self.is_local(pid) {
            return Err(RegisterError::NotLocal(pid));
        }
        let mut reg = self.0.registry.lock();
        if let Some(&holder) = reg.get(&name) {
            return Err(RegisterError::NameTaken { name, holder });
        }
        let Some(cell) = self.0.processes.get(pid.id()) else {
            return Err(RegisterError::NotAlive(pid));
        };
        let mut st = cell.mailbox.lock();
        if st.closed {
            return Err(RegisterError::NotAlive(pid));
        }
        if let Some(name) = st.name {
            return Err(RegisterError::AlreadyNamed { pid, name });
        }
        st.name = Some(name);
        reg.insert(name, pid);
        Ok(())
    }

    /// Removes a registered name; returns whether it was registered.
    pub fn unregister(&self, name: Atom) -> bool {
        let Some(pid) = self.0.registry.lock().remove(&name) else {
            return false;
        };
        if let Some(cell) = self.0.processes.get(pid.id()) {
            let mut st = cell.mailbox.lock();
            if st.name == Some(name) {
                st.name = None;
            }
        }
        true
    }

    /// The pid registered under `name`.
    pub fn whereis(&self, name: Atom) -> Option<Pid> {
        self.0.registry.lock().get(&name).copied()
    }

    /// Every registered name.
    pub fn registered(&self) -> Vec<Atom> {
        self.0.registry.lock().keys().copied().collect()
    }

    /// The name `pid` is registered under, if any.
    pub fn registered_name(&self, pid: Pid) -> Option<Atom> {
        self.is_local(pid)
            .then(|| self.0.processes.get(pid.id()))
            .flatten()
            .and_then(|c| c.mailbox.lock().name)
    }

    /// Installs the cluster-wide name registry [`Dest::Global`] resolves through
    /// (`dist::global` does, as it starts).
    pub fn set_global_names(&self, names: Arc<dyn crate::GlobalNames>) {
        self.set_extension(Arc::new(GlobalNamesSeam(names)));
    }

    /// The pid registered cluster-wide as `name` (`None` without a registry).
    pub fn whereis_global(&self, name: &Term) -> Option<Pid> {
        self.extension::<GlobalNamesSeam>()?.0.whereis(name)
    }

    /// Where `dest` points now: the pid for a pid, a local name or a global one;
    /// `None` when the name is not registered, or for a name on another node.
    pub fn resolve(&self, dest: &Dest) -> Option<Pid> {
        match *dest {
            Dest::Pid(p) => Some(p),
            Dest::Name(n) => self.whereis(n),
            Dest::NameAt(n, at) if at == self.name() => self.whereis(n),
            Dest::NameAt(..) => None,
            Dest::Global(ref n) => self.whereis_global(n),
        }
    }

    /// Attaches a service to this node (one per type), so code holding the node (a
    /// process's `ctx.node()`) can reach it: how the layers above `rt` (distribution,
    /// cluster services) hang their state off the node without statics.
    pub fn set_extension<T: Any + Send + Sync>(&self, value: Arc<T>) {
        self.0.extensions.write().insert(TypeId::of::<T>(), value);
    }

    /// The service of type `T` attached to this node.
    pub fn extension<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let any = self.0.extensions.read().get(&TypeId::of::<T>()).cloned()?;
        any.downcast::<T>().ok()
    }

    /// The service of type `T` attached to this node, attaching `make()`'s first if there
    /// is none (atomically: two first callers get the same one).
    pub fn extension_or_insert_with<T: Any + Send + Sync>(
        &self,
        make: impl FnOnce() -> Arc<T>,
    ) -> Arc<T> {
        if let Some(found) = self.extension::<T>() {
            return found;
        }
        let mut all = self.0.extensions.write();
        let any = all
            .entry(TypeId::of::<T>())
            .or_insert_with(|| make())
            .clone();
        drop(all);
        any.downcast::<T>()
            .expect("the extension stored under T's TypeId is a T")
    }

    /// Detaches the service of type `T`.
    pub fn remove_extension<T: Any + Send + Sync>(&self) {
        self.0.extensions.write().remove(&TypeId::of::<T>());
    }
}
