//! Where mail for an address goes: local accounts (through aliases), a postmaster, or the
//! outbound queue. Part of the store seam: it reads only the applied state.

use raft_store::StateReader;

/// Aliases pointing at aliases are followed this deep at most (a loop ends there).
const MAX_ALIAS_DEPTH: usize = 8;

/// Where mail for an address goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// These enabled accounts (aliases followed), each to its INBOX.
    Local(Vec<String>),
    /// A local domain, but no enabled account answers to the address.
    Unknown,
    /// Not a local domain: the outbound queue.
    Remote,
}

/// Resolves a lowercase `local@domain` address (SMTP RCPT, and the sender of a notice).
pub fn resolve(reader: &StateReader, address: &str) -> Result<Resolved, raft_store::StoreError> {
    let Some((_, domain)) = address.rsplit_once('@') else {
        return Ok(Resolved::Unknown);
    };
    match reader.domain(domain)? {
        Some(d) if d.enabled => {}
        Some(_) => return Ok(Resolved::Unknown),
        None => return Ok(Resolved::Remote),
    }
    let mut accounts = std::collections::BTreeSet::new();
    let mut pending = vec![(address.to_owned(), 0)];
    while let Some((address, depth)) = pending.pop() {
        if let Some(account) = reader.account(&address)? {
            if account.enabled {
                accounts.insert(account.address);
            }
        } else if let Some(alias) = reader.alias(&address)?
            && depth < MAX_ALIAS_DEPTH
        {
            for target in alias.targets {
                pending.push((target.to_ascii_lowercase(), depth + 1));
            }
        }
    }
    if accounts.is_empty() {
        Ok(Resolved::Unknown)
    } else {
        Ok(Resolved::Local(accounts.into_iter().collect()))
    }
}

/// The domain whose postmaster also answers for the bare `<postmaster>` (RFC 5321 4.5.1) and
/// for the local domains that have no postmaster of their own: the first of the mail host name
/// and its parent domains that is an enabled local domain (`mail.example.com` serves
/// `example.com`), else the oldest enabled local domain.
pub fn primary_domain(hostname: &str, domains: &[raft_store::Domain]) -> Option<String> {
    let hostname = hostname.trim_end_matches('.').to_ascii_lowercase();
    let enabled: Vec<&raft_store::Domain> = domains.iter().filter(|d| d.enabled).collect();
    let mut name = hostname.as_str();
    loop {
        if enabled.iter().any(|d| d.name == name) {
            return Some(name.to_owned());
        }
        match name.split_once('.') {
            Some((_, parent)) if parent.contains('.') => name = parent,
            _ => break,
        }
    }
    enabled
        .iter()
        .min_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)))
        .map(|d| d.name.clone())
}

/// Where mail to a postmaster goes: `postmaster@domain` (any case) as its domain configures it
/// (an account or an alias), else the primary domain's postmaster; `domain` None is the bare
/// `<postmaster>`. A domain that is not local stays remote; Unknown when no postmaster is
/// configured at all.
pub fn resolve_postmaster(
    reader: &StateReader,
    hostname: &str,
    domain: Option<&str>,
) -> Result<Resolved, raft_store::StoreError> {
    if let Some(domain) = domain {
        match resolve(reader, &format!("postmaster@{domain}"))? {
            Resolved::Unknown => match reader.domain(domain)? {
                // A disabled domain takes no mail, not even its postmaster's.
                Some(d) if !d.enabled => return Ok(Resolved::Unknown),
                _ => {}
            },
            resolved => return Ok(resolved),
        }
    }
    let Some(primary) = primary_domain(hostname, &reader.domains()?) else {
        return Ok(Resolved::Unknown);
    };
    match resolve(reader, &format!("postmaster@{primary}"))? {
        Resolved::Remote => Ok(Resolved::Unknown),
        resolved => Ok(resolved),
    }
}

#[cfg(test)]
mod tests {
    use super::primary_domain;

    fn domain(name: &str, created_at: u64, enabled: bool) -> raft_store::Domain {
        raft_store::Domain {
            name: name.into(),
            enabled,
            created_at,
        }
    }

    #[test]
    fn the_primary_domain_is_the_host_names_else_the_oldest() {
        let domains = [
            domain("b.test", 20, true),
            domain("a.test", 30, true),
            domain("example.com", 40, true),
            domain("old.test", 10, false),
        ];
        assert_eq!(
            primary_domain("mail.example.com", &domains).as_deref(),
            Some("example.com")
        );
        assert_eq!(
            primary_domain("Example.COM.", &domains).as_deref(),
            Some("example.com")
        );
        // No parent is a local domain (nor is the top-level label tried): the oldest enabled one.
        assert_eq!(
            primary_domain("n1.test", &domains).as_deref(),
            Some("b.test")
        );
        assert_eq!(primary_domain("mail.example.org", &[]), None);
        // The same age: by name.
        let twins = [domain("z.test", 5, true), domain("y.test", 5, true)];
        assert_eq!(primary_domain("host", &twins).as_deref(), Some("y.test"));
    }
}
