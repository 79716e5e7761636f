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
