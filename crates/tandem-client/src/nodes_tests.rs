//! Regions served by several nodes (issue #10), through [`TandemClient`] over the scripted fake
//! transport on paused tokio time: westus has two nodes (transport indices 0 and 1), eastus
//! one (index 2).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast::Receiver;
use tokio::time::sleep;

use crate::fake::{Fake, Step};
use crate::*;

const A: &str = "http://10.0.0.1:5001";
const B: &str = "http://10.0.0.2:5001";
const EAST: &str = "http://10.0.1.1:5001";

fn config(tweak: impl FnOnce(&mut Policy)) -> ClientConfig {
    let text = format!(
        r#"
        [[regions]]
        name = "westus"
        endpoints = ["{A}", "{B}"]
        key = "key0"

        [[regions]]
        name = "eastus"
        endpoint = "{EAST}"
        key = "key1"

        [policy]
        breaker_jitter = 0.0
        "#
    );
    let mut cfg = ClientConfig::from_toml(&text).unwrap();
    tweak(&mut cfg.policy);
    cfg
}

fn client(tweak: impl FnOnce(&mut Policy)) -> (TandemClient, Arc<Fake>) {
    let fake = Arc::new(Fake::new(3));
    let c = TandemClient::with_transport(config(tweak), fake.clone()).unwrap();
    (c, fake)
}

fn events(rx: &mut Receiver<ClientEvent>) -> Vec<ClientEvent> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

async fn stt(c: &TandemClient) -> Result<Answered<serde_json::Value>> {
    c.recognize(Bytes::from_static(b"RIFF"), &RecognizeOptions::default())
        .await
}

fn slots(fake: &Fake) -> Vec<usize> {
    fake.data_seen().iter().map(|s| s.region).collect()
}

fn is_region_event(e: &ClientEvent) -> bool {
    matches!(e, ClientEvent::Failover { .. } | ClientEvent::Trip { .. })
}

#[test]
fn a_region_takes_endpoint_or_endpoints_but_not_both_nor_none() {
    let cfg = config(|_| {});
    assert_eq!(cfg.regions[0].endpoints(), vec![A, B]);
    assert_eq!(cfg.regions[1].endpoints(), vec![EAST]);
    // Written back as it was read.
    let text = toml::to_string(&cfg).unwrap();
    assert!(
        text.contains(&format!("endpoints = [\"{A}\", \"{B}\"]")),
        "{text}"
    );
    assert!(text.contains(&format!("endpoint = \"{EAST}\"")), "{text}");
    let again = ClientConfig::from_toml(&text).unwrap();
    assert_eq!(again.regions[0].endpoints, cfg.regions[0].endpoints);

    let region = |lines: &str| format!("[[regions]]\nname = 'w'\nkey = 'k'\n{lines}\n");
    for (bad, why) in [
        (
            "endpoint = 'http://a'\nendpoints = ['http://b']",
            "not both",
        ),
        ("", "at least one"),
        ("endpoints = []", "at least one"),
        ("endpoint = 'http://a http://b'", "not one URL"),
        ("endpoints = ['http://a', 'ftp://b']", "http:// or https://"),
        ("endpoints = ['http://a', 'http://a/']", "listed twice"),
    ] {
        let err = ClientConfig::from_toml(&region(bad))
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{bad:?}: {err}");
    }
    let one = ClientConfig::from_toml(&region("endpoints = ['http://a']")).unwrap();
    assert_eq!(one.regions[0].endpoints(), vec!["http://a"]);
}

#[tokio::test(start_paused = true)]
async fn calls_go_round_robin_over_the_nodes_with_one_token() {
    let (c, fake) = client(|_| {});
    let mut nodes = Vec::new();
    for _ in 0..4 {
        let a = stt(&c).await.unwrap();
        assert_eq!(
            (a.region.as_str(), a.attempts, a.failovers),
            ("westus", 1, 0)
        );
        nodes.push(a.node);
    }
    assert_eq!(nodes, [A, B, A, B]);
    assert_eq!(slots(&fake), [0, 1, 0, 1]);
    // The token node A issued is used on node B too: the nodes share the region's secret.
    let seen = fake.data_seen();
    assert!(seen
        .iter()
        .all(|s| s.auth.as_deref() == Some("Bearer tok-0-1")));
    assert_eq!((fake.issued(0), fake.issued(1)), (1, 0));
    let status = c.status();
    assert_eq!(status[0].endpoint, A);
    assert_eq!(status[0].nodes.len(), 2);
    assert!(status[0].nodes.iter().all(|n| n.in_rotation));
    assert!(
        status[1].nodes.is_empty(),
        "a one-node region has no node breaker"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dead_node_fails_no_call_is_ejected_and_comes_back() {
    let (c, fake) = client(|_| {});
    let mut rx = c.subscribe();
    fake.set_ready(0, false);
    fake.script(
        0,
        std::iter::repeat_n(Step::Fail(TransportError::Refused), 100),
    );
    for _ in 0..20 {
        let a = stt(&c).await.unwrap();
        assert_eq!(
            (a.region.as_str(), a.node.as_str(), a.failovers),
            ("westus", B, 0)
        );
    }
    let evs = events(&mut rx);
    assert!(!evs.iter().any(is_region_event), "{evs:?}");
    let hops = evs
        .iter()
        .filter(|e| matches!(e, ClientEvent::NodeRetry { from, to, .. } if from == A && to == B))
        .count();
    assert_eq!(hops, 5, "node A is ejected after 5 consecutive faults");
    assert!(evs.contains(&ClientEvent::NodeEjected {
        region: "westus".into(),
        node: A.into(),
        open_for: Duration::from_secs(1),
    }));
    // Ejected: only node B sees calls now.
    assert_eq!(fake.data_seen().iter().filter(|s| s.region == 0).count(), 5);
    let status = c.status();
    assert_eq!(status[0].state, BreakerState::Closed, "the region is fine");
    assert_eq!(status[0].consecutive_failures, 0);
    assert_eq!(status[0].nodes[0].state, BreakerState::Open);
    assert!(status[0].nodes[1].in_rotation);
    let m = c.render_metrics();
    assert!(
        m.contains(&format!(
            r#"tandem_client_node_ejected{{node="{A}",region="westus"}} 1"#
        )),
        "{m}"
    );
    assert!(m.contains("tandem_client_failovers_total 0"), "{m}");

    // The probe after 1 s fails (still not ready): ejected again, for 2 s.
    sleep(Duration::from_millis(1200)).await;
    assert!(events(&mut rx).contains(&ClientEvent::NodeEjected {
        region: "westus".into(),
        node: A.into(),
        open_for: Duration::from_secs(2),
    }));
    // Node A comes back; the first good probe re-admits it.
    fake.data.lock().unwrap()[0].clear();
    fake.set_ready(0, true);
    sleep(Duration::from_millis(2500)).await;
    assert!(events(&mut rx).contains(&ClientEvent::NodeReadmitted {
        region: "westus".into(),
        node: A.into(),
    }));
    assert!(c.status()[0].nodes[0].in_rotation);
    let mut nodes = Vec::new();
    for _ in 0..4 {
        nodes.push(stt(&c).await.unwrap().node);
    }
    assert_eq!(nodes.iter().filter(|n| *n == A).count(), 2, "{nodes:?}");
    assert!(c.render_metrics().contains(&format!(
        r#"tandem_client_node_ejected{{node="{A}",region="westus"}} 0"#
    )));
}

#[tokio::test(start_paused = true)]
async fn a_5xx_moves_to_the_other_node_at_once_without_backoff() {
    let (c, fake) = client(|_| {});
    let mut rx = c.subscribe();
    fake.script(0, [Step::Status(503)]);
    let a = stt(&c).await.unwrap();
    assert_eq!((a.node.as_str(), a.attempts, a.failovers), (B, 2, 0));
    let evs = events(&mut rx);
    assert!(
        !evs.iter().any(|e| matches!(e, ClientEvent::Retry { .. })),
        "{evs:?}"
    );
    assert!(evs.contains(&ClientEvent::NodeRetry {
        region: "westus".into(),
        from: A.into(),
        to: B.into(),
    }));
    // A 429 is not a node's fault: retried with backoff (on the next node in turn).
    fake.script(0, [Step::RetryAfter(429, 0)]);
    let a = stt(&c).await.unwrap();
    assert_eq!((a.attempts, a.failovers), (2, 0));
    assert!(events(&mut rx)
        .iter()
        .any(|e| matches!(e, ClientEvent::Retry { region, .. } if region == "westus")));
}

#[tokio::test(start_paused = true)]
async fn a_hung_node_costs_one_timeout_and_is_ejected_at_once() {
    let (c, fake) = client(|_| {});
    let mut rx = c.subscribe();
    fake.script(0, [Step::Hang]);
    let a = stt(&c).await.unwrap();
    assert_eq!(
        (a.region.as_str(), a.node.as_str(), a.attempts),
        ("westus", B, 2)
    );
    let evs = events(&mut rx);
    assert!(evs
        .iter()
        .any(|e| matches!(e, ClientEvent::NodeEjected { node, .. } if node == A)));
    assert!(!evs.iter().any(is_region_event), "{evs:?}");
    assert_eq!(stt(&c).await.unwrap().node, B, "ejected node A is skipped");
}

#[tokio::test(start_paused = true)]
async fn a_token_fetched_through_a_dead_node_comes_from_the_other() {
    let (c, fake) = client(|_| {});
    fake.script_sts(0, [Step::Fail(TransportError::Refused)]);
    let a = stt(&c).await.unwrap();
    assert_eq!((a.node.as_str(), a.attempts), (B, 2));
    let seen = fake.data_seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].region, seen[0].auth.as_deref()),
        (1, Some("Bearer tok-1-1"))
    );
    // Node A answers again: it gets node B's token, no new one.
    assert_eq!(stt(&c).await.unwrap().node, A);
    let last = fake.data_seen().pop().unwrap();
    assert_eq!(
        (last.region, last.auth.as_deref()),
        (0, Some("Bearer tok-1-1"))
    );
}

#[tokio::test(start_paused = true)]
async fn every_node_dead_fails_the_region_over_as_before() {
    let (c, fake) = client(|_| {});
    let mut rx = c.subscribe();
    fake.set_ready(0, false);
    fake.set_ready(1, false);
    for slot in [0, 1] {
        fake.script(
            slot,
            std::iter::repeat_n(Step::Fail(TransportError::Refused), 100),
        );
    }
    let a = stt(&c).await.unwrap();
    assert_eq!((a.region.as_str(), a.node.as_str()), ("eastus", EAST));
    assert_eq!((a.attempts, a.failovers), (3, 1), "both nodes, then eastus");
    for _ in 0..4 {
        assert_eq!(stt(&c).await.unwrap().region, "eastus");
    }
    let evs = events(&mut rx);
    assert!(evs.contains(&ClientEvent::Failover {
        from: "westus".into(),
        to: "eastus".into()
    }));
    assert!(evs.contains(&ClientEvent::Trip {
        region: "westus".into(),
        open_for: Duration::from_secs(1)
    }));
    assert_eq!(c.status()[0].state, BreakerState::Open);
    let before = fake.data_seen().len();
    assert_eq!(stt(&c).await.unwrap().region, "eastus");
    assert_eq!(
        fake.data_seen().len(),
        before + 1,
        "an open region is skipped"
    );

    // Both nodes come back: the region recovers and fails back as a one-node region does.
    for slot in [0, 1] {
        fake.data.lock().unwrap()[slot].clear();
        fake.set_ready(slot, true);
    }
    sleep(Duration::from_secs(15)).await;
    let evs = events(&mut rx);
    assert!(evs.contains(&ClientEvent::Failback {
        to: "westus".into()
    }));
    assert!(c.status()[0].nodes.iter().all(|n| n.in_rotation), "{evs:?}");
    let a = stt(&c).await.unwrap();
    assert_eq!((a.region.as_str(), a.failovers), ("westus", 0));
}

#[tokio::test(start_paused = true)]
async fn with_every_node_ejected_calls_still_reach_them_until_the_region_trips() {
    let (c, fake) = client(|_| {});
    // Node A dies and is ejected; then node B dies too.
    fake.script(
        0,
        std::iter::repeat_n(Step::Fail(TransportError::Refused), 5),
    );
    for _ in 0..5 {
        assert_eq!(stt(&c).await.unwrap().node, B);
    }
    assert!(!c.status()[0].nodes[0].in_rotation);
    fake.script(1, std::iter::repeat_n(Step::Status(503), 15));
    // Node B alone: three rounds of one try each, then eastus. After five faults it is
    // ejected too, and with no node in rotation the calls go to both again (A answers now).
    let a = stt(&c).await.unwrap();
    assert_eq!((a.region.as_str(), a.attempts), ("eastus", 4));
    let a = stt(&c).await.unwrap();
    assert_eq!(a.region, "westus");
    assert!(c.status()[0].nodes.iter().all(|n| !n.in_rotation));
    let a = stt(&c).await.unwrap();
    assert_eq!(a.region, "westus", "panic mode: every node is tried");
}
