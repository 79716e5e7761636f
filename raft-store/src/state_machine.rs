//! The replicated state machine: applies committed commands to the state column families, and
//! answers the node's reads of that state.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};

use crate::db::{
    CF_PENDING_NODES, CF_REQUESTS, CF_SM_META, Db, KEY_APPLIED, KEY_MEMBERSHIP, decode,
};
use crate::directory;
use crate::error::StoreError;
use crate::mail;
use crate::mail::access;
use crate::mail::dkim;
use crate::mail::folders;
use crate::mail::protection;
use crate::mail::queue;
use crate::membership;
use crate::reader::{MailChange, Staged, StateReader};
use crate::snapshot::SnapshotBuilder;
use crate::types::{
    Command, CommandResult, LogId, NodeId, Rejection, Request, SnapshotDir, SnapshotMeta,
    StoredMembership, TypeConfig,
};
use crate::versions;

/// Request outcomes are remembered for this many log entries: far longer than any client keeps
/// retrying one request.
const REQUESTS_REMEMBERED: u64 = 100_000;
/// How often (in log entries) outcomes older than that are dropped.
const REQUESTS_PRUNE_EVERY: u64 = 1_000;

/// A remembered outcome: the index it applied at, and the result.
#[derive(serde::Serialize, serde::Deserialize)]
struct Outcome {
    index: u64,
    result: CommandResult,
}

/// Mail changes a subscriber may have missed before it sees the next one; a subscriber that
/// falls further behind is told it lagged and re-reads everything it shows.
const MAIL_CHANGES_BUFFERED: usize = 1024;

/// The state machine handed to openraft. Cloning shares the database.
#[derive(Clone)]
pub struct StateMachine {
    pub(crate) db: Db,
    changes: tokio::sync::broadcast::Sender<MailChange>,
    /// Bumped whenever the access lists may have changed (see [`StateReader::access_version`]).
    access_version: Arc<AtomicU64>,
}

impl StateMachine {
    pub fn new(db: Db) -> StateMachine {
        let (changes, _) = tokio::sync::broadcast::channel(MAIL_CHANGES_BUFFERED);
        StateMachine {
            db,
            changes,
            access_version: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Read access to the applied state, for the node's API and services.
    pub fn reader(&self) -> StateReader {
        StateReader {
            db: self.db.clone(),
            changes: self.changes.clone(),
            access_version: self.access_version.clone(),
        }
    }

    fn announce(&self, command: &Command) {
        if self.changes.receiver_count() == 0 {
            return;
        }
        for account in command.mail_accounts() {
            let _ = self.changes.send(MailChange::Account(account.into()));
        }
    }

    /// A state machine on an empty store in memory, without Raft: commands are applied with
    /// [`StateMachine::apply_unreplicated`]. It runs the same code on the same tables as a
    /// replicated one, so the node's protocol tests exercise the real mail semantics without
    /// a cluster, a disk or a RocksDB database.
    pub fn in_memory() -> StateMachine {
        StateMachine::new(Db::in_memory())
    }

    /// Like [`StateMachine::in_memory`], as a new one-node cluster (node `member`, id 1) starts:
    /// its membership applied, its build reported and the cluster at this build's newest
    /// version, so every command of this build applies.
    pub fn in_memory_cluster(member: crate::types::Member) -> StateMachine {
        let mut state_machine = StateMachine::in_memory();
        let membership = openraft::Membership::new(
            vec![std::collections::BTreeSet::from([1])],
            std::collections::BTreeMap::from([(1, member)]),
        )
        .expect("a one-node membership");
        use openraft::vote::RaftLeaderId;
        let log_id = openraft::LogId::new(
            openraft::vote::leader_id_adv::CommittedLeaderId::new(1, 1),
            1,
        );
        state_machine
            .apply_entry(log_id, &EntryPayload::Membership(membership))
            .expect("a store in memory has no storage errors");
        let newest = crate::types::ClusterVersion::NEWEST;
        for command in [
            Command::ReportBuild(crate::types::MemberBuild::this_build(1, newest)),
            Command::SetClusterVersion { version: newest },
        ] {
            let result = state_machine
                .apply_unreplicated(Request::new(command))
                .expect("a store in memory has no storage errors");
            assert_eq!(result, CommandResult::Done, "{result:?}");
        }
        state_machine
    }

    /// Applies `request` as the next entry of a log only this state machine has, and returns
    /// its result. Nothing is replicated or made durable: this is for a state machine made by
    /// [`StateMachine::in_memory`].
    pub fn apply_unreplicated(&mut self, request: Request) -> Result<CommandResult, io::Error> {
        let index = self.reader().last_applied()?.map_or(1, |id| id.index + 1);
        use openraft::vote::RaftLeaderId;
        let log_id = openraft::LogId::new(
            openraft::vote::leader_id_adv::CommittedLeaderId::new(1, 1),
            index,
        );
        self.apply_entry(log_id, &EntryPayload::Normal(request))
    }

    /// Applies one committed entry: its effects and the applied marker in one atomic batch,
    /// then the announcements of what changed.
    fn apply_entry(
        &self,
        log_id: LogId,
        payload: &EntryPayload<Request, NodeId, crate::types::Member>,
    ) -> Result<CommandResult, io::Error> {
        let mut staged = Staged::new(&self.db);
        let result = match payload {
            EntryPayload::Blank => CommandResult::Done,
            EntryPayload::Normal(request) => {
                self.apply_request(request, log_id.index, &mut staged)?
            }
            EntryPayload::Membership(membership) => {
                let stored = StoredMembership::new(Some(log_id), membership.clone());
                staged.put(CF_SM_META, KEY_MEMBERSHIP, &stored);
                // A joined node that became a voter is no longer pending: if it is removed
                // later, restarting it does not add it again.
                for node_id in membership.voter_ids() {
                    staged.delete(CF_PENDING_NODES, &node_id.to_be_bytes());
                }
                CommandResult::Done
            }
        };
        // Effects and the applied marker land in one atomic batch. It need not be synced
        // itself: the entry is already fsync'd in the log and is re-applied after a crash.
        staged.put(CF_SM_META, KEY_APPLIED, &Some(log_id));
        staged.commit()?;
        if let EntryPayload::Normal(request) = payload {
            self.announce(&request.command);
            if matches!(
                request.command,
                Command::AddAccessEntry(_) | Command::RemoveAccessEntry { .. }
            ) {
                self.access_version.fetch_add(1, Ordering::Release);
            }
        }
        Ok(result)
    }

    /// Applies a request once: a retry of an applied request gets the first outcome again.
    pub(crate) fn apply_request(
        &self,
        request: &Request,
        index: u64,
        staged: &mut Staged<'_>,
    ) -> Result<CommandResult, io::Error> {
        let key = request.id.to_be_bytes();
        if let Some(outcome) = self.db.get::<Outcome>(CF_REQUESTS, &key)? {
            return Ok(outcome.result);
        }
        // A command that panics would panic again on every node and after every restart, and
        // stop the cluster for good: the same code on the same entry fails the same way
        // everywhere, so it is refused, deterministically, with nothing of it written. Storage
        // errors (`?`) are this node's own and stop it instead: refusing on one node only would
        // make the replicas differ.
        let executed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.execute(&request.command, staged)
        }));
        let result = match executed {
            Ok(result) => result?,
            Err(_) => {
                staged.discard();
                tracing::error!(
                    index,
                    command = %request.command,
                    "applying the entry failed; it is refused on every node"
                );
                CommandResult::Rejected(Rejection::ApplyFailed)
            }
        };
        staged.put(
            CF_REQUESTS,
            &key,
            &Outcome {
                index,
                result: result.clone(),
            },
        );
        if index.is_multiple_of(REQUESTS_PRUNE_EVERY) {
            self.prune_requests(index, staged)?;
        }
        Ok(result)
    }

    fn prune_requests(&self, index: u64, staged: &mut Staged<'_>) -> Result<(), StoreError> {
        for item in self.db.iter_from(CF_REQUESTS, &[]) {
            let (key, value) = item?;
            let outcome: Outcome = decode(CF_REQUESTS, &key, &value)?;
            if outcome.index + REQUESTS_REMEMBERED < index {
                staged.delete(CF_REQUESTS, &key);
            }
        }
        Ok(())
    }

    /// Decides the effect of one command against the applied state and stages it in `batch`.
    pub(crate) fn execute(
        &self,
        command: &Command,
        batch: &mut Staged<'_>,
    ) -> Result<CommandResult, StoreError> {
        let reader = self.reader();
        let rejected = |r: Rejection| Ok(CommandResult::Rejected(r));
        // The proposer checked every summary against the cluster's limits; this is the
        // deterministic backstop, the same on every node, for an entry that escaped it.
        if !command.summaries().iter().all(|s| s.within_ceiling()) {
            return rejected(Rejection::MessageTooComplex);
        }
        // Tests stand in for a bug that panics on some entry.
        #[cfg(test)]
        if let Command::AddDomain { name, .. } = command
            && name == crate::tests::PANICKING_DOMAIN
        {
            panic!("a bug met a command it cannot apply");
        }
        // The gate the proposer passed, checked again the same way on every node: versions only
        // move forward, so a command the proposer saw active is active here.
        // The stored text is part of the state (request outcomes are in the digest): only the
        // feature's name and version, which never change, go into it.
        if let Err(inactive) = crate::types::version::gate(command, reader.cluster_version()?) {
            return rejected(Rejection::NotActive(format!(
                "feature {} needs cluster version {}; the cluster runs version {}",
                inactive.feature.name(),
                inactive.feature.since(),
                inactive.active
            )));
        }
        match command {
            Command::ReportBuild(report) => {
                return versions::report_build(&reader, report, batch);
            }
            Command::SetClusterVersion { version } => {
                return versions::set_cluster_version(&reader, *version, batch);
            }
            Command::InitCluster(settings) => {
                return membership::init_cluster(&reader, settings, batch);
            }
            Command::SetTokenDigest { token, sha256 } => {
                return membership::set_token_digest(&reader, *token, sha256, batch);
            }
            Command::RegisterNode { member } => {
                return membership::register_node(&reader, member, batch);
            }
            Command::AddDomain { name, at } => {
                return directory::add_domain(&reader, name, *at, batch);
            }
            Command::DeleteDomain { name } => {
                return directory::delete_domain(&reader, name, batch);
            }
            Command::AddAccount {
                address,
                password_hash,
                quota_mb,
                at,
            } => {
                return directory::add_account(
                    &reader,
                    address,
                    password_hash,
                    *quota_mb,
                    *at,
                    batch,
                );
            }
            Command::DeleteAccount { address } => {
                return directory::delete_account(&reader, address, batch);
            }
            Command::SetPassword {
                address,
                password_hash,
            } => return directory::set_password(&reader, address, password_hash, batch),
            Command::SetAccountEnabled { address, enabled } => {
                return directory::set_account_enabled(&reader, address, *enabled, batch);
            }
            Command::AddAlias { address, targets } => {
                return directory::add_alias(&reader, address, targets, batch);
            }
            Command::DeleteAlias { address } => {
                return directory::delete_alias(&reader, address, batch);
            }
            Command::Deliver { deliveries } => {
                let outcomes = mail::deliver(&reader, deliveries, batch)?;
                return Ok(CommandResult::Delivered(outcomes));
            }
            Command::RecordAttempt {
                id,
                outcomes,
                next_attempt_at,
            } => {
                return queue::record_attempt(&reader, id, outcomes, *next_attempt_at, batch);
            }
            Command::MarkBounced { id, recipients } => {
                return queue::mark_bounced(&reader, id, recipients, batch);
            }
            Command::QueueAct { id, action } => {
                return queue::act(&reader, id, *action, batch);
            }
            Command::Notify { id, kind, delivery } => {
                return queue::notify(&reader, id, kind, delivery.as_deref(), batch);
            }
            Command::SetOutboundPolicy(policy) => queue::set_outbound_policy(policy, batch),
            Command::SetDkimKey(key) => return dkim::set_key(&reader, key, batch),
            Command::DeleteDkimKey { domain } => return dkim::delete_key(&reader, domain, batch),
            Command::SetProtectionPolicy(policy) => protection::set_policy(policy, batch),
            Command::SetProtectionSettings {
                policy,
                budgets,
                passwords,
            } => {
                protection::set_policy(policy, batch);
                protection::set_budgets(budgets, batch);
                protection::set_password_policy(passwords, batch);
            }
            Command::Lock(lockout) => return protection::lock(&reader, lockout, batch),
            Command::Unlock { target } => return protection::unlock(&reader, target, batch),
            Command::AddAccessEntry(entry) => return access::add(&reader, entry, batch),
            Command::RemoveAccessEntry { list, pattern } => {
                return access::remove(&reader, *list, pattern, batch);
            }
            Command::SetMailPolicyAndLimits { policy, limits } => {
                mail::set_mail_policy(policy, batch);
                mail::set_message_limits(limits, batch);
            }
            Command::SetMailPolicyLimitsAndConnections {
                policy,
                limits,
                connections,
            } => {
                mail::set_mail_policy(policy, batch);
                mail::set_message_limits(limits, batch);
                mail::set_connections_per_ip(connections, batch);
            }
            Command::DeliverFiled { deliveries } => {
                let filed: Vec<_> = deliveries.iter().map(|d| (&d.delivery, d.filing)).collect();
                let outcomes = mail::deliver_filed(&reader, &filed, batch)?;
                return Ok(CommandResult::Delivered(outcomes));
            }
            Command::Expunge {
                account,
                mailbox,
                uids,
            } => {
                let removed = mail::expunge(&reader, account, mailbox, uids, batch)?;
                return Ok(CommandResult::Expunged(removed));
            }
            Command::BlobsStored { node, blobs } => mail::blobs_stored(*node, blobs, batch),
            Command::SetClientTls(tls) => mail::set_client_tls(tls, batch),
            Command::SetMailPolicy(policy) => mail::set_mail_policy(policy, batch),
            Command::BlobsLost { node, blobs } => mail::blobs_lost(&reader, *node, blobs, batch)?,
            Command::MoveReplicas { from, to, blobs } => {
                mail::move_replicas(&reader, *from, *to, blobs, batch)?;
            }
            Command::AddReplicas { to, blobs } => mail::add_replicas(&reader, *to, blobs, batch)?,
            Command::ForgetReplicas { from, blobs } => {
                mail::forget_replicas(&reader, *from, blobs, batch)?;
            }
            Command::ClaimRecent {
                account,
                mailbox,
                up_to,
            } => return mail::recent::claim(&reader, account, mailbox, *up_to, batch),
            Command::CreateMailbox { account, name, at } => {
                return folders::create_mailbox(&reader, account, name, *at, batch);
            }
            Command::DeleteMailbox { account, name } => {
                return folders::delete_mailbox(&reader, account, name, batch);
            }
            Command::RenameMailbox {
                account,
                from,
                to,
                at,
            } => {
                return folders::rename_mailbox(&reader, account, from, to, *at, batch);
            }
            Command::SetSubscribed {
                account,
                name,
                subscribed,
            } => {
                return folders::set_subscribed(&reader, account, name, *subscribed, batch);
            }
            Command::StoreFlags {
                account,
                mailbox,
                uids,
                op,
                flags,
                keywords,
                unchanged_since,
            } => {
                return folders::store_flags(
                    &reader,
                    account,
                    mailbox,
                    uids,
                    *op,
                    *flags,
                    keywords,
                    *unchanged_since,
                    batch,
                );
            }
            Command::Append {
                account,
                mailbox,
                message,
            } => return folders::append(&reader, account, mailbox, message, batch),
            Command::CopyMessages {
                account,
                from,
                to,
                uids,
                remove_source,
            } => {
                return folders::copy_messages(
                    &reader,
                    account,
                    from,
                    to,
                    uids,
                    *remove_source,
                    batch,
                );
            }
        }
        Ok(CommandResult::Done)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotDir;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let reader = self.reader();
        Ok((reader.last_applied()?, reader.membership()?))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: futures::Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>>
            + Unpin
            + OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let result = self.apply_entry(entry.log_id, &entry.payload)?;
            if let Some(responder) = responder {
                responder.send(result);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder::new(self.db.clone())
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotDir,
    ) -> Result<(), io::Error> {
        crate::snapshot::install(&self.db, meta, snapshot)?;
        let _ = self.changes.send(MailChange::All);
        self.access_version.fetch_add(1, Ordering::Release);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<crate::types::Snapshot>, io::Error> {
        Ok(crate::snapshot::current(&self.db)?)
    }
}
