//! Per-region STS token cache: one fetch at a time, refreshed `margin` before expiry, and
//! refetched when a request was refused with the cached token.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How long a Tandem (and Azure) STS token is valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(600);

#[derive(Debug)]
struct Cached {
    token: String,
    expires: Instant,
}

/// One region's token.
#[derive(Debug)]
pub(crate) struct TokenCache {
    margin: Duration,
    slot: tokio::sync::Mutex<Option<Cached>>,
}

impl TokenCache {
    pub fn new(margin: Duration) -> Self {
        TokenCache {
            margin,
            slot: tokio::sync::Mutex::new(None),
        }
    }

    /// The cached token if it is fresh and is not `stale` (the one just refused); otherwise
    /// the result of `fetch`, which is cached. Returns whether a fetch happened.
    pub async fn get<E, F, Fut>(&self, stale: Option<&str>, fetch: F) -> Result<(String, bool), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<String, E>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some(c) = slot.as_ref() {
            let fresh = Instant::now() + self.margin < c.expires;
            if fresh && stale != Some(c.token.as_str()) {
                return Ok((c.token.clone(), false));
            }
        }
        let fetched_at = Instant::now();
        let token = fetch().await?;
        *slot = Some(Cached {
            token: token.clone(),
            expires: fetched_at + TOKEN_LIFETIME,
        });
        Ok((token, true))
    }
}
