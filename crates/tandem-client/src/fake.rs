//! A scripted [`Transport`] for the policy tests: per-region queues of answers for data-plane
//! calls, counted STS tokens, switchable `/readyz` and `/readyz/speaker`, and scripted
//! discovery documents (404 by default). [`View`] shows one region of it as a transport of its
//! own, for pairs learned at run time.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::transport::{Request, Response, Transport, TransportError};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Step {
    /// Answer with this status (4xx/5xx get Azure error JSON).
    Status(u16),
    /// Answer with this status and `Retry-After: secs`.
    RetryAfter(u16, u64),
    /// 503 with `Retry-After: 1` and `x-tandem-redirect: pair` (a region catching up).
    UsePair,
    /// Fail without an answer.
    Fail(TransportError),
    /// Wait, then answer 200.
    Slow(Duration),
    /// Never answer.
    Hang,
}

/// What the fake saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub region: usize,
    pub path: String,
    pub auth: Option<String>,
    /// `Ocp-Apim-Subscription-Key`.
    pub key: Option<String>,
    pub body: Bytes,
}

pub struct Fake {
    pub data: Mutex<Vec<VecDeque<Step>>>,
    pub sts: Mutex<Vec<VecDeque<Step>>>,
    pub ready: Mutex<Vec<bool>>,
    pub speaker_ready: Mutex<Vec<bool>>,
    /// The discovery answer per region: status and body (None: 404).
    pub docs: Mutex<Vec<Option<(u16, String)>>>,
    pub tokens_issued: Mutex<Vec<u32>>,
    pub seen: Mutex<Vec<Seen>>,
}

impl Fake {
    pub fn new(regions: usize) -> Self {
        Fake {
            data: Mutex::new(vec![VecDeque::new(); regions]),
            sts: Mutex::new(vec![VecDeque::new(); regions]),
            ready: Mutex::new(vec![true; regions]),
            speaker_ready: Mutex::new(vec![true; regions]),
            docs: Mutex::new(vec![None; regions]),
            tokens_issued: Mutex::new(vec![0; regions]),
            seen: Mutex::new(Vec::new()),
        }
    }

    pub fn script(&self, region: usize, steps: impl IntoIterator<Item = Step>) {
        self.data.lock().unwrap()[region].extend(steps);
    }

    pub fn script_sts(&self, region: usize, steps: impl IntoIterator<Item = Step>) {
        self.sts.lock().unwrap()[region].extend(steps);
    }

    pub fn set_ready(&self, region: usize, ready: bool) {
        self.ready.lock().unwrap()[region] = ready;
    }

    pub fn set_speaker_ready(&self, region: usize, ready: bool) {
        self.speaker_ready.lock().unwrap()[region] = ready;
    }

    pub fn set_doc(&self, region: usize, status: u16, body: &str) {
        self.docs.lock().unwrap()[region] = Some((status, body.to_string()));
    }

    /// Data-plane requests seen (no STS, no probes, no discovery).
    pub fn data_seen(&self) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|s| {
                !s.path.starts_with("/sts/")
                    && !s.path.starts_with("/readyz")
                    && s.path != "/.well-known/tandem"
            })
            .cloned()
            .collect()
    }

    /// Requests seen with this exact path.
    pub fn seen_path(&self, path: &str) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen.iter().filter(|s| s.path == path).cloned().collect()
    }

    pub fn issued(&self, region: usize) -> u32 {
        self.tokens_issued.lock().unwrap()[region]
    }
}

fn answer(status: u16, body: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    Response {
        status: StatusCode::from_u16(status).unwrap(),
        headers,
        body: Bytes::from(body.to_string()),
    }
}

async fn play(step: Step, ok: Response) -> Result<Response, TransportError> {
    match step {
        Step::Status(s) if s < 300 => Ok(ok),
        Step::Status(s) => Ok(answer(
            s,
            &format!(r#"{{"error":{{"code":"Code{s}","message":"scripted {s}"}}}}"#),
        )),
        Step::RetryAfter(s, secs) => {
            let mut r = answer(s, r#"{"error":{"code":"TooMany","message":"slow down"}}"#);
            r.headers.insert("retry-after", HeaderValue::from(secs));
            Ok(r)
        }
        Step::UsePair => {
            let mut r = answer(
                503,
                r#"{"error":{"code":"ServiceUnavailable","message":"catching up"}}"#,
            );
            r.headers.insert("retry-after", HeaderValue::from(1));
            r.headers
                .insert("x-tandem-redirect", HeaderValue::from_static("pair"));
            Ok(r)
        }
        Step::Fail(e) => Err(e),
        Step::Slow(d) => {
            tokio::time::sleep(d).await;
            Ok(ok)
        }
        Step::Hang => std::future::pending().await,
    }
}

#[async_trait::async_trait]
impl Transport for Fake {
    async fn send(&self, region: usize, req: Request) -> Result<Response, TransportError> {
        let auth = req
            .headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string());
        let key = req
            .headers
            .get("ocp-apim-subscription-key")
            .map(|v| v.to_str().unwrap().to_string());
        self.seen.lock().unwrap().push(Seen {
            region,
            path: req.path_and_query.clone(),
            auth,
            key,
            body: req.body.clone(),
        });
        if req.path_and_query == "/readyz" {
            let ready = self.ready.lock().unwrap()[region];
            return Ok(answer(if ready { 200 } else { 503 }, "{}"));
        }
        if req.path_and_query == "/readyz/speaker" {
            let ready = self.speaker_ready.lock().unwrap()[region];
            return Ok(answer(if ready { 200 } else { 503 }, "{}"));
        }
        if req.path_and_query == "/.well-known/tandem" {
            let doc = self.docs.lock().unwrap()[region].clone();
            let (status, body) = doc.unwrap_or((404, r#"{"error":{"code":"NotFound"}}"#.into()));
            return Ok(answer(status, &body));
        }
        if req.path_and_query.starts_with("/sts/") {
            let step = self.sts.lock().unwrap()[region].pop_front();
            let n = {
                let mut issued = self.tokens_issued.lock().unwrap();
                issued[region] += 1;
                issued[region]
            };
            let token = answer(200, &format!("tok-{region}-{n}"));
            return play(step.unwrap_or(Step::Status(200)), token).await;
        }
        let step = self.data.lock().unwrap()[region].pop_front();
        let ok = answer(
            200,
            &format!(r#"{{"RecognitionStatus":"Success","region":{region}}}"#),
        );
        play(step.unwrap_or(Step::Status(200)), ok).await
    }
}

/// One region of a [`Fake`] as a transport of its own (its index 0 is the fake's `region`).
pub struct View(pub std::sync::Arc<Fake>, pub usize);

#[async_trait::async_trait]
impl Transport for View {
    async fn send(&self, _region: usize, req: Request) -> Result<Response, TransportError> {
        self.0.send(self.1, req).await
    }
}
