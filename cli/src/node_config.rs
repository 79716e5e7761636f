//! The files mclusterctl writes for mclusterd: `mclusterd.toml` (per-node settings, format of
//! deploy/mclusterd.example.toml) and the first node's one-time `bootstrap.toml`.

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::api::Role;

#[cfg(test)]
mod tests;

/// The part of mclusterd.toml that mclusterctl writes; the node defaults everything else
/// (`[raft]`, `[log]`, and whatever `[mail]` leaves out). Parsing ignores the sections and keys
/// it does not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NodeFile {
    pub node_id: u64,
    pub name: String,
    pub role: Role,
    pub data_dir: String,
    pub raft_addr: String,
    pub admin_addr: String,
    pub tls: TlsSection,
    /// Data nodes only, and only when some mail option was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<MailSection>,
    /// Data nodes only, and only when `--vip` was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip: Option<VipSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<JoinSection>,
}

/// Paths relative to the config file's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TlsSection {
    pub ca_cert: String,
    pub cert: String,
    pub key: String,
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection {
            ca_cert: "ca.crt".to_owned(),
            cert: "node.crt".to_owned(),
            key: "node.key".to_owned(),
        }
    }
}

/// The mail options given to `init` or `join`. A key left out takes the node's default; an empty
/// listen address turns that listener off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MailSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtps: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pop3: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pop3s: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imap: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imaps: Option<String>,
}

impl MailSection {
    /// The listen addresses that were given, by their config key.
    pub fn listeners(&self) -> [(&'static str, Option<&str>); 7] {
        let MailSection {
            hostname: _,
            smtp,
            submission,
            smtps,
            pop3,
            pop3s,
            imap,
            imaps,
        } = self;
        [
            ("smtp", smtp.as_deref()),
            ("submission", submission.as_deref()),
            ("smtps", smtps.as_deref()),
            ("pop3", pop3.as_deref()),
            ("pop3s", pop3s.as_deref()),
            ("imap", imap.as_deref()),
            ("imaps", imaps.as_deref()),
        ]
    }

    /// `None` when nothing was given, so that the file gets no `[mail]` section at all.
    pub fn into_section(self) -> Option<MailSection> {
        (self != MailSection::default()).then_some(self)
    }
}

/// The node's listen address for each mail service when `[mail]` leaves it out, in the order of
/// [`MailSection::listeners`].
pub const NODE_DEFAULT_LISTENERS: [(&str, &str); 7] = [
    ("smtp", "0.0.0.0:25"),
    ("submission", "0.0.0.0:587"),
    ("smtps", "0.0.0.0:465"),
    ("pop3", "0.0.0.0:110"),
    ("pop3s", "0.0.0.0:995"),
    ("imap", "0.0.0.0:143"),
    ("imaps", "0.0.0.0:993"),
];

/// The floating addresses of a data node (see crate::vip). The node holds them while it leads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct VipSection {
    /// CIDRs such as `192.0.2.10/24`.
    pub addresses: Vec<String>,
    /// `lo` is loopback mode (addresses in 127.0.0.0/8, nothing added to the interface).
    pub interface: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BootstrapSection {
    pub file: String,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct JoinSection {
    /// Admin API URLs of existing members.
    pub seeds: Vec<String>,
    /// The join token.
    pub token: String,
}

impl std::fmt::Debug for JoinSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinSection")
            .field("seeds", &self.seeds)
            .field("token", &"[elided]")
            .finish()
    }
}

impl NodeFile {
    pub fn to_toml(&self) -> Result<String> {
        let body = toml::to_string(self).context("serialize node config")?;
        Ok(format!(
            "# mclusterd config written by mclusterctl. Options not listed take their defaults;\n\
             # deploy/mclusterd.example.toml lists them all. Relative paths are relative to this\n\
             # file's directory.\n{body}"
        ))
    }

    pub fn parse(text: &str) -> Result<NodeFile> {
        toml::from_str(text).context("parse node config")
    }
}

/// `text` (an mclusterd.toml) with `mail` appended as its `[mail]` section, or `None` if it has
/// one already. Appending rather than rewriting keeps the file's comments and any section
/// mclusterctl does not know.
pub fn add_mail_section(text: &str, mail: &MailSection) -> Result<Option<String>> {
    add_section(text, "mail", mail, |node_file| node_file.mail.is_some())
}

/// `text` with the keys of `mail` that its `[mail]` section lacks inserted right under the
/// section's header, or `None` if it lacks none or has no `[mail]` section (that is
/// [`add_mail_section`]'s case). For a config written before the node had a listener: left out,
/// the listener takes its default, which listens on all addresses. Keys the section has, even
/// as `""`, stay as they are.
pub fn add_missing_mail_keys(text: &str, mail: &MailSection) -> Result<Option<String>> {
    let Some(present) = NodeFile::parse(text)?.mail else {
        return Ok(None);
    };
    let mut merged = toml::Table::try_from(&present).context("serialize the mail section")?;
    let missing: toml::Table = toml::Table::try_from(mail)
        .context("serialize the mail section")?
        .into_iter()
        .filter(|(key, _)| !merged.contains_key(key))
        .collect();
    if missing.is_empty() {
        return Ok(None);
    }
    let keys = toml::to_string(&missing).context("serialize the missing mail keys")?;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let headers: Vec<usize> = (0..lines.len())
        .filter(|&i| is_table_header(lines[i], "mail"))
        .collect();
    let [header] = headers[..] else {
        bail!(
            "found {} `[mail]` header lines where one was expected; add these keys to the [mail] \
             section by hand:\n{keys}",
            headers.len()
        );
    };
    let mut updated = String::with_capacity(text.len() + keys.len() + 1);
    for (i, line) in lines.iter().enumerate() {
        updated.push_str(line);
        if i == header {
            if !line.ends_with('\n') {
                updated.push('\n');
            }
            updated.push_str(&keys);
        }
    }
    merged.extend(missing);
    let expected: MailSection = merged.try_into().context("deserialize the mail section")?;
    let parsed = NodeFile::parse(&updated).context("parse the config with its new mail keys")?;
    ensure!(
        parsed.mail == Some(expected),
        "the new keys did not land in the [mail] section"
    );
    Ok(Some(updated))
}

/// Whether `line` is the header `[name]` of a table, allowing spaces and a comment.
fn is_table_header(line: &str, name: &str) -> bool {
    let code = line.split('#').next().unwrap_or_default();
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    code.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|inner| inner == name)
}

/// `text` with `vip` appended as its `[vip]` section, or `None` if it has one already.
pub fn add_vip_section(text: &str, vip: &VipSection) -> Result<Option<String>> {
    add_section(text, "vip", vip, |node_file| node_file.vip.is_some())
}

fn add_section<T: Serialize>(
    text: &str,
    key: &str,
    section: &T,
    present: impl Fn(&NodeFile) -> bool,
) -> Result<Option<String>> {
    if present(&NodeFile::parse(text)?) {
        return Ok(None);
    }
    let table = toml::Table::from_iter([(
        key.to_owned(),
        toml::Value::try_from(section).with_context(|| format!("serialize the {key} section"))?,
    )]);
    let section =
        toml::to_string(&table).with_context(|| format!("serialize the {key} section"))?;
    let separator = if text.ends_with('\n') { "\n" } else { "\n\n" };
    let updated = format!("{text}{separator}{section}");
    let parsed = NodeFile::parse(&updated)
        .with_context(|| format!("parse the config with its new {key} section"))?;
    ensure!(
        present(&parsed),
        "the new {key} section did not parse as one"
    );
    Ok(Some(updated))
}

/// Everything the first node needs to create the cluster's replicated secrets. The node reads
/// it on its first start and then deletes it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BootstrapFile {
    pub cluster_name: String,
    pub admin_token_sha256: String,
    pub join_token_sha256: String,
    pub ca_cert_pem: String,
    /// Lets the cluster sign the certificates of nodes that join later.
    pub ca_key_pem: String,
}

impl std::fmt::Debug for BootstrapFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapFile")
            .field("cluster_name", &self.cluster_name)
            .field("ca_key_pem", &"[elided]")
            .finish_non_exhaustive()
    }
}

impl BootstrapFile {
    pub fn to_toml(&self) -> Result<String> {
        let body = toml::to_string(self).context("serialize bootstrap file")?;
        Ok(format!(
            "# One-time cluster secrets for the first start of the first node, written by\n\
             # mclusterctl init. The node deletes this file once it has stored them.\n{body}"
        ))
    }

    pub fn parse(text: &str) -> Result<BootstrapFile> {
        toml::from_str(text).context("parse bootstrap file")
    }
}
