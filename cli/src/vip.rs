//! The virtual IP as `init` and `join` write it: `--vip` addresses (CIDRs), the interface they go
//! on, and the checks made before a node's `[vip]` section is written. The node itself adds and
//! removes the addresses; mclusterctl only writes what it is to do.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use anyhow::{Result, bail, ensure};

use crate::api::Role;
use crate::node_config::{MailSection, NODE_DEFAULT_LISTENERS, VipSection};

#[cfg(test)]
mod tests;

/// The interface of loopback mode: the addresses must be in 127.0.0.0/8, nothing is added to
/// the interface (all of 127/8 is local already), and only the node holding the VIP listens on
/// them. For demos and tests on one machine.
pub const LOOPBACK_INTERFACE: &str = "lo";
/// Shortest prefixes taken: anything shorter is no subnet a floating address lives on.
const MIN_PREFIX_V4: u8 = 8;
const MIN_PREFIX_V6: u8 = 16;
/// Linux's IFNAMSIZ less the terminating NUL.
const MAX_INTERFACE_NAME: usize = 15;

/// One `--vip`: an address and the prefix length of its subnet, such as `192.0.2.10/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VipAddr {
    pub ip: IpAddr,
    pub prefix: u8,
}

impl VipAddr {
    pub fn is_loopback(&self) -> bool {
        self.ip.is_loopback()
    }
}

/// Canonical text: `2001:DB8::A/64` reads back as `2001:db8::a/64`.
impl fmt::Display for VipAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ip, self.prefix)
    }
}

impl FromStr for VipAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<VipAddr, String> {
        let bad = |why: &str| format!("bad virtual IP {text:?}: {why}");
        let Some((ip, prefix)) = text.split_once('/') else {
            return Err(bad(
                "expected an address with the prefix length of its subnet, such as \
                 192.0.2.10/24 or 2001:db8::10/64",
            ));
        };
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| bad("the part before '/' is not an IPv4 or IPv6 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|_| prefix.bytes().all(|byte| byte.is_ascii_digit()))
            .ok_or_else(|| bad("the prefix length is not a number"))?;
        let (min, max) = match ip {
            IpAddr::V4(_) => (MIN_PREFIX_V4, 32),
            IpAddr::V6(_) => (MIN_PREFIX_V6, 128),
        };
        if !(min..=max).contains(&prefix) {
            return Err(bad(&format!(
                "the prefix length must be {min} to {max} for an {} address",
                if ip.is_ipv4() { "IPv4" } else { "IPv6" }
            )));
        }
        if ip.is_unspecified() || ip.is_multicast() {
            return Err(bad("not an address one host can hold"));
        }
        if let IpAddr::V4(v4) = ip {
            let host_bits = 32 - u32::from(prefix);
            // /31 and /32 have no network or broadcast address (RFC 3021).
            if host_bits >= 2 {
                let host_mask = (1u32 << host_bits) - 1;
                let host = u32::from(v4) & host_mask;
                if host == 0 || host == host_mask {
                    return Err(bad(&format!(
                        "that is the {} address of the subnet",
                        if host == 0 { "network" } else { "broadcast" }
                    )));
                }
            }
        }
        Ok(VipAddr { ip, prefix })
    }
}

/// The `--vip` and `--vip-interface` options as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VipOptions {
    pub addresses: Vec<VipAddr>,
    /// Default: [`LOOPBACK_INTERFACE`] if every address is a loopback one; otherwise required.
    pub interface: Option<String>,
}

/// The `[vip]` section for a node with `options`, or `None` if it gets no virtual IP. Refuses a
/// witness, a bad interface, and mail listeners that would collide with the VIP.
pub fn vip_section(
    options: &VipOptions,
    role: Role,
    mail: &MailSection,
    raft_addr: &str,
) -> Result<Option<VipSection>> {
    let VipOptions {
        addresses,
        interface,
    } = options;
    if addresses.is_empty() {
        ensure!(
            interface.is_none(),
            "--vip-interface without --vip: give the virtual IP's addresses with --vip CIDR"
        );
        return Ok(None);
    }
    ensure!(
        role == Role::Data,
        "a witness never holds the virtual IP (only the Raft leader does, and a witness does not \
         lead for long): --vip and --vip-interface are for data nodes only"
    );
    let mut sorted = addresses.clone();
    sorted.sort_unstable_by_key(|vip| vip.ip);
    if let Some(pair) = sorted.windows(2).find(|pair| pair[0].ip == pair[1].ip) {
        bail!("--vip {} is given twice", pair[0].ip);
    }
    let interface = match interface {
        Some(interface) => interface.clone(),
        None if addresses.iter().all(VipAddr::is_loopback) => LOOPBACK_INTERFACE.to_owned(),
        None => bail!(
            "--vip-interface NAME is required with a virtual IP that is not a loopback address: \
             the interface of the subnet the VIP is on, usually the one carrying the node's own \
             address (`ip -brief address` lists them)"
        ),
    };
    validate_interface(&interface)?;
    if interface == LOOPBACK_INTERFACE {
        if let Some(vip) = addresses
            .iter()
            .find(|vip| !matches!(vip.ip, IpAddr::V4(v4) if v4.is_loopback()))
        {
            bail!(
                "--vip {vip} on interface lo: loopback mode takes addresses in 127.0.0.0/8 only \
                 (on one machine, for demos and tests); give a real interface with \
                 --vip-interface for this one"
            );
        }
    } else if let Some(vip) = addresses.iter().find(|vip| vip.is_loopback()) {
        bail!(
            "--vip {vip} is a loopback address, which only works in loopback mode: pass \
             --vip-interface lo, or a routable address for interface {interface}"
        );
    }
    check_mail_listeners(addresses, mail, raft_addr)?;
    Ok(Some(VipSection {
        addresses: addresses.iter().map(VipAddr::to_string).collect(),
        interface,
    }))
}

/// A Linux interface name, as the kernel takes it (dev_valid_name).
pub fn validate_interface(name: &str) -> Result<()> {
    ensure!(
        !name.is_empty()
            && name.len() <= MAX_INTERFACE_NAME
            && name != "."
            && name != ".."
            && !name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace()),
        "bad interface name {name:?}: expected a Linux interface name such as eth0 or ens18 \
         (1 to {MAX_INTERFACE_NAME} characters, no '/', ':' or spaces)"
    );
    Ok(())
}

/// While it holds the VIP the node listens on it too, at each mail listener's port; so each
/// listener must be on the node's own address: a wildcard listener would already cover the VIP
/// (the node refuses that), and one on the VIP itself could not bind while another node holds it.
fn check_mail_listeners(vips: &[VipAddr], mail: &MailSection, raft_addr: &str) -> Result<()> {
    let mut wildcards = Vec::new();
    for ((key, given), (default_key, default_addr)) in
        mail.listeners().into_iter().zip(NODE_DEFAULT_LISTENERS)
    {
        debug_assert_eq!(
            key, default_key,
            "listeners() and the defaults are in one order"
        );
        let (addr, origin) = match given {
            Some("") => continue,
            Some(addr) => (addr, "given"),
            None => (default_addr, "the default"),
        };
        // A host name is the node's business (it refuses one); only literals can collide.
        let Ok(addr) = addr.parse::<SocketAddr>() else {
            continue;
        };
        if addr.ip().is_unspecified() {
            wildcards.push((key, addr, origin));
        } else if let Some(vip) = vips.iter().find(|vip| vip.ip == addr.ip()) {
            bail!(
                "the {key} listener {addr} is on the virtual IP {vip}: listen on the node's own \
                 address instead, and the node adds the listener on the VIP while it holds it \
                 (pass --{key}-addr OWN-ADDRESS:{})",
                addr.port()
            );
        }
    }
    if wildcards.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = wildcards
        .iter()
        .map(|(key, addr, origin)| format!("{key} on {addr} ({origin})"))
        .collect();
    let own_ip = raft_addr
        .parse::<SocketAddr>()
        .ok()
        .map(|raft| raft.ip())
        .filter(|ip| !ip.is_unspecified());
    let flags: Vec<String> = wildcards
        .iter()
        .map(|(key, addr, _)| match own_ip {
            Some(ip) => format!("--{key}-addr {}", SocketAddr::new(ip, addr.port())),
            None => format!("--{key}-addr HOST:{}", addr.port()),
        })
        .collect();
    bail!(
        "with a virtual IP every mail listener must be on the node's own address (the node adds \
         listeners on the VIP while it holds it), but these would listen on all addresses: {}. \
         Pass {} (or \"\" to turn a listener off)",
        listed.join(", "),
        flags.join(" ")
    )
}
