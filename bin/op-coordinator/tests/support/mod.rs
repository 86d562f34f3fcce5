//! Pieces shared by the replica process tests and the replica fail-over benchmark
//! (`benches/replica_failover.rs` includes this file with `#[path]`).
#![allow(dead_code)]

/// A loopback address for a replica to listen on, nobody's right now. The port is below the
/// kernel's ephemeral range, so no port-0 listener and no outgoing connection (of the simulator,
/// of a client, of another test) can take it before the replica binds it; and never handed out
/// twice by this process.
pub(crate) fn free_addr() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let ephemeral_low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_low.max(10_001));
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        // A fresh RandomState is randomly seeded: a random port without a dependency.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_usize(handed_out.len());
        let port = low + (hasher.finish() % u64::from(high - low)) as u16;
        if !handed_out.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.push(port);
            return format!("127.0.0.1:{port}");
        }
    }
}

/// Now, in Unix milliseconds (the clock of `coordinator_events`).
pub(crate) fn unix_ms() -> u64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}
