//! The files mclusterctl writes for mclusterd: `mclusterd.toml` (per-node settings, format of
//! deploy/mclusterd.example.toml) and the first node's one-time `bootstrap.toml`.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::api::Role;

#[cfg(test)]
mod tests;

/// The part of mclusterd.toml that mclusterctl writes; the node defaults everything else
/// (`[raft]`, `[log]`). Parsing ignores the sections it does not know.
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
