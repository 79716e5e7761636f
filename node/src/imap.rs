//! IMAP4rev1 (RFC 3501 with IDLE, UIDPLUS, MOVE, NAMESPACE, SPECIAL-USE, LITERAL+, ENABLE, ID,
//! QUOTA, CONDSTORE and SORT) pieces that do no I/O: the command reader that turns client bytes
//! into parsed commands, LIST/LSUB name matching, the FETCH response builder, SEARCH evaluation
//! over a mailbox's messages and summaries and SORT's order, the selected mailbox's view with its
//! change reports, and
//! the modified UTF-7 codec for mailbox names; and the session that puts them on a socket
//! (`session.rs`). Message parsing lives in `raft_store::summary`.

pub mod command;
pub mod fetch;
pub mod list;
pub mod render;
pub mod search;
pub mod session;
pub mod sort;
pub mod utf7;
pub mod view;

#[cfg(test)]
mod transcripts;
