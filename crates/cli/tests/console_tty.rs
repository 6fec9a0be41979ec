//! `oxbeam console` at a terminal: run under `script`, which gives it a
//! pseudo-terminal, so the line editor (prompt, echo, history) is what answers.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::time::Duration;

use support::{private_mapper, test_cookie};

/// How long the terminal may take to show anything.
const WAIT: Duration = Duration::from_secs(20);

/// Everything the terminal showed, read in the background.
struct Screen {
    text: std::sync::Arc<parking_lot::Mutex<String>>,
}

impl Screen {
    fn new(mut from: impl Read + Send + 'static) -> Screen {
        let text = std::sync::Arc::new(parking_lot::Mutex::new(String::new()));
        let sink = text.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Screen { text }
    }

    /// Waits until `pred` holds for the screen's text.
    fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) {
        support::wait_for(&format!("the terminal to show {what}"), WAIT, || {
            let text = self.text.lock();
            (pred(&text), text.clone())
        });
    }
}

#[test]
fn at_a_terminal_the_prompt_edits_lines_and_keeps_history() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping: `script` (util-linux) is not installed");
        return;
    }
    let home = std::env::temp_dir().join(format!("oxbeam-tty-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let (_mapper, epmd) = private_mapper();
    let cmd = format!(
        "{} console --sname tty1 --cookie {} --epmd-port {epmd}",
        support::PRODUCT,
        test_cookie(),
    );
    let mut child = std::process::Command::new("script")
        .args(["-q", "-f", "-e", "-c", &cmd, "/dev/null"])
        .env("HOME", &home)
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start script");
    let screen = Screen::new(child.stdout.take().unwrap());
    let mut keys = child.stdin.take().unwrap();
    let mut type_keys = |s: &str| {
        keys.write_all(s.as_bytes()).unwrap();
        keys.flush().unwrap();
    };
    screen.wait("the prompt", |t| t.contains("iex(tty1@localhost)> "));
    type_keys("40 + 2\r");
    screen.wait("42", |t| t.contains("42\r\n"));
    // Line editing: type, move left over a typo, delete it, fix it.
    type_keys("Node.listX\x1b[D\x1b[3~()\r");
    screen.wait("[] from the edited line", |t| t.contains("\r\n[]\r\n"));
    // History: arrow up twice recalls `40 + 2`.
    type_keys("\x1b[A\x1b[A\r");
    screen.wait("42 again", |t| t.matches("42\r\n").count() >= 2);
    // A block over two lines: the continuation prompt, then the value.
    type_keys("Node.spawn(node(), fn ->\r");
    screen.wait("the continuation prompt", |t| {
        t.contains("...(tty1@localhost)> ")
    });
    type_keys(":ok end)\r");
    screen.wait("the spawned pid", |t| t.contains("\r\n#PID<0."));
    type_keys("send(self(), :hi); flush()\r");
    screen.wait("the flushed message", |t| t.contains(":hi\r\n:ok\r\n"));
    // Ctrl-D ends the session and the node.
    type_keys("\x04");
    let status = support::wait_for("the console to exit on Ctrl-D", WAIT, || {
        let s = child.try_wait().unwrap();
        (s.is_some(), s)
    });
    let status = status.expect("exited");
    assert!(status.success(), "{status:?}");
    let history = std::fs::read_to_string(home.join(".oxbeam_history")).unwrap_or_default();
    assert!(history.contains("40 + 2"), "history file: {history:?}");
    let _ = std::fs::remove_dir_all(&home);
}
