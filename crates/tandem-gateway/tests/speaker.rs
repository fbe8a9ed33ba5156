//! The gateway forwards every speaker-recognition method over the speaker routes: the
//! configured region first, then the pair it names in `/.well-known/tandem`, which gets the
//! configured region's key. Both regions are small axum servers on 127.0.0.1:0.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request as AxumRequest;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde_json::json;
use tandem_client::{ClientConfig, Policy, RegionEntry, TandemClient};
use tandem_gateway::{router, Gateway};
use tower::ServiceExt;

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// The pair: echoes what it was sent, speaker routes only.
fn pair() -> Router {
    let echo = |req: AxumRequest| async move {
        let key = req.headers().get("ocp-apim-subscription-key").cloned();
        Json(json!({
            "method": req.method().as_str(),
            "path": req.uri().to_string(),
            "key": key.map(|k| k.to_str().unwrap().to_string()),
            "authorization": req.headers().contains_key("authorization"),
        }))
    };
    Router::new().route("/speaker-recognition/{*rest}", axum::routing::any(echo))
}

/// The primary: names its pair, serves STT, but cannot serve speaker calls (501: persistent).
fn primary(pair_endpoint: String) -> Router {
    let doc = json!({
        "region": "westus",
        "formatVersion": 1,
        "pair": {"region": "eastus", "endpoint": pair_endpoint},
        "services": {"speaker": {"state": "serving", "pairedWith": "eastus"}},
    });
    Router::new()
        .route("/.well-known/tandem", get(move || async move { Json(doc) }))
        .route(
            "/speaker-recognition/{*rest}",
            axum::routing::any(|| async { StatusCode::NOT_IMPLEMENTED }),
        )
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, String, serde_json::Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let region = resp
        .headers()
        .get("x-tandem-region")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (status, region, value)
}

#[tokio::test]
async fn speaker_calls_fail_over_to_the_discovered_pair_with_the_primarys_key() {
    let pair_endpoint = serve(pair()).await;
    let primary_endpoint = serve(primary(pair_endpoint)).await;
    let cfg = ClientConfig {
        regions: vec![RegionEntry {
            name: "westus".into(),
            endpoints: vec![primary_endpoint],
            key: Some("primary-key".into()),
            key_file: None,
            cid: None,
            voice_deployment_id: None,
        }],
        policy: Policy::default(),
        gateway_key: None,
        gateway_key_file: None,
    };
    let client = TandemClient::new(cfg).unwrap();
    let app = router(Arc::new(Gateway::new(client, Some("gw".into()), 1 << 20)));

    let verify = "/speaker-recognition/verification/text-independent/profiles/p1:verify?api-version=2021-09-05";
    let req = Request::post(verify)
        .header("ocp-apim-subscription-key", "gw")
        .header("content-type", "audio/wav")
        .body(Body::from("RIFF"))
        .unwrap();
    let (status, region, body) = send(&app, req).await;
    assert_eq!(
        (status, region.as_str()),
        (StatusCode::OK, "eastus"),
        "{body}"
    );
    assert_eq!(body["path"], verify);
    assert_eq!(
        body["key"], "primary-key",
        "the gateway key never leaves the gateway"
    );
    assert_eq!(body["authorization"], false);

    for (method, path) in [
        (
            "GET",
            "/speaker-recognition/verification/text-independent/profiles/p1?api-version=2021-09-05",
        ),
        (
            "DELETE",
            "/speaker-recognition/verification/text-independent/profiles/p1?api-version=2021-09-05",
        ),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("ocp-apim-subscription-key", "gw")
            .body(Body::empty())
            .unwrap();
        let (status, region, body) = send(&app, req).await;
        assert_eq!(
            (status, region.as_str()),
            (StatusCode::OK, "eastus"),
            "{body}"
        );
        assert_eq!(
            (body["method"].as_str(), body["path"].as_str()),
            (Some(method), Some(path))
        );
    }

    let req = Request::post(verify).body(Body::from("RIFF")).unwrap();
    let (status, _, _) = send(&app, req).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the gateway checks its own key"
    );

    let req = Request::get("/status").body(Body::empty()).unwrap();
    let (_, _, status) = send(&app, req).await;
    assert_eq!(status["regions"].as_array().unwrap().len(), 1);
    let speaker: Vec<_> = status["speaker_regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(speaker, ["westus", "eastus"]);
}
