//! A TCP proxy in front of a region that injects faults on demand.
//!
//! In [`Fault::None`] it relays bytes both ways. Switching the fault closes every open
//! connection, so pooled keep-alive connections cannot slip past a newly injected fault.
//! - [`Fault::Blackhole`]: accepts TCP and never answers (a hung region, as a client sees it).
//! - [`Fault::Refuse`]: stops listening, so connections are refused.
//! - [`Fault::Status`]: answers every request with that status and Azure error JSON.
//! - [`Fault::Delay`]: relays after a delay.
//! - [`Fault::Reset`]: accepts and resets the connection at once.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does to the next connections.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Relay faithfully.
    None,
    /// Accept, read, never answer.
    Blackhole,
    /// Refuse connections (nothing listens).
    Refuse,
    /// Answer every request with this status (and `Retry-After` if given), without relaying.
    Status {
        /// HTTP status, e.g. 503.
        status: u16,
        /// Seconds for `Retry-After`.
        retry_after: Option<u32>,
    },
    /// Relay, but only after this delay.
    Delay(Duration),
    /// Accept and reset at once.
    Reset,
}

struct Shared {
    fault: Fault,
    target: SocketAddr,
}

/// A running fault-injection proxy.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    generation: watch::Sender<u64>,
    acceptor: Mutex<Option<JoinHandle<()>>>,
}

fn socket_addr(url_or_addr: &str) -> SocketAddr {
    let s = url_or_addr
        .trim_start_matches("http://")
        .trim_end_matches('/');
    s.parse()
        .unwrap_or_else(|_| panic!("not host:port: {url_or_addr}"))
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1:0` relaying to `target` (`http://host:port` or `host:port`).
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let proxy = Self {
            addr,
            shared: Arc::new(Mutex::new(Shared {
                fault: Fault::None,
                target: socket_addr(target),
            })),
            generation: watch::channel(0).0,
            acceptor: Mutex::new(None),
        };
        proxy.spawn_acceptor(listener);
        proxy
    }

    /// The proxy's URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Injects `fault` from now on; open connections are closed.
    pub async fn set(&self, fault: Fault) {
        let was_refusing = {
            let mut s = self.shared.lock().expect("proxy lock");
            let was = s.fault == Fault::Refuse;
            s.fault = fault.clone();
            was
        };
        self.generation.send_modify(|g| *g += 1);
        if fault == Fault::Refuse {
            let handle = self.acceptor.lock().expect("lock").take();
            if let Some(h) = handle {
                h.abort();
                let _ = h.await;
            }
        } else if was_refusing {
            // Listen again on the same port.
            let listener = TcpListener::bind(self.addr)
                .await
                .expect("re-bind proxy port");
            self.spawn_acceptor(listener);
        }
    }

    /// Points the proxy at another backend (e.g. a region restarted on a new port).
    pub fn set_target(&self, target: &str) {
        self.shared.lock().expect("proxy lock").target = socket_addr(target);
        self.generation.send_modify(|g| *g += 1);
    }

    fn spawn_acceptor(&self, listener: TcpListener) {
        let shared = self.shared.clone();
        let generation = self.generation.clone();
        let handle = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let (fault, target) = {
                    let s = shared.lock().expect("proxy lock");
                    (s.fault.clone(), s.target)
                };
                let mut changed = generation.subscribe();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = handle_conn(socket, fault, target) => {}
                        _ = changed.changed() => {} // fault switched: drop the connection
                    }
                });
            }
        });
        *self.acceptor.lock().expect("lock") = Some(handle);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(h) = self.acceptor.lock().expect("lock").take() {
            h.abort();
        }
        self.generation.send_modify(|g| *g += 1);
    }
}

async fn handle_conn(mut socket: TcpStream, fault: Fault, target: SocketAddr) {
    match fault {
        Fault::None => relay(socket, target).await,
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            relay(socket, target).await
        }
        Fault::Blackhole => {
            let mut buf = [0u8; 8192];
            while let Ok(n) = socket.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        }
        Fault::Reset => {
            let _ = socket.set_zero_linger();
            drop(socket);
        }
        Fault::Refuse => {} // not reached: nothing listens
        Fault::Status {
            status,
            retry_after,
        } => {
            // Read one request head (the body is not needed to answer), reply, close.
            if !read_head(&mut socket).await {
                return;
            }
            let body = format!(
                "{{\"error\":{{\"code\":\"{status}\",\"message\":\"injected fault: {status}\"}}}}"
            );
            let retry = retry_after
                .map(|s| format!("Retry-After: {s}\r\n"))
                .unwrap_or_default();
            let resp = format!(
                "HTTP/1.1 {status} Injected\r\ncontent-type: application/json\r\n{retry}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(resp.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    }
}

/// Reads until the end of an HTTP request head. False on EOF or error.
async fn read_head(socket: &mut TcpStream) -> bool {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    return true;
                }
                if seen.len() > 1 << 20 {
                    return false;
                }
            }
        }
    }
}

async fn relay(mut client: TcpStream, target: SocketAddr) {
    let Ok(mut upstream) = TcpStream::connect(target).await else {
        // Backend down: the client sees a reset, as it would behind a real L4 proxy.
        let _ = client.set_zero_linger();
        return;
    };
    // Without TCP_NODELAY, Nagle and delayed ACKs add ~40 ms to small keep-alive exchanges.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}
