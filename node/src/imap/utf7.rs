//! Modified UTF-7 (RFC 3501 section 5.1.3), the encoding of IMAP4rev1 mailbox names on the wire.
//!
//! Printable ASCII other than `&` stands for itself, `&` is written `&-`, and every other run of
//! characters is UTF-16 in a base64 variant (`,` for `/`, no padding) between `&` and `-`.
//! Decoding refuses every spelling that the encoder would not produce, so that one mailbox has
//! exactly one wire name: a client cannot create "INBOX" twice as `INBOX` and `&AEkATgBCAE8AWA-`.

#[cfg(test)]
mod tests;

/// Why a wire name is not valid modified UTF-7. `at` is the byte offset in the input where the
/// problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Utf7Error {
    #[error("byte {byte:#04x} at {at} is not printable ASCII")]
    NotPrintable { at: usize, byte: u8 },
    #[error("the shift started at {at} has no closing '-'")]
    Unterminated { at: usize },
    #[error("byte {byte:#04x} at {at} is not modified base64")]
    BadBase64 { at: usize, byte: u8 },
    #[error("the shift ending at {at} does not hold whole UTF-16 units or has stray bits")]
    BadLength { at: usize },
    #[error("the shift ending at {at} is not valid UTF-16")]
    BadUtf16 { at: usize },
    #[error("the shift ending at {at} encodes printable ASCII, which must stand for itself")]
    EncodesPrintable { at: usize },
    #[error("the shift at {at} follows another shift directly; they must be one")]
    AdjacentShifts { at: usize },
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Encodes a mailbox name (UTF-8) for the wire.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if is_printable(c) {
            flush_shift(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush_shift(&mut pending, &mut out);
    out
}

/// Decodes a wire mailbox name to UTF-8, refusing anything `encode` would not have produced.
pub fn decode(wire: &str) -> Result<String, Utf7Error> {
    let bytes = wire.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    // Where the last base64 shift ended (the offset just past its '-'), to catch `&..-&..-`.
    let mut last_shift_end = None;
    while i < bytes.len() {
        let byte = bytes[i];
        if !(0x20..=0x7e).contains(&byte) {
            return Err(Utf7Error::NotPrintable { at: i, byte });
        }
        if byte != b'&' {
            out.push(char::from(byte));
            i += 1;
            continue;
        }
        let start = i;
        let Some(len) = bytes[start + 1..].iter().position(|&b| b == b'-') else {
            return Err(Utf7Error::Unterminated { at: start });
        };
        let end = start + 1 + len;
        i = end + 1;
        if len == 0 {
            out.push('&');
            continue;
        }
        if last_shift_end == Some(start) {
            return Err(Utf7Error::AdjacentShifts { at: start });
        }
        decode_shift(&bytes[start + 1..end], start + 1, end, &mut out)?;
        last_shift_end = Some(i);
    }
    Ok(out)
}

fn is_printable(c: char) -> bool {
    (' '..='~').contains(&c)
}

fn flush_shift(pending: &mut Vec<u16>, out: &mut String) {
    if pending.is_empty() {
        return;
    }
    out.push('&');
    let mut bits: u32 = 0;
    let mut n_bits = 0;
    for unit in pending.drain(..) {
        bits = (bits << 16) | u32::from(unit);
        n_bits += 16;
        while n_bits >= 6 {
            n_bits -= 6;
            out.push(char::from(ALPHABET[((bits >> n_bits) & 0x3f) as usize]));
        }
        bits &= (1 << n_bits) - 1;
    }
    if n_bits > 0 {
        out.push(char::from(
            ALPHABET[((bits << (6 - n_bits)) & 0x3f) as usize],
        ));
    }
    out.push('-');
}

/// Decodes the base64 between '&' and '-'; `offset` is where `shift` starts in the input and
/// `end` where its '-' is, for error positions.
fn decode_shift(
    shift: &[u8],
    offset: usize,
    end: usize,
    out: &mut String,
) -> Result<(), Utf7Error> {
    let mut units = Vec::with_capacity(shift.len() * 6 / 16);
    let mut bits: u32 = 0;
    let mut n_bits = 0;
    for (k, &byte) in shift.iter().enumerate() {
        let Some(value) = ALPHABET.iter().position(|&a| a == byte) else {
            return Err(Utf7Error::BadBase64 {
                at: offset + k,
                byte,
            });
        };
        bits = (bits << 6) | value as u32;
        n_bits += 6;
        if n_bits >= 16 {
            n_bits -= 16;
            units.push((bits >> n_bits) as u16);
            bits &= (1 << n_bits) - 1;
        }
    }
    // The encoder pads the last unit with fewer than six zero bits.
    if n_bits >= 6 || bits != 0 {
        return Err(Utf7Error::BadLength { at: end });
    }
    for c in char::decode_utf16(units) {
        let c = c.map_err(|_| Utf7Error::BadUtf16 { at: end })?;
        if is_printable(c) {
            return Err(Utf7Error::EncodesPrintable { at: end });
        }
        out.push(c);
    }
    Ok(())
}
