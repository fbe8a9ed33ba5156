//! `tandem serve`: open the store, bind, load the engines, serve until SIGTERM.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rand::RngCore;
use tandem_core::{RegionConfig, TokenSigner};
use tandem_engines::models::{ModelCache, SPEAKER_GE2E, WHISPER_TINY_EN};
use tandem_engines::stt::WhisperRecognizer;
use tandem_engines::tts::TtsEngine;
use tandem_engines::{Recognizer, SpeakerEncoder};
use tandem_server::{
    AppState, BaseEngines, EnginePool, Engines, Follower, HttpPairLink, Metrics, Replication,
    StateParts, REQUIRED_SPEECH_SECS,
};

/// Reads the region's STS secret, creating it (256 random bits, mode 0600) on first start.
pub fn load_or_create_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let secret = hex::decode(text.trim())
            .with_context(|| format!("{} does not hold a hex secret", path.display()))?;
        anyhow::ensure!(
            secret.len() >= 16,
            "{} holds a secret shorter than 128 bits",
            path.display()
        );
        return Ok(secret);
    }
    let mut secret = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(hex::encode(&secret).as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(secret)
}

/// Logs to stderr: `TANDEM_LOG` filters (default `info`), `TANDEM_LOG_FORMAT=json` for JSON,
/// colours only on a terminal.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TANDEM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,whisper_rs=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = if std::env::var("TANDEM_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down gracefully"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt: shutting down gracefully"),
    }
}

/// Loads (pulling first if needed) the region's speech engines; blocking.
pub fn load_engines(cfg: &RegionConfig, stt_threads: usize) -> anyhow::Result<Engines> {
    let cache = ModelCache::new(cfg.model_dir());
    let path = match cache.whisper_model_path(WHISPER_TINY_EN) {
        Ok(p) => p,
        Err(_) => {
            tracing::info!(dir = %cfg.model_dir().display(), "first start: pulling {WHISPER_TINY_EN}");
            cache
                .pull(WHISPER_TINY_EN, &|ev| tracing::info!(?ev, "model pull"))
                .context("pulling the speech model")?
        }
    };
    let recognizer = WhisperRecognizer::load(&path, stt_threads).context("loading Whisper")?;
    let tts = TtsEngine::new().context("loading the TTS voices")?;
    let speaker_path = match cache.model_path(SPEAKER_GE2E) {
        Ok(p) => p,
        Err(_) => {
            tracing::info!(dir = %cfg.model_dir().display(), "first start: pulling {SPEAKER_GE2E}");
            cache
                .pull(SPEAKER_GE2E, &|ev| tracing::info!(?ev, "model pull"))
                .context("pulling the speaker model")?
        }
    };
    let speaker = SpeakerEncoder::load(&speaker_path).context("loading the speaker encoder")?;
    let recognizer: Arc<dyn Recognizer> = Arc::new(recognizer);
    // Other base models (whisper-base) are pulled into the same directory and loaded on first use.
    let bases = BaseEngines::new(recognizer.clone(), cfg.model_dir(), stt_threads);
    Ok(Engines {
        recognizer,
        bases,
        tts: Arc::new(tts),
        speaker: Arc::new(speaker),
    })
}

/// CPU cores, recognition workers, and threads per recognition.
fn sizing(cfg: &RegionConfig) -> (usize, usize, usize) {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let stt_workers = cfg.engine_workers.unwrap_or((cores / 2).max(1));
    (cores, stt_workers, (cores / stt_workers).max(1))
}

/// The region's state, engines not loaded yet: its store opened, its STS secret read (created
/// on first start), its worker pools sized for this machine. Also returns the CPU threads each
/// recognition gets, for [`load_engines`].
pub async fn build_state(cfg: &RegionConfig) -> anyhow::Result<(AppState, usize)> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating data dir {}", cfg.data_dir.display()))?;
    let secret = load_or_create_secret(&cfg.token_secret_path())?;
    let signer = TokenSigner::new(cfg.region.clone(), secret, cfg.token_ttl_secs);
    let admin_token = cfg.admin_token()?;
    let replication = Arc::new(Replication::new(cfg, cfg.peer_secret()?));
    let store = tandem_server::open_region_store(cfg)
        .await
        .context("opening the region's store")?;

    let (cores, stt_workers, stt_threads) = sizing(cfg);
    let metrics = Metrics::new(cfg.region.as_str());
    let stt_pool = EnginePool::new(
        "recognition",
        stt_workers,
        cfg.engine_queue_depth,
        metrics.stt_queue.clone(),
        metrics.stt_busy.clone(),
    );
    let tts_pool = EnginePool::new(
        "synthesis",
        cores,
        cfg.engine_queue_depth,
        metrics.tts_queue.clone(),
        metrics.tts_busy.clone(),
    );
    let state = AppState::new(StateParts {
        config: cfg.clone(),
        store,
        signer,
        admin_token,
        stt_pool,
        tts_pool,
        metrics,
        replication,
    });
    Ok((state, stt_threads))
}

/// Serves one region until SIGTERM or Ctrl-C.
pub async fn run(cfg: RegionConfig) -> anyhow::Result<()> {
    init_tracing();
    let (state, stt_threads) = build_state(&cfg).await?;
    let store = state.store().clone();
    let replication = state.replication().clone();
    let (_, stt_workers, _) = sizing(&cfg);

    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    // The one line on stdout: scripts and the test harness read the bound address from it.
    println!("tandem: region {} listening on http://{addr}", cfg.region);
    std::io::stdout().flush()?;
    tracing::info!(region = %cfg.region, %addr, data_dir = %cfg.data_dir.display(), stt_workers, stt_threads, "serving");

    let loader_state = state.clone();
    let loader_cfg = cfg.clone();
    tokio::task::spawn_blocking(move || match load_engines(&loader_cfg, stt_threads) {
        Ok(engines) => {
            loader_state.set_engines(engines);
            tracing::info!("engines loaded: ready");
        }
        Err(e) => {
            tracing::error!("cannot load the speech engines: {e:#}");
            eprintln!("tandem: error: cannot load the speech engines: {e:#}");
            std::process::exit(1);
        }
    });

    let mut follower_task = None;
    if let (Some(pair), Some(auth)) = (replication.pair(), replication.auth()) {
        let link = Arc::new(HttpPairLink::new(pair.clone(), auth.clone()));
        if let Some(follower) = Follower::new(
            store.clone(),
            link,
            replication.clone(),
            state.metrics().clone(),
            REQUIRED_SPEECH_SECS,
        ) {
            tracing::info!(pair = %pair.name, endpoint = %pair.endpoint, "replicating speaker data with the pair");
            follower_task = Some(tokio::spawn(follower.run()));
        }
    }

    // Endpoint-log retention, and Custom Speech jobs a previous run left unfinished (they
    // start once the engines are loaded).
    tandem_server::start_background(&state);
    tandem_server::backup::spawn_worker(&state);

    let stopping = replication.clone();
    axum::serve(listener, tandem_server::router(state))
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            // Long polls and the follower end now, so draining is quick.
            stopping.begin_shutdown();
        })
        .await
        .context("serving")?;
    // The follower saw the shutdown flag: let it release its replication lease, so another node
    // of the region follows the pair at once instead of after the lease lapses.
    if let Some(task) = follower_task {
        if tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .is_err()
        {
            tracing::warn!("the replication follower did not stop within 5 s");
        }
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}
