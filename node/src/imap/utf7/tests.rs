//! Modified UTF-7 vectors: RFC 3501's example, Chinese names, and every kind of malformed input.

use crate::imap::utf7::{Utf7Error, decode, encode};

/// Checks that `name` encodes to `wire` and that `wire` decodes back to `name`.
#[track_caller]
fn check_round_trip(name: &str, wire: &str) {
    assert_eq!(encode(name), wire, "encoding {name:?}");
    assert_eq!(decode(wire).as_deref(), Ok(name), "decoding {wire:?}");
}

#[track_caller]
fn check_invalid(wire: &str, expected: Utf7Error) {
    assert_eq!(decode(wire), Err(expected), "decoding {wire:?}");
}

#[test]
fn imap_utf7_ascii_stands_for_itself() {
    check_round_trip("INBOX", "INBOX");
    check_round_trip("Sent Items/2024 ~x", "Sent Items/2024 ~x");
    check_round_trip("", "");
}

#[test]
fn imap_utf7_ampersand() {
    check_round_trip("&", "&-");
    check_round_trip("Tom & Jerry", "Tom &- Jerry");
    check_round_trip("&&", "&-&-");
}

#[test]
fn imap_utf7_rfc3501_example() {
    check_round_trip("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
}

#[test]
fn imap_utf7_chinese_names() {
    check_round_trip("收件箱", "&ZTZO9nux-");
    check_round_trip("工作/项目", "&XeVPXA-/&mHl27g-");
    for name in ["已发送", "草稿箱/2024年/第一季度", "垃圾邮件&广告"] {
        assert_eq!(decode(&encode(name)).as_deref(), Ok(name));
    }
}

#[test]
fn imap_utf7_other_scripts_and_controls() {
    check_round_trip("é", "&AOk-");
    check_round_trip("😀", "&2D3eAA-");
    check_round_trip("a\u{1}b", "a&AAE-b");
    check_round_trip("Ünïcödé & Co", "&ANw-n&AO8-c&APY-d&AOk- &- Co");
}

#[test]
fn imap_utf7_refuses_unterminated_shift() {
    check_invalid("&ZTZO9nux", Utf7Error::Unterminated { at: 0 });
    check_invalid("abc&", Utf7Error::Unterminated { at: 3 });
}

#[test]
fn imap_utf7_refuses_bad_base64() {
    check_invalid("&ZTZ/9nux-", Utf7Error::BadBase64 { at: 4, byte: b'/' });
    check_invalid("&ZT=O-", Utf7Error::BadBase64 { at: 3, byte: b'=' });
    check_invalid("&a&b-", Utf7Error::BadBase64 { at: 2, byte: b'&' });
}

#[test]
fn imap_utf7_refuses_partial_units_and_stray_bits() {
    // Two base64 digits are 12 bits: not a whole UTF-16 unit.
    check_invalid("&AO-", Utf7Error::BadLength { at: 3 });
    // "AOk" is é with zero padding bits; "AOl" sets a padding bit.
    check_invalid("&AOl-", Utf7Error::BadLength { at: 4 });
    // A fourth digit after a full unit is six extra bits.
    check_invalid("&AOkA-", Utf7Error::BadLength { at: 5 });
}

#[test]
fn imap_utf7_refuses_encoded_printable_ascii() {
    // 'a' (U+0061) spelled in base64.
    check_invalid("&AGE-", Utf7Error::EncodesPrintable { at: 4 });
    // '&' itself spelled in base64 instead of "&-".
    check_invalid("&ACY-", Utf7Error::EncodesPrintable { at: 4 });
}

#[test]
fn imap_utf7_refuses_adjacent_shifts() {
    check_invalid("&ZTY-&Tvk-", Utf7Error::AdjacentShifts { at: 5 });
    // A shift after "&-" is fine: that is a literal ampersand, not a shift.
    assert_eq!(decode("&-&ZTY-").as_deref(), Ok("&收"));
}

#[test]
fn imap_utf7_refuses_unpaired_surrogates() {
    // U+D83D alone (a high surrogate with no low one).
    check_invalid("&2D0-", Utf7Error::BadUtf16 { at: 4 });
}

#[test]
fn imap_utf7_refuses_non_ascii_and_controls_on_the_wire() {
    check_invalid("收件箱", Utf7Error::NotPrintable { at: 0, byte: 0xe6 });
    check_invalid("a\tb", Utf7Error::NotPrintable { at: 1, byte: b'\t' });
}

#[test]
fn imap_utf7_seeded_round_trips() {
    let mut seed: u64 = 0x5eed;
    let pool: Vec<char> = "aZ09 &-/~收件箱工作项目é😀\u{1}\u{7f}\u{ffff}"
        .chars()
        .collect();
    for _ in 0..2000 {
        let len = (next(&mut seed) % 12) as usize;
        let name: String = (0..len)
            .map(|_| pool[(next(&mut seed) % pool.len() as u64) as usize])
            .collect();
        let wire = encode(&name);
        assert_eq!(decode(&wire).as_deref(), Ok(name.as_str()), "wire {wire:?}");
        assert!(wire.bytes().all(|b| (0x20..=0x7e).contains(&b)));
    }
}

fn next(seed: &mut u64) -> u64 {
    // xorshift64: deterministic, no dependency.
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}
