//! Prometheus metrics of one region process.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::AppState;

/// The region's metrics, in their own registry (no globals, so tests can run several regions in
/// one process).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Requests by route, method and status.
    pub requests: IntCounterVec,
    /// Request latency by route.
    pub latency: HistogramVec,
    /// Engine real-time factor (compute seconds / audio seconds) by engine.
    pub rtf: HistogramVec,
    /// Recognition jobs waiting for a worker.
    pub stt_queue: IntGauge,
    /// Recognition jobs running.
    pub stt_busy: IntGauge,
    /// Synthesis jobs waiting for a worker.
    pub tts_queue: IntGauge,
    /// Synthesis jobs running.
    pub tts_busy: IntGauge,
    /// Requests refused by the per-resource concurrency quota.
    pub throttled: IntCounterVec,
    /// Seconds from a change's commit at the pair to its apply here.
    pub replication_lag: Histogram,
    /// Changes from the pair that modified something here.
    pub replication_applied: IntCounter,
    /// Changes of the pair's log not applied here yet (as of the last pull).
    pub replication_behind: IntGauge,
    /// Failed replication pulls.
    pub replication_errors: IntCounter,
    /// 1 while the region serves speaker traffic, 0 while it catches up with its pair.
    pub speaker_serving: IntGauge,
    /// Backups by outcome (`ok`, `error`).
    pub backup_runs: IntCounterVec,
    /// Duration of successful backups.
    pub backup_duration: Histogram,
    /// Start time (Unix seconds) of the newest successful backup; its age is the region's
    /// current recovery point.
    pub backup_last_success: Gauge,
    /// Plaintext bytes that backups had to upload (not deduplicated).
    pub backup_new_bytes: IntCounter,
    /// 1 while the last replication pull from the pair succeeded, 0 after a failed one (paired
    /// regions only). Set when `/metrics` or `/status` is read.
    pub replication_pair_reachable: IntGauge,
    /// When the last replication pull succeeded (Unix seconds; 0: never). Set when `/metrics`
    /// or `/status` is read.
    pub replication_last_pull: Gauge,
    /// Speaker service state changes by the state entered (`catching-up`, `serving`): a
    /// region's failback shows as a change to `serving`.
    pub speaker_state_changes: IntCounterVec,
    /// The pair's link going down (`unreachable`) or coming back (`reachable`).
    pub replication_link_changes: IntCounterVec,
    /// The region's Custom Speech and Custom Voice assets by kind. Set when `/metrics` or
    /// `/status` is read.
    pub assets: IntGaugeVec,
    /// The region's own resources. Set when `/metrics` or `/status` is read.
    pub resources: IntGauge,
    /// Live speaker profiles (this region's and the pair's replicated ones).
    pub speaker_profiles: IntGauge,
    /// Live speaker enrollments (this region's and the pair's replicated ones).
    pub speaker_enrollments: IntGauge,
}

impl Metrics {
    /// Registers every metric, labelled with the region.
    pub fn new(region: &str) -> Self {
        let registry = Registry::new_custom(
            Some("tandem".into()),
            Some([("region".to_owned(), region.to_owned())].into()),
        )
        .expect("valid registry");
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )
        .expect("metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ],
            ),
            &["route"],
        )
        .expect("metric");
        let rtf = HistogramVec::new(
            HistogramOpts::new(
                "engine_real_time_factor",
                "engine compute time / audio duration",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0,
            ]),
            &["engine"],
        )
        .expect("metric");
        let gauge = |n: &str, h: &str| IntGauge::new(n, h).expect("metric");
        let stt_queue = gauge("stt_queue_depth", "recognition jobs waiting for a worker");
        let stt_busy = gauge("stt_workers_busy", "recognition jobs running");
        let tts_queue = gauge("tts_queue_depth", "synthesis jobs waiting for a worker");
        let tts_busy = gauge("tts_workers_busy", "synthesis jobs running");
        let throttled = IntCounterVec::new(
            Opts::new(
                "quota_throttled_total",
                "requests refused by the concurrency quota",
            ),
            &["route"],
        )
        .expect("metric");
        let replication_lag = Histogram::with_opts(
            HistogramOpts::new(
                "replication_lag_seconds",
                "time from a change's commit at the pair to its apply here",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
        )
        .expect("metric");
        let counter = |n: &str, h: &str| IntCounter::new(n, h).expect("metric");
        let replication_applied = counter(
            "replication_changes_applied_total",
            "changes from the pair that modified something here",
        );
        let replication_errors =
            counter("replication_pull_errors_total", "failed replication pulls");
        let replication_behind = gauge(
            "replication_behind_changes",
            "changes of the pair's log not applied here yet",
        );
        let speaker_serving = gauge(
            "speaker_serving",
            "1 while the region serves speaker traffic, 0 while it catches up with its pair",
        );
        speaker_serving.set(1);
        let backup_runs = IntCounterVec::new(
            Opts::new("backup_runs_total", "backups by outcome"),
            &["outcome"],
        )
        .expect("metric");
        let backup_duration = Histogram::with_opts(
            HistogramOpts::new("backup_duration_seconds", "duration of successful backups")
                .buckets(vec![
                    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                ]),
        )
        .expect("metric");
        let backup_last_success = Gauge::new(
            "backup_last_success_timestamp_seconds",
            "start time of the newest successful backup (Unix seconds)",
        )
        .expect("metric");
        let backup_new_bytes = counter(
            "backup_new_bytes_total",
            "plaintext bytes backups uploaded (after deduplication)",
        );
        let replication_pair_reachable = gauge(
            "replication_pair_reachable",
            "1 while the last replication pull from the pair succeeded, 0 after a failed one",
        );
        let replication_last_pull = Gauge::new(
            "replication_last_pull_timestamp_seconds",
            "when the last replication pull from the pair succeeded (Unix seconds)",
        )
        .expect("metric");
        let speaker_state_changes = IntCounterVec::new(
            Opts::new(
                "speaker_state_changes_total",
                "speaker service state changes, by the state entered",
            ),
            &["state"],
        )
        .expect("metric");
        let replication_link_changes = IntCounterVec::new(
            Opts::new(
                "replication_link_changes_total",
                "the pair's replication link going unreachable or reachable again",
            ),
            &["to"],
        )
        .expect("metric");
        let assets = IntGaugeVec::new(
            Opts::new("assets", "the region's assets by kind"),
            &["kind"],
        )
        .expect("metric");
        let resources = gauge("resources", "the region's own resources");
        let speaker_profiles = gauge("speaker_profiles", "live speaker profiles");
        let speaker_enrollments = gauge("speaker_enrollments", "live speaker enrollments");
        for c in [
            Box::new(replication_pair_reachable.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(replication_last_pull.clone()),
            Box::new(speaker_state_changes.clone()),
            Box::new(replication_link_changes.clone()),
            Box::new(assets.clone()),
            Box::new(resources.clone()),
            Box::new(speaker_profiles.clone()),
            Box::new(speaker_enrollments.clone()),
        ] {
            registry.register(c).expect("unique metric");
        }
        for c in [
            Box::new(backup_runs.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(backup_duration.clone()),
            Box::new(backup_last_success.clone()),
            Box::new(backup_new_bytes.clone()),
        ] {
            registry.register(c).expect("unique metric");
        }
        for c in [
            Box::new(replication_lag.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(replication_applied.clone()),
            Box::new(replication_errors.clone()),
            Box::new(replication_behind.clone()),
            Box::new(speaker_serving.clone()),
            Box::new(requests.clone()),
            Box::new(latency.clone()),
            Box::new(rtf.clone()),
            Box::new(stt_queue.clone()),
            Box::new(stt_busy.clone()),
            Box::new(tts_queue.clone()),
            Box::new(tts_busy.clone()),
            Box::new(throttled.clone()),
        ] {
            registry.register(c).expect("unique metric");
        }
        Self {
            registry,
            requests,
            latency,
            rtf,
            stt_queue,
            stt_busy,
            tts_queue,
            tts_busy,
            throttled,
            replication_lag,
            replication_applied,
            replication_behind,
            replication_errors,
            speaker_serving,
            backup_runs,
            backup_duration,
            backup_last_success,
            backup_new_bytes,
            replication_pair_reachable,
            replication_last_pull,
            speaker_state_changes,
            replication_link_changes,
            assets,
            resources,
            speaker_profiles,
            speaker_enrollments,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

/// Middleware: counts and times every request by its route template (never the raw path, so
/// ids do not explode the label space).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let resp = next.run(req).await;
    let elapsed = start.elapsed().as_secs_f64();
    let status = resp.status().as_u16().to_string();
    let m = state.metrics();
    m.requests
        .with_label_values(&[&route, &method, &status])
        .inc();
    m.latency.with_label_values(&[&route]).observe(elapsed);
    if resp.status().as_u16() == 429 {
        m.throttled.with_label_values(&[&route]).inc();
    }
    tracing::info!(target: "tandem::http", %method, %route, %status, latency_ms = elapsed * 1e3, "request");
    resp
}

/// `GET /metrics`. The gauges that are read from the store (asset counts) or from the
/// follower's last pull are brought up to date first.
pub async fn handler(State(state): State<AppState>) -> impl IntoResponse {
    crate::routes::status::refresh_gauges(&state).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics().render(),
    )
}
