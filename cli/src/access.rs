//! `mclusterctl access list|add|remove`: the cluster-wide block and allow lists
//! (`/v1/access-lists`).

use anyhow::{Context as _, Result, bail};
use serde_json::{Map, Value};

use crate::commands::{Context, print_json};
use crate::table::{Table, unix_time};

#[cfg(test)]
mod tests;

const PATH: &str = "/v1/access-lists";

/// One entry, as `GET /v1/access-lists` lists it.
pub use mcluster_types::api::AccessEntryView as AccessEntry;

/// `mclusterctl access list [block|allow] [--all]`.
pub fn list(ctx: &Context, json: bool, all: bool, only: Option<&str>) -> Result<()> {
    let mut entries: Vec<AccessEntry> = ctx
        .admin_client()?
        .get(PATH)
        .context("list the access lists")?;
    entries.retain(|e| (all || e.active) && only.is_none_or(|l| e.list.eq_ignore_ascii_case(l)));
    if json {
        return print_json(&entries);
    }
    if entries.is_empty() {
        println!("no entries");
        return Ok(());
    }
    print!("{}", render(&entries));
    Ok(())
}

pub fn render(entries: &[AccessEntry]) -> String {
    let mut table = Table::new(&["LIST", "KIND", "PATTERN", "EXPIRES", "COMMENT"]);
    for e in entries {
        let expires = match (e.expires_at, e.active) {
            (None, _) => "never".to_owned(),
            (Some(at), true) => unix_time(at),
            (Some(at), false) => format!("{} (expired)", unix_time(at)),
        };
        table.push_row(vec![
            e.list.clone(),
            e.kind.clone(),
            e.pattern.clone(),
            expires,
            e.comment.clone().unwrap_or_default(),
        ]);
    }
    table.render()
}

/// The `POST` body for an entry; `expires` is a span such as `90s`, `30m`, `1h`, `7d`, `2w`.
pub fn add_body(
    list: &str,
    pattern: &str,
    comment: Option<&str>,
    expires: Option<&str>,
) -> Result<Map<String, Value>> {
    let mut body = Map::new();
    body.insert("list".into(), Value::String(list.to_owned()));
    body.insert("pattern".into(), Value::String(pattern.to_owned()));
    if let Some(comment) = comment {
        body.insert("comment".into(), Value::String(comment.to_owned()));
    }
    if let Some(expires) = expires {
        body.insert("expires-in-secs".into(), Value::from(parse_span(expires)?));
    }
    Ok(body)
}

/// `mclusterctl access add block|allow PATTERN [--comment TEXT] [--expires SPAN]`.
pub fn add(
    ctx: &Context,
    list: &str,
    pattern: &str,
    comment: Option<&str>,
    expires: Option<&str>,
) -> Result<()> {
    let body = add_body(list, pattern, comment, expires)?;
    let entry: AccessEntry = ctx
        .admin_client()?
        .post(PATH, &body, crate::api::REQUEST_TIMEOUT)
        .with_context(|| format!("add {pattern} to the {list} list"))?;
    match entry.expires_at {
        Some(at) => println!(
            "added {} to the {} list until {}",
            entry.pattern,
            entry.list,
            unix_time(at)
        ),
        None => println!("added {} to the {} list", entry.pattern, entry.list),
    }
    Ok(())
}

/// `mclusterctl access remove block|allow PATTERN`.
pub fn remove(ctx: &Context, list: &str, pattern: &str) -> Result<()> {
    let path = format!(
        "{PATH}/{}/{}",
        crate::api::encode_component(list),
        crate::api::encode_component(pattern)
    );
    ctx.admin_client()?
        .delete(&path)
        .with_context(|| format!("remove {pattern} from the {list} list"))?;
    println!("removed {pattern} from the {list} list");
    Ok(())
}

/// Seconds in a span: a number with an optional unit `s`, `m`, `h`, `d` or `w`.
pub fn parse_span(text: &str) -> Result<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let Ok(number) = number.parse::<u64>() else {
        bail!("{text:?} is not a time span (such as 90s, 30m, 1h, 7d, 2w)");
    };
    let unit_secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => bail!("{text:?}: unknown unit {unit:?} (s, m, h, d or w)"),
    };
    number
        .checked_mul(unit_secs)
        .with_context(|| format!("{text:?} is too long"))
}
