//! Conformance checks for Custom Speech assets.

use serde_json::json;
use uuid::Uuid;

use super::{fresh_region, new_resource};
use crate::{
    asset_blob_prefix, asset_file_key, AssetKind, AssetStatus, AssetUpdate, NewAsset, Resource,
    Store, StoreError,
};

async fn resource(store: &Store, tag: &str) -> Resource {
    let region = fresh_region(tag);
    store
        .meta
        .create_resource(new_resource(&region, tag))
        .await
        .expect("create resource")
}

fn new_asset(r: &Resource, kind: AssetKind, name: &str) -> NewAsset {
    NewAsset {
        id: Uuid::new_v4(),
        resource_id: r.id,
        kind,
        status: AssetStatus::Succeeded,
        display_name: name.into(),
        description: Some(format!("about {name}")),
        locale: "en-US".into(),
        properties: json!({"acceptedLineCount": 3}),
        doc: json!({"kind": "Language", "files": []}),
    }
}

/// Create, get, update and delete an asset; every field round-trips.
pub async fn assets_crud(store: &Store) {
    let m = &store.meta;
    let r = resource(store, "ascrud").await;
    let new = new_asset(&r, AssetKind::Dataset, "first");
    let created = m.create_asset(new.clone()).await.expect("create");
    assert_eq!(created.id, new.id);
    assert_eq!(created.resource_id, r.id);
    assert_eq!(created.kind, AssetKind::Dataset);
    assert_eq!(created.status, AssetStatus::Succeeded);
    assert_eq!(created.display_name, "first");
    assert_eq!(created.description.as_deref(), Some("about first"));
    assert_eq!(created.locale, "en-US");
    assert_eq!(created.properties, new.properties);
    assert_eq!(created.doc, new.doc);
    assert_eq!(created.created_at, created.last_action_at);

    let got = m
        .get_asset(r.id, AssetKind::Dataset, new.id)
        .await
        .unwrap()
        .expect("get");
    assert_eq!(got, created);

    // The same id again is a conflict, not a second row.
    assert!(matches!(
        m.create_asset(new.clone()).await,
        Err(StoreError::Conflict { .. })
    ));

    // A partial update changes what it names, and only that.
    let renamed = m
        .update_asset(
            r.id,
            AssetKind::Dataset,
            new.id,
            AssetUpdate {
                display_name: Some("renamed".into()),
                ..AssetUpdate::default()
            },
        )
        .await
        .expect("rename");
    assert_eq!(renamed.display_name, "renamed");
    assert_eq!(renamed.description, created.description);
    assert_eq!(renamed.doc, created.doc);
    assert_eq!(renamed.created_at, created.created_at);
    assert!(renamed.last_action_at >= created.last_action_at);
    let updated = m
        .update_asset(
            r.id,
            AssetKind::Dataset,
            new.id,
            AssetUpdate {
                status: Some(AssetStatus::Failed),
                description: Some("new words".into()),
                properties: Some(json!({"acceptedLineCount": 0})),
                doc: Some(json!({"customProperties": {"a": "b"}})),
                ..AssetUpdate::default()
            },
        )
        .await
        .expect("update");
    assert_eq!(updated.status, AssetStatus::Failed);
    assert_eq!(updated.display_name, "renamed");
    assert_eq!(updated.description.as_deref(), Some("new words"));
    assert_eq!(updated.properties, json!({"acceptedLineCount": 0}));
    assert_eq!(updated.doc, json!({"customProperties": {"a": "b"}}));
    assert!(updated.last_action_at >= renamed.last_action_at);
    assert_eq!(
        m.get_asset(r.id, AssetKind::Dataset, new.id)
            .await
            .unwrap()
            .as_ref(),
        Some(&updated)
    );

    assert!(m
        .delete_asset(r.id, AssetKind::Dataset, new.id)
        .await
        .unwrap());
    assert!(!m
        .delete_asset(r.id, AssetKind::Dataset, new.id)
        .await
        .unwrap());
    assert!(m
        .get_asset(r.id, AssetKind::Dataset, new.id)
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        m.update_asset(r.id, AssetKind::Dataset, new.id, AssetUpdate::default())
            .await,
        Err(StoreError::NotFound { .. })
    ));

    // An asset of a resource that does not exist is refused.
    let mut orphan = new_asset(&r, AssetKind::Dataset, "orphan");
    orphan.resource_id = tandem_core::ResourceId::random();
    assert!(matches!(
        m.create_asset(orphan).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// Lists page by creation order with a total; kinds are listed apart.
pub async fn assets_paging(store: &Store) {
    let m = &store.meta;
    let r = resource(store, "aspage").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let a = m
            .create_asset(new_asset(&r, AssetKind::Dataset, &format!("d{i}")))
            .await
            .unwrap();
        ids.push(a.id);
    }
    m.create_asset(new_asset(&r, AssetKind::Model, "m"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    for skip in [0u64, 2, 4] {
        let page = m
            .list_assets(r.id, AssetKind::Dataset, skip, 2)
            .await
            .unwrap();
        assert_eq!(page.total, 5);
        assert_eq!(page.values.len(), if skip == 4 { 1 } else { 2 });
        seen.extend(page.values.iter().map(|a| a.id));
    }
    assert_eq!(seen, ids, "pages cover every asset once, oldest first");
    let past = m
        .list_assets(r.id, AssetKind::Dataset, 10, 2)
        .await
        .unwrap();
    assert!(past.values.is_empty());
    assert_eq!(past.total, 5);
    let models = m.list_assets(r.id, AssetKind::Model, 0, 100).await.unwrap();
    assert_eq!(models.total, 1);
    assert_eq!(models.values[0].display_name, "m");
}

/// Another resource's asset, or an asset of another kind, is not found, not listed, not
/// updated and not deleted; deleting a resource deletes its assets.
pub async fn assets_tenant_isolation(store: &Store) {
    let m = &store.meta;
    let a = resource(store, "asten-a").await;
    let b = resource(store, "asten-b").await;
    let mine = m
        .create_asset(new_asset(&a, AssetKind::Dataset, "mine"))
        .await
        .unwrap();
    assert!(m
        .get_asset(b.id, AssetKind::Dataset, mine.id)
        .await
        .unwrap()
        .is_none());
    assert!(m
        .get_asset(a.id, AssetKind::Model, mine.id)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        m.list_assets(b.id, AssetKind::Dataset, 0, 100)
            .await
            .unwrap()
            .total,
        0
    );
    assert!(matches!(
        m.update_asset(
            b.id,
            AssetKind::Dataset,
            mine.id,
            AssetUpdate {
                display_name: Some("stolen".into()),
                ..AssetUpdate::default()
            }
        )
        .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(!m
        .delete_asset(b.id, AssetKind::Dataset, mine.id)
        .await
        .unwrap());
    assert_eq!(
        m.get_asset(a.id, AssetKind::Dataset, mine.id)
            .await
            .unwrap()
            .map(|x| x.display_name),
        Some("mine".to_owned())
    );
    assert!(m.delete_resource(a.id).await.unwrap());
    assert!(m
        .get_asset(a.id, AssetKind::Dataset, mine.id)
        .await
        .unwrap()
        .is_none());

    // Blob keys of an asset are valid keys, under the asset's prefix.
    let file = asset_file_key(a.id, mine.id, Uuid::new_v4());
    assert!(file.starts_with(&asset_blob_prefix(a.id, mine.id)));
    store
        .blobs
        .put(&file, bytes::Bytes::from_static(b"x"))
        .await
        .expect("asset file keys are valid blob keys");
    store.blobs.delete(&file).await.unwrap();
}

/// Every kind is stored and read back as itself, including copy operations (format 6) and the
/// custom voice kinds (format 7); a copy
/// operation's document and status updates round-trip, and it is listed apart from models.
pub async fn assets_every_kind(store: &Store) {
    let m = &store.meta;
    let r = resource(store, "askind").await;
    for kind in AssetKind::ALL {
        assert_eq!(kind.as_str().parse::<AssetKind>(), Ok(kind));
        let a = m
            .create_asset(new_asset(&r, kind, kind.as_str()))
            .await
            .unwrap_or_else(|e| panic!("create a {kind}: {e}"));
        let got = m.get_asset(r.id, kind, a.id).await.unwrap().expect("get");
        assert_eq!(got.kind, kind);
        let page = m.list_assets(r.id, kind, 0, 100).await.unwrap();
        assert_eq!(page.total, 1, "{kind} is listed apart from the other kinds");
    }
    let mut op = new_asset(&r, AssetKind::CopyOperation, "copy");
    op.status = AssetStatus::NotStarted;
    op.doc = json!({"format": 1, "source": Uuid::new_v4(), "sentChunks": 0});
    let op = m.create_asset(op).await.unwrap();
    let done = m
        .update_asset(
            r.id,
            AssetKind::CopyOperation,
            op.id,
            AssetUpdate {
                status: Some(AssetStatus::Succeeded),
                doc: Some(json!({"format": 1, "sentChunks": 3})),
                ..AssetUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(done.status, AssetStatus::Succeeded);
    assert_eq!(done.doc["sentChunks"], 3);
    assert!(m
        .get_asset(r.id, AssetKind::Model, op.id)
        .await
        .unwrap()
        .is_none());
}
