//! The console's parser on whatever a user might type or paste: `console::parse::parse`
//! of the input as UTF-8 (invalid UTF-8 is skipped). Nothing is evaluated.
//!
//! Checks: no panic (nor stack overflow); blank lines around the input change nothing;
//! statements are independent: if the text before the input's first NUL byte and the text
//! after it each parse, the two joined by a newline parse to both lists of expressions,
//! in order (as the console joins the lines of an unfinished expression).
//!
//! Shared by the fuzz target `console_parser` and by `crates/cli/tests/fuzz_console_corpus.rs`, which replays
//! this target's corpus in every test run.

use oxbeam_cli::console::parse::parse;

/// Runs the checks on one input (a panic is a failure).
pub fn run(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let got = parse(src);
    assert_eq!(
        parse(&format!("\n{src}\n")),
        got,
        "blank lines around {src:?}"
    );

    if let Some((a, b)) = src.split_once('\0')
        && let (Ok(mut x), Ok(y)) = (parse(a), parse(b))
    {
        x.extend(y);
        assert_eq!(parse(&format!("{a}\n{b}")), Ok(x), "{a:?} then {b:?}");
    }
}
