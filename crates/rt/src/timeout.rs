//! [`Timeout`]: how long to wait, or forever, as Erlang's `timeout()` type.

use std::fmt;
use std::time::Duration;

/// How long a call (or a start) may wait: a duration, or forever.
///
/// The default is 5 s, `gen_server:call/2`'s. Anything that takes `impl Into<Timeout>`
/// takes a [`Duration`] too, and the untyped functions' `Option<Duration>` (`None` being
/// forever) converts both ways:
///
/// ```
/// use std::time::Duration;
/// use oxbeam_rt::Timeout;
///
/// assert_eq!(Timeout::default(), Timeout::secs(5));
/// assert_eq!(Timeout::from(Duration::from_millis(250)), Timeout::ms(250));
/// assert_eq!(Option::<Duration>::from(Timeout::Infinity), None);
/// assert_eq!(Timeout::ms(1500).as_duration(), Some(Duration::from_millis(1500)));
/// assert_eq!(Timeout::from(None), Timeout::Infinity);
/// ```
///
/// Not `#[non_exhaustive]`: like Erlang's `timeout()`, it is a duration or `infinity`
/// and nothing else, so a `match` on it may list both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timeout {
    /// Wait as long as it takes (`infinity`).
    Infinity,
    /// Wait at most this long.
    After(Duration),
}

impl Timeout {
    /// The default, 5 s (OTP's `gen_server:call/2`).
    pub const DEFAULT: Timeout = Timeout::After(Duration::from_secs(5));

    /// At most `ms` milliseconds.
    pub const fn ms(ms: u64) -> Timeout {
        Timeout::After(Duration::from_millis(ms))
    }

    /// At most `secs` seconds.
    pub const fn secs(secs: u64) -> Timeout {
        Timeout::After(Duration::from_secs(secs))
    }

    /// The duration, `None` for [`Timeout::Infinity`] (what the untyped functions such
    /// as [`gen_server::call`](crate::gen_server::call) take).
    pub const fn as_duration(self) -> Option<Duration> {
        match self {
            Timeout::Infinity => None,
            Timeout::After(d) => Some(d),
        }
    }
}

impl Default for Timeout {
    fn default() -> Timeout {
        Timeout::DEFAULT
    }
}

impl From<Duration> for Timeout {
    fn from(d: Duration) -> Timeout {
        Timeout::After(d)
    }
}

/// `None` is [`Timeout::Infinity`], as in the untyped functions.
impl From<Option<Duration>> for Timeout {
    fn from(d: Option<Duration>) -> Timeout {
        d.map_or(Timeout::Infinity, Timeout::After)
    }
}

impl From<Timeout> for Option<Duration> {
    fn from(t: Timeout) -> Option<Duration> {
        t.as_duration()
    }
}

/// `infinity`, or the duration as [`Duration`]'s `Debug` writes it (`5s`, `250ms`).
impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Timeout::Infinity => f.write_str("infinity"),
            Timeout::After(d) => write!(f, "{d:?}"),
        }
    }
}
