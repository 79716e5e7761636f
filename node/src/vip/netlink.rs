//! Adding, renewing and removing the virtual IP on an interface through rtnetlink.

use std::net::IpAddr;

use anyhow::{Context, bail};
use futures::TryStreamExt;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, CacheInfo,
};
use netlink_packet_route::link::LinkAttribute;

use crate::config::VipAddress;
use crate::vip::packet::Mac;

/// The interface the VIP goes on.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    pub index: u32,
    pub mac: Option<Mac>,
}

pub struct Netlink {
    handle: rtnetlink::Handle,
    connection: tokio::task::JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Netlink {
    pub fn open() -> anyhow::Result<Netlink> {
        let (connection, handle, _) =
            rtnetlink::new_connection().context("open a netlink socket")?;
        Ok(Netlink {
            handle,
            connection: tokio::spawn(connection),
        })
    }

    pub async fn link(&self, name: &str) -> anyhow::Result<Link> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        let Some(link) = links
            .try_next()
            .await
            .with_context(|| format!("look up interface {name}"))?
        else {
            bail!("no interface {name}");
        };
        let mac = link.attributes.iter().find_map(|a| match a {
            LinkAttribute::Address(bytes) if bytes.len() == 6 => {
                let mut mac = [0; 6];
                mac.copy_from_slice(bytes);
                Some(mac)
            }
            _ => None,
        });
        Ok(Link {
            index: link.header.index,
            mac,
        })
    }

    /// Adds `address`, or renews it, with a kernel lifetime of `lifetime_secs`: if this process
    /// stops renewing (killed, frozen), the kernel removes the address by itself.
    pub async fn add_or_renew(
        &self,
        link: u32,
        address: VipAddress,
        lifetime_secs: u32,
    ) -> anyhow::Result<()> {
        let mut request = self
            .handle
            .address()
            .add(link, address.ip, address.prefix)
            .replace();
        let message = request.message_mut();
        let mut lifetime = CacheInfo::default();
        lifetime.ifa_preferred = lifetime_secs;
        lifetime.ifa_valid = lifetime_secs;
        message
            .attributes
            .push(AddressAttribute::CacheInfo(lifetime));
        if address.ip.is_ipv6() {
            // Usable at once: duplicate address detection would hold it back for a second or
            // more, and the lease already guarantees nobody else holds it.
            message.header.flags |= AddressHeaderFlags::Nodad;
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        request
            .execute()
            .await
            .with_context(|| format!("add {address}"))
    }

    /// Removes `ip` from the interface if it is there; returns whether it was.
    pub async fn remove(&self, link: u32, ip: IpAddr) -> anyhow::Result<bool> {
        let mut found = self
            .handle
            .address()
            .get()
            .set_link_index_filter(link)
            .set_address_filter(ip)
            .execute();
        let mut removed = false;
        while let Some(message) = found.try_next().await.context("list addresses")? {
            match self.handle.address().del(message).execute().await {
                Ok(()) => removed = true,
                // Gone in the meantime (its lifetime ended): that is what we wanted.
                Err(rtnetlink::Error::NetlinkError(err))
                    if err.raw_code() == -libc::EADDRNOTAVAIL
                        || err.raw_code() == -libc::ENOENT => {}
                Err(err) => return Err(err).with_context(|| format!("remove {ip}")),
            }
        }
        Ok(removed)
    }
}
