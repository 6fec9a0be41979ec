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
//! Output, as in iex, goes to the group leader (`rt::io`): the console starts an I/O
//! server that prints on its terminal and makes it the node's default group leader,
//! so the console's process and every process it spawns, here or on another node
//! (`Node.spawn`, `:rpc.call`), print here: `Node.spawn(:n2@localhost, IO, :puts,
//! ["hi"])` prints `hi` on this console. The I/O server's text and the prompt's output
//! are written whole, one at a time (at a terminal, above the line being edited), so
//! neither cuts into the other's lines.
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
pub mod exercises;
pub mod lex;
pub mod ops;
pub mod parse;

use std::io::{BufRead, IsTerminal, Write};
use std::sync::{Arc, Mutex};

use rustyline::ExternalPrinter as _;

use crate::rt::io;

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
    fn read(&mut self, prompt: &str, out: &Terminal) -> Option<String> {
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
                        out.write(&format!("{prompt}{line}\n"));
                        Some(line)
                    }
                }
            }
        }
    }
}

/// This process's standard output, shared by the prompt loop and the console's I/O
/// server: each writes whole texts under the lock (and flushes), so a line from a
/// process never lands inside one of the prompt's, nor the other way round.
#[derive(Clone, Default)]
struct Terminal(Arc<Mutex<()>>);

impl Terminal {
    fn write(&self, text: &str) {
        let _held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    /// An I/O server's sink that writes here.
    fn sink(&self) -> io::Sink {
        let t = self.clone();
        Box::new(move |text: &str| t.write(text))
    }
}

/// Starts the console's I/O server on `net`'s node, writing to `input`'s terminal
/// (above the line being edited, with a line editor) or to `out`, and makes it the
/// node's default group leader (the console's process and what it spawns get it).
fn start_io_server(net: &crate::node::Net, input: &mut Input, out: &Terminal) {
    let sink = match input {
        Input::Editor(ed) => match ed.create_external_printer() {
            Ok(mut printer) => Box::new(move |text: &str| {
                let _ = printer.print(text.to_owned());
            }) as io::Sink,
            Err(_) => out.sink(),
        },
        Input::Lines(_) => out.sink(),
    };
    let server = io::start_server(net.node(), sink);
    net.node().set_default_group_leader(Some(server));
}

fn history_path() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".oxbeam_history"))
}

/// Runs the prompt on `net` until end of input or `System.halt()`; stdin and stdout.
pub fn run(net: crate::node::Net) {
    let mut input = if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
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
    let out = Terminal::default();
    start_io_server(&net, &mut input, &out);
    let mut session = Session::new(net);
    let name = session.node_name();
    let prompt = format!("iex({})> ", name.as_str());
    let more = format!("...({})> ", name.as_str());
    out.write(&format!(
        "oxbeam console on {} (type h for help, Ctrl-D to quit)\n",
        name.as_str()
    ));
    let mut pending = String::new();
    while let Some(line) = input.read(if pending.is_empty() { &prompt } else { &more }, &out) {
        if !pending.is_empty() {
            pending.push('\n');
        }
        pending.push_str(&line);
        if pending.len() > MAX_INPUT {
            out.write(&format!(
                "** (SyntaxError) input longer than {MAX_INPUT} bytes; dropped\n"
            ));
            pending.clear();
            continue;
        }
        let result = session.eval_source(&pending);
        // What the evaluation printed, then its value: written at once.
        let mut text = String::new();
        for l in session.take_output() {
            text.push_str(&l);
            text.push('\n');
        }
        match result {
            Ok(Outcome::Incomplete) => {
                out.write(&text);
                continue;
            }
            Ok(Outcome::Value(v)) => {
                text.push_str(&closure::show(&v));
                text.push('\n');
            }
            Ok(Outcome::Nothing) => {}
            Err(e) => {
                text.push_str(&e.to_string());
                text.push('\n');
            }
        }
        out.write(&text);
        pending.clear();
        if session.wants_quit() {
            break;
        }
    }
    if !pending.is_empty() {
        out.write("** (SyntaxError) end of input inside an unfinished expression\n");
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
