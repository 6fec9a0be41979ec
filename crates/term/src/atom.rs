//! Interned atoms.
//!
//! Atoms are interned in one table per OS process, as the BEAM interns them per VM: an atom
//! is a `u32` index, so comparing and hashing atoms is an integer operation. The table is
//! not node state (two nodes in one process agree on what `:ok` is); it only ever grows, so
//! it is bounded like the BEAM's: at most [`MAX_ATOMS`] atoms of at most
//! [`MAX_ATOM_LEN`] bytes. Code that interns untrusted input (the codec) uses
//! [`Atom::try_new`] and turns a full table into an error instead of a panic.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use parking_lot::RwLock;

/// The most atoms one OS process interns (the BEAM's default limit).
pub const MAX_ATOMS: usize = 1 << 20;
/// The longest atom, in bytes (the BEAM allows 255 characters).
pub const MAX_ATOM_LEN: usize = 1020;

/// An interned atom such as `:ok` or `:node1@localhost`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Atom(u32);

/// Why an atom could not be interned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AtomError {
    /// The text is longer than [`MAX_ATOM_LEN`] bytes.
    TooLong(usize),
    /// The atom table already holds [`MAX_ATOMS`] atoms.
    TableFull,
}

impl fmt::Display for AtomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AtomError::TooLong(n) => write!(f, "atom of {n} bytes exceeds {MAX_ATOM_LEN}"),
            AtomError::TableFull => write!(f, "atom table full ({MAX_ATOMS} atoms)"),
        }
    }
}

impl std::error::Error for AtomError {}

struct AtomTable {
    by_name: HashMap<&'static str, u32>,
    len: usize,
}

const CHUNK: usize = 1024;
type NameChunk = [OnceLock<&'static str>; CHUNK];

/// Atom texts by index, readable without a lock: chunks of 1024 slots allocated on
/// demand, each slot written once (under the table's write lock) before its index is
/// handed out. A static array, so `as_str` follows two pointers (chunk, slot); the
/// predefined atoms are read from `PREDEFINED` itself.
static NAMES: [OnceLock<Box<NameChunk>>; MAX_ATOMS / CHUNK] =
    [const { OnceLock::new() }; MAX_ATOMS / CHUNK];

fn store_name(i: usize, name: &'static str) {
    let chunk = NAMES[i / CHUNK].get_or_init(|| Box::new(std::array::from_fn(|_| OnceLock::new())));
    let _ = chunk[i % CHUNK].set(name);
}

macro_rules! predefined_atoms {
    ($($konst:ident = $text:expr),* $(,)?) => {
        const PREDEFINED: &[&str] = &[$($text),*];
        #[allow(missing_docs)]
        impl Atom {
            predefined_atoms!(@consts 0u32; $($konst)*);
        }
    };
    (@consts $n:expr; $konst:ident $($rest:ident)*) => {
        #[doc = concat!("The predefined atom `", stringify!($konst), "`.")]
        pub const $konst: Atom = Atom($n);
        predefined_atoms!(@consts $n + 1u32; $($rest)*);
    };
    (@consts $n:expr;) => {};
}

predefined_atoms! {
    OK = "ok",
    ERROR = "error",
    TRUE = "true",
    FALSE = "false",
    NIL = "nil",
    UNDEFINED = "undefined",
    NORMAL = "normal",
    KILL = "kill",
    KILLED = "killed",
    SHUTDOWN = "shutdown",
    NOPROC = "noproc",
    NOCONNECTION = "noconnection",
    EXIT = "EXIT",
    DOWN = "DOWN",
    PROCESS = "process",
    TIMEOUT = "timeout",
    PANIC = "panic",
    NONODE = "nonode@nohost",
    GEN_CALL = "$gen_call",
    GEN_CAST = "$gen_cast",
    BADARG = "badarg",
    WILDCARD = "_",
    CALLING_SELF = "calling_self",
    YES = "yes",
    NO = "no",
}

fn table() -> &'static RwLock<AtomTable> {
    static TABLE: OnceLock<RwLock<AtomTable>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = AtomTable {
            by_name: HashMap::new(),
            len: 0,
        };
        for name in PREDEFINED {
            store_name(t.len, name);
            t.by_name.insert(name, t.len as u32);
            t.len += 1;
        }
        RwLock::new(t)
    })
}

impl Atom {
    /// Interns `name`. Panics only if the atom table is full or the name too long, which
    /// trusted program text never hits; use [`Atom::try_new`] for input from outside.
    pub fn new(name: &str) -> Atom {
        Atom::try_new(name).unwrap_or_else(|e| panic!("cannot intern atom: {e}"))
    }

    /// Interns `name`, or says why it cannot.
    pub fn try_new(name: &str) -> Result<Atom, AtomError> {
        if name.len() > MAX_ATOM_LEN {
            return Err(AtomError::TooLong(name.len()));
        }
        // Decoding looks up the same few atoms over and over: a per-thread direct-mapped
        // cache answers those without the table's lock and its (DoS-resistant, slower)
        // hash. A slot is only a hint: the name is compared before it is trusted.
        let slot = (fnv1a(name.as_bytes()) as usize) % RECENT;
        let hint = RECENT_ATOMS.with(|r| r[slot].get());
        if hint != u32::MAX && Atom(hint).as_str() == name {
            return Ok(Atom(hint));
        }
        let found = table().read().by_name.get(name).copied();
        if let Some(i) = found {
            RECENT_ATOMS.with(|r| r[slot].set(i));
            return Ok(Atom(i));
        }
        let mut t = table().write();
        if let Some(&i) = t.by_name.get(name) {
            return Ok(Atom(i));
        }
        if t.len >= MAX_ATOMS {
            return Err(AtomError::TableFull);
        }
        // Interned atoms live as long as the process, as on the BEAM; the table is bounded.
        let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
        let i = t.len;
        store_name(i, leaked);
        t.len += 1;
        t.by_name.insert(leaked, i as u32);
        Ok(Atom(i as u32))
    }

    /// The atom's text.
    pub fn as_str(self) -> &'static str {
        // Every Atom value is predefined (a constant: its text is in `PREDEFINED`) or
        // was made by `try_new`, which stored its text first.
        let i = self.0 as usize;
        if let Some(name) = PREDEFINED.get(i) {
            return name;
        }
        NAMES[i / CHUNK]
            .get()
            .and_then(|c| c[i % CHUNK].get())
            .copied()
            .unwrap_or("")
    }

    /// The atom's index in the table (stable within one OS process only).
    pub fn index(self) -> u32 {
        self.0
    }

    /// Whether the atom is a valid boolean (`true` or `false`).
    pub fn is_bool(self) -> bool {
        self == Atom::TRUE || self == Atom::FALSE
    }
}

impl PartialOrd for Atom {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Atoms order alphabetically, as in Erlang's term order.
impl Ord for Atom {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if self.0 == other.0 {
            return std::cmp::Ordering::Equal;
        }
        self.as_str().cmp(other.as_str())
    }
}

impl fmt::Debug for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Elixir's inspect form: `:ok`, `:node1@localhost`, `:"a b"`.
impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.as_str();
        if let Some(alias) = elixir_alias(s) {
            f.write_str(alias)
        } else if needs_quotes(s) {
            write!(f, ":\"{}\"", s.escape_default())
        } else {
            write!(f, ":{s}")
        }
    }
}

/// `Elixir.Kernel` is the module alias `Kernel`, and prints so (as iex does).
fn elixir_alias(s: &str) -> Option<&str> {
    let rest = s.strip_prefix("Elixir.")?;
    let ok = !rest.is_empty()
        && rest.split('.').all(|seg| {
            seg.starts_with(|c: char| c.is_ascii_uppercase())
                && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    ok.then_some(rest)
}

/// Slots of the per-thread cache of recently interned atoms.
const RECENT: usize = 64;

thread_local! {
    static RECENT_ATOMS: [std::cell::Cell<u32>; RECENT] =
        const { [const { std::cell::Cell::new(u32::MAX) }; RECENT] };
}

/// FNV-1a: a cheap hash to pick a cache slot (never trusted on its own).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Whether an atom must be written quoted (`:"a b"`) in Elixir syntax.
pub fn needs_quotes(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return true;
    };
    if !(first.is_ascii_alphabetic() || first == '_') {
        return true;
    }
    let body = s.strip_suffix(['?', '!']).unwrap_or(s);
    !body
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@')
}

impl From<&str> for Atom {
    fn from(s: &str) -> Atom {
        Atom::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_predefined_atoms_match() {
        assert_eq!(Atom::new("ok"), Atom::OK);
        assert_eq!(Atom::new("hello"), Atom::new("hello"));
        assert_ne!(Atom::new("hello"), Atom::new("world"));
        assert_eq!(Atom::new("EXIT").as_str(), "EXIT");
    }

    #[test]
    fn atoms_order_alphabetically_and_display_like_elixir() {
        assert!(Atom::new("zebra") > Atom::new("apple"));
        assert_eq!(Atom::new("node1@localhost").to_string(), ":node1@localhost");
        assert_eq!(Atom::new("a b").to_string(), ":\"a b\"");
        assert_eq!(Atom::new("ok?").to_string(), ":ok?");
        assert_eq!(Atom::new("EXIT").to_string(), ":EXIT");
        assert_eq!(Atom::new("").to_string(), ":\"\"");
    }

    #[test]
    fn overlong_atoms_are_refused() {
        let long = "x".repeat(MAX_ATOM_LEN + 1);
        assert_eq!(
            Atom::try_new(&long),
            Err(AtomError::TooLong(MAX_ATOM_LEN + 1))
        );
    }
}
