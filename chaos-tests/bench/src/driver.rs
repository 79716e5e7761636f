//! What the benchmark programs share: filler text for generated messages, the Date header,
//! the median and percentiles of a round's figures and the ratio of two systems' figures,
//! `/proc/loadavg`, a results table, the work directory, client sessions in threads, running
//! mclusterctl with a deadline, and the helpers every benchmark's report uses.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
pub use chaos_tests::smtp_client::{Reply, SmtpClient, base64};
use rand::Rng;
use tempfile::TempDir;

/// How many errors a cell (or a session) keeps to show.
pub const SHOWN_ERRORS: usize = 3;
/// Lets the disk and the servers settle between cells.
pub const SETTLE: Duration = Duration::from_secs(1);
/// How long a benchmark client waits for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// For each SMTP reply, from the command (or the connect) to its last line.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

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

/// The ratios of mcluster's figure to the reference's in each round that measured both (and
/// the reference above 0); each side is (round, figure).
pub fn round_ratios(ours: &[(usize, f64)], reference: &[(usize, f64)]) -> Vec<f64> {
    ours.iter()
        .filter_map(|&(round, figure)| {
            let &(_, reference) = reference.iter().find(|&&(r, _)| r == round)?;
            (reference > 0.0).then(|| figure / reference)
        })
        .collect()
}

/// Where the ratio of two systems' figures over the rounds lies at most:
/// [min(ours)/max(reference), max(ours)/min(reference)].
pub fn band(ours: &[f64], reference: &[f64]) -> (f64, f64) {
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min(ours) / max(reference), max(ours) / min(reference))
}

/// `amount` per second of `secs`; 0 for no time.
pub fn per_second(amount: f64, secs: f64) -> f64 {
    if secs > 0.0 { amount / secs } else { 0.0 }
}

/// The systems in the order round `round` measures them: as given in even rounds, reversed in
/// odd ones, so that neither always goes first.
pub fn round_order<S: Copy>(systems: &[S], round: usize) -> Vec<S> {
    let mut order = systems.to_vec();
    if round % 2 == 1 {
        order.reverse();
    }
    order
}

/// Keeps `error` in `shown` unless that holds [`SHOWN_ERRORS`] already.
pub fn keep_first(shown: &mut Vec<String>, error: String) {
    if shown.len() < SHOWN_ERRORS {
        shown.push(error);
    }
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
    dot_stuff(message(headers, size, Body::Words, rng).as_bytes())
}

/// An RFC 5322 message of exactly `size` bytes (not dot-stuffed; or just the headers when they
/// are longer): `headers` in order, then a random body (so no two messages share content) in
/// CRLF lines of at most 78 characters once stuffed, with a lone-dot line and a line starting
/// with a dot every 25 lines.
pub fn text_message(headers: &[(&str, String)], size: usize, rng: &mut impl Rng) -> String {
    message(headers, size, Body::WithLoneDots, rng)
}

/// How a generated body is cut into lines.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Body {
    /// Lines of words only. A full line never leaves 1 or 2 bytes, which no later line could
    /// fill exactly, unless it is the last line.
    Words,
    /// Also a lone-dot line every 25 lines while there is room. A full line never leaves a
    /// single byte, which no line could fill.
    WithLoneDots,
}

/// `headers` in order, then a `body` of random words that makes the text `size` bytes long
/// (or just the headers when they are longer), with a line starting with a dot every 25 lines.
fn message(
    headers: &[(&str, impl AsRef<str>)],
    size: usize,
    body: Body,
    rng: &mut impl Rng,
) -> String {
    let mut text = String::with_capacity(size + 64);
    for (name, value) in headers {
        text.push_str(name);
        text.push_str(": ");
        text.push_str(value.as_ref());
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    let mut n_line = 0usize;
    loop {
        let remaining = size.saturating_sub(text.len());
        if remaining < 2 {
            break;
        }
        if body == Body::WithLoneDots && n_line % 25 == 7 && remaining > 4 * LINE_WIDTH {
            text.push_str(".\r\n");
        } else {
            let width = match body {
                Body::Words => line_width(remaining - 2, 3, 3),
                Body::WithLoneDots => line_width(remaining - 2, 2, 1),
            };
            push_words(&mut text, width, n_line % 25 == 13, rng);
            text.push_str("\r\n");
        }
        n_line += 1;
    }
    text
}

/// The width of the next body line, `room` being the bytes the message still takes after this
/// line's line end: all of them if they fit, else a full line, or one `shorter` characters
/// short where a full line would leave fewer than `least_left` bytes.
fn line_width(room: usize, least_left: usize, shorter: usize) -> usize {
    if room <= LINE_WIDTH {
        room
    } else if room < LINE_WIDTH + least_left {
        LINE_WIDTH - shorter
    } else {
        LINE_WIDTH
    }
}

/// `CTL --config CONFIG ARGS` with `input` on its standard input (none: an empty one) and its
/// output in `dir` (`ctl.out`, `ctl.err`), killed after `timeout`; its stdout, or an error with
/// its stderr.
pub fn run_ctl(
    ctl: &Path,
    config: &Path,
    args: &[&str],
    input: Option<&str>,
    dir: &Path,
    timeout: Duration,
) -> Result<String> {
    let stdout_path = dir.join("ctl.out");
    let stderr_path = dir.join("ctl.err");
    let mut child = Command::new(ctl)
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(File::create(&stdout_path).context("create ctl.out")?)
        .stderr(File::create(&stderr_path).context("create ctl.err")?)
        .spawn()
        .with_context(|| format!("run mclusterctl {}", args.join(" ")))?;
    // A few bytes fit in the pipe, so this cannot block; the pipe closes after it.
    let written = match (input, child.stdin.take()) {
        (Some(input), Some(mut stdin)) => stdin.write_all(input.as_bytes()),
        _ => Ok(()),
    };
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
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = fs::read_to_string(&stdout_path).unwrap_or_default();
    if !status.success() {
        bail!(
            "mclusterctl {} failed ({status}): {}",
            args.join(" "),
            fs::read_to_string(&stderr_path).unwrap_or_default().trim()
        );
    }
    written.context("write to mclusterctl")?;
    Ok(stdout)
}

/// A new work directory `PREFIX...` in `parent` (created if missing), said on stdout with its
/// file system and the load; dropping it removes it.
pub fn work_dir(parent: &Path, prefix: &str) -> Result<TempDir> {
    fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    let work = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(parent)
        .context("create the work directory")?;
    println!(
        "work dir {} on {}; load {}",
        work.path().display(),
        filesystem_of(work.path()),
        loadavg()
    );
    Ok(work)
}

/// Whether the benchmark runs as root.
pub fn is_root() -> Result<bool> {
    Ok(fs::metadata("/proc/self").context("read /proc/self")?.uid() == 0)
}

/// `chmod MODE PATH`.
pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))
}

/// Runs `session(i)` for each i below `n_sessions`, each in a thread of its own, and returns
/// what they returned, in order; a thread that panicked is an error.
pub fn run_sessions<T: Send>(
    n_sessions: usize,
    session: impl Fn(usize) -> T + Sync,
) -> Result<Vec<T>> {
    in_threads(n_sessions, session)
        .into_iter()
        .map(|joined| joined.map_err(|_| anyhow!("a client thread panicked")))
        .collect()
}

/// [`run_sessions`], with each thread's panic handed back as its result.
pub fn in_threads<T: Send>(
    n_threads: usize,
    work: impl Fn(usize) -> T + Sync,
) -> Vec<thread::Result<T>> {
    let work = &work;
    thread::scope(|scope| {
        let handles: Vec<_> = (0..n_threads)
            .map(|i| scope.spawn(move || work(i)))
            .collect();
        handles.into_iter().map(|handle| handle.join()).collect()
    })
}

/// Calls `attempt` every `pause` until a server is ready; how long that took. `attempt` fails
/// when waiting is pointless (a stop signal, a server that exited) and otherwise says whether
/// the server is ready (the inner result). After `timeout` the inner result is the last reason
/// it was not.
pub fn wait_ready(
    timeout: Duration,
    pause: Duration,
    mut attempt: impl FnMut() -> Result<Result<()>>,
) -> Result<Result<Duration>> {
    let started = Instant::now();
    let mut last_error = anyhow!("not tried yet");
    while started.elapsed() < timeout {
        match attempt()? {
            Ok(()) => return Ok(Ok(started.elapsed())),
            Err(err) => last_error = err,
        }
        thread::sleep(pause);
    }
    Ok(Err(last_error))
}

/// The session open in `slot`, or a new one from `connect`, kept there.
pub fn reuse_or_connect<T>(
    slot: &mut Option<T>,
    connect: impl FnOnce() -> Result<T>,
) -> Result<&mut T> {
    match slot {
        Some(session) => Ok(session),
        None => Ok(slot.insert(connect()?)),
    }
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

/// `text` as it goes on the wire after DATA (without the final dot): every line starting with
/// a dot gets another.
pub fn dot_stuff(text: &[u8]) -> Vec<u8> {
    let mut wire = Vec::with_capacity(text.len() + text.len() / 50 + 8);
    for line in text.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            wire.push(b'.');
        }
        wire.extend_from_slice(line);
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

    #[test]
    fn ratios_pair_rounds_and_the_band_spans_all_of_them() {
        let ours = [(0, 20.0), (1, 30.0), (2, 40.0)];
        // Round 1 has no reference figure, round 2 a zero one.
        let reference = [(2, 0.0), (0, 10.0), (3, 50.0)];
        assert_eq!(round_ratios(&ours, &reference), [2.0]);
        assert_eq!(band(&[20.0, 40.0], &[10.0, 20.0]), (1.0, 4.0));
        assert_eq!(round_order(&['m', 'p'], 0), ['m', 'p']);
        assert_eq!(round_order(&['m', 'p'], 3), ['p', 'm']);
    }
}
