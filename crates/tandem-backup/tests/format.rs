//! FORMAT.md is precise enough to write a reader: this one uses only the document (and the
//! primitive crates), not the library's decoding code.

mod support;

use std::collections::BTreeMap;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use support::*;
use tandem_backup::*;

struct Reader {
    key: Option<[u8; 32]>,
}

impl Reader {
    fn new(master: Option<[u8; 32]>) -> Self {
        Reader { key: master }
    }

    fn content_id(&self, data: &[u8]) -> [u8; 32] {
        match self.key {
            Some(m) => {
                let k = blake3::derive_key("tandem-backup v1 chunk id key", &m);
                *blake3::keyed_hash(&k, data).as_bytes()
            }
            None => *blake3::hash(data).as_bytes(),
        }
    }

    fn open(&self, name: &str, kind: u8, obj: &[u8]) -> Vec<u8> {
        assert_eq!(&obj[..4], b"TBK1");
        assert_eq!((obj[4], obj[5], obj[7]), (1, kind, 0));
        let flags = obj[6];
        assert_eq!(flags & 2 != 0, self.key.is_some());
        let payload = match self.key {
            None => obj[40..].to_vec(),
            Some(m) => {
                let k = blake3::derive_key("tandem-backup v1 encryption key", &m);
                let mut aad = obj[..40].to_vec();
                aad.extend_from_slice(name.as_bytes());
                XChaCha20Poly1305::new(&k.into())
                    .decrypt(
                        XNonce::from_slice(&obj[40..64]),
                        Payload {
                            msg: &obj[64..],
                            aad: &aad,
                        },
                    )
                    .unwrap()
            }
        };
        let plain = if flags & 1 != 0 {
            zstd::decode_all(&payload[..]).unwrap()
        } else {
            payload
        };
        assert_eq!(self.content_id(&plain), obj[8..40]);
        plain
    }
}

async fn read_back(master: Option<[u8; 32]>) {
    let opts = RepoOptions {
        key: master.map(Key::from_bytes),
        ..RepoOptions::default()
    };
    let repo = Repository::init_target(Memory.fresh(), "m", &opts)
        .await
        .unwrap();
    let src = MemSource::new(
        b"export",
        &[
            ("a/x.bin", noise(5_000_000, 1)),
            ("t.txt", text(70_000)),
            ("e", vec![]),
        ],
    );
    let s = repo
        .backup(&src, &BackupOptions::default(), &NoProgress)
        .await
        .unwrap();
    let store = repo.store();
    let cfg: serde_json::Value =
        serde_json::from_slice(&get(store, "tandem-backup.json").await).unwrap();
    assert_eq!(cfg["format"], 1);
    assert_eq!(cfg["encryption"].is_null(), master.is_none());

    let r = Reader::new(master);
    let name = format!("snapshots/{}", s.id);
    let m: serde_json::Value =
        serde_json::from_slice(&r.open(&name, 2, &get(store, &name).await)).unwrap();
    assert_eq!(m["format"], 1);
    assert_eq!(m["id"], s.id.as_str());
    let mut files = BTreeMap::new();
    let entries = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .chain([&m["metadata"]]);
    for f in entries {
        let mut content = Vec::new();
        for c in f["chunks"].as_array().unwrap() {
            let id = c["id"].as_str().unwrap();
            let cname = format!("chunks/{}/{id}", &id[..2]);
            let plain = r.open(&cname, 1, &get(store, &cname).await);
            assert_eq!(hex::encode(r.content_id(&plain)), id);
            assert_eq!(plain.len() as u64, c["size"].as_u64().unwrap());
            content.extend_from_slice(&plain);
        }
        assert_eq!(
            hex::encode(r.content_id(&content)),
            f["blake3"].as_str().unwrap()
        );
        assert_eq!(content.len() as u64, f["size"].as_u64().unwrap());
        let path = f["path"].as_str().unwrap_or(METADATA_PATH).to_owned();
        files.insert(path, content);
    }
    assert_eq!(files[METADATA_PATH], b"export");
    for (p, d) in &src.files {
        assert!(files[p] == d.to_vec(), "{p}");
    }
}

#[tokio::test]
async fn a_reader_written_from_format_md_reads_a_plain_repository() {
    read_back(None).await;
}

#[tokio::test]
async fn a_reader_written_from_format_md_reads_an_encrypted_repository() {
    read_back(Some(rand::random())).await;
}
