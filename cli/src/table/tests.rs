//! Tests for table rendering.

use crate::table::{Table, opt_u64, yes_no};

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
