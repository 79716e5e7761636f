//! The calendar arithmetic against known dates.

use crate::calendar::{Date, DateTime};

/// Both directions: `days` is the date, and the date is `days`.
#[track_caller]
fn check_days(days: i64, year: i32, month: u8, day: u8) {
    let date = Date { year, month, day };
    assert_eq!(Date::from_unix_days(days), date);
    assert_eq!(date.unix_days(), days);
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
fn far_dates_both_ways() {
    check_days(-719_468, 0, 3, 1);
    check_days(2_932_896, 9999, 12, 31);
    for days in (-800_000..3_000_000).step_by(997) {
        assert_eq!(Date::from_unix_days(days).unix_days(), days);
    }
}

#[test]
fn rfc5322_dates() {
    assert_eq!(
        DateTime::from_unix(0).rfc5322(),
        "Thu, 01 Jan 1970 00:00:00 +0000"
    );
    assert_eq!(
        DateTime::from_unix(1_763_789_947).rfc5322(),
        "Sat, 22 Nov 2025 05:39:07 +0000"
    );
    assert_eq!(
        DateTime::from_unix(-1).rfc5322(),
        "Wed, 31 Dec 1969 23:59:59 +0000"
    );
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
