//! Unit tests of the speaker routes' helpers: services, api-version, profile JSON.

use super::*;

fn q(pairs: &[(&str, &str)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn service_and_api_version() {
    let ok = q(&[("api-version", API_VERSION)]);
    assert_eq!(
        service("verification", &ok).unwrap(),
        ProfileKind::TextIndependentVerification
    );
    assert_eq!(
        service("identification", &q(&[("API-Version", API_VERSION)])).unwrap(),
        ProfileKind::TextIndependentIdentification
    );
    assert_eq!(service("other", &ok).unwrap_err().status().as_u16(), 404);
    for bad in [q(&[]), q(&[("api-version", "2020-01-01")])] {
        let e = service("verification", &bad).unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
        assert!(e.to_string().contains("api-version"));
    }
}

#[test]
fn remaining_speech_never_goes_negative() {
    let now = time::OffsetDateTime::now_utc();
    let mut p = SpeakerProfile {
        id: Uuid::nil(),
        resource_id: tandem_core::ResourceId(Uuid::nil()),
        kind: ProfileKind::TextIndependentVerification,
        locale: "en-us".into(),
        created_at: now,
        updated_at: now,
        enrollments_count: 1,
        enrollments_secs: 14.0,
        speech_secs: 12.34,
        status: tandem_store::EnrollmentStatus::Enrolling,
        signature: Vec::new(),
        passphrase: None,
    };
    assert_eq!(profile_json(&p)["remainingEnrollmentsSpeechLength"], 7.66);
    assert_eq!(profile_json(&p)["enrollmentsSpeechLength"], 12.34);
    p.speech_secs = 31.0;
    assert_eq!(profile_json(&p)["remainingEnrollmentsSpeechLength"], 0.0);
    assert_eq!(profile_json(&p)["profileStatus"], "Active");
}

#[test]
fn text_dependent_profile_counts_enrollments() {
    let now = time::OffsetDateTime::now_utc();
    let mut p = SpeakerProfile {
        id: Uuid::nil(),
        resource_id: tandem_core::ResourceId(Uuid::nil()),
        kind: ProfileKind::TextDependentVerification,
        locale: "en-us".into(),
        created_at: now,
        updated_at: now,
        enrollments_count: 1,
        enrollments_secs: 2.5,
        speech_secs: 1.75,
        status: tandem_store::EnrollmentStatus::Enrolling,
        signature: Vec::new(),
        passphrase: Some("my name is unknown to you".into()),
    };
    let v = profile_json(&p);
    assert_eq!(v["remainingEnrollmentsCount"], 2);
    assert!(v.get("profileStatus").is_none());
    assert!(v.get("remainingEnrollmentsSpeechLength").is_none());
    assert_eq!(v["enrollmentsSpeechLength"], 1.75);
    p.enrollments_count = 7;
    assert_eq!(profile_json(&p)["remainingEnrollmentsCount"], 0);
}

#[test]
fn text_dependent_service_is_verification_only() {
    let ok = q(&[("api-version", API_VERSION)]);
    assert_eq!(
        td_service("verification", &ok).unwrap(),
        ProfileKind::TextDependentVerification
    );
    assert_eq!(
        td_service("identification", &ok)
            .unwrap_err()
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        td_service("verification", &q(&[]))
            .unwrap_err()
            .status()
            .as_u16(),
        400
    );
    assert_eq!(
        profiles_path(ProfileKind::TextDependentVerification),
        "/speaker-recognition/verification/text-dependent/profiles"
    );
}
