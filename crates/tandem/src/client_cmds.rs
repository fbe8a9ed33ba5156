//! `tandem recognize`, `tandem synthesize`, `tandem regions status` and `tandem gateway`: the
//! failover client, from the command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use clap::{Args, Subcommand};
use tandem_client::{ClientConfig, RecognizeOptions, SynthesisRequest, TandemClient};

/// `tandem recognize`.
#[derive(Debug, Args)]
pub struct RecognizeArgs {
    /// Regions file (TOML): `[[regions]]` in priority order, optional `[policy]`.
    #[arg(long, env = "TANDEM_REGIONS")]
    regions: PathBuf,
    /// The WAV file to recognize.
    file: PathBuf,
    /// `simple` or `detailed`.
    #[arg(long, default_value = "simple")]
    format: String,
    /// Recognition language.
    #[arg(long, default_value = "en-US")]
    language: String,
    /// Recognition mode: conversation, interactive or dictation.
    #[arg(long, default_value = "conversation")]
    mode: String,
    /// Use each region's custom speech endpoint (`cid`) where one is configured.
    #[arg(long)]
    custom: bool,
}

/// `tandem synthesize`.
#[derive(Debug, Args)]
pub struct SynthesizeArgs {
    /// Regions file (TOML).
    #[arg(long, env = "TANDEM_REGIONS")]
    regions: PathBuf,
    /// Text to speak (or give --ssml).
    #[arg(long, conflicts_with = "ssml", required_unless_present = "ssml")]
    text: Option<String>,
    /// An SSML file to speak.
    #[arg(long)]
    ssml: Option<PathBuf>,
    /// Voice short name, e.g. en-US-SltFlite, or a custom voice name with --custom-voice.
    #[arg(long, default_value = "en-US-SltFlite")]
    voice: String,
    /// Prefer each region's custom voice deployment, falling back to a public voice.
    #[arg(long)]
    custom_voice: bool,
    /// X-Microsoft-OutputFormat.
    #[arg(long, default_value = "riff-24khz-16bit-mono-pcm")]
    output_format: String,
    /// Where to write the audio.
    #[arg(short = 'o', long)]
    output: PathBuf,
}

/// `tandem regions …`.
#[derive(Debug, Subcommand)]
pub enum RegionsCommand {
    /// Probe every region and print health, breaker state and latency.
    Status {
        /// Regions file (TOML).
        #[arg(long, env = "TANDEM_REGIONS")]
        regions: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `tandem gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Regions file (TOML); its `gateway_key`/`gateway_key_file` protects the gateway.
    #[arg(long, env = "TANDEM_REGIONS")]
    regions: PathBuf,
    /// Address to listen on. Without a gateway key, only loopback is allowed.
    #[arg(long, env = "TANDEM_GATEWAY_LISTEN", default_value = "127.0.0.1:7000")]
    listen: SocketAddr,
    /// Largest request body buffered for replay, in bytes.
    #[arg(long, default_value_t = 32 * 1024 * 1024)]
    max_body_bytes: usize,
}

fn client(path: &std::path::Path) -> anyhow::Result<(ClientConfig, TandemClient)> {
    let cfg =
        ClientConfig::from_file(path).with_context(|| format!("reading {}", path.display()))?;
    let client = TandemClient::new(cfg.clone())?;
    Ok((cfg, client))
}

/// Runs `tandem recognize`.
pub async fn recognize(a: RecognizeArgs) -> anyhow::Result<()> {
    let (_, client) = client(&a.regions)?;
    let audio = Bytes::from(
        std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?,
    );
    let opts = RecognizeOptions {
        mode: a.mode,
        language: a.language,
        format: a.format,
        profanity: None,
        use_custom_model: a.custom,
    };
    let t = Instant::now();
    let answered = client.recognize(audio, &opts).await?;
    eprintln!(
        "answered by {} in {} ms ({} attempts, {} failovers)",
        answered.region,
        t.elapsed().as_millis(),
        answered.attempts,
        answered.failovers
    );
    println!("{}", serde_json::to_string_pretty(&answered.value)?);
    Ok(())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Runs `tandem synthesize`.
pub async fn synthesize(a: SynthesizeArgs) -> anyhow::Result<()> {
    let (_, client) = client(&a.regions)?;
    let ssml = match (&a.ssml, &a.text) {
        (Some(path), _) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, Some(text)) => format!(
            "<speak version='1.0' xml:lang='en-US'><voice name='{}'>{}</voice></speak>",
            xml_escape(&a.voice),
            xml_escape(text)
        ),
        (None, None) => anyhow::bail!("give --text or --ssml"),
    };
    let t = Instant::now();
    let answered = client
        .synthesize(&SynthesisRequest {
            ssml,
            output_format: a.output_format,
            prefer_custom_voice: a.custom_voice,
        })
        .await?;
    std::fs::write(&a.output, &answered.value.audio)
        .with_context(|| format!("writing {}", a.output.display()))?;
    eprintln!(
        "{} bytes of {} from {} via {:?} in {} ms ({} attempts, {} failovers) -> {}",
        answered.value.audio.len(),
        answered.value.content_type,
        answered.region,
        answered.value.link,
        t.elapsed().as_millis(),
        answered.attempts,
        answered.failovers,
        a.output.display()
    );
    Ok(())
}

/// Runs `tandem regions status`.
pub async fn regions(cmd: RegionsCommand) -> anyhow::Result<()> {
    let RegionsCommand::Status { regions, json } = cmd;
    let (cfg, client) = client(&regions)?;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(2))
        .build()?;
    // One live readiness probe per node of each region, alongside the client's own view.
    let mut probes = Vec::new();
    for (r, endpoint) in cfg
        .regions
        .iter()
        .flat_map(|r| r.endpoints().into_iter().map(move |e| (r, e)))
    {
        let t = Instant::now();
        let ready = http.get(format!("{endpoint}/readyz")).send().await;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let health = match ready {
            Ok(resp) if resp.status().is_success() => "ready".to_owned(),
            Ok(resp) => format!("not ready ({})", resp.status().as_u16()),
            Err(e) if e.is_timeout() => "timeout".to_owned(),
            Err(e) if e.is_connect() => "unreachable".to_owned(),
            Err(e) => format!("error: {e}"),
        };
        probes.push((r.name.clone(), endpoint.to_owned(), health, ms));
    }
    let status = client.status();
    if json {
        let v: Vec<_> = probes
            .iter()
            .zip(&status)
            .map(|((name, endpoint, health, ms), s)| {
                serde_json::json!({"name": name, "endpoint": endpoint, "health": health, "probe_ms": ms, "client": s})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{:<12} {:<28} {:<18} {:>9}  BREAKER",
        "REGION", "ENDPOINT", "HEALTH", "LATENCY"
    );
    for ((name, endpoint, health, ms), s) in probes.iter().zip(&status) {
        println!(
            "{name:<12} {endpoint:<28} {health:<18} {ms:>7.1}ms  {:?}",
            s.state
        );
    }
    Ok(())
}

/// Runs `tandem gateway` until SIGTERM or Ctrl-C.
pub async fn gateway(a: GatewayArgs) -> anyhow::Result<()> {
    crate::serve::init_tracing();
    let (cfg, client) = client(&a.regions)?;
    let key = cfg.gateway_key()?;
    tandem_gateway::check_listen(a.listen, key.is_some())?;
    let gw = Arc::new(
        tandem_gateway::Gateway::new(client, key, a.max_body_bytes)
            .with_voice_deployments(&cfg.regions),
    );
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("binding {}", a.listen))?;
    let addr = listener.local_addr()?;
    println!("tandem: gateway listening on http://{addr}");
    use std::io::Write;
    std::io::stdout().flush()?;
    tracing::info!(%addr, regions = cfg.regions.len(), "gateway serving");
    axum::serve(listener, tandem_gateway::router(gw))
        .with_graceful_shutdown(crate::serve::shutdown_signal())
        .await?;
    Ok(())
}
