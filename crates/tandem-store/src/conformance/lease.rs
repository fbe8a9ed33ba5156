//! Job leases ([`crate::lease`]), on controlled time: every call says what "now" is.

use std::time::Duration;

use time::OffsetDateTime;

use crate::{MetaStore, Store};

const TTL: Duration = Duration::from_secs(30);

fn job(tag: &str) -> String {
    format!("test/{tag}/{}", uuid::Uuid::new_v4().simple())
}

/// A free lease is taken; a live one is refused to another node and given back to its own
/// holder; renewal extends it; after expiry another node takes it over (generation 2), and the
/// old holder can no longer renew; release frees it, but only by its holder.
pub async fn leases_exclusive_on_controlled_time(store: &Store) {
    let m = &store.meta;
    let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
    let j = job("excl");
    assert_eq!(m.get_lease(&j).await.expect("get"), None);
    let a = m
        .acquire_lease(&j, "node-a", t0, TTL)
        .await
        .expect("acquire")
        .expect("a free lease is taken");
    assert_eq!((a.holder.as_str(), a.generation), ("node-a", 1));
    assert_eq!(a.expires_at, t0 + time::Duration::seconds(30));
    // Live: refused to B, given back to A (a restarted node), generation unchanged.
    let t1 = t0 + time::Duration::seconds(10);
    assert_eq!(m.acquire_lease(&j, "node-b", t1, TTL).await.unwrap(), None);
    let again = m
        .acquire_lease(&j, "node-a", t1, TTL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.generation, 1);
    assert_eq!(again.expires_at, t1 + time::Duration::seconds(30));
    // Renewed by A at t1 + 20 s: still A's at t1 + 45 s.
    let t2 = t1 + time::Duration::seconds(20);
    assert!(m.renew_lease(&j, "node-a", t2, TTL).await.unwrap());
    let t3 = t2 + time::Duration::seconds(25);
    assert_eq!(m.acquire_lease(&j, "node-b", t3, TTL).await.unwrap(), None);
    // A stops renewing (it died); at expiry exactly, B takes over.
    let expiry = t2 + time::Duration::seconds(30);
    let b = m
        .acquire_lease(&j, "node-b", expiry, TTL)
        .await
        .unwrap()
        .expect("an expired lease is taken over");
    assert_eq!((b.holder.as_str(), b.generation), ("node-b", 2));
    assert!(
        !m.renew_lease(&j, "node-a", expiry, TTL).await.unwrap(),
        "the old holder cannot renew a lease it lost"
    );
    // Only the holder releases.
    m.release_lease(&j, "node-a").await.unwrap();
    assert_eq!(m.get_lease(&j).await.unwrap().unwrap().holder, "node-b");
    m.release_lease(&j, "node-b").await.unwrap();
    assert_eq!(m.get_lease(&j).await.unwrap(), None);
    // A lease expired but not yet taken cannot be renewed either.
    let k = job("lapse");
    m.acquire_lease(&k, "node-a", t0, TTL)
        .await
        .unwrap()
        .unwrap();
    assert!(!m
        .renew_lease(&k, "node-a", t0 + time::Duration::seconds(31), TTL)
        .await
        .unwrap());
}

/// Many tasks race for one free lease at the same instant: exactly one wins.
pub async fn leases_race_one_winner(store: &Store) {
    let j = job("race");
    let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_001);
    let tries = (0..8).map(|i| {
        let m = store.meta.clone();
        let j = j.clone();
        async move { m.acquire_lease(&j, &format!("node-{i}"), now, TTL).await }
    });
    let won: Vec<_> = futures::future::join_all(tries)
        .await
        .into_iter()
        .map(|r| r.expect("acquire"))
        .filter(Option::is_some)
        .collect();
    assert_eq!(won.len(), 1, "exactly one node holds the lease: {won:?}");
}

/// Leases are not customer data: exports leave them out.
pub async fn leases_not_exported(store: &Store) {
    let m: &dyn MetaStore = &*store.meta;
    let j = job("export");
    m.acquire_lease(&j, "node-a", OffsetDateTime::now_utc(), TTL)
        .await
        .unwrap()
        .unwrap();
    let export = m.export_metadata().await.unwrap();
    assert!(
        export.table(crate::LEASE_TABLE).is_none(),
        "job leases are not in exports"
    );
}

/// Region-wide request slots: `limit` live slots per resource, whoever holds them; a released
/// or lapsed slot frees its place; resources are independent; racing takers never exceed it.
pub async fn slots_limit_region_wide(store: &Store) {
    use tandem_core::ResourceId;
    use uuid::Uuid;
    let m = &store.meta;
    let (r, other) = (ResourceId::random(), ResourceId::random());
    let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_002);
    let ttl = Duration::from_secs(60);
    let (s1, s2, s3) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    assert!(m.acquire_slot(r, 2, s1, "node-a", t0, ttl).await.unwrap());
    assert!(m.acquire_slot(r, 2, s2, "node-b", t0, ttl).await.unwrap());
    assert!(
        !m.acquire_slot(r, 2, s3, "node-a", t0, ttl).await.unwrap(),
        "the third of a limit of 2 is refused, whichever node asks"
    );
    assert!(
        m.acquire_slot(other, 2, s3, "node-a", t0, ttl)
            .await
            .unwrap(),
        "another resource has its own slots"
    );
    m.release_slot(r, s1).await.unwrap();
    assert!(m
        .acquire_slot(r, 2, Uuid::new_v4(), "node-a", t0, ttl)
        .await
        .unwrap());
    // node-b dies holding s2: after the ttl its slot no longer counts.
    let later = t0 + time::Duration::seconds(61);
    assert!(m
        .acquire_slot(r, 2, Uuid::new_v4(), "node-a", later, ttl)
        .await
        .unwrap());
    assert!(m
        .acquire_slot(r, 2, Uuid::new_v4(), "node-a", later, ttl)
        .await
        .unwrap());
    assert!(!m
        .acquire_slot(r, 2, Uuid::new_v4(), "node-a", later, ttl)
        .await
        .unwrap());

    // 9 racing takers, limit 4: exactly 4 win.
    let race = ResourceId::random();
    let tries = (0..9).map(|i| {
        let m = store.meta.clone();
        async move {
            m.acquire_slot(race, 4, Uuid::new_v4(), &format!("node-{i}"), t0, ttl)
                .await
        }
    });
    let won = futures::future::join_all(tries)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().expect("acquire"))
        .count();
    assert_eq!(won, 4);
}
