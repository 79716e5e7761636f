//! Unit tests for bounded line reading. Every input is read through buffers of several tiny
//! capacities, so line endings and limits fall on every possible buffer boundary.

use tokio::io::{AsyncReadExt, BufReader};

use crate::line_reader::{Line, RawLine, read_line, read_raw_line};

const CAPACITIES: [usize; 7] = [1, 2, 3, 4, 5, 7, 8192];

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime needs no resources that can be missing")
        .block_on(future)
}

/// Renders the lines `read_line` finds in `input` as text: the line (escaped), `[LF]` after a
/// line that ended in a bare LF, `<too long>` and `<eof>`.
fn lines(input: &[u8], capacity: usize, max: usize) -> Vec<String> {
    block_on(async {
        let mut reader = BufReader::with_capacity(capacity, input);
        let mut buf = Vec::new();
        let mut transcript = Vec::new();
        loop {
            let line = read_line(&mut reader, max, &mut buf)
                .await
                .expect("slices do not fail");
            let text = String::from_utf8_lossy(&buf).escape_debug().to_string();
            match line {
                Line::Complete { bare_lf: false } => transcript.push(text),
                Line::Complete { bare_lf: true } => transcript.push(format!("{text}[LF]")),
                Line::TooLong => transcript.push(format!("<too long>{text}")),
                Line::Eof => {
                    transcript.push(format!("<eof>{text}"));
                    return transcript;
                }
            }
        }
    })
}

/// As `lines`, for `read_raw_line`: the endings show up escaped in the text.
fn raw_lines(input: &[u8], capacity: usize, max: usize) -> Vec<String> {
    block_on(async {
        let mut reader = BufReader::with_capacity(capacity, input);
        let mut buf = Vec::new();
        let mut transcript = Vec::new();
        loop {
            let line = read_raw_line(&mut reader, max, &mut buf)
                .await
                .expect("slices do not fail");
            let text = String::from_utf8_lossy(&buf).escape_debug().to_string();
            match line {
                RawLine::Complete => transcript.push(text),
                RawLine::TooLong { crlf: true } => transcript.push(format!("<too long>{text}")),
                RawLine::TooLong { crlf: false } => {
                    transcript.push(format!("<too long, LF>{text}"))
                }
                RawLine::Eof => {
                    transcript.push(format!("<eof>{text}"));
                    return transcript;
                }
            }
        }
    })
}

#[track_caller]
fn check(input: &[u8], max: usize, expected: &[&str]) {
    for capacity in CAPACITIES {
        assert_eq!(
            lines(input, capacity, max),
            expected,
            "read_line, capacity {capacity}"
        );
    }
}

#[track_caller]
fn check_raw(input: &[u8], max: usize, expected: &[&str]) {
    for capacity in CAPACITIES {
        assert_eq!(
            raw_lines(input, capacity, max),
            expected,
            "read_raw_line, capacity {capacity}"
        );
    }
}

#[test]
fn crlf_and_bare_lf() {
    check(b"EHLO x\r\nQUIT\r\n", 512, &["EHLO x", "QUIT", "<eof>"]);
    check(b"EHLO x\nQUIT\n", 512, &["EHLO x[LF]", "QUIT[LF]", "<eof>"]);
    check(b"\r\n\n", 512, &["", "[LF]", "<eof>"]);
}

#[test]
fn stray_carriage_returns_stay_in_the_line() {
    check(b"a\rb\r\n", 512, &["a\\rb", "<eof>"]);
    check(b"a\r\r\n", 512, &["a\\r", "<eof>"]);
    check(b"\r\r\n", 1, &["\\r", "<eof>"]);
}

#[test]
fn limits_are_exact() {
    check(
        b"abcd\r\nabcd\nabcde\r\nabcde\nok\r\n",
        4,
        &[
            "abcd",
            "abcd[LF]",
            "<too long>",
            "<too long>",
            "ok",
            "<eof>",
        ],
    );
    // The stray '\r' counts towards the limit.
    check(b"abcd\r\r\n", 4, &["<too long>", "<eof>"]);
    check(b"\r\n\n\n", 0, &["", "[LF]", "[LF]", "<eof>"]);
    check(b"a\r\n", 0, &["<too long>", "<eof>"]);
}

#[test]
fn long_lines_are_skipped_and_reading_goes_on() {
    let mut input = vec![b'x'; 10_000];
    input.extend_from_slice(b"\r\nQUIT\r\n");
    check(&input, 512, &["<too long>", "QUIT", "<eof>"]);
    let line = "y".repeat(10_000);
    check(format!("{line}\r\n").as_bytes(), 10_000, &[&line, "<eof>"]);
}

#[test]
fn incomplete_final_line_is_eof() {
    check(b"", 512, &["<eof>"]);
    check(b"QUIT", 512, &["<eof>"]);
    check(b"NOOP\r\nQUIT\r", 512, &["NOOP", "<eof>"]);
    check(b"NOOP\r\nxxxxxxxxxx", 4, &["NOOP", "<eof>"]);
}

#[test]
fn raw_lines_keep_their_endings() {
    check_raw(
        b"Subject: hi\r\n\r\nbody\n.\r\n",
        512,
        &["Subject: hi\\r\\n", "\\r\\n", "body\\n", ".\\r\\n", "<eof>"],
    );
    check_raw(
        b"a\rb\r\n\r\r\n",
        512,
        &["a\\rb\\r\\n", "\\r\\r\\n", "<eof>"],
    );
}

#[test]
fn raw_limits_are_exact() {
    check_raw(
        b"abcd\r\nabcd\nabcde\r\nabcdef\n.\r\n",
        4,
        &[
            "abcd\\r\\n",
            "abcd\\n",
            "<too long>abcd",
            "<too long, LF>abcd",
            ".\\r\\n",
            "<eof>",
        ],
    );
    check_raw(b"abcd\r\r\n", 4, &["<too long>abcd", "<eof>"]);
    check_raw(b"abc\r\r\n", 4, &["abc\\r\\r\\n", "<eof>"]);
    check_raw(
        b"\r\n\na\n",
        0,
        &["\\r\\n", "\\n", "<too long, LF>", "<eof>"],
    );
}

#[test]
fn raw_long_line_keeps_its_head() {
    let mut input = b"head".to_vec();
    input.extend(std::iter::repeat_n(b'x', 10_000));
    input.extend_from_slice(b"\r\n.\r\n");
    check_raw(&input, 8, &["<too long>headxxxx", ".\\r\\n", "<eof>"]);
}

/// The ending of a long line is told right even when its '\r' lies far beyond the kept bytes
/// or is the last byte before a buffer boundary: DATA decides by it whether a dot line may end
/// the message.
#[test]
fn raw_long_line_reports_its_ending() {
    let mut crlf = b"head".to_vec();
    crlf.extend(std::iter::repeat_n(b'x', 10_000));
    let mut lf = crlf.clone();
    crlf.extend_from_slice(b"\r\n.\r\n");
    lf.extend_from_slice(b"\n.\r\n");
    check_raw(&crlf, 8, &["<too long>headxxxx", ".\\r\\n", "<eof>"]);
    check_raw(&lf, 8, &["<too long, LF>headxxxx", ".\\r\\n", "<eof>"]);
    let mut cr_inside = b"head\r".to_vec();
    cr_inside.extend(std::iter::repeat_n(b'x', 100));
    cr_inside.extend_from_slice(b"\n");
    check_raw(&cr_inside, 8, &["<too long, LF>head\\rxxx", "<eof>"]);
}

#[test]
fn raw_incomplete_final_line_is_eof() {
    check_raw(b"", 512, &["<eof>"]);
    check_raw(b"line\r\n.\r", 512, &["line\\r\\n", "<eof>"]);
}

#[test]
fn endless_line_does_not_grow_the_buffer() {
    const MAX: usize = 512;
    let (line, capacity) = block_on(async {
        let endless = tokio::io::repeat(b'x').take(20_000_000);
        let mut reader = BufReader::new(endless);
        let mut buf = Vec::new();
        let line = read_raw_line(&mut reader, MAX, &mut buf)
            .await
            .expect("repeat does not fail");
        (line, buf.capacity())
    });
    assert_eq!(line, RawLine::Eof);
    assert!(capacity <= 2 * (MAX + 2), "buffer grew to {capacity} bytes");
}
