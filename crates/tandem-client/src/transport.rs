//! The seam between the policy engine and HTTP: [`Transport`], with plain request and response
//! values, so the engine can be driven by a scripted fake on paused time.

use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use http::{HeaderMap, Method, StatusCode};

/// One HTTP exchange to send to a region (the endpoint is the transport's business).
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// Path and query, starting with `/`.
    pub path_and_query: String,
    /// Headers, authentication included.
    pub headers: HeaderMap,
    /// The body; cheap to clone, so every retry sends the same bytes.
    pub body: Bytes,
    /// The per-try timeout.
    pub timeout: Duration,
}

/// A region's answer, whatever its status.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

/// A response body arriving chunk by chunk. An `Err` item means the body broke off midway
/// (reset, protocol error); the stream ends there.
pub type BodyStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// A region's answer whose body is still arriving: the status and headers are in, the body is
/// read as the caller polls it.
pub struct StreamingResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, chunk by chunk.
    pub body: BodyStream,
}

impl std::fmt::Debug for StreamingResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl From<Response> for StreamingResponse {
    /// A buffered answer as a one-chunk stream (no chunk at all when the body is empty).
    fn from(r: Response) -> Self {
        let chunks = if r.body.is_empty() {
            Vec::new()
        } else {
            vec![Ok(r.body)]
        };
        StreamingResponse {
            status: r.status,
            headers: r.headers,
            body: stream::iter(chunks).boxed(),
        }
    }
}

/// Why no response arrived, told apart by type so [`crate::classify`] never reads messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// Nothing listens (connection refused).
    #[error("connection refused")]
    Refused,
    /// The connection broke after it was made.
    #[error("connection reset")]
    Reset,
    /// The per-try timeout passed.
    #[error("timed out")]
    Timeout,
    /// The host name did not resolve.
    #[error("DNS failure")]
    Dns,
    /// The TLS handshake failed (or TLS is unavailable).
    #[error("TLS failure")]
    Tls,
    /// Anything else (bad URL, protocol error).
    #[error("transport error: {0}")]
    Other(String),
}

/// Sends requests to regions' nodes, by index: the nodes of every region in order (`endpoint`,
/// or each of `endpoints`), regions in the configuration's priority order. When every region
/// has one node, the index is the region's.
#[async_trait::async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Sends `req` to node `region_idx` (see [`Transport`]) and returns its response, whatever
    /// the status.
    async fn send(&self, region_idx: usize, req: Request) -> Result<Response, TransportError>;

    /// Like [`Transport::send`], but returns as soon as the status and headers are in, with the
    /// body still arriving. `req.timeout` bounds getting the head only; the body has no total
    /// timeout (a long audio stream is legitimate).
    ///
    /// The default sends with [`Transport::send`] and hands the buffered body over as one chunk.
    async fn send_streaming(
        &self,
        region_idx: usize,
        req: Request,
    ) -> Result<StreamingResponse, TransportError> {
        self.send(region_idx, req)
            .await
            .map(StreamingResponse::from)
    }
}
