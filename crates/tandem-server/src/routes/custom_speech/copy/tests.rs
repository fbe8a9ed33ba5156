use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use axum::body::Bytes;
use serde_json::{json, Value};
use tandem_core::{KeySlot, PeerConfig, RegionName, ResourceId, ResourceKey};
use tandem_store::NewResource;
use time::OffsetDateTime;
use uuid::Uuid;

use super::authz::CopyAuthorization;
use super::kind::artifact_base;
use super::link::{find_key, TargetLink};
use super::plan::FilePlan;
use super::run::{transfer, CopyOpDoc, COPY_OP_FORMAT};
use super::wire::{BeginRequest, BeginResponse, ChunkRef, CommitRequest, Grant, Manifest};
use super::{target, CopyError};
use crate::AppState;

/// A region state on a fresh store, without engines, with these peers and a peer secret.
async fn state(peers: Vec<PeerConfig>) -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().unwrap();
    let meta = format!("sqlite://{}", dir.path().join("t.db").display());
    let blobs = format!("file://{}", dir.path().join("blobs").display());
    let store = tandem_store::Store::open(&meta, &blobs).await.unwrap();
    let region = RegionName::new("westus").unwrap();
    let mut config = tandem_core::RegionConfig::new(region.clone(), dir.path().into());
    config.peers = peers;
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
        replication: std::sync::Arc::new(crate::Replication::new(
            &config,
            Some("0123456789abcdef0123456789abcdef".into()),
        )),
        config,
        store,
        signer: tandem_core::TokenSigner::new(region, vec![7; 32], 600),
        admin_token: None,
        stt_pool: pool(),
        tts_pool: pool(),
        metrics: crate::Metrics::new("westus"),
    });
    (dir, state)
}

async fn resource(state: &AppState, name: &str) -> (ResourceId, ResourceKey) {
    let key = ResourceKey::generate();
    let id = ResourceId::random();
    state
        .store()
        .meta
        .create_resource(NewResource {
            id,
            region: state.region().clone(),
            name: name.into(),
            key1: key.hash(),
            key2: ResourceKey::generate().hash(),
            concurrency_limit: 10,
        })
        .await
        .unwrap();
    (id, key)
}

#[test]
fn target_answers_are_classified_by_status() {
    let c = |s: u16, inner: &str| CopyError::from_status(s, inner, "m".into());
    assert!(matches!(
        c(400, "InvalidBaseModel"),
        CopyError::Invalid {
            code: "InvalidBaseModel",
            ..
        }
    ));
    assert!(matches!(
        c(400, "Whatever"),
        CopyError::Invalid {
            code: "InvalidRequest",
            ..
        }
    ));
    assert!(matches!(c(403, "Forbidden"), CopyError::Refused(_)));
    assert!(matches!(c(404, "NotFound"), CopyError::NotFound(_)));
    for (status, transient) in [
        (400, false),
        (401, false),
        (403, false),
        (404, false),
        (409, true),
        (500, true),
        (502, true),
        (503, true),
    ] {
        assert_eq!(c(status, "x").is_transient(), transient, "{status}");
    }
    assert!(!CopyError::Internal("x".into()).is_transient());
    assert_eq!(
        CopyError::Internal("secret detail".into()).public_message(),
        "the copy failed because of an internal error"
    );
}

#[tokio::test]
async fn keys_are_found_here_and_unknown_keys_are_a_clear_400() {
    let (_dir, state) = state(Vec::new()).await;
    let (id, key) = resource(&state, "dst").await;
    let owner = find_key(&state, key.expose()).await.unwrap();
    assert_eq!(owner.region.as_str(), "westus");
    assert_eq!(owner.resource, id);
    // The grant carries the key's sha256, never the key.
    assert_eq!(
        owner.grant,
        Grant::Key {
            key_hash: key.hash().to_hex()
        }
    );
    match find_key(&state, "not a key").await {
        Err(CopyError::Invalid { code, message }) => {
            assert_eq!(code, "SubscriptionNotFound");
            assert!(message.contains("westus"), "{message}");
        }
        other => panic!("{:?}", other.map(|o| o.region)),
    }
    assert!(matches!(
        target::lookup(&state, "zz").await,
        Err(CopyError::Invalid { .. })
    ));
}

#[tokio::test]
async fn an_unreachable_peer_is_named_in_a_503() {
    let peer = PeerConfig {
        name: RegionName::new("eastus").unwrap(),
        endpoint: "http://127.0.0.1:9".into(),
    };
    let (_dir, state) = state(vec![peer]).await;
    match find_key(&state, "somebody's key").await {
        Err(e @ CopyError::Unavailable(_)) => {
            let m = e.to_string();
            assert!(m.contains("eastus") && m.contains("127.0.0.1:9"), "{m}");
        }
        other => panic!("{:?}", other.map(|o| o.region)),
    }
}

#[tokio::test]
async fn grants_open_only_their_resource() {
    let (_dir, state) = state(Vec::new()).await;
    let (id, key) = resource(&state, "dst").await;
    let now = OffsetDateTime::now_utc();
    let a = CopyAuthorization::issue(
        state.signer(),
        state.region(),
        id,
        "http://h/speechtotext/v3.2/models".into(),
        "src".into(),
        now,
    );
    let grant = Grant::Authorization(a.clone());
    assert_eq!(target::resolve(&state, &grant, true).await.unwrap(), id);
    let mut forged = a.clone();
    forged.target_resource_id = ResourceId::random().to_string();
    assert!(matches!(
        target::resolve(&state, &Grant::Authorization(forged), true).await,
        Err(CopyError::Refused(_))
    ));
    let by_key = Grant::Key {
        key_hash: key.hash().to_hex(),
    };
    assert_eq!(target::resolve(&state, &by_key, true).await.unwrap(), id);
    // A rotated key, or a deleted resource, opens nothing any more.
    state
        .store()
        .meta
        .set_key(id, KeySlot::Key1, ResourceKey::generate().hash())
        .await
        .unwrap();
    assert!(matches!(
        target::resolve(&state, &by_key, true).await,
        Err(CopyError::Refused(_))
    ));
    state.store().meta.delete_resource(id).await.unwrap();
    assert!(matches!(
        target::resolve(&state, &grant, true).await,
        Err(CopyError::Refused(_))
    ));
}

/// An in-memory target: checks chunks like the real one, and can fail after `fail_after`
/// chunks (a target killed mid-copy).
#[derive(Default)]
struct FakeTarget {
    manifest: Mutex<Option<Manifest>>,
    staged: Mutex<BTreeMap<(Uuid, u32), Bytes>>,
    fail_after: Mutex<Option<usize>>,
    puts: AtomicUsize,
    commits: AtomicUsize,
    committed: Mutex<Option<Value>>,
}

#[async_trait::async_trait]
impl TargetLink for FakeTarget {
    async fn check(&self, _: &Grant) -> Result<ResourceId, CopyError> {
        unreachable!()
    }
    async fn begin(
        &self,
        _: ResourceId,
        _: Uuid,
        req: &BeginRequest,
    ) -> Result<BeginResponse, CopyError> {
        if let Some(done) = self.committed.lock().unwrap().clone() {
            return Ok(BeginResponse {
                have: Vec::new(),
                committed: Some(done),
            });
        }
        let mut m = self.manifest.lock().unwrap();
        if m.as_ref() != Some(&req.manifest) {
            *m = Some(req.manifest.clone());
            self.staged.lock().unwrap().clear();
        }
        let have = self
            .staged
            .lock()
            .unwrap()
            .keys()
            .map(|&(file, index)| ChunkRef { file, index })
            .collect();
        Ok(BeginResponse {
            have,
            committed: None,
        })
    }
    async fn put_chunk(
        &self,
        _: ResourceId,
        _: Uuid,
        chunk: ChunkRef,
        bytes: Bytes,
        sha256: [u8; 32],
    ) -> Result<(), CopyError> {
        let ChunkRef { file, index } = chunk;
        // The digest the source signs with is its plan's: the chunk's, as the target sees it.
        let m = self.manifest.lock().unwrap().clone().unwrap();
        let plan = m.files.iter().find(|f| f.id == file).unwrap();
        assert_eq!(Some(sha256), plan.chunk_digest(index));
        let mut fail = self.fail_after.lock().unwrap();
        if let Some(n) = fail.as_mut() {
            if *n == 0 {
                return Err(CopyError::Unavailable("killed".into()));
            }
            *n -= 1;
        }
        plan.check_chunk(index, &bytes)
            .map_err(|e| CopyError::invalid("InvalidChecksum", e))?;
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.staged.lock().unwrap().insert((file, index), bytes);
        Ok(())
    }
    async fn commit(
        &self,
        _: ResourceId,
        asset: Uuid,
        _: &CommitRequest,
    ) -> Result<Value, CopyError> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        if let Some(done) = self.committed.lock().unwrap().clone() {
            return Ok(done);
        }
        let m = self.manifest.lock().unwrap().clone().unwrap();
        let staged = self.staged.lock().unwrap();
        for plan in &m.files {
            let mut whole = Vec::new();
            for i in 0..plan.chunks.len() as u32 {
                let chunk = staged
                    .get(&(plan.id, i))
                    .ok_or_else(|| CopyError::Retry(format!("chunk {i} missing")))?;
                whole.extend_from_slice(chunk);
            }
            plan.check_file(&whole)
                .map_err(|e| CopyError::invalid("InvalidChecksum", e))?;
        }
        let v = json!({ "self": format!("http://east/speechtotext/v3.2/models/{asset}") });
        *self.committed.lock().unwrap() = Some(v.clone());
        Ok(v)
    }
}

fn op_doc() -> CopyOpDoc {
    CopyOpDoc {
        format: COPY_OP_FORMAT,
        asset_kind: "model".into(),
        source: Uuid::new_v4(),
        target_region: "eastus".into(),
        target_resource: ResourceId::random(),
        target_asset: Uuid::new_v4(),
        grant: Grant::Key {
            key_hash: "00".repeat(32),
        },
        api_version: "v3.2".into(),
        origin: "http://west".into(),
        result: None,
        error: None,
    }
}

fn manifest(files: &[(Uuid, &[u8])]) -> Manifest {
    Manifest {
        format: 1,
        kind: "model".into(),
        source_region: "westus".into(),
        source_id: Uuid::new_v4(),
        display_name: "m".into(),
        description: None,
        locale: "en-US".into(),
        properties: json!({}),
        doc: json!({}),
        files: files
            .iter()
            .map(|(id, bytes)| FilePlan::of(*id, bytes, 1000))
            .collect(),
    }
}

#[tokio::test]
async fn a_broken_transfer_resumes_with_the_missing_chunks_only() {
    let bytes: Vec<u8> = (0..9_500u32).map(|i| (i % 251) as u8).collect();
    let file = Uuid::new_v4();
    let m = manifest(&[(file, &bytes)]);
    let bodies = vec![Bytes::from(bytes.clone())];
    let doc = op_doc();
    let target = FakeTarget::default();
    *target.fail_after.lock().unwrap() = Some(4);

    // Killed after 4 of the 10 chunks: a transient failure, nothing committed.
    let err = transfer(&target, &doc, m.clone(), &bodies)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(target.puts.load(Ordering::SeqCst), 4);
    assert!(target.committed.lock().unwrap().is_none());

    // Back: only the 6 missing chunks go, then the commit.
    *target.fail_after.lock().unwrap() = None;
    let v = transfer(&target, &doc, m.clone(), &bodies).await.unwrap();
    assert_eq!(
        target.puts.load(Ordering::SeqCst),
        10,
        "no chunk sent twice"
    );
    assert!(v["self"]
        .as_str()
        .unwrap()
        .ends_with(&doc.target_asset.to_string()));

    // A retried operation: no chunk at all, the same entity.
    let again = transfer(&target, &doc, m, &bodies).await.unwrap();
    assert_eq!(again, v);
    assert_eq!(target.puts.load(Ordering::SeqCst), 10);
}

#[tokio::test]
async fn a_corrupted_chunk_is_refused_and_not_retried() {
    let bytes = vec![1u8; 2_500];
    let file = Uuid::new_v4();
    let m = manifest(&[(file, &bytes)]);
    // The bytes sent differ from what the manifest promises.
    let mut other = bytes.clone();
    other[1_700] = 2;
    let target = FakeTarget::default();
    let err = transfer(&target, &op_doc(), m, &[Bytes::from(other)])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CopyError::Invalid {
                code: "InvalidChecksum",
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_transient());
    assert!(target.committed.lock().unwrap().is_none());
}

#[tokio::test]
async fn the_target_stages_verifies_and_resumes_in_its_blob_store() {
    let (_dir, state) = state(Vec::new()).await;
    let (resource, _) = resource(&state, "dst").await;
    let asset = Uuid::new_v4();
    let file = Uuid::new_v4();
    let bytes: Vec<u8> = (0..3_500u32).map(|i| (i * 31 % 253) as u8).collect();
    let m = manifest(&[(file, &bytes)]);
    let plan = m.files[0].clone();
    let chunk = |i: u32| {
        let r = plan.range(i).unwrap();
        Bytes::copy_from_slice(&bytes[r.start as usize..r.end as usize])
    };

    // A chunk before begin: not staged (the source starts over from begin).
    assert!(matches!(
        target::put_chunk(&state, resource, asset, file, 0, chunk(0)).await,
        Err(CopyError::Retry(_))
    ));
    assert!(target::stage(&state, resource, asset, &m)
        .await
        .unwrap()
        .is_empty());
    target::put_chunk(&state, resource, asset, file, 0, chunk(0))
        .await
        .unwrap();
    target::put_chunk(&state, resource, asset, file, 2, chunk(2))
        .await
        .unwrap();
    // A wrong chunk, a chunk past the end: refused, not staged.
    assert!(matches!(
        target::put_chunk(&state, resource, asset, file, 1, chunk(0)).await,
        Err(CopyError::Invalid {
            code: "InvalidChecksum",
            ..
        })
    ));
    assert!(
        target::put_chunk(&state, resource, asset, file, 9, chunk(0))
            .await
            .is_err()
    );
    // Missing a chunk: not assembled.
    assert!(matches!(
        target::assemble(&state, resource, asset, &m).await,
        Err(CopyError::Retry(_))
    ));
    // Resumed with the same manifest: what is staged is reported.
    let mut have = target::stage(&state, resource, asset, &m).await.unwrap();
    have.sort_by_key(|c| c.index);
    assert_eq!(
        have,
        vec![ChunkRef { file, index: 0 }, ChunkRef { file, index: 2 }]
    );
    for i in [1, 3] {
        target::put_chunk(&state, resource, asset, file, i, chunk(i))
            .await
            .unwrap();
    }
    let files = target::assemble(&state, resource, asset, &m).await.unwrap();
    assert_eq!(files, vec![(file, Bytes::from(bytes.clone()))]);
    // Another manifest for the same copy starts over.
    let other = manifest(&[(file, &bytes[..10])]);
    assert!(target::stage(&state, resource, asset, &other)
        .await
        .unwrap()
        .is_empty());
    // Nothing of it is an entity: staging is never listed.
    let models = state
        .store()
        .meta
        .list_assets(resource, tandem_store::AssetKind::Model, 0, 100)
        .await
        .unwrap();
    assert_eq!(models.total, 0);
}

/// A vocabulary of the 256 bytes and the two special tokens, to train real artifacts.
struct Bytewise;

impl tandem_engines::adapt::Vocabulary for Bytewise {
    fn model_name(&self) -> &str {
        "bytewise"
    }
    fn model_sha256(&self) -> &str {
        ""
    }
    fn n_vocab(&self) -> u32 {
        258
    }
    fn sot(&self) -> u32 {
        257
    }
    fn eot(&self) -> u32 {
        256
    }
    fn token_bytes(&self, id: u32) -> Option<Vec<u8>> {
        u8::try_from(id).ok().map(|b| vec![b])
    }
}

#[test]
fn a_copied_artifact_is_checked_by_its_header_and_its_own_digest() {
    let model = tandem_engines::AdaptedModel::train(
        &["the cell divides\nthe nucleus holds the genome\n"],
        &[],
        &Bytewise,
    )
    .unwrap();
    let bytes = model.to_bytes();
    assert_eq!(artifact_base(&bytes).as_deref(), Ok("bytewise"));
    // Any flipped byte, a cut, another magic or a newer format: refused.
    for i in (0..bytes.len()).step_by(7) {
        let mut b = bytes.clone();
        b[i] ^= 0x20;
        assert!(artifact_base(&b).is_err(), "flip at {i}");
    }
    for n in [0, 8, 12, 44, bytes.len() - 1] {
        assert!(artifact_base(&bytes[..n]).is_err(), "cut at {n}");
    }
    let mut newer = bytes.clone();
    newer[8..12].copy_from_slice(&(tandem_engines::adapt::FORMAT_VERSION + 1).to_le_bytes());
    let err = artifact_base(&newer).unwrap_err();
    assert!(err.contains("format"), "{err}");
    // What the cheap check accepts, the full parse accepts too.
    assert!(tandem_engines::AdaptedModel::from_bytes(&bytes).is_ok());
}

#[test]
fn a_chunk_digest_signs_like_its_body() {
    let region = |s: &str| RegionName::new(s).unwrap();
    let west = tandem_core::PeerAuth::new(region("westus"), b"0123456789abcdef".to_vec());
    let east = tandem_core::PeerAuth::new(region("eastus"), b"0123456789abcdef".to_vec());
    // Two equal chunks, then other bytes.
    let mut body = vec![7u8; 8192];
    body.extend((0..1808u32).map(|i| i as u8));
    let plan = FilePlan::of(Uuid::new_v4(), &body, 4096);
    let digest = plan.chunk_digest(0).unwrap();
    let signed = west.sign_digest(&region("eastus"), "PUT", "/c/0", &digest, 1000);
    assert_eq!(
        signed,
        west.sign(&region("eastus"), "PUT", "/c/0", &body[..4096], 1000)
    );
    let verify = |b: &[u8]| {
        east.verify_digest(
            Some(&signed.region),
            Some(&signed.time),
            Some(&signed.signature),
            "PUT",
            "/c/0",
            &tandem_core::PeerAuth::body_sha256(b),
            1000,
            |_| true,
        )
    };
    assert!(verify(&body[..4096]).is_ok());
    // The signature still authenticates the body: other bytes do not verify.
    assert!(verify(&body[8192..]).is_err());
    assert!(plan.check_chunk_digest(0, 4096, &digest).is_ok());
    assert!(
        plan.check_chunk_digest(1, 4096, &digest).is_ok(),
        "same bytes"
    );
    assert!(
        plan.check_chunk_digest(2, 4096, &digest).is_err(),
        "wrong length"
    );
}

#[test]
fn a_large_file_is_planned_alike_on_two_threads() {
    let bytes: Vec<u8> = (0..9_000_000u32).map(|i| (i * 7 / 13) as u8).collect();
    let plan = FilePlan::of(Uuid::new_v4(), &bytes, 1 << 20);
    assert_eq!(plan.chunks.len(), 9);
    assert!(plan.check_file(&bytes).is_ok());
    for i in 0..9u32 {
        let r = plan.range(i).unwrap();
        assert!(plan
            .check_chunk(i, &bytes[r.start as usize..r.end as usize])
            .is_ok());
    }
}

#[tokio::test]
async fn a_commit_that_is_not_a_model_leaves_no_file_and_no_row() {
    let (_dir, state) = state(Vec::new()).await;
    let (resource, key) = resource(&state, "dst").await;
    let (asset, file) = (Uuid::new_v4(), Uuid::new_v4());
    let bytes = vec![3u8; 2_500];
    let mut m = manifest(&[(file, &bytes)]);
    m.doc = json!({"format": 1, "baseModel": Uuid::new_v4(), "datasets": [], "artifact": file});
    target::stage(&state, resource, asset, &m).await.unwrap();
    for i in 0..3u32 {
        let r = m.files[0].range(i).unwrap();
        let chunk = Bytes::copy_from_slice(&bytes[r.start as usize..r.end as usize]);
        target::put_chunk(&state, resource, asset, file, i, chunk)
            .await
            .unwrap();
    }
    let req = CommitRequest {
        grant: Grant::Key {
            key_hash: key.hash().to_hex(),
        },
        api_version: "v3.2".into(),
    };
    let err = target::commit(&state, resource, asset, &req, "http://east")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CopyError::Invalid {
                code: "InvalidModel",
                ..
            }
        ),
        "{err}"
    );
    let key = tandem_store::asset_file_key(resource, asset, file);
    assert!(state.store().blobs.get(&key).await.unwrap().is_none());
    let models = state
        .store()
        .meta
        .list_assets(resource, tandem_store::AssetKind::Model, 0, 100)
        .await
        .unwrap();
    assert_eq!(models.total, 0);
}
