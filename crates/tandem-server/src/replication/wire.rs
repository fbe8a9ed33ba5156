//! What travels between paired regions, and the discovery document clients read.

use serde::{Deserialize, Serialize};
use tandem_core::RegionName;
use tandem_store::{ReplicatedResource, SpeakerChange};
use uuid::Uuid;

use super::SpeakerState;

/// Path of the pull route (peer-authenticated).
pub const PULL_PATH: &str = "/internal/v1/replication/speaker";
/// Path of the discovery document (public).
pub const DISCOVERY_PATH: &str = "/.well-known/tandem";
/// Version of [`Discovery`]'s shape.
pub const DISCOVERY_FORMAT_VERSION: u32 = 1;

/// One change of the origin log, with the enrollment audio when it has some.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireChange {
    /// The change.
    pub change: SpeakerChange,
    /// The enrollment's WAV, base64; absent for other ops, or when the audio is gone at the
    /// origin (a later reset or delete removed it: the enrollment arrives as a tombstone then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<String>,
}

/// The answer to `GET /internal/v1/replication/speaker?after=N`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullResponse {
    /// The answering region.
    pub region: RegionName,
    /// Its store's id: if it changes, its log restarted and the follower starts over.
    pub store_id: Uuid,
    /// The newest `seq` of its log.
    pub head: u64,
    /// Changes with `seq > after`, oldest first (possibly fewer than asked, to bound the size).
    pub changes: Vec<WireChange>,
    /// All of the answering region's own resources, with key hashes, so the follower can
    /// accept their keys for their speaker data.
    pub resources: Vec<ReplicatedResource>,
}

impl PullResponse {
    /// Whether the follower holds the whole log once it applied this batch.
    pub fn reaches_head(&self, after: u64) -> bool {
        let last = self.changes.last().map_or(after, |c| c.change.seq);
        last >= self.head
    }
}

/// The region a discovery document points to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairRef {
    /// Its name.
    pub region: RegionName,
    /// Its base URL, as this region reaches it.
    pub endpoint: String,
}

/// The speaker service's part of the discovery document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpeakerService {
    /// `standalone`, `catching-up` or `serving`.
    pub state: SpeakerState,
    /// The region its data is replicated to, if any.
    pub paired_with: Option<RegionName>,
}

/// Services listed in the discovery document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Services {
    /// Speaker recognition.
    pub speaker: SpeakerService,
}

/// `GET /.well-known/tandem`: what a client needs to keep a region's speaker traffic going
/// when the region dies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Discovery {
    /// This region.
    pub region: RegionName,
    /// [`DISCOVERY_FORMAT_VERSION`].
    pub format_version: u32,
    /// The paired region, which serves this region's speaker data while it is down.
    pub pair: Option<PairRef>,
    /// Per-service state.
    pub services: Services,
}
