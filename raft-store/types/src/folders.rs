//! Mailbox names and flag changes as IMAP commands carry them.

use serde::{Deserialize, Serialize};

/// The hierarchy delimiter of mailbox names.
pub const DELIMITER: char = '/';

/// How STORE changes a message's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlagOp {
    Add,
    Remove,
    Replace,
}

/// A message's flags after a STORE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagChange {
    pub uid: u32,
    pub flags: u8,
    pub keywords: Vec<String>,
    pub modseq: u64,
}

/// Whether `name` may name a mailbox: not empty, no NUL or control characters, no empty
/// hierarchy level, and not longer than 1000 bytes.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 1000
        && !name.chars().any(char::is_control)
        && !name.starts_with(DELIMITER)
        && !name.ends_with(DELIMITER)
        && !name.contains("//")
}

/// The message an APPEND stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendedMessage {
    pub blob: crate::BlobHash,
    pub size: u64,
    pub replicas: Vec<crate::NodeId>,
    pub missing: Vec<crate::NodeId>,
    pub flags: u8,
    pub keywords: Vec<String>,
    pub internal_date: i64,
    pub summary: crate::summary::MessageSummary,
}
