//! SELECT/EXAMINE and the selected-state commands: FETCH, STORE, SEARCH, COPY, MOVE, EXPUNGE,
//! CLOSE and UNSELECT.

use std::collections::HashSet;
use std::sync::Arc;

use imap_codec::imap_types::command::{FetchModifier, SelectParameter, StoreModifier};
use imap_codec::imap_types::core::{Charset, Tag};
use imap_codec::imap_types::extensions::sort::{SortCriterion, SortKey};
use imap_codec::imap_types::fetch::MacroOrMessageDataItemNames;
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::Mailbox as WireMailbox;
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::SequenceSet;
use raft_store::summary::MessageSummary;
use raft_store::version::{self, Feature};
use raft_store::{BlobHash, Command, CommandResult, FlagChange, FlagOp, Message, flag};
use tokio::io::{AsyncRead, AsyncWrite};

use super::mailboxes::unavailable;
use super::{Closed, Flow, Handled, Io, Session, stored_flags, uid_set};
use crate::imap::fetch::{self, FetchError, FetchOptions};
use crate::imap::search::{self, Answer};
use crate::imap::sort;
use crate::imap::view::View;
use crate::store::{ClusterError, MailStore};

/// What a FETCH could not answer, for its tagged reply.
#[derive(Default)]
struct FetchTally {
    /// Messages that could not be read (no copy reachable).
    failed: u32,
    /// Messages another session expunged meanwhile.
    expunged: u32,
    /// A part in a Content-Transfer-Encoding BINARY cannot decode.
    unknown_cte: Option<String>,
}

impl FetchTally {
    fn missing(&mut self, expunged: bool) {
        if expunged {
            self.expunged += 1;
        } else {
            self.failed += 1;
        }
    }
}

/// Messages whose summaries and blobs are read in one blocking task during FETCH.
const FETCH_CHUNK: usize = 128;

/// A message's summary and, when the command needs them, its bytes.
#[derive(Default)]
struct Loaded {
    summary: Option<MessageSummary>,
    raw: Option<Arc<Vec<u8>>>,
}

impl Session {
    pub(super) async fn select<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
        mailbox: &WireMailbox<'_>,
        read_only: bool,
        parameters: &[SelectParameter],
    ) -> Handled {
        // A failed SELECT leaves no mailbox selected (RFC 3501 6.3.1).
        self.selected = None;
        let Some(name) = self.name_or_no(io, tag, mailbox) else {
            return Ok(Flow::Continue);
        };
        for parameter in parameters {
            match parameter {
                SelectParameter::CondStore => self.condstore = true,
                SelectParameter::QResync { .. } => {
                    self.bad(io, tag, "QRESYNC is not supported");
                    return Ok(Flow::Continue);
                }
            }
        }
        // Everything acknowledged anywhere before this SELECT must be in the view.
        let Some((stored, messages)) = self.open(io, tag, &name, true).await else {
            return Ok(Flow::Continue);
        };
        let mut view = View::new(name, read_only, &stored, messages);
        if read_only
            && self.recent_active()
            && let Some(floor) = self.recent_floor(&view)
        {
            // EXAMINE claims nothing: what no session has claimed shows as recent.
            view.recent_above(floor);
        }
        self.selected = Some(view);
        self.claim_recent().await;
        let view = self.selected.as_ref().expect("just selected");
        io.push(view.flags_responses().as_bytes());
        io.line(&format!("* {} EXISTS", view.len()));
        io.line(&format!("* {} RECENT", view.recent_count()));
        if let Some(unseen) = view.first_unseen() {
            io.line(&format!("* OK [UNSEEN {unseen}] First unseen"));
        }
        io.line(&format!(
            "* OK [UIDVALIDITY {}] UIDs valid",
            view.uidvalidity
        ));
        io.line(&format!(
            "* OK [UIDNEXT {}] Predicted next UID",
            view.uidnext()
        ));
        io.line(&format!(
            "* OK [HIGHESTMODSEQ {}] Highest",
            view.highest_modseq()
        ));
        let (code, verb) = if read_only {
            ("READ-ONLY", "Examine")
        } else {
            ("READ-WRITE", "Select")
        };
        io.done(tag, "OK", &format!("[{code}] {verb} completed"))
    }

    /// CLOSE (expunging `\Deleted` messages silently unless read-only) and UNSELECT.
    pub(super) async fn close<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
        expunge: bool,
    ) -> Handled {
        let view = self.selected.take().expect("checked by the caller");
        if expunge && !view.read_only {
            let uids: Vec<u32> = deleted_uids(&view, None);
            if !uids.is_empty() {
                let command = Command::Expunge {
                    account: self.account_name().to_owned(),
                    mailbox: view.name.clone(),
                    uids,
                };
                if let Err(err) = self.context.store.write(command).await {
                    unavailable(io, tag, &err);
                    return Ok(Flow::Continue);
                }
            }
        }
        let verb = if expunge { "Close" } else { "Unselect" };
        io.done(tag, "OK", &format!("{verb} completed"))
    }

    /// EXPUNGE, and UID EXPUNGE (UIDPLUS) limited to `only`.
    pub(super) async fn expunge<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
        only: Option<&SequenceSet>,
    ) -> Handled {
        let view = self.selected.as_ref().expect("checked by the caller");
        if view.read_only {
            return io.done(tag, "NO", "[READ-ONLY] Mailbox is read-only");
        }
        let uids = deleted_uids(view, only);
        if !uids.is_empty() {
            let command = Command::Expunge {
                account: self.account_name().to_owned(),
                mailbox: view.name.clone(),
                uids,
            };
            if let Err(err) = self.context.store.write(command).await {
                unavailable(io, tag, &err);
                return Ok(Flow::Continue);
            }
        }
        self.sync(io, true).await?;
        io.done(tag, "OK", "Expunge completed")
    }

    /// SEARCH, and SORT (RFC 5256) with `sort`: the same matching, then the order.
    pub(super) async fn search<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
        charset: Option<&Charset<'_>>,
        criteria: &[SearchKey<'_>],
        uid: bool,
        sort: Option<&[SortCriterion]>,
    ) -> Handled {
        if let Some(charset) = charset
            && !search::charset_supported(charset.as_ref())
        {
            let list = search::SUPPORTED_CHARSETS.join(" ");
            return io.done(
                tag,
                "NO",
                &format!("[BADCHARSET ({list})] Unsupported charset"),
            );
        }
        let with_modseq = criteria.iter().any(mentions_modseq);
        if with_modseq {
            self.condstore = true;
        }
        let view = self.selected.as_ref().expect("checked by the caller");
        let messages: Vec<Message> = view.messages().to_vec();
        let recent: HashSet<u32> = messages
            .iter()
            .map(|m| m.uid)
            .filter(|uid| view.is_recent(*uid))
            .collect();
        let store = self.context.store.clone();
        let criteria: Vec<SearchKey<'static>> = criteria
            .iter()
            .map(|k| imap_codec::imap_types::IntoStatic::into_static(k.clone()))
            .collect();
        let answer = if uid {
            Answer::Uids
        } else {
            Answer::SequenceNumbers
        };
        let handle = tokio::runtime::Handle::current();
        let sorting = sort.is_some();
        let sort: Option<Vec<SortCriterion>> = sort.map(<[SortCriterion]>::to_vec);
        let sorts_by_envelope = sort.as_ref().is_some_and(|keys| {
            keys.iter()
                .any(|k| !matches!(k.key, SortKey::Arrival | SortKey::Size))
        });
        let with_summaries = sorts_by_envelope || criteria.iter().any(needs_summary);
        let searched = tokio::task::spawn_blocking(move || {
            // Keys on flags, sizes, dates and UIDs never look at the summary: one empty stand-in
            // saves reading and decoding a record per message.
            let stand_in = raft_store::summary::summarize(b"");
            let mut summaries = Vec::with_capacity(messages.len());
            if with_summaries {
                for message in &messages {
                    summaries.push(summary_of(&store, &handle, message)?);
                }
            }
            let candidates: Vec<search::Candidate<'_>> = messages
                .iter()
                .enumerate()
                .map(|(i, m)| (i as u32 + 1, m, summaries.get(i).unwrap_or(&stand_in)))
                .collect();
            let is_recent = |uid| recent.contains(&uid);
            let matched = if sort.is_some() {
                Answer::SequenceNumbers
            } else {
                answer
            };
            let mut found =
                search::search(&criteria, &candidates, matched, &is_recent, |message| {
                    handle
                        .block_on(store.read_blob(&message.blob))
                        .map_err(|e| e.to_string())
                })?;
            if let Some(keys) = &sort {
                let hits: Vec<_> = found
                    .iter()
                    .map(|seq| candidates[*seq as usize - 1])
                    .collect();
                found = sort::order(keys, &hits);
                if answer == Answer::Uids {
                    for n in &mut found {
                        *n = messages[*n as usize - 1].uid;
                    }
                }
            }
            // RFC 7162 3.1.5: with MODSEQ in the criteria, the highest mod-sequence found.
            let highest = found
                .iter()
                .filter_map(|n| match answer {
                    Answer::SequenceNumbers => messages.get(*n as usize - 1),
                    Answer::Uids => messages.iter().find(|m| m.uid == *n),
                })
                .map(|m| m.modseq)
                .max();
            Ok::<_, String>((found, highest))
        })
        .await;
        let (found, highest) = match searched {
            Ok(Ok(result)) => result,
            Ok(Err(why)) => {
                tracing::warn!(error = %why, "imap search: message unavailable");
                return io.done(tag, "NO", "[UNAVAILABLE] Some messages could not be read");
            }
            Err(_) => {
                return io.done(tag, "NO", "[SERVERBUG] Search failed");
            }
        };
        let (verb, done) = if sorting {
            ("SORT", "Sort completed")
        } else {
            ("SEARCH", "Search completed")
        };
        let mut line = format!("* {verb}");
        for n in &found {
            line.push(' ');
            line.push_str(&n.to_string());
        }
        if with_modseq && let Some(highest) = highest {
            line.push_str(&format!(" (MODSEQ {highest})"));
        }
        io.line(&line);
        self.sync(io, uid).await?;
        io.done(tag, "OK", done)
    }

    /// FETCH (RFC 3501 6.4.5, with CONDSTORE's CHANGEDSINCE): the implicit \\Seen is stored
    /// first, then the messages are answered batch by batch, the next batch read from disk
    /// while this one goes out.
    pub(super) async fn fetch<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
        set: &SequenceSet,
        items: &MacroOrMessageDataItemNames<'_>,
        uid: bool,
        modifiers: &[FetchModifier],
    ) -> Handled {
        let mut changed_since = None;
        for modifier in modifiers {
            match modifier {
                FetchModifier::ChangedSince(since) => {
                    changed_since = Some(since.get());
                    self.condstore = true;
                }
                FetchModifier::Vanished => {
                    self.bad(io, tag, "VANISHED needs QRESYNC, which is not supported");
                    return Ok(Flow::Continue);
                }
            }
        }
        let items = fetch::expand(items);
        if items.contains(&imap_codec::imap_types::fetch::MessageDataItemName::ModSeq) {
            self.condstore = true;
        }
        let view = self.selected.as_ref().expect("checked by the caller");
        let indexes = match view.resolve(set, uid) {
            Ok(indexes) => indexes,
            Err(bad) => {
                self.bad(io, tag, &bad.to_string());
                return Ok(Flow::Continue);
            }
        };
        let indexes: Vec<usize> = indexes
            .into_iter()
            .filter(|i| changed_since.is_none_or(|since| view.message(*i).modseq > since))
            .collect();
        // An implicit \\Seen is stored before the data goes out, so the FLAGS shown are true.
        let flags_changed = if fetch::marks_seen(&items) {
            match self.mark_seen(&indexes).await {
                Ok(changed) => changed,
                Err(err) => {
                    unavailable(io, tag, &err);
                    return Ok(Flow::Continue);
                }
            }
        } else {
            HashSet::new()
        };
        let tally = self
            .answer_fetch(io, &indexes, &items, uid, &flags_changed)
            .await?;
        self.sync(io, uid).await?;
        if let Some(encoding) = tally.unknown_cte {
            io.tagged(
                tag,
                "NO",
                &format!("[UNKNOWN-CTE] Cannot decode {encoding}"),
            );
        } else if tally.failed > 0 {
            io.tagged(
                tag,
                "NO",
                &format!(
                    "[UNAVAILABLE] {} messages could not be read, try again",
                    tally.failed
                ),
            );
        } else if tally.expunged > 0 {
            io.tagged(tag, "NO", "[EXPUNGEISSUED] Some messages were expunged");
        } else {
            io.tagged(tag, "OK", "Fetch completed");
        }
        Ok(Flow::Continue)
    }

    /// Adds \\Seen to the messages at `indexes` that lack it (not in a read-only mailbox) and
    /// notes the new flags in the view; returns the UIDs whose flags changed.
    async fn mark_seen(&mut self, indexes: &[usize]) -> Result<HashSet<u32>, ClusterError> {
        let mut flags_changed = HashSet::new();
        let view = self.selected.as_ref().expect("checked by the caller");
        if view.read_only {
            return Ok(flags_changed);
        }
        let unseen: Vec<u32> = indexes
            .iter()
            .filter(|i| !view.is_gone(**i) && view.message(**i).flags & flag::SEEN == 0)
            .map(|i| view.message(*i).uid)
            .collect();
        if unseen.is_empty() {
            return Ok(flags_changed);
        }
        let command = Command::StoreFlags {
            account: self.account_name().to_owned(),
            mailbox: view.name.clone(),
            uids: unseen,
            op: FlagOp::Add,
            flags: flag::SEEN,
            keywords: Vec::new(),
            unchanged_since: None,
        };
        if let CommandResult::FlagsStored { changed, .. } =
            self.context.store.write(command).await?
        {
            let view = self.selected.as_mut().expect("still selected");
            for change in changed {
                view.note_flags(change.uid, change.flags, &change.keywords, change.modseq);
                flags_changed.insert(change.uid);
            }
        }
        Ok(flags_changed)
    }

    /// The untagged FETCH responses for the messages at `indexes`, in batches of
    /// `FETCH_CHUNK`; returns what could not be answered.
    async fn answer_fetch<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        indexes: &[usize],
        items: &[imap_codec::imap_types::fetch::MessageDataItemName<'_>],
        uid: bool,
        flags_changed: &HashSet<u32>,
    ) -> Result<FetchTally, Closed> {
        let needs_blob = fetch::needs_blob(items);
        let needs_summary = fetch::needs_summary(items);
        let options = FetchOptions {
            uid,
            condstore: self.condstore,
            read_only: self.selected.as_ref().is_some_and(|v| v.read_only),
            flags_changed: false,
            recent: false,
        };
        let stand_in = raft_store::summary::summarize(b"");
        let view = self.selected.as_ref().expect("still selected");
        let batches: Vec<Vec<(usize, Message, bool)>> = indexes
            .chunks(FETCH_CHUNK)
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|i| (*i, view.message(*i).clone(), view.is_gone(*i)))
                    .collect()
            })
            .collect();
        let mut tally = FetchTally::default();
        let mut hashes: std::collections::VecDeque<Vec<BlobHash>> = batches
            .iter()
            .map(|batch| batch.iter().map(|(_, m, _)| m.blob).collect())
            .collect();
        // The next batch is read from disk while this one is answered.
        let mut next = hashes
            .pop_front()
            .map(|first| self.read_local(first, needs_blob, needs_summary));
        for batch in batches {
            let loaded = match next.take() {
                Some(reading) => reading.await.unwrap_or_default(),
                None => Vec::new(),
            };
            next = hashes
                .pop_front()
                .map(|following| self.read_local(following, needs_blob, needs_summary));
            let mut loaded = loaded.into_iter();
            for (index, message, gone) in batch {
                let Loaded { summary, mut raw } = loaded.next().unwrap_or_default();
                if raw.is_none() && (needs_blob || (needs_summary && summary.is_none())) {
                    // Not on this node's disk (or no summary record): the full path, local
                    // then a replica.
                    raw = self
                        .context
                        .store
                        .read_blob(&message.blob)
                        .await
                        .ok()
                        .map(Arc::new);
                }
                let parsed;
                let summary = match (&summary, &raw) {
                    (Some(summary), _) => summary,
                    _ if !needs_summary => &stand_in,
                    (None, Some(raw)) => {
                        parsed = raft_store::summary::summarize(raw);
                        &parsed
                    }
                    (None, None) => {
                        tally.missing(gone);
                        continue;
                    }
                };
                let built = fetch::fetch_response(
                    index as u32 + 1,
                    &message,
                    summary,
                    items,
                    move || {
                        raw.ok_or_else(|| {
                            std::io::Error::new(std::io::ErrorKind::NotFound, "message unavailable")
                        })
                    },
                    FetchOptions {
                        flags_changed: flags_changed.contains(&message.uid),
                        recent: self
                            .selected
                            .as_ref()
                            .is_some_and(|view| view.is_recent(message.uid)),
                        ..options
                    },
                );
                match built {
                    Ok(output) => io.push(&output.response),
                    Err(FetchError::UnknownCte { encoding }) => {
                        tally.unknown_cte = Some(format!("{encoding:?}"));
                    }
                    Err(err) => {
                        if !gone {
                            tracing::warn!(error = %err, uid = message.uid, "imap fetch failed");
                        }
                        tally.missing(gone);
                    }
                }
            }
            io.flush_if_full().await?;
        }
        Ok(tally)
    }

    /// Starts reading, from this node's disk, the summaries and bytes (as asked) of a batch,
    /// in one blocking task. What is not there comes back as None.
    fn read_local(
        &self,
        hashes: Vec<BlobHash>,
        with_blobs: bool,
        with_summaries: bool,
    ) -> tokio::task::JoinHandle<Vec<Loaded>> {
        let store = self.context.store.clone();
        tokio::task::spawn_blocking(move || {
            hashes
                .iter()
                .map(|hash| Loaded {
                    summary: with_summaries
                        .then(|| store.state().summary(hash).ok().flatten())
                        .flatten(),
                    raw: with_blobs
                        .then(|| store.read_local_blob(hash).ok().map(Arc::new))
                        .flatten(),
                })
                .collect()
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn store<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
        set: &SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flags: &[Flag<'_>],
        uid: bool,
        modifiers: &[StoreModifier],
    ) -> Handled {
        let view = self.selected.as_ref().expect("checked by the caller");
        if view.read_only {
            return io.done(tag, "NO", "[READ-ONLY] Mailbox is read-only");
        }
        let (bits, keywords) = match stored_flags(flags) {
            Ok(flags) => flags,
            Err(why) => {
                self.bad(io, tag, &why);
                return Ok(Flow::Continue);
            }
        };
        let mut unchanged_since = None;
        for modifier in modifiers {
            let StoreModifier::UnchangedSince(since) = modifier;
            unchanged_since = Some(*since);
        }
        let indexes = match view.resolve(set, uid) {
            Ok(indexes) => indexes,
            Err(bad) => {
                self.bad(io, tag, &bad.to_string());
                return Ok(Flow::Continue);
            }
        };
        if unchanged_since.is_some() {
            self.condstore = true;
        }
        let view = self.selected.as_ref().expect("checked by the caller");
        // A message another session expunged is skipped silently and the STORE answered OK,
        // as Dovecot does: most clients take a NO [EXPUNGEISSUED] to STORE as a failure of the
        // whole command, though it stored the flags of every other message.
        let uids: Vec<u32> = indexes
            .iter()
            .filter(|i| !view.is_gone(**i))
            .map(|i| view.message(*i).uid)
            .collect();
        let mut failed = Vec::new();
        if !uids.is_empty() {
            let command = Command::StoreFlags {
                account: self.account_name().to_owned(),
                mailbox: view.name.clone(),
                uids,
                op: match kind {
                    StoreType::Add => FlagOp::Add,
                    StoreType::Remove => FlagOp::Remove,
                    StoreType::Replace => FlagOp::Replace,
                },
                flags: bits,
                keywords,
                unchanged_since,
            };
            let changed = match self.context.store.write(command).await {
                Ok(CommandResult::FlagsStored { changed, failed: f }) => {
                    failed = f;
                    changed
                }
                Ok(CommandResult::Rejected(rejection)) => {
                    return io.done(tag, "NO", &rejection.to_string());
                }
                Ok(_) => Vec::new(),
                Err(err) => {
                    unavailable(io, tag, &err);
                    return Ok(Flow::Continue);
                }
            };
            let out = self.note_stored(changed, response == StoreResponse::Silent, uid);
            io.push(&out);
        }
        self.sync(io, uid).await?;
        if !failed.is_empty() {
            let view = self.selected.as_ref().expect("still selected");
            let shown = if uid {
                uid_set(failed.iter().copied())
            } else {
                uid_set(failed.iter().filter_map(|u| view.seq_of(*u)))
            };
            io.tagged(
                tag,
                "OK",
                &format!("[MODIFIED {shown}] Conditional store failed"),
            );
        } else {
            io.tagged(tag, "OK", "Store completed");
        }
        Ok(Flow::Continue)
    }

    /// Notes the flags a STORE gave in the view, and returns the untagged FETCH responses
    /// that report them: none for .SILENT, except the new MODSEQ under CONDSTORE (RFC 7162
    /// 3.1.3). A keyword new to the client is announced in FLAGS and PERMANENTFLAGS first,
    /// .SILENT or not.
    fn note_stored(&mut self, changed: Vec<FlagChange>, silent: bool, uid: bool) -> Vec<u8> {
        let condstore = self.condstore;
        let view = self.selected.as_mut().expect("still selected");
        let mut out = view
            .announce_keywords(changed.iter().flat_map(|c| &c.keywords))
            .into_bytes();
        for change in changed {
            view.note_flags(change.uid, change.flags, &change.keywords, change.modseq);
            if silent && !condstore {
                continue;
            }
            let Some(seq) = view.seq_of(change.uid) else {
                continue;
            };
            let mut items = Vec::new();
            if uid {
                items.push(format!("UID {}", change.uid));
            }
            if !silent {
                let mut flags = Vec::new();
                crate::imap::fetch::write_flags(
                    &mut flags,
                    change.flags,
                    view.is_recent(change.uid),
                    &change.keywords,
                );
                items.push(format!("FLAGS {}", String::from_utf8_lossy(&flags)));
            }
            if condstore {
                items.push(format!("MODSEQ ({})", change.modseq));
            }
            out.extend_from_slice(format!("* {seq} FETCH ({})\r\n", items.join(" ")).as_bytes());
        }
        out
    }

    /// COPY, and MOVE (RFC 6851) with `remove`; UIDPLUS's COPYUID either way.
    pub(super) async fn copy<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
        set: &SequenceSet,
        mailbox: &WireMailbox<'_>,
        uid: bool,
        remove: bool,
    ) -> Handled {
        let Some(target) = self.name_or_no(io, tag, mailbox) else {
            return Ok(Flow::Continue);
        };
        let view = self.selected.as_ref().expect("checked by the caller");
        if remove && view.read_only {
            return io.done(tag, "NO", "[READ-ONLY] Mailbox is read-only");
        }
        let indexes = match view.resolve(set, uid) {
            Ok(indexes) => indexes,
            Err(bad) => {
                self.bad(io, tag, &bad.to_string());
                return Ok(Flow::Continue);
            }
        };
        let view = self.selected.as_ref().expect("checked by the caller");
        let chosen: Vec<&Message> = indexes
            .iter()
            .filter(|i| !view.is_gone(**i))
            .map(|i| view.message(*i))
            .collect();
        let uids: Vec<u32> = chosen.iter().map(|m| m.uid).collect();
        let bytes: u64 = chosen.iter().map(|m| m.size).sum();
        if !self.target_exists(io, tag, &target).await {
            return Ok(Flow::Continue);
        }
        let account = self.account.as_ref().expect("after login");
        // RFC 6851 allows MOVE into the selected mailbox (each message gets a new UID there),
        // but builds before cluster version 3 refuse it when they apply it: until that version
        // is active, it is refused here as they refuse it.
        if remove && target == view.name && !self.move_within_mailbox_active() {
            return io.done(
                tag,
                "NO",
                "[CANNOT] Source and destination are the same mailbox",
            );
        }
        if !remove && self.context.over_quota(account, bytes) {
            return io.done(tag, "NO", "[OVERQUOTA] Mailbox is full");
        }
        let verb = if remove { "Move" } else { "Copy" };
        if uids.is_empty() {
            self.sync(io, uid || remove).await?;
            return io.done(tag, "OK", &format!("{verb} completed"));
        }
        let command = Command::CopyMessages {
            account: account.address.clone(),
            from: view.name.clone(),
            to: target,
            uids,
            remove_source: remove,
        };
        let Some(result) = self.commit(io, tag, command).await else {
            return Ok(Flow::Continue);
        };
        let code = match result {
            CommandResult::Copied { uidvalidity, pairs } if !pairs.is_empty() => format!(
                "[COPYUID {uidvalidity} {} {}] ",
                uid_set(pairs.iter().map(|p| p.0)),
                uid_set(pairs.iter().map(|p| p.1))
            ),
            _ => String::new(),
        };
        if remove {
            // RFC 6851: COPYUID goes in an untagged OK before the EXPUNGE responses.
            if !code.is_empty() {
                io.line(&format!("* OK {code}Moved"));
            }
            self.sync(io, true).await?;
            io.tagged(tag, "OK", "Move completed");
        } else {
            self.sync(io, uid).await?;
            io.tagged(tag, "OK", &format!("{code}Copy completed"));
        }
        Ok(Flow::Continue)
    }

    /// Whether the cluster runs a version with `\Recent` (a store that cannot say counts as
    /// no).
    pub(super) fn recent_active(&self) -> bool {
        self.context
            .store
            .state()
            .cluster_version()
            .is_ok_and(|active| version::active(Feature::RecentFlag, active))
    }

    /// Claims the selected mailbox's messages up to the last one the view holds as `\Recent`
    /// for this session (SELECT, and new messages while selected; EXAMINE claims nothing).
    /// The cluster gives each UID to one claim, whichever node makes it; a claim that cannot
    /// be made now leaves the messages recent for a later session, never for two.
    pub(super) async fn claim_recent(&mut self) {
        let Some(view) = self.selected.as_ref() else {
            return;
        };
        if view.read_only || !self.recent_active() {
            return;
        }
        let up_to = view.last_uid();
        // Nothing past what some session claimed already (as this node knows): no write.
        if self.recent_floor(view).is_none_or(|floor| floor >= up_to) {
            return;
        }
        let command = Command::ClaimRecent {
            account: self.account_name().to_owned(),
            mailbox: view.name.clone(),
            up_to,
        };
        match self.context.store.write(command).await {
            Ok(CommandResult::RecentClaimed {
                uidvalidity,
                from,
                to,
            }) => {
                if let Some(view) = self.selected.as_mut()
                    && view.uidvalidity == uidvalidity
                {
                    view.add_recent(from, to);
                }
            }
            Ok(other) => tracing::debug!(result = ?other, "imap: recent claim refused"),
            Err(err) => tracing::debug!(error = %err, "imap: recent claim not made"),
        }
    }

    /// The highest UID of the viewed mailbox some session has claimed as `\Recent`, as this
    /// node has applied it (None when the store cannot say).
    fn recent_floor(&self, view: &View) -> Option<u32> {
        self.context
            .store
            .state()
            .recent_floor(self.account_name(), &view.name, view.uidvalidity)
            .map_err(|err| tracing::warn!(error = %err, "imap: cannot read the recent floor"))
            .ok()
    }

    /// Whether the cluster runs a version that applies a MOVE into the source mailbox (a
    /// store that cannot say counts as no).
    fn move_within_mailbox_active(&self) -> bool {
        self.context
            .store
            .state()
            .cluster_version()
            .is_ok_and(|active| version::active(Feature::MoveWithinMailbox, active))
    }
}

/// The summary of a message's blob; when the record is missing, parsed from the bytes.
fn summary_of(
    store: &MailStore,
    handle: &tokio::runtime::Handle,
    message: &Message,
) -> Result<MessageSummary, String> {
    if let Ok(Some(summary)) = store.state().summary(&message.blob) {
        return Ok(summary);
    }
    let data = handle
        .block_on(store.read_blob(&message.blob))
        .map_err(|e| e.to_string())?;
    Ok(raft_store::summary::summarize(&data))
}

/// UIDs of messages flagged `\Deleted` (within `only`, a UID set, when given).
fn deleted_uids(view: &View, only: Option<&SequenceSet>) -> Vec<u32> {
    let within: Option<HashSet<usize>> = only.map(|set| {
        view.resolve(set, true)
            .unwrap_or_default()
            .into_iter()
            .collect()
    });
    view.messages()
        .iter()
        .enumerate()
        .filter(|(i, m)| {
            m.flags & flag::DELETED != 0
                && !view.is_gone(*i)
                && within.as_ref().is_none_or(|w| w.contains(i))
        })
        .map(|(_, m)| m.uid)
        .collect()
}

/// Whether a key reads the envelope in the summary (FROM, SUBJECT, SENT*, HEADER ...).
fn needs_summary(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::From(_)
        | SearchKey::To(_)
        | SearchKey::Cc(_)
        | SearchKey::Bcc(_)
        | SearchKey::Subject(_)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_)
        | SearchKey::Header(..) => true,
        SearchKey::Not(inner) => needs_summary(inner),
        SearchKey::Or(a, b) => needs_summary(a) || needs_summary(b),
        SearchKey::And(keys) => keys.as_ref().iter().any(needs_summary),
        _ => false,
    }
}

fn mentions_modseq(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::ModSequence { .. } => true,
        SearchKey::Not(inner) => mentions_modseq(inner),
        SearchKey::Or(a, b) => mentions_modseq(a) || mentions_modseq(b),
        SearchKey::And(keys) => keys.as_ref().iter().any(mentions_modseq),
        _ => false,
    }
}
