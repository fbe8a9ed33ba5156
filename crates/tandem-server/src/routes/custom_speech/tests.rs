use axum::response::IntoResponse;

use super::*;

#[test]
fn paging_defaults_bounds_and_next_link() {
    assert_eq!(Paging::parse(None).unwrap(), Paging { skip: 0, top: 100 });
    assert_eq!(
        Paging::parse(Some("skip=4&top=2&filter=x")).unwrap(),
        Paging { skip: 4, top: 2 }
    );
    for bad in ["top=0", "top=101", "skip=-1", "top=x"] {
        assert!(Paging::parse(Some(bad)).is_err(), "{bad}");
    }
    let p = Paging { skip: 2, top: 2 };
    let page = page_json(vec![json!(1), json!(2)], 5, p, "http://h/x");
    assert_eq!(page["@nextLink"], "http://h/x?skip=4&top=2");
    let last = page_json(vec![json!(5)], 5, Paging { skip: 4, top: 2 }, "http://h/x");
    assert!(last.get("@nextLink").is_none());
    assert_eq!(last["values"].as_array().unwrap().len(), 1);
}

#[test]
fn times_are_whole_seconds_utc() {
    let t = time::macros::datetime!(2019-01-07 11:36:07.123 +02:00);
    assert_eq!(azure_time(t), "2019-01-07T09:36:07Z");
}

#[tokio::test]
async fn v3_errors_have_code_message_and_inner_error() {
    let resp = V3Error(ApiError::bad_request("InvalidDataset", "zip slip")).into_response();
    assert_eq!(resp.status().as_u16(), 400);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], "InvalidRequest");
    assert_eq!(v["message"], "zip slip");
    assert_eq!(v["innerError"]["code"], "InvalidDataset");
    assert!(v.get("error").is_none());
    let resp = parse_id("not-a-guid", "dataset")
        .unwrap_err()
        .into_response();
    assert_eq!(resp.status().as_u16(), 404);
}

/// A region state on a fresh store, without engines (datasets need none).
async fn state() -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().unwrap();
    let meta = format!("sqlite://{}", dir.path().join("t.db").display());
    let blobs = format!("file://{}", dir.path().join("blobs").display());
    let store = tandem_store::Store::open(&meta, &blobs).await.unwrap();
    let region = tandem_core::RegionName::new("westus").unwrap();
    let config = tandem_core::RegionConfig::new(region.clone(), dir.path().into());
    let metrics = crate::Metrics::new("westus");
    let pool = || {
        crate::EnginePool::new(
            "test",
            1,
            1,
            prometheus::IntGauge::new("q", "q").unwrap(),
            prometheus::IntGauge::new("b", "b").unwrap(),
        )
    };
    let state = AppState::new(crate::StateParts {
        replication: std::sync::Arc::new(crate::Replication::new(&config, None)),
        config,
        store,
        signer: tandem_core::TokenSigner::new(region, vec![7; 32], 600),
        admin_token: None,
        stt_pool: pool(),
        tts_pool: pool(),
        metrics,
    });
    (dir, state)
}

fn language_meta() -> create::CheckedMeta {
    create::DatasetMeta {
        display_name: Some("text".into()),
        locale: Some("EN-us".into()),
        kind: Some("language".into()),
        ..Default::default()
    }
    .check()
    .unwrap()
}

#[tokio::test]
async fn a_dataset_that_cannot_be_recorded_leaves_no_blobs() {
    let (dir, state) = state().await;
    let blob_files = || {
        fn walk(p: &std::path::Path, n: &mut usize) {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    walk(&e.path(), n)
                } else {
                    *n += 1
                }
            }
        }
        let mut n = 0;
        walk(&dir.path().join("blobs/assets"), &mut n);
        n
    };
    // The resource does not exist: the files are written, the row is refused, the files go.
    let ghost = tandem_core::ResourceId::random();
    let e = create::create_dataset(
        &state,
        ghost,
        language_meta(),
        bytes::Bytes::from_static(b"one line\ntwo lines\n"),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(e.status().as_u16(), 404);
    assert_eq!(blob_files(), 0);

    // With a real resource the same upload is stored: the report and the text.
    let r = crate::create_resource(state.store().meta.as_ref(), state.region(), "owner", 10)
        .await
        .unwrap();
    let asset = create::create_dataset(
        &state,
        r.resource.id,
        language_meta(),
        bytes::Bytes::from_static(b"one line\ntwo lines\n"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(asset.locale, "en-US");
    assert_eq!(asset.properties["acceptedLineCount"], 2);
    assert_eq!(blob_files(), 2);
    let doc = entity::dataset_doc(&asset).unwrap();
    assert_eq!(doc.kind, "Language");
    assert_eq!(doc.format, entity::DATASET_DOC_FORMAT);
    assert_eq!(
        doc.files
            .iter()
            .map(|f| f.kind.as_str())
            .collect::<Vec<_>>(),
        ["DatasetReport", "LanguageData"]
    );
    create::remove_blobs(state.store(), r.resource.id, asset.id).await;
    assert_eq!(blob_files(), 0);
}

#[test]
fn metadata_is_checked_as_azure_documents_it() {
    let ok = create::DatasetMeta {
        display_name: Some(" d ".into()),
        locale: Some("en-us".into()),
        kind: Some("Acoustic".into()),
        custom_properties: Some(json!({"k": "v"})),
        ..Default::default()
    };
    let m = ok.clone().check().unwrap();
    assert_eq!((m.display_name.as_str(), m.locale.as_str()), ("d", "en-US"));
    let bad = |f: &dyn Fn(&mut create::DatasetMeta)| {
        let mut m = ok.clone();
        f(&mut m);
        m.check().unwrap_err().status().as_u16()
    };
    assert_eq!(bad(&|m| m.display_name = None), 400);
    assert_eq!(bad(&|m| m.locale = Some("xx-YY".into())), 400);
    assert_eq!(bad(&|m| m.kind = Some("Video".into())), 400);
    assert_eq!(bad(&|m| m.custom_properties = Some(json!([1]))), 400);
    assert_eq!(bad(&|m| m.custom_properties = Some(json!({"k": 1}))), 400);
    let eleven: serde_json::Map<String, Value> =
        (0..11).map(|i| (format!("k{i}"), json!("v"))).collect();
    assert_eq!(
        bad(&|m| m.custom_properties = Some(Value::Object(eleven.clone()))),
        400
    );
}

#[test]
fn entity_references_name_their_collection() {
    let id = Uuid::new_v4();
    let base = "http://h:5000/speechtotext/v3.1";
    assert_eq!(
        ref_id(&format!("{base}/datasets/{id}"), "datasets"),
        Some(id)
    );
    assert_eq!(
        ref_id(&format!("{base}/datasets/{id}/"), "datasets"),
        Some(id)
    );
    assert_eq!(
        ref_id(&format!("{base}/models/base/{id}"), "models/base"),
        Some(id)
    );
    assert_eq!(ref_id(&format!("{base}/models/base/{id}"), "models"), None);
    assert_eq!(
        ref_id(&format!("{base}/models/{id}?x=1"), "models"),
        Some(id)
    );
    assert_eq!(ref_id(&format!("{base}/models/{id}"), "datasets"), None);
    assert_eq!(ref_id(&format!("{base}/xmodels/{id}"), "models"), None);
    assert_eq!(ref_id(&format!("{base}/models/not-a-guid"), "models"), None);
    assert_eq!(ref_id("", "models"), None);
}

#[test]
fn the_base_model_id_is_stable_and_a_guid() {
    let a = base_models::base_model_id("whisper-tiny.en", "abc");
    assert_eq!(a, base_models::base_model_id("whisper-tiny.en", "abc"));
    assert_ne!(a, base_models::base_model_id("whisper-tiny.en", "abd"));
    assert_ne!(a, base_models::base_model_id("whisper-base.en", "abc"));
    assert_eq!(a.get_version_num(), 8);
    assert_eq!(Uuid::parse_str(&a.to_string()).unwrap(), a);
}

#[tokio::test]
async fn newer_documents_are_refused_and_in_use_is_409() {
    let (_dir, state) = state().await;
    let r = crate::create_resource(state.store().meta.as_ref(), state.region(), "owner", 10)
        .await
        .unwrap();
    let doc = json!({"format": models::MODEL_DOC_FORMAT + 1, "baseModel": Uuid::nil(),
                     "datasets": []});
    let asset = state
        .store()
        .meta
        .create_asset(tandem_store::NewAsset {
            id: Uuid::new_v4(),
            resource_id: r.resource.id,
            kind: tandem_store::AssetKind::Model,
            status: tandem_store::AssetStatus::Succeeded,
            display_name: "future".into(),
            description: None,
            locale: "en-US".into(),
            properties: json!({}),
            doc,
        })
        .await
        .unwrap();
    assert_eq!(
        models::model_doc(&asset).unwrap_err().status().as_u16(),
        500
    );

    let resp = V3Error(ApiError::InUse("in use".into())).into_response();
    assert_eq!(resp.status().as_u16(), 409);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], "Conflict");
    assert_eq!(v["innerError"]["code"], "InUseViolation");
}

/// Training without engines fails cleanly: the model ends `Failed` with `properties.error`,
/// and no internal detail.
#[tokio::test]
async fn a_model_that_cannot_be_trained_is_failed_with_a_reason() {
    let (_dir, state) = state().await;
    let r = crate::create_resource(state.store().meta.as_ref(), state.region(), "owner", 10)
        .await
        .unwrap();
    let dataset = create::create_dataset(
        &state,
        r.resource.id,
        language_meta(),
        bytes::Bytes::from_static(b"panthera tigris\n"),
        None,
    )
    .await
    .unwrap();
    let doc = models::ModelDoc {
        format: models::MODEL_DOC_FORMAT,
        base_model: Uuid::nil(),
        datasets: vec![dataset.id],
        custom_properties: Default::default(),
        artifact: None,
    };
    let model = state
        .store()
        .meta
        .create_asset(tandem_store::NewAsset {
            id: Uuid::new_v4(),
            resource_id: r.resource.id,
            kind: tandem_store::AssetKind::Model,
            status: tandem_store::AssetStatus::NotStarted,
            display_name: "m".into(),
            description: None,
            locale: "en-US".into(),
            properties: json!({}),
            doc: serde_json::to_value(&doc).unwrap(),
        })
        .await
        .unwrap();
    train::spawn(state.clone(), r.resource.id, model.id, vec![dataset.id]);
    let failed = loop {
        let m = state
            .store()
            .meta
            .get_asset(r.resource.id, tandem_store::AssetKind::Model, model.id)
            .await
            .unwrap()
            .unwrap();
        if m.status.is_terminal() {
            break m;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(failed.status, tandem_store::AssetStatus::Failed);
    assert_eq!(failed.properties["error"]["code"], "InternalError");
    let message = failed.properties["error"]["message"].as_str().unwrap();
    assert!(!message.contains("engines"), "{message}");
    assert!(models::model_doc(&failed).unwrap().artifact.is_none());
}
