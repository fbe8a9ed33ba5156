//! A TCP proxy in front of each region: the SDK and the region's pair reach the region through
//! it, so a restarted region keeps its address, and network faults are one switch.
//!
//! Same design as `tandem-testkit`'s `FaultProxy` (switching the fault closes every open
//! connection, so pooled keep-alive connections cannot slip past it), with errors instead of
//! panics because this one runs in the product.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{DrillError, Result};

/// What the proxy does to new connections.
#[derive(Debug, Clone, PartialEq)]
pub enum ProxyFault {
    /// Relay faithfully.
    None,
    /// Accept, read, never answer.
    Blackhole,
    /// Answer every request with this status and Azure error JSON, without relaying.
    Status(u16),
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
    generation: watch::Sender<u64>,
    acceptor: JoinHandle<()>,
}

impl Proxy {
    /// Listens on `127.0.0.1:0`; connections are reset until [`Proxy::set_target`].
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(DrillError::io("binding a proxy"))?;
        let addr = listener
            .local_addr()
            .map_err(DrillError::io("proxy address"))?;
        let shared = Arc::new(Mutex::new(Shared {
            fault: ProxyFault::None,
            target: None,
        }));
        let generation = watch::channel(0).0;
        let acceptor = tokio::spawn(accept_loop(listener, shared.clone(), generation.clone()));
        Ok(Self {
            addr,
            shared,
            generation,
            acceptor,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Injects `fault` from now on; open connections are closed.
    pub fn set(&self, fault: ProxyFault) {
        self.shared.lock().unwrap_or_else(|p| p.into_inner()).fault = fault;
        self.generation.send_modify(|g| *g += 1);
    }

    /// Points the proxy at the region's current address (`http://host:port`).
    pub fn set_target(&self, url: &str) -> Result<()> {
        let addr: SocketAddr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .map_err(|_| DrillError::Setup(format!("not an http://host:port URL: {url}")))?;
        self.shared.lock().unwrap_or_else(|p| p.into_inner()).target = Some(addr);
        self.generation.send_modify(|g| *g += 1);
        Ok(())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.generation.send_modify(|g| *g += 1);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Mutex<Shared>>, gen: watch::Sender<u64>) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (fault, target) = {
            let s = shared.lock().unwrap_or_else(|p| p.into_inner());
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
        ProxyFault::Status(status) => {
            if read_head(&mut socket).await.is_none() {
                return;
            }
            let body = format!(
                "{{\"error\":{{\"code\":\"{status}\",\"message\":\"injected by tandem drill\"}}}}"
            );
            let resp = format!(
                "HTTP/1.1 {status} Injected\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(resp.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    }
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
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    if upstream.write_all(already).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}
