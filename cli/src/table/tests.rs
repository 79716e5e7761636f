//! Tests for table rendering.

use crate::table::{Table, opt_u64, relative_time, size, span, truncate, unix_time_signed, yes_no};

#[track_caller]
fn check(table: &Table, expected: &str) {
    assert_eq!(table.render(), expected);
}

#[test]
fn aligns_columns_without_trailing_spaces() {
    let mut table = Table::new(&["ID", "NAME", "STATE"]);
    table.push_row(vec!["1".into(), "n1".into(), "Leader".into()]);
    table.push_row(vec!["12".into(), "longer-name".into(), "-".into()]);
    check(
        &table,
        "ID  NAME         STATE\n\
         1   n1           Leader\n\
         12  longer-name  -\n",
    );
}

#[test]
fn empty_table_is_just_the_header() {
    check(&Table::new(&["NAME", "ENABLED"]), "NAME  ENABLED\n");
}

#[test]
fn headless_table_has_no_header_line() {
    let mut table = Table::headless();
    table.push_row(vec!["address:".into(), "a@example.test".into()]);
    table.push_row(vec!["quota:".into(), "1024 MB".into()]);
    check(&table, "address:  a@example.test\nquota:    1024 MB\n");
}

#[test]
fn counts_characters_not_bytes() {
    let mut table = Table::new(&["NAME", "X"]);
    table.push_row(vec!["größe".into(), "1".into()]);
    check(&table, "NAME   X\ngröße  1\n");
}

#[test]
fn short_rows_are_padded() {
    let mut table = Table::new(&["A", "B", "C"]);
    table.push_row(vec!["x".into()]);
    check(&table, "A  B  C\nx\n");
}

#[test]
fn cell_helpers() {
    assert_eq!(opt_u64(None), "-");
    assert_eq!(opt_u64(Some(42)), "42");
    assert_eq!(yes_no(true), "yes");
    assert_eq!(yes_no(false), "no");
}

#[test]
fn spans_are_coarse() {
    let cases = [
        (0, "0s"),
        (59, "59s"),
        (60, "1m"),
        (3599, "59m"),
        (3600, "1h"),
        (3660, "1h1m"),
        (86_399, "23h59m"),
        (86_400, "1d"),
        (90_000, "1d1h"),
        (40 * 86_400 + 7200, "40d2h"),
    ];
    for (secs, expected) in cases {
        assert_eq!(span(secs), expected, "{secs} s");
    }
}

#[test]
fn relative_times_say_which_way() {
    assert_eq!(relative_time(1_000_480, 1_000_000), "in 8m");
    assert_eq!(relative_time(1_000_000, 1_000_000), "now");
    assert_eq!(relative_time(996_400, 1_000_000), "1h ago");
    // The extremes of the API's i64 times do not overflow.
    assert_eq!(relative_time(i64::MIN, 0), "106751991167300d15h ago");
    assert_eq!(relative_time(i64::MAX, i64::MIN), "in 213503982334601d7h");
}

#[test]
fn sizes_use_binary_units() {
    let cases = [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (48_213, "47.1 KiB"),
        (3 << 20, "3.0 MiB"),
        (5 << 30, "5.0 GiB"),
        (u64::MAX, "16777216.0 TiB"),
    ];
    for (bytes, expected) in cases {
        assert_eq!(size(bytes), expected, "{bytes} bytes");
    }
}

#[test]
fn truncation_keeps_one_line_and_marks_the_cut() {
    assert_eq!(truncate("short", 10), "short");
    assert_eq!(truncate("exactly10!", 10), "exactly10!");
    assert_eq!(truncate("eleven chars", 10), "eleven ch…");
    assert_eq!(
        truncate("451 4.7.1 greylisted,\r\n  later", 100),
        "451 4.7.1 greylisted, later"
    );
    assert_eq!(truncate("ééééé", 3), "éé…");
}

#[test]
fn times_before_the_epoch_are_a_dash() {
    assert_eq!(unix_time_signed(1_700_000_000), "2023-11-14 22:13:20Z");
    assert_eq!(unix_time_signed(-1), "-");
    assert_eq!(unix_time_signed(i64::MIN), "-");
}
