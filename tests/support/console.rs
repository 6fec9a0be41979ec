//! `oxbeam console` as a child process driven through a pipe, one input at a time.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::support::harness::ChildProc;

/// A console node in its own OS process; killed when dropped.
pub struct ConsoleProc {
    proc: ChildProc,
    /// `name@localhost`.
    pub name: String,
    marks: u64,
    /// Everything it printed so far (for failure messages).
    pub transcript: Vec<String>,
}

/// How long one input may take to answer.
const ANSWER: Duration = Duration::from_secs(30);

impl ConsoleProc {
    /// Starts `oxbeam console --sname short --cookie cookie --epmd-port port extra...`
    /// (the product binary: the console never runs in the test node) and waits for its
    /// banner.
    pub fn start(short: &str, cookie: &str, epmd_port: u16, extra: &[&str]) -> ConsoleProc {
        let mut cmd = std::process::Command::new(crate::support::PRODUCT);
        cmd.args(["console", "--sname", short, "--cookie", cookie])
            .args(["--epmd-port", &epmd_port.to_string(), "--tick-ms", "2000"])
            .args(extra)
            .stderr(std::process::Stdio::inherit());
        let proc = ChildProc::spawn(&mut cmd, None).expect("start oxbeam console");
        let mut c = ConsoleProc {
            proc,
            name: format!("{short}@localhost"),
            marks: 0,
            transcript: Vec::new(),
        };
        let banner = c.next_line(ANSWER);
        assert!(
            banner
                .as_deref()
                .is_some_and(|l| l.starts_with("oxbeam console on")),
            "console {short} did not start: {banner:?}"
        );
        c
    }

    fn next_line(&mut self, within: Duration) -> Option<String> {
        let line = self.proc.next_line(within)?;
        self.transcript.push(line.clone());
        Some(line)
    }

    /// Types `input` (one or more lines) and returns what the console printed for it:
    /// every line up to the answer to a marker typed after it, prompt echoes left out.
    pub fn eval(&mut self, input: &str) -> Vec<String> {
        self.marks += 1;
        let mark = format!(":\"oxbeam-mark-{}\"", self.marks);
        let stdin = self.proc.stdin().expect("stdin open");
        writeln!(stdin, "{input}\n{mark}").expect("write to console");
        stdin.flush().expect("flush console stdin");
        let deadline = Instant::now() + ANSWER;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(line) = self.next_line(left) else {
                panic!(
                    "{}: no answer to {input:?}; transcript:\n{}",
                    self.name,
                    self.transcript.join("\n")
                );
            };
            if line == mark {
                return out;
            }
            if line.starts_with("iex(") || line.starts_with("...(") {
                continue;
            }
            out.push(line);
        }
    }

    /// The last line printed for `input` (its value, or its error).
    pub fn value(&mut self, input: &str) -> String {
        self.eval(input).pop().unwrap_or_default()
    }

    /// Repeats `input` until what it printed satisfies `done`, for up to `timeout`;
    /// returns everything printed meanwhile (so nothing `flush()` showed is lost).
    pub fn eval_until(
        &mut self,
        input: &str,
        timeout: Duration,
        done: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut all = Vec::new();
        loop {
            all.extend(self.eval(input));
            if done(&all) {
                return all;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {input:?} never gave what was expected; printed: {all:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Closes stdin (end of input) and waits, bounded, for a clean exit.
    pub fn quit(&mut self) -> bool {
        self.proc.close_stdin();
        self.proc.wait_exit(ANSWER).is_some_and(|s| s.success())
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        self.proc.kill();
    }
}
