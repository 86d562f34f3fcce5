//! op-coordinator: keeps exactly one OP Stack sequencer producing blocks.

pub mod client;
pub mod config;
pub mod engine;
pub mod health;
pub mod state;
