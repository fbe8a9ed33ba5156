//! The follower on paused time with a scripted pair.

use std::collections::VecDeque;
use std::sync::Mutex;

use tandem_core::{KeyHash, RegionConfig, ResourceKey};
use tandem_store::{Hlc, ProfileHeader, ProfileKind, ReplicatedResource, SpeakerChange, SpeakerOp};
use uuid::Uuid;

use super::*;
use crate::replication::wire::WireChange;
use tokio::time::Instant;

/// Answers pulls from a script; an exhausted script means the pair is unreachable.
#[derive(Default)]
struct Scripted {
    answers: Mutex<VecDeque<Result<PullResponse, LinkError>>>,
    pulls: Mutex<Vec<(u64, Duration)>>,
    pulled: tokio::sync::Notify,
}

impl Scripted {
    /// Waits until at least `n` pulls were made.
    async fn until_pulls(&self, n: usize) {
        loop {
            let notified = self.pulled.notified();
            if self.pulls.lock().unwrap().len() >= n {
                return;
            }
            notified.await;
        }
    }
}

#[async_trait::async_trait]
impl PairLink for Scripted {
    async fn pull(
        &self,
        after: u64,
        _limit: u32,
        wait: Duration,
    ) -> Result<PullResponse, LinkError> {
        self.pulls.lock().unwrap().push((after, wait));
        self.pulled.notify_waiters();
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Err(LinkError::Unreachable("connection refused".into())))
    }
}

pub(super) fn region(s: &str) -> RegionName {
    RegionName::new(s).unwrap()
}

fn repl() -> Arc<Replication> {
    let mut cfg = RegionConfig::new(region("westus"), "/unused".into());
    cfg.peers.push("eastus=http://127.0.0.1:9".parse().unwrap());
    cfg.pair = Some(region("eastus"));
    cfg.peer_secret = Some("x".repeat(32));
    cfg.replication.catchup_timeout_ms = 15_000;
    Arc::new(Replication::new(&cfg, cfg.peer_secret().unwrap()))
}

pub(super) async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let meta = format!("sqlite://{}", dir.path().join("t.db").display());
    let blobs = format!("file://{}", dir.path().join("blobs").display());
    let store = Store::open(&meta, &blobs).await.unwrap();
    (dir, store)
}

pub(super) fn resource(id: ResourceId, name: &str) -> ReplicatedResource {
    let hash: KeyHash = ResourceKey::generate().hash();
    ReplicatedResource {
        id,
        region: region("eastus"),
        name: name.into(),
        key1: hash,
        key2: ResourceKey::generate().hash(),
        concurrency_limit: 10,
        created_at: OffsetDateTime::now_utc(),
    }
}

pub(super) fn create(seq: u64, resource: ResourceId) -> WireChange {
    let now = OffsetDateTime::now_utc();
    WireChange {
        change: SpeakerChange {
            seq,
            hlc: Hlc(seq << 16),
            at: now,
            profile: ProfileHeader {
                id: Uuid::new_v4(),
                resource_id: resource,
                kind: ProfileKind::TextIndependentVerification,
                locale: "en-us".into(),
                created_at: now,
                hlc: Hlc(seq << 16),
            },
            op: SpeakerOp::Create,
        },
        audio: None,
    }
}

pub(super) fn answer(
    store_id: Uuid,
    head: u64,
    changes: Vec<WireChange>,
    resources: Vec<ReplicatedResource>,
) -> PullResponse {
    PullResponse {
        region: region("eastus"),
        store_id,
        head,
        changes,
        resources,
    }
}

fn follower(store: &Store, link: Arc<Scripted>, repl: Arc<Replication>) -> Follower {
    Follower::new(store.clone(), link, repl, Metrics::new("westus"), 20.0).unwrap()
}

#[test]
fn an_unreachable_pair_holds_speaker_traffic_until_the_catchup_timeout_exactly() {
    let cfg = tandem_core::ReplicationConfig {
        catchup_timeout_ms: 15_000,
        retry_base_ms: 250,
        retry_max_ms: 5_000,
        ..Default::default()
    };
    let t0 = Instant::now();
    let mut retry = Retry::new(&cfg, t0);
    // Every pull fails at once; the follower sleeps the delay it is given and tries again.
    let mut now = t0;
    let mut delays = Vec::new();
    let given_up_at = loop {
        let next = retry.failed(now, true);
        if next.give_up_catching_up {
            break now;
        }
        delays.push(next.delay.as_millis() as u64);
        now += next.delay;
    };
    // 250, 500, 1000, 2000, 4000, 5000, then cut to the deadline: 15 s exactly.
    assert_eq!(delays, [250, 500, 1000, 2000, 4000, 5000, 2250]);
    assert_eq!(given_up_at - t0, Duration::from_secs(15));
    // Once serving, the backoff is no longer cut short.
    assert_eq!(retry.failed(now, false).delay, Duration::from_millis(5_000));
    assert!(retry.succeeded(), "a success ends the run of failures");
    assert!(!retry.succeeded());
    assert_eq!(retry.failed(now, false).delay, Duration::from_millis(250));
}

#[tokio::test]
async fn a_run_that_cannot_reach_its_pair_serves_after_the_timeout() {
    let (_d, store) = store().await;
    let link = Arc::new(Scripted::default());
    let mut cfg = RegionConfig::new(region("westus"), "/unused".into());
    cfg.peers.push("eastus=http://127.0.0.1:9".parse().unwrap());
    cfg.pair = Some(region("eastus"));
    cfg.peer_secret = Some("x".repeat(32));
    cfg.replication.catchup_timeout_ms = 200;
    cfg.replication.retry_base_ms = 20;
    let repl = Arc::new(Replication::new(&cfg, cfg.peer_secret().unwrap()));
    assert!(
        repl.check_serving().is_err(),
        "a paired region starts catching up"
    );
    let mut states = repl.watch_state();
    let task = tokio::spawn(follower(&store, link.clone(), repl.clone()).run());
    states
        .wait_for(|s| *s == SpeakerState::Serving)
        .await
        .unwrap();
    assert!(
        link.pulls.lock().unwrap().len() >= 2,
        "it kept trying first"
    );
    assert!(repl.check_serving().is_ok());
    repl.begin_shutdown();
    task.await.unwrap();
}

#[tokio::test]
async fn catching_up_pages_without_waiting_then_long_polls() {
    let (_d, store) = store().await;
    let link = Arc::new(Scripted::default());
    let repl = repl();
    let id = ResourceId::random();
    let pair_store = Uuid::new_v4();
    {
        let mut a = link.answers.lock().unwrap();
        // Two pages: 1..=2 of a log whose head is 3, then 3.
        a.push_back(Ok(answer(
            pair_store,
            3,
            vec![create(1, id), create(2, id)],
            vec![resource(id, "contoso")],
        )));
        a.push_back(Ok(answer(
            pair_store,
            3,
            vec![create(3, id)],
            vec![resource(id, "contoso")],
        )));
        a.push_back(Ok(answer(
            pair_store,
            3,
            vec![],
            vec![resource(id, "contoso")],
        )));
    }
    let mut states = repl.watch_state();
    let task = tokio::spawn(follower(&store, link.clone(), repl.clone()).run());
    states
        .wait_for(|s| *s == SpeakerState::Serving)
        .await
        .unwrap();
    let cursor = store
        .meta
        .replication_cursor(&region("eastus"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((cursor.store_id, cursor.seq), (pair_store, 3));
    let listed = store
        .meta
        .list_profiles(id, ProfileKind::TextIndependentVerification, None, 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 3);
    // Its next pull, once serving, is a long poll.
    link.until_pulls(4).await;
    let pulls = link.pulls.lock().unwrap().clone();
    assert_eq!(pulls[0], (0, Duration::ZERO));
    assert_eq!(pulls[1], (2, Duration::ZERO));
    assert_eq!(
        pulls[2],
        (3, Duration::from_millis(5_000)),
        "serving: long poll"
    );
    repl.begin_shutdown();
    task.await.unwrap();
}

#[tokio::test]
async fn a_restarted_pair_log_is_followed_from_the_start_without_dropping_resources() {
    let (_d, store) = store().await;
    let link = Arc::new(Scripted::default());
    let repl = repl();
    let f = follower(&store, link.clone(), repl.clone());
    let (old, new) = (ResourceId::random(), ResourceId::random());
    let first = Uuid::new_v4();
    link.answers.lock().unwrap().push_back(Ok(answer(
        first,
        1,
        vec![create(1, old)],
        vec![resource(old, "old")],
    )));
    assert!(f.step(Duration::ZERO).await.unwrap());
    // The pair came back with a new, empty store: its first answer lists only a new resource.
    let second = Uuid::new_v4();
    {
        let mut a = link.answers.lock().unwrap();
        a.push_back(Ok(answer(second, 1, vec![], vec![resource(new, "new")])));
        a.push_back(Ok(answer(
            second,
            1,
            vec![create(1, new)],
            vec![resource(new, "new")],
        )));
    }
    assert!(f.step(Duration::ZERO).await.unwrap());
    let pulls = link.pulls.lock().unwrap().clone();
    assert_eq!(pulls[1].0, 1, "asked after the old cursor");
    assert_eq!(pulls[2].0, 0, "then from the start of the new log");
    let cursor = store
        .meta
        .replication_cursor(&region("eastus"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((cursor.store_id, cursor.seq), (second, 1));
    let kept = store
        .meta
        .export_resources(&region("eastus"))
        .await
        .unwrap();
    assert_eq!(kept.len(), 2, "a restarted pair adds, never wipes");
    // Unless a new resource takes an old one's name: the new store wins.
    let third = Uuid::new_v4();
    let renamed = ResourceId::random();
    link.answers.lock().unwrap().push_back(Ok(answer(
        third,
        0,
        vec![],
        vec![resource(renamed, "old")],
    )));
    link.answers.lock().unwrap().push_back(Ok(answer(
        third,
        0,
        vec![],
        vec![resource(renamed, "old")],
    )));
    assert!(f.step(Duration::ZERO).await.unwrap());
    let mut names: Vec<(String, bool)> = store
        .meta
        .export_resources(&region("eastus"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.id == renamed))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [("new".to_string(), false), ("old".to_string(), true)]
    );
}

#[tokio::test]
async fn inconsistent_answers_are_refused() {
    let (_d, store) = store().await;
    let link = Arc::new(Scripted::default());
    let f = follower(&store, link.clone(), repl());
    let mut wrong_region = answer(Uuid::new_v4(), 0, vec![], vec![]);
    wrong_region.region = region("centralus");
    let id = ResourceId::random();
    let mut foreign = resource(id, "contoso");
    foreign.region = region("centralus");
    let mut bad_key = create(1, id);
    bad_key.change.op = SpeakerOp::Enroll {
        enrollment: tandem_store::ReplicatedEnrollment {
            id: Uuid::new_v4(),
            created_at: OffsetDateTime::now_utc(),
            hlc: Hlc(1 << 16),
            audio_secs: 1.0,
            speech_secs: 1.0,
            audio_key: "../../etc/passwd".into(),
            embedding: vec![0.0; 4],
            passphrase: None,
        },
    };
    bad_key.audio = Some("AAAA".into());
    {
        let mut a = link.answers.lock().unwrap();
        a.push_back(Ok(wrong_region));
        a.push_back(Ok(answer(Uuid::new_v4(), 0, vec![], vec![foreign])));
        a.push_back(Ok(answer(
            Uuid::new_v4(),
            1,
            vec![bad_key],
            vec![resource(id, "contoso")],
        )));
    }
    for _ in 0..3 {
        let e = f.step(Duration::ZERO).await.unwrap_err();
        assert!(matches!(e, StepError::Invalid(_)), "{e}");
    }
    assert!(store
        .meta
        .replication_cursor(&region("eastus"))
        .await
        .unwrap()
        .is_none());
}

#[test]
fn backoff_doubles_to_its_cap() {
    let d: Vec<u64> = (1..=7)
        .map(|n| backoff(n, 250, 5_000).as_millis() as u64)
        .collect();
    assert_eq!(d, [250, 500, 1000, 2000, 4000, 5000, 5000]);
}
