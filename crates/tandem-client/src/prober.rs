//! The background prober: `GET /readyz` (`/readyz/speaker` for the speaker routes) on open
//! (when due) and recovering regions, and on ejected nodes (when due), every
//! `probe_interval`, holding only a weak reference so it ends with the client.

use std::sync::Weak;
use std::time::Duration;

use tokio::time::Instant;

use crate::breaker::{BreakerState, ProbeEffect};
use crate::engine::Engine;
use crate::observe::ClientEvent;

/// Probes open (when due) and recovering regions, and ejected nodes, of the configured route
/// set every `probe_interval`, until the client is gone.
pub(crate) async fn prober(engine: Weak<Engine>) {
    let interval = match engine.upgrade() {
        Some(e) => Duration::from_millis(e.policy.probe_interval_ms),
        None => return,
    };
    loop {
        tokio::time::sleep(interval).await;
        let Some(e) = engine.upgrade() else { return };
        probe_round(&e).await;
    }
}

/// One round: `GET {ready_path}` on every region whose breaker wants a probe now, and on
/// every ejected node whose open period is over.
pub(crate) async fn probe_round(e: &Engine) {
    let now = Instant::now();
    let due: Vec<usize> = (0..e.regions.len())
        .filter(|&i| {
            e.regions[i]
                .breaker
                .lock()
                .expect("breaker lock")
                .probe_due(now)
        })
        .collect();
    let mut nodes = Vec::new();
    for (i, r) in e.regions.iter().enumerate().filter(|(_, r)| r.balanced()) {
        for (n, node) in r.nodes.iter().enumerate() {
            if node
                .breaker
                .lock()
                .expect("node breaker lock")
                .probe_due(now)
            {
                nodes.push((i, n));
            }
        }
    }
    futures::future::join(
        futures::future::join_all(due.iter().map(|&i| probe(e, i))),
        futures::future::join_all(nodes.iter().map(|&(i, n)| e.probe_node(i, n))),
    )
    .await;
}

/// A region is ready when any of its nodes is (all are asked at once).
async fn probe(e: &Engine, idx: usize) {
    let state_now = e.regions[idx].breaker.lock().expect("breaker lock").state();
    e.set_gauge(idx, state_now);
    let nodes = 0..e.regions[idx].nodes.len();
    let ready = futures::future::join_all(nodes.map(|n| e.node_ready(idx, n))).await;
    let ok = ready.into_iter().any(|r| r);
    let failback_after = Duration::from_millis(e.policy.failback_after_ms);
    let effect = {
        let mut b = e.regions[idx].breaker.lock().expect("breaker lock");
        b.on_probe(ok, Instant::now(), failback_after, rand::random::<f64>())
    };
    let name = e.label(idx);
    let gauge = e.metrics.breaker_state.with_label_values(&[&name]);
    match effect {
        ProbeEffect::Nothing => {}
        ProbeEffect::Recovering => gauge.set(BreakerState::Recovering.gauge()),
        ProbeEffect::FailedBack => {
            gauge.set(BreakerState::Closed.gauge());
            e.metrics.failbacks.inc();
            tracing::info!(region = %name, "failing back");
            e.emit(ClientEvent::Failback { to: name });
        }
        ProbeEffect::Tripped(open_for) => {
            gauge.set(BreakerState::Open.gauge());
            e.metrics.trips.inc();
            e.emit(ClientEvent::Trip {
                region: name,
                open_for,
            });
        }
    }
}
