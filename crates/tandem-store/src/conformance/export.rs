//! Conformance checks for the metadata export ([`MetadataExport`]) and import.
//!
//! The `export_*` checks that take one store work on a shared one (they use fresh regions and
//! look only at their own rows). `export_round_trip` and `export_restore_elsewhere` take a
//! populated-by-them `source` and a `target` that must be a fresh, empty store.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use tandem_core::{KeySlot, RegionName, ResourceKey};
use uuid::Uuid;

use super::{fresh_region, new_resource};
use crate::{
    enrollment_audio_key, AssetKind, AssetStatus, Cell, Cursor, MetadataExport, NewAsset,
    NewEnrollment, NewProfile, NewResource, ProfileKind, ReplicatedResource, Resource, Store,
    StoreError, TEXT_DEPENDENT_ENROLLMENTS,
};

const REQUIRED: f64 = 20.0;

/// What [`populate`] made.
struct Fixture {
    /// The store's own region and its resources (the first with its keys as created).
    local: RegionName,
    resources: Vec<NewResource>,
    /// The paired region, whose resources are replicated copies here.
    peer: RegionName,
    /// Assets of the first local resource: (kind, id).
    assets: Vec<(AssetKind, Uuid)>,
}

fn enrollment(
    r: &Resource,
    profile: Uuid,
    speech: f64,
    axis: usize,
    phrase: Option<&str>,
) -> NewEnrollment {
    let id = Uuid::new_v4();
    let mut embedding = vec![0.0f32; 256];
    embedding[axis % 256] = 1.0;
    NewEnrollment {
        id,
        profile_id: profile,
        audio_secs: speech + 0.25,
        speech_secs: speech,
        audio_key: enrollment_audio_key(r.id, profile, id),
        embedding,
        passphrase: phrase.map(str::to_owned),
    }
}

async fn profile(store: &Store, r: &Resource, kind: ProfileKind) -> Uuid {
    let p = NewProfile {
        id: Uuid::new_v4(),
        resource_id: r.id,
        kind,
        locale: "en-us".into(),
    };
    store
        .meta
        .create_profile(p)
        .await
        .expect("create profile")
        .id
}

/// Two local resources, two replicated ones of a peer region (with speaker data of their own),
/// profiles of every kind with enrollments, a reset and a deleted profile, assets of every
/// kind, and a cursor in the peer's log.
async fn populate(store: &Store, tag: &str) -> Fixture {
    let m = &store.meta;
    let (local, peer) = (fresh_region(tag), fresh_region(&format!("{tag}peer")));
    let mut resources = Vec::new();
    let mut created = Vec::new();
    for name in ["alpha", "beta"] {
        let new = new_resource(&local, name);
        created.push(
            m.create_resource(new.clone())
                .await
                .expect("create resource"),
        );
        resources.push(new);
    }
    let foreign: Vec<ReplicatedResource> = ["gamma", "delta"]
        .iter()
        .map(|name| {
            let n = new_resource(&peer, name);
            ReplicatedResource {
                id: n.id,
                region: peer.clone(),
                name: n.name,
                key1: n.key1,
                key2: n.key2,
                concurrency_limit: 7,
                created_at: time::OffsetDateTime::now_utc(),
            }
        })
        .collect();
    m.sync_foreign_resources(&peer, &foreign)
        .await
        .expect("sync foreign resources");
    let far = m
        .get_resource(foreign[0].id)
        .await
        .unwrap()
        .expect("foreign resource");
    let (a, b) = (&created[0], &created[1]);

    use ProfileKind::*;
    let p1 = profile(store, a, TextIndependentVerification).await;
    for (i, s) in [12.0, 9.5].into_iter().enumerate() {
        m.add_enrollment(
            a.id,
            TextIndependentVerification,
            enrollment(a, p1, s, i, None),
            REQUIRED,
        )
        .await
        .expect("enroll");
    }
    let p2 = profile(store, a, TextIndependentIdentification).await;
    m.add_enrollment(
        a.id,
        TextIndependentIdentification,
        enrollment(a, p2, 5.0, 3, None),
        REQUIRED,
    )
    .await
    .expect("enroll");
    m.reset_profile(a.id, TextIndependentIdentification, p2)
        .await
        .expect("reset");
    let p3 = profile(store, b, TextDependentVerification).await;
    for i in 0..TEXT_DEPENDENT_ENROLLMENTS as usize {
        let e = enrollment(b, p3, 1.5, i, Some("my voice is my passport"));
        m.add_enrollment(b.id, TextDependentVerification, e, REQUIRED)
            .await
            .expect("enroll passphrase");
    }
    let p4 = profile(store, b, TextIndependentVerification).await;
    m.delete_profile(b.id, TextIndependentVerification, p4)
        .await
        .expect("delete");
    let pf = profile(store, &far, TextIndependentVerification).await;
    m.add_enrollment(
        far.id,
        TextIndependentVerification,
        enrollment(&far, pf, 25.0, 9, None),
        REQUIRED,
    )
    .await
    .expect("enroll foreign");

    let mut assets = Vec::new();
    let kinds = AssetKind::ALL;
    for (i, kind) in kinds.into_iter().enumerate() {
        let new = NewAsset {
            id: Uuid::new_v4(),
            resource_id: a.id,
            kind,
            status: AssetStatus::Succeeded,
            display_name: format!("{kind} {i}"),
            description: (i % 2 == 0).then(|| "ünïcödé\nand a newline".to_owned()),
            locale: "en-US".into(),
            properties: json!({"acceptedLineCount": i}),
            doc: json!({"kind": kind.as_str(), "files": [{"key": "k", "size": 1.5}]}),
        };
        m.create_asset(new.clone()).await.expect("create asset");
        assets.push((kind, new.id));
    }
    m.create_asset(NewAsset {
        id: Uuid::new_v4(),
        resource_id: far.id,
        kind: AssetKind::Dataset,
        status: AssetStatus::Running,
        display_name: "foreign".into(),
        description: None,
        locale: "de-DE".into(),
        properties: json!({}),
        doc: json!({}),
    })
    .await
    .expect("create foreign asset");
    let cursor = Cursor {
        store_id: Uuid::new_v4(),
        seq: 42,
    };
    m.apply_speaker_changes(&peer, cursor, &[], REQUIRED)
        .await
        .expect("set cursor");
    Fixture {
        local,
        resources,
        peer,
        assets,
    }
}

/// The rows of `table` as column → cell maps.
fn rows<'a>(e: &'a MetadataExport, table: &str) -> Vec<BTreeMap<&'a str, &'a Cell>> {
    let t = e
        .table(table)
        .unwrap_or_else(|| panic!("export lacks {table}"));
    t.rows
        .iter()
        .map(|r| t.columns.iter().map(String::as_str).zip(r).collect())
        .collect()
}

fn text<'a>(row: &BTreeMap<&str, &'a Cell>, col: &str) -> &'a str {
    row[col]
        .as_text()
        .unwrap_or_else(|| panic!("{col} is not text: {:?}", row[col]))
}

/// Export → bytes → import into the empty `target` → export again: the same bytes. The target
/// keeps its own store id, and answers every query as the source does.
pub async fn export_round_trip(source: &Store, target: &Store) {
    let f = populate(source, "exrt").await;
    let export = source.meta.export_metadata().await.expect("export");
    let bytes = export.to_bytes();
    let parsed = MetadataExport::from_bytes(&bytes).expect("parse");
    assert_eq!(parsed, export);
    assert!(
        export.table("tandem_meta").is_none(),
        "tandem_meta is not exported"
    );
    assert!(export.table("_sqlx_migrations").is_none());
    let target_id = target.meta.store_id().await.unwrap();

    target.meta.import_metadata(&parsed).await.expect("import");
    let again = target.meta.export_metadata().await.expect("export target");
    assert!(
        again.to_bytes() == bytes,
        "re-export differs: {:?} vs {:?}",
        again.row_counts(),
        export.row_counts()
    );
    assert_eq!(again.digest(), export.digest());
    assert_eq!(
        target.meta.store_id().await.unwrap(),
        target_id,
        "the target keeps its identity"
    );
    assert_ne!(target_id, source.meta.store_id().await.unwrap());
    assert_eq!(
        target.meta.schema_version().await.unwrap(),
        export.schema_version
    );

    let (s, t) = (&source.meta, &target.meta);
    for region in [&f.local, &f.peer] {
        assert_eq!(
            t.list_resources(region).await.unwrap(),
            s.list_resources(region).await.unwrap()
        );
        assert_eq!(
            t.export_resources(region).await.unwrap(),
            s.export_resources(region).await.unwrap()
        );
    }
    let r = &f.resources[0];
    let (found, slot) = t
        .authenticate(&f.local, &r.key2)
        .await
        .unwrap()
        .expect("key works");
    assert_eq!((found.id, slot), (r.id, KeySlot::Key2));
    assert_eq!(
        t.speaker_digest().await.unwrap(),
        s.speaker_digest().await.unwrap()
    );
    assert_eq!(
        t.speaker_head().await.unwrap(),
        s.speaker_head().await.unwrap()
    );
    assert_eq!(
        t.speaker_changes(0, 1000).await.unwrap(),
        s.speaker_changes(0, 1000).await.unwrap()
    );
    assert_eq!(
        t.replication_cursor(&f.peer).await.unwrap(),
        s.replication_cursor(&f.peer).await.unwrap()
    );
    for (kind, id) in &f.assets {
        let got = t.get_asset(r.id, *kind, *id).await.unwrap();
        assert!(got.is_some(), "asset {kind} restored");
        assert_eq!(got, s.get_asset(r.id, *kind, *id).await.unwrap());
    }

    // The restored store goes on: its log continues, and its clock is past every imported stamp.
    let head = t.speaker_head().await.unwrap();
    let newest = t
        .speaker_changes(0, 1000)
        .await
        .unwrap()
        .iter()
        .map(|c| c.hlc)
        .max()
        .expect("changes");
    let res = t.get_resource(r.id).await.unwrap().expect("resource");
    profile(target, &res, ProfileKind::TextIndependentVerification).await;
    let next = t.speaker_changes(head, 10).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].seq, head + 1);
    assert!(next[0].hlc > newest, "new stamps follow the imported ones");

    // Now it is not empty: a second import is refused.
    let err = t.import_metadata(&parsed).await.expect_err("second import");
    assert!(matches!(err, StoreError::ImportRefused { .. }), "{err:?}");
}

/// A backup of one region restored into the empty `target` as another region, with new keys:
/// the local resources move, the pair's replicated data and the cursors are gone, old keys fail.
pub async fn export_restore_elsewhere(source: &Store, target: &Store) {
    let f = populate(source, "exre").await;
    let mut export = source.meta.export_metadata().await.expect("export");
    let new_region = fresh_region("exrenew");
    let done = export
        .retarget_region(&f.local, &new_region)
        .expect("retarget");
    assert_eq!(done.resources, 2);
    assert!(done.dropped_rows > 0);
    let mut issued = Vec::new();
    let replaced = export
        .replace_key_hashes(|r, s| {
            let k = ResourceKey::generate();
            let h = k.hash();
            issued.push((r, s, k));
            h
        })
        .expect("replace keys");
    assert_eq!(replaced, 4);
    let export = MetadataExport::from_bytes(&export.to_bytes()).expect("still valid");
    target.meta.import_metadata(&export).await.expect("import");

    let t = &target.meta;
    let moved = t.list_resources(&new_region).await.unwrap();
    let want: BTreeSet<_> = f.resources.iter().map(|r| (r.id, r.name.clone())).collect();
    let got: BTreeSet<_> = moved.iter().map(|r| (r.id, r.name.clone())).collect();
    assert_eq!(got, want);
    assert!(t.list_resources(&f.local).await.unwrap().is_empty());
    assert!(
        t.list_resources(&f.peer).await.unwrap().is_empty(),
        "the pair's copies are dropped"
    );
    assert_eq!(t.replication_cursor(&f.peer).await.unwrap(), None);
    for (r, slot, key) in &issued {
        let (found, s) = t
            .authenticate(&new_region, &key.hash())
            .await
            .unwrap()
            .expect("new key works");
        assert_eq!((found.id, s), (*r, *slot));
    }
    let old = &f.resources[0];
    assert!(
        t.authenticate(&new_region, &old.key1)
            .await
            .unwrap()
            .is_none(),
        "old keys are void"
    );
    let digest = t.speaker_digest().await.unwrap();
    assert_eq!(
        digest.profiles, 4,
        "the local profiles, tombstone included; not the foreign one"
    );
    for (kind, id) in &f.assets {
        assert!(
            t.get_asset(old.id, *kind, *id).await.unwrap().is_some(),
            "asset {kind}"
        );
    }
    let again = t.export_metadata().await.unwrap();
    assert_eq!(again, export, "exactly what was imported");
}

/// Two exports of unchanged data are byte-identical, parse back to themselves, and every
/// truncation or sampled bit flip of the bytes is refused.
pub async fn export_deterministic_and_strict(store: &Store) {
    populate(store, "exds").await;
    let a = store.meta.export_metadata().await.expect("export");
    let b = store.meta.export_metadata().await.expect("export");
    let bytes = a.to_bytes();
    assert!(bytes == b.to_bytes(), "two exports of the same data differ");
    assert_eq!(MetadataExport::from_bytes(&bytes).expect("parse"), a);
    let step = (bytes.len() / 300).max(1);
    let boundaries = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i + 1);
    for len in (0..bytes.len())
        .step_by(step)
        .chain(boundaries.filter(|l| *l < bytes.len()))
    {
        let err = MetadataExport::from_bytes(&bytes[..len]).expect_err("truncated export");
        assert!(
            matches!(err, StoreError::InvalidExport(_)),
            "length {len}: {err:?}"
        );
    }
    for (n, i) in (0..bytes.len()).step_by(step).enumerate() {
        let mut flipped = bytes.clone();
        flipped[i] ^= 1 << (n % 8);
        assert!(
            MetadataExport::from_bytes(&flipped).is_err(),
            "bit flip at byte {i} went unnoticed"
        );
    }
}

/// Import refuses a non-empty store, a newer or older schema, and an export whose tables are
/// not the store's, and changes nothing.
pub async fn export_import_refusals(store: &Store) {
    populate(store, "exrf").await;
    let m = &store.meta;
    let export = m.export_metadata().await.expect("export");
    let err = m
        .import_metadata(&export)
        .await
        .expect_err("non-empty store");
    assert!(
        matches!(&err, StoreError::ImportRefused { reason } if reason.contains("not empty")),
        "{err:?}"
    );
    let mut newer = export.clone();
    newer.schema_version += 1;
    let err = m.import_metadata(&newer).await.expect_err("newer schema");
    assert!(matches!(err, StoreError::FormatTooNew { .. }), "{err:?}");
    let mut older = export.clone();
    older.schema_version = crate::METADATA_IMPORTS_SINCE - 1;
    let err = m.import_metadata(&older).await.expect_err("older schema");
    assert!(matches!(err, StoreError::ImportRefused { .. }), "{err:?}");
    let mut short = export.clone();
    short.tables.pop();
    let err = m.import_metadata(&short).await.expect_err("missing table");
    assert!(matches!(err, StoreError::ImportRefused { .. }), "{err:?}");
    let after = m.export_metadata().await.expect("export");
    assert!(
        after.to_bytes() == export.to_bytes(),
        "a refused import changed the store"
    );
}

/// Exports taken while another task writes are each one consistent state: no resource without
/// both keys, no key, profile or enrollment without its parent, profile totals equal to their
/// enrollments, one log entry per write, and counts that only grow.
pub async fn export_consistent_under_writes(store: &Store) {
    const ROUNDS: usize = 30;
    let region = fresh_region("excw");
    let done = std::sync::atomic::AtomicBool::new(false);
    let writer = async {
        for i in 0..ROUNDS {
            let r = store
                .meta
                .create_resource(new_resource(&region, &format!("r{i}")))
                .await
                .expect("create");
            let p = profile(store, &r, ProfileKind::TextIndependentVerification).await;
            for j in 0..2 {
                let e = enrollment(&r, p, 4.0, i + j, None);
                store
                    .meta
                    .add_enrollment(r.id, ProfileKind::TextIndependentVerification, e, REQUIRED)
                    .await
                    .expect("enroll");
            }
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
    };
    let reader = async {
        let mut last = 0;
        let mut exports = 0;
        loop {
            let finished = done.load(std::sync::atomic::Ordering::SeqCst);
            let e = store.meta.export_metadata().await.expect("export");
            let n = check_consistent(&e, &region);
            assert!(n >= last, "an export went back in time: {n} < {last}");
            last = n;
            exports += 1;
            if finished {
                return (last, exports);
            }
        }
    };
    let ((), (last, exports)) = tokio::join!(writer, reader);
    assert_eq!(
        last, ROUNDS,
        "the export after the writer finished sees everything"
    );
    assert!(exports >= 2);
}

/// Checks the invariants of [`export_consistent_under_writes`] for `region`; returns how many
/// resources it has.
fn check_consistent(e: &MetadataExport, region: &RegionName) -> usize {
    let all = rows(e, "resources");
    let every: BTreeSet<&str> = all.iter().map(|r| text(r, "id")).collect();
    let resources: BTreeSet<&str> = all
        .iter()
        .filter(|r| text(r, "region") == region.as_str())
        .map(|r| text(r, "id"))
        .collect();
    let mut slots: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for k in rows(e, "resource_keys") {
        let owner = text(&k, "resource_id");
        assert!(
            every.contains(owner),
            "torn: a key of missing resource {owner}"
        );
        slots.entry(owner).or_default().push(text(&k, "slot"));
    }
    for r in &resources {
        assert_eq!(
            slots.get(r).map(Vec::as_slice),
            Some(&["key1", "key2"][..]),
            "torn: resource {r} keys"
        );
    }
    let mut profiles: BTreeMap<&str, i64> = BTreeMap::new();
    for p in rows(e, "speaker_profiles") {
        let owner = text(&p, "resource_id");
        assert!(
            every.contains(owner),
            "torn: a profile of missing resource {owner}"
        );
        if resources.contains(owner) {
            let Cell::Integer(n) = p["enrollments_count"] else {
                panic!("count")
            };
            profiles.insert(text(&p, "id"), *n);
        }
    }
    let every_profile: BTreeSet<&str> = rows(e, "speaker_profiles")
        .iter()
        .map(|p| text(p, "id"))
        .collect();
    let mut enrolled: BTreeMap<&str, i64> = BTreeMap::new();
    for en in rows(e, "speaker_enrollments") {
        let p = text(&en, "profile_id");
        assert!(
            every_profile.contains(p),
            "torn: an enrollment of missing profile {p}"
        );
        *enrolled.entry(text(&en, "profile_id")).or_default() += 1;
    }
    for (p, n) in &profiles {
        assert_eq!(
            enrolled.get(p).copied().unwrap_or(0),
            *n,
            "torn: profile {p} totals"
        );
    }
    let (mut creates, mut enrolls) = (0, 0);
    for c in rows(e, "speaker_changes") {
        if resources.contains(text(&c, "resource_id")) {
            match text(&c, "op") {
                "create" => creates += 1,
                "enroll" => enrolls += 1,
                op => panic!("unexpected op {op}"),
            }
        }
    }
    assert_eq!(creates, profiles.len(), "torn: one create per profile");
    assert_eq!(
        enrolls as i64,
        profiles.values().sum::<i64>(),
        "torn: one entry per enrollment"
    );
    resources.len()
}

/// An export of the oldest format this build still imports ([`crate::METADATA_IMPORTS_SINCE`],
/// an older backup) imports into an empty store of today's format, row for row, and the store
/// stays at today's format.
pub async fn export_imports_older_format(source: &Store, target: &Store) {
    populate(source, "exold").await;
    let mut export = source.meta.export_metadata().await.expect("export");
    let today = export.schema_version;
    export.schema_version = crate::METADATA_IMPORTS_SINCE;
    target
        .meta
        .import_metadata(&export)
        .await
        .expect("an export of the oldest supported format imports");
    let back = target.meta.export_metadata().await.expect("export");
    assert_eq!(back.schema_version, today);
    assert_eq!(back.row_counts(), export.row_counts());
}
