//! Keys and STS tokens are regional: black-box tests on two real regions.

mod common;
use common::*;

#[tokio::test]
async fn keys_and_tokens_work_only_in_their_own_region() {
    let (west, east) = tokio::join!(region("westus"), region("eastus"));
    let w = west.create_resource("app");
    let e = east.create_resource("app");
    let http = http();
    let voices = |base: &str| format!("{base}/cognitiveservices/voices/list");

    // Keys: each works at home, both slots.
    for key in [&w.key1, &w.key2] {
        let r = http
            .get(voices(&west.url))
            .header(KEY, key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = http
        .get(voices(&east.url))
        .header(KEY, &e.key1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // ...and nowhere else.
    let r = http
        .get(voices(&east.url))
        .header(KEY, &w.key1)
        .send()
        .await
        .unwrap();
    let msg = assert_azure_error(r, 401).await;
    assert!(msg.contains("regional"), "{msg}");
    let r = http
        .get(voices(&west.url))
        .header(KEY, &e.key2)
        .send()
        .await
        .unwrap();
    assert_azure_error(r, 401).await;

    // STS: a west token works in west only.
    let r = http
        .post(format!("{}/sts/v1.0/issueToken", west.url))
        .header(KEY, &w.key1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let token = r.text().await.unwrap();
    assert_eq!(token.split('.').count(), 3, "a JWT");
    let r = http
        .get(voices(&west.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .get(voices(&east.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_azure_error(r, 401).await;

    // issueToken wants a key, not a token, and not another region's key.
    let r = http
        .post(format!("{}/sts/v1.0/issueToken", west.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_azure_error(r, 401).await;
    let r = http
        .post(format!("{}/sts/v1.0/issueToken", east.url))
        .header(KEY, &w.key1)
        .send()
        .await
        .unwrap();
    assert_azure_error(r, 401).await;

    // No credentials at all.
    let r = http.get(voices(&west.url)).send().await.unwrap();
    assert_azure_error(r, 401).await;
    // The keys never reach the logs.
    for log in [west.log(), east.log()] {
        for k in [&w.key1, &w.key2, &e.key1, &e.key2, &token] {
            assert!(!log.contains(k.as_str()), "a secret leaked into the logs");
        }
    }
}

#[tokio::test]
async fn expired_forged_and_foreign_tokens_are_rejected() {
    let west = region("westus").await;
    let w = west.create_resource("app");
    let http = http();
    let voices = format!("{}/cognitiveservices/voices/list", west.url);
    let id: tandem_core::ResourceId = w.id.parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    // Signed with the region's real secret, but its 10 minutes ran out an hour ago.
    let expired = west.signer(600).issue(id, now - 3600);
    let r = http
        .get(&voices)
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    let msg = assert_azure_error(r, 401).await;
    assert!(msg.contains("expired"), "{msg}");
    // The same token issued now is fine: the only difference is time.
    let fresh = west.signer(600).issue(id, now);
    let r = http.get(&voices).bearer_auth(&fresh).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Forged: another secret.
    let forged =
        tandem_core::TokenSigner::new("westus".parse().unwrap(), b"not the secret".to_vec(), 600)
            .issue(id, now);
    let r = http.get(&voices).bearer_auth(&forged).send().await.unwrap();
    assert_azure_error(r, 401).await;
    // Garbage.
    let r = http
        .get(&voices)
        .bearer_auth("not-a-jwt")
        .send()
        .await
        .unwrap();
    assert_azure_error(r, 401).await;
    // A token for a resource that was deleted stops working at once.
    west.cli(&["resource", "delete", &w.id]);
    let r = http.get(&voices).bearer_auth(&fresh).send().await.unwrap();
    assert_azure_error(r, 401).await;
}
