//! A TCP proxy in front of a region that injects faults on demand: `tandem drill`'s
//! [`tandem_faults::Proxy`], with the tests' vocabulary ([`Fault`]) and panics instead of errors.
//!
//! In [`Fault::None`] it relays bytes both ways. Switching the fault closes every open
//! connection, so pooled keep-alive connections cannot slip past a newly injected fault.
//! - [`Fault::Blackhole`]: accepts TCP and never answers (a hung region, as a client sees it).
//! - [`Fault::Refuse`]: stops listening, so connections are refused.
//! - [`Fault::Status`]: answers every request with that status and Azure error JSON.
//! - [`Fault::Delay`]: relays after a delay.
//! - [`Fault::Reset`]: accepts and resets the connection at once.
//! - [`Fault::Partition`]: never answers region-to-region calls (`/internal/…`), relays others.

use std::time::Duration;

use tandem_faults::{Proxy, ProxyFault};

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
    /// Never answer connections whose first request is region-to-region (`/internal/…`).
    Partition,
}

impl From<Fault> for ProxyFault {
    fn from(fault: Fault) -> Self {
        match fault {
            Fault::None => ProxyFault::None,
            Fault::Blackhole => ProxyFault::Blackhole,
            Fault::Refuse => ProxyFault::Refuse,
            Fault::Status {
                status,
                retry_after: None,
            } => ProxyFault::Status(status),
            Fault::Status {
                status,
                retry_after: Some(secs),
            } => ProxyFault::StatusRetryAfter {
                status,
                retry_after_secs: secs,
            },
            Fault::Delay(d) => ProxyFault::Delay(d),
            Fault::Reset => ProxyFault::Reset,
            Fault::Partition => ProxyFault::Partition,
        }
    }
}

/// A running fault-injection proxy; stops when dropped.
pub struct FaultProxy {
    inner: Proxy,
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1:0` relaying to `target` (`http://host:port` or `host:port`).
    pub async fn start(target: &str) -> Self {
        let inner = Proxy::start().await.expect("start proxy");
        inner.set_target(target).expect("proxy target");
        Self { inner }
    }

    /// The proxy's URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.inner.url()
    }

    /// Injects `fault` from now on; open connections are closed. Returns once it is in force
    /// (for [`Fault::Refuse`], once the port is closed; after it, once it listens again).
    pub async fn set(&self, fault: Fault) {
        self.inner.set(fault.into());
        tokio::time::timeout(Duration::from_secs(10), self.inner.settled())
            .await
            .expect("proxy did not apply the fault within 10 s (could not listen again?)");
    }

    /// Points the proxy at another backend (e.g. a region restarted on a new port).
    pub fn set_target(&self, target: &str) {
        self.inner.set_target(target).expect("proxy target");
    }

    /// The drill's proxy underneath.
    pub fn proxy(&self) -> &Proxy {
        &self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn refuse_is_in_force_when_set_returns_and_statuses_carry_retry_after() {
        // Nothing listens on port 9 (discard) here: relayed connections are reset.
        let proxy = FaultProxy::start("127.0.0.1:9").await;
        let addr = proxy.url().trim_start_matches("http://").to_owned();
        proxy.set(Fault::Refuse).await;
        let refused = tokio::net::TcpStream::connect(&addr).await.unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

        proxy
            .set(Fault::Status {
                status: 503,
                retry_after: Some(2),
            })
            .await;
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert!(answer.contains("retry-after: 2\r\n"), "{answer}");
    }
}
