//! The virtual-IP manager, the project's own keepalived: the VIP follows Raft leadership and is
//! fenced by the leader lease, so two nodes never hold it at once.
//!
//! A data node holds the VIP only while it is the leader, its leader lease is valid (a quorum
//! acknowledged it within the lease, minus a margin), and, to take it, it has applied every
//! entry committed before its term. Followers refuse to vote for anyone else until a lease
//! has passed since they last heard from the leader, so a leader that loses its quorum lets go
//! before any other node can be elected.
//!
//! A leader that is killed or frozen cannot let go, so the address is added with a one-second
//! kernel lifetime that the holder renews five times a second: the kernel of a dead or stopped
//! holder removes the address by itself. A new leader probes (RFC 5227 ARP probes) until nobody
//! answers for the address, or until that lifetime has certainly ended, and only then adds it,
//! listens on it and sends gratuitous ARP (and unsolicited neighbour advertisements for IPv6).
//! A killed holder does not even wait for the lifetime: a guard process removes its address
//! as soon as mclusterd is gone (`guard.rs`).

pub mod guard;
pub mod netlink;
pub mod packet;
pub mod state;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::{RaftMetrics, ServerState};
use raft_store::{NodeId, TypeConfig};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::cluster::Cluster;
use crate::config::VipConfig;
use crate::mail_service::MailContext;
use crate::vip::netlink::{Link, Netlink};
use crate::vip::packet::{ArpSocket, Mac};
pub use crate::vip::state::{StepDown, VipState, VipView};

/// Kernel lifetime of the address: how long it outlives a holder that stopped renewing it.
const ADDRESS_LIFETIME: Duration = Duration::from_secs(1);
/// How often a holder renews the address's lifetime.
const RENEW_EVERY: Duration = Duration::from_millis(200);
/// How often the holding condition is checked.
const TICK: Duration = Duration::from_millis(10);
/// Gratuitous ARP (and NA) as IPaddr2 sends it: five times, 200 ms apart.
const ANNOUNCEMENTS: u32 = 5;
const ANNOUNCE_EVERY: Duration = Duration::from_millis(200);
/// ARP probes while claiming: one every `PROBE_EVERY`, claim after `QUIET_PROBES` unanswered.
const PROBE_EVERY: Duration = Duration::from_millis(20);
const QUIET_PROBES: u32 = 2;
/// The longest a claim waits for the old holder's address to go: the old holder renewed it
/// last before its lease ended, which was before this node was elected, so its kernel has
/// removed it once `ADDRESS_LIFETIME` (plus the kernel's timer slack) has passed.
const CLAIM_MAX_WAIT: Duration = Duration::from_millis(1300);
/// The reasons for a planned release.
const HANDING_OVER: &str = "leadership is being handed over";
const SHUTTING_DOWN: &str = "the node is shutting down";
/// How long sessions on the VIP get to say goodbye in a planned release: a session waiting
/// for its client answers at once; one in the middle of a command may need to finish it.
const GOODBYE_WAIT: Duration = Duration::from_millis(500);

/// A node that cannot hold the VIP hands leadership over at most this often.
const PROBLEM_HANDOVER_EVERY: Duration = Duration::from_secs(30);

/// What the Raft state allows right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Leader with a valid lease that has applied everything committed: may take the VIP.
    Take,
    /// Leader with a valid lease, not yet caught up with its own commits: may keep, not take.
    Keep,
    /// Must not hold the VIP, for this reason.
    Release(&'static str),
}

/// The holding rule. `lease` is how long followers refuse other candidates after hearing from
/// this leader; `margin` covers this check's own delay and the time to remove the address.
pub fn verdict(
    m: &RaftMetrics<TypeConfig>,
    me: NodeId,
    lease: Duration,
    margin: Duration,
    stepping_down: bool,
) -> Verdict {
    if stepping_down {
        return Verdict::Release(HANDING_OVER);
    }
    if m.running_state.is_err() {
        return Verdict::Release("the Raft core stopped");
    }
    if m.state != ServerState::Leader || m.current_leader != Some(me) {
        return Verdict::Release("not the leader");
    }
    let membership = m.membership_config.membership();
    let alone = membership.voter_ids().all(|id| id == me);
    if !alone {
        use openraft::Instant as _;
        let Some(acked) = m.last_quorum_acked else {
            return Verdict::Release("no quorum has acknowledged this leader yet");
        };
        if acked.into_inner().elapsed() + margin >= lease {
            return Verdict::Release("the leader lease expired: no quorum acknowledged in time");
        }
    }
    let committed = m.local_committed.as_ref();
    let fresh = m.last_applied.as_ref() >= committed
        && committed.is_some_and(|c| c.leader_id.term == m.current_term);
    if fresh { Verdict::Take } else { Verdict::Keep }
}

/// The running manager of a data node with a VIP.
pub struct VipManager {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl VipManager {
    /// Starts managing the VIP, if the node has one. The first thing it does is remove the
    /// VIP's addresses, in case a killed predecessor left them.
    pub fn start(cluster: Arc<Cluster>, context: Arc<MailContext>) -> Option<VipManager> {
        let config = cluster.vip.config.clone()?;
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut manager = Manager::new(cluster, context, config);
            manager.run(stop_rx).await;
        });
        Some(VipManager { stop, task })
    }

    /// Releases the VIP and stops.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

enum Phase {
    Idle,
    Claiming(Claim),
    Held { renewed: Instant },
}

struct Claim {
    since: Instant,
    last_probe: Option<Instant>,
    quiet: u32,
    waiting_logged: bool,
    /// No attempt before this (after a failed bind).
    not_before: Instant,
}

/// The interface side: netlink, the link, and the ARP socket with its listening thread.
struct Network {
    netlink: Netlink,
    link: Link,
    arp: Option<Arc<ArpWatch>>,
}

/// An ARP socket plus a thread noting who else claims the VIP's IPv4 address.
struct ArpWatch {
    socket: ArpSocket,
    mac: Mac,
    ip: Ipv4Addr,
    /// The last time another host answered for (or announced) the address, and its MAC.
    foreign: Mutex<Option<(Instant, Mac)>>,
    stop: AtomicBool,
}

impl ArpWatch {
    fn start(ifindex: u32, mac: Mac, ip: Ipv4Addr) -> std::io::Result<Arc<ArpWatch>> {
        let watch = Arc::new(ArpWatch {
            socket: ArpSocket::open(ifindex)?,
            mac,
            ip,
            foreign: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let listener = watch.clone();
        std::thread::Builder::new()
            .name("vip-arp".into())
            .spawn(move || listener.listen())?;
        Ok(watch)
    }

    fn listen(&self) {
        let mut frame = [0u8; 1600];
        while !self.stop.load(Ordering::Relaxed) {
            match self.socket.recv(&mut frame, Duration::from_millis(100)) {
                Ok(Some(n)) => {
                    if let Some(mac) = packet::claimant(&frame[..n], self.ip)
                        && mac != self.mac
                    {
                        *self.foreign.lock().expect("arp lock") = Some((Instant::now(), mac));
                    }
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "reading ARP for the virtual IP failed");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    fn foreign_since(&self, at: Instant) -> Option<Mac> {
        match *self.foreign.lock().expect("arp lock") {
            Some((seen, mac)) if seen >= at => Some(mac),
            _ => None,
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if let Some(arp) = &self.arp {
            arp.stop.store(true, Ordering::Relaxed);
        }
    }
}

struct Manager {
    cluster: Arc<Cluster>,
    context: Arc<MailContext>,
    config: VipConfig,
    network: Option<Network>,
    phase: Phase,
    /// Accept loops and the announcement task while the VIP is held.
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Sessions that came in on the VIP: ended when it is released.
    sessions: Arc<tokio::sync::Mutex<JoinSet<()>>>,
    /// Tells those sessions (`MailContext::closing`) that the VIP is being handed over.
    leaving: watch::Sender<bool>,
    /// When this node last handed leadership over because it cannot hold the VIP.
    last_problem_handover: Option<Instant>,
    last_other_leader: Option<Instant>,
    /// The guard process that removes the address if this process dies.
    guard: Option<tokio::process::Child>,
    /// When the guard may next be (re)started: not more than once a second.
    guard_next_start: Instant,
    lease: Duration,
    margin: Duration,
}

fn mac_string(mac: Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Manager {
    fn new(cluster: Arc<Cluster>, context: Arc<MailContext>, config: VipConfig) -> Manager {
        // openraft's followers refuse other candidates for election-timeout-max after each
        // heartbeat: that is the lease.
        let lease = cluster.config.election_timeout_max;
        let margin = (lease / 4).max(TICK * 3);
        Manager {
            cluster,
            context,
            config,
            network: None,
            phase: Phase::Idle,
            tasks: Vec::new(),
            sessions: Arc::new(tokio::sync::Mutex::new(JoinSet::new())),
            leaving: watch::Sender::new(false),
            last_problem_handover: None,
            last_other_leader: None,
            guard: None,
            guard_next_start: Instant::now(),
            lease,
            margin,
        }
    }

    async fn run(&mut self, mut stop: watch::Receiver<bool>) {
        if !self.config.loopback {
            self.open_network(&mut stop).await;
            if self.network.is_none() {
                return;
            }
        }
        self.remove_addresses("start-up").await;
        let state = self.cluster.vip.clone();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = state.changed.notified() => {}
                _ = stop.changed() => break,
            }
            self.keep_guard();
            self.step().await;
        }
        if matches!(self.phase, Phase::Held { .. }) {
            self.release(SHUTTING_DOWN).await;
        }
        self.remove_addresses("shutdown").await;
        // Closing its pipe lets the guard go (it finds nothing left to remove).
        if let Some(mut guard) = self.guard.take() {
            drop(guard.stdin.take());
            let _ = tokio::time::timeout(Duration::from_secs(2), guard.wait()).await;
        }
    }

    /// Starts the guard, or restarts it if it ended (someone killed it).
    fn keep_guard(&mut self) {
        if self.config.loopback || Instant::now() < self.guard_next_start {
            return;
        }
        if let Some(guard) = &mut self.guard {
            match guard.try_wait() {
                Ok(None) => return,
                Ok(Some(status)) => {
                    tracing::warn!(%status, "the virtual IP guard process ended; restarting it")
                }
                Err(err) => tracing::warn!(error = %err, "cannot check the virtual IP guard"),
            }
        }
        self.guard_next_start = Instant::now() + Duration::from_secs(1);
        self.guard = match guard::spawn(&self.config) {
            Ok(child) => Some(child),
            Err(err) => {
                tracing::error!(error = %err,
                    "cannot start the virtual IP guard: if mclusterd is killed, its address stays up to 1 s");
                None
            }
        };
    }

    /// Opens netlink and finds the interface, retrying every second (the interface may come up
    /// after mclusterd) until it works or the node stops.
    async fn open_network(&mut self, stop: &mut watch::Receiver<bool>) {
        let mut logged = false;
        loop {
            match self.try_open_network().await {
                Ok(network) => {
                    tracing::info!(
                        interface = %self.config.interface,
                        addresses = ?self.config.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
                        "virtual IP manager ready"
                    );
                    self.network = Some(network);
                    self.cluster.vip.set_problem(None);
                    return;
                }
                Err(err) => {
                    if !logged {
                        tracing::error!(error = %format!("{err:#}"), interface = %self.config.interface,
                            "virtual IP unavailable: cannot use the interface (retrying every second)");
                        logged = true;
                    }
                    self.cluster.vip.set_problem(Some(format!(
                        "cannot use interface {}: {err:#}",
                        self.config.interface
                    )));
                    self.hand_over_leadership().await;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
        }
    }

    async fn try_open_network(&self) -> anyhow::Result<Network> {
        let netlink = Netlink::open()?;
        let link = netlink.link(&self.config.interface).await?;
        let ipv4 = self.config.addresses.iter().find_map(|a| match a.ip {
            IpAddr::V4(ip) => Some(ip),
            IpAddr::V6(_) => None,
        });
        let arp = match (ipv4, link.mac) {
            (Some(ip), Some(mac)) => Some(ArpWatch::start(link.index, mac, ip).map_err(|e| {
                anyhow::anyhow!("open an ARP socket on {}: {e}", self.config.interface)
            })?),
            _ => None,
        };
        Ok(Network { netlink, link, arp })
    }

    async fn step(&mut self) {
        let m = self.cluster.metrics();
        let me = self.cluster.config.node_id;
        if m.current_leader.is_some_and(|l| l != me) {
            self.last_other_leader = Some(Instant::now());
        }
        let stepping_down = self.cluster.vip.stepping_down();
        let verdict = verdict(&m, me, self.lease, self.margin, stepping_down);
        match (&mut self.phase, verdict) {
            (Phase::Idle, Verdict::Take) => {
                self.phase = Phase::Claiming(Claim {
                    since: Instant::now(),
                    last_probe: None,
                    quiet: 0,
                    waiting_logged: false,
                    not_before: Instant::now(),
                });
                self.claim_step().await;
            }
            (Phase::Idle, _) => {}
            (Phase::Claiming(_), Verdict::Release(_)) => self.phase = Phase::Idle,
            (Phase::Claiming(_), _) => self.claim_step().await,
            (Phase::Held { .. }, Verdict::Release(reason)) => self.release(reason).await,
            (Phase::Held { renewed }, _) => {
                if renewed.elapsed() >= RENEW_EVERY {
                    self.renew().await;
                }
            }
        }
    }

    /// One step of a claim: probe, and take the VIP once nobody else answers for it.
    async fn claim_step(&mut self) {
        let Phase::Claiming(claim) = &mut self.phase else {
            return;
        };
        if Instant::now() < claim.not_before {
            return;
        }
        let arp = self.network.as_ref().and_then(|n| n.arp.clone());
        let ready = match &arp {
            // Loopback mode: binding the address is the test (one process per address:port).
            None if self.config.loopback => true,
            // No IPv4 address to probe for: wait out the old holder's address lifetime.
            None => claim.since.elapsed() >= CLAIM_MAX_WAIT,
            Some(arp) => {
                let now = Instant::now();
                let probe_due = claim
                    .last_probe
                    .is_none_or(|at| now.duration_since(at) >= PROBE_EVERY);
                if probe_due {
                    if let Some(at) = claim.last_probe {
                        match arp.foreign_since(at) {
                            Some(mac) => {
                                claim.quiet = 0;
                                if !claim.waiting_logged {
                                    tracing::info!(holder = %mac_string(mac),
                                        "waiting for the previous holder to let go of the virtual IP");
                                    claim.waiting_logged = true;
                                }
                            }
                            None => claim.quiet += 1,
                        }
                    }
                    if let Err(err) = arp.socket.send(&packet::arp_probe(arp.mac, arp.ip)) {
                        tracing::warn!(error = %err, "sending an ARP probe failed");
                    }
                    claim.last_probe = Some(now);
                }
                if claim.quiet >= QUIET_PROBES {
                    true
                } else if claim.since.elapsed() >= CLAIM_MAX_WAIT {
                    // Longer than any address lifetime of ours: this is not a former holder.
                    tracing::error!(
                        "another host still answers for the virtual IP after {CLAIM_MAX_WAIT:?}: \
                         it is configured there by hand or by other software; taking it anyway"
                    );
                    true
                } else {
                    false
                }
            }
        };
        if ready {
            self.acquire().await;
        }
    }

    async fn acquire(&mut self) {
        let started = Instant::now();
        if let Err(err) = self.put_addresses().await {
            let problem = format!("cannot add the virtual IP: {err:#}");
            if self.cluster.vip.set_problem(Some(problem)) {
                tracing::error!(error = %format!("{err:#}"), "could not add the virtual IP; retrying every second");
            }
            self.remove_addresses("a failed claim").await;
            if let Phase::Claiming(claim) = &mut self.phase {
                claim.not_before = Instant::now() + Duration::from_secs(1);
            }
            self.hand_over_leadership().await;
            return;
        }
        if self.cluster.vip.set_problem(None) {
            tracing::info!("the virtual IP can be added again");
        }
        let mut listeners = Vec::new();
        for address in &self.config.addresses {
            for (service, addr) in self.cluster.config.listeners.enabled() {
                let on = SocketAddr::new(address.ip, addr.port());
                match crate::listeners::bind(service, on).await {
                    Ok(listener) => listeners.push((service, listener)),
                    Err(err) => {
                        // In loopback mode the old holder (another process on this machine)
                        // may still listen: try again on the next tick. Otherwise something
                        // else has the port on the VIP: try again in a second.
                        if let Phase::Claiming(claim) = &mut self.phase {
                            if !claim.waiting_logged && self.config.loopback {
                                tracing::info!(error = %format!("{err:#}"),
                                    "waiting for the previous holder to stop listening on the virtual IP");
                            } else if !claim.waiting_logged {
                                tracing::warn!(error = %format!("{err:#}"),
                                    "cannot listen on the virtual IP; retrying every second");
                            }
                            claim.waiting_logged = true;
                            let wait = if self.config.loopback {
                                TICK
                            } else {
                                Duration::from_secs(1)
                            };
                            claim.not_before = Instant::now() + wait;
                        }
                        drop(listeners);
                        if !self.config.loopback {
                            self.remove_addresses("a failed claim").await;
                        }
                        return;
                    }
                }
            }
        }
        self.leaving.send_replace(false);
        for (service, listener) in listeners {
            self.tasks.push(tokio::spawn(crate::listeners::accept_loop(
                self.context.clone(),
                listener,
                service,
                self.sessions.clone(),
                Some(self.leaving.subscribe()),
            )));
        }
        if let Some(network) = &self.network {
            self.tasks.push(tokio::spawn(announce(
                self.config.clone(),
                network.link,
                network.arp.clone(),
            )));
        }
        let state = &self.cluster.vip;
        let failover = self.last_other_leader.map(|at| at.elapsed());
        if let Some(failover) = failover {
            state
                .last_failover_ms
                .store(failover.as_millis() as u64, Ordering::Relaxed);
        }
        state.acquisitions.fetch_add(1, Ordering::Relaxed);
        state.set_held(true);
        self.phase = Phase::Held {
            renewed: Instant::now(),
        };
        tracing::info!(
            addresses = ?self.config.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
            failover_ms = failover.map(|d| d.as_millis() as u64),
            setup_ms = started.elapsed().as_millis() as u64,
            "took the virtual IP"
        );
    }

    /// Adds the addresses, or renews their kernel lifetime (nothing to do in loopback mode).
    async fn put_addresses(&self) -> anyhow::Result<()> {
        let Some(network) = &self.network else {
            return Ok(());
        };
        for address in &self.config.addresses {
            network
                .netlink
                .add_or_renew(
                    network.link.index,
                    *address,
                    ADDRESS_LIFETIME.as_secs() as u32,
                )
                .await?;
        }
        Ok(())
    }

    async fn renew(&mut self) {
        if let Err(err) = self.put_addresses().await {
            tracing::error!(error = %format!("{err:#}"),
                "could not renew the virtual IP; releasing it");
            self.release("renewal failed").await;
            return;
        }
        if let Some(arp) = self.network.as_ref().and_then(|n| n.arp.as_ref())
            && let Some(mac) = arp.foreign_since(Instant::now() - RENEW_EVERY)
        {
            tracing::error!(other = %mac_string(mac),
                "another host claims the virtual IP while this node holds it");
        }
        self.phase = Phase::Held {
            renewed: Instant::now(),
        };
    }

    /// This node cannot hold the VIP: if it leads and a caught-up data voter could take over,
    /// hand leadership (and so the VIP) to it, at most every `PROBLEM_HANDOVER_EVERY` (two
    /// nodes with the same fault would otherwise pass it back and forth). With no other data
    /// node it stays leader: mail is still served on the nodes' own addresses.
    async fn hand_over_leadership(&mut self) {
        if !self.cluster.is_leader()
            || self
                .last_problem_handover
                .is_some_and(|at| at.elapsed() < PROBLEM_HANDOVER_EVERY)
        {
            return;
        }
        let Some(&to) = self.cluster.caught_up_data_voters().first() else {
            return;
        };
        self.last_problem_handover = Some(Instant::now());
        let problem = self.cluster.vip.problem().unwrap_or_default();
        tracing::warn!(
            to,
            problem,
            "this node cannot hold the virtual IP: handing leadership over"
        );
        match self.cluster.failover(Some(to)).await {
            Ok(to) => tracing::info!(to, "leadership handed over"),
            Err(err) => tracing::warn!(error = %err, "could not hand leadership over"),
        }
    }

    /// Lets go: listeners and the sessions that came in on the VIP first, while their
    /// connections can still be closed (a socket whose source address is gone cannot even send
    /// its FIN, and its client would hang until its own timeout), then the address. This takes
    /// a few milliseconds of the lease margin.
    /// In a planned hand-over or a stop (`GOODBYE_WAIT` to spare), the sessions are first
    /// told why (IMAP `* BYE`, POP3 `-ERR`, SMTP 421) and given that long to end; when the
    /// lease lapsed there is no time to spare, and they are cut at once.
    async fn release(&mut self, reason: &'static str) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        let planned = reason == HANDING_OVER || reason == SHUTTING_DOWN;
        {
            let mut sessions = self.sessions.lock().await;
            if planned && !sessions.is_empty() {
                self.leaving.send_replace(true);
                let said = tokio::time::timeout(GOODBYE_WAIT, async {
                    while sessions.join_next().await.is_some() {}
                })
                .await;
                if said.is_err() {
                    tracing::info!(
                        sessions = sessions.len(),
                        "sessions on the virtual IP still busy after the goodbye: ending them"
                    );
                }
            }
            sessions.abort_all();
            // Aborted tasks drop their sockets when they are polled out; wait for that (bounded).
            let _ = tokio::time::timeout(Duration::from_millis(20), async {
                while sessions.join_next().await.is_some() {}
            })
            .await;
        }
        self.remove_addresses(reason).await;
        self.cluster.vip.set_held(false);
        self.phase = Phase::Idle;
        if planned {
            tracing::info!(reason, "released the virtual IP");
        } else {
            tracing::warn!(reason, "released the virtual IP");
        }
    }

    async fn remove_addresses(&self, why: &str) {
        let Some(network) = &self.network else {
            return;
        };
        for address in &self.config.addresses {
            match network.netlink.remove(network.link.index, address.ip).await {
                Ok(true) if why == "start-up" => {
                    tracing::warn!(%address, "removed a virtual IP left on the interface by an earlier run")
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::error!(%address, error = %format!("{err:#}"), "could not remove the virtual IP")
                }
            }
        }
    }
}

/// Gratuitous ARP for the IPv4 addresses and unsolicited neighbour advertisements for the IPv6
/// ones, `ANNOUNCEMENTS` times, so switches and neighbours forget the old holder's MAC at once
/// instead of after their cache timeout.
async fn announce(config: VipConfig, link: Link, arp: Option<Arc<ArpWatch>>) {
    let Some(mac) = link.mac else {
        return;
    };
    for round in 0..ANNOUNCEMENTS {
        if round > 0 {
            tokio::time::sleep(ANNOUNCE_EVERY).await;
        }
        for address in &config.addresses {
            let sent = match address.ip {
                IpAddr::V4(ip) => match &arp {
                    Some(arp) => arp.socket.send(&packet::gratuitous_arp(mac, ip)),
                    None => Ok(()),
                },
                IpAddr::V6(ip) => packet::unsolicited_na(&config.interface, link.index, mac, ip),
            };
            if let Err(err) = sent {
                tracing::warn!(%address, error = %err, "announcing the virtual IP failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use openraft::metrics::SerdeInstant;
    use openraft::vote::RaftLeaderId;
    use openraft::{Instant as _, Membership, RaftMetrics, ServerState, StoredMembership};
    use raft_store::{Member, TypeConfig};

    use super::*;

    const LEASE: Duration = Duration::from_millis(600);
    const MARGIN: Duration = Duration::from_millis(150);

    fn log_id(term: u64, index: u64) -> raft_store::LogId {
        openraft::LogId::new(
            openraft::vote::leader_id_adv::CommittedLeaderId::new(term, 1),
            index,
        )
    }

    /// Node 1 leading a three-voter cluster in term 3, caught up, acknowledged `acked_ago`.
    fn leader(acked_ago: Option<Duration>) -> RaftMetrics<TypeConfig> {
        let mut m = RaftMetrics::<TypeConfig>::new_initial(1);
        m.state = ServerState::Leader;
        m.current_leader = Some(1);
        m.current_term = 3;
        m.local_committed = Some(log_id(3, 10));
        m.last_applied = Some(log_id(3, 10));
        let voters: BTreeSet<u64> = [1, 2, 3].into();
        let nodes: BTreeMap<u64, Member> =
            voters.iter().map(|&id| (id, Member::default())).collect();
        m.membership_config = Arc::new(StoredMembership::new(
            None,
            Membership::new(vec![voters], nodes).expect("membership"),
        ));
        m.last_quorum_acked =
            acked_ago.map(|ago| SerdeInstant::new(openraft::TokioInstant::now() - ago));
        m
    }

    #[test]
    fn a_caught_up_leader_with_a_fresh_lease_takes_the_vip() {
        let m = leader(Some(Duration::from_millis(50)));
        assert_eq!(verdict(&m, 1, LEASE, MARGIN, false), Verdict::Take);
    }

    #[test]
    fn the_vip_goes_before_the_lease_can_end_elsewhere() {
        // Followers refuse other candidates until LEASE after the acknowledged heartbeat; the
        // holder lets go MARGIN before that.
        let m = leader(Some(LEASE - MARGIN + Duration::from_millis(5)));
        assert!(matches!(
            verdict(&m, 1, LEASE, MARGIN, false),
            Verdict::Release(_)
        ));
        let m = leader(Some(LEASE - MARGIN - Duration::from_millis(50)));
        assert_eq!(verdict(&m, 1, LEASE, MARGIN, false), Verdict::Take);
        assert!(matches!(leader_without_ack(), Verdict::Release(_)));
    }

    fn leader_without_ack() -> Verdict {
        verdict(&leader(None), 1, LEASE, MARGIN, false)
    }

    #[test]
    fn followers_and_hand_overs_never_hold_it() {
        let mut m = leader(Some(Duration::from_millis(10)));
        assert!(matches!(
            verdict(&m, 1, LEASE, MARGIN, true),
            Verdict::Release(_)
        ));
        m.state = ServerState::Follower;
        m.current_leader = Some(2);
        assert!(matches!(
            verdict(&m, 1, LEASE, MARGIN, false),
            Verdict::Release(_)
        ));
        assert!(matches!(
            verdict(&m, 2, LEASE, MARGIN, false),
            Verdict::Release(_)
        ));
    }

    #[test]
    fn a_new_leader_takes_it_only_after_applying_its_own_term() {
        let mut m = leader(Some(Duration::from_millis(10)));
        // Elected in term 3, but the highest known commit is still from term 2: entries the old
        // leader committed may not be applied here yet.
        m.local_committed = Some(log_id(2, 9));
        m.last_applied = Some(log_id(2, 9));
        assert_eq!(verdict(&m, 1, LEASE, MARGIN, false), Verdict::Keep);
        m.local_committed = Some(log_id(3, 10));
        assert_eq!(verdict(&m, 1, LEASE, MARGIN, false), Verdict::Keep);
        m.last_applied = Some(log_id(3, 10));
        assert_eq!(verdict(&m, 1, LEASE, MARGIN, false), Verdict::Take);
    }

    #[test]
    fn a_single_voter_needs_no_quorum_acknowledgement() {
        let mut m = leader(None);
        let nodes: BTreeMap<u64, Member> = [(1, Member::default())].into();
        m.membership_config = Arc::new(StoredMembership::new(
            None,
            Membership::new(vec![[1].into()], nodes).expect("membership"),
        ));
        assert_eq!(verdict(&m, 1, LEASE, MARGIN, false), Verdict::Take);
    }
}
