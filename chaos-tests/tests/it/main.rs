//! Scenarios against real `mclusterd` processes, one module per area.

mod access_lists;
mod admin_https;
mod chaos;
mod durability;
mod filters;
mod imap;
mod inbound_checks;
mod mail;
mod metadata;
mod operator;
mod operator_walk;
mod outbound;
mod outbound_client;
mod outbound_lab;
mod outbound_route;
mod package;
mod peer_security;
mod privilege;
mod protection;
mod security;
mod upgrade;
