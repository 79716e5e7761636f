//! IMAP4rev1 (RFC 3501 with IDLE, UIDPLUS, MOVE, NAMESPACE, SPECIAL-USE, LITERAL+, ENABLE, ID,
//! QUOTA and CONDSTORE) pieces that do no I/O: the command reader that turns client bytes into
//! parsed commands, the modified UTF-7 codec for mailbox names, and SEARCH evaluation over a
//! mailbox's messages and summaries. Sessions, storage and message parsing live elsewhere.

pub mod command;
pub mod search;
pub mod utf7;
