//! Outbound delivery: mail for other domains leaves through a replicated queue, with MX routing,
//! retries and bounces. The leader's delivery engine (`engine.rs`) drives it; it uses MX routing
//! (`route.rs`), the SMTP client that makes one delivery attempt to one host with a pool of open
//! connections (`client.rs`), and the builder of delivery status notifications (`dsn.rs`) for
//! bounces and delay notices.

pub mod client;
pub mod dsn;
pub mod engine;
pub mod route;
