//! Conformance checks for paired-region replication. Each check takes the two stores of a pair
//! (`a` and `b`, two regions) and drives them only through [`MetaStore`](crate::MetaStore),
//! shipping logs by hand the way a replicator would. [`SpeakerDigest`] covers a whole store, so
//! every check needs a fresh pair of stores.

use std::time::Duration;

use tandem_core::{KeySlot, RegionName};
use uuid::Uuid;

use super::{fresh_region, new_resource, random_hash};
use crate::{
    enrollment_audio_key, Applied, Cursor, EnrollmentStatus, NewEnrollment, NewProfile,
    ProfileKind, ReplicatedResource, Resource, SpeakerDigest, SpeakerOp, Store, StoreError,
};

const VERIFY: ProfileKind = ProfileKind::TextIndependentVerification;
const IDENTIFY: ProfileKind = ProfileKind::TextIndependentIdentification;
/// The speech a profile needs to be `Enrolled`, the same on both sides.
const REQUIRED: f64 = 20.0;

fn new_profile(r: &Resource, kind: ProfileKind) -> NewProfile {
    NewProfile {
        id: Uuid::new_v4(),
        resource_id: r.id,
        kind,
        locale: "en-us".into(),
    }
}

/// A unit vector along `axis` of 256.
fn axis(axis: usize) -> Vec<f32> {
    let mut v = vec![0.0; 256];
    v[axis % 256] = 1.0;
    v
}

fn enrollment(r: &Resource, profile: Uuid, speech: f64, emb: usize) -> NewEnrollment {
    let id = Uuid::new_v4();
    NewEnrollment {
        id,
        profile_id: profile,
        audio_secs: speech + 1.5,
        speech_secs: speech,
        audio_key: enrollment_audio_key(r.id, profile, id),
        embedding: axis(emb),
        passphrase: None,
    }
}

async fn enroll(s: &Store, r: &Resource, kind: ProfileKind, p: Uuid, speech: f64) -> NewEnrollment {
    let e = enrollment(r, p, speech, p.as_bytes()[0] as usize + speech as usize);
    s.meta
        .add_enrollment(r.id, kind, e.clone(), REQUIRED)
        .await
        .expect("enroll");
    e
}

/// Copies `region`'s resources from `from` to `to`.
async fn sync(from: &Store, to: &Store, region: &RegionName) {
    let list = from.meta.export_resources(region).await.expect("export");
    to.meta
        .sync_foreign_resources(region, &list)
        .await
        .expect("sync resources");
}

/// Ships `from`'s origin log (region `from_region`) to `to`, from `to`'s cursor, in pages.
async fn ship(from: &Store, to: &Store, from_region: &RegionName) -> Applied {
    let store_id = from.meta.store_id().await.expect("store_id");
    let mut after = match to
        .meta
        .replication_cursor(from_region)
        .await
        .expect("cursor")
    {
        Some(c) if c.store_id == store_id => c.seq,
        _ => 0,
    };
    let mut total = Applied::default();
    loop {
        let page = from.meta.speaker_changes(after, 3).await.expect("changes");
        let Some(last) = page.last() else { break };
        after = last.seq;
        let cursor = Cursor {
            store_id,
            seq: after,
        };
        let applied = to
            .meta
            .apply_speaker_changes(from_region, cursor, &page, REQUIRED)
            .await
            .expect("apply");
        total.changed += applied.changed;
        total.removed_audio.extend(applied.removed_audio);
    }
    total
}

async fn digests(a: &Store, b: &Store) -> (SpeakerDigest, SpeakerDigest) {
    (
        a.meta.speaker_digest().await.expect("digest a"),
        b.meta.speaker_digest().await.expect("digest b"),
    )
}

async fn live_ids(s: &Store, r: &Resource, kind: ProfileKind, p: Uuid) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = s
        .meta
        .list_enrollments(r.id, kind, p)
        .await
        .expect("list enrollments")
        .into_iter()
        .map(|e| e.id)
        .collect();
    ids.sort();
    ids
}

/// Enough wall-clock time that the next HLC on any store is above every one taken so far.
async fn next_millisecond() {
    tokio::time::sleep(Duration::from_millis(3)).await;
}

/// A's log shipped to B (after A's resources): same digest; B accepts A's keys under A's region
/// only, and serves A's profiles and enrollments exactly as A does; nothing lands in B's log.
pub async fn replication_ships_log(a: &Store, b: &Store) {
    let (ra, rb) = (fresh_region("repa"), fresh_region("repb"));
    let new = new_resource(&ra, "shipped");
    let r = a.meta.create_resource(new.clone()).await.expect("resource");
    let p1 = a
        .meta
        .create_profile(new_profile(&r, VERIFY))
        .await
        .unwrap();
    enroll(a, &r, VERIFY, p1.id, 12.0).await;
    enroll(a, &r, VERIFY, p1.id, 9.0).await;
    let p2 = a
        .meta
        .create_profile(new_profile(&r, IDENTIFY))
        .await
        .unwrap();
    let gone = enroll(a, &r, IDENTIFY, p2.id, 5.0).await;
    a.meta.reset_profile(r.id, IDENTIFY, p2.id).await.unwrap();
    enroll(a, &r, IDENTIFY, p2.id, 7.0).await;
    let p3 = a
        .meta
        .create_profile(new_profile(&r, VERIFY))
        .await
        .unwrap();
    a.meta.delete_profile(r.id, VERIFY, p3.id).await.unwrap();

    sync(a, b, &ra).await;
    let applied = ship(a, b, &ra).await;
    assert_eq!(
        applied.changed, 9,
        "every change of A's log did something on B"
    );
    assert_eq!(
        applied.removed_audio,
        vec![gone.audio_key],
        "the reset enrollment"
    );
    let (da, db) = digests(a, b).await;
    assert_eq!(da, db, "B holds exactly A's speaker data");
    assert_eq!((da.profiles, da.live_profiles), (3, 2));
    assert_eq!((da.enrollments, da.live_enrollments), (4, 3));

    let (found, slot) = b
        .meta
        .authenticate(&ra, &new.key1)
        .await
        .unwrap()
        .expect("B accepts A's key under A's region");
    assert_eq!((found.id, slot), (r.id, KeySlot::Key1));
    assert_eq!(found, r, "the resource is copied as it is at home");
    assert_eq!(b.meta.authenticate(&rb, &new.key1).await.unwrap(), None);

    for (kind, id) in [(VERIFY, p1.id), (IDENTIFY, p2.id)] {
        let at_a = a.meta.get_profile(r.id, kind, id).await.unwrap();
        assert!(at_a.is_some());
        assert_eq!(b.meta.get_profile(r.id, kind, id).await.unwrap(), at_a);
        assert_eq!(
            b.meta.list_enrollments(r.id, kind, id).await.unwrap(),
            a.meta.list_enrollments(r.id, kind, id).await.unwrap()
        );
        assert_eq!(
            b.meta.list_profiles(r.id, kind, None, 10).await.unwrap(),
            a.meta.list_profiles(r.id, kind, None, 10).await.unwrap()
        );
    }
    let p1_b = b
        .meta
        .get_profile(r.id, VERIFY, p1.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p1_b.status, EnrollmentStatus::Enrolled, "21 s ≥ 20 s");
    assert_eq!(b.meta.get_profile(r.id, VERIFY, p3.id).await.unwrap(), None);
    assert_eq!(
        b.meta.speaker_head().await.unwrap(),
        0,
        "applied changes are not re-logged"
    );
}

/// Applying the same batch again changes nothing; the cursor records the peer's store and seq.
pub async fn replication_idempotent(a: &Store, b: &Store) {
    let ra = fresh_region("idema");
    let r = a
        .meta
        .create_resource(new_resource(&ra, "idem"))
        .await
        .unwrap();
    let p = a
        .meta
        .create_profile(new_profile(&r, VERIFY))
        .await
        .unwrap();
    enroll(a, &r, VERIFY, p.id, 25.0).await;
    a.meta.reset_profile(r.id, VERIFY, p.id).await.unwrap();
    enroll(a, &r, VERIFY, p.id, 3.0).await;
    sync(a, b, &ra).await;
    assert_eq!(
        b.meta.replication_cursor(&ra).await.unwrap(),
        None,
        "none yet"
    );

    let batch = a.meta.speaker_changes(0, 100).await.unwrap();
    let head = a.meta.speaker_head().await.unwrap();
    assert_eq!(batch.last().map(|c| c.seq), Some(head));
    let cursor = Cursor {
        store_id: a.meta.store_id().await.unwrap(),
        seq: head,
    };
    let first = b
        .meta
        .apply_speaker_changes(&ra, cursor, &batch, REQUIRED)
        .await
        .unwrap();
    assert_eq!(first.changed, 4);
    let digest = b.meta.speaker_digest().await.unwrap();
    let again = b
        .meta
        .apply_speaker_changes(&ra, cursor, &batch, REQUIRED)
        .await
        .unwrap();
    assert_eq!(again, Applied::default(), "re-applying changes nothing");
    let mut reversed = batch.clone();
    reversed.reverse();
    let backwards = b
        .meta
        .apply_speaker_changes(&ra, cursor, &reversed, REQUIRED)
        .await
        .unwrap();
    assert_eq!(backwards.changed, 0, "in any order");
    assert_eq!(b.meta.speaker_digest().await.unwrap(), digest);
    assert_eq!(a.meta.speaker_digest().await.unwrap(), digest);
    assert_eq!(b.meta.replication_cursor(&ra).await.unwrap(), Some(cursor));
    assert_eq!(
        b.meta
            .replication_cursor(&fresh_region("other"))
            .await
            .unwrap(),
        None,
        "cursors are per peer"
    );
}

/// Both sides write to the same profiles while partitioned, then ship both ways (B's log
/// applied in reverse order): identical digests, and the merge rules decide what is live.
pub async fn replication_partition_converges(a: &Store, b: &Store) {
    let (ra, rb) = (fresh_region("parta"), fresh_region("partb"));
    let r = a
        .meta
        .create_resource(new_resource(&ra, "part"))
        .await
        .unwrap();
    let p = a
        .meta
        .create_profile(new_profile(&r, IDENTIFY))
        .await
        .unwrap();
    let q = a
        .meta
        .create_profile(new_profile(&r, VERIFY))
        .await
        .unwrap();
    let e1 = enroll(a, &r, IDENTIFY, p.id, 6.0).await;
    sync(a, b, &ra).await;
    ship(a, b, &ra).await;

    // Partition. B enrolls before A's reset, A enrolls and resets, then B enrolls after it.
    let e4 = enroll(b, &r, IDENTIFY, p.id, 4.0).await;
    next_millisecond().await;
    let e2 = enroll(a, &r, IDENTIFY, p.id, 8.0).await;
    a.meta.reset_profile(r.id, IDENTIFY, p.id).await.unwrap();
    next_millisecond().await;
    let e3 = enroll(b, &r, IDENTIFY, p.id, 22.0).await;
    // Delete on A against an enrollment on B.
    a.meta.delete_profile(r.id, VERIFY, q.id).await.unwrap();
    let e5 = enroll(b, &r, VERIFY, q.id, 30.0).await;
    // A profile born on B during the partition.
    let s = b
        .meta
        .create_profile(new_profile(&r, VERIFY))
        .await
        .unwrap();
    let e6 = enroll(b, &r, VERIFY, s.id, 21.0).await;

    let reset_hlc = a
        .meta
        .speaker_changes(0, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.op == SpeakerOp::Reset)
        .expect("A logged its reset")
        .hlc;
    let b_log = b.meta.speaker_changes(0, 100).await.unwrap();
    let hlc_of = |id: Uuid| {
        b_log
            .iter()
            .find_map(|c| match &c.op {
                SpeakerOp::Enroll { enrollment } if enrollment.id == id => Some(enrollment.hlc),
                _ => None,
            })
            .expect("B logged its enrollment")
    };
    assert!(
        hlc_of(e4.id) < reset_hlc && reset_hlc < hlc_of(e3.id),
        "test setup"
    );

    // A → B in order; B → A one change at a time, newest first.
    let to_b = ship(a, b, &ra).await;
    let mut reversed = b_log.clone();
    reversed.reverse();
    let cursor = Cursor {
        store_id: b.meta.store_id().await.unwrap(),
        seq: b.meta.speaker_head().await.unwrap(),
    };
    let mut to_a = Applied::default();
    for c in &reversed {
        let applied = a
            .meta
            .apply_speaker_changes(&rb, cursor, std::slice::from_ref(c), REQUIRED)
            .await
            .unwrap();
        to_a.changed += applied.changed;
        to_a.removed_audio.extend(applied.removed_audio);
    }
    // Five changes; newest first, the enrollment of S creates S, so S's own create finds it.
    assert_eq!(to_a.changed, 4, "B's partition writes were new to A");

    let (da, db) = digests(a, b).await;
    assert_eq!(da, db, "both sides converge");
    for side in [a, b] {
        assert_eq!(
            live_ids(side, &r, IDENTIFY, p.id).await,
            vec![e3.id],
            "a reset removes what was enrolled before it, not what came after it elsewhere"
        );
        let pp = side
            .meta
            .get_profile(r.id, IDENTIFY, p.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            pp.status,
            EnrollmentStatus::Enrolled,
            "22 s after the reset"
        );
        assert_eq!(pp.signature, e3.embedding);
        assert_eq!(
            side.meta.get_profile(r.id, VERIFY, q.id).await.unwrap(),
            None,
            "delete wins"
        );
        assert_eq!(live_ids(side, &r, VERIFY, s.id).await, vec![e6.id]);
    }
    assert_eq!(
        a.meta.get_profile(r.id, IDENTIFY, p.id).await.unwrap(),
        b.meta.get_profile(r.id, IDENTIFY, p.id).await.unwrap()
    );
    assert!(to_a.removed_audio.contains(&e4.audio_key), "born dead on A");
    assert!(
        to_a.removed_audio.contains(&e5.audio_key),
        "born dead under A's delete"
    );
    for key in [&e1.audio_key, &e4.audio_key, &e2.audio_key, &e5.audio_key] {
        assert!(to_b.removed_audio.contains(key), "B drops {key}");
    }
    assert!(!to_b.removed_audio.contains(&e3.audio_key));
    // Nothing was lost: every enrollment is still there, live or tombstoned.
    assert_eq!((da.enrollments, da.live_enrollments), (6, 2));
    assert_eq!((da.profiles, da.live_profiles), (3, 2));
}

/// Key rotation, limit changes and removals propagate; foreign resources stay in their region.
pub async fn replication_resource_sync(a: &Store, b: &Store) {
    let (ra, rb) = (fresh_region("rsa"), fresh_region("rsb"));
    let n1 = new_resource(&ra, "one");
    let r1 = a.meta.create_resource(n1.clone()).await.unwrap();
    let r2 = a
        .meta
        .create_resource(new_resource(&ra, "two"))
        .await
        .unwrap();
    let own = b
        .meta
        .create_resource(new_resource(&rb, "own"))
        .await
        .unwrap();
    let list = a.meta.export_resources(&ra).await.unwrap();
    assert_eq!(
        list.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![r1.id, r2.id]
    );
    assert_eq!((list[0].key1, list[0].key2), (n1.key1, n1.key2));

    let first = b.meta.sync_foreign_resources(&ra, &list).await.unwrap();
    assert_eq!((first.added, first.updated, first.removed), (2, 0, 0));
    assert_eq!(
        b.meta.list_resources(&ra).await.unwrap(),
        vec![r1.clone(), r2.clone()]
    );
    assert_eq!(
        b.meta.list_resources(&rb).await.unwrap(),
        vec![own],
        "never local"
    );
    let again = b.meta.sync_foreign_resources(&ra, &list).await.unwrap();
    assert_eq!((again.added, again.updated, again.removed), (0, 0, 0));

    // Rotation and a new limit at home.
    let rotated = random_hash();
    a.meta.set_key(r1.id, KeySlot::Key1, rotated).await.unwrap();
    a.meta.set_concurrency_limit(r1.id, 7).await.unwrap();
    // Speaker data under r2, shipped before r2 is deleted.
    let p = a
        .meta
        .create_profile(new_profile(&r2, VERIFY))
        .await
        .unwrap();
    enroll(a, &r2, VERIFY, p.id, 5.0).await;
    ship(a, b, &ra).await;
    assert!(b
        .meta
        .get_profile(r2.id, VERIFY, p.id)
        .await
        .unwrap()
        .is_some());
    assert!(a.meta.delete_resource(r2.id).await.unwrap());

    sync(a, b, &ra).await;
    assert_eq!(
        b.meta.authenticate(&ra, &n1.key1).await.unwrap(),
        None,
        "old key dead"
    );
    let (found, _) = b
        .meta
        .authenticate(&ra, &rotated)
        .await
        .unwrap()
        .expect("new key");
    assert_eq!(found.concurrency_limit, 7);
    assert!(b.meta.authenticate(&ra, &n1.key2).await.unwrap().is_some());
    assert_eq!(b.meta.get_resource(r2.id).await.unwrap(), None, "removed");
    assert_eq!(b.meta.get_profile(r2.id, VERIFY, p.id).await.unwrap(), None);
    let (da, db) = digests(a, b).await;
    assert_eq!(
        da, db,
        "the removal cascaded to the speaker data on both sides"
    );
    assert_eq!(db.profiles, 0);

    // Entries of another region are refused, and nothing of the batch is applied.
    let mut wrong = a.meta.export_resources(&ra).await.unwrap();
    wrong.push(ReplicatedResource {
        region: rb.clone(),
        ..wrong[0].clone()
    });
    assert!(matches!(
        b.meta.sync_foreign_resources(&ra, &wrong).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(b.meta.list_resources(&ra).await.unwrap().len(), 1);
}

/// A change whose resource is unknown fails the whole batch, cursor included.
pub async fn replication_unknown_resource(a: &Store, b: &Store) {
    let ra = fresh_region("unka");
    let known = a
        .meta
        .create_resource(new_resource(&ra, "known"))
        .await
        .unwrap();
    sync(a, b, &ra).await;
    let unknown = a
        .meta
        .create_resource(new_resource(&ra, "unknown"))
        .await
        .unwrap();
    let p = a
        .meta
        .create_profile(new_profile(&known, VERIFY))
        .await
        .unwrap();
    let q = a
        .meta
        .create_profile(new_profile(&unknown, VERIFY))
        .await
        .unwrap();
    let batch = a.meta.speaker_changes(0, 100).await.unwrap();
    let cursor = Cursor {
        store_id: a.meta.store_id().await.unwrap(),
        seq: 2,
    };
    let before = b.meta.speaker_digest().await.unwrap();
    assert!(matches!(
        b.meta
            .apply_speaker_changes(&ra, cursor, &batch, REQUIRED)
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        b.meta.speaker_digest().await.unwrap(),
        before,
        "nothing applied"
    );
    assert_eq!(b.meta.replication_cursor(&ra).await.unwrap(), None);
    assert_eq!(
        b.meta.get_profile(known.id, VERIFY, p.id).await.unwrap(),
        None
    );
    sync(a, b, &ra).await;
    ship(a, b, &ra).await;
    assert!(b
        .meta
        .get_profile(unknown.id, VERIFY, q.id)
        .await
        .unwrap()
        .is_some());
    let (da, db) = digests(a, b).await;
    assert_eq!(da, db);
}

/// Each store has its own random id, stable while it lives.
pub async fn replication_store_ids(a: &Store, b: &Store) {
    let ia = a.meta.store_id().await.expect("store_id");
    assert_eq!(a.meta.store_id().await.unwrap(), ia, "stable");
    assert_ne!(b.meta.store_id().await.unwrap(), ia, "distinct per store");
    assert!(!ia.is_nil());
}

/// The origin log pages by `seq`, carries what applying needs (even for enrollments since
/// reset), and holds local changes only.
pub async fn replication_log_paging(a: &Store, b: &Store) {
    let ra = fresh_region("loga");
    let r = a
        .meta
        .create_resource(new_resource(&ra, "log"))
        .await
        .unwrap();
    assert_eq!(a.meta.speaker_head().await.unwrap(), 0, "empty log");
    let p = a
        .meta
        .create_profile(new_profile(&r, IDENTIFY))
        .await
        .unwrap();
    let mut enrolled = Vec::new();
    for i in 0..5 {
        enrolled.push(enroll(a, &r, IDENTIFY, p.id, 1.0 + f64::from(i)).await);
    }
    a.meta.reset_profile(r.id, IDENTIFY, p.id).await.unwrap();

    let all = a.meta.speaker_changes(0, 100).await.unwrap();
    assert_eq!(all.len(), 7);
    let head = a.meta.speaker_head().await.unwrap();
    assert_eq!(all.last().map(|c| c.seq), Some(head));
    assert!(all
        .windows(2)
        .all(|w| w[0].seq < w[1].seq && w[0].hlc < w[1].hlc));
    assert_eq!(all[0].op, SpeakerOp::Create);
    assert_eq!(
        all[0].profile.hlc, all[0].hlc,
        "the header carries the creation HLC"
    );
    assert_eq!(all[0].profile.created_at, p.created_at);
    assert_eq!(all[6].op, SpeakerOp::Reset);
    for (c, e) in all[1..6].iter().zip(&enrolled) {
        let SpeakerOp::Enroll { enrollment } = &c.op else {
            panic!("expected an enroll, got {:?}", c.op)
        };
        assert_eq!(
            enrollment.id, e.id,
            "tombstoned enrollments are still carried"
        );
        assert_eq!(enrollment.hlc, c.hlc);
        assert_eq!(enrollment.embedding, e.embedding);
        assert_eq!(enrollment.audio_key, e.audio_key);
        assert_eq!(c.profile, all[0].profile, "every change carries the header");
    }

    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = a.meta.speaker_changes(after, 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = last.seq;
        paged.extend(page);
    }
    assert_eq!(paged, all, "paging walks the same log");
    assert!(a.meta.speaker_changes(head, 10).await.unwrap().is_empty());
    assert_eq!(
        a.meta.speaker_changes(all[3].seq, 10).await.unwrap(),
        all[4..]
    );

    sync(a, b, &ra).await;
    ship(a, b, &ra).await;
    assert!(
        b.meta.speaker_changes(0, 100).await.unwrap().is_empty(),
        "not re-logged"
    );
    let local = enroll(b, &r, IDENTIFY, p.id, 2.0).await;
    let b_log = b.meta.speaker_changes(0, 100).await.unwrap();
    assert_eq!(b_log.len(), 1, "only B's own change");
    assert!(matches!(&b_log[0].op, SpeakerOp::Enroll { enrollment } if enrollment.id == local.id));
    assert!(b_log[0].hlc > all[6].hlc, "B's clock observed A's changes");
}

/// A text-dependent profile with its passphrase crosses to the pair (through the JSON wire
/// form): same digest, `Enrolled` with the same passphrase on B; a reset on B crosses back and
/// clears the passphrase on A.
pub async fn replication_text_dependent(a: &Store, b: &Store) {
    const TD: ProfileKind = ProfileKind::TextDependentVerification;
    let (ra, rb) = (fresh_region("tda"), fresh_region("tdb"));
    let r = a
        .meta
        .create_resource(new_resource(&ra, "passphrases"))
        .await
        .expect("resource");
    let p = a.meta.create_profile(new_profile(&r, TD)).await.unwrap();
    let phrase = "be yourself everyone else is already taken";
    for i in 0..crate::TEXT_DEPENDENT_ENROLLMENTS as usize {
        let e = NewEnrollment {
            passphrase: Some(phrase.into()),
            ..enrollment(&r, p.id, 1.2, i)
        };
        a.meta.add_enrollment(r.id, TD, e, REQUIRED).await.unwrap();
    }
    let at_a = a.meta.get_profile(r.id, TD, p.id).await.unwrap().unwrap();
    assert_eq!(at_a.status, EnrollmentStatus::Enrolled);

    sync(a, b, &ra).await;
    let log = a.meta.speaker_changes(0, 100).await.unwrap();
    let wire = serde_json::to_string(&log).expect("serialize");
    assert!(wire.contains(phrase), "the passphrase travels");
    let log: Vec<crate::SpeakerChange> = serde_json::from_str(&wire).expect("deserialize");
    let cursor = Cursor {
        store_id: a.meta.store_id().await.unwrap(),
        seq: log.last().unwrap().seq,
    };
    b.meta
        .apply_speaker_changes(&ra, cursor, &log, REQUIRED)
        .await
        .expect("apply");
    let (da, db) = digests(a, b).await;
    assert_eq!(da, db, "B holds exactly A's text-dependent data");
    let at_b = b.meta.get_profile(r.id, TD, p.id).await.unwrap().unwrap();
    assert_eq!(at_b, at_a, "B serves the profile exactly as A does");
    assert_eq!(at_b.passphrase.as_deref(), Some(phrase));
    assert_eq!(
        b.meta.list_enrollments(r.id, TD, p.id).await.unwrap(),
        a.meta.list_enrollments(r.id, TD, p.id).await.unwrap()
    );

    // A reset taken by B (failover) comes back to A.
    next_millisecond().await;
    b.meta.reset_profile(r.id, TD, p.id).await.unwrap();
    ship(b, a, &rb).await;
    let (da, db) = digests(a, b).await;
    assert_eq!(da, db, "the reset converges");
    let at_a = a.meta.get_profile(r.id, TD, p.id).await.unwrap().unwrap();
    assert_eq!(at_a.passphrase, None);
    assert_eq!(at_a.status, EnrollmentStatus::Enrolling);
}
