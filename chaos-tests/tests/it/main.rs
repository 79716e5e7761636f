//! Scenarios against real `mclusterd` processes, one module per area.

mod metadata;
mod operator;
mod peer_security;
