use std::collections::BTreeMap;

use tandem_core::{KeyHash, KeySlot, RegionName, ResourceId, ResourceKey};

use super::{Cell, ExportTable, MetadataExport, Retargeted};
use crate::StoreError;

fn t(s: &str) -> Cell {
    Cell::Text(s.to_owned())
}

fn table(name: &str, columns: &[&str], rows: Vec<Vec<Cell>>) -> ExportTable {
    ExportTable {
        name: name.into(),
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        rows,
    }
}

/// A store of region `west` paired with `east`: one local and one replicated resource, each
/// with keys, a profile with an enrollment, and a cursor in east's log.
fn paired() -> (MetadataExport, ResourceId, ResourceId) {
    let (local, foreign) = (ResourceId::random(), ResourceId::random());
    let (l, f) = (local.to_string(), foreign.to_string());
    let export = MetadataExport {
        schema_version: 6,
        tables: vec![
            table(
                "replication_cursors",
                &["peer", "store_id", "seq", "updated_at"],
                vec![vec![t("east"), t("abc"), Cell::Integer(7), t("now")]],
            ),
            table(
                "resources",
                &["id", "region", "name", "concurrency_limit", "created_at"],
                vec![
                    vec![t(&l), t("west"), t("a"), Cell::Integer(10), t("now")],
                    vec![t(&f), t("east"), t("b"), Cell::Integer(10), t("now")],
                ],
            ),
            table(
                "resource_keys",
                &["resource_id", "slot", "key_hash"],
                vec![
                    vec![t(&l), t("key1"), t("h1")],
                    vec![t(&l), t("key2"), t("h2")],
                    vec![t(&f), t("key1"), t("h3")],
                    vec![t(&f), t("key2"), t("h4")],
                ],
            ),
            table(
                "speaker_changes",
                &["seq", "resource_id", "profile_id", "op"],
                vec![vec![Cell::Integer(1), t(&l), t("pl"), t("create")]],
            ),
            table(
                "speaker_profiles",
                &["id", "resource_id", "signature"],
                vec![
                    vec![t("pf"), t(&f), Cell::Blob(vec![0, 1, 255])],
                    vec![t("pl"), t(&l), Cell::Null],
                ],
            ),
            table(
                "speaker_enrollments",
                &["id", "profile_id", "audio_secs"],
                vec![
                    vec![t("ef"), t("pf"), Cell::Real(3.25)],
                    vec![t("el"), t("pl"), Cell::Real(-0.0)],
                ],
            ),
        ],
    };
    (export, local, foreign)
}

#[test]
fn every_cell_kind_round_trips_exactly() {
    let reals = [
        0.1,
        -0.0,
        1e300,
        5e-324,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ];
    let mut rows: Vec<Vec<Cell>> = reals.iter().map(|r| vec![Cell::Real(*r)]).collect();
    rows.extend(
        [
            Cell::Null,
            Cell::Integer(i64::MIN),
            Cell::Integer(i64::MAX),
            t("line\nbreak \"quoted\" ünïcödé \u{0}"),
            Cell::Blob((0..=255).collect()),
            Cell::Blob(vec![]),
        ]
        .into_iter()
        .map(|c| vec![c]),
    );
    let export = MetadataExport {
        schema_version: 6,
        tables: vec![
            table("things", &["v"], rows),
            table("empty", &["a", "b"], vec![]),
        ],
    };
    let bytes = export.to_bytes();
    let back = MetadataExport::from_bytes(&bytes).expect("parses");
    assert_eq!(back, export);
    assert_eq!(back.to_bytes(), bytes, "serialization is deterministic");
    assert_eq!(back.digest(), export.digest());
    assert_eq!(export.row_counts(), vec![("things", 13), ("empty", 0)]);
}

#[test]
fn the_format_is_lines_with_a_header_and_a_checksummed_trailer() {
    let (export, ..) = paired();
    let bytes = export.to_bytes();
    let text = std::str::from_utf8(&bytes).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        r#"{"format":"tandem-metadata-export","version":1,"schema_version":6,"tables":6}"#
    );
    assert_eq!(
        lines[1],
        r#"{"table":"replication_cursors","columns":["peer","store_id","seq","updated_at"],"rows":1}"#
    );
    assert_eq!(lines[2], r#"["east","abc",7,"now"]"#);
    assert!(text.contains(r#"{"blob":"AAH/"}"#), "{text}");
    assert!(text.contains(r#"{"real":"3.25"}"#), "{text}");
    assert!(lines
        .last()
        .unwrap()
        .starts_with(r#"{"end":{"tables":6,"rows":12,"sha256":""#));
    assert!(text.ends_with("\n"));
}

#[test]
fn truncation_and_bit_flips_are_refused() {
    let (export, ..) = paired();
    let bytes = export.to_bytes();
    for len in 0..bytes.len() {
        let err = MetadataExport::from_bytes(&bytes[..len]).expect_err("truncated");
        assert!(
            matches!(err, StoreError::InvalidExport(_)),
            "{len}: {err:?}"
        );
    }
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            assert!(
                MetadataExport::from_bytes(&b).is_err(),
                "flipping bit {bit} of byte {i} went unnoticed"
            );
        }
    }
    let mut extra = bytes.clone();
    extra.extend_from_slice(b"\n");
    assert!(MetadataExport::from_bytes(&extra).is_err(), "trailing data");
}

#[test]
fn a_newer_layout_is_format_too_new() {
    let (export, ..) = paired();
    let text = String::from_utf8(export.to_bytes()).unwrap();
    let newer = text.replacen(r#""version":1"#, r#""version":2"#, 1);
    let err = MetadataExport::from_bytes(newer.as_bytes()).expect_err("newer");
    assert!(
        matches!(
            err,
            StoreError::FormatTooNew {
                found: 2,
                supported: 1
            }
        ),
        "{err:?}"
    );
}

#[test]
fn retarget_moves_local_resources_and_drops_the_pairs_data() {
    let (mut export, local, _) = paired();
    let (west, north) = (
        RegionName::new("west").unwrap(),
        RegionName::new("north").unwrap(),
    );
    let done = export.retarget_region(&west, &north).expect("retarget");
    // Dropped: east's resource, its 2 keys, its profile and enrollment, and the cursor.
    assert_eq!(
        done,
        Retargeted {
            resources: 1,
            dropped_rows: 6
        }
    );
    let counts: BTreeMap<_, _> = export.row_counts().into_iter().collect();
    assert_eq!(counts["resources"], 1);
    assert_eq!(counts["resource_keys"], 2);
    assert_eq!(counts["speaker_profiles"], 1);
    assert_eq!(counts["speaker_enrollments"], 1);
    assert_eq!(counts["speaker_changes"], 1, "the local origin log stays");
    assert_eq!(counts["replication_cursors"], 0);
    let r = &export.table("resources").unwrap().rows[0];
    assert_eq!(
        (r[0].clone(), r[1].clone()),
        (t(&local.to_string()), t("north"))
    );
    // Still a valid export.
    assert_eq!(
        MetadataExport::from_bytes(&export.to_bytes()).unwrap(),
        export
    );
}

#[test]
fn retarget_refuses_a_region_column_it_does_not_know() {
    let (mut export, ..) = paired();
    export
        .tables
        .push(table("future", &["id", "home_region"], vec![]));
    let (west, north) = (
        RegionName::new("west").unwrap(),
        RegionName::new("north").unwrap(),
    );
    let before = export.clone();
    let err = export
        .retarget_region(&west, &north)
        .expect_err("unknown column");
    assert!(matches!(err, StoreError::InvalidExport(_)), "{err:?}");
    assert_eq!(export, before, "nothing changed");
}

#[test]
fn replace_key_hashes_issues_one_new_key_per_slot() {
    let (mut export, local, foreign) = paired();
    let mut issued = Vec::new();
    let n = export
        .replace_key_hashes(|r, s| {
            let k = ResourceKey::generate();
            let h = k.hash();
            issued.push((r, s, k));
            h
        })
        .expect("replace");
    assert_eq!(n, 4);
    let slots: Vec<_> = issued.iter().map(|(r, s, _)| (*r, *s)).collect();
    assert_eq!(
        slots,
        vec![
            (local, KeySlot::Key1),
            (local, KeySlot::Key2),
            (foreign, KeySlot::Key1),
            (foreign, KeySlot::Key2)
        ]
    );
    let keys = export.table("resource_keys").unwrap();
    for (row, (_, _, key)) in keys.rows.iter().zip(&issued) {
        let stored = KeyHash::from_hex(row[2].as_text().unwrap()).unwrap();
        assert_eq!(stored, key.hash());
    }
}
