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
        endpoint,
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
