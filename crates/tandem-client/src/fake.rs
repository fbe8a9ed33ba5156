//! A scripted [`Transport`] for the policy tests: per-region queues of answers for data-plane
//! calls, counted STS tokens, and switchable `/readyz`.

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
    pub body: Bytes,
}

pub struct Fake {
    pub data: Mutex<Vec<VecDeque<Step>>>,
    pub sts: Mutex<Vec<VecDeque<Step>>>,
    pub ready: Mutex<Vec<bool>>,
    pub tokens_issued: Mutex<Vec<u32>>,
    pub seen: Mutex<Vec<Seen>>,
}

impl Fake {
    pub fn new(regions: usize) -> Self {
        Fake {
            data: Mutex::new(vec![VecDeque::new(); regions]),
            sts: Mutex::new(vec![VecDeque::new(); regions]),
            ready: Mutex::new(vec![true; regions]),
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

    /// Data-plane requests seen (no STS, no probes).
    pub fn data_seen(&self) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|s| !s.path.starts_with("/sts/") && s.path != "/readyz")
            .cloned()
            .collect()
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
        self.seen.lock().unwrap().push(Seen {
            region,
            path: req.path_and_query.clone(),
            auth,
            body: req.body.clone(),
        });
        if req.path_and_query == "/readyz" {
            let ready = self.ready.lock().unwrap()[region];
            return Ok(answer(if ready { 200 } else { 503 }, "{}"));
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
