//! The real reqwest transport against in-process servers on 127.0.0.1:0: statuses and headers
//! come through, and refused, reset, timed-out and unresolvable connections map to the right
//! `TransportError`. Ends with a whole client over HTTP (STS token, retry, failover).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use tandem_client::*;

fn region(name: &str, endpoint: String) -> RegionEntry {
    RegionEntry {
        name: name.into(),
        endpoints: vec![endpoint],
        key: Some("the-key".into()),
        key_file: None,
        cid: None,
        voice_deployment_id: None,
    }
}

fn req(path: &str, timeout: Duration) -> Request {
    Request {
        method: http::Method::POST,
        path_and_query: path.into(),
        headers: http::HeaderMap::new(),
        body: Bytes::from_static(b"body"),
        timeout,
    }
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[derive(Clone, Default)]
struct Counts {
    stt: Arc<AtomicU32>,
}

fn scripted() -> Router {
    Router::new()
        .route(
            "/echo",
            post(|body: Bytes| async move { (StatusCode::OK, body) }),
        )
        .route(
            "/busy",
            post(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [("retry-after", "2")],
                    r#"{"error":{"code":"ServiceUnavailable","message":"busy"}}"#,
                )
            }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
}

#[tokio::test]
async fn statuses_bodies_and_headers_come_through() {
    let base = serve(scripted()).await;
    let t = HttpTransport::new(&[region("a", base)]).unwrap();
    let r = t
        .send(0, req("/echo", Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"body"[..]));
    let r = t
        .send(0, req("/busy", Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 503);
    assert_eq!(r.headers.get("retry-after").unwrap(), "2");
    let r = t
        .send(0, req("/nope", Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 404);
}

#[tokio::test]
async fn a_slow_region_times_out() {
    let base = serve(scripted()).await;
    let t = HttpTransport::new(&[region("a", base)]).unwrap();
    let err = t
        .send(0, req("/slow", Duration::from_millis(100)))
        .await
        .unwrap_err();
    assert_eq!(err, TransportError::Timeout);
}

#[tokio::test]
async fn nothing_listening_is_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let t = HttpTransport::new(&[region("a", format!("http://{addr}"))]).unwrap();
    let err = t
        .send(0, req("/echo", Duration::from_secs(5)))
        .await
        .unwrap_err();
    assert_eq!(err, TransportError::Refused);
}

#[tokio::test]
async fn a_connection_closed_mid_request_is_a_reset() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = tokio::io::AsyncReadExt::read(&mut sock, &mut buf).await;
            drop(sock);
        }
    });
    let t = HttpTransport::new(&[region("a", format!("http://{addr}"))]).unwrap();
    let err = t
        .send(0, req("/echo", Duration::from_secs(5)))
        .await
        .unwrap_err();
    assert_eq!(err, TransportError::Reset);
}

#[tokio::test]
async fn an_unresolvable_host_is_a_dns_failure_and_https_is_tls() {
    let t = HttpTransport::new(&[
        region("a", "http://no-such-host.invalid:80".into()),
        region("b", "https://127.0.0.1:1".into()),
    ])
    .unwrap();
    let err = t
        .send(0, req("/", Duration::from_secs(10)))
        .await
        .unwrap_err();
    assert_eq!(err, TransportError::Dns);
    let err = t
        .send(1, req("/", Duration::from_secs(10)))
        .await
        .unwrap_err();
    assert_eq!(err, TransportError::Tls);
}

fn region_app(counts: Counts, failures: u32) -> Router {
    let stt = move |State(c): State<Counts>, headers: HeaderMap, body: Bytes| async move {
        assert_eq!(
            headers.get("authorization").unwrap(),
            "Bearer token-for-the-key"
        );
        assert_eq!(&body[..], b"RIFF");
        if c.stt.fetch_add(1, Ordering::SeqCst) < failures {
            return (StatusCode::BAD_GATEWAY, String::new());
        }
        (
            StatusCode::OK,
            r#"{"RecognitionStatus":"Success","DisplayText":"hi"}"#.to_string(),
        )
    };
    Router::new()
        .route(
            "/sts/v1.0/issueToken",
            post(|headers: HeaderMap| async move {
                let key = headers
                    .get("ocp-apim-subscription-key")
                    .unwrap()
                    .to_str()
                    .unwrap();
                format!("token-for-{key}")
            }),
        )
        .route(
            "/speech/recognition/conversation/cognitiveservices/v1",
            post(stt),
        )
        .route("/readyz", get(|| async { "ready" }))
        .with_state(counts)
}

#[tokio::test]
async fn a_whole_client_retries_and_fails_over_over_http() {
    let (first, second) = (Counts::default(), Counts::default());
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let flaky = serve(region_app(first.clone(), 5)).await;
    let good = serve(region_app(second.clone(), 0)).await;
    let cfg = ClientConfig {
        regions: vec![
            region("dead", dead),
            region("flaky", flaky),
            region("good", good),
        ],
        policy: Policy::default(),
        gateway_key: None,
        gateway_key_file: None,
    };
    let client = TandemClient::new(cfg).unwrap();
    let opts = RecognizeOptions::default();
    let a = client
        .recognize(Bytes::from_static(b"RIFF"), &opts)
        .await
        .unwrap();
    assert_eq!(a.region, "good");
    assert_eq!(a.value["DisplayText"], "hi");
    assert_eq!((a.attempts, a.failovers), (1 + 3 + 1, 2));
    assert_eq!(first.stt.load(Ordering::SeqCst), 3);
    assert!(client
        .render_metrics()
        .contains("tandem_client_failovers_total 2"));
}

/// A body in three chunks; the last is held back until the test releases it.
fn chunked_app(release: Arc<tokio::sync::Notify>) -> Router {
    let chunks = move |State(release): State<Arc<tokio::sync::Notify>>| async move {
        let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Bytes, std::io::Error>>();
        tokio::spawn(async move {
            let _ = tx.unbounded_send(Ok(Bytes::from_static(b"one ")));
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = tx.unbounded_send(Ok(Bytes::from_static(b"two ")));
            release.notified().await;
            let _ = tx.unbounded_send(Ok(Bytes::from_static(b"three")));
        });
        (
            [("content-type", "audio/x-test")],
            axum::body::Body::from_stream(rx),
        )
    };
    Router::new()
        .route(
            "/sts/v1.0/issueToken",
            post(|| async { "token-for-the-key" }),
        )
        .route("/cognitiveservices/v1", post(chunks))
        .route("/readyz", get(|| async { "ready" }))
        .with_state(release.clone())
}

/// Reads until something arrives, checks the held-back chunk is not among it, releases the last
/// chunk and returns the whole body.
async fn read_before_and_after_release(
    mut body: BodyStream,
    release: &tokio::sync::Notify,
    hold_past: Duration,
) -> String {
    use futures::StreamExt;
    // A generous guard so that a body that is buffered (and so waits for the release) fails
    // the test instead of hanging it; it asserts nothing about timing.
    let first = tokio::time::timeout(Duration::from_secs(30), body.next())
        .await
        .expect("the first chunk arrives before the body is complete")
        .unwrap()
        .unwrap();
    let early = String::from_utf8(first.to_vec()).unwrap();
    assert!(early.starts_with("one "), "{early:?}");
    assert!(!early.contains("three"), "the last chunk is not sent yet");
    // Held back longer than the per-try timeout: the body has no total timeout.
    tokio::time::sleep(hold_past).await;
    release.notify_one();
    let mut all = early;
    while let Some(chunk) = body.next().await {
        all.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    all
}

#[tokio::test]
async fn a_streamed_body_arrives_before_it_is_complete() {
    let release = Arc::new(tokio::sync::Notify::new());
    let base = serve(chunked_app(release.clone())).await;
    let t = HttpTransport::new(&[region("a", base)]).unwrap();
    let timeout = Duration::from_millis(200);
    let r = t
        .send_streaming(0, req("/cognitiveservices/v1", timeout))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(r.headers.get("content-type").unwrap(), "audio/x-test");
    let all = read_before_and_after_release(r.body, &release, timeout * 2).await;
    assert_eq!(all, "one two three");

    // The per-try timeout still bounds getting the head.
    let slow = HttpTransport::new(&[region("a", serve(scripted()).await)]).unwrap();
    let err = slow
        .send_streaming(0, req("/slow", Duration::from_millis(100)))
        .await
        .unwrap_err();
    assert_eq!(err, TransportError::Timeout);
}

#[tokio::test]
async fn a_whole_client_fails_over_then_streams_over_http() {
    let busy = serve(
        Router::new()
            .route(
                "/sts/v1.0/issueToken",
                post(|| async { "token-for-the-key" }),
            )
            .route(
                "/cognitiveservices/v1",
                post(|| async { (StatusCode::SERVICE_UNAVAILABLE, "busy") }),
            ),
    )
    .await;
    let release = Arc::new(tokio::sync::Notify::new());
    let good = serve(chunked_app(release.clone())).await;
    let cfg = ClientConfig {
        regions: vec![region("busy", busy), region("good", good)],
        policy: Policy::default(),
        gateway_key: None,
        gateway_key_file: None,
    };
    let client = TandemClient::new(cfg).unwrap();
    let req = ForwardRequest {
        method: http::Method::POST,
        path_and_query: "/cognitiveservices/v1".into(),
        headers: http::HeaderMap::new(),
        body: Bytes::from_static(b"<speak/>"),
    };
    let a = client.forward_streaming(CallKind::Tts, req).await.unwrap();
    assert_eq!((a.region.as_str(), a.attempts, a.failovers), ("good", 4, 1));
    assert_eq!(a.value.status.as_u16(), 200);
    let all = read_before_and_after_release(a.value.body, &release, Duration::ZERO).await;
    assert_eq!(all, "one two three");
}

#[tokio::test]
async fn a_body_that_breaks_off_ends_the_stream_with_an_error() {
    use futures::StreamExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = tokio::io::AsyncReadExt::read(&mut sock, &mut buf).await;
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npart";
        tokio::io::AsyncWriteExt::write_all(&mut sock, head)
            .await
            .unwrap();
        drop(sock);
    });
    let t = HttpTransport::new(&[region("a", format!("http://{addr}"))]).unwrap();
    let r = t
        .send_streaming(0, req("/audio", Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200);
    let items: Vec<_> = r.body.collect().await;
    let got: Vec<u8> = items
        .iter()
        .filter_map(|i| i.as_ref().ok())
        .flat_map(|b| b.to_vec())
        .collect();
    assert_eq!(&got[..], b"part");
    assert!(
        items.last().unwrap().is_err(),
        "the stream ends with an error"
    );
}
