//! What the benchmark programs share: filler text for generated messages, the Date header,
//! the median and percentiles of a round's figures, `/proc/loadavg`, a results table, running
//! mclusterctl with a deadline, and the helpers every benchmark's command line and report use.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
pub use chaos_tests::smtp_client::{Reply, SmtpClient, base64};
use nix::unistd::Pid;
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

/// Nearest-rank percentile; 0 for no samples.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The 1, 5 and 15 minute load averages, comma-separated.
pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(",")
}

/// Prints `rows` under `header`, each column right-aligned to its widest cell.
pub fn print_table(header: &[String], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(String::len).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, &width)| format!("{cell:>width$}"))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    println!("{}", line(header));
    for row in rows {
        println!("{}", line(row));
    }
}

/// Seconds since the Unix epoch, as the outbound lab's sinks stamp their records.
pub fn epoch_secs(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

/// Body lines are at most this long, leaving room for dot-stuffing within 78 characters.
const LINE_WIDTH: usize = 76;

/// An RFC 5322 message as it goes on the wire after DATA (CRLF line ends, dot-stuffed, without
/// the final dot): `headers` in order, then a body of random words that makes the message
/// `size` bytes long before stuffing (or just the headers when they are longer), with a line
/// starting with a dot every 25 lines.
pub fn wire_message(headers: &[(&str, &str)], size: usize, rng: &mut impl Rng) -> Vec<u8> {
    let mut text = String::with_capacity(size + 64);
    for (name, value) in headers {
        text.push_str(name);
        text.push_str(": ");
        text.push_str(value);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    let mut n_line = 0usize;
    loop {
        let remaining = size.saturating_sub(text.len());
        if remaining < 2 {
            break;
        }
        // Room for this line's text; never leave 1 or 2 bytes, which no later line could fill
        // exactly, unless this is the last line.
        let room = remaining - 2;
        let width = if room <= LINE_WIDTH {
            room
        } else if room < LINE_WIDTH + 3 {
            LINE_WIDTH - 3
        } else {
            LINE_WIDTH
        };
        push_words(&mut text, width, n_line % 25 == 13, rng);
        text.push_str("\r\n");
        n_line += 1;
    }
    dot_stuff(&text)
}

/// `CTL --config CONFIG ARGS` with its output in `dir` (`ctl.out`, `ctl.err`), killed after
/// `timeout`; its stdout, or an error with its stderr.
pub fn run_ctl(
    ctl: &std::path::Path,
    config: &std::path::Path,
    args: &[&str],
    dir: &std::path::Path,
    timeout: Duration,
) -> Result<String> {
    use std::process::{Command, Stdio};
    let stdout_path = dir.join("ctl.out");
    let stderr_path = dir.join("ctl.err");
    let mut child = Command::new(ctl)
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).context("create ctl.out")?)
        .stderr(std::fs::File::create(&stderr_path).context("create ctl.err")?)
        .spawn()
        .with_context(|| format!("run mclusterctl {}", args.join(" ")))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("mclusterctl {} took over {timeout:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = fs::read_to_string(&stdout_path).unwrap_or_default();
    if !status.success() {
        bail!(
            "mclusterctl {} failed ({status}): {}",
            args.join(" "),
            fs::read_to_string(&stderr_path).unwrap_or_default().trim()
        );
    }
    Ok(stdout)
}

/// The file system holding `path`, from the longest matching mount point.
pub fn filesystem_of(path: &Path) -> String {
    let path = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (device, mount_point, fs_type) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(mount_point).then(|| {
                (
                    mount_point.len(),
                    format!("{fs_type} ({device} on {mount_point})"),
                )
            })
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "an unknown file system".to_owned(), |(_, what)| what)
}

/// The last `lines` lines of a file (a log), for an error message.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A duration in milliseconds.
pub fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A child's pid as nix wants it.
pub fn pid_of(pid: u32) -> Pid {
    Pid::from_raw(i32::try_from(pid).expect("Linux pids fit in i32"))
}

/// A command-line count: a number of at least 1.
pub fn parse_count(flag: &str, value: &str) -> Result<usize> {
    let count: usize = value
        .parse()
        .with_context(|| format!("{flag} takes a positive number, not {value:?}"))?;
    if count == 0 {
        bail!("{flag} must be at least 1");
    }
    Ok(count)
}

/// An RFC 5322 message of exactly `size` bytes (not dot-stuffed; or just the headers when they
/// are longer): `headers` in order, then a random body (so no two messages share content) in
/// CRLF lines of at most 78 characters once stuffed, with a lone-dot line and a line starting
/// with a dot every 25 lines.
pub fn text_message(headers: &[(&str, String)], size: usize, rng: &mut impl Rng) -> String {
    let mut text = String::with_capacity(size + 64);
    for (name, value) in headers {
        text.push_str(name);
        text.push_str(": ");
        text.push_str(value);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    let mut n_line = 0usize;
    loop {
        let remaining = size.saturating_sub(text.len());
        if remaining < 2 {
            break;
        }
        if n_line % 25 == 7 && remaining > 4 * LINE_WIDTH {
            text.push_str(".\r\n");
        } else {
            // Never leave a single byte, which no line could fill.
            let width = if remaining <= LINE_WIDTH + 2 {
                remaining - 2
            } else if remaining == LINE_WIDTH + 3 {
                LINE_WIDTH - 1
            } else {
                LINE_WIDTH
            };
            push_words(&mut text, width, n_line % 25 == 13, rng);
            text.push_str("\r\n");
        }
        n_line += 1;
    }
    text
}

/// `text` as it goes on the wire after DATA: every line starting with a dot gets another.
pub fn dot_stuff(text: &str) -> Vec<u8> {
    let mut wire = Vec::with_capacity(text.len() + text.len() / 500 + 8);
    for line in text.split_inclusive("\r\n") {
        if line.starts_with('.') {
            wire.push(b'.');
        }
        wire.extend_from_slice(line.as_bytes());
    }
    wire
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_messages_have_the_size_asked_for_before_stuffing() {
        let mut rng = rand::rng();
        let wire = wire_message(&[("Message-ID", "<a@b.test>")], 10_240, &mut rng);
        let text = String::from_utf8(wire).expect("ascii");
        let mut unstuffed = 0;
        for line in text.split_inclusive("\r\n") {
            assert!(line.ends_with("\r\n") && line.len() <= 80, "{line:?}");
            unstuffed += line.len() - usize::from(line.starts_with(".."));
        }
        assert_eq!(unstuffed, 10_240);
        assert!(text.starts_with("Message-ID: <a@b.test>\r\n\r\n"));
    }
}
