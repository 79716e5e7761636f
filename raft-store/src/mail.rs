//! The replicated mail model: mailboxes with their UIDVALIDITY and UIDNEXT, messages with UID,
//! flags and blob reference, blob records (who must hold each blob, how many messages use it),
//! and the cluster-wide mail policy and client TLS certificate. Also how the mail commands apply.

use std::collections::{BTreeMap, HashMap};

use crate::db::{
    CF_ACCOUNTS, CF_BLOB_MISSING, CF_BLOBS, CF_DELIVERED, CF_MAILBOXES, CF_MESSAGES, CF_SETTINGS,
    CF_SUBSCRIPTIONS, CF_SUMMARIES, Db, KEY_CLIENT_TLS, KEY_CONNECTIONS_PER_IP, KEY_MAIL_POLICY,
    KEY_MESSAGE_LIMITS, KEY_NEXT_UIDVALIDITY,
};
use crate::error::StoreError;
use crate::reader::{Staged, StateReader};
use crate::summary::MessageLimits;
use crate::types::{Account, NodeId};

pub use mcluster_types::mail::*;

pub(crate) mod access;
pub(crate) mod dkim;
pub mod folders;
pub(crate) mod protection;
pub mod queue;
pub(crate) mod recent;

pub(crate) fn mailbox_key(account: &str, mailbox: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(account.len() + mailbox.len() + 1);
    key.extend_from_slice(account.as_bytes());
    key.push(0);
    key.extend_from_slice(mailbox.as_bytes());
    key
}

fn account_prefix(account: &str) -> Vec<u8> {
    let mut key = account.as_bytes().to_vec();
    key.push(0);
    key
}

fn message_prefix(account: &str, mailbox: &str) -> Vec<u8> {
    let mut key = mailbox_key(account, mailbox);
    key.push(0);
    key
}

fn message_key(account: &str, mailbox: &str, uid: u32) -> Vec<u8> {
    let mut key = message_prefix(account, mailbox);
    key.extend_from_slice(&uid.to_be_bytes());
    key
}

fn missing_key(node: NodeId, blob: &BlobHash) -> Vec<u8> {
    let mut key = node.to_be_bytes().to_vec();
    key.extend_from_slice(blob);
    key
}

fn delivered_key(queue_id: &str, recipient: &str) -> Vec<u8> {
    let mut key = queue_id.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(recipient.as_bytes());
    key
}

/// Changes staged by one command, read back by later steps of the same command (the write batch
/// itself cannot be read).
#[derive(Default)]
pub(crate) struct MailOverlay {
    mailboxes: HashMap<Vec<u8>, Mailbox>,
    blobs: HashMap<BlobHash, Option<BlobRecord>>,
}

impl MailOverlay {
    fn mailbox(
        &mut self,
        reader: &StateReader,
        account: &str,
        name: &str,
    ) -> Result<Option<&mut Mailbox>, StoreError> {
        let key = mailbox_key(account, name);
        if !self.mailboxes.contains_key(&key) {
            match reader.mailbox(account, name)? {
                Some(mailbox) => self.mailboxes.insert(key.clone(), mailbox),
                None => return Ok(None),
            };
        }
        Ok(self.mailboxes.get_mut(&key))
    }

    fn blob(
        &mut self,
        reader: &StateReader,
        hash: &BlobHash,
    ) -> Result<&mut Option<BlobRecord>, StoreError> {
        if !self.blobs.contains_key(hash) {
            self.blobs.insert(*hash, reader.blob(hash)?);
        }
        Ok(self.blobs.get_mut(hash).expect("inserted above"))
    }

    /// Drops one reference to a blob; the last one removes its record and missing markers.
    fn unref_blob(
        &mut self,
        reader: &StateReader,
        hash: &BlobHash,
        staged: &mut Staged<'_>,
    ) -> Result<(), StoreError> {
        let record = self.blob(reader, hash)?;
        if let Some(blob) = record {
            blob.refs = blob.refs.saturating_sub(1);
            if blob.refs == 0 {
                for node in &blob.replicas {
                    staged.delete(CF_BLOB_MISSING, &missing_key(*node, hash));
                }
                staged.delete(CF_SUMMARIES, hash);
                *record = None;
            }
        }
        Ok(())
    }

    /// One more message refers to `hash`, held by `replicas` of which `missing` must still
    /// pull it; a new blob's summary is kept.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_blob_ref(
        &mut self,
        reader: &StateReader,
        hash: &BlobHash,
        size: u64,
        replicas: &[NodeId],
        missing: &[NodeId],
        summary: &crate::summary::MessageSummary,
        staged: &mut Staged<'_>,
    ) -> Result<(), StoreError> {
        for node in missing {
            staged.put(CF_BLOB_MISSING, &missing_key(*node, hash), &());
        }
        let record = self.blob(reader, hash)?;
        let record = record.get_or_insert_with(|| {
            staged.put(CF_SUMMARIES, hash, summary);
            BlobRecord {
                size,
                replicas: Vec::new(),
                refs: 0,
            }
        });
        record.refs += 1;
        for node in replicas {
            if !record.replicas.contains(node) {
                record.replicas.push(*node);
            }
        }
        Ok(())
    }

    fn write(self, staged: &mut Staged<'_>) {
        for (key, mailbox) in self.mailboxes {
            staged.put(CF_MAILBOXES, &key, &mailbox);
        }
        for (hash, record) in self.blobs {
            match record {
                Some(record) => staged.put(CF_BLOBS, &hash, &record),
                None => staged.delete(CF_BLOBS, &hash),
            }
        }
    }
}

/// The replicated counter UIDVALIDITY values come from, so none is ever used twice.
pub(crate) struct UidValidities {
    next: u32,
}

impl UidValidities {
    /// Starts from the clock (as decided by the proposer) so a restored backup's values stay
    /// unique too, but never below a value already handed out.
    pub(crate) fn load(reader: &StateReader, at: u64) -> Result<UidValidities, StoreError> {
        let stored = reader.db().get::<u32>(CF_SETTINGS, KEY_NEXT_UIDVALIDITY)?;
        let next = stored
            .unwrap_or(0)
            .max(u32::try_from(at).unwrap_or(u32::MAX))
            .max(1);
        Ok(UidValidities { next })
    }

    pub(crate) fn take(&mut self) -> u32 {
        let value = self.next;
        self.next = self.next.wrapping_add(1).max(1);
        value
    }

    pub(crate) fn store(self, staged: &mut Staged<'_>) {
        staged.put(CF_SETTINGS, KEY_NEXT_UIDVALIDITY, &self.next);
    }
}

/// Creates an account's default mailboxes, each with a UIDVALIDITY never used before.
pub(crate) fn create_default_mailboxes(
    reader: &StateReader,
    account: &str,
    at: u64,
    staged: &mut Staged<'_>,
) -> Result<(), StoreError> {
    let mut uidvalidities = UidValidities::load(reader, at)?;
    for (name, special_use) in DEFAULT_MAILBOXES {
        let mailbox = Mailbox {
            special_use: special_use.map(str::to_owned),
            ..Mailbox::empty(name, uidvalidities.take())
        };
        staged.put(CF_MAILBOXES, &mailbox_key(account, name), &mailbox);
        staged.put(CF_SUBSCRIPTIONS, &mailbox_key(account, name), &());
    }
    uidvalidities.store(staged);
    Ok(())
}

/// Removes an account's mailboxes and messages, releasing their blobs.
pub(crate) fn delete_mail_of(
    reader: &StateReader,
    account: &str,
    staged: &mut Staged<'_>,
) -> Result<(), StoreError> {
    let mut overlay = MailOverlay::default();
    let prefix = account_prefix(account);
    for (key, message) in reader.db().scan_prefix::<Message>(CF_MESSAGES, &prefix)? {
        overlay.unref_blob(reader, &message.blob, staged)?;
        staged.delete(CF_MESSAGES, &key);
    }
    for (key, _) in reader.db().scan_prefix::<Mailbox>(CF_MAILBOXES, &prefix)? {
        staged.delete(CF_MAILBOXES, &key);
    }
    for (key, ()) in reader.db().scan_prefix::<()>(CF_SUBSCRIPTIONS, &prefix)? {
        staged.delete(CF_SUBSCRIPTIONS, &key);
    }
    recent::forget_account(reader, &prefix, staged)?;
    overlay.mailboxes.clear();
    overlay.write(staged);
    Ok(())
}

/// Stores each delivery in its recipients' INBOXes, once per (queue id, recipient).
pub(crate) fn deliver(
    reader: &StateReader,
    deliveries: &[Delivery],
    staged: &mut Staged<'_>,
) -> Result<Vec<DeliveryOutcome>, StoreError> {
    let filed: Vec<(&Delivery, Filing)> = deliveries.iter().map(|d| (d, Filing::Inbox)).collect();
    deliver_filed(reader, &filed, staged)
}

/// Stores each delivery in the mailbox its filing names, once per (queue id, recipient): a
/// retry of the same queue id is counted as delivered wherever the first copy went.
pub(crate) fn deliver_filed(
    reader: &StateReader,
    deliveries: &[(&Delivery, Filing)],
    staged: &mut Staged<'_>,
) -> Result<Vec<DeliveryOutcome>, StoreError> {
    let mut overlay = MailOverlay::default();
    let mut delivered_now = HashMap::new();
    let mut outcomes = Vec::with_capacity(deliveries.len());
    for &(delivery, filing) in deliveries {
        let mut outcome = DeliveryOutcome {
            delivered: 0,
            undeliverable: Vec::new(),
        };
        for recipient in &delivery.recipients {
            let key = delivered_key(&delivery.queue_id, recipient);
            if delivered_now.contains_key(&key)
                || reader.db().get::<u32>(CF_DELIVERED, &key)?.is_some()
            {
                outcome.delivered += 1;
                continue;
            }
            let enabled = reader
                .db()
                .get::<Account>(CF_ACCOUNTS, recipient.as_bytes())?
                .is_some_and(|a| a.enabled);
            let target = match filing {
                Filing::Inbox => INBOX.to_owned(),
                Filing::Junk => junk_mailbox(reader, recipient)?,
            };
            let inbox = match overlay.mailbox(reader, recipient, &target)? {
                Some(inbox) if enabled => inbox,
                _ => {
                    outcome.undeliverable.push(recipient.clone());
                    continue;
                }
            };
            let uid = inbox.uidnext;
            inbox.uidnext += 1;
            inbox.messages += 1;
            inbox.bytes += delivery.size;
            inbox.highest_modseq += 1;
            let modseq = inbox.highest_modseq;
            let message = Message {
                uid,
                blob: delivery.blob,
                size: delivery.size,
                internal_date: delivery.internal_date,
                flags: 0,
                keywords: Vec::new(),
                queue_id: delivery.queue_id.clone(),
                modseq,
            };
            staged.put(CF_MESSAGES, &message_key(recipient, &target, uid), &message);
            staged.put(CF_DELIVERED, &key, &uid);
            delivered_now.insert(key, uid);
            overlay.add_blob_ref(
                reader,
                &delivery.blob,
                delivery.size,
                &delivery.replicas,
                &delivery.missing,
                &delivery.summary,
                staged,
            )?;
            outcome.delivered += 1;
        }
        if let Some(outbound) = &delivery.outbound {
            queue::enqueue(
                reader,
                &mut overlay,
                &delivery.queue_id,
                &delivery.blob,
                delivery.size,
                &delivery.replicas,
                &delivery.missing,
                &delivery.summary,
                outbound,
                delivery.internal_date,
                staged,
            )?;
        }
        outcomes.push(outcome);
    }
    overlay.write(staged);
    Ok(outcomes)
}

/// The name of the account's `\Junk` mailbox (the first by name), or INBOX if it has none.
fn junk_mailbox(reader: &StateReader, account: &str) -> Result<String, StoreError> {
    let junk = reader
        .mailboxes(account)?
        .into_iter()
        .filter(|m| m.special_use.as_deref() == Some("\\Junk"))
        .map(|m| m.name)
        .min();
    Ok(junk.unwrap_or_else(|| INBOX.to_owned()))
}

/// Removes messages (by UID) from a mailbox. UIDs already gone are skipped, so two sessions
/// expunging the same message do no harm.
pub(crate) fn expunge(
    reader: &StateReader,
    account: &str,
    mailbox: &str,
    uids: &[u32],
    staged: &mut Staged<'_>,
) -> Result<u32, StoreError> {
    let mut overlay = MailOverlay::default();
    let mut removed = 0;
    let mut seen = std::collections::HashSet::new();
    for &uid in uids {
        if !seen.insert(uid) {
            continue;
        }
        let key = message_key(account, mailbox, uid);
        let Some(message) = reader.db().get::<Message>(CF_MESSAGES, &key)? else {
            continue;
        };
        staged.delete(CF_MESSAGES, &key);
        if let Some(mb) = overlay.mailbox(reader, account, mailbox)? {
            mb.messages = mb.messages.saturating_sub(1);
            mb.bytes = mb.bytes.saturating_sub(message.size);
            mb.highest_modseq += 1;
        }
        overlay.unref_blob(reader, &message.blob, staged)?;
        removed += 1;
    }
    overlay.write(staged);
    Ok(removed)
}

/// A node reports blobs it now holds (fsync'd), clearing their missing markers.
pub(crate) fn blobs_stored(node: NodeId, blobs: &[BlobHash], staged: &mut Staged<'_>) {
    for hash in blobs {
        staged.delete(CF_BLOB_MISSING, &missing_key(node, hash));
    }
}

pub(crate) fn blobs_lost(
    reader: &StateReader,
    node: NodeId,
    blobs: &[BlobHash],
    staged: &mut Staged<'_>,
) -> Result<(), StoreError> {
    for hash in blobs {
        if reader
            .blob(hash)?
            .is_some_and(|record| record.replicas.contains(&node))
        {
            staged.put(CF_BLOB_MISSING, &missing_key(node, hash), &());
        }
    }
    Ok(())
}

pub(crate) fn move_replicas(
    reader: &StateReader,
    from: NodeId,
    to: NodeId,
    blobs: &[BlobHash],
    staged: &mut Staged<'_>,
) -> Result<(), StoreError> {
    for hash in blobs {
        let Some(mut record) = reader.blob(hash)? else {
            continue;
        };
        if !record.replicas.contains(&from) || record.replicas.contains(&to) {
            continue;
        }
        for replica in &mut record.replicas {
            if *replica == from {
                *replica = to;
            }
        }
        staged.put(CF_BLOBS, hash, &record);
        staged.delete(CF_BLOB_MISSING, &missing_key(from, hash));
        staged.put(CF_BLOB_MISSING, &missing_key(to, hash), &());
    }
    Ok(())
}

pub(crate) fn add_replicas(
    reader: &StateReader,
    to: NodeId,
    blobs: &[BlobHash],
    staged: &mut Staged<'_>,
) -> Result<(), StoreError> {
    for hash in blobs {
        let Some(mut record) = reader.blob(hash)? else {
            continue;
        };
        if record.replicas.contains(&to) {
            continue;
        }
        record.replicas.push(to);
        staged.put(CF_BLOBS, hash, &record);
        staged.put(CF_BLOB_MISSING, &missing_key(to, hash), &());
    }
    Ok(())
}

pub(crate) fn forget_replicas(
    reader: &StateReader,
    from: NodeId,
    blobs: &[BlobHash],
    staged: &mut Staged<'_>,
) -> Result<(), StoreError> {
    for hash in blobs {
        let Some(mut record) = reader.blob(hash)? else {
            continue;
        };
        if !record.replicas.contains(&from) || reader.confirmed_elsewhere(hash, &record, from)? < 2
        {
            continue;
        }
        record.replicas.retain(|replica| *replica != from);
        staged.put(CF_BLOBS, hash, &record);
        staged.delete(CF_BLOB_MISSING, &missing_key(from, hash));
    }
    Ok(())
}

pub(crate) fn set_client_tls(tls: &ClientTls, staged: &mut Staged<'_>) {
    staged.put(CF_SETTINGS, KEY_CLIENT_TLS, tls);
}

pub(crate) fn set_mail_policy(policy: &MailPolicy, staged: &mut Staged<'_>) {
    staged.put(CF_SETTINGS, KEY_MAIL_POLICY, policy);
}

/// The message limits live under a key of their own beside the mail policy, so that stores
/// and log entries written before they existed keep their encoding (an absent key means the
/// defaults).
pub(crate) fn set_message_limits(limits: &MessageLimits, staged: &mut Staged<'_>) {
    staged.put(CF_SETTINGS, KEY_MESSAGE_LIMITS, limits);
}

pub(crate) fn set_connections_per_ip(limits: &ConnectionsPerIp, staged: &mut Staged<'_>) {
    staged.put(CF_SETTINGS, KEY_CONNECTIONS_PER_IP, limits);
}

/// What `StateReader::drain_plan` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainPlan {
    /// Blobs that name the node.
    pub naming: u64,
    /// Of those, the ones without two confirmed copies on other data voters yet.
    pub waiting: u64,
    /// Copies to add (`AddReplicas`), by the node that should take them.
    pub add: BTreeMap<NodeId, Vec<BlobHash>>,
}

/// What `StateReader::misplaced_blobs` found in its pass over every blob record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MisplacedBlobs {
    /// Some of them, each with its replicas.
    pub found: Vec<(BlobHash, Vec<NodeId>)>,
    pub total: u64,
    /// How many blobs name each node as a replica: what it must hold.
    pub per_replica: BTreeMap<NodeId, u64>,
}

/// Mail reads of the applied state.
impl StateReader {
    pub fn mailbox(&self, account: &str, name: &str) -> Result<Option<Mailbox>, StoreError> {
        self.db().get(CF_MAILBOXES, &mailbox_key(account, name))
    }

    pub fn mailboxes(&self, account: &str) -> Result<Vec<Mailbox>, StoreError> {
        let rows = self
            .db()
            .scan_prefix::<Mailbox>(CF_MAILBOXES, &account_prefix(account))?;
        Ok(rows.into_iter().map(|(_, mailbox)| mailbox).collect())
    }

    /// The names the account subscribed to (LSUB), existing as mailboxes or not.
    pub fn subscriptions(&self, account: &str) -> Result<Vec<String>, StoreError> {
        let prefix = account_prefix(account);
        let rows = self.db().scan_prefix::<()>(CF_SUBSCRIPTIONS, &prefix)?;
        Ok(rows
            .into_iter()
            .map(|(key, ())| String::from_utf8_lossy(&key[prefix.len()..]).into_owned())
            .collect())
    }

    /// The messages of a mailbox in UID order.
    pub fn messages(&self, account: &str, mailbox: &str) -> Result<Vec<Message>, StoreError> {
        let rows = self
            .db()
            .scan_prefix::<Message>(CF_MESSAGES, &message_prefix(account, mailbox))?;
        Ok(rows.into_iter().map(|(_, message)| message).collect())
    }

    /// Bytes stored across all of an account's mailboxes.
    pub fn usage_bytes(&self, account: &str) -> Result<u64, StoreError> {
        Ok(self.mailboxes(account)?.iter().map(|m| m.bytes).sum())
    }

    /// The IMAP summary of a blob some message refers to.
    pub fn summary(
        &self,
        hash: &BlobHash,
    ) -> Result<Option<crate::summary::MessageSummary>, StoreError> {
        self.db().get(CF_SUMMARIES, hash)
    }

    pub fn blob(&self, hash: &BlobHash) -> Result<Option<BlobRecord>, StoreError> {
        self.db().get(CF_BLOBS, hash)
    }

    /// Every blob `node` is a replica of and is not listed as missing: what it must have on disk.
    pub fn blobs_held_by(&self, node: NodeId) -> Result<Vec<BlobHash>, StoreError> {
        let mut held = Vec::new();
        for item in self.blob_records() {
            let (hash, record) = item?;
            if !record.replicas.contains(&node) {
                continue;
            }
            if self
                .db()
                .get::<()>(CF_BLOB_MISSING, &missing_key(node, &hash))?
                .is_none()
            {
                held.push(hash);
            }
        }
        Ok(held)
    }

    /// How many blobs name `node` as a replica.
    pub fn replica_count(&self, node: NodeId) -> Result<u64, StoreError> {
        let mut count = 0;
        for item in self.blob_records() {
            let (_, record) = item?;
            count += u64::from(record.replicas.contains(&node));
        }
        Ok(count)
    }

    /// Every blob record in hash order (a key that is not a hash is skipped).
    fn blob_records(
        &self,
    ) -> impl Iterator<Item = Result<(BlobHash, BlobRecord), StoreError>> + '_ {
        self.db().iter_from(CF_BLOBS, &[]).filter_map(|item| {
            let (key, value) = match item {
                Ok(kv) => kv,
                Err(err) => return Some(Err(err)),
            };
            let hash = BlobHash::try_from(&key[..]).ok()?;
            Some(crate::db::decode(CF_BLOBS, &key, &value).map(|record| (hash, record)))
        })
    }

    /// Blobs that name a replica outside `members` (a node that left the cluster) or fewer than
    /// two replicas (taken while no other data node existed): up to `limit` of them with their
    /// replicas, and how many there are in all; and, from the same pass, how many blobs each
    /// node must hold.
    pub fn misplaced_blobs(
        &self,
        members: &std::collections::BTreeSet<NodeId>,
        limit: usize,
    ) -> Result<MisplacedBlobs, StoreError> {
        let mut found = Vec::new();
        let mut total = 0;
        let mut per_replica = BTreeMap::new();
        for item in self.blob_records() {
            let (hash, record) = item?;
            for replica in &record.replicas {
                *per_replica.entry(*replica).or_insert(0) += 1;
            }
            if record.replicas.len() >= 2 && record.replicas.iter().all(|r| members.contains(r)) {
                continue;
            }
            total += 1;
            if found.len() < limit {
                found.push((hash, record.replicas));
            }
        }
        Ok(MisplacedBlobs {
            found,
            total,
            per_replica,
        })
    }

    /// How many replicas of a blob other than `node` have confirmed their copy.
    fn confirmed_elsewhere(
        &self,
        hash: &BlobHash,
        record: &BlobRecord,
        node: NodeId,
    ) -> Result<usize, StoreError> {
        let others: Vec<NodeId> = record
            .replicas
            .iter()
            .copied()
            .filter(|r| *r != node)
            .collect();
        self.confirmed_among(hash, &others)
    }

    /// How many of `nodes` have confirmed their copy of a blob.
    fn confirmed_among(&self, hash: &BlobHash, nodes: &[NodeId]) -> Result<usize, StoreError> {
        let mut confirmed = 0;
        for node in nodes {
            if self
                .db()
                .get::<()>(CF_BLOB_MISSING, &missing_key(*node, hash))?
                .is_none()
            {
                confirmed += 1;
            }
        }
        Ok(confirmed)
    }

    /// What stands between data node `node` and its leaving: the blobs naming it that do not
    /// yet have two confirmed copies on other data voters (`waiting`), and for up to `limit` of
    /// those that do not even name two other data voters, which of `data_voters` should take a
    /// copy (spread over them by hash).
    pub fn drain_plan(
        &self,
        node: NodeId,
        data_voters: &[NodeId],
        limit: usize,
    ) -> Result<DrainPlan, StoreError> {
        let mut plan = DrainPlan::default();
        let takers: Vec<NodeId> = data_voters.iter().copied().filter(|d| *d != node).collect();
        let mut planned = 0;
        for item in self.blob_records() {
            let (hash, record) = item?;
            if !record.replicas.contains(&node) {
                continue;
            }
            plan.naming += 1;
            let others: Vec<NodeId> = record
                .replicas
                .iter()
                .copied()
                .filter(|r| *r != node && takers.contains(r))
                .collect();
            if self.confirmed_among(&hash, &others)? >= 2 {
                continue;
            }
            plan.waiting += 1;
            if others.len() >= 2 || planned >= limit {
                continue;
            }
            let candidates: Vec<NodeId> = takers
                .iter()
                .copied()
                .filter(|t| !record.replicas.contains(t))
                .collect();
            if candidates.is_empty() {
                continue;
            }
            let to = candidates[usize::from(hash[0]) % candidates.len()];
            plan.add.entry(to).or_default().push(hash);
            planned += 1;
        }
        Ok(plan)
    }

    /// Up to `limit` blobs that `node` must hold but has not confirmed.
    pub fn missing_blobs(&self, node: NodeId, limit: usize) -> Result<Vec<BlobHash>, StoreError> {
        self.missing_blobs_after(node, None, limit)
    }

    /// The blobs `node` must hold but has not confirmed, in hash order, after `after` (from the
    /// first when None), at most `limit`: a resync pass walks the set once with this cursor.
    pub fn missing_blobs_after(
        &self,
        node: NodeId,
        after: Option<&BlobHash>,
        limit: usize,
    ) -> Result<Vec<BlobHash>, StoreError> {
        let prefix = node.to_be_bytes();
        let mut start = prefix.to_vec();
        if let Some(after) = after {
            start.extend_from_slice(after);
            // The smallest key greater than `after`'s.
            start.push(0);
        }
        let found = self
            .db()
            .scan_from::<()>(CF_BLOB_MISSING, &start, limit, |key| {
                key.starts_with(&prefix)
            })?;
        Ok(found
            .into_iter()
            .filter_map(|(key, ())| BlobHash::try_from(&key[prefix.len()..]).ok())
            .collect())
    }

    /// How many blobs each node is missing (nodes missing none are absent).
    pub fn missing_blob_counts(&self) -> Result<BTreeMap<NodeId, u64>, StoreError> {
        let mut counts = BTreeMap::new();
        for item in self.db().iter_from(CF_BLOB_MISSING, &[]) {
            let (key, _) = item?;
            if let Ok(node) = <[u8; 8]>::try_from(&key[..8.min(key.len())]) {
                *counts.entry(NodeId::from_be_bytes(node)).or_insert(0) += 1;
            }
        }
        Ok(counts)
    }

    pub fn missing_blob_count(&self, node: NodeId) -> Result<u64, StoreError> {
        self.db().count_prefix(CF_BLOB_MISSING, &node.to_be_bytes())
    }

    pub fn client_tls(&self) -> Result<Option<ClientTls>, StoreError> {
        self.db().get(CF_SETTINGS, KEY_CLIENT_TLS)
    }

    pub fn mail_policy(&self) -> Result<MailPolicy, StoreError> {
        Ok(self
            .db()
            .get(CF_SETTINGS, KEY_MAIL_POLICY)?
            .unwrap_or_default())
    }

    pub fn message_limits(&self) -> Result<MessageLimits, StoreError> {
        Ok(self
            .db()
            .get(CF_SETTINGS, KEY_MESSAGE_LIMITS)?
            .unwrap_or_default())
    }

    /// The per-service limits on one address's open connections; for a store that has none
    /// yet, those its legacy shared limit implies.
    pub fn connections_per_ip(&self) -> Result<ConnectionsPerIp, StoreError> {
        match self.db().get(CF_SETTINGS, KEY_CONNECTIONS_PER_IP)? {
            Some(limits) => Ok(limits),
            None => Ok(ConnectionsPerIp::from_legacy(
                self.mail_policy()?.max_connections_per_ip,
            )),
        }
    }

    fn db(&self) -> &Db {
        &self.db
    }
}
