//! Block and allow list entries: which list, and the patterns for client networks, domains
//! and addresses, parsed, matched and written back the same way on every node.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// Which list an entry is on.
/// (No serde renames: the log is bincode; the API uses `as_str`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AccessList {
    /// Refused.
    Block,
    /// Exempt: from the block list, and from the anti-spam checks.
    Allow,
}

impl AccessList {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessList::Block => "block",
            AccessList::Allow => "allow",
        }
    }
}

impl fmt::Display for AccessList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AccessList {
    type Err = String;

    fn from_str(s: &str) -> Result<AccessList, String> {
        match s.to_ascii_lowercase().as_str() {
            "block" => Ok(AccessList::Block),
            "allow" => Ok(AccessList::Allow),
            _ => Err(format!("unknown list {s:?} (block or allow)")),
        }
    }
}

/// A domain as a pattern: one name, or every name under it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DomainPattern {
    /// This name only (lower case, no trailing dot).
    Exact(String),
    /// `*.example.com`: every name that ends in `.example.com`, not `example.com` itself.
    Subdomains(String),
    /// `*`: any domain; only as the domain part of an address pattern (`user@*`).
    Any,
}

impl DomainPattern {
    /// Whether `domain` (any case, trailing dot or not) matches.
    pub fn matches(&self, domain: &str) -> bool {
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        match self {
            DomainPattern::Exact(name) => domain.eq_ignore_ascii_case(name),
            DomainPattern::Subdomains(parent) => {
                // At least one label, a dot, then the parent.
                let bytes = domain.as_bytes();
                bytes.len() > parent.len() + 1 && {
                    let split = bytes.len() - parent.len();
                    bytes[split - 1] == b'.'
                        && bytes[split..].eq_ignore_ascii_case(parent.as_bytes())
                }
            }
            DomainPattern::Any => true,
        }
    }

    fn parse(text: &str, any_allowed: bool) -> Result<DomainPattern, String> {
        if text == "*" {
            return if any_allowed {
                Ok(DomainPattern::Any)
            } else {
                Err("\"*\" alone would match every domain".into())
            };
        }
        let (wild, name) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.contains('*') {
            return Err(format!(
                "{text:?}: a wildcard goes only at the start, as a whole label (*.example.com)"
            ));
        }
        check_domain_name(name).map_err(|why| format!("{text:?}: {why}"))?;
        Ok(if wild {
            DomainPattern::Subdomains(name.to_owned())
        } else {
            DomainPattern::Exact(name.to_owned())
        })
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainPattern::Exact(name) => f.write_str(name),
            DomainPattern::Subdomains(name) => write!(f, "*.{name}"),
            DomainPattern::Any => f.write_str("*"),
        }
    }
}

/// A lower-case DNS name: dot-separated labels of letters, digits, `-` and `_`.
fn check_domain_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty domain".into());
    }
    if name.len() > 253 {
        return Err("domain longer than 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label in domain".into());
        }
        if label.len() > 63 {
            return Err("domain label longer than 63 characters".into());
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err("a domain has only letters, digits, '-', '_' and dots".into());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a domain label cannot start or end with '-'".into());
        }
    }
    Ok(())
}

/// What an entry matches. Written as text (`FromStr`/`Display`): `192.0.2.7`, `2001:db8::/32`,
/// `example.com`, `*.example.com`, `user@example.com`, `*@example.com`, `user@*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AccessPattern {
    /// A client address or network; a bare address is a /32 or /128. Host bits are zero.
    Network { addr: IpAddr, prefix: u8 },
    /// A domain: the HELO name or the sender's domain.
    Domain(DomainPattern),
    /// An address: the sender (MAIL FROM) or a recipient (RCPT TO). `local` None is `*`.
    Address {
        local: Option<String>,
        domain: DomainPattern,
    },
}

impl AccessPattern {
    /// The kind of pattern, as the API names it.
    pub fn kind(&self) -> &'static str {
        match self {
            AccessPattern::Network { .. } => "network",
            AccessPattern::Domain(_) => "domain",
            AccessPattern::Address { .. } => "address",
        }
    }

    /// The network of `prefix` bits that holds `ip` (IPv4-mapped IPv6 counts as IPv4; a prefix
    /// longer than the family's is cut to it): the pattern to look up for `ip` in a table
    /// keyed by pattern.
    pub fn network_containing(ip: IpAddr, prefix: u8) -> AccessPattern {
        let ip = ip.to_canonical();
        let prefix = prefix.min(if ip.is_ipv4() { 32 } else { 128 });
        AccessPattern::Network {
            addr: network_of(ip, prefix),
            prefix,
        }
    }

    /// Whether this network pattern holds `ip` (IPv4-mapped IPv6 counts as IPv4). Other kinds
    /// never match an IP.
    pub fn matches_ip(&self, ip: IpAddr) -> bool {
        let AccessPattern::Network { addr, prefix } = self else {
            return false;
        };
        match (addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask_bits(u128::from(*prefix), 32) as u32;
                u32::from(*net) == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask_bits(u128::from(*prefix), 128);
                u128::from(*net) == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// Whether this domain pattern matches `domain`. Other kinds never match a bare domain.
    pub fn matches_domain(&self, domain: &str) -> bool {
        match self {
            AccessPattern::Domain(pattern) => pattern.matches(domain),
            _ => false,
        }
    }

    /// Whether this address pattern matches `address` (`local@domain`, any case). Other kinds
    /// never match an address.
    pub fn matches_address(&self, address: &str) -> bool {
        let AccessPattern::Address { local, domain } = self else {
            return false;
        };
        let Some((addr_local, addr_domain)) = address.rsplit_once('@') else {
            return false;
        };
        local
            .as_ref()
            .is_none_or(|l| l.eq_ignore_ascii_case(addr_local))
            && domain.matches(addr_domain)
    }
}

/// The top `prefix` of `width` bits set, in the low `width` bits (so for IPv4 the result fits
/// in a u32 and the callers' `as u32` keeps every bit).
fn mask_bits(prefix: u128, width: u32) -> u128 {
    if prefix == 0 {
        0
    } else {
        (u128::MAX << (128 - prefix as u32)) >> (128 - width)
    }
}

impl std::str::FromStr for AccessPattern {
    type Err = String;

    fn from_str(text: &str) -> Result<AccessPattern, String> {
        let text = text.trim().to_ascii_lowercase();
        if text.is_empty() {
            return Err("empty pattern".into());
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{text:?}: a pattern has no spaces or control characters"
            ));
        }
        if let Some((local, domain)) = text.rsplit_once('@') {
            return parse_address(&text, local, domain);
        }
        if let Some((addr, prefix)) = text.split_once('/') {
            return parse_network(&text, addr, Some(prefix));
        }
        if let Ok(addr) = text.parse::<IpAddr>() {
            return parse_network(&text, &addr.to_string(), None);
        }
        if text.contains(':') {
            return Err(format!("{text:?} is not an IP address"));
        }
        DomainPattern::parse(&text, false).map(AccessPattern::Domain)
    }
}

fn parse_address(text: &str, local: &str, domain: &str) -> Result<AccessPattern, String> {
    let local = match local {
        "" => return Err(format!("{text:?}: empty local part (use *@domain for any)")),
        "*" => None,
        l if l.contains('*') => {
            return Err(format!(
                "{text:?}: a wildcard in the local part must be the whole part (*@example.com)"
            ));
        }
        l if l.contains(['<', '>', '@', '"']) => {
            return Err(format!("{text:?}: not a plain address"));
        }
        l => Some(l.to_owned()),
    };
    if domain.is_empty() {
        return Err(format!("{text:?}: empty domain (use user@* for any)"));
    }
    let domain = DomainPattern::parse(domain, true)?;
    if local.is_none() && domain == DomainPattern::Any {
        return Err(format!("{text:?} would match every address"));
    }
    Ok(AccessPattern::Address { local, domain })
}

fn parse_network(text: &str, addr: &str, prefix: Option<&str>) -> Result<AccessPattern, String> {
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{text:?}: {addr:?} is not an IP address"))?;
    // An IPv4-mapped address is stored as the IPv4 address it is.
    let (addr, max) = match addr.to_canonical() {
        IpAddr::V4(v4) if addr.is_ipv6() => (IpAddr::V4(v4), 32u8),
        IpAddr::V4(_) => (addr, 32),
        IpAddr::V6(_) => (addr, 128),
    };
    let prefix = match prefix {
        None => max,
        Some(p) => {
            let p: u8 = p
                .parse()
                .map_err(|_| format!("{text:?}: {p:?} is not a prefix length"))?;
            if p > max {
                return Err(format!(
                    "{text:?}: a prefix length is at most {max} for this address family"
                ));
            }
            p
        }
    };
    let pattern = AccessPattern::Network { addr, prefix };
    if !pattern.matches_ip(addr) {
        let net = network_of(addr, prefix);
        return Err(format!(
            "{text:?} has host bits set: did you mean {net}/{prefix}?"
        ));
    }
    Ok(pattern)
}

fn network_of(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            IpAddr::V4((u32::from(v4) & mask_bits(u128::from(prefix), 32) as u32).into())
        }
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & mask_bits(u128::from(prefix), 128)).into()),
    }
}

impl fmt::Display for AccessPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessPattern::Network { addr, prefix } => {
                let full = if addr.is_ipv4() { 32 } else { 128 };
                if *prefix == full {
                    write!(f, "{addr}")
                } else {
                    write!(f, "{addr}/{prefix}")
                }
            }
            AccessPattern::Domain(domain) => write!(f, "{domain}"),
            AccessPattern::Address { local, domain } => {
                write!(f, "{}@{domain}", local.as_deref().unwrap_or("*"))
            }
        }
    }
}

/// One entry of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    pub list: AccessList,
    pub pattern: AccessPattern,
    /// Why, for the operator; also the reason a refused client is told.
    pub comment: Option<String>,
    /// Unix seconds, decided by the proposer.
    pub created_at: u64,
    /// Unix seconds after which the entry no longer matches (None: never).
    pub expires_at: Option<u64>,
}

impl AccessEntry {
    /// Whether the entry still matches at unix time `now`.
    pub fn active(&self, now: u64) -> bool {
        self.expires_at.is_none_or(|end| now < end)
    }
}
