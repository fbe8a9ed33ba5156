//! Two nodes of one region, one store: the follower runs on the lease holder only, and the
//! other takes over when the holder's lease lapses. Lease time is a controlled clock; the
//! tests wait on observable state (pulls, states), never on a sleep.

use std::sync::Mutex;

use tandem_core::RegionConfig;
use tokio::sync::Notify;
use uuid::Uuid;

use super::tests::{answer, create, region, resource, store};
use super::*;
use crate::replication::replication_lease_job;

/// A pair whose log is empty: answers every pull with head 0, after the pull's wait (a long
/// poll with nothing to report). Records `(limit, wait)` of each pull.
#[derive(Default)]
struct Quiet {
    store_id: Mutex<Option<Uuid>>,
    pulls: Mutex<Vec<(u32, Duration)>>,
    pulled: Notify,
}

impl Quiet {
    fn pulls(&self) -> Vec<(u32, Duration)> {
        self.pulls.lock().unwrap().clone()
    }

    /// Waits until a pull satisfies `f`.
    async fn until(&self, f: impl Fn(&(u32, Duration)) -> bool) {
        loop {
            let notified = self.pulled.notified();
            if self.pulls.lock().unwrap().iter().any(&f) {
                return;
            }
            notified.await;
        }
    }
}

#[async_trait::async_trait]
impl PairLink for Quiet {
    async fn pull(
        &self,
        _after: u64,
        limit: u32,
        wait: Duration,
    ) -> Result<PullResponse, LinkError> {
        self.pulls.lock().unwrap().push((limit, wait));
        self.pulled.notify_waiters();
        tokio::time::sleep(wait).await;
        let id = *self
            .store_id
            .lock()
            .unwrap()
            .get_or_insert_with(Uuid::new_v4);
        Ok(answer(id, 0, vec![], vec![]))
    }
}

/// Node `node` of westus, paired with eastus, with 1 s leases (renewed every 333 ms).
fn node(node: &str) -> Arc<Replication> {
    let mut cfg = RegionConfig::new(region("westus"), "/unused".into());
    cfg.peers.push("eastus=http://127.0.0.1:9".parse().unwrap());
    cfg.pair = Some(region("eastus"));
    cfg.peer_secret = Some("x".repeat(32));
    cfg.node_name = Some(node.into());
    cfg.job_lease_secs = 1;
    Arc::new(Replication::new(&cfg, cfg.peer_secret().unwrap()))
}

#[tokio::test]
async fn one_node_follows_the_pair_and_another_takes_over_when_its_lease_lapses() {
    let (_d, store) = store().await;
    let t0 = OffsetDateTime::now_utc();
    let now = Arc::new(Mutex::new(t0));
    let clock: super::Clock = {
        let now = now.clone();
        Arc::new(move || *now.lock().unwrap())
    };
    let start = |repl: Arc<Replication>, link: Arc<Quiet>| {
        let f = Follower::new(store.clone(), link, repl, Metrics::new("westus"), 20.0)
            .unwrap()
            .with_clock(clock.clone());
        tokio::spawn(f.run())
    };
    let job = replication_lease_job(&region("westus"));

    // Node A starts first: it takes the lease, catches up and long-polls the pair.
    let (repl_a, link_a) = (node("node-a"), Arc::new(Quiet::default()));
    let task_a = start(repl_a.clone(), link_a.clone());
    repl_a
        .watch_state()
        .wait_for(|s| *s == SpeakerState::Serving)
        .await
        .unwrap();
    link_a.until(|(_, wait)| !wait.is_zero()).await;
    let lease = store.meta.get_lease(&job).await.unwrap().unwrap();
    assert_eq!((lease.holder.as_str(), lease.generation), ("node-a", 1));
    assert_eq!(repl_a.status_json()["leader"], true);

    // Node B: the lease is live, so B only checks that the region caught up (one change at
    // most, no wait), then serves too, and pulls nothing more.
    let (repl_b, link_b) = (node("node-b"), Arc::new(Quiet::default()));
    let task_b = start(repl_b.clone(), link_b.clone());
    repl_b
        .watch_state()
        .wait_for(|s| *s == SpeakerState::Serving)
        .await
        .unwrap();
    assert_eq!(
        link_b.pulls(),
        [(1, Duration::ZERO)],
        "one probe, no following"
    );
    assert_eq!(repl_b.status_json()["leader"], false);

    // Node A dies (no release). Until its lease lapses, B leaves it; the clock then moves past
    // it and B's next try takes it over (generation 2) and follows: a long poll.
    task_a.abort();
    let _ = task_a.await;
    *now.lock().unwrap() = t0 + Duration::from_secs(2);
    link_b.until(|(_, wait)| !wait.is_zero()).await;
    let lease = store.meta.get_lease(&job).await.unwrap().unwrap();
    assert_eq!((lease.holder.as_str(), lease.generation), ("node-b", 2));
    assert_eq!(repl_b.status_json()["leader"], true);
    assert!(
        link_b
            .pulls()
            .iter()
            .all(|(_, wait)| *wait <= Duration::from_secs(1) / 3),
        "the holder's long polls end in time to extend its lease: {:?}",
        link_b.pulls()
    );

    // Shutting down, B releases the lease: another node can take it at once.
    repl_b.begin_shutdown();
    task_b.await.unwrap();
    assert_eq!(store.meta.get_lease(&job).await.unwrap(), None);
}

/// Two nodes on one store stamp speaker changes with their own HLC ([`tandem_store::HlcClock`],
/// one per process). Only the replication lease holder observes the pair's stamps, so after it
/// applied a change stamped ahead of this host's clock (the pair's clock runs 60 s ahead), a
/// reset on the holder is stamped past it, while an enrollment made afterwards on the other
/// node is stamped by the wall clock, below the reset: the store then records it born dead
/// (`hlc <= reset_hlc`), though the client made it after the reset returned.
///
/// The store prevents it: a speaker write observes the profile's stored stamps under the
/// speaker lock before it ticks.
#[tokio::test]
async fn an_enrollment_after_a_reset_on_another_node_stays_live() {
    use tandem_core::{KeyHash, ResourceKey};
    use tandem_store::{
        enrollment_audio_key, Cursor, Hlc, NewEnrollment, NewProfile, NewResource, ProfileKind,
    };

    let (dir, holder) = store().await;
    let other = Store::open(
        &format!("sqlite://{}", dir.path().join("t.db").display()),
        &format!("file://{}", dir.path().join("blobs").display()),
    )
    .await
    .unwrap();
    // The holder applies one change of the pair, stamped 60 s ahead of this host.
    let foreign = ResourceId::random();
    holder
        .meta
        .sync_foreign_resources(&region("eastus"), &[resource(foreign, "contoso")])
        .await
        .unwrap();
    let mut ahead = create(1, foreign).change;
    let future_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64 + 60_000;
    ahead.hlc = Hlc::from_parts(future_ms, 0);
    ahead.profile.hlc = ahead.hlc;
    let cursor = Cursor {
        store_id: Uuid::new_v4(),
        seq: 1,
    };
    holder
        .meta
        .apply_speaker_changes(&region("eastus"), cursor, &[ahead], 20.0)
        .await
        .unwrap();

    // A local profile: reset on the holder, then enrolled on the other node.
    let local = ResourceId::random();
    let key: KeyHash = ResourceKey::generate().hash();
    holder
        .meta
        .create_resource(NewResource {
            id: local,
            region: region("westus"),
            name: "local".into(),
            key1: key,
            key2: ResourceKey::generate().hash(),
            concurrency_limit: 10,
        })
        .await
        .unwrap();
    let kind = ProfileKind::TextIndependentVerification;
    let profile = Uuid::new_v4();
    holder
        .meta
        .create_profile(NewProfile {
            id: profile,
            resource_id: local,
            kind,
            locale: "en-us".into(),
        })
        .await
        .unwrap();
    holder
        .meta
        .reset_profile(local, kind, profile)
        .await
        .unwrap();
    let e = Uuid::new_v4();
    let after = other
        .meta
        .add_enrollment(
            local,
            kind,
            NewEnrollment {
                id: e,
                profile_id: profile,
                audio_secs: 3.0,
                speech_secs: 2.5,
                audio_key: enrollment_audio_key(local, profile, e),
                embedding: vec![1.0; 256],
                passphrase: None,
            },
            20.0,
        )
        .await
        .unwrap();
    assert_eq!(
        after.enrollments_count, 1,
        "the enrollment made after the reset is live"
    );
}
