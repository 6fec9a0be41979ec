//! Command-line options of a named node, as `erl`/`iex` take them (`--sname`, `--name`,
//! `--cookie`, `--connect`...): shared by `oxbeam node`, `oxbeam console` and the test
//! node, parsed into a [`NetConfig`].

use std::time::Duration;

use crate::{Net, NetConfig};

/// The options of `oxbeam node` (and of `oxbeam console`, which takes the same).
pub const USAGE: &str =
    "usage: oxbeam node --sname NAME[@HOST] | --name NAME@HOST [--cookie C] [--connect NODE]...
                   [--port P] [--epmd-port P] [--no-mapper] [--hidden] [--tick-ms N] [--workers N]
                   [--stop-on-eof]   (stop when stdin closes: a parent that dies takes the node along)
                   [--prevent-overlapping-partitions true|false]   (OTP 25's default: true)
       --epmd-port 0: host a private port mapper on a free port (printed on the second line)";

/// What the command line asked for.
pub struct NodeArgs {
    /// The node's settings.
    pub config: NetConfig,
    /// Nodes to connect to once up.
    pub connect: Vec<String>,
    /// Stop when stdin closes.
    pub stop_on_eof: bool,
}

/// Parses the options after `node` (or `console`).
pub fn parse(args: &[String]) -> Result<NodeArgs, UsageError> {
    parse_text(args).map_err(UsageError)
}

fn parse_text(args: &[String]) -> Result<NodeArgs, String> {
    let mut config = NetConfig::named("");
    let mut connect = Vec::new();
    let mut stop_on_eof = false;
    let mut it = args.iter();
    let value = |flag: &str, it: &mut std::slice::Iter<'_, String>| {
        it.next()
            .cloned()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            // `--sname n` is `n@localhost`; `--sname n@host` names the host itself, as
            // `erl -sname` and `iex --sname` accept.
            "--sname" => {
                let name = value(arg, &mut it)?;
                config.name = if name.contains('@') {
                    name
                } else {
                    format!("{name}@localhost")
                };
            }
            "--name" => config.name = value(arg, &mut it)?,
            "--cookie" => config.cookie = Some(value(arg, &mut it)?),
            "--connect" => connect.push(value(arg, &mut it)?),
            "--port" => {
                config.port = value(arg, &mut it)?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--epmd-port" => {
                config.epmd_port = Some(
                    value(arg, &mut it)?
                        .parse()
                        .map_err(|e| format!("--epmd-port: {e}"))?,
                )
            }
            "--no-mapper" => config.use_mapper = false,
            "--hidden" => config.hidden = true,
            "--stop-on-eof" => stop_on_eof = true,
            "--prevent-overlapping-partitions" => {
                config.prevent_overlapping_partitions = match value(arg, &mut it)?.as_str() {
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(format!(
                            "--prevent-overlapping-partitions takes true or false, not {other}"
                        ));
                    }
                }
            }
            "--tick-ms" => {
                let ms: u64 = value(arg, &mut it)?
                    .parse()
                    .map_err(|e| format!("--tick-ms: {e}"))?;
                config.tick_time = Duration::from_millis(ms);
            }
            "--workers" => {
                config.runtime.workers = value(arg, &mut it)?
                    .parse()
                    .map_err(|e| format!("--workers: {e}"))?
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    if config.name.is_empty() {
        return Err(format!("a node needs a name\n{USAGE}"));
    }
    Ok(NodeArgs {
        config,
        connect,
        stop_on_eof,
    })
}

/// A command line [`parse`] refused: what was wrong, then the usage text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// What a node started from the command line prints once up (`node NAME listening on
/// ADDR creation C`; with `--epmd-port 0` a second line, `port mapper on
/// 127.0.0.1:P`, for the private port mapper it hosts: tests and scripts read both),
/// then it connects to each `--connect` node, printing the outcome.
pub fn announce_and_connect(net: &Net, args: &NodeArgs) {
    println!(
        "node {} listening on {} creation {}",
        net.name().as_str(),
        net.address(),
        net.creation()
    );
    if args.config.epmd_port == Some(0) && args.config.use_mapper {
        println!("port mapper on 127.0.0.1:{}", net.epmd_port());
    }
    for peer in &args.connect {
        match net.connect(peer) {
            Ok(()) => println!("connected to {peer}"),
            Err(e) => println!("could not connect to {peer}: {e}"),
        }
    }
}

/// Reports a process's panic as one warning log line, like a BEAM crash report, not a
/// backtrace (the panic ends that process only; its exit reason carries the message).
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current().name().unwrap_or("?").to_owned();
        log::warn!(
            "panic in thread {thread}{at}: {}",
            info.payload_as_str().unwrap_or("(no message)")
        );
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_of(args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        parse(&args).expect("valid options").config.name
    }

    #[test]
    fn sname_takes_a_bare_name_or_name_at_host() {
        assert_eq!(name_of(&["--sname", "node1"]), "node1@localhost");
        assert_eq!(name_of(&["--sname", "node1@localhost"]), "node1@localhost");
        assert_eq!(name_of(&["--name", "node1@127.0.0.1"]), "node1@127.0.0.1");
        assert!(parse(&["--sname".to_string()]).is_err());
    }
}
