//! Outbound delivery: mail for other domains leaves through a replicated queue, with MX routing,
//! retries and bounces (issue 6). That is being built; for now this module holds the builder of
//! delivery status notifications (`dsn.rs`), which the queue will use to bounce and to send
//! delay notices, MX routing (`route.rs`), which the delivery engine will use, and the SMTP
//! client that makes one delivery attempt to one MX host (`client.rs`).

pub mod client;
pub mod dkim;
pub mod dsn;
pub mod route;
