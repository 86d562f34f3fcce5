//! Integration tests: real replicas over loopback HTTP with real redb files. One binary, one
//! file per behaviour.

mod harness;

mod config_and_faults;
mod failover;
mod fences;
mod formation;
mod membership;
mod partition;
mod storage;
