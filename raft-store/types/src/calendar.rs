//! UTC calendar arithmetic in the proleptic Gregorian calendar (Howard Hinnant's
//! `civil_from_days` and `days_from_civil`): the dates mail carries (RFC 5322, IMAP internal
//! dates), certificate validity and the times the CLI shows.

#[cfg(test)]
mod tests;

const SECONDS_PER_DAY: i64 = 86_400;

pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// Sunday first.
pub const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// A date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    pub year: i32,
    /// 1 to 12.
    pub month: u8,
    /// 1 to 31.
    pub day: u8,
}

impl Date {
    /// The date `days` days after 1970-01-01.
    pub fn from_unix_days(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z.rem_euclid(146_097);
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let shifted_month = (5 * day_of_year + 2) / 153; // March = 0
        let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
        let month = if shifted_month < 10 {
            shifted_month + 3
        } else {
            shifted_month - 9
        };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        Date {
            year: i32::try_from(year).unwrap_or(if year < 0 { i32::MIN } else { i32::MAX }),
            month: u8::try_from(month).expect("month is in 1..=12"),
            day: u8::try_from(day).expect("day is in 1..=31"),
        }
    }

    /// Days from 1970-01-01 to this date (negative before it).
    pub fn unix_days(self) -> i64 {
        let (month, day) = (i64::from(self.month), i64::from(self.day));
        let year = i64::from(self.year) - i64::from(month <= 2);
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let shifted_month = (month + 9) % 12; // March = 0
        let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
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

    /// `Jan` to `Dec`.
    pub fn month_name(self) -> &'static str {
        MONTHS[usize::from(self.month - 1)]
    }
}

/// A moment in UTC, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    pub date: Date,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// 0 is Sunday.
    pub weekday: u8,
}

impl DateTime {
    pub fn from_unix(secs: i64) -> DateTime {
        let days = secs.div_euclid(SECONDS_PER_DAY);
        let of_day = secs.rem_euclid(SECONDS_PER_DAY);
        let small = |n: i64| u8::try_from(n).expect("a part of a day fits in u8");
        DateTime {
            date: Date::from_unix_days(days),
            hour: small(of_day / 3600),
            minute: small(of_day / 60 % 60),
            second: small(of_day % 60),
            // 1970-01-01 was a Thursday.
            weekday: small((days + 4).rem_euclid(7)),
        }
    }

    /// RFC 5322 3.3: `Sun, 22 Nov 2026 10:04:05 +0000`.
    pub fn rfc5322(&self) -> String {
        format!(
            "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
            WEEKDAYS[usize::from(self.weekday)],
            self.date.day,
            self.date.month_name(),
            self.date.year,
            self.hour,
            self.minute,
            self.second
        )
    }
}
