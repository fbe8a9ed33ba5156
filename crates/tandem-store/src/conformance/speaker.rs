//! Conformance checks for speaker profiles and enrollments.

use uuid::Uuid;

use super::{fresh_region, new_resource};
use crate::{
    enrollment_audio_key, EnrollmentStatus, NewEnrollment, NewProfile, ProfileKind, Resource,
    Store, StoreError, TEXT_DEPENDENT_ENROLLMENTS,
};

const VERIFY: ProfileKind = ProfileKind::TextIndependentVerification;
const IDENTIFY: ProfileKind = ProfileKind::TextIndependentIdentification;
const PASSPHRASE: ProfileKind = ProfileKind::TextDependentVerification;

async fn resource(store: &Store, tag: &str) -> Resource {
    let region = fresh_region(tag);
    store
        .meta
        .create_resource(new_resource(&region, tag))
        .await
        .expect("create resource")
}

fn new_profile(r: &Resource, kind: ProfileKind) -> NewProfile {
    NewProfile {
        id: Uuid::new_v4(),
        resource_id: r.id,
        kind,
        locale: "en-us".into(),
    }
}

/// A unit vector along axis `axis` of 256.
fn axis(axis: usize) -> Vec<f32> {
    let mut v = vec![0.0; 256];
    v[axis] = 1.0;
    v
}

fn enrollment(r: &Resource, profile: Uuid, speech: f64, emb: Vec<f32>) -> NewEnrollment {
    let id = Uuid::new_v4();
    NewEnrollment {
        id,
        profile_id: profile,
        audio_secs: speech + 1.0,
        speech_secs: speech,
        audio_key: enrollment_audio_key(r.id, profile, id),
        embedding: emb,
        passphrase: None,
    }
}

/// Create, get, list (paged) and delete profiles; kinds are separate.
pub async fn speaker_profile_crud(store: &Store) {
    let m = &store.meta;
    let r = resource(store, "spcrud").await;
    let created = m
        .create_profile(new_profile(&r, VERIFY))
        .await
        .expect("create");
    assert_eq!(created.status, EnrollmentStatus::Enrolling);
    assert_eq!(created.enrollments_count, 0);
    assert!(created.signature.is_empty());
    assert_eq!(created.locale, "en-us");
    let got = m.get_profile(r.id, VERIFY, created.id).await.expect("get");
    assert_eq!(got.as_ref(), Some(&created), "get returns what create did");
    assert_eq!(
        m.get_profile(r.id, IDENTIFY, created.id)
            .await
            .expect("get"),
        None,
        "a verification profile is invisible to identification"
    );

    let mut ids = vec![created.id];
    for _ in 0..4 {
        ids.push(m.create_profile(new_profile(&r, VERIFY)).await.unwrap().id);
    }
    let all = m.list_profiles(r.id, VERIFY, None, 100).await.unwrap();
    assert_eq!(all.len(), 5);
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = m.list_profiles(r.id, VERIFY, after, 2).await.unwrap();
        assert!(page.len() <= 2, "limit is honoured");
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        paged.extend(page);
    }
    assert_eq!(paged, all, "paging walks the same list in order");
    assert!(m
        .list_profiles(r.id, IDENTIFY, None, 100)
        .await
        .unwrap()
        .is_empty());

    m.delete_profile(r.id, VERIFY, ids[0])
        .await
        .expect("delete");
    assert_eq!(m.get_profile(r.id, VERIFY, ids[0]).await.unwrap(), None);
    assert!(matches!(
        m.delete_profile(r.id, VERIFY, ids[0]).await,
        Err(StoreError::NotFound { .. })
    ));
    // Paging from a deleted anchor still works.
    let rest = m
        .list_profiles(r.id, VERIFY, Some(ids[0]), 100)
        .await
        .unwrap();
    assert_eq!(rest.len(), 4, "listing after a deleted anchor");
}

/// Enrollments accumulate, set the signature and status; reset clears them.
pub async fn speaker_enrollments_and_reset(store: &Store) {
    let m = &store.meta;
    let r = resource(store, "spenroll").await;
    let p = m.create_profile(new_profile(&r, IDENTIFY)).await.unwrap();
    let first = enrollment(&r, p.id, 12.0, axis(0));
    let after1 = m
        .add_enrollment(r.id, IDENTIFY, first.clone(), 20.0)
        .await
        .expect("enroll");
    assert_eq!(after1.enrollments_count, 1);
    assert_eq!(after1.status, EnrollmentStatus::Enrolling);
    assert!((after1.speech_secs - 12.0).abs() < 1e-9);
    assert!((after1.enrollments_secs - 13.0).abs() < 1e-9);
    assert_eq!(after1.signature, axis(0));

    let after2 = m
        .add_enrollment(r.id, IDENTIFY, enrollment(&r, p.id, 9.0, axis(1)), 20.0)
        .await
        .unwrap();
    assert_eq!(after2.enrollments_count, 2);
    assert_eq!(after2.status, EnrollmentStatus::Enrolled, "21 s ≥ 20 s");
    let h = std::f32::consts::FRAC_1_SQRT_2;
    assert!((after2.signature[0] - h).abs() < 1e-6 && (after2.signature[1] - h).abs() < 1e-6);
    assert_eq!(
        m.get_profile(r.id, IDENTIFY, p.id).await.unwrap().as_ref(),
        Some(&after2)
    );

    let list = m.list_enrollments(r.id, IDENTIFY, p.id).await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, first.id, "oldest first");
    assert_eq!(list[0].embedding, axis(0), "embedding round-trips");
    assert_eq!(list[0].audio_key, first.audio_key);

    let removed = m.reset_profile(r.id, IDENTIFY, p.id).await.expect("reset");
    assert_eq!(removed.len(), 2, "reset returns the removed enrollments");
    let reset = m.get_profile(r.id, IDENTIFY, p.id).await.unwrap().unwrap();
    assert_eq!(reset.enrollments_count, 0);
    assert_eq!(reset.status, EnrollmentStatus::Enrolling);
    assert!(reset.signature.is_empty() && reset.speech_secs == 0.0);
    assert!(m
        .list_enrollments(r.id, IDENTIFY, p.id)
        .await
        .unwrap()
        .is_empty());

    let unknown = Uuid::new_v4();
    assert!(matches!(
        m.add_enrollment(r.id, IDENTIFY, enrollment(&r, unknown, 5.0, axis(2)), 20.0)
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        m.reset_profile(r.id, IDENTIFY, unknown).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        m.list_enrollments(r.id, IDENTIFY, unknown).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// A profile of another resource is invisible: get, list, enroll, reset and delete all miss.
pub async fn speaker_tenant_isolation(store: &Store) {
    let m = &store.meta;
    let owner = resource(store, "spowner").await;
    let other = resource(store, "spother").await;
    let p = m.create_profile(new_profile(&owner, VERIFY)).await.unwrap();
    m.add_enrollment(
        owner.id,
        VERIFY,
        enrollment(&owner, p.id, 5.0, axis(3)),
        20.0,
    )
    .await
    .unwrap();
    assert_eq!(m.get_profile(other.id, VERIFY, p.id).await.unwrap(), None);
    assert!(m
        .list_profiles(other.id, VERIFY, None, 100)
        .await
        .unwrap()
        .is_empty());
    let nf = |r: Result<_, StoreError>| matches!(r, Err(StoreError::NotFound { .. }));
    assert!(nf(m
        .add_enrollment(
            other.id,
            VERIFY,
            enrollment(&other, p.id, 5.0, axis(4)),
            20.0
        )
        .await
        .map(|_| ())));
    assert!(nf(m
        .list_enrollments(other.id, VERIFY, p.id)
        .await
        .map(|_| ())));
    assert!(nf(m
        .reset_profile(other.id, VERIFY, p.id)
        .await
        .map(|_| ())));
    assert!(nf(m
        .delete_profile(other.id, VERIFY, p.id)
        .await
        .map(|_| ())));
    let still = m
        .get_profile(owner.id, VERIFY, p.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        still.enrollments_count, 1,
        "the owner's profile is untouched"
    );

    // Deleting the resource takes its profiles with it.
    assert!(m.delete_resource(owner.id).await.unwrap());
    assert_eq!(m.get_profile(owner.id, VERIFY, p.id).await.unwrap(), None);
}

/// A text-dependent profile: its own kind, `Enrolled` at [`TEXT_DEPENDENT_ENROLLMENTS`] live
/// enrollments whatever their speech, the passphrase is the earliest live enrollment's, an
/// enrollment with another passphrase is a conflict (and not stored), and reset clears it all.
pub async fn speaker_text_dependent_round_trip(store: &Store) {
    let m = &store.meta;
    let r = resource(store, "sptd").await;
    let p = m.create_profile(new_profile(&r, PASSPHRASE)).await.unwrap();
    assert_eq!(p.kind, PASSPHRASE);
    assert_eq!(p.passphrase, None);
    assert_eq!(
        m.get_profile(r.id, VERIFY, p.id).await.unwrap(),
        None,
        "a text-dependent profile is invisible to text-independent verification"
    );
    let phrase = "my voice is my passport, verify me";
    let said = |speech: f64, axis_: usize, text: &str| NewEnrollment {
        passphrase: Some(text.to_owned()),
        ..enrollment(&r, p.id, speech, axis(axis_))
    };
    let mut last = None;
    for i in 0..TEXT_DEPENDENT_ENROLLMENTS as usize {
        let got = m
            .add_enrollment(r.id, PASSPHRASE, said(1.5, i, phrase), 20.0)
            .await
            .expect("enroll");
        assert_eq!(got.passphrase.as_deref(), Some(phrase));
        assert_eq!(got.enrollments_count as usize, i + 1);
        let want = if i + 1 < TEXT_DEPENDENT_ENROLLMENTS as usize {
            EnrollmentStatus::Enrolling
        } else {
            EnrollmentStatus::Enrolled
        };
        assert_eq!(
            got.status,
            want,
            "after {} enrollments (4.5 s of speech)",
            i + 1
        );
        last = Some(got);
    }
    let last = last.unwrap();
    assert_eq!(
        m.get_profile(r.id, PASSPHRASE, p.id)
            .await
            .unwrap()
            .as_ref(),
        Some(&last),
        "get returns what the last enrollment did"
    );
    let list = m.list_enrollments(r.id, PASSPHRASE, p.id).await.unwrap();
    assert!(list.iter().all(|e| e.passphrase.as_deref() == Some(phrase)));

    let other = m
        .add_enrollment(
            r.id,
            PASSPHRASE,
            said(1.5, 9, "my password is not your business"),
            20.0,
        )
        .await;
    assert!(
        matches!(other, Err(StoreError::Conflict { .. })),
        "another passphrase: {other:?}"
    );
    assert_eq!(
        m.list_enrollments(r.id, PASSPHRASE, p.id)
            .await
            .unwrap()
            .len(),
        3,
        "the refused enrollment is not stored"
    );

    m.reset_profile(r.id, PASSPHRASE, p.id)
        .await
        .expect("reset");
    let reset = m
        .get_profile(r.id, PASSPHRASE, p.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reset.passphrase, None, "reset removes the passphrase");
    assert_eq!(reset.status, EnrollmentStatus::Enrolling);
    assert_eq!(reset.enrollments_count, 0);
    let again = m
        .add_enrollment(
            r.id,
            PASSPHRASE,
            said(1.5, 5, "my password is not your business"),
            20.0,
        )
        .await
        .expect("a new passphrase after reset");
    assert_eq!(
        again.passphrase.as_deref(),
        Some("my password is not your business")
    );
}
