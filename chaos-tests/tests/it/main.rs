//! Scenarios against real `mclusterd` processes, one module per area.

mod chaos;
mod durability;
mod mail;
mod metadata;
mod operator;
mod peer_security;
