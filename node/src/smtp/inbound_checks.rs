//! DNS-based checks of mail arriving on the public SMTP listener from clients that have not
//! logged in: DNS block and allow lists and forward-confirmed reverse DNS when the client
//! connects, the HELO name and SPF at MAIL FROM, DKIM and DMARC at the end of DATA. Each step
//! returns a value (a reply to refuse with, or a [`Verdict`]); the SMTP session decides nothing
//! itself. Results go into an `Authentication-Results` header (RFC 8601).
//!
//! A DNS failure never refuses mail for good (RFC 7208 2.6.6, RFC 7489 6.6.2): it is
//! "temperror" in the header, a 450 where a check is set to reject, and "not listed" for the
//! block lists (fail open, logged).

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::time::Duration;

use mail_auth::dkim::DkimError;
use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::hickory_resolver::proto::rr::RData;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimOutput, DkimResult, DmarcResult, IprevOutput,
    IprevResult, MessageAuthenticator, SpfOutput, SpfResult,
};

use crate::config::{CheckMode, DmarcAction, InboundChecksConfig, SpfFailAction};
use crate::smtp::reply::{self, Reply};

/// Arriving headers with this name are ours alone, so they are removed like our
/// Authentication-Results.
pub const WARNING_HEADER: &str = "X-Mcluster-Warning";

/// Verification of one message may ask many questions (SPF includes, DKIM keys, DMARC): it
/// gets this many DNS timeouts in all.
const MESSAGE_TIMEOUTS: u32 = 4;

/// The checker a node builds once from its `[inbound-checks]` and `[outbound] nameservers`.
pub struct InboundChecker {
    config: InboundChecksConfig,
    authenticator: MessageAuthenticator,
    hostname: String,
}

/// What the connect-time checks found about a client; kept for the whole connection (also
/// across STARTTLS).
#[derive(Debug, Clone)]
pub struct ClientReport {
    pub ip: IpAddr,
    /// The address the client connected to.
    pub local_ip: IpAddr,
    /// The block list that lists the client (not looked up when an allow list lists it).
    pub blocked: Option<Listing>,
    /// The allow list that lists the client.
    pub allowed: Option<String>,
    /// Forward-confirmed reverse DNS, when that check is on.
    pub iprev: Option<IprevOutput>,
}

/// A DNS list entry for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub zone: String,
    /// The list's TXT record for the client, if it has one.
    pub reason: Option<String>,
}

/// What to do with a message after DATA, with the trace headers to prepend to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub disposition: Disposition,
    /// Complete header fields, each ending in CRLF.
    pub headers: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    Accept,
    /// The sender's domain asked for quarantine (or reject, with `dmarc-reject = "quarantine"`):
    /// file into the recipient's Junk mailbox.
    Quarantine,
    /// Refuse with this reply (a 5xx).
    Reject(Reply),
}

/// What DKIM and DMARC verification found.
struct Verified {
    /// The dkim= and dmarc= parts of Authentication-Results, each starting with ";".
    results: String,
    /// The From domain's DMARC policy (p=, or sp= for a subdomain).
    policy: Policy,
    dmarc_failed: bool,
}

/// Which check refused a client or a message (for metrics and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Dnsbl,
    Helo,
    ReverseDns,
    Spf,
    Dmarc,
}

/// A refusal: the reply and the check that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub check: Check,
    pub reply: Reply,
}

/// Why a HELO name is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeloProblem {
    NotFqdn,
    BadLiteral,
    OurName,
    OurAddress,
}

impl HeloProblem {
    pub fn describe(self) -> &'static str {
        match self {
            HeloProblem::NotFqdn => "is not a fully qualified domain name",
            HeloProblem::BadLiteral => "is not a valid address literal",
            HeloProblem::OurName => "is this host's own name",
            HeloProblem::OurAddress => "is this host's own address",
        }
    }
}

impl InboundChecker {
    /// A checker asking `nameservers` (the system's resolvers when empty).
    pub fn new(
        config: InboundChecksConfig,
        nameservers: &[std::net::SocketAddr],
        hostname: &str,
    ) -> anyhow::Result<InboundChecker> {
        let (resolver_config, mut options) = if nameservers.is_empty() {
            mail_auth::hickory_resolver::system_conf::read_system_conf()
                .map_err(|err| anyhow::anyhow!("read the system's resolver config: {err}"))?
        } else {
            let mut resolver_config = ResolverConfig::from_parts(None, Vec::new(), Vec::new());
            for server in nameservers {
                let mut ns = NameServerConfig::udp_and_tcp(server.ip());
                for connection in &mut ns.connections {
                    connection.port = server.port();
                }
                resolver_config.add_name_server(ns);
            }
            (resolver_config, ResolverOpts::default())
        };
        options.timeout = config.dns_timeout;
        options.attempts = 1;
        let authenticator = MessageAuthenticator::new(resolver_config, options)
            .map_err(|err| anyhow::anyhow!("build the DNS resolver: {err}"))?;
        Ok(InboundChecker {
            config,
            authenticator,
            hostname: hostname.to_owned(),
        })
    }

    pub fn config(&self) -> &InboundChecksConfig {
        &self.config
    }

    /// The connect-time checks: allow lists, then block lists, and reverse DNS, all at once.
    pub async fn connect(&self, ip: IpAddr, local_ip: IpAddr) -> ClientReport {
        let lists = async {
            if self.config.dnsbl_zones.is_empty() {
                return (None, None);
            }
            if let Some(allowed) = self.first_listing(&self.config.dnswl_zones, ip).await {
                return (Some(allowed.zone), None);
            }
            (None, self.first_listing(&self.config.dnsbl_zones, ip).await)
        };
        let iprev = async {
            if self.config.reverse_dns == CheckMode::Off {
                return None;
            }
            let limit = self.config.dns_timeout * 3;
            match tokio::time::timeout(limit, self.authenticator.verify_iprev(ip)).await {
                Ok(output) => Some(output),
                Err(_) => Some(IprevOutput {
                    result: IprevResult::TempError(mail_auth::Error::Dns(
                        mail_auth::DnsError::Resolver("timed out".into()),
                    )),
                    ptr: None,
                }),
            }
        };
        let ((allowed, blocked), iprev) = tokio::join!(lists, iprev);
        if let Some(listing) = &blocked {
            tracing::info!(client = %ip, zone = listing.zone, "client is on a DNS block list");
        }
        ClientReport {
            ip,
            local_ip,
            blocked,
            allowed,
            iprev,
        }
    }

    /// The first of `zones` that lists `ip`. The zones are asked at once; a failed lookup
    /// counts as not listed.
    async fn first_listing(&self, zones: &[String], ip: IpAddr) -> Option<Listing> {
        let lookups = zones.iter().map(|zone| self.listed(zone, ip));
        futures::future::join_all(lookups)
            .await
            .into_iter()
            .flatten()
            .next()
    }

    async fn listed(&self, zone: &str, ip: IpAddr) -> Option<Listing> {
        let name = list_query_name(ip, zone);
        let resolver = self.authenticator.resolver();
        let limit = self.config.dns_timeout;
        let answer = match tokio::time::timeout(limit, resolver.ipv4_lookup(name.as_str())).await {
            Ok(Ok(lookup)) => lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::A(a) => Some(a.0),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            Ok(Err(err)) if err.is_no_records_found() => return None,
            Ok(Err(err)) => {
                tracing::warn!(zone, client = %ip, error = %err, "DNS list lookup failed; taken as not listed");
                return None;
            }
            Err(_) => {
                tracing::warn!(zone, client = %ip, "DNS list lookup timed out; taken as not listed");
                return None;
            }
        };
        // Lists answer 127.0.0.x; anything else (a wildcarding resolver, a list's "you are
        // querying too much" 127.255.255.x answers aside) is not a listing.
        if !answer.iter().any(|a| is_listing_answer(*a)) {
            if !answer.is_empty() {
                tracing::warn!(zone, client = %ip, answer = ?answer, "DNS list gave an answer outside 127.0.0.0/24; ignored");
            }
            return None;
        }
        let reason = match tokio::time::timeout(limit, resolver.txt_lookup(name.as_str())).await {
            Ok(Ok(lookup)) => lookup
                .answers()
                .iter()
                .find_map(|record| match &record.data {
                    RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|part| String::from_utf8_lossy(part).into_owned())
                            .collect::<String>(),
                    ),
                    _ => None,
                }),
            _ => None,
        };
        Some(Listing {
            zone: zone.to_owned(),
            reason: reason.map(|r| printable(&r, 200)),
        })
    }

    /// Checks at MAIL FROM: the HELO name and reverse DNS (when set to reject) and SPF. Returns
    /// the SPF result for the header and DMARC, or the refusal.
    pub async fn mail_from(
        &self,
        client: &ClientReport,
        helo: &str,
        sender: &str,
    ) -> Result<Option<SpfOutput>, Refusal> {
        if self.config.helo == CheckMode::Reject
            && let Some(problem) = helo_problem(helo, &self.hostname, client.local_ip)
        {
            return Err(Refusal {
                check: Check::Helo,
                reply: reply::helo_not_acceptable(&printable(helo, 100), &problem.describe()),
            });
        }
        if self.config.reverse_dns == CheckMode::Reject
            && let Some(iprev) = &client.iprev
            && let Some(refusal) = reverse_dns_refusal(&iprev.result, client.ip)
        {
            return Err(refusal);
        }
        if !self.config.verify && self.config.spf_fail == SpfFailAction::None {
            return Ok(None);
        }
        let helo_domain = helo_for_spf(helo);
        let params = SpfParameters::verify(client.ip, helo_domain, &self.hostname, sender);
        let limit = self.config.dns_timeout * MESSAGE_TIMEOUTS;
        let spf = match tokio::time::timeout(limit, self.authenticator.verify_spf(params)).await {
            Ok(spf) => spf,
            Err(_) => SpfOutput::new(sender_domain(sender, helo_domain).to_owned())
                .with_result(SpfResult::TempError),
        };
        if spf.result() == SpfResult::Fail && self.config.spf_fail == SpfFailAction::Reject {
            let domain = spf.domain().to_owned();
            return Err(Refusal {
                check: Check::Spf,
                reply: reply::spf_fail(&client.ip, &printable(&domain, 100)),
            });
        }
        Ok(self.config.verify.then_some(spf))
    }

    /// The block list refusal for a recipient, if the client is listed. Postmaster is let
    /// through (RFC 5321 4.5.1), so a listed sender can still ask for help.
    pub fn rcpt(&self, client: &ClientReport, postmaster: bool) -> Option<Refusal> {
        let listing = client.blocked.as_ref()?;
        if postmaster {
            return None;
        }
        Some(Refusal {
            check: Check::Dnsbl,
            reply: dnsbl_reply(client.ip, listing),
        })
    }

    /// Verifies a message (DKIM, DMARC with the SPF result from MAIL FROM) and decides what
    /// happens to it. `message` is the data as the client sent it.
    pub async fn message(
        &self,
        client: &ClientReport,
        helo: &str,
        sender: &str,
        spf: Option<&SpfOutput>,
        message: &[u8],
    ) -> Verdict {
        let mut headers = String::new();
        let mut disposition = Disposition::Accept;
        if self.config.helo == CheckMode::Warn
            && let Some(problem) = helo_problem(helo, &self.hostname, client.local_ip)
        {
            tracing::info!(client = %client.ip, helo = printable(helo, 100), problem = problem.describe(), "questionable HELO name");
            headers.push_str(&format!(
                "{WARNING_HEADER}: HELO name \"{}\" {}\r\n",
                printable(helo, 100).replace(['"', '\\'], ""),
                problem.describe()
            ));
        }
        let helo_domain = helo_for_spf(helo);
        let mut results = AuthenticationResults::new(&self.hostname);
        if let Some(iprev) = &client.iprev {
            if self.config.reverse_dns == CheckMode::Warn && iprev.result != IprevResult::Pass {
                tracing::info!(client = %client.ip, result = ?iprev.result, "client without forward-confirmed reverse DNS");
            }
            results = results.with_iprev_result(iprev, client.ip);
        }
        let mut extra = String::new();
        if let Some(spf) = spf {
            results = results.with_spf_mailfrom_result(spf, client.ip, sender, helo_domain);
            let limit = self.config.dns_timeout * MESSAGE_TIMEOUTS;
            let verified =
                tokio::time::timeout(limit, self.verify(message, sender, helo_domain, spf)).await;
            match verified {
                Ok(Some(verified)) => {
                    extra.push_str(&verified.results);
                    if verified.dmarc_failed {
                        let policy = verified.policy;
                        disposition = self.dmarc_disposition(policy);
                        if disposition != Disposition::Accept {
                            tracing::info!(client = %client.ip, policy = ?policy, disposition = ?disposition, "DMARC failed");
                        }
                    }
                }
                Ok(None) => {
                    extra.push_str(";\r\n\tdkim=none (unparsable message);\r\n\tdmarc=none")
                }
                Err(_) => extra.push_str(
                    ";\r\n\tdkim=temperror (DNS timed out);\r\n\tdmarc=temperror (DNS timed out)",
                ),
            }
        }
        let results = results.to_string();
        if results != self.hostname || !extra.is_empty() {
            headers.insert_str(0, &format!("Authentication-Results: {results}{extra}\r\n"));
        }
        Verdict {
            disposition,
            headers,
        }
    }

    /// DKIM and DMARC verification (None: the message does not parse).
    async fn verify(
        &self,
        message: &[u8],
        sender: &str,
        helo_domain: &str,
        spf: &SpfOutput,
    ) -> Option<Verified> {
        let parsed = AuthenticatedMessage::parse(message)?;
        let dkim = self.authenticator.verify_dkim(&parsed).await;
        let header_from = parsed.from.first().cloned().unwrap_or_default();
        let dkim_text = if dkim.is_empty() {
            ";\r\n\tdkim=none".to_owned()
        } else {
            AuthenticationResults::new("")
                .with_dkim_results(&reported_dkim(&dkim), &header_from)
                .to_string()
        };
        let mail_from_domain = sender_domain(sender, helo_domain);
        let dmarc = self
            .authenticator
            .verify_dmarc(DmarcParameters::new(&parsed, &dkim, mail_from_domain, spf))
            .await;
        let dmarc_text = AuthenticationResults::new("")
            .with_dmarc_result(&dmarc)
            .to_string();
        Some(Verified {
            results: dkim_text + &dmarc_text,
            policy: dmarc.policy(),
            dmarc_failed: matches!(dmarc.result(), DmarcResult::Fail(_)),
        })
    }

    fn dmarc_disposition(&self, policy: Policy) -> Disposition {
        let action = match policy {
            Policy::Reject => self.config.dmarc_reject,
            Policy::Quarantine => self.config.dmarc_quarantine,
            Policy::None | Policy::Unspecified => DmarcAction::None,
        };
        match action {
            DmarcAction::None => Disposition::Accept,
            DmarcAction::Quarantine => Disposition::Quarantine,
            DmarcAction::Reject => Disposition::Reject(reply::DMARC_REJECT.clone()),
        }
    }
}

/// DKIM results as the header reports them. mail-auth calls a body that no longer matches its
/// signature's hash "neutral"; RFC 6376 6.1.3 makes that a PERMFAIL of a verification, which is
/// RFC 8601's "fail" (the signature was fine, the message fails it), so it is reported so.
fn reported_dkim<'a>(dkim: &'a [DkimOutput<'_>]) -> Vec<DkimOutput<'a>> {
    dkim.iter()
        .map(|output| match output.result() {
            DkimResult::Neutral(err @ mail_auth::Error::Dkim(DkimError::FailedBodyHashMatch)) => {
                let failed = DkimOutput::fail(err.clone());
                match output.signature() {
                    Some(signature) => failed.with_signature(signature),
                    None => failed,
                }
            }
            _ => output.clone(),
        })
        .collect()
}

/// The refusal for a client whose reverse DNS is not forward-confirmed: 450 when a lookup
/// failed (it may work next time), 550 when there is no PTR or it does not lead back.
pub fn reverse_dns_refusal(result: &IprevResult, ip: IpAddr) -> Option<Refusal> {
    let reply = match result {
        IprevResult::Pass => return None,
        IprevResult::TempError(_) => reply::no_reverse_dns(&ip, true),
        IprevResult::Fail(_) | IprevResult::PermError(_) | IprevResult::None => {
            reply::no_reverse_dns(&ip, false)
        }
    };
    Some(Refusal {
        check: Check::ReverseDns,
        reply,
    })
}

/// The 554 for a client on a block list, with the list's reason when it gave one.
pub fn dnsbl_reply(ip: IpAddr, listing: &Listing) -> Reply {
    reply::dnsbl_listed(&ip, &listing.zone, listing.reason.as_deref())
}

/// The name a DNS list is asked about `ip`: the octets reversed (IPv4) or the 32 nibbles
/// reversed (IPv6), then the zone.
pub fn list_query_name(ip: IpAddr, zone: &str) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        IpAddr::V4(_) => ip,
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.{zone}.")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(64 + zone.len() + 1);
            for byte in v6.octets().iter().rev() {
                name.push(char::from_digit(u32::from(byte & 0xf), 16).expect("a nibble"));
                name.push('.');
                name.push(char::from_digit(u32::from(byte >> 4), 16).expect("a nibble"));
                name.push('.');
            }
            name.push_str(zone);
            name.push('.');
            name
        }
    }
}

/// DNS lists answer with addresses in 127.0.0.0/8; 127.255.255.x answers are error codes
/// (Spamhaus: "query refused", "typing error"), not listings.
fn is_listing_answer(a: std::net::Ipv4Addr) -> bool {
    let [first, second, ..] = a.octets();
    first == 127 && second != 255
}

/// What is wrong with a HELO name, if anything: it must be a domain name with a dot (not a
/// bare address) or an address literal, and not this host's name or address.
pub fn helo_problem(helo: &str, our_hostname: &str, our_ip: IpAddr) -> Option<HeloProblem> {
    if let Some(literal) = helo.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let parsed: Option<IpAddr> = match literal.get(..5) {
            Some(prefix) if prefix.eq_ignore_ascii_case("IPv6:") => literal[5..]
                .parse::<std::net::Ipv6Addr>()
                .ok()
                .map(IpAddr::V6),
            _ => literal.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
        };
        return match parsed {
            None => Some(HeloProblem::BadLiteral),
            Some(ip) if same_ip(ip, our_ip) => Some(HeloProblem::OurAddress),
            Some(_) => None,
        };
    }
    let name = helo.trim_end_matches('.');
    if name.eq_ignore_ascii_case(our_hostname.trim_end_matches('.')) {
        return Some(HeloProblem::OurName);
    }
    let labels: Vec<&str> = name.split('.').collect();
    let valid_labels = labels.iter().all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    });
    let top_is_numeric = labels
        .last()
        .is_some_and(|top| top.chars().all(|c| c.is_ascii_digit()));
    if labels.len() < 2 || !valid_labels || top_is_numeric || name.len() > 253 {
        return Some(HeloProblem::NotFqdn);
    }
    None
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    let canonical = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        IpAddr::V4(_) => ip,
    };
    canonical(a) == canonical(b)
}

/// The HELO name as SPF's identity: an address literal has no domain.
fn helo_for_spf(helo: &str) -> &str {
    if helo.starts_with('[') { "" } else { helo }
}

/// The domain of the MAIL FROM address, or the HELO name for the null sender (RFC 7208 2.4).
fn sender_domain<'a>(sender: &'a str, helo_domain: &'a str) -> &'a str {
    sender
        .rsplit_once('@')
        .map(|(_, domain)| domain)
        .unwrap_or(helo_domain)
}

/// `text` with control characters dropped, cut to `max` characters: safe in a reply or header.
fn printable(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// The message without the header fields that only this host may write: Authentication-Results
/// whose authserv-id is `hostname` (RFC 8601 5), and [`WARNING_HEADER`]. Folded continuation
/// lines go with their field. Only the header section is looked at.
pub fn strip_our_headers(message: &[u8], hostname: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    let mut dropping = false;
    let mut rest = message;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|b| *b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        if line == b"\r\n" || line == b"\n" {
            out.extend_from_slice(rest);
            return out;
        }
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            dropping = is_ours(line, message, rest.len(), hostname);
        }
        if !dropping {
            out.extend_from_slice(line);
        }
        rest = tail;
    }
    out
}

/// Whether the field starting at `line` is one only we may write. `remaining` is how much of
/// `message` is left from `line` on, to read the whole (possibly folded) field.
fn is_ours(line: &[u8], message: &[u8], remaining: usize, hostname: &str) -> bool {
    let Some(colon) = line.iter().position(|b| *b == b':') else {
        return false;
    };
    let name = String::from_utf8_lossy(&line[..colon]);
    let name = name.trim();
    if name.eq_ignore_ascii_case(WARNING_HEADER) {
        return true;
    }
    if !name.eq_ignore_ascii_case("Authentication-Results") {
        return false;
    }
    // The field's value, unfolded, up to the authserv-id's end.
    let start = message.len() - remaining + colon + 1;
    let mut value = Vec::new();
    let mut lines = message[start..].split(|b| *b == b'\n');
    if let Some(first) = lines.next() {
        value.extend_from_slice(first);
    }
    for next in lines {
        if next.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            value.extend_from_slice(next);
        } else {
            break;
        }
    }
    authserv_id(&String::from_utf8_lossy(&value))
        .is_some_and(|id| id.eq_ignore_ascii_case(hostname.trim_end_matches('.')))
}

/// The authserv-id of an Authentication-Results value: the first token, comments skipped.
pub fn authserv_id(value: &str) -> Option<String> {
    let mut depth = 0u32;
    let mut id = String::new();
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            ';' => break,
            c if c.is_whitespace() => {
                if !id.is_empty() {
                    break;
                }
            }
            c => id.push(c),
        }
    }
    let id = id.trim_matches('"').trim_end_matches('.').to_owned();
    (!id.is_empty()).then_some(id)
}

/// How long the connect-time checks may take in all: the greeting waits for them.
pub fn connect_limit(config: &InboundChecksConfig) -> Duration {
    config.dns_timeout * 3
}
