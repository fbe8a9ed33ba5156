//! Unit tests of the pure parts: classification table, backoff bounds, retry budget, breaker
//! transitions, configuration and SSML rewriting. Time is paused tokio time throughout.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio::time::{advance, Instant};

use crate::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

#[test]
fn classify_table() {
    use TransportError as T;
    let ra = Some(Duration::from_secs(7));
    let st = |status: u16, retry_after| Outcome::Status {
        status,
        retry_after,
        redirect: false,
    };
    let redirected = |status: u16| Outcome::Status {
        status,
        retry_after: Some(Duration::from_secs(1)),
        redirect: true,
    };
    let transient = Class::Transient { retry_after: None };
    let table: Vec<(Outcome, Class)> = vec![
        (st(200, None), Class::Success),
        (redirected(503), Class::Persistent),
        (redirected(500), Class::Persistent),
        // Only a server error redirects: a success or a caller error is what it is.
        (redirected(200), Class::Success),
        (redirected(404), Class::Caller),
        (st(204, None), Class::Success),
        (Outcome::Transport(T::Reset), transient.clone()),
        (Outcome::Transport(T::Timeout), transient.clone()),
        (st(408, None), transient.clone()),
        (st(429, ra), Class::Transient { retry_after: ra }),
        (st(429, None), transient.clone()),
        (st(500, None), transient.clone()),
        (st(502, None), transient.clone()),
        (st(503, ra), Class::Transient { retry_after: ra }),
        (st(504, None), transient.clone()),
        (Outcome::Transport(T::Refused), Class::Persistent),
        (Outcome::Transport(T::Dns), Class::Persistent),
        (Outcome::Transport(T::Tls), Class::Persistent),
        (Outcome::Transport(T::Other("x".into())), Class::Persistent),
        (st(501, None), Class::Persistent),
        (st(400, None), Class::Caller),
        (st(403, None), Class::Caller),
        (st(404, None), Class::Caller),
        (st(413, None), Class::Caller),
        (st(415, None), Class::Caller),
        (st(401, None), Class::Unauthorized),
    ];
    for (outcome, want) in table {
        assert_eq!(classify(&outcome), want, "{outcome:?}");
    }
}

#[test]
fn backoff_stays_within_full_jitter_bounds() {
    let b = Backoff {
        base: MS(25),
        cap: MS(1000),
    };
    assert_eq!(b.ceiling(0), MS(25));
    assert_eq!(b.ceiling(3), MS(200));
    assert_eq!(b.ceiling(6), MS(1000));
    assert_eq!(b.ceiling(200), MS(1000));
    for seed in 0..500u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for n in 0..40 {
            let unit: f64 = rng.gen();
            let d = b.delay(n, unit, None);
            let ceiling = MS(1000).min(MS(25).saturating_mul(1u32 << n.min(31)));
            assert!(d <= ceiling, "seed {seed} n {n}: {d:?} > {ceiling:?}");
            let ra = MS(rng.gen_range(0..3000));
            let d = b.delay(n, unit, Some(ra));
            assert!(d >= ra && d <= ceiling.max(ra), "seed {seed} n {n}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn retry_budget_runs_out_and_refills() {
    let budget = RetryBudget::new(0.2, 10);
    for i in 0..10 {
        assert!(budget.withdraw(), "retry {i} should be allowed");
    }
    assert!(
        !budget.withdraw(),
        "the 11th retry in the same instant is refused"
    );
    for _ in 0..5 {
        budget.deposit();
    }
    assert!(budget.withdraw(), "5 requests at 20% buy one retry");
    assert!(!budget.withdraw());
    advance(MS(100)).await;
    assert!(budget.withdraw(), "10/s refills one retry per 100 ms");
    assert!(!budget.withdraw());
    advance(Duration::from_secs(3600)).await;
    assert!(
        budget.balance() <= 10.0 + 20.0 + 1e-9,
        "capacity bounds savings"
    );
}

fn policy(jitter: f64) -> Policy {
    Policy {
        breaker_jitter: jitter,
        ..Policy::default()
    }
}

#[tokio::test(start_paused = true)]
async fn breaker_trips_on_consecutive_failures_and_open_grows() {
    let mut b = Breaker::new(&policy(0.0), Instant::now());
    for _ in 0..4 {
        assert_eq!(b.on_failure(Instant::now(), 0.5), None);
    }
    b.on_success(Instant::now());
    for _ in 0..4 {
        assert_eq!(b.on_failure(Instant::now(), 0.5), None);
    }
    assert_eq!(b.on_failure(Instant::now(), 0.5), Some(MS(1000)));
    assert_eq!(b.state(), BreakerState::Open);
    let mut expected = 1000;
    for _ in 0..8 {
        assert!(
            !b.probe_due(Instant::now()),
            "not due before the open period ends"
        );
        advance(MS(expected)).await;
        assert!(b.probe_due(Instant::now()));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        expected = (expected * 2).min(30_000);
        let effect = b.on_probe(false, Instant::now(), MS(10_000), 0.5);
        assert_eq!(effect, ProbeEffect::Tripped(MS(expected)));
    }
}

#[tokio::test(start_paused = true)]
async fn breaker_open_period_jitter_is_bounded() {
    for seed in 0..200u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut b = Breaker::new(&policy(0.2), Instant::now());
        let ceiling = b.open_ceiling();
        let mut open = None;
        while open.is_none() {
            open = b.on_failure(Instant::now(), rng.gen());
        }
        let open = open.unwrap();
        assert!(open <= ceiling && open >= ceiling.mul_f64(0.8), "{open:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn breaker_trips_on_failure_ratio() {
    let mut b = Breaker::new(&policy(0.0), Instant::now());
    // Alternate: never 5 in a row, but half of 20 calls fail.
    for i in 0..19 {
        let tripped = if i % 2 == 0 {
            b.on_failure(Instant::now(), 0.0)
        } else {
            b.on_success(Instant::now());
            None
        };
        assert_eq!(tripped, None, "call {i}");
    }
    assert_eq!(b.on_failure(Instant::now(), 0.0), Some(MS(1000)));
    // Old outcomes leave the window.
    let mut b = Breaker::new(&policy(0.0), Instant::now());
    for _ in 0..10 {
        b.on_failure(Instant::now(), 0.0);
        b.on_success(Instant::now());
        advance(MS(1100)).await;
    }
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn breaker_half_open_recovers_then_fails_back_after_the_healthy_period() {
    let mut b = Breaker::new(&policy(0.0), Instant::now());
    while b.on_failure(Instant::now(), 0.0).is_none() {}
    advance(MS(1000)).await;
    assert!(b.probe_due(Instant::now()));
    assert_eq!(
        b.on_probe(true, Instant::now(), MS(10_000), 0.0),
        ProbeEffect::Recovering
    );
    assert_eq!(b.state(), BreakerState::Recovering);
    advance(MS(9_999)).await;
    assert!(b.probe_due(Instant::now()));
    assert_eq!(
        b.on_probe(true, Instant::now(), MS(10_000), 0.0),
        ProbeEffect::Nothing
    );
    advance(MS(1)).await;
    assert_eq!(
        b.on_probe(true, Instant::now(), MS(10_000), 0.0),
        ProbeEffect::FailedBack
    );
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(
        b.open_ceiling(),
        MS(1000),
        "a full recovery resets the growth"
    );
    assert!(b.healthy_for(Instant::now()) >= MS(10_000));
}

#[tokio::test(start_paused = true)]
async fn breaker_without_failback_delay_closes_on_the_first_good_probe() {
    // A node's breaker: no failback period.
    let mut b = Breaker::new(&policy(0.0), Instant::now());
    while b.on_failure(Instant::now(), 0.0).is_none() {}
    advance(MS(1000)).await;
    assert!(b.probe_due(Instant::now()));
    assert_eq!(
        b.on_probe(false, Instant::now(), Duration::ZERO, 0.0),
        ProbeEffect::Tripped(MS(2000))
    );
    advance(MS(2000)).await;
    assert!(b.probe_due(Instant::now()));
    assert_eq!(
        b.on_probe(true, Instant::now(), Duration::ZERO, 0.0),
        ProbeEffect::FailedBack
    );
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.open_ceiling(), MS(1000));
}

#[test]
fn node_fault_table() {
    use crate::classify::node_fault;
    use TransportError as T;
    let st = |status: u16, redirect| Outcome::Status {
        status,
        retry_after: None,
        redirect,
    };
    let table = [
        (Outcome::Transport(T::Refused), true),
        (Outcome::Transport(T::Reset), true),
        (Outcome::Transport(T::Timeout), true),
        (Outcome::Transport(T::Dns), true),
        (Outcome::Transport(T::Tls), true),
        (Outcome::Transport(T::Other("x".into())), true),
        (st(500, false), true),
        (st(501, false), true),
        (st(502, false), true),
        (st(503, false), true),
        (st(504, false), true),
        // A region catching up speaks for all its nodes.
        (st(503, true), false),
        (st(200, false), false),
        (st(401, false), false),
        (st(404, false), false),
        (st(408, false), false),
        (st(429, false), false),
    ];
    for (outcome, want) in table {
        assert_eq!(node_fault(&outcome), want, "{outcome:?}");
    }
}

#[test]
fn config_parses_with_defaults_and_validates() {
    let cfg = ClientConfig::from_toml(
        r#"
        gateway_key = "gk"
        [[regions]]
        name = "westus"
        endpoint = "http://127.0.0.1:5001"
        key = "k1"
        cid = "c1"
        voice_deployment_id = "d1"
        [[regions]]
        name = "eastus"
        endpoint = "http://127.0.0.1:5002"
        key_file = "/nonexistent"
        [policy]
        max_attempts = 4
        hedge_stt_ms = 300
        "#,
    )
    .unwrap();
    assert_eq!(cfg.regions.len(), 2);
    assert_eq!(cfg.policy.max_attempts, 4);
    assert_eq!(cfg.policy.hedge_after(CallKind::Stt), Some(MS(300)));
    assert_eq!(cfg.policy.hedge_after(CallKind::Tts), None);
    assert_eq!(cfg.policy.timeout(CallKind::Stt), Duration::from_secs(10));
    assert_eq!(cfg.policy.timeout(CallKind::Tts), Duration::from_secs(5));
    assert_eq!(cfg.policy.timeout(CallKind::Sts), Duration::from_secs(2));
    assert_eq!(cfg.policy.public_fallback_voice, "en-US-SltFlite");
    assert_eq!(cfg.gateway_key().unwrap().as_deref(), Some("gk"));

    let bad = [
        "regions = []",
        "[[regions]]\nname='a'\nendpoint='http://x'\n",
        "[[regions]]\nname='a'\nendpoint='http://x'\nkey='k'\nkye='typo'\n",
        "[[regions]]\nname='a'\nendpoint='http://x'\nkey='k'\n[[regions]]\nname='a'\nendpoint='http://y'\nkey='k'\n",
        "[[regions]]\nname='a'\nendpoint='ftp://x'\nkey='k'\n",
        "[[regions]]\nname='a'\nendpoint='http://x'\nkey='k'\n[policy]\nmax_attempts=0\n",
        "[[regions]]\nname='a'\nendpoint='http://x'\nkey='k'\n[policy]\nunknown=1\n",
    ];
    for text in bad {
        assert!(
            matches!(ClientConfig::from_toml(text), Err(ClientError::Config(_))),
            "{text}"
        );
    }
}

#[test]
fn keys_come_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "secret\n").unwrap();
    let text = format!(
        "gateway_key_file = {:?}\n[[regions]]\nname='a'\nendpoint='http://x'\nkey_file = {:?}\n",
        key, key
    );
    let cfg = ClientConfig::from_toml(&text).unwrap();
    assert_eq!(cfg.regions[0].resolve_key().unwrap(), "secret");
    assert_eq!(cfg.gateway_key().unwrap().as_deref(), Some("secret"));
    let path = dir.path().join("client.toml");
    std::fs::write(&path, text).unwrap();
    assert_eq!(ClientConfig::from_file(&path).unwrap().regions[0].name, "a");
}

#[test]
fn rewrite_voice_replaces_every_voice_name() {
    let ssml = r#"<speak version="1.0"><voice  name="Custom1">Hi</voice><voice xml:lang="en" name = 'en-US-JennyNeural'>there</voice><voices name="keep"/></speak>"#;
    let out = rewrite_voice(ssml, "en-US-SltFlite");
    assert_eq!(
        out,
        r#"<speak version="1.0"><voice  name="en-US-SltFlite">Hi</voice><voice xml:lang="en" name = 'en-US-SltFlite'>there</voice><voices name="keep"/></speak>"#
    );
    assert_eq!(rewrite_voice("no voice here", "x"), "no voice here");
}

#[test]
fn new_outside_a_runtime_is_a_config_error() {
    let text = "[[regions]]\nname='a'\nendpoint='http://127.0.0.1:1'\nkey='k'\n";
    let cfg = ClientConfig::from_toml(text).unwrap();
    assert!(matches!(
        TandemClient::new(cfg),
        Err(ClientError::Config(_))
    ));
}
