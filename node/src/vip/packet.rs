//! Link-layer announcements of the virtual IP: gratuitous ARP and ARP probes on an AF_PACKET
//! socket, unsolicited IPv6 neighbour advertisements on a raw ICMPv6 socket.
//!
//! Binding a packet socket to an interface needs a `sockaddr_ll`, which neither socket2 nor nix
//! can build safely; that one conversion is the only `unsafe` in the crate.

use std::io::{self, Read};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};

pub type Mac = [u8; 6];

const ETH_P_ARP: u16 = 0x0806;
const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;
const BROADCAST: Mac = [0xff; 6];

/// A raw packet socket bound to one interface, sending and receiving ARP frames.
pub struct ArpSocket {
    socket: Socket,
}

impl ArpSocket {
    pub fn open(ifindex: u32) -> io::Result<ArpSocket> {
        let protocol = Protocol::from(i32::from(ETH_P_ARP.to_be()));
        let socket = Socket::new(Domain::PACKET, Type::RAW, Some(protocol))?;
        socket.bind(&link_addr(ifindex, ETH_P_ARP))?;
        Ok(ArpSocket { socket })
    }

    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.socket.send(frame).map(|_| ())
    }

    /// The next frame, or `None` once `timeout` passes without one.
    pub fn recv(&self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        self.socket.set_read_timeout(Some(timeout))?;
        match (&self.socket).read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(err)
                if err.kind() == io::ErrorKind::WouldBlock
                    || err.kind() == io::ErrorKind::TimedOut =>
            {
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }
}

#[allow(unsafe_code)]
fn link_addr(ifindex: u32, protocol: u16) -> SockAddr {
    let ll = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: protocol.to_be(),
        sll_ifindex: ifindex as i32,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 6,
        sll_addr: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0],
    };
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_ll (both are C socket
    // address types), and the length passed below is exactly that of sockaddr_ll.
    unsafe {
        *storage.view_as::<libc::sockaddr_ll>() = ll;
        SockAddr::new(
            storage,
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    }
}

/// An ARP frame on Ethernet: `op` with sender and target hardware/protocol addresses.
fn arp_frame(
    eth_dst: Mac,
    op: u16,
    sender_mac: Mac,
    sender_ip: Ipv4Addr,
    target_mac: Mac,
    target_ip: Ipv4Addr,
) -> Vec<u8> {
    let mut frame = Vec::with_capacity(42);
    frame.extend_from_slice(&eth_dst);
    frame.extend_from_slice(&sender_mac);
    frame.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    frame.extend_from_slice(&1u16.to_be_bytes()); // hardware: Ethernet
    frame.extend_from_slice(&0x0800u16.to_be_bytes()); // protocol: IPv4
    frame.push(6);
    frame.push(4);
    frame.extend_from_slice(&op.to_be_bytes());
    frame.extend_from_slice(&sender_mac);
    frame.extend_from_slice(&sender_ip.octets());
    frame.extend_from_slice(&target_mac);
    frame.extend_from_slice(&target_ip.octets());
    frame
}

/// A gratuitous ARP request (sender and target IP both the VIP), broadcast so every neighbour
/// updates its cache to `mac`; the form IPaddr2 and keepalived send.
pub fn gratuitous_arp(mac: Mac, ip: Ipv4Addr) -> Vec<u8> {
    arp_frame(BROADCAST, ARP_REQUEST, mac, ip, [0; 6], ip)
}

/// An RFC 5227 probe: "who has `ip`?" from sender address 0.0.0.0, so it changes no cache; any
/// host that has `ip` configured answers it.
pub fn arp_probe(mac: Mac, ip: Ipv4Addr) -> Vec<u8> {
    arp_frame(
        BROADCAST,
        ARP_REQUEST,
        mac,
        Ipv4Addr::UNSPECIFIED,
        [0; 6],
        ip,
    )
}

/// If `frame` is an ARP packet in which some host claims `ip` (a reply from it, or its own
/// gratuitous announcement), that host's hardware address.
pub fn claimant(frame: &[u8], ip: Ipv4Addr) -> Option<Mac> {
    if frame.len() < 42 || frame[12..14] != ETH_P_ARP.to_be_bytes() {
        return None;
    }
    let arp = &frame[14..42];
    if arp[0..2] != [0, 1] || arp[2..4] != [0x08, 0x00] || arp[4] != 6 || arp[5] != 4 {
        return None;
    }
    let op = u16::from_be_bytes([arp[6], arp[7]]);
    let sender_ip = Ipv4Addr::new(arp[14], arp[15], arp[16], arp[17]);
    if (op != ARP_REPLY && op != ARP_REQUEST) || sender_ip != ip {
        return None;
    }
    let mut mac = [0; 6];
    mac.copy_from_slice(&arp[8..14]);
    Some(mac)
}

/// Sends an unsolicited neighbour advertisement for `ip` (RFC 4861 7.2.6) to all nodes on
/// `interface`, with the override flag so neighbours replace a cached entry for the old holder.
pub fn unsolicited_na(interface: &str, ifindex: u32, mac: Mac, ip: Ipv6Addr) -> io::Result<()> {
    let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    socket.bind_device(Some(interface.as_bytes()))?;
    // Neighbour discovery packets are only accepted with hop limit 255.
    socket.set_multicast_hops_v6(255)?;
    socket.set_unicast_hops_v6(255)?;
    socket.set_multicast_if_v6(ifindex)?;
    let scope = if is_link_local(ip) { ifindex } else { 0 };
    socket.bind(&SocketAddrV6::new(ip, 0, 0, scope).into())?;
    let mut message = Vec::with_capacity(32);
    message.push(136); // neighbour advertisement
    message.push(0);
    message.extend_from_slice(&[0, 0]); // checksum: filled in by the kernel for ICMPv6
    message.extend_from_slice(&0x2000_0000u32.to_be_bytes()); // override
    message.extend_from_slice(&ip.octets());
    message.push(2); // option: target link-layer address
    message.push(1); // length in units of 8 octets
    message.extend_from_slice(&mac);
    let all_nodes = SocketAddrV6::new(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), 0, 0, ifindex);
    socket.send_to(&message, &all_nodes.into())?;
    Ok(())
}

fn is_link_local(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: Mac = [0x02, 0, 0, 0, 0, 1];

    #[test]
    fn gratuitous_arp_announces_the_vip_from_our_mac() {
        let ip = Ipv4Addr::new(192, 0, 2, 10);
        let frame = gratuitous_arp(MAC, ip);
        assert_eq!(frame.len(), 42);
        assert_eq!(&frame[0..6], &BROADCAST);
        assert_eq!(&frame[6..12], &MAC);
        // A gratuitous request names the VIP as its sender: it is a claim.
        assert_eq!(claimant(&frame, ip), Some(MAC));
        assert_eq!(claimant(&frame, Ipv4Addr::new(192, 0, 2, 11)), None);
    }

    #[test]
    fn probes_claim_nothing_and_replies_name_the_holder() {
        let ip = Ipv4Addr::new(192, 0, 2, 10);
        let probe = arp_probe(MAC, ip);
        assert_eq!(&probe[28..32], &[0, 0, 0, 0], "probe sender is 0.0.0.0");
        assert_eq!(claimant(&probe, ip), None);
        let holder = [0x02, 0, 0, 0, 0, 2];
        let reply = arp_frame(MAC, ARP_REPLY, holder, ip, MAC, Ipv4Addr::UNSPECIFIED);
        assert_eq!(claimant(&reply, ip), Some(holder));
        assert_eq!(
            claimant(&reply[..41], ip),
            None,
            "truncated frames are ignored"
        );
        let mut not_arp = reply.clone();
        not_arp[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        assert_eq!(claimant(&not_arp, ip), None);
    }
}
