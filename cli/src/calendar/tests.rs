//! Tests for the calendar arithmetic against known dates.

use crate::calendar::{Date, format_unix_utc};

#[track_caller]
fn check_days(days: i64, year: i32, month: u8, day: u8) {
    assert_eq!(Date::from_unix_days(days), Date { year, month, day });
}

#[test]
fn epoch() {
    check_days(0, 1970, 1, 1);
}

#[test]
fn leap_day() {
    check_days(11_016, 2000, 2, 29);
    check_days(19_782, 2024, 2, 29);
}

#[test]
fn before_epoch() {
    check_days(-1, 1969, 12, 31);
}

#[test]
fn end_of_year() {
    check_days(20_088, 2024, 12, 31);
}

#[test]
fn formats_timestamp() {
    assert_eq!(format_unix_utc(0), "1970-01-01 00:00:00Z");
    assert_eq!(format_unix_utc(1_763_789_947), "2025-11-22 05:39:07Z");
}

#[test]
fn plus_years_avoids_missing_leap_day() {
    let leap_day = Date {
        year: 2024,
        month: 2,
        day: 29,
    };
    assert_eq!(
        leap_day.plus_years(10),
        Date {
            year: 2034,
            month: 2,
            day: 28
        }
    );
    let ordinary = Date {
        year: 2025,
        month: 11,
        day: 22,
    };
    assert_eq!(
        ordinary.plus_years(10),
        Date {
            year: 2035,
            month: 11,
            day: 22
        }
    );
}
