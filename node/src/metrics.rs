//! Prometheus metrics in the text exposition format: Raft progress from openraft's metrics,
//! membership, and admin API request counts.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::ServerState;

use crate::blobs::Blobs;
use crate::cluster::Cluster;
use crate::mail_service::MailContext;

/// Counters the node keeps itself; gauges are read from openraft when scraped.
#[derive(Default)]
pub struct Metrics {
    http_2xx: AtomicU64,
    http_4xx: AtomicU64,
    http_5xx: AtomicU64,
}

impl Metrics {
    pub fn count_http(&self, status: u16) {
        let counter = match status {
            500.. => &self.http_5xx,
            400.. => &self.http_4xx,
            _ => &self.http_2xx,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, cluster: &Cluster) -> String {
        let m = cluster.metrics();
        let config = &cluster.config;
        let mut out = String::new();
        let index = |l: Option<u64>| l.map(|i| i as i64).unwrap_or(-1);
        let mut gauge = |name: &str, help: &str, value: i64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        gauge(
            "mcluster_raft_term",
            "Current Raft term.",
            m.current_term as i64,
        );
        gauge(
            "mcluster_raft_is_leader",
            "1 if this node is the Raft leader.",
            i64::from(m.state == ServerState::Leader),
        );
        gauge(
            "mcluster_raft_leader_known",
            "1 if this node knows a leader.",
            i64::from(m.current_leader.is_some()),
        );
        gauge(
            "mcluster_raft_last_log_index",
            "Index of the last log entry (-1: none).",
            index(m.last_log_index),
        );
        gauge(
            "mcluster_raft_committed_index",
            "Index of the last committed entry (-1: none).",
            index(m.local_committed.as_ref().map(|l| l.index)),
        );
        gauge(
            "mcluster_raft_applied_index",
            "Index of the last applied entry (-1: none).",
            index(m.last_applied.as_ref().map(|l| l.index)),
        );
        gauge(
            "mcluster_raft_snapshot_index",
            "Index covered by the last snapshot (-1: none).",
            index(m.snapshot.as_ref().map(|l| l.index)),
        );
        let membership = m.membership_config.membership();
        gauge(
            "mcluster_raft_voters",
            "Number of voters in the membership.",
            membership.voter_ids().count() as i64,
        );
        gauge(
            "mcluster_raft_learners",
            "Number of learners in the membership.",
            membership.learner_ids().count() as i64,
        );
        let _ = writeln!(
            out,
            "# HELP mcluster_node_info Identity of this node.\n# TYPE mcluster_node_info gauge\n\
             mcluster_node_info{{node_id=\"{}\",name=\"{}\",role=\"{}\"}} 1",
            config.node_id, config.name, config.role
        );
        if let Some(replication) = m.replication.as_ref() {
            let _ = writeln!(
                out,
                "# HELP mcluster_raft_follower_lag Entries each follower is behind the leader's log.\n\
                 # TYPE mcluster_raft_follower_lag gauge"
            );
            let last = m.last_log_index.unwrap_or(0);
            for (id, matched) in replication {
                let matched = matched.as_ref().map(|l| l.index).unwrap_or(0);
                let _ = writeln!(
                    out,
                    "mcluster_raft_follower_lag{{node_id=\"{id}\"}} {}",
                    last.saturating_sub(matched)
                );
            }
        }
        if let Some(vip) = cluster.vip.view() {
            let _ = writeln!(
                out,
                "# HELP mcluster_vip_held 1 while this node holds the virtual IP.\n\
                 # TYPE mcluster_vip_held gauge\nmcluster_vip_held {}\n\
                 # HELP mcluster_vip_acquisitions_total Times this node took the virtual IP.\n\
                 # TYPE mcluster_vip_acquisitions_total counter\n\
                 mcluster_vip_acquisitions_total {}",
                i64::from(vip.held),
                vip.acquisitions
            );
            let _ = writeln!(
                out,
                "# HELP mcluster_vip_unusable 1 while this node cannot configure the virtual IP \
                 (its interface or address; the node status says why).\n\
                 # TYPE mcluster_vip_unusable gauge\nmcluster_vip_unusable {}",
                i64::from(vip.problem.is_some())
            );
            if let Some(ms) = vip.last_failover_ms {
                let _ = writeln!(
                    out,
                    "# HELP mcluster_vip_last_failover_seconds Last takeover here: from the last \
                     sight of another leader to the virtual IP up and listened on.\n\
                     # TYPE mcluster_vip_last_failover_seconds gauge\n\
                     mcluster_vip_last_failover_seconds {:.3}",
                    ms as f64 / 1000.0
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP mcluster_admin_requests_total Admin API answers by status class.\n\
             # TYPE mcluster_admin_requests_total counter"
        );
        for (class, counter) in [
            ("2xx", &self.http_2xx),
            ("4xx", &self.http_4xx),
            ("5xx", &self.http_5xx),
        ] {
            let _ = writeln!(
                out,
                "mcluster_admin_requests_total{{class=\"{class}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        out
    }

    /// The mail and blob metrics of a data node.
    pub fn render_mail(&self, mail: &MailContext, blobs: &Blobs, cluster: &Cluster) -> String {
        let mut out = String::new();
        let b = &blobs.metrics;
        let m = &mail.metrics;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed) as i64;
        let mut metric = |kind: &str, name: &str, help: &str, value: i64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "gauge",
            "mcluster_mirror_degraded",
            "1 while new blobs cannot be mirrored (the partner is down): one copy only.",
            i64::from(b.degraded.load(Ordering::Relaxed)),
        );
        let missing = cluster
            .reader
            .missing_blob_count(cluster.config.node_id)
            .map_or(-1, |n| n as i64);
        metric(
            "gauge",
            "mcluster_blobs_missing",
            "Blobs this node must hold but has not pulled yet (-1: unknown).",
            missing,
        );
        metric(
            "gauge",
            "mcluster_blobs_misplaced",
            "On the leader: blobs that name a replica which left the cluster, so have at most one live copy until they are moved and pulled.",
            b.misplaced.load(Ordering::Relaxed) as i64,
        );
        metric(
            "gauge",
            "mcluster_blob_copies_short",
            "On the leader: blob copies short of every blob having two live, confirmed copies (not yet placed, still to pull, or on a data node that does not answer); 0 when redundancy is full.",
            b.copies_short.load(Ordering::Relaxed) as i64,
        );
        let access = &mail.access.counters;
        let overrides = (
            "mcluster_allow_list_overrides_total",
            "Checks where a block list entry matched but an allow list entry won.",
            &access.allowed_over_block,
        );
        let counters = b
            .counters()
            .into_iter()
            .chain(m.counters())
            .chain(m.filters.counters());
        for (name, help, counter) in counters.chain([overrides]) {
            metric("counter", name, help, load(counter));
        }
        let a = &mail.access.counters;
        let _ = writeln!(
            out,
            "# HELP mcluster_block_list_refused_total Connections and SMTP commands refused by \
             the block list.\n# TYPE mcluster_block_list_refused_total counter"
        );
        for (what, counter) in [
            ("connection", &a.connections),
            ("helo", &a.helo),
            ("sender", &a.senders),
            ("recipient", &a.recipients),
        ] {
            let _ = writeln!(
                out,
                "mcluster_block_list_refused_total{{what=\"{what}\"}} {}",
                load(counter)
            );
        }
        out
    }
}
