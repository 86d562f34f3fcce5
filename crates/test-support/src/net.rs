//! Loopback addresses for servers a test does not bind itself.

use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher as _, Hasher as _},
    sync::{Mutex, PoisonError},
};

/// Ports below this are the operating system's; the free range starts here.
const LOWEST_PORT: u16 = 10_000;

/// A loopback address (`127.0.0.1:PORT`) for a child process to listen on, nobody's right now.
///
/// In-process servers bind port 0 and need none of this; a child process takes its address as a
/// flag or in a config file, so the port is chosen before it binds. The port is below the
/// kernel's ephemeral range, so no port-0 listener and no outgoing connection (of the simulator,
/// of a client, of another test) can take it before the child binds it; and it is never handed
/// out twice by this process.
pub fn free_addr() -> String {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let ephemeral_low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (low, high) = (LOWEST_PORT, ephemeral_low.max(LOWEST_PORT + 1));
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        // A fresh RandomState is randomly seeded: a random port without a dependency.
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_usize(handed_out.len());
        let port = low + (hasher.finish() % u64::from(high - low)) as u16;
        if !handed_out.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.push(port);
            return format!("127.0.0.1:{port}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_addresses_are_distinct_and_bindable() {
        let addrs: Vec<String> = (0..20).map(|_| free_addr()).collect();
        let mut unique = addrs.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), addrs.len(), "{addrs:?}");
        for addr in &addrs {
            std::net::TcpListener::bind(addr.as_str()).unwrap_or_else(|err| panic!("bind {addr}: {err}"));
        }
    }
}
