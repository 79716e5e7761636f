//! UTC calendar arithmetic, for certificate validity dates and for showing unix timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

#[cfg(test)]
mod tests;

const SECONDS_PER_DAY: u64 = 86_400;

/// A date in the proleptic Gregorian calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

impl Date {
    /// The date `days` days after 1970-01-01 (Howard Hinnant's `civil_from_days`).
    pub fn from_unix_days(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z.rem_euclid(146_097);
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let shifted_month = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
        let month = if shifted_month < 10 {
            shifted_month + 3
        } else {
            shifted_month - 9
        };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        Date {
            year: i32::try_from(year).unwrap_or(i32::MAX),
            month: u8::try_from(month).expect("month is in 1..=12"),
            day: u8::try_from(day).expect("day is in 1..=31"),
        }
    }

    /// Today in UTC, by the system clock.
    pub fn today() -> Date {
        let days = unix_now() / SECONDS_PER_DAY;
        Date::from_unix_days(i64::try_from(days).unwrap_or(i64::MAX))
    }

    /// The same day `years` years later; 29 February becomes 28 February so the result exists.
    pub fn plus_years(self, years: i32) -> Date {
        Date {
            year: self.year.saturating_add(years),
            month: self.month,
            day: if self.month == 2 {
                self.day.min(28)
            } else {
                self.day
            },
        }
    }
}

/// Seconds since the unix epoch by the system clock (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

/// `2025-11-22 05:39:07Z`.
pub fn format_unix_utc(secs: u64) -> String {
    let date = Date::from_unix_days(i64::try_from(secs / SECONDS_PER_DAY).unwrap_or(i64::MAX));
    let secs_of_day = secs % SECONDS_PER_DAY;
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        date.year,
        date.month,
        date.day,
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    )
}
