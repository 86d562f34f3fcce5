//! op-coordinator: keeps exactly one OP Stack sequencer producing blocks.

pub mod config;
