//! A map that holds one entry without allocating.
//!
//! Most processes have at most one link (to their supervisor or parent) and at most one
//! watcher (the `spawn_monitor` caller, or a caller of a server for the length of a
//! call). A `HashMap` allocates for its first entry; spawning and ending such a process
//! would pay for that allocation and its free, often on another thread. [`Few`] keeps a
//! single entry inline and becomes a map from the second on.

use std::collections::HashMap;
use std::hash::Hash;

use super::process::IdBuild;

/// A map of `K` to `V` (see the module docs). Iteration order is unspecified.
#[derive(Debug, Default)]
pub(crate) enum Few<K, V> {
    #[default]
    Empty,
    One(K, V),
    Many(HashMap<K, V, IdBuild>),
}

impl<K: Eq + Hash, V> Few<K, V> {
    /// Inserts; returns the value `k` had before, if any.
    pub(crate) fn insert(&mut self, k: K, v: V) -> Option<V> {
        let (next, old) = match std::mem::take(self) {
            Few::Empty => (Few::One(k, v), None),
            Few::One(k0, v0) if k0 == k => (Few::One(k0, v), Some(v0)),
            Few::One(k0, v0) => {
                let mut m = HashMap::default();
                m.insert(k0, v0);
                m.insert(k, v);
                (Few::Many(m), None)
            }
            Few::Many(mut m) => {
                let old = m.insert(k, v);
                (Few::Many(m), old)
            }
        };
        *self = next;
        old
    }

    /// Removes `k`; returns its value, if it was there.
    pub(crate) fn remove(&mut self, k: &K) -> Option<V> {
        match self {
            Few::One(k0, _) if k0 == k => match std::mem::take(self) {
                Few::One(_, v) => Some(v),
                _ => None,
            },
            Few::Many(m) => m.remove(k),
            _ => None,
        }
    }

    /// Whether `k` is there.
    pub(crate) fn contains_key(&self, k: &K) -> bool {
        match self {
            Few::Empty => false,
            Few::One(k0, _) => k0 == k,
            Few::Many(m) => m.contains_key(k),
        }
    }

    /// Every entry.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        let (one, many) = match self {
            Few::Empty => (None, None),
            Few::One(k, v) => (Some((k, v)), None),
            Few::Many(m) => (None, Some(m.iter())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    /// Every key.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &K> {
        self.iter().map(|(k, _)| k)
    }

    /// Every value.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }

    /// Takes every entry out, leaving the map empty.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (K, V)> + use<K, V> {
        let (one, many) = match std::mem::take(self) {
            Few::Empty => (None, None),
            Few::One(k, v) => (Some((k, v)), None),
            Few::Many(m) => (None, Some(m.into_iter())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

/// A set of `K` kept as a [`Few`].
#[derive(Debug)]
pub(crate) struct FewSet<K>(Few<K, ()>);

impl<K> Default for FewSet<K> {
    fn default() -> Self {
        FewSet(Few::Empty)
    }
}

impl<K: Eq + Hash> FewSet<K> {
    /// Adds `k`; true if it was not there.
    pub(crate) fn insert(&mut self, k: K) -> bool {
        self.0.insert(k, ()).is_none()
    }

    /// Removes `k`; true if it was there.
    pub(crate) fn remove(&mut self, k: &K) -> bool {
        self.0.remove(k).is_some()
    }

    /// Whether `k` is there.
    pub(crate) fn contains(&self, k: &K) -> bool {
        self.0.contains_key(k)
    }

    /// Every element.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &K> {
        self.0.keys()
    }

    /// Takes every element out.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = K> + use<K> {
        self.0.drain().map(|(k, ())| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_map_through_every_shape() {
        let mut f: Few<u64, u32> = Few::default();
        assert_eq!(f.iter().count(), 0);
        assert_eq!(f.remove(&1), None);
        assert_eq!(f.insert(1, 10), None);
        assert!(matches!(f, Few::One(..)), "one entry is kept inline");
        assert_eq!(f.insert(1, 11), Some(10));
        assert!(f.contains_key(&1) && !f.contains_key(&2));
        assert_eq!(f.insert(2, 20), None);
        assert_eq!(f.insert(3, 30), None);
        assert_eq!(f.iter().count(), 3);
        let mut seen: Vec<_> = f.iter().map(|(k, v)| (*k, *v)).collect();
        seen.sort();
        assert_eq!(seen, vec![(1, 11), (2, 20), (3, 30)]);
        assert_eq!(f.remove(&2), Some(20));
        assert_eq!(f.remove(&2), None);
        let mut keys: Vec<_> = f.keys().copied().collect();
        keys.sort();
        assert_eq!(keys, vec![1, 3]);
        let mut drained: Vec<_> = f.drain().collect();
        drained.sort();
        assert_eq!(drained, vec![(1, 11), (3, 30)]);
        assert_eq!(f.iter().count(), 0);
        f.insert(5, 50);
        assert_eq!(f.values().copied().collect::<Vec<_>>(), vec![50]);
        assert_eq!(f.remove(&5), Some(50));
        assert!(matches!(f, Few::Empty));
    }
}
