//! Speaker recognition (2021-09-05, text-independent) through real region processes: profiles,
//! enrollment progress, verify, identify, reset, bad inputs, and persistence across kill -9.
//! Enrollment material is synthesized by the region itself (flite voices, > 20 s of speech per
//! voice); a real recording serves as an impostor.

mod common;
use common::*;
use serde_json::{json, Value};

const V: &str = "api-version=2021-09-05";

/// Long enrollment texts (about 12 s of speech each) and short probe sentences.
const ENROL: [&str; 3] = [
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. \
     It is easy to tell the depth of a well. These days a chicken leg is a rare dish. \
     Rice is often served in round bowls. The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck. The hogs were fed chopped corn and garbage. \
     Four hours of steady work faced us. A large size in stockings is hard to sell. \
     The boy was there when the sun rose. A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring. Kick the ball straight and follow \
     through. Help the woman get back to her feet. A pot of tea helps to pass the evening. \
     Smoky fires lack flame and heat. The soft cushion broke the man's fall.",
];
const PROBE: &str = "The salt breeze came across from the sea. The girl at the booth sold \
     fifty bonds. The small pup gnawed a hole in the sock.";

struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    fn new(base: &str, key: &str) -> Self {
        Self {
            http: http(),
            base: base.to_owned(),
            key: key.to_owned(),
        }
    }

    fn url(&self, service: &str, rest: &str, query: &str) -> String {
        format!(
            "{}/speaker-recognition/{service}/text-independent/profiles{rest}?{query}",
            self.base
        )
    }

    async fn tts(&self, voice: &str, text: &str) -> Vec<u8> {
        let r = self
            .http
            .post(format!("{}/cognitiveservices/v1", self.base))
            .header(KEY, &self.key)
            .header("Content-Type", "application/ssml+xml")
            .header("X-Microsoft-OutputFormat", "riff-16khz-16bit-mono-pcm")
            .body(ssml(voice, text))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "tts");
        r.bytes().await.unwrap().to_vec()
    }

    async fn create(&self, service: &str) -> Value {
        let r = self
            .http
            .post(self.url(service, "", V))
            .header(KEY, &self.key)
            .json(&json!({"locale": "en-us"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "create profile");
        assert!(r.headers().get("location").is_some(), "Location header");
        r.json().await.unwrap()
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: String,
        wav: Option<Vec<u8>>,
    ) -> reqwest::Response {
        let mut req = self.http.request(method, url).header(KEY, &self.key);
        if let Some(w) = wav {
            req = req
                .header("Content-Type", "audio/wav; codecs=audio/pcm")
                .body(w);
        }
        req.send().await.unwrap()
    }

    async fn enroll(&self, service: &str, id: &str, wav: Vec<u8>) -> reqwest::Response {
        let url = self.url(service, &format!("/{id}/enrollments"), V);
        self.send(reqwest::Method::POST, url, Some(wav)).await
    }

    /// Enrols `voice` with the long texts until Enrolled; returns the enrollment answers.
    async fn enroll_voice(&self, service: &str, id: &str, voice: &str) -> Vec<Value> {
        let mut answers = Vec::new();
        for text in ENROL {
            let r = self.enroll(service, id, self.tts(voice, text).await).await;
            assert_eq!(r.status(), 201, "enrollment");
            let v: Value = r.json().await.unwrap();
            let done = v["enrollmentStatus"] == "Enrolled";
            answers.push(v);
            if done {
                return answers;
            }
        }
        panic!("{voice} not Enrolled after every text: {answers:?}");
    }

    async fn verify(&self, id: &str, wav: Vec<u8>, query: &str) -> reqwest::Response {
        let url = self.url("verification", &format!("/{id}:verify"), query);
        self.send(reqwest::Method::POST, url, Some(wav)).await
    }
}

fn id_of(v: &Value) -> String {
    v["profileId"].as_str().expect("profileId").to_owned()
}

#[tokio::test]
async fn verification_lifecycle_accepts_the_speaker_and_rejects_others() {
    let west = region("westus").await;
    let k = west.create_resource("speaker");
    let api = Api::new(&west.url, &k.key1);

    let p = api.create("verification").await;
    let id = id_of(&p);
    assert_eq!(p["enrollmentStatus"], "Enrolling");
    assert_eq!(p["locale"], "en-us");
    assert_eq!(p["enrollmentsCount"], 0);
    assert_eq!(p["remainingEnrollmentsSpeechLength"], 20.0);
    let other = id_of(&api.create("verification").await);

    // list (paged) and get
    let r = api
        .send(
            reqwest::Method::GET,
            api.url("verification", "", &format!("{V}&$top=1")),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["profiles"].as_array().unwrap().len(), 1);
    let next = page["@nextLink"]
        .as_str()
        .expect("@nextLink with $top=1 of 2");
    let token = next.split("$continuationToken=").nth(1).unwrap();
    let r = api
        .send(
            reqwest::Method::GET,
            api.url(
                "verification",
                "",
                &format!("{V}&$top=1&$continuationToken={token}"),
            ),
            None,
        )
        .await;
    let page2: Value = r.json().await.unwrap();
    assert_eq!(page2["profiles"].as_array().unwrap().len(), 1);
    assert!(page2.get("@nextLink").is_none(), "{page2}");
    let mut seen = vec![id_of(&page["profiles"][0]), id_of(&page2["profiles"][0])];
    seen.sort();
    let mut want = vec![id.clone(), other.clone()];
    want.sort();
    assert_eq!(seen, want);
    let got: Value = api
        .send(
            reqwest::Method::GET,
            api.url("verification", &format!("/{id}"), V),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, p);
    // Identification does not see verification profiles.
    let r = api
        .send(
            reqwest::Method::GET,
            api.url("identification", &format!("/{id}"), V),
            None,
        )
        .await;
    assert_azure_error(r, 404).await;

    // Not enrolled yet: verify refused.
    let slt_probe = api.tts("en-US-SltFlite", PROBE).await;
    let r = api
        .verify(&id, slt_probe.clone(), &format!("{V}&ignoreMinLength=true"))
        .await;
    let msg = assert_azure_error(r, 400).await;
    assert!(msg.contains("not enrolled"), "{msg}");

    // Enrollment progress.
    let answers = api
        .enroll_voice("verification", &id, "en-US-SltFlite")
        .await;
    assert!(answers.len() >= 2, "one text is not 20 s of speech");
    let first = &answers[0];
    assert_eq!(first["enrollmentStatus"], "Enrolling");
    assert_eq!(first["enrollmentsCount"], 1);
    let rem = first["remainingEnrollmentsSpeechLength"].as_f64().unwrap();
    let speech = first["audioSpeechLength"].as_f64().unwrap();
    assert!(
        speech > 5.0 && speech <= first["audioLength"].as_f64().unwrap(),
        "{first}"
    );
    assert!((rem - (20.0 - speech)).abs() < 0.02, "{first}");
    let last = answers.last().unwrap();
    assert_eq!(last["remainingEnrollmentsSpeechLength"], 0.0);
    assert!(last["enrollmentsSpeechLength"].as_f64().unwrap() >= 20.0);
    assert_eq!(last["enrollmentsCount"], answers.len());

    // Verify: the same voice (a new sentence) is accepted, others rejected.
    let q = format!("{V}&ignoreMinLength=true");
    let v: Value = api
        .verify(&id, slt_probe.clone(), &q)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["recognitionResult"], "Accept", "{v}");
    let accept_score = v["score"].as_f64().unwrap();
    let rms = api.tts("en-US-RmsFlite", PROBE).await;
    let v: Value = api.verify(&id, rms, &q).await.json().await.unwrap();
    assert_eq!(v["recognitionResult"], "Reject", "{v}");
    assert!(v["score"].as_f64().unwrap() < accept_score);
    let real = wav_bytes(&shared_data().join("speaker-samples/free_EN-US_SampleAudio01.wav"));
    let v: Value = api.verify(&id, real, &q).await.json().await.unwrap();
    assert_eq!(v["recognitionResult"], "Reject", "a real voice: {v}");
    // Without ignoreMinLength, verify needs 20 s of speech.
    let r = api.verify(&id, slt_probe.clone(), V).await;
    let msg = assert_azure_error(r, 400).await;
    assert!(msg.contains("too short"), "{msg}");

    // Bad inputs.
    let r = api.enroll("verification", &id, silent_wav(2.0)).await;
    assert!(assert_azure_error(r, 400).await.contains("too short"));
    let r = api
        .enroll("verification", &id, b"this is not a wav file".to_vec())
        .await;
    assert_azure_error(r, 400).await;
    let r = api
        .http
        .post(api.url("verification", &format!("/{id}/enrollments"), V))
        .header(KEY, &k.key1)
        .header("Content-Type", "audio/ogg; codecs=opus")
        .body(slt_probe.clone())
        .send()
        .await
        .unwrap();
    assert_azure_error(r, 415).await;
    let unknown = "00000000-1111-2222-3333-444444444444";
    let r = api.enroll("verification", unknown, slt_probe.clone()).await;
    assert_azure_error(r, 404).await;
    let r = api.verify(unknown, slt_probe.clone(), &q).await;
    assert_azure_error(r, 404).await;
    let r = api.verify("not-a-guid", slt_probe.clone(), &q).await;
    assert_azure_error(r, 404).await;
    for query in ["", "api-version=2020-01-01"] {
        let r = api
            .send(
                reqwest::Method::GET,
                api.url("verification", &format!("/{id}"), query),
                None,
            )
            .await;
        let msg = assert_azure_error(r, 400).await;
        assert!(msg.contains("api-version"), "{msg}");
    }
    let r = api
        .http
        .post(api.url("verification", "", V))
        .header(KEY, &k.key1)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_azure_error(r, 400).await;
    let r = api
        .http
        .get(api.url("verification", &format!("/{id}"), V))
        .send()
        .await
        .unwrap();
    assert_azure_error(r, 401).await;

    // Another resource sees nothing of this one's profiles.
    let k2 = west.create_resource("someone-else");
    let api2 = Api::new(&west.url, &k2.key1);
    let r = api2
        .send(
            reqwest::Method::GET,
            api2.url("verification", &format!("/{id}"), V),
            None,
        )
        .await;
    assert_azure_error(r, 404).await;
    let r = api2.verify(&id, slt_probe.clone(), &q).await;
    assert_azure_error(r, 404).await;
    let r = api2.enroll("verification", &id, slt_probe.clone()).await;
    assert_azure_error(r, 404).await;
    let r = api2
        .send(
            reqwest::Method::POST,
            api2.url("verification", &format!("/{id}:reset"), V),
            None,
        )
        .await;
    assert_azure_error(r, 404).await;
    let r = api2
        .send(
            reqwest::Method::DELETE,
            api2.url("verification", &format!("/{id}"), V),
            None,
        )
        .await;
    assert_azure_error(r, 404).await;
    let list: Value = api2
        .send(reqwest::Method::GET, api2.url("verification", "", V), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["profiles"], json!([]));

    // Reset: back to Enrolling with nothing enrolled; verify refused again.
    let r = api
        .send(
            reqwest::Method::POST,
            api.url("verification", &format!("/{id}:reset"), V),
            None,
        )
        .await;
    assert_eq!(r.status(), 204);
    let got: Value = api
        .send(
            reqwest::Method::GET,
            api.url("verification", &format!("/{id}"), V),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["enrollmentStatus"], "Enrolling");
    assert_eq!(got["enrollmentsCount"], 0);
    assert_eq!(got["enrollmentsSpeechLength"], 0.0);
    let r = api.verify(&id, slt_probe.clone(), &q).await;
    assert_azure_error(r, 400).await;

    // Delete.
    let r = api
        .send(
            reqwest::Method::DELETE,
            api.url("verification", &format!("/{id}"), V),
            None,
        )
        .await;
    assert_eq!(r.status(), 204);
    let r = api
        .send(
            reqwest::Method::GET,
            api.url("verification", &format!("/{id}"), V),
            None,
        )
        .await;
    assert_azure_error(r, 404).await;
    let r = api
        .send(
            reqwest::Method::DELETE,
            api.url("verification", &format!("/{id}"), V),
            None,
        )
        .await;
    assert_azure_error(r, 404).await;
}

#[tokio::test]
async fn identification_picks_the_right_speaker() {
    let west = region("westus").await;
    let k = west.create_resource("identify");
    let api = Api::new(&west.url, &k.key1);
    let voices = ["en-US-SltFlite", "en-US-RmsFlite", "en-US-AwbFlite"];
    let mut ids = Vec::new();
    for voice in voices {
        let id = id_of(&api.create("identification").await);
        api.enroll_voice("identification", &id, voice).await;
        ids.push(id);
    }
    let csv = ids.join(",");
    let q = format!("{V}&ignoreMinLength=true&profileIds={csv}");
    for (voice, want) in voices.iter().zip(&ids) {
        let probe = api.tts(voice, PROBE).await;
        let r = api
            .send(
                reqwest::Method::POST,
                api.url("identification", ":identifySingleSpeaker", &q),
                Some(probe),
            )
            .await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v["identifiedProfile"]["profileId"],
            want.as_str(),
            "{voice}: {v}"
        );
        let ranking = v["profilesRanking"].as_array().unwrap();
        assert_eq!(ranking.len(), 3);
        assert_eq!(ranking[0]["profileId"], want.as_str());
        assert!(ranking[0]["score"].as_f64() >= ranking[1]["score"].as_f64());
    }
    // A stranger matches nobody: the empty GUID.
    let real = wav_bytes(&shared_data().join("speaker-samples/free_EN-US_SampleAudio01.wav"));
    let r = api
        .send(
            reqwest::Method::POST,
            api.url("identification", ":identifySingleSpeaker", &q),
            Some(real),
        )
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["identifiedProfile"]["profileId"], "00000000-0000-0000-0000-000000000000",
        "{v}"
    );

    // Bad inputs: no candidates, an unknown one, a not-enrolled one, a verification profile.
    let probe = api.tts("en-US-SltFlite", PROBE).await;
    let url = |ids: &str| {
        api.url(
            "identification",
            ":identifySingleSpeaker",
            &format!("{V}&ignoreMinLength=true&profileIds={ids}"),
        )
    };
    let r = api
        .send(reqwest::Method::POST, url(""), Some(probe.clone()))
        .await;
    assert_azure_error(r, 400).await;
    let r = api
        .send(
            reqwest::Method::POST,
            url(&format!("{csv},00000000-1111-2222-3333-444444444444")),
            Some(probe.clone()),
        )
        .await;
    assert_azure_error(r, 404).await;
    let fresh = id_of(&api.create("identification").await);
    let r = api
        .send(
            reqwest::Method::POST,
            url(&format!("{csv},{fresh}")),
            Some(probe.clone()),
        )
        .await;
    assert_azure_error(r, 400).await;
    let verif = id_of(&api.create("verification").await);
    let r = api
        .send(reqwest::Method::POST, url(&verif), Some(probe.clone()))
        .await;
    assert_azure_error(r, 404).await;
    // Not a verification operation.
    let r = api
        .send(
            reqwest::Method::POST,
            api.url(
                "verification",
                ":identifySingleSpeaker",
                &format!("{V}&profileIds={verif}"),
            ),
            Some(probe),
        )
        .await;
    assert_azure_error(r, 404).await;
}

#[tokio::test]
async fn profiles_and_enrollments_survive_kill_9() {
    let mut west = region("westus").await;
    let k = west.create_resource("durable");
    let api = Api::new(&west.url, &k.key1);
    let id = id_of(&api.create("verification").await);
    let answers = api
        .enroll_voice("verification", &id, "en-US-SltFlite")
        .await;
    let probe = api.tts("en-US-SltFlite", PROBE).await;
    let q = format!("{V}&ignoreMinLength=true");
    let before: Value = api
        .verify(&id, probe.clone(), &q)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(before["recognitionResult"], "Accept", "{before}");
    let profile_before: Value = api
        .send(
            reqwest::Method::GET,
            api.url("verification", &format!("/{id}"), V),
            None,
        )
        .await
        .json()
        .await
        .unwrap();

    west.kill9();
    west.restart().await;
    let api = Api::new(&west.url, &k.key1);
    let profile_after: Value = api
        .send(
            reqwest::Method::GET,
            api.url("verification", &format!("/{id}"), V),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        profile_after, profile_before,
        "the profile survives kill -9"
    );
    assert_eq!(profile_after["enrollmentsCount"], answers.len());
    let after: Value = api.verify(&id, probe, &q).await.json().await.unwrap();
    assert_eq!(after, before, "same verify result after the restart");

    // The enrollment audio is in the blob store under speaker/<resource>/<profile>/.
    let dir = west.data_dir().join("blobs/speaker").join(&k.id).join(&id);
    let wavs = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .count();
    assert_eq!(wavs, answers.len());
}
