//! The real [`Transport`]: reqwest, one connection pool per region, and errors mapped to
//! [`TransportError`] by their types (io error kinds, hyper's error predicates, our resolver's
//! error), never by their messages.

use std::error::Error as StdError;
use std::io::ErrorKind;
use std::sync::Arc;

use futures::StreamExt;

use crate::config::RegionEntry;
use crate::error::{ClientError, Result};
use crate::transport::{Request, Response, StreamingResponse, Transport, TransportError};

/// reqwest-based transport (plain HTTP; TLS is not compiled in). Its indices are the nodes of
/// every region in order, regions in configuration order (see [`Transport`]).
pub struct HttpTransport {
    nodes: Vec<(String, reqwest::Client)>,
}

/// A failed name lookup, recognised by type in the error chain.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {0}")]
struct DnsFailure(String);

struct Resolver;

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<std::net::SocketAddr> = {
                let lookup = tokio::net::lookup_host((host.as_str(), 0)).await;
                lookup.map(|a| a.collect()).unwrap_or_default()
            };
            if found.is_empty() {
                return Err(Box::new(DnsFailure(host)) as _);
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl HttpTransport {
    /// One client (and so one pool) per node of each region.
    pub fn new(regions: &[RegionEntry]) -> Result<Self> {
        let resolver = Arc::new(Resolver);
        let nodes = regions
            .iter()
            .flat_map(|r| r.endpoints().into_iter().map(move |e| (r, e)))
            .map(|(r, endpoint)| {
                let client = reqwest::Client::builder()
                    .no_proxy()
                    .dns_resolver(resolver.clone())
                    .pool_max_idle_per_host(32)
                    .build()
                    .map_err(|e| ClientError::Config(format!("region {}: {e}", r.name)))?;
                Ok((endpoint.trim_end_matches('/').to_string(), client))
            })
            .collect::<Result<_>>()?;
        Ok(HttpTransport { nodes })
    }
}

/// Maps a reqwest error to its [`TransportError`].
pub(crate) fn map_error(e: &reqwest::Error) -> TransportError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<DnsFailure>() {
            return TransportError::Dns;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                ErrorKind::ConnectionRefused => return TransportError::Refused,
                ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
                | ErrorKind::UnexpectedEof => return TransportError::Reset,
                ErrorKind::TimedOut => return TransportError::Timeout,
                _ => {}
            }
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() || h.is_closed() {
                return TransportError::Reset;
            }
            if h.is_timeout() {
                return TransportError::Timeout;
            }
        }
        source = err.source();
    }
    if e.is_timeout() {
        TransportError::Timeout
    } else {
        TransportError::Other(
            if e.is_connect() {
                "connect error"
            } else {
                "request error"
            }
            .into(),
        )
    }
}

impl HttpTransport {
    /// The request to region `region_idx`, without any timeout set.
    fn build(
        &self,
        region_idx: usize,
        req: Request,
    ) -> Result<reqwest::RequestBuilder, TransportError> {
        let (base, client) = self
            .nodes
            .get(region_idx)
            .ok_or_else(|| TransportError::Other("no such node".into()))?;
        if base.starts_with("https://") {
            // Built without a TLS stack: an https endpoint can never work.
            return Err(TransportError::Tls);
        }
        let url = format!("{base}{}", req.path_and_query);
        Ok(client
            .request(req.method, url)
            .headers(req.headers)
            .body(req.body))
    }
}

#[async_trait::async_trait]
impl Transport for HttpTransport {
    async fn send(&self, region_idx: usize, req: Request) -> Result<Response, TransportError> {
        let timeout = req.timeout;
        let mut builder = self.build(region_idx, req)?;
        if !timeout.is_zero() {
            // reqwest's timeout runs until the body is complete: right for a buffered answer.
            builder = builder.timeout(timeout);
        }
        let resp = builder.send().await.map_err(|e| map_error(&e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|e| map_error(&e))?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// The timeout covers connecting and the response head only (not reqwest's whole-request
    /// timeout, which would cut long bodies off); body chunks are read as the caller polls.
    async fn send_streaming(
        &self,
        region_idx: usize,
        req: Request,
    ) -> Result<StreamingResponse, TransportError> {
        let timeout = req.timeout;
        let head = self.build(region_idx, req)?.send();
        let resp = if timeout.is_zero() {
            head.await
        } else {
            tokio::time::timeout(timeout, head)
                .await
                .map_err(|_| TransportError::Timeout)?
        }
        .map_err(|e| map_error(&e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .bytes_stream()
            .map(|chunk| chunk.map_err(std::io::Error::other))
            .boxed();
        Ok(StreamingResponse {
            status,
            headers,
            body,
        })
    }
}
