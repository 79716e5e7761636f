//! What the benchmark programs share: filler text for generated messages, the Date header,
//! and the median of a round's figures.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;

/// Words the generated message bodies are made of.
pub const WORDS: [&str; 24] = [
    "cluster", "mail", "quorum", "replica", "witness", "leader", "follower", "term", "commit",
    "snapshot", "mailbox", "message", "queue", "fsync", "latency", "router", "relay", "domain",
    "header", "body", "envelope", "session", "greeting", "accept",
];

/// Exactly `width` characters of random words.
pub fn push_words(text: &mut String, width: usize, leading_dot: bool, rng: &mut impl Rng) {
    let start = text.len();
    if leading_dot && width > 0 {
        text.push('.');
    }
    while text.len() - start < width {
        if text.len() > start && !text.ends_with('.') {
            text.push(' ');
        }
        text.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    text.truncate(start + width);
    // A cut may end the line in a space, which some servers strip.
    if text.ends_with(' ') {
        text.pop();
        text.push('s');
    }
}

/// `Sun, 01 Nov 2026 07:49:42 +0000`.
pub fn rfc5322_date(time: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let days = (secs / 86_400) as i64;
    let (hour, minute, second) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Days since 1970-01-01 to a civil date (proleptic Gregorian, years starting in March).
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {hour:02}:{minute:02}:{second:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize]
    )
}

/// The middle value (the mean of the two middle ones for an even count); 0 for none.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}
