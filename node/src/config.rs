//! The node's configuration file: the TOML shape (`ConfigFile`), and the validated runtime
//! `Config` built from it by destructuring every field.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use raft_store::{ClusterVersion, NodeId, Role};
use serde::Deserialize;

use crate::privilege::Account;
use crate::smtp::filters::{ClamdConfig, Filters, OnError, SpamdConfig, VirusAction};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct ConfigFile {
    pub node_id: NodeId,
    pub name: String,
    pub role: Role,
    pub data_dir: PathBuf,
    pub raft_addr: String,
    pub admin_addr: String,
    /// Serve the admin API over plain HTTP too, once the cluster takes HTTPS only (cluster
    /// version 3): allowed only when `admin-addr` is a loopback address, since plain HTTP
    /// carries the admin token in clear.
    pub admin_plain_http: bool,
    /// The service user a node started as root becomes (see `privilege.rs`); empty: stay.
    pub user: String,
    /// Its group; empty: the user's primary group.
    pub group: String,
    pub tls: TlsFile,
    pub raft: RaftFile,
    pub log: LogFile,
    pub mail: MailFile,
    pub vip: VipFile,
    pub outbound: OutboundFile,
    pub inbound_checks: InboundChecksFile,
    pub filters: FiltersFile,
    pub bootstrap: BootstrapFile,
    pub join: JoinFile,
    pub upgrade: UpgradeFile,
}

/// Content filters run on every message SMTP accepts (see `smtp/filters.rs`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct FiltersFile {
    pub spamd: SpamdFile,
    pub clamd: ClamdFile,
}

/// What to do when a scanner cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnErrorFile {
    Accept,
    Tempfail,
}

/// The spam scorer, spoken to over spamd's protocol.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct SpamdFile {
    /// "host:port" or a unix socket path; empty: off.
    pub address: String,
    pub timeout_ms: u64,
    pub on_error: OnErrorFile,
    /// Score bands; 0 turns a band off.
    pub tag_score: f64,
    pub junk_score: f64,
    pub reject_score: f64,
    pub subject_tag: String,
    pub max_bytes: u64,
    pub scan_authenticated: bool,
    pub user: String,
}

impl Default for SpamdFile {
    fn default() -> SpamdFile {
        SpamdFile {
            address: String::new(),
            timeout_ms: 5000,
            on_error: OnErrorFile::Accept,
            tag_score: 5.0,
            junk_score: 8.0,
            reject_score: 15.0,
            subject_tag: "[SPAM] ".into(),
            max_bytes: 500 * 1024,
            scan_authenticated: false,
            user: String::new(),
        }
    }
}

/// What a virus finding does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VirusActionFile {
    Reject,
    Junk,
}

/// The virus scanner, spoken to over clamd's INSTREAM.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct ClamdFile {
    /// "host:port" or a unix socket path; empty: off.
    pub address: String,
    pub timeout_ms: u64,
    pub on_error: OnErrorFile,
    pub action: VirusActionFile,
}

impl Default for ClamdFile {
    fn default() -> ClamdFile {
        ClamdFile {
            address: String::new(),
            timeout_ms: 10_000,
            on_error: OnErrorFile::Accept,
            action: VirusActionFile::Reject,
        }
    }
}

/// The floating virtual IP of a data node (see `vip.rs`). Interface names are a property of the
/// machine, so the VIP lives in the node's file; every data node should name the same addresses.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct VipFile {
    /// CIDRs such as "192.0.2.10/24"; empty: no virtual IP.
    pub addresses: Vec<String>,
    /// The interface the addresses go on; "lo" is the loopback mode.
    pub interface: String,
}

/// How this node reaches other mail servers when it is the leader and delivers the outbound
/// queue. What must be the same everywhere (retries, smarthost) is the replicated outbound policy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct OutboundFile {
    /// DNS servers ("ip:port") for MX lookups; empty: the system's (/etc/resolv.conf).
    pub nameservers: Vec<String>,
    /// The port of remote MX hosts: 25, except in tests.
    pub port: u16,
}

impl Default for OutboundFile {
    fn default() -> OutboundFile {
        OutboundFile {
            nameservers: Vec::new(),
            port: 25,
        }
    }
}

/// DNS-based checks of mail arriving on the public SMTP listener from unauthenticated clients
/// (see `smtp/inbound_checks.rs`). Lookups use the `[outbound] nameservers`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct InboundChecksFile {
    /// SPF, DKIM and DMARC verification and the Authentication-Results header.
    pub verify: bool,
    /// What an SPF "fail" of the MAIL FROM domain does.
    pub spf_fail: SpfFailAction,
    /// What a DMARC failure does when the domain publishes p=reject.
    pub dmarc_reject: DmarcAction,
    /// What a DMARC failure does when the domain publishes p=quarantine.
    pub dmarc_quarantine: DmarcAction,
    /// DNS block list zones, asked at connect time; a listed client may write only to postmaster.
    pub dnsbl_zones: Vec<String>,
    /// DNS allow list zones: a client listed in one is not checked against the block lists.
    pub dnswl_zones: Vec<String>,
    /// The HELO/EHLO name must be a FQDN or an address literal, and not claim to be us.
    pub helo: CheckMode,
    /// The client address must have a PTR name that resolves back to it (FCrDNS).
    pub reverse_dns: CheckMode,
    /// How long one DNS question may take.
    pub dns_timeout_ms: u64,
}

impl Default for InboundChecksFile {
    fn default() -> InboundChecksFile {
        InboundChecksFile {
            verify: true,
            spf_fail: SpfFailAction::None,
            dmarc_reject: DmarcAction::Reject,
            dmarc_quarantine: DmarcAction::Quarantine,
            dnsbl_zones: Vec::new(),
            dnswl_zones: Vec::new(),
            helo: CheckMode::Warn,
            reverse_dns: CheckMode::Warn,
            dns_timeout_ms: 3000,
        }
    }
}

/// What an SPF fail does: nothing but the header (`none`), or 550 at MAIL FROM (`reject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpfFailAction {
    None,
    Reject,
}

/// What a DMARC failure does: only the header (`none`), file into Junk (`quarantine`), or 550
/// at the end of DATA (`reject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DmarcAction {
    None,
    Quarantine,
    Reject,
}

/// A HELO or reverse DNS check: `off`, `warn` (log and header), or `reject`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckMode {
    Off,
    Warn,
    Reject,
}

/// The validated `[inbound-checks]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundChecksConfig {
    pub verify: bool,
    pub spf_fail: SpfFailAction,
    pub dmarc_reject: DmarcAction,
    pub dmarc_quarantine: DmarcAction,
    /// Lower case, without a trailing dot.
    pub dnsbl_zones: Vec<String>,
    pub dnswl_zones: Vec<String>,
    pub helo: CheckMode,
    pub reverse_dns: CheckMode,
    pub dns_timeout: Duration,
}

impl Default for InboundChecksConfig {
    fn default() -> InboundChecksConfig {
        InboundChecksFile::default()
            .validate()
            .expect("the default inbound checks are valid")
    }
}

impl InboundChecksFile {
    fn validate(self) -> anyhow::Result<InboundChecksConfig> {
        let InboundChecksFile {
            verify,
            spf_fail,
            dmarc_reject,
            dmarc_quarantine,
            dnsbl_zones,
            dnswl_zones,
            helo,
            reverse_dns,
            dns_timeout_ms,
        } = self;
        if dmarc_quarantine == DmarcAction::Reject {
            bail!(
                "inbound-checks.dmarc-quarantine must be \"quarantine\" or \"none\": \
                 the domain asked for no more than quarantine"
            );
        }
        if !(100..=60_000).contains(&dns_timeout_ms) {
            bail!("inbound-checks.dns-timeout-ms must be 100 to 60000");
        }
        let zones = |key: &str, zones: Vec<String>| -> anyhow::Result<Vec<String>> {
            zones
                .into_iter()
                .map(|zone| {
                    let name = zone.trim_end_matches('.').to_ascii_lowercase();
                    let valid = !name.is_empty()
                        && name.len() <= 200
                        && name.split('.').all(|label| {
                            !label.is_empty()
                                && label.len() <= 63
                                && label
                                    .chars()
                                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                        });
                    if !valid {
                        bail!("inbound-checks.{key}: {zone:?} is not a DNS zone name");
                    }
                    Ok(name)
                })
                .collect()
        };
        Ok(InboundChecksConfig {
            verify,
            spf_fail,
            dmarc_reject,
            dmarc_quarantine,
            dnsbl_zones: zones("dnsbl-zones", dnsbl_zones)?,
            dnswl_zones: zones("dnswl-zones", dnswl_zones)?,
            helo,
            reverse_dns,
            dns_timeout: Duration::from_millis(dns_timeout_ms),
        })
    }
}

/// Mail listeners of a data node (a witness serves no mail and ignores this section).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct MailFile {
    /// Name in greetings and Received headers; empty: the machine's host name.
    pub hostname: String,
    /// Where blobs live; empty: `<data-dir>/blobs`.
    pub blob_dir: String,
    /// Listen addresses; an empty string turns that listener off.
    pub smtp: String,
    pub submission: String,
    pub smtps: String,
    pub pop3: String,
    pub pop3s: String,
    pub imap: String,
    pub imaps: String,
    /// Message data this node holds in memory at once over all SMTP sessions, in MiB.
    pub message_memory_mb: u64,
}

impl Default for MailFile {
    fn default() -> MailFile {
        MailFile {
            hostname: String::new(),
            blob_dir: String::new(),
            smtp: "0.0.0.0:25".into(),
            submission: "0.0.0.0:587".into(),
            smtps: "0.0.0.0:465".into(),
            pop3: "0.0.0.0:110".into(),
            pop3s: "0.0.0.0:995".into(),
            imap: "0.0.0.0:143".into(),
            imaps: "0.0.0.0:993".into(),
            message_memory_mb: 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct TlsFile {
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct RaftFile {
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub snapshot_after_entries: u64,
    pub keep_entries_after_snapshot: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct LogFile {
    pub format: LogFormat,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct BootstrapFile {
    pub file: String,
}

/// Rolling upgrades (docs/OPERATIONS.md, "Upgrades").
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct UpgradeFile {
    /// Raise the active cluster version as soon as every member runs a build that can (the
    /// leader's setting decides; set it alike on every node). Off: only `mclusterctl upgrade
    /// finalize` raises it, so every node can still go back to the previous build until then.
    pub auto_finalize: bool,
}

impl Default for UpgradeFile {
    fn default() -> UpgradeFile {
        UpgradeFile {
            auto_finalize: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct JoinFile {
    pub seeds: Vec<String>,
    pub token: String,
}

impl Default for ConfigFile {
    fn default() -> ConfigFile {
        ConfigFile {
            node_id: 1,
            name: "n1".into(),
            role: Role::Data,
            data_dir: "data".into(),
            raft_addr: "127.0.0.11:7071".into(),
            admin_addr: "127.0.0.11:7070".into(),
            admin_plain_http: false,
            user: String::new(),
            group: String::new(),
            tls: TlsFile::default(),
            raft: RaftFile::default(),
            log: LogFile::default(),
            mail: MailFile::default(),
            vip: VipFile::default(),
            outbound: OutboundFile::default(),
            inbound_checks: InboundChecksFile::default(),
            filters: FiltersFile::default(),
            bootstrap: BootstrapFile::default(),
            join: JoinFile::default(),
            upgrade: UpgradeFile::default(),
        }
    }
}

impl Default for TlsFile {
    fn default() -> TlsFile {
        TlsFile {
            ca_cert: "ca.crt".into(),
            cert: "node.crt".into(),
            key: "node.key".into(),
        }
    }
}

impl Default for RaftFile {
    fn default() -> RaftFile {
        RaftFile {
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 200,
            election_timeout_max_ms: 400,
            snapshot_after_entries: 5000,
            keep_entries_after_snapshot: 1000,
        }
    }
}

impl Default for LogFile {
    fn default() -> LogFile {
        LogFile {
            format: LogFormat::Text,
        }
    }
}

/// The validated configuration a node runs with. Paths are absolute (resolved against the
/// directory of the config file).
#[derive(Debug, Clone)]
pub struct Config {
    pub node_id: NodeId,
    pub name: String,
    pub role: Role,
    pub data_dir: PathBuf,
    pub raft_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// Plain HTTP stays open on the (loopback) admin address after the cluster takes HTTPS
    /// only.
    pub admin_plain_http: bool,
    /// `None`: run as started.
    pub account: Option<Account>,
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub heartbeat_interval: Duration,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    pub snapshot_after_entries: u64,
    pub keep_entries_after_snapshot: u64,
    pub log_format: LogFormat,
    pub hostname: String,
    pub blob_dir: PathBuf,
    /// See `MailFile::message_memory_mb`.
    pub message_memory_bytes: u64,
    pub listeners: Listeners,
    pub vip: Option<VipConfig>,
    pub nameservers: Vec<SocketAddr>,
    pub mx_port: u16,
    pub inbound_checks: InboundChecksConfig,
    pub filters: Filters,
    pub bootstrap_file: Option<PathBuf>,
    pub join: Option<JoinFile>,
    /// The file this was read from (None when parsed from text): a joined node removes its
    /// `[join]` section, and with it the join token, once it is a voter.
    pub source: Option<PathBuf>,
    pub auto_finalize: bool,
    /// The newest cluster version this node runs: this build's, unless a test stands in for
    /// an older build ([`newest_cluster_version`]).
    pub newest_cluster_version: ClusterVersion,
}

/// The test hook that makes this build act as an older one in a mixed-version test:
/// `MCLUSTER_TEST_NEWEST_CLUSTER_VERSION=1` makes the node report, and join as, a build that
/// runs cluster versions up to 1. Never set in production; a value this build cannot
/// honour (0, or newer than it runs) is an error.
pub fn newest_cluster_version(env: Option<std::ffi::OsString>) -> anyhow::Result<ClusterVersion> {
    let Some(value) = env else {
        return Ok(ClusterVersion::NEWEST);
    };
    let version = value
        .to_str()
        .and_then(|v| v.parse().ok())
        .map(ClusterVersion)
        .filter(|v| v.supported())
        .with_context(|| {
            format!(
                "MCLUSTER_TEST_NEWEST_CLUSTER_VERSION={value:?}: this build runs cluster versions \
                 {} to {}",
                ClusterVersion::OLDEST,
                ClusterVersion::NEWEST
            )
        })?;
    Ok(version)
}

/// The mail listeners that are on.
#[derive(Debug, Clone, Default)]
pub struct Listeners {
    pub smtp: Option<SocketAddr>,
    pub submission: Option<SocketAddr>,
    pub smtps: Option<SocketAddr>,
    pub pop3: Option<SocketAddr>,
    pub pop3s: Option<SocketAddr>,
    pub imap: Option<SocketAddr>,
    pub imaps: Option<SocketAddr>,
}

/// The virtual IP as validated.
#[derive(Debug, Clone, PartialEq)]
pub struct VipConfig {
    pub addresses: Vec<VipAddress>,
    pub interface: String,
    /// Loopback mode (interface "lo", addresses in 127.0.0.0/8): the whole of 127/8 is local on
    /// Linux already, so nothing is added to the interface and no ARP is sent; holding the VIP
    /// means listening on it, and only one process can bind an address and port.
    pub loopback: bool,
}

/// One address of the virtual IP with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VipAddress {
    pub ip: IpAddr,
    pub prefix: u8,
}

impl std::str::FromStr for VipAddress {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<VipAddress> {
        let (ip, prefix) = text
            .split_once('/')
            .with_context(|| format!("{text:?} is not a CIDR (address/prefix-length)"))?;
        let ip: IpAddr = ip
            .parse()
            .with_context(|| format!("{text:?}: bad address"))?;
        let prefix: u8 = prefix
            .parse()
            .with_context(|| format!("{text:?}: bad prefix length"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if prefix == 0 || prefix > max {
            bail!("{text:?}: prefix length must be 1 to {max}");
        }
        if ip.is_unspecified() || ip.is_multicast() {
            bail!("{text:?} cannot be a virtual IP");
        }
        Ok(VipAddress { ip, prefix })
    }
}

impl std::fmt::Display for VipAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.ip, self.prefix)
    }
}

impl Listeners {
    /// The services that are on, with their addresses.
    pub fn enabled(&self) -> Vec<(crate::service::Service, SocketAddr)> {
        use crate::service::Service;
        [
            (Service::Smtp, self.smtp),
            (Service::Submission, self.submission),
            (Service::Smtps, self.smtps),
            (Service::Pop3, self.pop3),
            (Service::Pop3s, self.pop3s),
            (Service::Imap, self.imap),
            (Service::Imaps, self.imaps),
        ]
        .into_iter()
        .filter_map(|(service, addr)| Some((service, addr?)))
        .collect()
    }
}

/// A config file that parsed, with the keys it did not understand (to warn about).
pub struct Loaded {
    pub config: Config,
    pub unknown_keys: Vec<String>,
}

/// Reads, parses and validates `path`.
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read config file {}", path.display()))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut loaded =
        parse(&text, &base).with_context(|| format!("load config file {}", path.display()))?;
    loaded.config.source = Some(path.to_path_buf());
    Ok(loaded)
}

/// What stands in the config file for the `[join]` section a voter removed.
pub const JOIN_REMOVED_NOTE: &str = "# [join] (the seeds and the join token) was removed by \
mclusterd once this node became a voter: it needs neither again.";

/// `text` without its `[join]` section, when it has one with a token; None when there is
/// nothing to remove. Everything else stays as written, comments included; the result is
/// parsed again and must equal the old settings but for `[join]`, else this refuses (a join
/// token written some other way, such as an inline table, is for the operator to remove).
pub fn without_join_section(text: &str) -> anyhow::Result<Option<String>> {
    let before: ConfigFile = toml::from_str(text).context("parse the config file")?;
    if before.join.token.is_empty() {
        return Ok(None);
    }
    let mut kept = String::with_capacity(text.len());
    let mut in_join = false;
    let mut removed = false;
    let mut depth = 0usize;
    for line in text.split_inclusive('\n') {
        let starts_table = depth == 0 && line.trim_start().starts_with('[');
        if starts_table {
            let header = line.trim().split('#').next().unwrap_or_default().trim();
            in_join = header.replace(' ', "") == "[join]";
            if in_join {
                kept.push_str(JOIN_REMOVED_NOTE);
                kept.push('\n');
                removed = true;
            }
        }
        depth = bracket_depth_after(line, if starts_table { 0 } else { depth });
        if !in_join {
            kept.push_str(line);
        }
    }
    if !removed {
        bail!("the join token is not in a [join] section");
    }
    let after: ConfigFile =
        toml::from_str(&kept).context("parse the config file without [join]")?;
    let expected = ConfigFile {
        join: JoinFile::default(),
        ..before
    };
    if after != expected {
        bail!("removing the [join] section would change other settings");
    }
    Ok(Some(kept))
}

/// The depth of open `[` of arrays after `line`, starting at `depth`: brackets inside strings
/// and comments do not count, nor does a table header's own pair (it closes on its line).
fn bracket_depth_after(line: &str, mut depth: usize) -> usize {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in line.chars() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' => quote = Some(c),
                '#' => break,
                '[' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    depth
}

pub fn parse(text: &str, base: &Path) -> anyhow::Result<Loaded> {
    let mut unknown_keys = Vec::new();
    let deserializer = toml::Deserializer::parse(text).context("parse TOML")?;
    let file: ConfigFile =
        serde_ignored::deserialize(deserializer, |key| unknown_keys.push(key.to_string()))
            .context("read settings")?;
    Ok(Loaded {
        config: file.validate(base)?,
        unknown_keys,
    })
}

impl ConfigFile {
    pub fn validate(self, base: &Path) -> anyhow::Result<Config> {
        let ConfigFile {
            node_id,
            name,
            role,
            data_dir,
            raft_addr,
            admin_addr,
            admin_plain_http,
            user,
            group,
            tls,
            raft,
            log,
            mail,
            vip,
            outbound,
            inbound_checks,
            filters,
            bootstrap,
            join,
            upgrade,
        } = self;
        let OutboundFile {
            nameservers,
            port: mx_port,
        } = outbound;
        let MailFile {
            hostname,
            blob_dir,
            smtp,
            submission,
            smtps,
            pop3,
            pop3s,
            imap,
            imaps,
            message_memory_mb,
        } = mail;
        let TlsFile { ca_cert, cert, key } = tls;
        let RaftFile {
            heartbeat_interval_ms,
            election_timeout_min_ms,
            election_timeout_max_ms,
            snapshot_after_entries,
            keep_entries_after_snapshot,
        } = raft;
        let LogFile { format: log_format } = log;
        let BootstrapFile {
            file: bootstrap_file,
        } = bootstrap;

        if node_id == 0 {
            bail!("node-id must be 1 or more");
        }
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!("name {name:?} must be non-empty letters, digits, '-' or '_'");
        }
        let raft_addr: SocketAddr = raft_addr
            .parse()
            .with_context(|| format!("raft-addr {raft_addr:?}"))?;
        let admin_addr: SocketAddr = admin_addr
            .parse()
            .with_context(|| format!("admin-addr {admin_addr:?}"))?;
        if admin_plain_http && !admin_addr.ip().is_loopback() {
            bail!(
                "admin-plain-http is allowed only when admin-addr is a loopback address \
                 (127.0.0.0/8 or ::1), and it is {admin_addr}: plain HTTP would carry the admin \
                 token in clear; use https:// with the cluster CA instead"
            );
        }
        if heartbeat_interval_ms == 0 || election_timeout_min_ms <= heartbeat_interval_ms {
            bail!(
                "raft.election-timeout-min-ms must be greater than raft.heartbeat-interval-ms (> 0)"
            );
        }
        if election_timeout_max_ms <= election_timeout_min_ms {
            bail!("raft.election-timeout-max-ms must be greater than raft.election-timeout-min-ms");
        }
        if snapshot_after_entries == 0 {
            bail!("raft.snapshot-after-entries must be 1 or more");
        }
        if !bootstrap_file.is_empty() && !join.seeds.is_empty() {
            bail!(
                "a node either bootstraps a new cluster ([bootstrap]) or joins one ([join]), not both"
            );
        }
        if !join.seeds.is_empty() && join.token.is_empty() {
            bail!("join.token is required with join.seeds");
        }
        let listen = |key: &str, value: String| -> anyhow::Result<Option<SocketAddr>> {
            if value.is_empty() {
                return Ok(None);
            }
            let addr = value
                .parse()
                .with_context(|| format!("mail.{key} {value:?}"))?;
            Ok(Some(addr))
        };
        let listeners = Listeners {
            smtp: listen("smtp", smtp)?,
            submission: listen("submission", submission)?,
            smtps: listen("smtps", smtps)?,
            pop3: listen("pop3", pop3)?,
            pop3s: listen("pop3s", pop3s)?,
            imap: listen("imap", imap)?,
            imaps: listen("imaps", imaps)?,
        };
        let vip = validate_vip(vip, role, &listeners)?;
        let nameservers = nameservers
            .iter()
            .map(|ns| {
                ns.parse()
                    .with_context(|| format!("outbound.nameservers: {ns:?} is not ip:port"))
            })
            .collect::<anyhow::Result<Vec<SocketAddr>>>()?;
        if mx_port == 0 {
            bail!("outbound.port must not be 0");
        }
        let inbound_checks = inbound_checks.validate()?;
        let hostname = if hostname.is_empty() {
            system_hostname()
        } else {
            hostname
        };
        if hostname.is_empty() || hostname.contains(|c: char| c.is_whitespace() || c.is_control()) {
            bail!("mail.hostname {hostname:?} is not a host name");
        }
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let data_dir = resolve(data_dir);
        let blob_dir = if blob_dir.is_empty() {
            data_dir.join("blobs")
        } else {
            resolve(blob_dir.into())
        };
        if user.is_empty() && !group.is_empty() {
            bail!("group needs user");
        }
        if !(64..=1024 * 1024).contains(&message_memory_mb) {
            bail!("mail.message-memory-mb must be between 64 and 1048576");
        }
        let filters = validate_filters(filters)?;
        let account = if user.is_empty() {
            None
        } else {
            Some(crate::privilege::resolve(&user, &group)?)
        };
        Ok(Config {
            node_id,
            name,
            role,
            data_dir,
            raft_addr,
            admin_addr,
            admin_plain_http,
            account,
            ca_cert: resolve(ca_cert),
            cert: resolve(cert),
            key: resolve(key),
            heartbeat_interval: Duration::from_millis(heartbeat_interval_ms),
            election_timeout_min: Duration::from_millis(election_timeout_min_ms),
            election_timeout_max: Duration::from_millis(election_timeout_max_ms),
            snapshot_after_entries,
            keep_entries_after_snapshot,
            log_format,
            hostname,
            blob_dir,
            message_memory_bytes: message_memory_mb * 1024 * 1024,
            listeners,
            vip,
            nameservers,
            mx_port,
            inbound_checks,
            filters,
            bootstrap_file: (!bootstrap_file.is_empty()).then(|| resolve(bootstrap_file.into())),
            join: (!join.seeds.is_empty()).then_some(join),
            source: None,
            auto_finalize: upgrade.auto_finalize,
            newest_cluster_version: newest_cluster_version(std::env::var_os(
                "MCLUSTER_TEST_NEWEST_CLUSTER_VERSION",
            ))?,
        })
    }
}

fn validate_filters(filters: FiltersFile) -> anyhow::Result<Filters> {
    let FiltersFile { spamd, clamd } = filters;
    let SpamdFile {
        address,
        timeout_ms,
        on_error,
        tag_score,
        junk_score,
        reject_score,
        subject_tag,
        max_bytes,
        scan_authenticated,
        user,
    } = spamd;
    let on_error_of = |on_error| match on_error {
        OnErrorFile::Accept => OnError::Accept,
        OnErrorFile::Tempfail => OnError::TempFail,
    };
    let timeout_of = |key: &str, ms: u64| {
        if ms == 0 || ms > 300_000 {
            bail!("{key} must be 1 to 300000");
        }
        Ok(Duration::from_millis(ms))
    };
    let band = |key: &str, score: f64| {
        if !score.is_finite() || score < 0.0 {
            bail!("filters.spamd.{key} must be a score of 0 (off) or more");
        }
        Ok((score > 0.0).then_some(score))
    };
    let spamd = if address.is_empty() {
        None
    } else {
        if subject_tag.contains(|c: char| c.is_control()) {
            bail!("filters.spamd.subject-tag must not hold control characters");
        }
        if user.contains(|c: char| c.is_control() || c.is_whitespace()) {
            bail!("filters.spamd.user must be one word");
        }
        Some(SpamdConfig {
            endpoint: address
                .parse()
                .map_err(|e| anyhow::anyhow!("filters.spamd.address: {e}"))?,
            timeout: timeout_of("filters.spamd.timeout-ms", timeout_ms)?,
            on_error: on_error_of(on_error),
            tag_score: band("tag-score", tag_score)?,
            junk_score: band("junk-score", junk_score)?,
            reject_score: band("reject-score", reject_score)?,
            subject_tag,
            max_bytes,
            scan_authenticated,
            user,
        })
    };
    let ClamdFile {
        address,
        timeout_ms,
        on_error,
        action,
    } = clamd;
    let clamd = if address.is_empty() {
        None
    } else {
        Some(ClamdConfig {
            endpoint: address
                .parse()
                .map_err(|e| anyhow::anyhow!("filters.clamd.address: {e}"))?,
            timeout: timeout_of("filters.clamd.timeout-ms", timeout_ms)?,
            on_error: on_error_of(on_error),
            action: match action {
                VirusActionFile::Reject => VirusAction::Reject,
                VirusActionFile::Junk => VirusAction::Junk,
            },
        })
    };
    Ok(Filters { spamd, clamd })
}

fn validate_vip(
    vip: VipFile,
    role: Role,
    listeners: &Listeners,
) -> anyhow::Result<Option<VipConfig>> {
    let VipFile {
        addresses,
        interface,
    } = vip;
    if addresses.is_empty() {
        return Ok(None);
    }
    if role == Role::Witness {
        bail!("a witness never holds the virtual IP: remove the [vip] section");
    }
    if interface.is_empty() {
        bail!("vip.interface is required with vip.addresses");
    }
    let addresses = addresses
        .iter()
        .map(|a| a.parse().with_context(|| "vip.addresses".to_string()))
        .collect::<anyhow::Result<Vec<VipAddress>>>()?;
    let loopback = interface == "lo";
    for address in &addresses {
        let is_loopback = matches!(address.ip, IpAddr::V4(ip) if ip.is_loopback());
        if loopback && !is_loopback {
            bail!("vip.addresses: {address} is not in 127.0.0.0/8, which loopback mode needs");
        }
        if !loopback && address.ip.is_loopback() {
            bail!("vip.addresses: {address} is a loopback address: use interface = \"lo\"");
        }
    }
    for (service, addr) in listeners.enabled() {
        if addr.ip().is_unspecified() {
            bail!(
                "mail listener {addr} listens on every address, the virtual IP included: \
                 with a [vip], put it on this node's own address ({service:?})"
            );
        }
        if addresses.iter().any(|a| a.ip == addr.ip()) {
            bail!("mail listener {addr} is on the virtual IP: use this node's own address");
        }
    }
    Ok(Some(VipConfig {
        addresses,
        interface,
        loopback,
    }))
}

/// The machine's host name (from the kernel), or "localhost".
fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The bootstrap file `mclusterctl init` writes next to the first node's config.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BootstrapSecrets {
    pub cluster_name: String,
    pub admin_token_sha256: String,
    pub join_token_sha256: String,
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
}

impl BootstrapSecrets {
    pub fn load(path: &Path) -> anyhow::Result<BootstrapSecrets> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("read bootstrap file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parse bootstrap file {}", path.display()))
    }
}
