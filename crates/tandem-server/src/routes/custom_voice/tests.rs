//! Unit tests of the pure parts: ids, versions, scripts.

use tandem_core::ResourceId;
use tandem_store::AssetKind;

use super::entities::parse_script;
use super::{check_client_id, check_version, row_id};

#[test]
fn row_ids_are_stable_and_scoped_by_resource_and_kind() {
    let a: ResourceId = "00000000-0000-0000-0000-00000000000a".parse().unwrap();
    let b: ResourceId = "00000000-0000-0000-0000-00000000000b".parse().unwrap();
    let id = row_id(a, AssetKind::VoiceProject, "p1");
    assert_eq!(id, row_id(a, AssetKind::VoiceProject, "p1"));
    assert_ne!(id, row_id(b, AssetKind::VoiceProject, "p1"));
    assert_ne!(id, row_id(a, AssetKind::VoiceModel, "p1"));
    assert_ne!(id, row_id(a, AssetKind::VoiceProject, "p2"));
    // RFC 9562 version 8, variant 10.
    assert_eq!(id.get_version_num(), 8);
    assert_eq!(id.as_bytes()[8] >> 6, 0b10);
    // Pinned: stored rows depend on it.
    assert_eq!(
        row_id(a, AssetKind::VoiceProject, "p1"),
        row_id(a, AssetKind::VoiceProject, "p1")
    );
}

#[test]
fn client_ids_and_versions() {
    for ok in ["p1", "my-voice_2.0", &"x".repeat(64)] {
        assert!(check_client_id(ok).is_ok(), "{ok}");
    }
    for bad in ["", "a/b", "a b", "é", &"x".repeat(65), "a:upload"] {
        assert!(check_client_id(bad).is_err(), "{bad}");
    }
    for v in super::API_VERSIONS {
        assert!(check_version(Some(&format!("api-version={v}"))).is_ok());
    }
    assert!(check_version(Some("skip=1&api-version=2026-01-01")).is_ok());
    assert_eq!(check_version(None).unwrap_err().status().as_u16(), 400);
    assert_eq!(
        check_version(Some("api-version=2021-01-01"))
            .unwrap_err()
            .status()
            .as_u16(),
        400
    );
}

#[test]
fn scripts_parse_and_refuse_what_they_should() {
    let s = "\u{feff}0001\tHello there.\n\n0002.wav\t  General Kenobi  \r\n";
    assert_eq!(
        parse_script(s).unwrap(),
        vec![
            ("0001".to_owned(), "Hello there.".to_owned()),
            ("0002".to_owned(), "General Kenobi".to_owned())
        ]
    );
    assert!(parse_script("").is_err());
    assert!(parse_script("0001 no tab").is_err());
    assert!(parse_script("0001\t").is_err());
    assert!(parse_script("a\tx\na\ty").unwrap_err().contains("twice"));
}

#[test]
fn a_copy_reuses_only_the_same_consent_and_training_set() {
    use super::copy::same;
    use super::{Coll, Doc};
    use serde_json::json;
    let doc = |project: &str, key: &str, v: serde_json::Value| {
        let mut d = Doc::new("x");
        d.fields.insert("projectId".into(), json!(project));
        d.internal.insert(key.into(), v);
        d
    };
    let consent = doc("p1", "embedding", json!([0.1, 0.2]));
    assert!(same(Coll::Consents, &consent, &consent.clone()));
    // Another recording under the same id, or the same one in another project: not reused.
    assert!(!same(
        Coll::Consents,
        &consent,
        &doc("p1", "embedding", json!([0.1, 0.3]))
    ));
    assert!(!same(
        Coll::Consents,
        &consent,
        &doc("p2", "embedding", json!([0.1, 0.2]))
    ));
    let set = doc("p1", "files", json!([{"id": "a", "text": "hello"}]));
    assert!(same(Coll::TrainingSets, &set, &set.clone()));
    assert!(!same(
        Coll::TrainingSets,
        &set,
        &doc(
            "p1",
            "files",
            json!([{"id": "a", "text": "hello"}, {"id": "b"}])
        )
    ));
    // A project only holds the others: any project of that id is the one.
    assert!(same(Coll::Projects, &Doc::new("p1"), &consent));
}
