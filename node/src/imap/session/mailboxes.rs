//! Authenticated-state commands: mailbox management, LIST/LSUB, STATUS, APPEND and QUOTA.

use std::sync::atomic::Ordering;

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox as WireMailbox};
use imap_codec::imap_types::status::StatusDataItemName;
use raft_store::{AppendedMessage, Command, CommandResult, INBOX, Rejection, flag};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Flow, Handled, Io, Session, mailbox_name, quoted, quoted_name, stored_flags};
use crate::clock::unix_now;
use crate::imap::list::{self, DELIMITER};
use crate::imap::utf7;
use crate::store::ClusterError;
use crate::store::StoreMessageError;

impl Session {
    /// Commits a mailbox command; on failure the tagged NO is queued and None returned.
    pub(super) async fn commit<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
        command: Command,
    ) -> Option<CommandResult> {
        match self.context.store.write(command).await {
            Ok(CommandResult::Rejected(rejection)) => {
                let text = match &rejection {
                    Rejection::MailboxExists(_) => format!("[ALREADYEXISTS] {rejection}"),
                    Rejection::NoSuchMailbox(_) => format!("[NONEXISTENT] {rejection}"),
                    Rejection::InvalidMailboxName(_) => format!("[CANNOT] {rejection}"),
                    _ => rejection.to_string(),
                };
                io.tagged(tag, "NO", &text);
                None
            }
            Ok(result) => Some(result),
            Err(err) => {
                unavailable(io, tag, &err);
                None
            }
        }
    }

    pub(super) async fn create<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
        mailbox: &WireMailbox<'_>,
    ) -> Handled {
        let Some(name) = self.name_or_no(io, tag, mailbox) else {
            return Ok(Flow::Continue);
        };
        if name == INBOX {
            return io.done(tag, "NO", "[ALREADYEXISTS] INBOX always exists");
        }
        if has_wildcard(&name) {
            return io.done(tag, "NO", "[CANNOT] Mailbox names cannot contain * or %");
        }
        let command = Command::CreateMailbox {
            account: self.account_name().to_owned(),
            name,
            at: unix_now(),
        };
        if self.commit(io, tag, command).await.is_some() {
            io.tagged(tag, "OK", "Create completed");
        }
        Ok(Flow::Continue)
    }

    pub(super) async fn delete<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
        mailbox: &WireMailbox<'_>,
    ) -> Handled {
        let Some(name) = self.name_or_no(io, tag, mailbox) else {
            return Ok(Flow::Continue);
        };
        if name == INBOX {
            return io.done(tag, "NO", "[CANNOT] INBOX cannot be deleted");
        }
        if self.selected.as_ref().is_some_and(|v| v.name == name) {
            self.selected = None;
        }
        let command = Command::DeleteMailbox {
            account: self.account_name().to_owned(),
            name,
        };
        if self.commit(io, tag, command).await.is_some() {
            io.tagged(tag, "OK", "Delete completed");
        }
        Ok(Flow::Continue)
    }

    pub(super) async fn rename<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
        from: &WireMailbox<'_>,
        to: &WireMailbox<'_>,
    ) -> Handled {
        // One tagged reply, for the first name refused.
        let Some(from) = self.name_or_no(io, tag, from) else {
            return Ok(Flow::Continue);
        };
        let Some(to) = self.name_or_no(io, tag, to) else {
            return Ok(Flow::Continue);
        };
        if to == INBOX {
            return io.done(tag, "NO", "[ALREADYEXISTS] INBOX always exists");
        }
        if has_wildcard(&to) {
            return io.done(tag, "NO", "[CANNOT] Mailbox names cannot contain * or %");
        }
        let below = format!("{from}{DELIMITER}");
        if self
            .selected
            .as_ref()
            .is_some_and(|v| v.name == from || v.name.starts_with(&below))
            && from != INBOX
        {
            self.selected = None;
        }
        let command = Command::RenameMailbox {
            account: self.account_name().to_owned(),
            from,
            to,
            at: unix_now(),
        };
        if self.commit(io, tag, command).await.is_some() {
            self.sync(io, true).await?;
            io.tagged(tag, "OK", "Rename completed");
        }
        Ok(Flow::Continue)
    }

    pub(super) async fn subscribe<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
        mailbox: &WireMailbox<'_>,
        subscribed: bool,
    ) -> Handled {
        let Some(name) = self.name_or_no(io, tag, mailbox) else {
            return Ok(Flow::Continue);
        };
        let command = Command::SetSubscribed {
            account: self.account_name().to_owned(),
            name,
            subscribed,
        };
        if self.commit(io, tag, command).await.is_some() {
            let verb = if subscribed {
                "Subscribe"
            } else {
                "Unsubscribe"
            };
            io.tagged(tag, "OK", &format!("{verb} completed"));
        }
        Ok(Flow::Continue)
    }

    /// LIST and LSUB (RFC 3501 6.3.8-9) with SPECIAL-USE (RFC 6154) and CHILDREN (RFC 3348)
    /// attributes.
    pub(super) async fn list<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
        reference: &WireMailbox<'_>,
        pattern: &ListMailbox<'_>,
        lsub: bool,
    ) -> Handled {
        let command = if lsub { "LSUB" } else { "LIST" };
        let pattern = match pattern {
            ListMailbox::Token(token) => token.as_ref().to_vec(),
            ListMailbox::String(string) => string.as_ref().to_vec(),
        };
        let reference = match reference {
            WireMailbox::Inbox => INBOX.to_owned(),
            WireMailbox::Other(other) => String::from_utf8_lossy(other.as_ref()).into_owned(),
        };
        let (Ok(pattern), Ok(reference)) = (
            std::str::from_utf8(&pattern)
                .map_err(|_| ())
                .and_then(|p| utf7::decode(p).map_err(|_| ())),
            utf7::decode(&reference),
        ) else {
            // No mailbox name can match it; NO rather than BAD, as for a name.
            return io.done(
                tag,
                "NO",
                "[CANNOT] Mailbox pattern is not valid modified UTF-7",
            );
        };
        if pattern.is_empty() && !lsub {
            // RFC 3501: the hierarchy delimiter and the root of the reference.
            io.line("* LIST (\\Noselect) \"/\" \"\"");
            return io.done(tag, "OK", "List completed");
        }
        let full = list::full_pattern(&reference, &pattern);
        // A mailbox created (or subscribed) through another node must be listed here at once:
        // clients LIST right after connecting, wherever the connection lands.
        if let Err(err) = self.context.store.linearize().await {
            unavailable(io, tag, &err);
            return Ok(Flow::Continue);
        }
        let reader = &self.context.store.state();
        let read = reader.mailboxes(self.account_name()).and_then(|mailboxes| {
            let subscriptions = if lsub {
                reader.subscriptions(self.account_name())?
            } else {
                Vec::new()
            };
            Ok((mailboxes, subscriptions))
        });
        let (mailboxes, subscriptions) = match read {
            Ok(read) => read,
            Err(err) => {
                tracing::warn!(error = %err, "imap list: store read failed");
                return io.done(tag, "NO", "[UNAVAILABLE] Try again later");
            }
        };
        let names: Vec<&str> = mailboxes.iter().map(|m| m.name.as_str()).collect();
        let has_children = |name: &str| {
            let below = format!("{name}{DELIMITER}");
            names.iter().any(|n| n.starts_with(&below))
        };
        // LIST shows the mailboxes; LSUB the subscribed names, which may have outlived their
        // mailbox (RFC 3501 6.3.6: the server does not drop a subscription by itself).
        let listed: Vec<(&str, Option<&raft_store::Mailbox>)> = if lsub {
            subscriptions
                .iter()
                .map(|name| (name.as_str(), mailboxes.iter().find(|m| m.name == *name)))
                .collect()
        } else {
            mailboxes
                .iter()
                .map(|m| (m.name.as_str(), Some(m)))
                .collect()
        };
        for (name, mailbox) in listed.iter().filter(|(name, _)| list::matches(&full, name)) {
            let mut attributes = Vec::new();
            if mailbox.is_none() {
                attributes.push("\\Noselect");
            }
            attributes.push(if has_children(name) {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            });
            if let Some(special) = mailbox.and_then(|m| m.special_use.as_deref())
                && !lsub
            {
                attributes.push(special);
            }
            io.line(&format!(
                "* {command} ({}) \"/\" {}",
                attributes.join(" "),
                quoted_name(name)
            ));
        }
        // Levels that only exist as parents of listed names (for `%`): \Noselect.
        for parent in list::implied_parents(&full, listed.iter().map(|(name, _)| *name), lsub) {
            let attributes = if lsub || !names.contains(&parent.as_str()) {
                "\\Noselect \\HasChildren"
            } else {
                continue;
            };
            io.line(&format!(
                "* {command} ({attributes}) \"/\" {}",
                quoted_name(&parent)
            ));
        }
        let verb = if lsub { "Lsub" } else { "List" };
        io.done(tag, "OK", &format!("{verb} completed"))
    }

    pub(super) async fn status<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
        mailbox: &WireMailbox<'_>,
        items: &[StatusDataItemName],
    ) -> Handled {
        let Some(name) = self.name_or_no(io, tag, mailbox) else {
            return Ok(Flow::Continue);
        };
        let needs_messages = items.iter().any(|item| {
            matches!(
                item,
                StatusDataItemName::Unseen
                    | StatusDataItemName::Deleted
                    | StatusDataItemName::DeletedStorage
            )
        });
        let Some((mailbox, messages)) = self.open(io, tag, &name, needs_messages).await else {
            return Ok(Flow::Continue);
        };
        // STATUS claims nothing: RECENT counts what no session has claimed yet.
        let recent = if items.contains(&StatusDataItemName::Recent) && self.recent_active() {
            let account = self.account_name().to_owned();
            self.context
                .store
                .state()
                .unclaimed_messages(&account, &name)
                .unwrap_or_else(|err| {
                    tracing::warn!(error = %err, "imap: cannot count unclaimed messages");
                    0
                })
        } else {
            0
        };
        let mut shown = Vec::new();
        for item in items {
            let (label, value) = match item {
                StatusDataItemName::Messages => ("MESSAGES", u64::from(mailbox.messages)),
                StatusDataItemName::Recent => ("RECENT", u64::from(recent)),
                StatusDataItemName::UidNext => ("UIDNEXT", u64::from(mailbox.uidnext)),
                StatusDataItemName::UidValidity => ("UIDVALIDITY", u64::from(mailbox.uidvalidity)),
                StatusDataItemName::Unseen => (
                    "UNSEEN",
                    messages
                        .iter()
                        .filter(|m| m.flags & flag::SEEN == 0)
                        .count() as u64,
                ),
                StatusDataItemName::Deleted => (
                    "DELETED",
                    messages
                        .iter()
                        .filter(|m| m.flags & flag::DELETED != 0)
                        .count() as u64,
                ),
                StatusDataItemName::DeletedStorage => (
                    "DELETED-STORAGE",
                    messages
                        .iter()
                        .filter(|m| m.flags & flag::DELETED != 0)
                        .map(|m| m.size)
                        .sum(),
                ),
                StatusDataItemName::HighestModSeq => {
                    self.condstore = true;
                    ("HIGHESTMODSEQ", mailbox.highest_modseq)
                }
                // STATUS=SIZE (RFC 8438): the octets of every message, as RFC822.SIZE counts.
                StatusDataItemName::Size => ("SIZE", mailbox.bytes),
                #[allow(unreachable_patterns)]
                _ => continue,
            };
            shown.push(format!("{label} {value}"));
        }
        io.line(&format!(
            "* STATUS {} ({})",
            quoted_name(&name),
            shown.join(" ")
        ));
        io.done(tag, "OK", "Status completed")
    }

    /// APPEND (RFC 3501 6.3.11, UIDPLUS's APPENDUID): the message is fsync'd here and on the
    /// mirror partner, then committed through Raft, before the OK.
    pub(super) async fn append<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
        mailbox: &WireMailbox<'_>,
        flags: &[Flag<'_>],
        date: Option<DateTime>,
        message: LiteralOrLiteral8<'_>,
    ) -> Handled {
        let Some(name) = self.name_or_no(io, tag, mailbox) else {
            return Ok(Flow::Continue);
        };
        let (flags, keywords) = match stored_flags(flags) {
            Ok(flags) => flags,
            Err(why) => {
                self.bad(io, tag, &why);
                return Ok(Flow::Continue);
            }
        };
        let data = match message {
            LiteralOrLiteral8::Literal(literal) => literal.data().to_vec(),
            LiteralOrLiteral8::Literal8(literal) => literal.data.into_owned(),
        };
        if data.is_empty() {
            return io.done(tag, "NO", "Cannot store an empty message");
        }
        let size = data.len() as u64;
        if size > self.policy.max_message_bytes {
            return io.done(tag, "NO", "[TOOBIG] Message is too large");
        }
        let account = self.account.as_ref().expect("after login").clone();
        if !self.target_exists(io, tag, &name).await {
            return Ok(Flow::Continue);
        }
        if self.context.over_quota(&account, size) {
            return io.done(tag, "NO", "[OVERQUOTA] Mailbox is full");
        }
        let internal_date = date.map_or_else(|| unix_now() as i64, |d| d.as_ref().timestamp());
        let (stored, summary) = match self.context.store.store_message(data).await {
            Ok(stored) => stored,
            Err(err) => {
                return io.done(tag, "NO", &self.refusal(&err));
            }
        };
        raft_store::failpoint::pause("append-before-propose").await;
        let command = Command::Append {
            account: account.address.clone(),
            mailbox: name,
            message: Box::new(AppendedMessage {
                blob: stored.hash,
                size,
                replicas: stored.replicas,
                missing: stored.missing,
                flags,
                keywords,
                internal_date,
                summary,
            }),
        };
        let Some(result) = self.commit(io, tag, command).await else {
            return Ok(Flow::Continue);
        };
        let CommandResult::Appended { uidvalidity, uid } = result else {
            return io.done(tag, "NO", "[SERVERBUG] Unexpected result");
        };
        self.context
            .metrics
            .imap_appends
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(user = %account.address, uid, size, "imap append committed");
        self.sync(io, true).await?;
        io.done(
            tag,
            "OK",
            &format!("[APPENDUID {uidvalidity} {uid}] Append completed"),
        )
    }

    /// The tagged NO text for an APPEND whose message was not stored.
    fn refusal(&self, err: &StoreMessageError) -> String {
        match err {
            StoreMessageError::NoMirror => {
                "[UNAVAILABLE] Mirror unavailable, try again later".to_owned()
            }
            StoreMessageError::Storage(err) => {
                tracing::warn!(error = %err, "imap append: could not store the message");
                "[UNAVAILABLE] Temporary storage failure, try again later".to_owned()
            }
            StoreMessageError::TooComplex(too_complex) => {
                self.context
                    .metrics
                    .messages_too_complex
                    .fetch_add(1, Ordering::Relaxed);
                format!("[LIMIT] Message refused: {too_complex}")
            }
            StoreMessageError::Parse(_) => "[SERVERBUG] Could not parse the message".to_owned(),
        }
    }

    /// GETQUOTA: one quota root per account, named "".
    pub(super) async fn get_quota<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
        root: &[u8],
    ) -> Handled {
        let account = self.account.as_ref().expect("after login");
        if !root.is_empty() || account.quota_mb == 0 {
            return io.done(tag, "NO", "[NONEXISTENT] No such quota root");
        }
        io.line(&self.quota_line());
        io.done(tag, "OK", "Getquota completed")
    }

    pub(super) async fn get_quota_root<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
        mailbox: &WireMailbox<'_>,
    ) -> Handled {
        let Some(name) = self.name_or_no(io, tag, mailbox) else {
            return Ok(Flow::Continue);
        };
        if self.mailbox_exists(&name).await != Some(true) {
            return io.done(tag, "NO", "[NONEXISTENT] No such mailbox");
        }
        let account = self.account.as_ref().expect("after login");
        if account.quota_mb == 0 {
            io.line(&format!("* QUOTAROOT {}", quoted_name(&name)));
        } else {
            io.line(&format!("* QUOTAROOT {} \"\"", quoted_name(&name)));
            io.line(&self.quota_line());
        }
        io.done(tag, "OK", "Getquotaroot completed")
    }

    /// `* QUOTA "" (STORAGE used limit)` in KiB (RFC 2087).
    fn quota_line(&self) -> String {
        let account = self.account.as_ref().expect("after login");
        let used = self
            .context
            .store
            .state()
            .usage_bytes(&account.address)
            .unwrap_or(0);
        format!(
            "* QUOTA {} (STORAGE {} {})",
            quoted(""),
            used.div_ceil(1024),
            account.quota_mb.saturating_mul(1024)
        )
    }

    /// A mailbox as of now (after a read index, so everything acknowledged anywhere is in it),
    /// with its messages when `with_messages`; on failure the tagged NO is queued.
    pub(super) async fn open<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
        name: &str,
        with_messages: bool,
    ) -> Option<(raft_store::Mailbox, Vec<raft_store::Message>)> {
        if let Err(err) = self.context.store.linearize().await {
            unavailable(io, tag, &err);
            return None;
        }
        let reader = self.context.store.state().clone();
        let account = self.account_name().to_owned();
        let name = name.to_owned();
        let read = tokio::task::spawn_blocking(move || {
            let Some(mailbox) = reader.mailbox(&account, &name)? else {
                return Ok(None);
            };
            let messages = if with_messages {
                reader.messages(&account, &name)?
            } else {
                Vec::new()
            };
            Ok::<_, raft_store::StoreError>(Some((mailbox, messages)))
        })
        .await;
        match read {
            Ok(Ok(Some(found))) => Some(found),
            Ok(Ok(None)) => {
                io.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
                None
            }
            _ => {
                io.tagged(tag, "NO", "[UNAVAILABLE] Try again later");
                None
            }
        }
    }

    /// Whether the account has mailbox `name` (None: the store or the cluster cannot say).
    /// This node's copy answers yes at once; a no is checked again after catching up with the
    /// leader, since the mailbox may have been created through another node a moment ago.
    pub(super) async fn mailbox_exists(&self, name: &str) -> Option<bool> {
        let reader = &self.context.store.state();
        if reader.mailbox(self.account_name(), name).ok()?.is_some() {
            return Some(true);
        }
        self.context.store.linearize().await.ok()?;
        Some(reader.mailbox(self.account_name(), name).ok()?.is_some())
    }

    /// Whether a mailbox exists, for APPEND and COPY; if not, `NO [TRYCREATE]` is queued.
    pub(super) async fn target_exists<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
        name: &str,
    ) -> bool {
        match self.mailbox_exists(name).await {
            Some(true) => true,
            Some(false) => {
                io.tagged(tag, "NO", "[TRYCREATE] No such mailbox");
                false
            }
            None => {
                io.tagged(tag, "NO", "[UNAVAILABLE] Try again later");
                false
            }
        }
    }

    /// The stored name for a wire name, or a queued NO. A name that is not modified UTF-7 is
    /// a name the server cannot have, not a syntax error: a BAD would make many clients drop
    /// the connection (Dovecot answers NO too).
    pub(super) fn name_or_no<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
        mailbox: &WireMailbox<'_>,
    ) -> Option<String> {
        match mailbox_name(mailbox) {
            Ok(name) if !name.is_empty() => Some(name),
            Ok(_) => {
                io.tagged(tag, "NO", "[CANNOT] Empty mailbox name");
                None
            }
            Err(why) => {
                io.tagged(tag, "NO", &format!("[CANNOT] {why}"));
                None
            }
        }
    }
}

/// A name with LIST's wildcards could never be listed on its own (RFC 3501 5.1 advises
/// against them), so CREATE and RENAME refuse it.
fn has_wildcard(name: &str) -> bool {
    name.contains(['*', '%'])
}

/// `NO [UNAVAILABLE]` for a change the cluster could not commit.
pub(super) fn unavailable<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut Io<S>,
    tag: &Tag<'_>,
    err: &ClusterError,
) {
    tracing::warn!(error = %err, "imap: cluster unavailable");
    io.tagged(
        tag,
        "NO",
        "[UNAVAILABLE] The cluster is not reachable right now, try again",
    );
}
