//! Scenarios against real `mclusterd` processes, one module per area.

mod chaos;
mod durability;
mod filters;
mod imap;
mod mail;
mod metadata;
mod operator;
mod outbound;
mod outbound_client;
mod outbound_lab;
mod outbound_route;
mod peer_security;
mod privilege;
mod protection;
