//! `mclusterctl outbound show|set`: the cluster-wide outbound delivery policy
//! (`GET`/`PUT /v1/outbound-policy`), and the smarthost password read from a file or standard
//! input, so that it stays out of the process list and the shell history.
//!
//! The cluster never answers with the password, only whether one is set; it checks every key and
//! value and changes all of them or none.

use std::io::{BufRead, IsTerminal};
use std::path::Path;

use anyhow::{Context as _, Result, ensure};
use serde_json::{Map, Value};

use crate::api::Client;
use crate::commands::{self, Context};
use crate::files;
use crate::table::Table;

#[cfg(test)]
mod tests;

const PATH: &str = "/v1/outbound-policy";
/// The key of the password, which `set` also takes from `--smarthost-password-file`.
pub const PASSWORD_KEY: &str = "smarthost-password";
/// Keys whose values are text even when they read as a number (a user name "1234").
const TEXT_KEYS: [&str; 5] = [
    "tls",
    "smarthost",
    "smarthost-mode",
    "smarthost-user",
    PASSWORD_KEY,
];
/// The most bytes read from a password file or standard input.
const MAX_PASSWORD_INPUT: u64 = 4096;

/// `GET /v1/outbound-policy`.
pub use mcluster_types::api::OutboundPolicyView as OutboundPolicy;

pub fn fetch(client: &Client) -> Result<OutboundPolicy> {
    client.get(PATH)
}

/// `PUT /v1/outbound-policy` with some of the policy's keys; answers the whole new policy.
pub fn update(client: &Client, changes: &Map<String, Value>) -> Result<OutboundPolicy> {
    client.put_answer(PATH, changes)
}

pub fn render(policy: &OutboundPolicy) -> String {
    let OutboundPolicy {
        retry_interval_secs,
        max_attempts,
        delay_warning_secs,
        concurrency,
        per_domain_concurrency,
        tls,
        smarthost,
        smarthost_mode,
        smarthost_user,
        smarthost_password_set,
    } = policy;
    let or_none = |text: &str| {
        if text.is_empty() {
            "(none)".to_owned()
        } else {
            text.to_owned()
        }
    };
    let password = if *smarthost_password_set {
        "(set)"
    } else {
        "(none)"
    };
    let mut table = Table::new(&["KEY", "VALUE"]);
    for (key, value) in [
        ("retry-interval-secs", retry_interval_secs.to_string()),
        ("max-attempts", max_attempts.to_string()),
        ("delay-warning-secs", delay_warning_secs.to_string()),
        ("concurrency", concurrency.to_string()),
        ("per-domain-concurrency", per_domain_concurrency.to_string()),
        ("tls", tls.clone()),
        ("smarthost", or_none(smarthost)),
        ("smarthost-mode", smarthost_mode.clone()),
        ("smarthost-user", or_none(smarthost_user)),
        (PASSWORD_KEY, password.to_owned()),
    ] {
        table.push_row(vec![key.to_owned(), value]);
    }
    table.render()
}

/// `mclusterctl outbound show [--json]`.
pub fn show(ctx: &Context, json: bool) -> Result<()> {
    let policy = fetch(&ctx.admin_client()?).context("get the outbound policy")?;
    if json {
        let text = serde_json::to_string_pretty(&policy).context("encode JSON")?;
        println!("{text}");
    } else {
        print!("{}", render(&policy));
    }
    Ok(())
}

/// `mclusterctl outbound set [KEY=VALUE...] [--smarthost-password-file FILE]`.
pub fn set(ctx: &Context, settings: &[String], password_file: Option<&Path>) -> Result<()> {
    let mut changes = parse_settings(settings)?;
    if changes.contains_key(PASSWORD_KEY) {
        ensure!(
            password_file.is_none(),
            "{PASSWORD_KEY} is given twice: as KEY=VALUE and with --smarthost-password-file"
        );
        eprintln!(
            "warning: a password on the command line shows in the process list and the shell \
             history; prefer --smarthost-password-file FILE (or - for standard input)"
        );
    }
    if let Some(path) = password_file {
        let password = read_password(path)?;
        changes.insert(PASSWORD_KEY.to_owned(), Value::String(password));
    }
    ensure!(
        !changes.is_empty(),
        "nothing to set: pass KEY=VALUE or --smarthost-password-file"
    );
    let policy = update(&ctx.admin_client()?, &changes).context("set the outbound policy")?;
    println!("set the outbound policy; it is now:");
    print!("{}", render(&policy));
    Ok(())
}

/// `KEY=VALUE` arguments as the JSON object `PUT /v1/outbound-policy` takes: the text keys as
/// text, the others as a number or boolean when they read as one. The cluster checks the keys.
pub fn parse_settings(settings: &[String]) -> Result<Map<String, Value>> {
    commands::parse_settings(
        settings,
        "outbound policy",
        "retry-interval-secs=600",
        &TEXT_KEYS,
    )
}

/// The password in `path`, or on standard input for `-` (which must not be a terminal, where
/// it would echo).
pub fn read_password(path: &Path) -> Result<String> {
    use std::io::Read;
    if path == Path::new("-") {
        let stdin = std::io::stdin();
        ensure!(
            !stdin.is_terminal(),
            "standard input is a terminal, where the password would echo: pipe it in \
             (... | mclusterctl outbound set --smarthost-password-file -) or name a file"
        );
        let mut line = String::new();
        stdin
            .lock()
            .take(MAX_PASSWORD_INPUT)
            .read_line(&mut line)
            .context("read the smarthost password from standard input")?;
        return password_from_text(&line, "standard input");
    }
    let text = files::read_text(path)?;
    password_from_text(&text, &path.display().to_string())
}

/// The password in `text`: one line, without its line end.
pub fn password_from_text(text: &str, origin: &str) -> Result<String> {
    let password = text
        .strip_suffix('\n')
        .map(|rest| rest.strip_suffix('\r').unwrap_or(rest))
        .unwrap_or(text);
    ensure!(
        !password.is_empty(),
        "no smarthost password in {origin} (to remove the password, set smarthost-user= \
         smarthost-password=)"
    );
    ensure!(
        !password.contains(['\n', '\r']),
        "{origin} holds more than one line; the smarthost password is one line"
    );
    Ok(password.to_owned())
}
