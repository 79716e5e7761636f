//! The checkers, one per guarantee. Each takes what the clients saw (and, for the state
//! digests, the live cluster) and returns counts plus a sentence per violation; none of them
//! decides the verdict alone, the scenario runner collects them.

pub mod identical_state;
pub mod imap_cache;
pub mod no_acked_mail_lost;
pub mod single_vip_owner;
pub mod stable_uids;
