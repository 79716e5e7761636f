//! UTC calendar arithmetic, for certificate validity dates and for showing unix timestamps
//! (the arithmetic itself is `mcluster_types::calendar`'s).

use std::time::{SystemTime, UNIX_EPOCH};

pub use mcluster_types::calendar::Date;

#[cfg(test)]
mod tests;

const SECONDS_PER_DAY: u64 = 86_400;

/// Today in UTC, by the system clock.
pub fn today() -> Date {
    let days = unix_now() / SECONDS_PER_DAY;
    Date::from_unix_days(i64::try_from(days).unwrap_or(i64::MAX))
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
