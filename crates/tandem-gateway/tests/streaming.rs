//! The gateway streams a region's answer through: the caller gets the first chunk while the
//! region is still holding back the last one. The region is a raw TCP server on 127.0.0.1:0
//! that writes a chunked body by hand, and releases its last chunk only when the test says so.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tandem_client::{ClientConfig, Policy, RegionEntry, TandemClient};
use tandem_gateway::{router, Gateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tower::ServiceExt;

/// Reads one request (head and content-length body) and returns its request line.
async fn read_request(sock: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the request ended early");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = sock.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the request body ended early");
        buf.extend_from_slice(&chunk[..n]);
    }
    head.lines().next().unwrap_or_default().to_string()
}

/// A region: tokens from its STS, and a TTS answer in two chunks, the second held back until
/// `release` is notified.
async fn region(release: Arc<Notify>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let release = release.clone();
            tokio::spawn(async move {
                let line = read_request(&mut sock).await;
                if line.starts_with("POST /cognitiveservices/v1 ") {
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: audio/x-test\r\n\
                                transfer-encoding: chunked\r\nconnection: close\r\n\r\n";
                    sock.write_all(head.as_bytes()).await.unwrap();
                    sock.write_all(b"4\r\none \r\n").await.unwrap();
                    sock.flush().await.unwrap();
                    release.notified().await;
                    sock.write_all(b"5\r\nthree\r\n0\r\n\r\n").await.unwrap();
                } else {
                    let body = if line.contains("/sts/") {
                        "tok"
                    } else {
                        "ready"
                    };
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    sock.write_all(resp.as_bytes()).await.unwrap();
                }
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn the_gateway_streams_the_answer_as_it_arrives() {
    let release = Arc::new(Notify::new());
    let endpoint = region(release.clone()).await;
    let cfg = ClientConfig {
        regions: vec![RegionEntry {
            name: "a".into(),
            endpoints: vec![endpoint],
            key: Some("k".into()),
            key_file: None,
            cid: None,
            voice_deployment_id: None,
        }],
        policy: Policy::default(),
        gateway_key: None,
        gateway_key_file: None,
    };
    let client = TandemClient::new(cfg).unwrap();
    let app = router(Arc::new(Gateway::new(client, None, 1 << 20)));
    let req = Request::post("/cognitiveservices/v1")
        .header("content-type", "application/ssml+xml")
        .body(Body::from("<speak/>"))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "audio/x-test");
    assert_eq!(resp.headers()["x-tandem-region"], "a");
    let mut body = resp.into_body();
    // A generous guard so that a buffering gateway fails the test instead of hanging it; it
    // asserts nothing about timing.
    let first = tokio::time::timeout(Duration::from_secs(30), body.frame())
        .await
        .expect("the first chunk arrives while the last is held back")
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert_eq!(&first[..], b"one ");
    release.notify_one();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(&rest[..], b"three");
}
