//! Where a node's cookie comes from.
//!
//! Nodes authenticate each other with a shared secret, the cookie (see
//! [`handshake`](super::handshake)). [`resolve_cookie`] picks it, first found wins:
//!
//! 1. the node's configuration;
//! 2. the environment variable [`COOKIE_ENV`] (`OXBEAM_COOKIE`);
//! 3. the cookie file, [`cookie_file_path`] (`$HOME/.oxbeam.cookie`), created on first use
//!    with 20 random uppercase letters, readable and writable by its owner only (0600).
//!
//! An empty cookie is an error wherever it comes from: it would authenticate anyone who
//! also forgot to set one.
//!
//! Two nodes starting at once may both find the file missing. It is created with
//! `create_new` (`O_CREAT | O_EXCL`), so exactly one of them creates and writes it; the
//! other gets "already exists" and reads the winner's cookie. Because the winner writes
//! just after creating, the loser may briefly see an empty file; it re-reads for up to
//! [`EMPTY_FILE_GRACE`] before calling the file empty. A file left empty for longer (a node
//! that crashed between creating and writing it) is an error naming the file.
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::TryRng;
use rand::rngs::SysRng;

/// The environment variable that sets the cookie when the configuration does not.
pub const COOKIE_ENV: &str = "OXBEAM_COOKIE";

/// The cookie file's name in the home directory.
pub const COOKIE_FILE_NAME: &str = ".oxbeam.cookie";

/// The length of a generated cookie, in uppercase letters.
pub const GENERATED_COOKIE_LEN: usize = 20;

/// How long a reader waits for a cookie file that another node has just created to be
/// written (see the module docs).
pub const EMPTY_FILE_GRACE: Duration = Duration::from_millis(500);

/// The cookie file's path, `$HOME/.oxbeam.cookie`; `None` if `HOME` is unset or empty.
pub fn cookie_file_path() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    if home.is_empty() {
        return None;
    }
    Some(PathBuf::from(home).join(COOKIE_FILE_NAME))
}

/// The node's cookie: `config` if given, else the environment variable [`COOKIE_ENV`],
/// else the cookie file (created when missing; see [`read_or_create`]).
///
/// Errors: an empty cookie from any source (`InvalidInput`, or `InvalidData` for an empty
/// file), a non-UTF-8 environment value, no `HOME` to find the file in (`NotFound`), and
/// any I/O error on the file, with the path in the message.
pub fn resolve_cookie(config: Option<&str>) -> io::Result<String> {
    resolve_from(config, std::env::var_os(COOKIE_ENV), cookie_file_path)
}

/// [`resolve_cookie`] with its inputs given, so the order is testable without touching
/// the process environment. `file_path` is only called when the file is needed.
fn resolve_from(
    config: Option<&str>,
    env: Option<std::ffi::OsString>,
    file_path: impl FnOnce() -> Option<PathBuf>,
) -> io::Result<String> {
    if let Some(cookie) = config {
        return non_empty(cookie.to_owned(), "the configured cookie");
    }
    if let Some(value) = env {
        let cookie = value.into_string().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{COOKIE_ENV} is not valid UTF-8"),
            )
        })?;
        return non_empty(cookie, COOKIE_ENV);
    }
    let path = file_path().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("HOME is not set, so there is no cookie file: configure a cookie or set {COOKIE_ENV}"),
        )
    })?;
    read_or_create(&path)
}

fn non_empty(cookie: String, source: &str) -> io::Result<String> {
    if cookie.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{source} is empty"),
        ));
    }
    check(&cookie)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{source}: {e}")))?;
    Ok(cookie)
}

/// The most bytes a cookie may have: HMAC-SHA256 hashes keys longer than its 64-byte
/// block, so a longer cookie would be equivalent to its own hash.
pub const MAX_COOKIE_LEN: usize = 64;

/// Whether `cookie` can be used: not empty, at most [`MAX_COOKIE_LEN`] bytes, and no NUL
/// byte (HMAC pads short keys with zeros, so `secret` and `secret\0` would be the same
/// cookie; found by fuzzing the handshake).
pub fn check(cookie: &str) -> Result<(), CookieError> {
    if cookie.is_empty() {
        return Err(CookieError::Empty);
    }
    if cookie.len() > MAX_COOKIE_LEN {
        return Err(CookieError::TooLong { len: cookie.len() });
    }
    if cookie.contains('\0') {
        return Err(CookieError::Nul);
    }
    Ok(())
}

/// Why a cookie cannot be used ([`check`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CookieError {
    /// It is empty.
    Empty,
    /// It has more than [`MAX_COOKIE_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// It contains a NUL byte.
    Nul,
}

impl std::fmt::Display for CookieError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CookieError::Empty => f.write_str("a cookie cannot be empty"),
            CookieError::TooLong { len } => write!(
                f,
                "a cookie has at most {MAX_COOKIE_LEN} bytes (this one has {len})"
            ),
            CookieError::Nul => f.write_str("a cookie cannot contain a NUL byte"),
        }
    }
}

impl std::error::Error for CookieError {}

/// Reads the cookie file at `path`, creating it first if it does not exist.
///
/// A new file gets [`GENERATED_COOKIE_LEN`] random uppercase letters (from the OS RNG)
/// and mode 0600. An existing file's content is the cookie, trailing whitespace (such as
/// the newline an editor adds) trimmed; a file that group or others can access is used
/// but logged with `warn`. An empty file, or one that is not UTF-8, is an `InvalidData`
/// error. All errors name the path.
pub fn read_or_create(path: &Path) -> io::Result<String> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            let written = generate_cookie().and_then(|cookie| {
                file.write_all(cookie.as_bytes())?;
                file.sync_all()?;
                Ok(cookie)
            });
            match written {
                Ok(cookie) => {
                    log::info!("created cookie file {}", path.display());
                    Ok(cookie)
                }
                Err(e) => {
                    // We created the file, so removing it cannot delete another node's
                    // cookie; leaving it empty would fail every later start.
                    let _ = fs::remove_file(path);
                    Err(with_path(e, "writing", path))
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_existing(path),
        Err(e) => Err(with_path(e, "creating", path)),
    }
}

fn read_existing(path: &Path) -> io::Result<String> {
    let deadline = Instant::now() + EMPTY_FILE_GRACE;
    loop {
        let bytes = fs::read(path).map_err(|e| with_path(e, "reading", path))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("cookie file {} is not UTF-8", path.display()),
            )
        })?;
        let cookie = text.trim_end();
        if !cookie.is_empty() {
            check(cookie).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("cookie file {}: {e}", path.display()),
                )
            })?;
            warn_if_shared(path);
            return Ok(cookie.to_owned());
        }
        // Possibly another node has created the file and not yet written it.
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "cookie file {} is empty: write a cookie into it or delete it",
                    path.display()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn warn_if_shared(path: &Path) {
    match fs::metadata(path) {
        Ok(meta) => {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                log::warn!(
                    "cookie file {} has mode {:o}: group or others can access it (chmod 600 it)",
                    path.display(),
                    mode & 0o777
                );
            }
        }
        Err(e) => log::warn!(
            "cannot check the permissions of cookie file {}: {e}",
            path.display()
        ),
    }
}

fn with_path(e: io::Error, doing: &str, path: &Path) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("{doing} cookie file {}: {e}", path.display()),
    )
}

/// [`GENERATED_COOKIE_LEN`] uniformly random letters `A`-`Z` from the OS RNG.
fn generate_cookie() -> io::Result<String> {
    let mut cookie = String::with_capacity(GENERATED_COOKIE_LEN);
    let mut buf = [0u8; 64];
    while cookie.len() < GENERATED_COOKIE_LEN {
        SysRng
            .try_fill_bytes(&mut buf)
            .map_err(|e| io::Error::other(format!("OS RNG failed: {e}")))?;
        // 234 = 9 * 26: rejecting the bytes above keeps every letter equally likely.
        for b in buf.iter().filter(|&&b| b < 234) {
            if cookie.len() < GENERATED_COOKIE_LEN {
                cookie.push(char::from(b'A' + b % 26));
            }
        }
    }
    Ok(cookie)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_that_hmac_would_confuse_are_refused() {
        assert!(check("secret").is_ok());
        assert!(check("").is_err());
        assert_eq!(check("secret\0"), Err(CookieError::Nul));
        assert!(check(&"x".repeat(MAX_COOKIE_LEN)).is_ok());
        assert!(check(&"x".repeat(MAX_COOKIE_LEN + 1)).is_err());
        assert!(resolve_from(Some("a\0"), None, || None).is_err());
    }
    use std::sync::{Arc, Barrier};

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let mut nonce = [0u8; 8];
            SysRng.try_fill_bytes(&mut nonce).expect("OS RNG");
            let name = format!(
                "oxbeam-cookie-{tag}-{}-{:016x}",
                std::process::id(),
                u64::from_be_bytes(nonce)
            );
            let dir = std::env::temp_dir().join(name);
            fs::create_dir(&dir).expect("create temp dir");
            TempDir(dir)
        }

        fn file(&self) -> PathBuf {
            self.0.join(COOKIE_FILE_NAME)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn is_generated(cookie: &str) -> bool {
        cookie.len() == GENERATED_COOKIE_LEN && cookie.bytes().all(|b| b.is_ascii_uppercase())
    }

    #[test]
    fn creates_owner_only_file_with_twenty_uppercase_letters() {
        let dir = TempDir::new("create");
        let cookie = read_or_create(&dir.file()).unwrap();
        assert!(is_generated(&cookie), "{cookie:?}");
        let meta = fs::metadata(dir.file()).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read_to_string(dir.file()).unwrap(), cookie);
        // The second call reads what the first wrote.
        assert_eq!(read_or_create(&dir.file()).unwrap(), cookie);
    }

    #[test]
    fn generated_cookies_differ() {
        assert_ne!(generate_cookie().unwrap(), generate_cookie().unwrap());
    }

    #[test]
    fn reads_existing_file_trimming_trailing_newline() {
        let dir = TempDir::new("read");
        fs::write(dir.file(), "SECRET cookie\n").unwrap();
        assert_eq!(read_or_create(&dir.file()).unwrap(), "SECRET cookie");
        fs::write(dir.file(), "CRLF\r\n").unwrap();
        assert_eq!(read_or_create(&dir.file()).unwrap(), "CRLF");
    }

    #[test]
    fn shared_file_is_still_used() {
        let dir = TempDir::new("shared");
        fs::write(dir.file(), "OPEN").unwrap();
        fs::set_permissions(dir.file(), fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(read_or_create(&dir.file()).unwrap(), "OPEN");
    }

    #[test]
    fn empty_or_blank_file_is_an_error() {
        let dir = TempDir::new("empty");
        for content in ["", "  \n"] {
            fs::write(dir.file(), content).unwrap();
            let err = read_or_create(&dir.file()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert!(err.to_string().contains("is empty"), "{err}");
        }
    }

    #[test]
    fn non_utf8_file_is_an_error() {
        let dir = TempDir::new("utf8");
        fs::write(dir.file(), [0xff, 0xfe, b'A']).unwrap();
        assert_eq!(
            read_or_create(&dir.file()).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn missing_directory_is_an_error_naming_the_path() {
        let dir = TempDir::new("nodir");
        let path = dir.0.join("absent").join(COOKIE_FILE_NAME);
        let err = read_or_create(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("absent"), "{err}");
    }

    #[test]
    fn racing_creators_get_the_same_cookie() {
        const THREADS: usize = 8;
        for round in 0..20 {
            let dir = TempDir::new(&format!("race{round}"));
            let barrier = Arc::new(Barrier::new(THREADS));
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (barrier, path) = (Arc::clone(&barrier), dir.file());
                    std::thread::spawn(move || {
                        barrier.wait();
                        read_or_create(&path)
                    })
                })
                .collect();
            let cookies: Vec<String> = handles
                .into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .collect();
            assert!(is_generated(&cookies[0]));
            assert!(
                cookies.iter().all(|c| *c == cookies[0]),
                "round {round}: {cookies:?}"
            );
            assert_eq!(fs::read_to_string(dir.file()).unwrap(), cookies[0]);
        }
    }

    #[test]
    fn config_beats_env_beats_file() {
        let dir = TempDir::new("order");
        fs::write(dir.file(), "FROMFILE").unwrap();
        let file = || Some(dir.file());
        assert_eq!(
            resolve_from(Some("conf"), Some("env".into()), file).unwrap(),
            "conf"
        );
        assert_eq!(resolve_from(None, Some("env".into()), file).unwrap(), "env");
        assert_eq!(resolve_from(None, None, file).unwrap(), "FROMFILE");
    }

    #[test]
    fn empty_cookie_from_any_source_is_an_error() {
        let never = || -> Option<PathBuf> { panic!("the file must not be consulted") };
        let err = resolve_from(Some(""), Some("env".into()), never).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = resolve_from(None, Some("".into()), never).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains(COOKIE_ENV), "{err}");
    }

    #[test]
    fn no_home_is_a_clear_error() {
        let err = resolve_from(None, None, || None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains(COOKIE_ENV), "{err}");
    }

    #[test]
    fn resolve_creates_the_file_when_missing() {
        let dir = TempDir::new("resolve");
        let cookie = resolve_from(None, None, || Some(dir.file())).unwrap();
        assert!(is_generated(&cookie));
        assert_eq!(fs::read_to_string(dir.file()).unwrap(), cookie);
    }
}
