//! `oxbeam console`: an interactive node, iex's role in the drills.
//!
//! `oxbeam console --sname node1 [--cookie C] [--connect N]...` starts a distributed node
//! (with global, pg and rpc) and a prompt, `iex(node1@localhost)> `, that evaluates the
//! subset of Elixir the drills type ([`parse`] says which syntax, [`api::HELP`] which
//! calls). Each result prints on its own line in Elixir's inspect format; errors print as
//! `** (Kind) message` and the prompt comes back.
//!
//! Each line runs in the console's own process (an attached thread), so `self()`,
//! `send(self(), :x)` and `flush()` behave as in iex. If that process is killed (a linked
//! process died), a new one replaces it and the variables stay.
//!
//! Input: at a terminal, a line editor with history (`~/.oxbeam_history`); from a pipe,
//! plain lines, each echoed after the prompt so that the output reads as a transcript
//! (`printf 'Node.list()\n' | oxbeam console --sname x`). An open bracket or string
//! continues on the next line (prompt `...(node1@localhost)> `). End of input stops the
//! node.

pub mod api;
mod chapter;
pub mod closure;
mod enumerable;
pub mod eval;
pub mod lex;
pub mod ops;
pub mod parse;

use std::io::{BufRead, IsTerminal, Write};

pub use eval::{EvalError, Interp, Outcome, Session};

/// The longest input the console accepts in one expression (a runaway paste is refused,
/// not buffered without bound).
const MAX_INPUT: usize = 1 << 20;

/// Where lines come from.
enum Input {
    Editor(Box<rustyline::DefaultEditor>),
    Lines(Box<dyn BufRead>),
}

impl Input {
    /// The next line, `None` at end of input. Lines from a pipe are echoed to `out`
    /// after the prompt, so the output reads as a transcript.
    fn read(&mut self, prompt: &str, out: &mut impl Write) -> Option<String> {
        match self {
            Input::Editor(ed) => loop {
                match ed.readline(prompt) {
                    Ok(line) => {
                        if !line.trim().is_empty() {
                            let _ = ed.add_history_entry(line.as_str());
                        }
                        return Some(line);
                    }
                    // Ctrl-C drops the line being typed, as in a shell.
                    Err(rustyline::error::ReadlineError::Interrupted) => continue,
                    Err(_) => return None,
                }
            },
            Input::Lines(r) => {
                let mut line = String::new();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => None,
                    Ok(_) => {
                        let line = line.trim_end_matches(['\n', '\r']).to_owned();
                        let _ = writeln!(out, "{prompt}{line}");
                        Some(line)
                    }
                }
            }
        }
    }
}

fn history_path() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".oxbeam_history"))
}

/// Runs the prompt on `net` until end of input or `System.halt()`; stdin and stdout.
pub fn run(net: crate::node::Net) {
    let stdout = std::io::stdout();
    let mut input = if std::io::stdin().is_terminal() && stdout.is_terminal() {
        match rustyline::DefaultEditor::new() {
            Ok(mut ed) => {
                if let Some(p) = history_path() {
                    let _ = ed.load_history(&p);
                }
                Input::Editor(Box::new(ed))
            }
            Err(_) => Input::Lines(Box::new(std::io::stdin().lock())),
        }
    } else {
        Input::Lines(Box::new(std::io::stdin().lock()))
    };
    let mut session = Session::new(net);
    let name = session.node_name();
    let prompt = format!("iex({})> ", name.as_str());
    let more = format!("...({})> ", name.as_str());
    // Not `stdout.lock()` for the whole session: processes of this node print too
    // (`IO.puts` run here by a remote spawn), and must not wait for the prompt.
    let mut out = stdout;
    let _ = writeln!(
        out,
        "oxbeam console on {} (type h for help, Ctrl-D to quit)",
        name.as_str()
    );
    let mut pending = String::new();
    while let Some(line) = input.read(if pending.is_empty() { &prompt } else { &more }, &mut out) {
        if !pending.is_empty() {
            pending.push('\n');
        }
        pending.push_str(&line);
        if pending.len() > MAX_INPUT {
            let _ = writeln!(
                out,
                "** (SyntaxError) input longer than {MAX_INPUT} bytes; dropped"
            );
            pending.clear();
            continue;
        }
        let result = session.eval_source(&pending);
        for l in session.take_output() {
            let _ = writeln!(out, "{l}");
        }
        match result {
            Ok(Outcome::Incomplete) => continue,
            Ok(Outcome::Value(v)) => {
                let _ = writeln!(out, "{}", closure::show(&v));
            }
            Ok(Outcome::Nothing) => {}
            Err(e) => {
                let _ = writeln!(out, "{e}");
            }
        }
        let _ = out.flush();
        pending.clear();
        if session.wants_quit() {
            break;
        }
    }
    if !pending.is_empty() {
        let _ = writeln!(
            out,
            "** (SyntaxError) end of input inside an unfinished expression"
        );
    }
    if let (Input::Editor(ed), Some(p)) = (&mut input, history_path()) {
        let _ = ed.save_history(&p);
    }
    drop(session);
}

#[cfg(test)]
mod lang_tests;
#[cfg(test)]
mod tests;
