//! Aligned plain-text tables and cell formatting for human output.

use crate::calendar::format_unix_utc;

#[cfg(test)]
mod tests;

/// Columns are left-aligned and separated by two spaces; lines carry no trailing spaces.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|header| (*header).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// A table with no header line, for `key: value` listings.
    pub fn headless() -> Table {
        Table::default()
    }

    pub fn push_row(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub fn render(&self) -> String {
        let n_columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.headers.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![0; n_columns];
        for line in self.lines() {
            for (width, cell) in widths.iter_mut().zip(line) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for line in self.lines() {
            let mut text = String::new();
            for (index, cell) in line.iter().enumerate() {
                if index > 0 {
                    text.push_str("  ");
                }
                text.push_str(cell);
                let padding = widths[index].saturating_sub(cell.chars().count());
                text.extend(std::iter::repeat_n(' ', padding));
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }

    fn lines(&self) -> impl Iterator<Item = &Vec<String>> {
        let header = (!self.headers.is_empty()).then_some(&self.headers);
        header.into_iter().chain(&self.rows)
    }
}

/// An optional number, `-` when absent.
pub fn opt_u64(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

pub fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

/// A unix timestamp in seconds as a UTC date and time.
pub fn unix_time(secs: u64) -> String {
    format_unix_utc(secs)
}

/// A unix timestamp that may be negative or far off (the API's `i64` times) as a UTC date and
/// time; before the epoch shows as `-`.
pub fn unix_time_signed(secs: i64) -> String {
    u64::try_from(secs).map_or_else(|_| "-".to_owned(), unix_time)
}

/// A span of time, coarse enough to read at a glance: `45s`, `7m`, `3h12m`, `2d4h`.
pub fn span(secs: u64) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    match secs {
        0..MINUTE => format!("{secs}s"),
        MINUTE..HOUR => format!("{}m", secs / MINUTE),
        HOUR..DAY => match secs % HOUR / MINUTE {
            0 => format!("{}h", secs / HOUR),
            minutes => format!("{}h{minutes}m", secs / HOUR),
        },
        _ => match secs % DAY / HOUR {
            0 => format!("{}d", secs / DAY),
            hours => format!("{}d{hours}h", secs / DAY),
        },
    }
}

/// `at` seen from `now` (both unix seconds): `in 7m`, `now` or `3h12m ago`.
pub fn relative_time(at: i64, now: i64) -> String {
    match at.cmp(&now) {
        std::cmp::Ordering::Greater => format!("in {}", span(at.abs_diff(now))),
        std::cmp::Ordering::Equal => "now".to_owned(),
        std::cmp::Ordering::Less => format!("{} ago", span(at.abs_diff(now))),
    }
}

/// A byte count in binary units with one decimal: `512 B`, `1.2 KiB`, `3.0 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Display only: f64 is precise enough for one decimal.
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// At most `max_chars` characters of `text` on one line; a cut ends with `…`.
pub fn truncate(text: &str, max_chars: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max_chars {
        return line;
    }
    let mut cut: String = line.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}
