//! Bounded line reading for the mail protocol sessions: however long a line a client sends, we
//! hold at most the line limit in memory, and the session stays in step to answer it.
//!
//! Neither function is cancel-safe: if the future is dropped mid-line, the bytes consumed so far
//! are lost. Sessions only drop it when giving up on the connection (timeout, shutdown).

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

#[cfg(test)]
mod tests;

/// The outcome of `read_line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// `buf` holds the line without its ending. `bare_lf` is true when it ended in a '\n' with no
    /// '\r' before it, which SMTP sessions may want to refuse (RFC 5321 2.3.8).
    Complete { bare_lf: bool },
    /// The line was over the limit; it has been consumed through its '\n' and `buf` is empty.
    TooLong,
    /// The peer closed the connection. Any final bytes without a '\n' are dropped, because an
    /// incomplete line is not a command; `buf` is empty.
    Eof,
}

/// The outcome of `read_raw_line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawLine {
    /// `buf` holds the line including its ending, "\r\n" or "\n".
    Complete,
    /// The line was over the limit; `buf` holds its first `max` bytes and the rest has been
    /// consumed through its '\n'. `crlf` tells whether that '\n' had a '\r' before it, so
    /// DATA knows whether a dot line after it may end the message.
    TooLong { crlf: bool },
    /// As for `Line::Eof`; `buf` is empty.
    Eof,
}

/// Reads one line (through '\n') into `buf` (cleared first), without the line ending. At most
/// `max` bytes (excluding the ending) are kept; a longer line is consumed through its '\n' and
/// discarded, and `TooLong` returned, so the session can answer and carry on.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
) -> io::Result<Line> {
    let Some((length, _)) = read_through_newline(reader, keep_limit(max), buf).await? else {
        return Ok(Line::Eof);
    };
    if length > keep_limit(max) {
        buf.clear();
        return Ok(Line::TooLong);
    }
    buf.pop();
    let bare_lf = buf.last() != Some(&b'\r');
    if !bare_lf {
        buf.pop();
    }
    if buf.len() > max {
        buf.clear();
        return Ok(Line::TooLong);
    }
    Ok(Line::Complete { bare_lf })
}

/// Reads one line into `buf` (cleared first) keeping its ending, so that DATA can store the
/// exact bytes. `max` limits the line without its ending, as for `read_line`; a longer line
/// leaves its first `max` bytes in `buf`, so DATA can keep looking for the terminating dot line
/// and answer once the message is over.
pub async fn read_raw_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
) -> io::Result<RawLine> {
    let Some((length, crlf)) = read_through_newline(reader, keep_limit(max), buf).await? else {
        return Ok(RawLine::Eof);
    };
    let ending = if crlf { 2 } else { 1 };
    if length > keep_limit(max) || length - ending > max {
        buf.truncate(max);
        return Ok(RawLine::TooLong { crlf });
    }
    Ok(RawLine::Complete)
}

/// A line of `max` bytes plus "\r\n" must fit whole, so that its ending can be told apart.
fn keep_limit(max: usize) -> usize {
    max.saturating_add(2)
}

/// Clears `buf` and reads the next line through its '\n', keeping at most `keep` bytes of it in
/// `buf` and consuming the rest. Returns the line's full length, ending included, and whether it
/// ended in "\r\n" (the '\r' may be among the bytes not kept), or `None` (with `buf` cleared)
/// if the stream ends first.
async fn read_through_newline<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    keep: usize,
    buf: &mut Vec<u8>,
) -> io::Result<Option<(usize, bool)>> {
    buf.clear();
    let mut length = 0usize;
    // The last byte consumed so far: the one before the '\n' may be in an earlier chunk.
    let mut last = None;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            buf.clear();
            return Ok(None);
        }
        let (part, found) = match available.iter().position(|&b| b == b'\n') {
            Some(newline) => (&available[..=newline], true),
            None => (available, false),
        };
        let room = keep.saturating_sub(buf.len());
        buf.extend_from_slice(&part[..part.len().min(room)]);
        let n_consumed = part.len();
        let before_newline = match part {
            [.., before, b'\n'] if found => Some(*before),
            _ => last,
        };
        last = part.last().copied();
        length = length.saturating_add(n_consumed);
        reader.consume(n_consumed);
        if found {
            return Ok(Some((length, before_newline == Some(b'\r'))));
        }
    }
}
