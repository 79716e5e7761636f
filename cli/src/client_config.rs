//! The client config file: which admin URLs to try and the tokens to present (TOML, kebab-case).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::files::{self, PRIVATE};
use crate::secrets::is_token;

#[cfg(test)]
mod tests;

pub const DEFAULT_CLUSTER_NAME: &str = "mcluster";

/// Mirrors client.toml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClientConfig {
    /// Admin API base URLs (`http://host:port` or `https://host:port`), tried in order.
    #[serde(default)]
    pub admin_urls: Vec<String>,
    /// Bearer token for every `/v1/` route. Absent on a machine that may only join nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// Bearer token for `POST /v1/join`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_token: Option<String>,
    /// Bearer token for every `GET` of `/v1/` (`mclusterctl token rotate --read-only`); used
    /// when there is no admin token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_token: Option<String>,
    #[serde(default = "default_cluster_name")]
    pub cluster_name: String,
    /// The cluster CA (PEM), which `https://` admin URLs' certificates must chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert_pem: Option<String>,
}

fn default_cluster_name() -> String {
    DEFAULT_CLUSTER_NAME.to_owned()
}

impl ClientConfig {
    pub fn parse(text: &str) -> Result<ClientConfig> {
        let client_config: ClientConfig = toml::from_str(text).context("parse client config")?;
        client_config.validate()?;
        Ok(client_config)
    }

    pub fn to_toml(&self) -> Result<String> {
        let body = toml::to_string(self).context("serialize client config")?;
        Ok(format!(
            "# mclusterctl client config. Holds the cluster's admin token: keep it private.\n{body}"
        ))
    }

    /// Checks every field; destructured so that a new field does not compile until it is checked.
    pub fn validate(&self) -> Result<()> {
        let ClientConfig {
            admin_urls,
            admin_token,
            join_token,
            read_only_token,
            cluster_name,
            ca_cert_pem,
        } = self;
        for url in admin_urls {
            if !url.starts_with("http://") && !url.starts_with("https://") {
                bail!("admin url {url:?} does not start with http:// or https://");
            }
        }
        if let Some(pem) = ca_cert_pem
            && !pem.contains("-----BEGIN CERTIFICATE-----")
        {
            bail!("ca-cert-pem is not a PEM certificate");
        }
        for (key, token) in [
            ("admin-token", admin_token),
            ("join-token", join_token),
            ("read-only-token", read_only_token),
        ] {
            if let Some(token) = token
                && !is_token(token)
            {
                bail!("{key} is not 64 lowercase hex digits");
            }
        }
        if cluster_name.is_empty() {
            bail!("cluster-name is empty");
        }
        Ok(())
    }

    pub fn load(path: &Path) -> Result<ClientConfig> {
        if !path.exists() {
            bail!(
                "no client config at {} (run `mclusterctl init` or pass --config FILE)",
                path.display()
            );
        }
        let text = files::read_text(path)?;
        ClientConfig::parse(&text).with_context(|| format!("load {}", path.display()))
    }

    /// Writes the file with mode 0600, creating its directory if needed.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            files::create_dir(parent)?;
        }
        files::write_atomic(path, self.to_toml()?.as_bytes(), PRIVATE)
    }

    /// Like [`ClientConfig::save`], but first copies a different existing file to `<path>.bak`,
    /// so that making a new cluster never silently discards the tokens of another one.
    /// Returns the backup's path if it made one.
    pub fn save_replacing(&self, path: &Path) -> Result<Option<PathBuf>> {
        let mut backup = None;
        if path.exists() {
            let old_text = files::read_text(path)?;
            let same = ClientConfig::parse(&old_text).is_ok_and(|old| old == *self);
            if !same {
                let mut backup_path = path.as_os_str().to_owned();
                backup_path.push(".bak");
                let backup_path = PathBuf::from(backup_path);
                files::write_atomic(&backup_path, old_text.as_bytes(), PRIVATE)?;
                backup = Some(backup_path);
            }
        }
        self.save(path)?;
        Ok(backup)
    }

    /// The token `/v1/` requests present: the admin token, else the read-only one (which the
    /// cluster takes for reads only).
    pub fn admin_token(&self) -> Result<&str> {
        self.admin_token
            .as_deref()
            .or(self.read_only_token.as_deref())
            .context("the client config has no admin-token (or read-only-token)")
    }

    pub fn join_token(&self) -> Result<&str> {
        self.join_token
            .as_deref()
            .context("the client config has no join-token")
    }

    /// The admin URL of `admin_addr` in the scheme this config uses: `https://` once any of its
    /// URLs does, or when it has no URLs yet and holds the cluster CA; else `http://` (a client
    /// config an older `mclusterctl init` wrote).
    pub fn url_for(&self, admin_addr: &str) -> String {
        if self.admin_urls.is_empty() && self.ca_cert_pem.is_some() {
            return format!("https://{admin_addr}");
        }
        url_in_scheme_of(&self.admin_urls, admin_addr)
    }

    /// Makes every admin URL `https://` and trusts `ca_pem`, the cluster CA, for them.
    pub fn use_https(&mut self, ca_pem: String) {
        for url in &mut self.admin_urls {
            *url = format!("https://{}", address_of(url));
        }
        self.ca_cert_pem = Some(ca_pem);
    }

    /// Adds `url` at the end unless its address is already listed (with either scheme).
    pub fn add_admin_url(&mut self, url: &str) {
        if !self.admin_urls.iter().any(|known| same_address(known, url)) {
            self.admin_urls.push(url.to_owned());
        }
    }

    /// Removes the URLs of `url`'s address, `http://` or `https://`; returns whether one was
    /// listed.
    pub fn remove_admin_url(&mut self, url: &str) -> bool {
        let n_urls = self.admin_urls.len();
        self.admin_urls.retain(|known| !same_address(known, url));
        self.admin_urls.len() != n_urls
    }
}

/// `https://admin_addr` when any of `urls` is `https://`, else `http://admin_addr`.
pub fn url_in_scheme_of(urls: &[String], admin_addr: &str) -> String {
    if urls.iter().any(|url| url.starts_with("https://")) {
        format!("https://{admin_addr}")
    } else {
        format!("http://{admin_addr}")
    }
}

/// The `host:port` of an admin URL, whatever its scheme.
pub fn address_of(url: &str) -> &str {
    url.trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
}

/// Whether two admin URLs name the same `host:port`, whatever their schemes.
fn same_address(a: &str, b: &str) -> bool {
    address_of(a) == address_of(b)
}

/// The client config path: `--config`, else `$MCLUSTER_CLIENT_CONFIG`, else
/// `$XDG_CONFIG_HOME/mcluster/client.toml`, else `~/.config/mcluster/client.toml`.
/// `env` looks up an environment variable; empty values count as unset.
pub fn resolve_path(
    explicit: Option<PathBuf>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path);
    }
    let var = |name: &str| env(name).filter(|value| !value.is_empty());
    if let Some(path) = var("MCLUSTER_CLIENT_CONFIG") {
        return Ok(PathBuf::from(path));
    }
    let config_home = match var("XDG_CONFIG_HOME") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        _ => {
            let home = var("HOME").context(
                "cannot find the client config: pass --config FILE or set $MCLUSTER_CLIENT_CONFIG",
            )?;
            PathBuf::from(home).join(".config")
        }
    };
    Ok(config_home.join("mcluster").join("client.toml"))
}
