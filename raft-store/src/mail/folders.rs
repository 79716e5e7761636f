//! Mailbox and flag operations for IMAP: create, delete, rename and subscribe mailboxes, store
//! flags, copy and move messages. Names are UTF-8 with "/" as the hierarchy delimiter (the IMAP
//! layer converts modified UTF-7); INBOX is spelled "INBOX".

pub use mcluster_types::folders::*;

use super::{
    INBOX, MailOverlay, Mailbox, Message, UidValidities, mailbox_key, message_key, message_prefix,
};
use crate::db::{CF_MAILBOXES, CF_MESSAGES, CF_SUBSCRIPTIONS};
use crate::error::StoreError;
use crate::reader::{Staged, StateReader};
use crate::types::version::{self, Feature};
use crate::types::{CommandResult, Rejection};

/// CREATE: a new, empty mailbox with a UIDVALIDITY never used before.
pub(crate) fn create_mailbox(
    reader: &StateReader,
    account: &str,
    name: &str,
    at: u64,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    if !valid_name(name) || name.eq_ignore_ascii_case(INBOX) {
        return Ok(CommandResult::Rejected(Rejection::InvalidMailboxName(
            name.to_owned(),
        )));
    }
    if reader.mailbox(account, name)?.is_some() {
        return Ok(CommandResult::Rejected(Rejection::MailboxExists(
            name.to_owned(),
        )));
    }
    if reader.mailbox(account, INBOX)?.is_none() {
        return Ok(CommandResult::Rejected(Rejection::NoSuchAccount(
            account.to_owned(),
        )));
    }
    // Superior names that do not exist yet are created too (RFC 3501 6.3.3), each with its
    // own UIDVALIDITY, allocated in one go so they never repeat.
    let mut missing: Vec<&str> = name
        .match_indices(DELIMITER)
        .map(|(i, _)| &name[..i])
        .collect();
    missing.push(name);
    let mut uidvalidities = UidValidities::load(reader, at)?;
    for level in missing {
        if level != name && reader.mailbox(account, level)?.is_some() {
            continue;
        }
        let mailbox = Mailbox::empty(level, uidvalidities.take());
        staged.put(CF_MAILBOXES, &mailbox_key(account, level), &mailbox);
    }
    uidvalidities.store(staged);
    Ok(CommandResult::Done)
}

/// DELETE: the mailbox and its messages (their blobs released). INBOX cannot be deleted;
/// mailboxes below it in the hierarchy stay.
pub(crate) fn delete_mailbox(
    reader: &StateReader,
    account: &str,
    name: &str,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    if name == INBOX {
        return Ok(CommandResult::Rejected(Rejection::InvalidMailboxName(
            name.to_owned(),
        )));
    }
    if reader.mailbox(account, name)?.is_none() {
        return Ok(CommandResult::Rejected(Rejection::NoSuchMailbox(
            name.to_owned(),
        )));
    }
    let mut overlay = MailOverlay::default();
    for (key, message) in reader
        .db()
        .scan_prefix::<Message>(CF_MESSAGES, &message_prefix(account, name))?
    {
        overlay.unref_blob(reader, &message.blob, staged)?;
        staged.delete(CF_MESSAGES, &key);
    }
    staged.delete(CF_MAILBOXES, &mailbox_key(account, name));
    super::recent::forget(account, name, staged);
    overlay.write(staged);
    Ok(CommandResult::Done)
}

/// RENAME: the mailbox and every mailbox below it move to the new name, keeping their
/// UIDVALIDITY, UIDs and flags. Renaming INBOX moves its messages to a new mailbox and leaves
/// INBOX empty (RFC 3501 6.3.5); the new mailbox gets a fresh UIDVALIDITY.
pub(crate) fn rename_mailbox(
    reader: &StateReader,
    account: &str,
    from: &str,
    to: &str,
    at: u64,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    if !valid_name(to) || to.eq_ignore_ascii_case(INBOX) {
        return Ok(CommandResult::Rejected(Rejection::InvalidMailboxName(
            to.to_owned(),
        )));
    }
    let Some(source) = reader.mailbox(account, from)? else {
        return Ok(CommandResult::Rejected(Rejection::NoSuchMailbox(
            from.to_owned(),
        )));
    };
    if reader.mailbox(account, to)?.is_some() {
        return Ok(CommandResult::Rejected(Rejection::MailboxExists(
            to.to_owned(),
        )));
    }
    if from == INBOX {
        let mut uidvalidities = UidValidities::load(reader, at)?;
        let mut target = Mailbox::empty(to, uidvalidities.take());
        uidvalidities.store(staged);
        for (key, mut message) in reader
            .db()
            .scan_prefix::<Message>(CF_MESSAGES, &message_prefix(account, INBOX))?
        {
            staged.delete(CF_MESSAGES, &key);
            message.uid = target.uidnext;
            target.uidnext += 1;
            target.highest_modseq += 1;
            message.modseq = target.highest_modseq;
            target.messages += 1;
            target.bytes += message.size;
            staged.put(
                CF_MESSAGES,
                &message_key(account, to, message.uid),
                &message,
            );
        }
        let inbox = Mailbox {
            messages: 0,
            bytes: 0,
            highest_modseq: source.highest_modseq + 1,
            ..source
        };
        staged.put(CF_MAILBOXES, &mailbox_key(account, INBOX), &inbox);
        staged.put(CF_MAILBOXES, &mailbox_key(account, to), &target);
        return Ok(CommandResult::Done);
    }
    let below = format!("{from}{DELIMITER}");
    let moved: Vec<Mailbox> = reader
        .mailboxes(account)?
        .into_iter()
        .filter(|m| m.name == from || m.name.starts_with(&below))
        .collect();
    for mailbox in moved {
        let new_name = format!("{to}{}", &mailbox.name[from.len()..]);
        if mailbox.name != from && reader.mailbox(account, &new_name)?.is_some() {
            return Ok(CommandResult::Rejected(Rejection::MailboxExists(new_name)));
        }
        for (key, message) in reader
            .db()
            .scan_prefix::<Message>(CF_MESSAGES, &message_prefix(account, &mailbox.name))?
        {
            staged.delete(CF_MESSAGES, &key);
            staged.put(
                CF_MESSAGES,
                &message_key(account, &new_name, message.uid),
                &message,
            );
        }
        staged.delete(CF_MAILBOXES, &mailbox_key(account, &mailbox.name));
        // A subscription follows its mailbox to the new name.
        let old_key = mailbox_key(account, &mailbox.name);
        if reader.db().get::<()>(CF_SUBSCRIPTIONS, &old_key)?.is_some() {
            staged.delete(CF_SUBSCRIPTIONS, &old_key);
            staged.put(CF_SUBSCRIPTIONS, &mailbox_key(account, &new_name), &());
        }
        // So does its `\Recent` floor (the UIDVALIDITY it is kept with stays).
        super::recent::follow_rename(reader, account, &mailbox.name, &new_name, staged)?;
        let renamed = Mailbox {
            name: new_name.clone(),
            ..mailbox
        };
        staged.put(CF_MAILBOXES, &mailbox_key(account, &new_name), &renamed);
    }
    Ok(CommandResult::Done)
}

/// SUBSCRIBE (of an existing mailbox, as RFC 3501 6.3.6 allows a server to check) and
/// UNSUBSCRIBE (of any name, so a subscription that outlived its mailbox can go).
pub(crate) fn set_subscribed(
    reader: &StateReader,
    account: &str,
    name: &str,
    subscribed: bool,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    let key = mailbox_key(account, name);
    if !subscribed {
        staged.delete(CF_SUBSCRIPTIONS, &key);
        return Ok(CommandResult::Done);
    }
    if reader.mailbox(account, name)?.is_none() {
        return Ok(CommandResult::Rejected(Rejection::NoSuchMailbox(
            name.to_owned(),
        )));
    }
    staged.put(CF_SUBSCRIPTIONS, &key, &());
    Ok(CommandResult::Done)
}

/// STORE: changes the flags of the given UIDs (missing ones are skipped). With
/// `unchanged_since` (CONDSTORE), a message changed after that mod-sequence is left alone and
/// reported as failed. Every changed message gets a new mod-sequence.
#[allow(clippy::too_many_arguments)]
pub(crate) fn store_flags(
    reader: &StateReader,
    account: &str,
    name: &str,
    uids: &[u32],
    op: FlagOp,
    flags: u8,
    keywords: &[String],
    unchanged_since: Option<u64>,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    let Some(mut mailbox) = reader.mailbox(account, name)? else {
        return Ok(CommandResult::Rejected(Rejection::NoSuchMailbox(
            name.to_owned(),
        )));
    };
    let mut changed = Vec::new();
    let mut failed = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for &uid in uids {
        if !seen.insert(uid) {
            continue;
        }
        let key = message_key(account, name, uid);
        let Some(mut message) = reader.db().get::<Message>(CF_MESSAGES, &key)? else {
            continue;
        };
        if unchanged_since.is_some_and(|since| message.modseq > since) {
            failed.push(uid);
            continue;
        }
        let (new_flags, mut new_keywords) = match op {
            FlagOp::Add => {
                let mut k = message.keywords.clone();
                k.extend(keywords.iter().cloned());
                (message.flags | flags, k)
            }
            FlagOp::Remove => (
                message.flags & !flags,
                message
                    .keywords
                    .iter()
                    .filter(|k| !keywords.iter().any(|r| r.eq_ignore_ascii_case(k)))
                    .cloned()
                    .collect(),
            ),
            FlagOp::Replace => (flags, keywords.to_vec()),
        };
        new_keywords.sort_by_key(|k| k.to_ascii_lowercase());
        new_keywords.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        if new_flags != message.flags || new_keywords != message.keywords {
            mailbox.highest_modseq += 1;
            message.flags = new_flags;
            message.keywords = new_keywords;
            message.modseq = mailbox.highest_modseq;
            staged.put(CF_MESSAGES, &key, &message);
        }
        changed.push(FlagChange {
            uid,
            flags: message.flags,
            keywords: message.keywords.clone(),
            modseq: message.modseq,
        });
    }
    staged.put(CF_MAILBOXES, &mailbox_key(account, name), &mailbox);
    Ok(CommandResult::FlagsStored { changed, failed })
}

/// IMAP APPEND: one message, its blob already fsync'd on `replicas` (less `missing`), into a
/// named mailbox with the client's flags and internal date. Returns the mailbox's UIDVALIDITY
/// and the new UID (UIDPLUS's APPENDUID). A retry of the same request is answered from the
/// request table, so it cannot append twice.
pub(crate) fn append(
    reader: &StateReader,
    account: &str,
    name: &str,
    delivery: &AppendedMessage,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    let mut overlay = MailOverlay::default();
    let Some(mailbox) = overlay.mailbox(reader, account, name)? else {
        return Ok(CommandResult::Rejected(Rejection::NoSuchMailbox(
            name.to_owned(),
        )));
    };
    let uid = mailbox.uidnext;
    mailbox.uidnext += 1;
    mailbox.messages += 1;
    mailbox.bytes += delivery.size;
    mailbox.highest_modseq += 1;
    let uidvalidity = mailbox.uidvalidity;
    let mut keywords = delivery.keywords.clone();
    keywords.sort_by_key(|k| k.to_ascii_lowercase());
    keywords.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    let message = Message {
        uid,
        blob: delivery.blob,
        size: delivery.size,
        internal_date: delivery.internal_date,
        flags: delivery.flags,
        keywords,
        queue_id: String::new(),
        modseq: mailbox.highest_modseq,
    };
    staged.put(CF_MESSAGES, &message_key(account, name, uid), &message);
    overlay.add_blob_ref(
        reader,
        &delivery.blob,
        delivery.size,
        &delivery.replicas,
        &delivery.missing,
        &delivery.summary,
        staged,
    )?;
    overlay.write(staged);
    Ok(CommandResult::Appended { uidvalidity, uid })
}

/// COPY (and MOVE, which also expunges the originals): the messages get new UIDs in the target
/// mailbox, keep their flags and internal date, and share the blob. Returns the target's
/// UIDVALIDITY and (source UID, new UID) pairs for UIDPLUS's COPYUID. The target may be the
/// source mailbox itself; for a MOVE only from cluster version 3.
pub(crate) fn copy_messages(
    reader: &StateReader,
    account: &str,
    from: &str,
    to: &str,
    uids: &[u32],
    remove_source: bool,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    if reader.mailbox(account, from)?.is_none() {
        return Ok(CommandResult::Rejected(Rejection::NoSuchMailbox(
            from.to_owned(),
        )));
    }
    // MOVE into the source mailbox gives the messages new UIDs there (RFC 6851). Builds before
    // cluster version 3 refuse it when they apply it, so it stays refused until that version is
    // active here too (`execute`'s feature gate refuses it before this, with the same reason).
    if from == to
        && remove_source
        && !version::active(Feature::MoveWithinMailbox, reader.cluster_version()?)
    {
        return Ok(CommandResult::Rejected(Rejection::InvalidMailboxName(
            to.to_owned(),
        )));
    }
    let mut overlay = MailOverlay::default();
    if overlay.mailbox(reader, account, to)?.is_none() {
        return Ok(CommandResult::Rejected(Rejection::NoSuchMailbox(
            to.to_owned(),
        )));
    }
    let mut pairs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    for uid in sorted {
        if !seen.insert(uid) {
            continue;
        }
        let key = message_key(account, from, uid);
        let Some(message) = reader.db().get::<Message>(CF_MESSAGES, &key)? else {
            continue;
        };
        let target = overlay
            .mailbox(reader, account, to)?
            .expect("checked above");
        let new_uid = target.uidnext;
        target.uidnext += 1;
        target.messages += 1;
        target.bytes += message.size;
        target.highest_modseq += 1;
        let copy = Message {
            uid: new_uid,
            modseq: target.highest_modseq,
            ..message.clone()
        };
        staged.put(CF_MESSAGES, &message_key(account, to, new_uid), &copy);
        let record = overlay.blob(reader, &message.blob)?;
        if let Some(record) = record {
            record.refs += 1;
        }
        if remove_source {
            staged.delete(CF_MESSAGES, &key);
            if let Some(source) = overlay.mailbox(reader, account, from)? {
                source.messages = source.messages.saturating_sub(1);
                source.bytes = source.bytes.saturating_sub(message.size);
                source.highest_modseq += 1;
            }
            overlay.unref_blob(reader, &message.blob, staged)?;
        }
        pairs.push((uid, new_uid));
    }
    let uidvalidity = overlay
        .mailbox(reader, account, to)?
        .expect("checked above")
        .uidvalidity;
    overlay.write(staged);
    Ok(CommandResult::Copied { uidvalidity, pairs })
}
