//! The public listener's accept loop: HTTP/1.1 over hyper with a header-read timeout (a client
//! that trickles its request line and headers is cut off), a cap on concurrent connections per
//! client address (one address cannot hold every socket), the client's address handed to the
//! router ([`ClientAddr`], for sign-in throttling) and graceful shutdown (in-flight requests
//! finish, idle connections close).
//!
//! `axum::serve` sets neither a timer nor a limit, so hyper's header timeout never fires there
//! and a slow client holds its connection for as long as it likes.

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use rxbridge_app::throttle::client_key;
use rxbridge_http::ClientAddr;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt as _;

/// How the public listener treats connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionPolicy {
    /// Whole request line and headers must arrive within this.
    pub header_read_timeout: Duration,
    /// Open connections one client address may hold; the next is closed at once.
    pub max_per_client: usize,
}

/// Open connections per client address. IPv6 clients are counted per /64, the block one
/// subscriber usually gets, so rotating through their own addresses does not multiply the cap.
#[derive(Clone, Default)]
pub struct ConnectionCounts {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One counted connection; dropping it frees the slot.
pub struct Slot {
    counts: ConnectionCounts,
    key: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

impl ConnectionCounts {
    /// A slot for a connection from `ip`, or `None` when it already holds `max`.
    pub fn acquire(&self, ip: IpAddr, max: usize) -> Option<Slot> {
        let key = client_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            counts: self.clone(),
            key,
        })
    }
}

/// Serve `router` on `listener` until `shutdown` resolves, then stop accepting, let in-flight
/// requests finish and close the rest.
pub async fn serve_public(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    policy: ConnectionPolicy,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let counts = ConnectionCounts::default();
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(policy.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = counts.acquire(peer.ip(), policy.max_per_client) else {
            tracing::debug!(
                max = policy.max_per_client,
                "connection closed: the client address holds too many"
            );
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let client = ClientAddr(peer.ip());
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(client);
            router.clone().oneshot(req)
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // Errors here are the client's (reset, timed out, malformed): nothing to report.
            let _ = conn.await;
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
