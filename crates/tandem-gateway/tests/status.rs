//! The gateway's aggregate status: a region that refuses connections shows unreachable with its
//! breaker open after a call failed over, the failover is listed, the healthy region's own status
//! is embedded, and `/status` answers the page to browsers and JSON to everyone else. The
//! regions are small axum servers on 127.0.0.1:0 (and a closed port).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tandem_client::{ClientConfig, Policy, RegionEntry, TandemClient};
use tandem_gateway::{router, Gateway};
use tower::ServiceExt;

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A closed port: connections are refused.
async fn closed() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// A healthy region: a token, the voice list, readiness and its own status.
fn healthy() -> Router {
    Router::new()
        .route("/sts/v1.0/issueToken", post(|| async { "token" }))
        .route(
            "/cognitiveservices/voices/list",
            get(|| async { Json(json!([])) }),
        )
        .route("/readyz", get(|| async { "ready" }))
        .route(
            "/status.json",
            get(|| async {
                Json(json!({"kind": "region", "region": "eastus", "now": 1,
                            "health": {"status": "ready"}}))
            }),
        )
}

fn entry(name: &str, endpoint: String) -> RegionEntry {
    RegionEntry {
        name: name.into(),
        endpoints: vec![endpoint],
        key: Some(format!("{name}-secret-key")),
        key_file: None,
        cid: None,
        voice_deployment_id: None,
    }
}

async fn get_page(app: &Router, uri: &str, accept: Option<&str>) -> (String, String) {
    let mut req = Request::get(uri);
    if let Some(a) = accept {
        req = req.header(header::ACCEPT, a);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let ct = resp.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (ct, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn a_refusing_region_shows_unreachable_with_its_breaker_open_and_the_failover_listed() {
    let east = serve(healthy()).await;
    let policy = Policy {
        breaker_consecutive_failures: 1,
        breaker_open_base_ms: 600_000,
        breaker_open_max_ms: 600_000,
        discovery: false,
        ..Policy::default()
    };
    let cfg = ClientConfig {
        regions: vec![entry("westus", closed().await), entry("eastus", east)],
        policy,
        gateway_key: None,
        gateway_key_file: None,
    };
    let client = TandemClient::new(cfg).unwrap();
    let app = router(Arc::new(Gateway::new(client, None, 1 << 20)));

    let (_, body) = get_page(&app, "/status.json", None).await;
    let before: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(before["regions"][0]["state"], "Closed", "{before:#}");

    let req = Request::get("/cognitiveservices/voices/list")
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-tandem-region"], "eastus");
    // The event recorder is a task: let it drain the client's broadcast.
    tokio::task::yield_now().await;

    let (ct, body) = get_page(&app, "/status.json", None).await;
    assert!(ct.starts_with("application/json"));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["kind"], "gateway");
    let west = &v["regions"][0];
    assert_eq!(
        (
            west["name"].as_str(),
            west["state"].as_str(),
            west["health"].as_str()
        ),
        (Some("westus"), Some("Open"), Some("unreachable")),
        "{v:#}"
    );
    let east = &v["regions"][1];
    assert_eq!(
        (east["state"].as_str(), east["health"].as_str()),
        (Some("Closed"), Some("ready"))
    );
    assert_eq!(v["regionStatus"]["westus"]["reachable"], false);
    assert_eq!(v["regionStatus"]["eastus"]["status"]["region"], "eastus");
    let kinds: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"failover") && kinds.contains(&"breaker-trip"),
        "{kinds:?}"
    );
    assert!(
        !body.contains("secret-key"),
        "the regions' keys stay in the gateway"
    );

    // `/status`: JSON unless the caller accepts HTML.
    let (ct, _) = get_page(&app, "/status", None).await;
    assert!(ct.starts_with("application/json"));
    let (ct, page) = get_page(&app, "/status", Some("text/html")).await;
    assert!(ct.starts_with("text/html"));
    assert!(page.contains("<title>Tandem · gateway</title>") && page.contains("\"Open\""));
    let (_, page) = get_page(&app, "/status?format=html", None).await;
    assert!(page.starts_with("<!DOCTYPE html>"));

    let (_, metrics) = get_page(&app, "/metrics", None).await;
    for line in [
        "tandem_gateway_region_status_reachable{region=\"westus\"} 0",
        "tandem_gateway_region_status_reachable{region=\"eastus\"} 1",
        "tandem_client_breaker_state{region=\"westus\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in {metrics}"
        );
    }
}
