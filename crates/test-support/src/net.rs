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

/// `GET path` at `addr` over a plain TCP connection, within [`crate::WAIT`]: the status code and
/// the body (the raw HTTP/1.1 exchange a probe or a scrape makes, no client library in between).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    get_within(addr, path, crate::WAIT).await
}

/// [`http_get`] with a deadline of `timeout` instead of [`crate::WAIT`].
async fn get_within(addr: std::net::SocketAddr, path: &str, timeout: std::time::Duration) -> (u16, String) {
    exchange(addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"), timeout)
        .await
}

/// `POST path` of the JSON `body` at `addr`, as [`http_get`]: the status code and the body of any
/// answer, a refusal's included (a JSON-RPC client library hides the body of a non-200 answer).
pub async fn http_post_json(addr: std::net::SocketAddr, path: &str, body: &str) -> (u16, String) {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    exchange(addr, &request, crate::WAIT).await
}

async fn exchange(addr: std::net::SocketAddr, request: &str, timeout: std::time::Duration) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("send request");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read response");
        String::from_utf8(raw).expect("UTF-8 response")
    };
    let response = tokio::time::timeout(timeout, exchange).await.expect("HTTP answer within the deadline");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((response.as_str(), ""));
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "unexpected chunking: {head}");
    let code = head.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    (code, body.to_owned())
}

/// `GET /metrics` at `addr` (what a Prometheus scrape sends); the body. Panics on anything but a
/// `200` answer.
pub async fn scrape_metrics(addr: std::net::SocketAddr) -> String {
    scrape_metrics_within(addr, crate::WAIT).await
}

/// [`scrape_metrics`] within `timeout`: a coordinator of a thousand chains exports tens of
/// megabytes.
pub async fn scrape_metrics_within(addr: std::net::SocketAddr, timeout: std::time::Duration) -> String {
    let (code, body) = get_within(addr, "/metrics", timeout).await;
    assert_eq!(code, 200, "GET /metrics: {body}");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_addresses_are_distinct_and_bindable() {
        // Each bound as soon as it is handed out, as a child process would: a port another
        // process takes later is the machine's business, not this function's.
        let mut listeners = Vec::new();
        let addrs: Vec<String> = (0..20)
            .map(|_| {
                let addr = free_addr();
                let listener = std::net::TcpListener::bind(addr.as_str())
                    .unwrap_or_else(|err| panic!("bind {addr}: {err}"));
                listeners.push(listener);
                addr
            })
            .collect();
        let mut unique = addrs.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), addrs.len(), "{addrs:?}");
    }
}
