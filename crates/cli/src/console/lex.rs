//! The console's tokenizer: the part of Elixir's lexical syntax the drills use.
//!
//! Atoms (`:hello`, `:node1@localhost`, `:"a b"`), integers (`1_000`), floats (`1.5`,
//! `1.0e3`), strings (`"text"` with `\n \t \" \\` escapes, and `#{expr}` interpolation:
//! a [`Tok::Interp`] whose code parts the parser parses), charlists (`'abc'`), identifiers
//! (`pid`, `alive?`), aliases (`Node`), keyword keys (`a:` in `%{a: 1}`), and punctuation
//! and operators. `#` starts a comment.

use std::fmt;

/// One token and the byte offset where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// What it is.
    pub kind: Tok,
    /// Byte offset in the input.
    pub at: usize,
    /// Whether whitespace came right before it (to tell `f (x)` from `f(x)`).
    pub space_before: bool,
}

/// The kinds of token.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// `123`.
    Int(i64),
    /// `1.5`.
    Float(f64),
    /// `:name` or `:"quoted"` (without the colon).
    Atom(String),
    /// `"text"`, escapes resolved.
    Str(String),
    /// `"text #{code} text"`: literal parts (escapes resolved) and the source of each
    /// interpolated expression.
    Interp(Vec<StrPart>),
    /// `'text'`.
    Charlist(String),
    /// A lowercase identifier, possibly ending in `?` or `!`.
    Ident(String),
    /// An uppercase alias segment (`Node`, `IO`).
    Alias(String),
    /// `key:` inside a keyword list or map.
    KwKey(String),
    /// Punctuation and operators, as written (`(`, `..`, `|>`, `%{`, `=`...).
    Punct(&'static str),
    /// A newline (statements may be separated by newlines or `;`).
    Newline,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Int(i) => write!(f, "{i}"),
            Tok::Float(x) => write!(f, "{x}"),
            Tok::Atom(a) => write!(f, ":{a}"),
            Tok::Str(s) => write!(f, "{s:?}"),
            Tok::Interp(_) => f.write_str("a string"),
            Tok::Charlist(s) => write!(f, "'{s}'"),
            Tok::Ident(s) | Tok::Alias(s) => f.write_str(s),
            Tok::KwKey(k) => write!(f, "{k}:"),
            Tok::Punct(p) => f.write_str(p),
            Tok::Newline => f.write_str("end of line"),
        }
    }
}

/// A part of an interpolated string.
#[derive(Clone, Debug, PartialEq)]
pub enum StrPart {
    /// Text.
    Lit(String),
    /// The source of an interpolated `#{...}` expression.
    Code(String),
}

/// A lexical error; `incomplete` when more input could complete it (an open string).
#[derive(Clone, Debug, PartialEq)]
pub struct LexError {
    /// What is wrong.
    pub message: String,
    /// Byte offset in the input.
    pub at: usize,
    /// Whether more input could complete it.
    pub incomplete: bool,
}

// Longest first, so `..` wins over `.` and `|>` over `|`.
const PUNCT: [&str; 34] = [
    "===", "!==", "...", "%{", "|>", "==", "!=", "<=", ">=", "++", "--", "<>", "..", "->", "=>",
    "<-", "::", "&&", "||", "(", ")", "[", "]", "{", "}", ",", ".", "|", "=", "<", ">", "+", "-",
    "*",
];
const PUNCT_SINGLE: [&str; 6] = ["/", "^", "&", ";", "@", "!"];

fn ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Splits `src` into tokens.
pub fn tokenize(src: &str) -> Result<Vec<Token>, LexError> {
    Lexer {
        src,
        pos: 0,
        out: Vec::new(),
        space: false,
    }
    .run()
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    out: Vec<Token>,
    space: bool,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.src[self.pos..].chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn push(&mut self, kind: Tok, at: usize) {
        self.out.push(Token {
            kind,
            at,
            space_before: self.space,
        });
        self.space = false;
    }

    fn error(&self, message: impl Into<String>, at: usize, incomplete: bool) -> LexError {
        LexError {
            message: message.into(),
            at,
            incomplete,
        }
    }

    fn run(mut self) -> Result<Vec<Token>, LexError> {
        while let Some(c) = self.peek() {
            let at = self.pos;
            match c {
                '\n' => {
                    self.bump();
                    self.push(Tok::Newline, at);
                    self.space = true;
                }
                c if c.is_whitespace() => {
                    self.bump();
                    self.space = true;
                }
                '#' => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                '0'..='9' => self.number()?,
                '"' => {
                    self.bump();
                    let mut parts = self.quoted('"', at, true)?;
                    match parts.as_mut_slice() {
                        [] => self.push(Tok::Str(String::new()), at),
                        [StrPart::Lit(s)] => {
                            let s = std::mem::take(s);
                            self.push(Tok::Str(s), at);
                        }
                        _ => self.push(Tok::Interp(parts), at),
                    }
                }
                '\'' => {
                    self.bump();
                    let s = self.plain_quoted('\'', at)?;
                    self.push(Tok::Charlist(s), at);
                }
                ':' if self.peek_at(1) == Some('"') => {
                    self.bump();
                    self.bump();
                    let s = self.plain_quoted('"', at)?;
                    self.push(Tok::Atom(s), at);
                }
                ':' if self.peek_at(1).is_some_and(ident_start) => {
                    self.bump();
                    let start = self.pos;
                    while self.peek().is_some_and(|c| ident_char(c) || c == '@') {
                        self.bump();
                    }
                    if matches!(self.peek(), Some('?' | '!')) {
                        self.bump();
                    }
                    self.push(Tok::Atom(self.src[start..self.pos].to_owned()), at);
                }
                c if ident_start(c) => self.word(at),
                _ => self.punct(at)?,
            }
        }
        Ok(self.out)
    }

    fn word(&mut self, at: usize) {
        while self.peek().is_some_and(ident_char) {
            self.bump();
        }
        if matches!(self.peek(), Some('?' | '!')) && self.peek_at(1) != Some('=') {
            self.bump();
        }
        let word = self.src[at..self.pos].to_owned();
        // `key: value` (a colon followed by whitespace) is a keyword key.
        if self.peek() == Some(':') && self.peek_at(1).is_none_or(char::is_whitespace) {
            self.bump();
            self.push(Tok::KwKey(word), at);
        } else if word.starts_with(|c: char| c.is_ascii_uppercase()) {
            self.push(Tok::Alias(word), at);
        } else {
            self.push(Tok::Ident(word), at);
        }
    }

    fn punct(&mut self, at: usize) -> Result<(), LexError> {
        let rest = &self.src[self.pos..];
        let found = PUNCT
            .iter()
            .chain(PUNCT_SINGLE.iter())
            .find(|p| rest.starts_with(**p));
        match found {
            Some(p) => {
                self.pos += p.len();
                self.push(Tok::Punct(p), at);
                Ok(())
            }
            None => {
                let c = self.peek().unwrap_or(' ');
                Err(self.error(format!("unexpected character {c:?}"), at, false))
            }
        }
    }

    fn number(&mut self) -> Result<(), LexError> {
        let at = self.pos;
        let digits = |l: &mut Self| {
            while l.peek().is_some_and(|c| c.is_ascii_digit() || c == '_') {
                l.bump();
            }
        };
        if self.peek() == Some('0') && matches!(self.peek_at(1), Some('x' | 'b' | 'o')) {
            let radix = match self.peek_at(1) {
                Some('x') => 16,
                Some('b') => 2,
                _ => 8,
            };
            self.bump();
            self.bump();
            let start = self.pos;
            while self
                .peek()
                .is_some_and(|c| c.is_ascii_hexdigit() || c == '_')
            {
                self.bump();
            }
            let text: String = self.src[start..self.pos].replace('_', "");
            let v = i64::from_str_radix(&text, radix)
                .map_err(|_| self.error("integer out of range or malformed", at, false))?;
            self.push(Tok::Int(v), at);
            return Ok(());
        }
        digits(self);
        let mut float = false;
        // `1..3` is a range, not a float; `1.5` is a float.
        if self.peek() == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            float = true;
            self.bump();
            digits(self);
            if matches!(self.peek(), Some('e' | 'E')) {
                let sign = matches!(self.peek_at(1), Some('+' | '-'));
                let d = self.peek_at(if sign { 2 } else { 1 });
                if d.is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                    if sign {
                        self.bump();
                    }
                    digits(self);
                }
            }
        }
        let text: String = self.src[at..self.pos].replace('_', "");
        if float {
            let v: f64 = text
                .parse()
                .map_err(|_| self.error("malformed float", at, false))?;
            self.push(Tok::Float(v), at);
        } else {
            let v: i64 = text.parse().map_err(|_| {
                self.error("integer out of range (64-bit integers only)", at, false)
            })?;
            self.push(Tok::Int(v), at);
        }
        Ok(())
    }

    /// A quoted text without interpolation (charlists and quoted atoms).
    fn plain_quoted(&mut self, close: char, at: usize) -> Result<String, LexError> {
        let parts = self.quoted(close, at, false)?;
        Ok(match parts.into_iter().next() {
            Some(StrPart::Lit(s)) => s,
            _ => String::new(),
        })
    }

    /// The parts of a quoted text up to `close` (the opening quote already read); with
    /// `interpolate`, `#{...}` is a code part, else it is refused.
    fn quoted(
        &mut self,
        close: char,
        at: usize,
        interpolate: bool,
    ) -> Result<Vec<StrPart>, LexError> {
        let mut parts = Vec::new();
        let mut s = String::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(self.error(format!("missing closing {close}"), at, true));
            };
            match c {
                c if c == close => {
                    if !s.is_empty() || parts.is_empty() {
                        parts.push(StrPart::Lit(s));
                    }
                    return Ok(parts);
                }
                '#' if self.peek() == Some('{') => {
                    if !interpolate {
                        return Err(self.error(
                            "interpolation (#{...}) is only supported in strings",
                            self.pos - 1,
                            false,
                        ));
                    }
                    self.bump();
                    if !s.is_empty() {
                        parts.push(StrPart::Lit(std::mem::take(&mut s)));
                    }
                    parts.push(StrPart::Code(self.interpolated(at)?));
                }
                '\\' => {
                    let Some(e) = self.bump() else {
                        return Err(self.error(format!("missing closing {close}"), at, true));
                    };
                    s.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        's' => ' ',
                        '0' => '\0',
                        'e' => '\u{1b}',
                        other => other,
                    });
                }
                c => s.push(c),
            }
        }
    }

    /// The source of an interpolated expression, up to its closing `}` (the `#{`
    /// already read): braces nest, and strings inside it are skipped whole, so
    /// `"#{f("}")}"` is one expression.
    fn interpolated(&mut self, at: usize) -> Result<String, LexError> {
        let start = self.pos;
        let mut depth = 0usize;
        let unclosed = |l: &Self| l.error("missing closing } of #{", at, true);
        loop {
            match self.bump() {
                None => return Err(unclosed(self)),
                Some('}') if depth == 0 => return Ok(self.src[start..self.pos - 1].to_owned()),
                Some('}') => depth -= 1,
                Some('{') => depth += 1,
                Some(q @ ('"' | '\'')) => loop {
                    match self.bump() {
                        None => return Err(unclosed(self)),
                        Some('\\') => {
                            self.bump();
                        }
                        Some(c) if c == q => break,
                        Some(_) => {}
                    }
                },
                Some(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        tokenize(src).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn atoms_numbers_ranges_and_keywords() {
        assert_eq!(
            kinds(":node1@localhost :\"a b\" 1..1_000 1.5e3 0x1F"),
            vec![
                Tok::Atom("node1@localhost".into()),
                Tok::Atom("a b".into()),
                Tok::Int(1),
                Tok::Punct(".."),
                Tok::Int(1000),
                Tok::Float(1500.0),
                Tok::Int(31),
            ]
        );
        assert_eq!(
            kinds("%{a: 1} Node.alive?()"),
            vec![
                Tok::Punct("%{"),
                Tok::KwKey("a".into()),
                Tok::Int(1),
                Tok::Punct("}"),
                Tok::Alias("Node".into()),
                Tok::Punct("."),
                Tok::Ident("alive?".into()),
                Tok::Punct("("),
                Tok::Punct(")"),
            ]
        );
    }

    #[test]
    fn strings_escape_and_interpolate() {
        assert_eq!(kinds(r#""a\"b\n""#), vec![Tok::Str("a\"b\n".into())]);
        assert_eq!(
            kinds(r##""Sum: #{sum} (#{f("}")})""##),
            vec![Tok::Interp(vec![
                StrPart::Lit("Sum: ".into()),
                StrPart::Code("sum".into()),
                StrPart::Lit(" (".into()),
                StrPart::Code("f(\"}\")".into()),
                StrPart::Lit(")".into()),
            ])]
        );
        assert!(tokenize(r##""x #{y""##).unwrap_err().incomplete);
        assert!(
            tokenize(r##"'x #{y}'"##)
                .unwrap_err()
                .message
                .contains("interpolation")
        );
        let open = tokenize("\"abc").unwrap_err();
        assert!(open.incomplete);
        assert!(!tokenize("$").unwrap_err().incomplete);
    }
}
