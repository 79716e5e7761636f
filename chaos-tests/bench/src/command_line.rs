//! The command line every benchmark with a usage text reads the same way: `--flag VALUE` pairs
//! and lone switches, `--help` (or `-h`) for the usage, counts, lists and seconds checked alike;
//! and the run: the usage on request, an error printed once, as `error: ...` with its causes.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

/// One flag of the command line and its value (empty for a switch).
pub struct Flag {
    pub name: String,
    pub value: String,
}

impl Flag {
    /// A number of at least 1.
    pub fn count(&self) -> Result<usize> {
        parse_count(&self.name, &self.value)
    }

    /// Comma-separated numbers of at least 1.
    pub fn counts(&self) -> Result<Vec<usize>> {
        self.value
            .split(',')
            .map(|item| parse_count(&self.name, item.trim()))
            .collect()
    }

    /// A whole number of seconds, at least 1.
    pub fn seconds(&self) -> Result<Duration> {
        Ok(Duration::from_secs(self.count()? as u64))
    }

    /// `--only`'s value: mcluster alone, or the reference system alone (by any of
    /// `reference_names`, the first of which errors name).
    pub fn only<S>(&self, mcluster: S, reference: S, reference_names: &[&str]) -> Result<Vec<S>> {
        let value = &self.value;
        if value == "mcluster" {
            Ok(vec![mcluster])
        } else if reference_names.contains(&value.as_str()) {
            Ok(vec![reference])
        } else {
            bail!(
                "{} takes mcluster or {}, not {value:?}",
                self.name,
                reference_names[0]
            )
        }
    }

    /// Comma-separated names, each turned into an item by `parse` (None: unknown), without
    /// repeats; at least one.
    pub fn items<T: PartialEq>(&self, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>> {
        let flag = &self.name;
        let mut items = Vec::new();
        for name in self.value.split(',').map(str::trim) {
            let item = parse(name).with_context(|| format!("{flag}: unknown item {name:?}"))?;
            if !items.contains(&item) {
                items.push(item);
            }
        }
        ensure!(!items.is_empty(), "{flag} needs at least one item");
        Ok(items)
    }
}

/// Hands each flag of `args` to `take`, with the value that follows it unless it is one of
/// `switches`; `take` returns false for a flag it does not know, which fails with `usage`.
/// False when the user asked for help (`--help` or `-h`), which ends the reading.
pub fn read_flags(
    mut args: impl Iterator<Item = String>,
    usage: &str,
    switches: &[&str],
    mut take: impl FnMut(&Flag) -> Result<bool>,
) -> Result<bool> {
    while let Some(name) = args.next() {
        if name == "--help" || name == "-h" {
            return Ok(false);
        }
        let value = if switches.contains(&name.as_str()) {
            String::new()
        } else {
            args.next()
                .with_context(|| format!("{name} needs a value\n{usage}"))?
        };
        let flag = Flag { name, value };
        if !take(&flag)? {
            bail!("unknown flag {:?}\n{usage}", flag.name);
        }
    }
    Ok(true)
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

/// Runs a benchmark: `run` with the options `parse` reads from the command line, or the usage
/// when the user asked for help (`parse` gave None). An error is printed, and fails the exit
/// status.
pub fn run_main<O>(
    usage: &str,
    parse: impl FnOnce(std::iter::Skip<std::env::Args>) -> Result<Option<O>>,
    run: impl FnOnce(O) -> Result<()>,
) -> ExitCode {
    let result = parse(std::env::args().skip(1)).and_then(|options| match options {
        Some(options) => run(options),
        None => {
            println!("{usage}");
            Ok(())
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests;
