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
        for (name, help, counter) in [
            (
                "mcluster_blobs_stored_total",
                "Blobs written by this node as receiver.",
                &b.stored,
            ),
            (
                "mcluster_blobs_mirrored_total",
                "Blobs also fsync'd by a mirror partner.",
                &b.mirrored,
            ),
            (
                "mcluster_degraded_accepts_total",
                "Messages accepted with one copy.",
                &b.degraded_accepts,
            ),
            (
                "mcluster_mirror_failures_total",
                "Failed pushes to a mirror partner.",
                &b.mirror_failures,
            ),
            (
                "mcluster_resync_fetched_total",
                "Blobs pulled during resync.",
                &b.resync_fetched,
            ),
            (
                "mcluster_resync_failures_total",
                "Failed resync fetches.",
                &b.resync_failures,
            ),
            (
                "mcluster_blobs_gc_removed_total",
                "Unreferenced blob files deleted.",
                &b.gc_removed,
            ),
            (
                "mcluster_smtp_sessions_total",
                "SMTP sessions started.",
                &m.smtp_sessions,
            ),
            (
                "mcluster_pop3_sessions_total",
                "POP3 sessions started.",
                &m.pop3_sessions,
            ),
            (
                "mcluster_imap_sessions_total",
                "IMAP sessions started.",
                &m.imap_sessions,
            ),
            (
                "mcluster_imap_appends_total",
                "Messages stored by IMAP APPEND (fsync'd on two nodes and committed before the OK).",
                &m.imap_appends,
            ),
            (
                "mcluster_messages_accepted_total",
                "Messages answered 250.",
                &m.messages_accepted,
            ),
            (
                "mcluster_messages_tempfailed_total",
                "Messages answered 451 after DATA.",
                &m.messages_refused_temp,
            ),
            (
                "mcluster_messages_too_complex_total",
                "Messages refused (SMTP 554 5.6.0, IMAP NO [LIMIT]) for MIME parts, nesting or header sections over the message limits.",
                &m.messages_too_complex,
            ),
            (
                "mcluster_outbound_delivered_total",
                "Remote recipients delivered by this node as leader.",
                &m.outbound_delivered,
            ),
            (
                "mcluster_outbound_deferred_total",
                "Remote recipients deferred (4xx, no connection), to be retried.",
                &m.outbound_deferred,
            ),
            (
                "mcluster_outbound_failed_total",
                "Remote recipients failed for good (5xx, expired), reported to the sender.",
                &m.outbound_failed,
            ),
            (
                "mcluster_auth_failures_total",
                "Failed logins (SMTP AUTH, POP3, IMAP), lockouts included.",
                &m.auth_failures,
            ),
            (
                "mcluster_logins_locked_out_total",
                "Logins refused because the account or the client IP was locked out.",
                &m.logins_locked_out,
            ),
            (
                "mcluster_lockouts_total",
                "Lockouts this node imposed after repeated failed logins.",
                &m.lockouts,
            ),
            (
                "mcluster_connections_refused_total",
                "Connections refused by the limits (concurrency or rate).",
                &m.connections_refused,
            ),
            (
                "mcluster_connections_rate_limited_total",
                "Connections refused because the client IP opened too many a minute.",
                &m.connections_rate_limited,
            ),
            (
                "mcluster_allow_list_overrides_total",
                "Checks where a block list entry matched but an allow list entry won.",
                &mail.access.counters.allowed_over_block,
            ),
            (
                "mcluster_inbound_refused_dnsbl_total",
                "SMTP recipients refused because the client is on a DNS block list.",
                &m.inbound_refused_dnsbl,
            ),
            (
                "mcluster_inbound_refused_helo_total",
                "MAIL commands refused for a bad HELO name (inbound-checks.helo = reject).",
                &m.inbound_refused_helo,
            ),
            (
                "mcluster_inbound_refused_reverse_dns_total",
                "MAIL commands refused for missing reverse DNS (inbound-checks.reverse-dns = reject).",
                &m.inbound_refused_reverse_dns,
            ),
            (
                "mcluster_inbound_refused_spf_total",
                "MAIL commands refused for an SPF fail (inbound-checks.spf-fail = reject).",
                &m.inbound_refused_spf,
            ),
            (
                "mcluster_inbound_refused_dmarc_total",
                "Messages refused for failing their domain's DMARC reject policy.",
                &m.inbound_refused_dmarc,
            ),
            (
                "mcluster_inbound_quarantined_total",
                "Messages failing a DMARC policy that asks for quarantine.",
                &m.inbound_quarantined,
            ),
            (
                "mcluster_spam_scanned_total",
                "Messages the spam scorer (spamd) scored.",
                &m.filters.spam_scanned,
            ),
            (
                "mcluster_spam_found_total",
                "Scored messages that reached a spam band (tagged, junked or rejected).",
                &m.filters.spam_found,
            ),
            (
                "mcluster_spam_skipped_total",
                "Messages not scored for spam because they were larger than max-bytes.",
                &m.filters.spam_skipped,
            ),
            (
                "mcluster_virus_scanned_total",
                "Messages the virus scanner (clamd) scanned.",
                &m.filters.virus_scanned,
            ),
            (
                "mcluster_virus_found_total",
                "Messages the virus scanner found something in.",
                &m.filters.virus_found,
            ),
            (
                "mcluster_filter_errors_total",
                "Scans that failed (scanner unreachable, timed out, bad reply); on-error decided.",
                &m.filters.errors,
            ),
        ] {
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
