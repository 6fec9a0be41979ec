use super::*;

fn text(t: &Term) -> Result<String, Term> {
    put_chars_text(&Term::tuple(vec![
        Term::atom("put_chars"),
        Term::atom("unicode"),
        t.clone(),
    ]))
}

#[test]
fn chardata_of_every_shape() {
    assert_eq!(text(&Term::str("héllo")), Ok("héllo".into()));
    assert_eq!(text(&Term::binary(b"abc")), Ok("abc".into()));
    let nested = Term::list(vec![
        Term::Int('a' as i64),
        Term::list(vec![Term::str("b"), Term::list(vec![Term::Int(0x263a)])]),
        Term::binary(b"c"),
    ]);
    assert_eq!(text(&nested), Ok("ab\u{263a}c".into()));
    assert_eq!(text(&Term::list(vec![])), Ok(String::new()));
}

#[test]
fn latin1_takes_bytes_as_characters() {
    let req = |chars: Term| Term::tuple(vec![Term::atom("put_chars"), chars]);
    assert_eq!(put_chars_text(&req(Term::binary(&[0xe9]))), Ok("é".into()));
    assert_eq!(
        put_chars_text(&req(Term::list(vec![Term::Int(300)]))),
        Err(Term::atom("badarg"))
    );
}

#[test]
fn what_is_not_chardata_is_badarg() {
    for bad in [
        Term::atom("x"),
        Term::Int(-1),
        Term::Int(0x11_0000),
        Term::binary(&[0xff, 0xfe]),
        Term::list(vec![Term::str("a"), Term::tuple(vec![])]),
    ] {
        assert_eq!(text(&bad), Err(Term::atom("badarg")), "{bad}");
    }
}

#[test]
fn other_requests_are_answered_request() {
    for req in [
        Term::tuple(vec![Term::atom("get_line"), Term::str("> ")]),
        Term::atom("getopts"),
        Term::tuple(vec![
            Term::atom("put_chars"),
            Term::atom("unicode"),
            Term::atom("io_lib"),
            Term::atom("format"),
            Term::list(vec![]),
        ]),
        Term::tuple(vec![
            Term::atom("put_chars"),
            Term::atom("utf32"),
            Term::str("x"),
        ]),
    ] {
        assert_eq!(put_chars_text(&req), Err(Term::atom("request")), "{req}");
    }
}

#[test]
fn a_request_over_the_cap_is_refused_before_it_is_copied() {
    let too_large = Err(Term::tuple(vec![
        Term::atom("too_large"),
        Term::from(MAX_CHARS),
    ]));
    assert_eq!(text(&Term::str(&"x".repeat(MAX_CHARS + 1))), too_large);
    assert_eq!(
        text(&Term::str(&"x".repeat(MAX_CHARS))).map(|s| s.len()),
        Ok(MAX_CHARS)
    );
    // Many small pieces add up.
    let pieces = Term::list(vec![Term::Int('y' as i64); MAX_CHARS + 1]);
    assert_eq!(text(&pieces), too_large);
}

#[test]
fn a_deeply_nested_list_costs_no_stack() {
    let mut t = Term::str("deep");
    for _ in 0..200_000 {
        t = Term::list(vec![t]);
    }
    assert_eq!(text(&t), Ok("deep".into()));
    // Dropping a term this deep is the term's business, not ours: leak it.
    std::mem::forget(t);
}

#[test]
fn chunks_end_between_characters() {
    assert_eq!(chunk_end("abc", 2), 2);
    assert_eq!(chunk_end("abc", 5), 3);
    // "é" is two bytes: a cut inside it moves back before it.
    assert_eq!(chunk_end("aé", 2), 1);
    // A character longer than the cap goes whole.
    assert_eq!(chunk_end("\u{263a}x", 1), 3);
}
