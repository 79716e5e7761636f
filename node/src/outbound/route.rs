//! Where mail for a domain goes (RFC 5321 5.1): its MX hosts in preference order with their
//! addresses; a domain without MX records is its own mail host (the implicit MX); a null MX
//! (RFC 7505) or a domain that does not exist is a permanent failure; a resolver that cannot
//! answer (SERVFAIL, timeout) is a temporary one, retried later.
//!
//! The resolver is hickory's, with the system's configuration or the name servers given (a
//! test points it at a stub on a loopback port).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

/// How long one query may take before the resolver tries again or gives up.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// One host to try, with its addresses (IPv6 and IPv4 as the resolver returned them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub preference: u16,
    pub addresses: Vec<IpAddr>,
}

/// Why there is nowhere to deliver: permanent (bounce now) or temporary (retry later), with
/// the enhanced status code and the words for the DSN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("{status} {reason}")]
    Permanent {
        status: &'static str,
        reason: String,
    },
    #[error("{status} {reason}")]
    Temporary {
        status: &'static str,
        reason: String,
    },
}

pub struct Router {
    resolver: TokioResolver,
}

impl Router {
    /// A router asking `nameservers` (UDP and TCP), or the system's resolvers when empty.
    pub fn new(nameservers: &[SocketAddr]) -> Result<Router, NetError> {
        let mut builder = if nameservers.is_empty() {
            TokioResolver::builder_tokio()?
        } else {
            let mut config = ResolverConfig::from_parts(None, Vec::new(), Vec::new());
            for server in nameservers {
                let mut ns = NameServerConfig::udp_and_tcp(server.ip());
                for connection in &mut ns.connections {
                    connection.port = server.port();
                }
                config.add_name_server(ns);
            }
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        };
        let options = builder.options_mut();
        options.timeout = QUERY_TIMEOUT;
        options.attempts = 2;
        Ok(Router {
            resolver: builder.build()?,
        })
    }

    /// The hosts to try for `domain`, best first. Hosts of equal preference keep the order the
    /// resolver gave; hosts without any address are left out (and if that leaves none, the
    /// failure is temporary: their addresses may appear).
    pub async fn targets(&self, domain: &str) -> Result<Vec<Target>, RouteError> {
        let fqdn = fully_qualified(domain);
        let mut exchanges: Vec<(u16, String)> = match self.resolver.mx_lookup(fqdn.as_str()).await {
            Ok(lookup) => lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                    _ => None,
                })
                .collect(),
            Err(err) if err.is_nx_domain() => {
                return Err(RouteError::Permanent {
                    status: "5.1.2",
                    reason: format!("the domain {domain} does not exist"),
                });
            }
            Err(err) if err.is_no_records_found() => Vec::new(),
            Err(err) => {
                return Err(RouteError::Temporary {
                    status: "4.4.3",
                    reason: format!("MX lookup for {domain} failed: {err}"),
                });
            }
        };
        // RFC 7505: a single MX of "." says the domain takes no mail.
        if exchanges.len() == 1 && exchanges[0].1.trim_end_matches('.').is_empty() {
            return Err(RouteError::Permanent {
                status: "5.1.10",
                reason: format!("{domain} accepts no mail (null MX)"),
            });
        }
        exchanges.retain(|(_, host)| !host.trim_end_matches('.').is_empty());
        if exchanges.is_empty() {
            // RFC 5321 5.1: no MX, so the domain itself is the mail host.
            exchanges.push((0, fqdn.clone()));
        }
        exchanges.sort_by_key(|(preference, _)| *preference);
        let mut targets = Vec::with_capacity(exchanges.len());
        let mut last_error = None;
        for (preference, host) in exchanges {
            match self.resolver.lookup_ip(host.as_str()).await {
                Ok(ips) => {
                    let addresses: Vec<IpAddr> = ips.iter().collect();
                    if !addresses.is_empty() {
                        targets.push(Target {
                            host: host.trim_end_matches('.').to_owned(),
                            preference,
                            addresses,
                        });
                    }
                }
                Err(err) => last_error = Some(format!("{host}: {err}")),
            }
        }
        if targets.is_empty() {
            return Err(RouteError::Temporary {
                status: "4.4.4",
                reason: format!(
                    "no address for any mail host of {domain}{}",
                    last_error.map(|e| format!(" ({e})")).unwrap_or_default()
                ),
            });
        }
        Ok(targets)
    }
}

/// `domain.` so the resolver does not try search suffixes.
fn fully_qualified(domain: &str) -> String {
    let domain = domain.trim().trim_end_matches('.');
    format!("{domain}.")
}
