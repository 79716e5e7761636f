use crate::calendar::format_unix_utc;

#[test]
fn formats_timestamp() {
    assert_eq!(format_unix_utc(0), "1970-01-01 00:00:00Z");
    assert_eq!(format_unix_utc(1_763_789_947), "2025-11-22 05:39:07Z");
}
