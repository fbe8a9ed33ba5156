//! The customer assets a drill seeds before its load, through the regions' public APIs (the
//! same calls a customer makes), so the drill exercises what the guide asks customers to set up
//! for disaster recovery:
//!
//! - **Custom speech:** the biology language dataset uploaded to the primary, a model trained
//!   on it, copied to the pair with `Models_CopyTo` (v3.1 `:copyto`), and deployed in both
//!   regions; each region's endpoint id is its `cid`.
//! - **Custom voice:** joe (a Piper voice playing the customer's) imported in the primary with
//!   a consent recording and a training set spoken by joe himself, deployed, copied to the pair
//!   (`/customvoice/models/{id}:copyto`, an operation) and deployed there under its own id.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::error::{DrillError, Result};

const KEY: &str = "ocp-apim-subscription-key";
const CV_VERSION: &str = "api-version=2026-01-01";
/// How long a model may train, a copy may run, an endpoint may take to deploy.
const SLOW: Duration = Duration::from_secs(300);

/// The custom voice's name in SSML.
pub const CUSTOM_VOICE: &str = "JoeNeural";
/// The voice talent named in the consent.
pub const TALENT: &str = "Joe";
/// The company named in the consent.
pub const COMPANY: &str = "Contoso";
/// The training set's script: `(utterance id, text)`.
pub const TRAINING: [(&str, &str); 3] = [
    (
        "0001",
        "The cell membrane controls what enters and leaves the cell.",
    ),
    (
        "0002",
        "Mitochondria produce most of the energy a cell needs.",
    ),
    (
        "0003",
        "Plants turn sunlight into sugar through photosynthesis.",
    ),
];

/// One resource in one region, as the seeding calls it.
pub struct Target<'a> {
    /// Region name.
    pub region: &'a str,
    /// The region's base URL.
    pub url: &'a str,
    /// The resource's key.
    pub key: &'a str,
}

/// The custom speech dataset the drill uses.
pub struct SpeechData {
    /// `language-data.txt`: the text the model adapts to.
    pub language: Vec<u8>,
    /// A few of the dataset's recordings, sent to the custom endpoints by the load.
    pub clips: Vec<bytes::Bytes>,
}

/// How many recordings the load cycles through.
const CLIPS: usize = 5;

impl SpeechData {
    /// Reads `language-data.txt` and the first [`CLIPS`] WAVs of `audio/` (by name) in `dir`.
    pub fn read(dir: &Path) -> Result<Self> {
        let language =
            std::fs::read(dir.join("language-data.txt")).map_err(DrillError::io(format!(
                "reading {}/language-data.txt (the custom speech dataset; set [seed] \
                 custom_speech_data)",
                dir.display()
            )))?;
        let audio = dir.join("audio");
        let mut wavs: Vec<PathBuf> = std::fs::read_dir(&audio)
            .map_err(DrillError::io(format!("listing {}", audio.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wav"))
            .collect();
        wavs.sort();
        let mut clips = Vec::new();
        for p in wavs.iter().take(CLIPS) {
            let b = std::fs::read(p).map_err(DrillError::io(format!("reading {}", p.display())))?;
            clips.push(bytes::Bytes::from(b));
        }
        if clips.is_empty() {
            return Err(DrillError::Setup(format!(
                "no WAV recordings in {}",
                audio.display()
            )));
        }
        Ok(Self { language, clips })
    }
}

fn setup(what: impl std::fmt::Display) -> DrillError {
    DrillError::Setup(what.to_string())
}

/// Checks the status, returns the JSON body.
async fn expect(
    resp: reqwest::Result<reqwest::Response>,
    status: u16,
    what: &str,
) -> Result<Value> {
    let resp = resp.map_err(|e| setup(format!("{what}: {e}")))?;
    let code = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    if code != status {
        let body: String = body.chars().take(400).collect();
        return Err(setup(format!(
            "{what}: HTTP {code} (expected {status}): {body}"
        )));
    }
    Ok(serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn last_segment(url: &str) -> String {
    url.rsplit('/').next().unwrap_or_default().to_owned()
}

/// Polls `url` until its `status` is `Succeeded`; `Failed` or [`SLOW`] is an error.
async fn wait(http: &reqwest::Client, url: &str, key: &str, what: &str) -> Result<Value> {
    let started = Instant::now();
    loop {
        let v = expect(http.get(url).header(KEY, key).send().await, 200, what).await?;
        match v["status"].as_str() {
            Some("Succeeded") => return Ok(v),
            Some("Failed") => return Err(setup(format!("{what} failed: {v}"))),
            _ if started.elapsed() > SLOW => {
                return Err(setup(format!("{what}: not done after {SLOW:?}: {v}")))
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Trains the model in `home`, copies it to `pair`, deploys it in both; returns the endpoint
/// ids (`cid`) of `home` and `pair`.
pub async fn custom_speech(
    http: &reqwest::Client,
    home: &Target<'_>,
    pair: &Target<'_>,
    data: &SpeechData,
) -> Result<(String, String)> {
    let v32 = |t: &Target<'_>| format!("{}/speechtotext/v3.2", t.url);
    let form = Form::new()
        .text("displayName", "biology text")
        .text("locale", "en-US")
        .text("kind", "Language")
        .part(
            "data",
            Part::bytes(data.language.clone()).file_name("language-data.txt"),
        );
    let req = http
        .post(format!("{}/datasets/upload", v32(home)))
        .header(KEY, home.key)
        .multipart(form);
    let dataset = expect(req.send().await, 201, "uploading the language dataset").await?;
    let dataset_self = dataset["self"].as_str().unwrap_or_default().to_owned();
    wait(http, &dataset_self, home.key, "the language dataset").await?;

    let body = json!({"datasets": [{"self": dataset_self}], "locale": "en-US",
                      "displayName": "biology (drill)"});
    let req = http
        .post(format!("{}/models", v32(home)))
        .header(KEY, home.key);
    let model = expect(req.json(&body).send().await, 201, "creating the model").await?;
    let model_self = model["self"].as_str().unwrap_or_default().to_owned();
    wait(http, &model_self, home.key, "training the biology model").await?;
    tracing::info!(region = home.region, "custom speech model trained");

    let copy_url = format!(
        "{}/speechtotext/v3.1/models/{}:copyto",
        home.url,
        last_segment(&model_self)
    );
    let req = http.post(copy_url).header(KEY, home.key);
    let body = json!({"targetSubscriptionKey": pair.key});
    let copied = expect(req.json(&body).send().await, 201, "Models_CopyTo").await?;
    let copied_self = copied["self"].as_str().unwrap_or_default().to_owned();
    wait(http, &copied_self, pair.key, "the copied model").await?;
    tracing::info!(
        from = home.region,
        to = pair.region,
        "custom speech model copied"
    );

    let deploy = |t: &Target<'_>, model: String| {
        let req = http
            .post(format!("{}/endpoints", v32(t)))
            .header(KEY, t.key)
            .json(&json!({"model": {"self": model}, "locale": "en-US",
                          "displayName": "biology endpoint (drill)"}));
        let key = t.key.to_owned();
        async move {
            let e = expect(req.send().await, 201, "deploying the model").await?;
            let s = e["self"].as_str().unwrap_or_default().to_owned();
            wait(http, &s, &key, "the endpoint").await?;
            Ok::<_, DrillError>(last_segment(&s))
        }
    };
    let home_cid = deploy(home, model_self).await?;
    let pair_cid = deploy(pair, copied_self).await?;
    Ok((home_cid, pair_cid))
}

/// The statement a consent recording must say.
pub fn consent_statement() -> String {
    format!(
        "I {TALENT} am aware that recordings of my voice will be used by {COMPANY} to create \
         and use a synthetic version of my voice."
    )
}

/// The custom voice's inputs: joe's model files and joe speaking the consent and the script.
pub struct VoiceData {
    onnx: Vec<u8>,
    config: Vec<u8>,
    consent: Vec<u8>,
    training: Vec<(&'static str, &'static str, Vec<u8>)>,
}

impl VoiceData {
    /// Loads joe from `model_dir` (`tandem models pull onnxruntime piper-joe
    /// piper-joe-config`) and has him speak the consent statement and the training script.
    pub fn make(model_dir: &Path) -> Result<Self> {
        use tandem_engines::models::{ModelCache, ONNXRUNTIME, PIPER_JOE, PIPER_JOE_CONFIG};
        use tandem_engines::tts::piper::PiperVoice;
        let cache = ModelCache::new(model_dir);
        let missing = |e: tandem_engines::EngineError| {
            setup(format!(
                "the custom voice needs joe's Piper voice in {}: run `tandem models pull \
                 onnxruntime piper-joe piper-joe-config` ({e})",
                model_dir.display()
            ))
        };
        cache.model_path(ONNXRUNTIME).map_err(missing)?;
        let onnx_path = cache.model_path(PIPER_JOE).map_err(missing)?;
        let json_path = cache.model_path(PIPER_JOE_CONFIG).map_err(missing)?;
        // ONNX Runtime's telemetry client writes a session file, `$TMPDIR/.ses`, when its
        // environment starts, even with telemetry disabled right after. The drill leaves no
        // file behind, so one it caused is removed (the regions get a private TMPDIR).
        let ses = std::env::temp_dir().join(".ses");
        let ses_existed = ses.exists();
        let joe = PiperVoice::load_with(&onnx_path, &json_path, model_dir, 1);
        if !ses_existed {
            let _ = std::fs::remove_file(&ses);
        }
        let joe = joe.map_err(|e| setup(format!("loading joe: {e}")))?;
        let speak = |text: &str| -> Result<Vec<u8>> {
            let pcm = joe
                .synthesize(text, &tandem_engines::Prosody::default())
                .map_err(|e| setup(format!("joe speaking: {e}")))?;
            Ok(tandem_audio::encode_wav_pcm16(&pcm))
        };
        let consent = speak(&consent_statement())?;
        let mut training = Vec::new();
        for (id, text) in TRAINING {
            training.push((id, text, speak(text)?));
        }
        let read =
            |p: &Path| std::fs::read(p).map_err(DrillError::io(format!("reading {}", p.display())));
        Ok(Self {
            onnx: read(&onnx_path)?,
            config: read(&json_path)?,
            consent,
            training,
        })
    }
}

fn cv_url(t: &Target<'_>, rest: &str) -> String {
    let sep = if rest.contains('?') { '&' } else { '?' };
    format!("{}/customvoice{rest}{sep}{CV_VERSION}", t.url)
}

/// Deploys model `m1` of project `p1` as endpoint `id`; returns the id once it serves.
async fn voice_endpoint(http: &reqwest::Client, t: &Target<'_>, id: &str) -> Result<String> {
    let body = json!({"description": "joe (drill)", "projectId": "p1", "modelId": "m1"});
    let url = cv_url(t, &format!("/endpoints/{id}"));
    let req = http.put(&url).header(KEY, t.key).json(&body);
    expect(req.send().await, 201, "deploying the voice").await?;
    wait(http, &url, t.key, "the voice endpoint").await?;
    Ok(id.to_owned())
}

/// Imports and deploys the custom voice in `home`, copies it to `pair` and deploys it there;
/// returns the deployment ids of `home` and `pair`.
pub async fn custom_voice(
    http: &reqwest::Client,
    home: &Target<'_>,
    pair: &Target<'_>,
    data: &VoiceData,
) -> Result<(String, String)> {
    let url = cv_url;
    let put = |t: &Target<'_>, rest: &str, body: Value| {
        http.put(url(t, rest)).header(KEY, t.key).json(&body).send()
    };
    expect(
        put(
            home,
            "/projects/p1",
            json!({"description": "drill", "kind": "ProfessionalVoice"}),
        )
        .await,
        201,
        "creating the voice project",
    )
    .await?;
    let form = Form::new()
        .text("voiceTalentName", TALENT)
        .text("companyName", COMPANY)
        .text("locale", "en-US")
        .text("projectId", "p1")
        .part(
            "audiodata",
            Part::bytes(data.consent.clone())
                .file_name("consent.wav")
                .mime_str("audio/wav")
                .map_err(setup)?,
        );
    let req = http.post(url(home, "/consents/c1")).header(KEY, home.key);
    let consent = expect(req.multipart(form).send().await, 201, "the consent").await?;
    if consent["status"] != "Succeeded" {
        return Err(setup(format!("the consent did not pass: {consent}")));
    }
    expect(
        put(
            home,
            "/trainingsets/t1",
            json!({"description": "joe", "locale": "en-US", "projectId": "p1"}),
        )
        .await,
        201,
        "creating the training set",
    )
    .await?;
    let script: String = data
        .training
        .iter()
        .map(|(id, text, _)| format!("{id}\t{text}\n"))
        .collect();
    let mut form = Form::new().part(
        "script",
        Part::bytes(script.into_bytes()).file_name("script.txt"),
    );
    for (id, _, wav) in &data.training {
        form = form.part(
            "audiodata",
            Part::bytes(wav.clone()).file_name(format!("{id}.wav")),
        );
    }
    let req = http
        .post(url(home, "/trainingsets/t1:upload"))
        .header(KEY, home.key);
    expect(
        req.multipart(form).send().await,
        202,
        "uploading the training set",
    )
    .await?;
    let body = json!({"voiceName": CUSTOM_VOICE, "description": "joe", "recipe": {"kind": "Default"},
                      "projectId": "p1", "consentId": "c1", "trainingSetId": "t1", "locale": "en-US"});
    expect(
        put(home, "/models/m1", body).await,
        201,
        "creating the voice model",
    )
    .await?;
    let form = Form::new()
        .part(
            "model",
            Part::bytes(data.onnx.clone()).file_name("voice.onnx"),
        )
        .part(
            "config",
            Part::bytes(data.config.clone()).file_name("voice.onnx.json"),
        );
    let req = http
        .post(url(home, "/models/m1:upload"))
        .header(KEY, home.key);
    let model = expect(req.multipart(form).send().await, 200, "uploading the voice").await?;
    if model["properties"]["consentCheck"]["passed"] != true {
        return Err(setup(format!(
            "the voice failed its consent check: {model}"
        )));
    }
    let home_id = voice_endpoint(http, home, "drill-voice-home").await?;
    tracing::info!(region = home.region, "custom voice deployed");

    let req = http
        .post(url(home, "/models/m1:copyto"))
        .header(KEY, home.key);
    let body = json!({"targetSubscriptionKey": pair.key, "targetRegion": pair.region});
    let resp = req
        .json(&body)
        .send()
        .await
        .map_err(|e| setup(format!("copying the voice: {e}")))?;
    let location = resp
        .headers()
        .get("operation-location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    expect(Ok(resp), 202, "copying the voice").await?;
    let location = location.ok_or_else(|| setup("the voice copy gave no Operation-Location"))?;
    wait(http, &location, home.key, "the voice copy").await?;
    tracing::info!(from = home.region, to = pair.region, "custom voice copied");
    let pair_id = voice_endpoint(http, pair, "drill-voice-pair").await?;
    Ok((home_id, pair_id))
}
