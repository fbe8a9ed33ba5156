//! Custom voice (issue #8), black-box on a real `tandem serve`: a project, consents checked by
//! the region's own recognizer and speaker encoder, a training set, the Piper voice `joe`
//! imported as the model, an endpoint, and synthesis through `?deploymentId=` that the
//! region's STT understands. Bad inputs: corrupt ONNX, mismatched config, a consent in another
//! voice (deploy refused), wrong words, an oversized upload (413), deleting a deployed model
//! (409), another resource's deployment (404). After a restart the endpoint speaks again.
//!
//! The consent and the training audio are spoken by joe itself (in this test process), so the
//! talent's voice matches the model. Needs `tandem models pull onnxruntime piper-joe
//! piper-joe-config`; skipped with a note otherwise.

#![cfg(feature = "espeak")]

mod common;

use std::time::Instant;

use common::custom_voice::*;
use common::*;
use serde_json::{json, Value};
use tandem_engines::models::{ModelCache, ONNXRUNTIME, PIPER_JOE, PIPER_JOE_CONFIG};
use tandem_engines::tts::piper::PiperVoice;
use tandem_testkit::model_dir;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn joe_is_imported_deployed_and_speaks() {
    let cache = ModelCache::new(model_dir());
    let (Ok(_), Ok(onnx_path), Ok(json_path)) = (
        cache.model_path(ONNXRUNTIME),
        cache.model_path(PIPER_JOE),
        cache.model_path(PIPER_JOE_CONFIG),
    ) else {
        eprintln!(
            "skipped: the Piper voice is not installed in {}; run `tandem models pull \
             onnxruntime piper-joe piper-joe-config`",
            model_dir().display()
        );
        return;
    };
    let joe = PiperVoice::load_with(&onnx_path, &json_path, &model_dir(), 1).unwrap();
    let onnx = std::fs::read(&onnx_path).unwrap();
    let config = std::fs::read(&json_path).unwrap();

    let mut region = region("westus").await;
    let keys = region.create_resource("voices");
    let other = region.create_resource("other");
    let cv = Cv::new(&region, &keys.key1);
    let stranger = Cv::new(&region, &other.key1);

    // Project; api-version is required.
    let resp = cv
        .http
        .put(format!(
            "{}/customvoice/projects/p1?api-version=2020-01-01",
            cv.base
        ))
        .header(KEY, &cv.key)
        .json(&json!({"description": "x", "kind": "ProfessionalVoice"}))
        .send()
        .await
        .unwrap();
    assert_azure_error(resp, 400).await;
    let p = json_of(
        cv.put(
            "/projects/p1",
            json!({"description": "Joe", "kind": "ProfessionalVoice"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(p["id"], "p1");
    assert_eq!(p["kind"], "ProfessionalVoice");
    assert_eq!(
        json_of(cv.get("/projects").await, 200).await["value"][0]["id"],
        "p1"
    );
    // Another resource does not see it.
    json_of(stranger.get("/projects/p1").await, 404).await;

    // Consents: joe says the statement (passes), joe says other words (fails), another voice
    // says the statement (its text passes; its voice will not match the training set).
    let good = json_of(cv.consent("c-joe", wav(&joe, &statement())).await, 201).await;
    eprintln!("consent joe: {}", good["properties"]);
    assert_eq!(good["status"], "Succeeded", "{good}");
    assert_eq!(good["properties"]["passed"], true);
    let wrong = json_of(
        cv.consent(
            "c-wrong",
            wav(
                &joe,
                "I am happy to read this sentence about the weather today.",
            ),
        )
        .await,
        201,
    )
    .await;
    eprintln!("consent wrong words: {}", wrong["properties"]);
    assert_eq!(wrong["status"], "Failed");
    assert_eq!(wrong["properties"]["passed"], false);
    let voices: Value = cv
        .http
        .get(format!("{}/cognitiveservices/voices/list", cv.base))
        .header(KEY, &cv.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public = voices
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["Locale"] == "en-US")
        .expect("an en-US public voice")["ShortName"]
        .as_str()
        .unwrap()
        .to_owned();
    let flite = cv
        .http
        .post(format!("{}/cognitiveservices/v1", cv.base))
        .header(KEY, &cv.key)
        .header("Content-Type", "application/ssml+xml")
        .header("X-Microsoft-OutputFormat", "riff-16khz-16bit-mono-pcm")
        .body(ssml(&public, &statement()))
        .send()
        .await
        .unwrap();
    assert_eq!(flite.status(), 200);
    let flite_wav = flite.bytes().await.unwrap().to_vec();
    let other_voice = json_of(cv.consent("c-other", flite_wav).await, 201).await;
    eprintln!("consent {public}: {}", other_voice["properties"]);
    // Oversized consent upload: 413 in Azure's shape. On a client of its own: the server stops
    // reading the body and drops that connection, which a shared pool could hand to the next
    // request (hyper's IncompleteMessage).
    let big = Cv {
        http: http(),
        base: cv.base.clone(),
        key: cv.key.clone(),
    };
    assert_azure_error(big.consent("c-big", vec![0u8; 17 * 1024 * 1024]).await, 413).await;

    // Training set: joe's utterances as WAV parts and a script.
    json_of(
        cv.put(
            "/trainingsets/t1",
            json!({"description": "joe", "locale": "en-US", "projectId": "p1"}),
        )
        .await,
        201,
    )
    .await;
    let script: String = TRAINING
        .iter()
        .map(|(i, t)| format!("{i}\t{t}\n"))
        .collect();
    let mut form = reqwest::multipart::Form::new().part(
        "script",
        reqwest::multipart::Part::bytes(script.into_bytes()).file_name("script.txt"),
    );
    for (id, text) in TRAINING {
        form = form.part(
            "audiodata",
            reqwest::multipart::Part::bytes(wav(&joe, text)).file_name(format!("{id}.wav")),
        );
    }
    let t = json_of(cv.form("/trainingsets/t1:upload", form).await, 202).await;
    assert_eq!(t["properties"]["utteranceCount"], 3, "{t}");
    // The same as a zip (WAVs and the script inside) into another set; a zip with a path
    // that climbs out is refused.
    json_of(
        cv.put(
            "/trainingsets/t2",
            json!({"description": "zip", "locale": "en-US", "projectId": "p1"}),
        )
        .await,
        201,
    )
    .await;
    let zipped = |names: &[(&str, Vec<u8>)]| {
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut z = zip::ZipWriter::new(&mut buf);
        for (name, bytes) in names {
            z.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            std::io::Write::write_all(&mut z, bytes).unwrap();
        }
        z.finish().unwrap();
        buf.into_inner()
    };
    let (id, text) = TRAINING[0];
    let wav_name = format!("{id}.wav");
    let good_zip = zipped(&[
        ("script.txt", format!("{id}\t{text}\n").into_bytes()),
        (&wav_name, wav(&joe, text)),
    ]);
    let zip_form = |bytes: Vec<u8>| {
        reqwest::multipart::Form::new().part(
            "audiodata",
            reqwest::multipart::Part::bytes(bytes).file_name("set.zip"),
        )
    };
    let t2 = json_of(
        cv.form("/trainingsets/t2:upload", zip_form(good_zip)).await,
        202,
    )
    .await;
    assert_eq!(t2["properties"]["utteranceCount"], 1, "{t2}");
    let evil = zipped(&[
        ("script.txt", b"0001\tx\n".to_vec()),
        ("../0001.wav", wav(&joe, "x")),
    ]);
    assert_azure_error(
        cv.form("/trainingsets/t2:upload", zip_form(evil)).await,
        400,
    )
    .await;

    // The model: broken voices are refused with the reason, joe is accepted.
    let model = |consent: &str| {
        json!({"voiceName": "JoeNeural", "description": "joe", "recipe": {"kind": "Default"},
               "projectId": "p1", "consentId": consent, "trainingSetId": "t1", "locale": "en-US"})
    };
    json_of(cv.put("/models/m1", model("c-joe")).await, 201).await;
    let msg = assert_azure_error(
        cv.upload_model("m1", b"not an onnx model at all".to_vec(), config.clone())
            .await,
        400,
    )
    .await;
    eprintln!("corrupt ONNX: {msg}");
    assert!(!msg.contains("/tmp"), "{msg}");
    let mut bad_config: Value = serde_json::from_slice(&config).unwrap();
    bad_config["num_speakers"] = json!(4);
    let msg = assert_azure_error(
        cv.upload_model("m1", onnx.clone(), serde_json::to_vec(&bad_config).unwrap())
            .await,
        400,
    )
    .await;
    eprintln!("mismatched config: {msg}");
    let m = json_of(
        cv.upload_model("m1", onnx.clone(), config.clone()).await,
        200,
    )
    .await;
    eprintln!("model m1: {}", m["properties"]);
    assert_eq!(m["status"], "Succeeded");
    assert_eq!(m["properties"]["consentCheck"]["passed"], true, "{m}");

    // A model whose consent is in another voice, and one whose consent says other words:
    // imported, but not deployable.
    for (id, consent) in [("m-other", "c-other"), ("m-wrong", "c-wrong")] {
        json_of(cv.put(&format!("/models/{id}"), model(consent)).await, 201).await;
        let m = json_of(cv.upload_model(id, onnx.clone(), config.clone()).await, 200).await;
        eprintln!("model {id}: {}", m["properties"]["consentCheck"]);
        assert_eq!(m["properties"]["consentCheck"]["passed"], false, "{m}");
        let e = json!({"description": "x", "projectId": "p1", "modelId": id});
        let msg = assert_azure_error(cv.put(&format!("/endpoints/e-{id}"), e).await, 400).await;
        assert!(msg.contains("consent"), "{msg}");
    }

    // Deploy joe.
    let t0 = Instant::now();
    let e = json_of(
        cv.put(
            "/endpoints/e1",
            json!({"description": "joe", "projectId": "p1", "modelId": "m1"}),
        )
        .await,
        201,
    )
    .await;
    eprintln!("endpoint created in {:.2?}", t0.elapsed());
    assert_eq!(e["status"], "Succeeded");

    // Synthesis with the deployment, checked by the region's STT.
    let sentence = "The heart pumps blood through the body.";
    let resp = cv
        .synthesize(
            "e1",
            ssml("JoeNeural", sentence),
            "riff-16khz-16bit-mono-pcm",
        )
        .await;
    assert_eq!(resp.status(), 200);
    let heard = cv.transcribe(resp.bytes().await.unwrap().to_vec()).await;
    eprintln!("heard: {heard:?}");
    assert!(wer(sentence, &heard) <= 0.25, "{heard:?}");
    // Plain text, and other formats.
    let resp = cv
        .synthesize("e1", sentence.to_owned(), "riff-24khz-16bit-mono-pcm")
        .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.unwrap().len() > 24_000);
    let resp = cv
        .synthesize("e1", sentence.to_owned(), "raw-8khz-8bit-mono-mulaw")
        .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.unwrap().len() > 8_000);
    // Wrong voice name, unknown deployment, another resource's deployment.
    assert_azure_error(
        cv.synthesize(
            "e1",
            ssml("OtherNeural", sentence),
            "riff-16khz-16bit-mono-pcm",
        )
        .await,
        400,
    )
    .await;
    assert_azure_error(
        cv.synthesize(
            "nope",
            ssml("JoeNeural", sentence),
            "riff-16khz-16bit-mono-pcm",
        )
        .await,
        404,
    )
    .await;
    assert_azure_error(
        stranger
            .synthesize(
                "e1",
                ssml("JoeNeural", sentence),
                "riff-16khz-16bit-mono-pcm",
            )
            .await,
        404,
    )
    .await;

    // The voice list shows the deployment to its resource only.
    let list = |c: &Cv| {
        let req = c
            .http
            .get(format!("{}/cognitiveservices/voices/list", c.base))
            .header(KEY, &c.key);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let mine = list(&cv).await;
    let custom: Vec<&Value> = mine
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["DeploymentId"] == "e1")
        .collect();
    assert_eq!(custom.len(), 1);
    assert_eq!(custom[0]["ShortName"], "JoeNeural");
    assert_eq!(custom[0]["VoiceType"], "Neural");
    let theirs = list(&stranger).await;
    assert!(theirs
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v["DeploymentId"].is_null()));

    // A deployed model cannot be deleted, nor its project.
    assert_azure_error(cv.delete("/models/m1").await, 409).await;
    assert_azure_error(cv.delete("/projects/p1").await, 409).await;

    // After a restart the endpoint speaks again (its voice loads on first use).
    region.restart().await;
    let cv = Cv {
        base: region.url.clone(),
        ..cv
    };
    let t0 = Instant::now();
    let resp = cv
        .synthesize(
            "e1",
            ssml("JoeNeural", sentence),
            "riff-16khz-16bit-mono-pcm",
        )
        .await;
    assert_eq!(resp.status(), 200);
    eprintln!(
        "first synthesis after the restart (voice loaded from blobs): {:.2?}",
        t0.elapsed()
    );
    let heard = cv.transcribe(resp.bytes().await.unwrap().to_vec()).await;
    assert!(wer(sentence, &heard) <= 0.25, "{heard:?}");

    // Deleting the endpoint frees the model; deleting the project takes the rest.
    assert_eq!(cv.delete("/endpoints/e1").await.status(), 204);
    assert_eq!(cv.delete("/projects/p1").await.status(), 204);
    json_of(cv.get("/models/m1").await, 404).await;
    assert_eq!(
        json_of(cv.get("/consents").await, 200).await["value"],
        json!([])
    );
}
