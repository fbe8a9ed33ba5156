//! The proxy: an acceptor task per proxy, a relay task per connection, the fault read at
//! accept time and every open connection closed when the fault or the target changes.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What can go wrong setting a proxy up.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A socket could not be bound or read.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// A target that is not `http://host:port` or `host:port`.
    #[error("not http://host:port or host:port: {0}")]
    BadTarget(String),
}

/// This crate's results.
pub type Result<T, E = ProxyError> = std::result::Result<T, E>;

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> ProxyError {
    move |source| ProxyError::Io { what, source }
}

/// What the proxy does to new connections.
#[derive(Debug, Clone, PartialEq)]
pub enum ProxyFault {
    /// Relay faithfully.
    None,
    /// Accept, read, never answer (a hung region, as a client sees it).
    Blackhole,
    /// Stop listening, so connections are refused; listen again on the same port when the
    /// fault is switched off.
    Refuse,
    /// Accept and reset the connection at once.
    Reset,
    /// Answer every request with this status and Azure error JSON, without relaying.
    Status(u16),
    /// As [`ProxyFault::Status`], with a `Retry-After` header.
    StatusRetryAfter {
        /// HTTP status, e.g. 429.
        status: u16,
        /// Seconds for `Retry-After`.
        retry_after_secs: u32,
    },
    /// Relay after this delay.
    Delay(Duration),
    /// A link between paired regions, cut: a connection whose first request goes to a
    /// peer-only path (`/internal/…`, replication) is never answered; others (clients that
    /// discovered the pair through this link) are relayed.
    Partition,
}

/// Paths only regions call on each other.
const PEER_PREFIX: &[u8] = b"/internal/";

struct Shared {
    fault: ProxyFault,
    target: Option<SocketAddr>,
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    /// Bumped on every switch; open connections close when it moves.
    generation: watch::Sender<u64>,
    /// The last generation the acceptor has applied (listening or not, per [`ProxyFault::Refuse`]).
    applied: watch::Sender<u64>,
    acceptor: JoinHandle<()>,
}

impl Proxy {
    /// Listens on `127.0.0.1:0`; connections are reset until [`Proxy::set_target`].
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(io("binding a proxy"))?;
        let addr = listener.local_addr().map_err(io("proxy address"))?;
        let shared = Arc::new(Mutex::new(Shared {
            fault: ProxyFault::None,
            target: None,
        }));
        let generation = watch::channel(0).0;
        let applied = watch::channel(0).0;
        let acceptor = tokio::spawn(accept_loop(
            addr,
            listener,
            shared.clone(),
            generation.clone(),
            applied.clone(),
        ));
        Ok(Self {
            addr,
            shared,
            generation,
            applied,
            acceptor,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Injects `fault` from now on; open connections are closed. Stopping or resuming
    /// listening ([`ProxyFault::Refuse`]) happens a moment later: await [`Proxy::settled`] to
    /// be sure of it.
    pub fn set(&self, fault: ProxyFault) {
        lock(&self.shared).fault = fault;
        self.generation.send_modify(|g| *g += 1);
    }

    /// Points the proxy at the region's current address (`http://host:port` or `host:port`);
    /// open connections are closed.
    pub fn set_target(&self, url: &str) -> Result<()> {
        let addr: SocketAddr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .map_err(|_| ProxyError::BadTarget(url.to_owned()))?;
        lock(&self.shared).target = Some(addr);
        self.generation.send_modify(|g| *g += 1);
        Ok(())
    }

    /// Waits until the last [`Proxy::set`] is in force: the port is closed under
    /// [`ProxyFault::Refuse`], and listening again after it.
    pub async fn settled(&self) {
        let want = *self.generation.borrow();
        let mut applied = self.applied.subscribe();
        // The acceptor holds a sender too, so this only ends when the generation is reached.
        let _ = applied.wait_for(|&g| g >= want).await;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.generation.send_modify(|g| *g += 1);
    }
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// Accepts connections, each handled with the fault and target of the moment it came in;
/// closes the port under [`ProxyFault::Refuse`] and binds it again after.
async fn accept_loop(
    addr: SocketAddr,
    listener: TcpListener,
    shared: Arc<Mutex<Shared>>,
    gen: watch::Sender<u64>,
    applied: watch::Sender<u64>,
) {
    let mut listener = Some(listener);
    let mut changes = gen.subscribe();
    loop {
        let current = *changes.borrow_and_update();
        let refuse = lock(&shared).fault == ProxyFault::Refuse;
        if refuse {
            listener = None;
        } else if listener.is_none() {
            match TcpListener::bind(addr).await {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "proxy: listening again failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        applied.send_if_modified(|g| std::mem::replace(g, current) != current);
        let Some(l) = &listener else {
            let _ = changes.changed().await;
            continue;
        };
        let socket = tokio::select! {
            _ = changes.changed() => continue,
            accepted = l.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let (fault, target) = {
            let s = lock(&shared);
            (s.fault.clone(), s.target)
        };
        let mut changed = gen.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                _ = handle(socket, fault, target) => {}
                _ = changed.changed() => {} // fault switched: drop the connection
            }
        });
    }
}

async fn handle(mut socket: TcpStream, fault: ProxyFault, target: Option<SocketAddr>) {
    match fault {
        ProxyFault::None => relay(socket, target).await,
        ProxyFault::Delay(d) => {
            tokio::time::sleep(d).await;
            relay(socket, target).await
        }
        ProxyFault::Reset => {
            let _ = socket.set_zero_linger();
        }
        ProxyFault::Refuse => {} // not reached: nothing listens
        ProxyFault::Blackhole => {
            let mut buf = [0u8; 8192];
            while let Ok(n) = socket.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        }
        ProxyFault::Partition => {
            let Some(head) = read_head(&mut socket).await else {
                return;
            };
            let path = head.split(|&b| b == b' ').nth(1).unwrap_or_default();
            if path.starts_with(PEER_PREFIX) {
                let mut buf = [0u8; 8192];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            } else {
                relay_with(socket, target, &head).await
            }
        }
        ProxyFault::Status(status) => answer(socket, status, None).await,
        ProxyFault::StatusRetryAfter {
            status,
            retry_after_secs,
        } => answer(socket, status, Some(retry_after_secs)).await,
    }
}

/// Reads one request head (the body is not needed to answer), answers `status` with Azure
/// error JSON, closes.
async fn answer(mut socket: TcpStream, status: u16, retry_after_secs: Option<u32>) {
    if read_head(&mut socket).await.is_none() {
        return;
    }
    let body =
        format!("{{\"error\":{{\"code\":\"{status}\",\"message\":\"injected fault: {status}\"}}}}");
    let retry = retry_after_secs
        .map(|s| format!("retry-after: {s}\r\n"))
        .unwrap_or_default();
    let resp = format!(
        "HTTP/1.1 {status} Injected\r\ncontent-type: application/json\r\n{retry}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = socket.write_all(resp.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// Reads until the end of an HTTP request head; returns every byte read (the head and maybe
/// some body). `None` on EOF or error.
async fn read_head(socket: &mut TcpStream) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    return Some(seen);
                }
                if seen.len() > 1 << 20 {
                    return None;
                }
            }
        }
    }
}

async fn relay(client: TcpStream, target: Option<SocketAddr>) {
    relay_with(client, target, &[]).await
}

/// Relays, first sending upstream `already` (bytes read from the client before deciding).
async fn relay_with(mut client: TcpStream, target: Option<SocketAddr>, already: &[u8]) {
    let upstream = match target {
        Some(t) => TcpStream::connect(t).await.ok(),
        None => None,
    };
    let Some(mut upstream) = upstream else {
        // Region down: the client sees a reset, as behind a real L4 proxy.
        let _ = client.set_zero_linger();
        return;
    };
    // Without TCP_NODELAY, Nagle and delayed ACKs add ~40 ms to small keep-alive exchanges.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    if upstream.write_all(already).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One HTTP/1.1 request through `addr` (`host:port`); the whole answer.
    async fn get_through(addr: &str) -> std::io::Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok(out)
    }

    #[tokio::test]
    async fn the_proxy_refuses_answers_resets_and_relays_again_on_the_same_port() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend_addr = backend.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = backend.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                    let _ = s.write_all(ok).await;
                });
            }
        });
        let proxy = Proxy::start().await.unwrap();
        let addr = proxy.url().trim_start_matches("http://").to_owned();
        // No target yet: reset.
        assert!(get_through(&addr).await.map_or(true, |s| s.is_empty()));
        proxy.set_target(&backend_addr.to_string()).unwrap();
        assert!(get_through(&addr).await.unwrap().ends_with("ok"));

        proxy.set(ProxyFault::Refuse);
        proxy.settled().await;
        let refused = tokio::net::TcpStream::connect(&addr).await.unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

        proxy.set(ProxyFault::StatusRetryAfter {
            status: 429,
            retry_after_secs: 3,
        });
        proxy.settled().await;
        let answer = get_through(&addr).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 429 "), "{answer}");
        assert!(answer.contains("retry-after: 3\r\n"), "{answer}");
        assert!(answer.ends_with(r#"{"error":{"code":"429","message":"injected fault: 429"}}"#));

        proxy.set(ProxyFault::Reset);
        proxy.settled().await;
        assert!(get_through(&addr).await.map_or(true, |s| s.is_empty()));

        proxy.set(ProxyFault::None);
        proxy.settled().await;
        assert!(get_through(&addr).await.unwrap().ends_with("ok"));
    }
}
