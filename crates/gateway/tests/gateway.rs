//! The gateway against the mock provider over real HTTP: faults end as the routing policy
//! says, identical requests share one upstream call, the cache replays bytes exactly, and
//! the cost roll-ups equal an independent recomputation from the mock's own usage log.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::field_reassign_with_default,
    missing_docs
)]

use regelkreis_core::{Money, Tags};
use regelkreis_gateway::config::{
    BudgetConfig, BudgetScope, GatewayConfig, ProviderConfig, ProviderKind,
};
use regelkreis_gateway::{CallRecord, Caller, Gateway, GatewayError, PriceCatalogue, Reply};
use regelkreis_mock_provider::{self as mock, Fault, MockState};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PRICES: &str = r#"
[mock."gpt-a"]
input = "0.15"
cached_input = "0.075"
output = "0.60"
[mock."gpt-c"]
input = "2.50"
cached_input = "1.25"
output = "10.00"
[mockant."claude-b"]
input = "3.00"
cached_input = "0.30"
cache_write = "3.75"
output = "15.00"
"#;

struct Rig {
    gw: Arc<Gateway>,
    mock: Arc<MockState>,
    records: Arc<Mutex<Vec<CallRecord>>>,
}

fn provider(name: &str, kind: ProviderKind, base: String, table: &str) -> ProviderConfig {
    ProviderConfig {
        name: name.into(),
        kind,
        base_url: Some(base),
        api_key: Some("sk-mock".into()),
        api_key_env: None,
        price_table: Some(table.into()),
        timeout_ms: None,
    }
}

async fn rig(tune: impl FnOnce(&mut GatewayConfig)) -> Rig {
    let mock = MockState::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(mock::serve(listener, mock.clone()));
    let base = format!("http://{addr}/v1");
    let mut c = GatewayConfig::default();
    c.providers = vec![
        provider(
            "mockai",
            ProviderKind::OpenaiCompatible,
            base.clone(),
            "mock",
        ),
        provider("mockant", ProviderKind::Anthropic, base, "mockant"),
        provider(
            "dead",
            ProviderKind::OpenaiCompatible,
            "http://127.0.0.1:9/v1".into(),
            "mock",
        ),
    ];
    c.tiers.insert(
        "standard".into(),
        vec!["mockai/gpt-a".into(), "mockant/claude-b".into()],
    );
    c.tiers.insert(
        "critical".into(),
        vec!["mockant/claude-b".into(), "mockai/gpt-c".into()],
    );
    c.tiers.insert(
        "flaky".into(),
        vec!["dead/gpt-a".into(), "mockai/gpt-c".into()],
    );
    c.attempts_per_target = 2;
    c.backoff_base_ms = 1;
    c.backoff_max_ms = 5;
    c.timeout_ms = 400;
    c.stream_idle_timeout_ms = 400;
    c.breaker_failures = 1000;
    tune(&mut c);
    let records = Arc::new(Mutex::new(Vec::new()));
    let sink = records.clone();
    let gw = Gateway::new(
        c,
        PriceCatalogue::from_toml(PRICES).unwrap(),
        Arc::new(move |r: &CallRecord| sink.lock().unwrap().push(r.clone())),
        None,
    )
    .unwrap();
    Rig {
        gw: Arc::new(gw),
        mock,
        records,
    }
}

fn caller(feature: &str) -> Caller {
    Caller {
        tenant: "tenant-1".into(),
        key: "key-1".into(),
        tags: Tags {
            feature: Some(feature.into()),
            campaign: None,
        },
    }
}

fn req(model: &str, text: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "stream_options": {"include_usage": stream},
           "messages": [{"role": "system", "content": "You write ad copy."}, {"role": "user", "content": text}]})
}

async fn collect(reply: Reply) -> Vec<u8> {
    match reply {
        Reply::Json(b, _) => b.to_vec(),
        Reply::Stream(mut s) => {
            let mut out = Vec::new();
            while let Some(b) = s.next().await {
                out.extend_from_slice(&b);
            }
            out
        }
    }
}

fn last(r: &Rig) -> CallRecord {
    r.records.lock().unwrap().last().cloned().unwrap()
}

#[tokio::test]
async fn a_500_is_retried_on_the_same_provider() {
    let r = rig(|_| {}).await;
    r.mock.push_faults(
        "gpt-a",
        [Fault::Status {
            status: 500,
            retry_after_s: None,
        }],
    );
    let body = collect(
        r.gw.chat(caller("f"), req("standard", "hello", false))
            .await
            .unwrap(),
    )
    .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["object"], "chat.completion");
    let rec = last(&r);
    assert_eq!(rec.provider, "mockai");
    assert_eq!(rec.fallback_path, vec!["mockai/gpt-a:5xx".to_owned()]);
    assert_eq!(r.mock.calls(), 2);
}

#[tokio::test]
async fn retry_after_is_honoured_or_skipped_when_too_long() {
    let r = rig(|c| c.retry_after_max_ms = 3_000).await;
    r.mock.push_faults(
        "gpt-a",
        [Fault::Status {
            status: 429,
            retry_after_s: Some(1),
        }],
    );
    let t = Instant::now();
    r.gw.chat(caller("f"), req("standard", "one", false))
        .await
        .unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(990),
        "waited {:?}",
        t.elapsed()
    );
    assert_eq!(last(&r).provider, "mockai");
    // A wait longer than allowed moves on to the next target at once.
    r.mock.push_faults(
        "gpt-a",
        [Fault::Status {
            status: 429,
            retry_after_s: Some(60),
        }],
    );
    let t = Instant::now();
    r.gw.chat(caller("f"), req("standard", "two", false))
        .await
        .unwrap();
    assert!(t.elapsed() < Duration::from_millis(900));
    let rec = last(&r);
    assert_eq!(rec.provider, "mockant");
    assert_eq!(rec.fallback_path, vec!["mockai/gpt-a:429".to_owned()]);
}

#[tokio::test]
async fn timeouts_fall_back_and_slow_answers_within_the_limit_pass() {
    let r = rig(|_| {}).await;
    r.mock.push_faults(
        "gpt-a",
        [Fault::Delay { ms: 1_000 }, Fault::Delay { ms: 1_000 }],
    );
    r.gw.chat(caller("f"), req("standard", "slow", false))
        .await
        .unwrap();
    let rec = last(&r);
    assert_eq!(rec.provider, "mockant");
    assert_eq!(
        rec.fallback_path,
        vec![
            "mockai/gpt-a:timeout".to_owned(),
            "mockai/gpt-a:timeout".to_owned()
        ]
    );
    // Slow but within the timeout: answered by the first target, latency shows it.
    r.mock.push_faults("gpt-a", [Fault::Delay { ms: 150 }]);
    r.gw.chat(caller("f"), req("standard", "slowish", false))
        .await
        .unwrap();
    let rec = last(&r);
    assert_eq!(rec.provider, "mockai");
    assert!(rec.latency_us >= 150_000);
    // Every target timing out is a 504.
    r.mock.push_faults(
        "gpt-a",
        [Fault::Delay { ms: 1_000 }, Fault::Delay { ms: 1_000 }],
    );
    r.mock.push_faults(
        "claude-b",
        [Fault::Delay { ms: 1_000 }, Fault::Delay { ms: 1_000 }],
    );
    let e =
        r.gw.chat(caller("f"), req("standard", "never", false))
            .await
            .err()
            .unwrap();
    assert_eq!(e.status(), 504, "{e}");
}

#[tokio::test]
async fn resets_and_refused_connections_fall_back() {
    let r = rig(|_| {}).await;
    r.mock.push_faults("gpt-a", [Fault::Reset]);
    r.gw.chat(caller("f"), req("standard", "reset", false))
        .await
        .unwrap();
    assert_eq!(
        last(&r).fallback_path,
        vec!["mockai/gpt-a:connect".to_owned()]
    );
    r.gw.chat(caller("f"), req("flaky", "refused", false))
        .await
        .unwrap();
    let rec = last(&r);
    assert_eq!(
        (rec.provider.as_str(), rec.model.as_str()),
        ("mockai", "gpt-c")
    );
    assert_eq!(rec.fallback_path.len(), 2);
    assert!(rec.fallback_path[0].starts_with("dead/gpt-a:connect"));
}

#[tokio::test]
async fn a_provider_refusal_is_not_retried() {
    let r = rig(|_| {}).await;
    r.mock.push_faults(
        "gpt-a",
        [Fault::Status {
            status: 400,
            retry_after_s: None,
        }],
    );
    let e =
        r.gw.chat(caller("f"), req("standard", "bad", false))
            .await
            .err()
            .unwrap();
    assert!(
        matches!(e, GatewayError::Refused { status: 400, .. }),
        "{e:?}"
    );
    assert_eq!(r.mock.calls(), 1);
    // The provider refusing the gateway's own key is the gateway's failure: 502.
    r.mock.push_faults(
        "gpt-a",
        [Fault::Status {
            status: 401,
            retry_after_s: None,
        }],
    );
    let e =
        r.gw.chat(caller("f"), req("standard", "key", false))
            .await
            .err()
            .unwrap();
    assert_eq!(e.status(), 502);
}

#[tokio::test]
async fn an_open_circuit_skips_the_provider() {
    let r = rig(|c| {
        c.breaker_failures = 2;
        c.breaker_cooldown_ms = 60_000;
    })
    .await;
    r.mock.push_faults(
        "gpt-a",
        [
            Fault::Status {
                status: 503,
                retry_after_s: None,
            },
            Fault::Status {
                status: 503,
                retry_after_s: None,
            },
        ],
    );
    r.gw.chat(caller("f"), req("standard", "a", false))
        .await
        .unwrap();
    let calls = r.mock.calls();
    r.gw.chat(caller("f"), req("standard", "b", false))
        .await
        .unwrap();
    let rec = last(&r);
    assert_eq!(rec.provider, "mockant");
    assert_eq!(
        rec.fallback_path,
        vec!["mockai/gpt-a:circuit_open".to_owned()]
    );
    assert_eq!(r.mock.calls(), calls + 1, "the open provider got no call");
}

fn stream_text(bytes: &[u8]) -> (String, bool, Option<Value>) {
    let mut p = regelkreis_gateway::wire::SseParser::default();
    let mut text = String::new();
    let mut done = false;
    let mut error = None;
    for e in p.push(bytes) {
        if e.data == "[DONE]" {
            done = true;
            continue;
        }
        let v: Value = serde_json::from_str(&e.data).unwrap();
        if v.get("error").is_some() {
            error = Some(v);
        } else if let Some(t) = regelkreis_gateway::wire::chunk_text(&v) {
            text.push_str(t);
        }
    }
    (text, done, error)
}

#[tokio::test]
async fn a_stream_cut_after_it_started_ends_with_an_error_event() {
    let r = rig(|_| {}).await;
    r.mock.push_faults("gpt-a", [Fault::CutStream { after: 3 }]);
    let bytes = collect(
        r.gw.chat(caller("f"), req("standard", "cut", true))
            .await
            .unwrap(),
    )
    .await;
    let (text, done, error) = stream_text(&bytes);
    assert!(
        !done,
        "no [DONE] after a cut: {}",
        String::from_utf8_lossy(&bytes)
    );
    assert!(!text.is_empty(), "the part before the cut arrived");
    assert_eq!(error.unwrap()["error"]["code"], "stream_interrupted");
    let rec = last(&r);
    assert!(rec.interrupted && rec.usage.estimated);
    // Not cached: the same request again goes upstream and completes.
    let bytes = collect(
        r.gw.chat(caller("f"), req("standard", "cut", true))
            .await
            .unwrap(),
    )
    .await;
    assert!(stream_text(&bytes).1);
    // Cut before any chunk reached the client: the fallback answers transparently.
    r.mock.push_faults(
        "gpt-a",
        [Fault::CutStream { after: 0 }, Fault::CutStream { after: 0 }],
    );
    let bytes = collect(
        r.gw.chat(caller("f"), req("standard", "early", true))
            .await
            .unwrap(),
    )
    .await;
    let (text, done, error) = stream_text(&bytes);
    assert!(done && error.is_none() && !text.is_empty());
    assert_eq!(last(&r).provider, "mockant");
}

#[tokio::test]
async fn a_silent_stream_times_out_with_an_error_event() {
    let r = rig(|_| {}).await;
    r.mock.set_chunk_delay(Duration::from_millis(800));
    let bytes = collect(
        r.gw.chat(caller("f"), req("standard", "silent", true))
            .await
            .unwrap(),
    )
    .await;
    let (_, done, error) = stream_text(&bytes);
    assert!(!done);
    assert!(error.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("timed out"));
}

#[tokio::test]
async fn identical_requests_in_flight_share_one_call_streams_included() {
    for stream in [false, true] {
        let r = rig(|_| {}).await;
        r.mock.set_latency(Duration::from_millis(150));
        let mut tasks = Vec::new();
        for i in 0..20 {
            let gw = r.gw.clone();
            tasks.push(tokio::spawn(async move {
                let c = caller(if i % 2 == 0 { "even" } else { "odd" });
                collect(
                    gw.chat(c, req("critical", "same question", stream))
                        .await
                        .unwrap(),
                )
                .await
            }));
        }
        let mut bodies = Vec::new();
        for t in tasks {
            bodies.push(t.await.unwrap());
        }
        assert_eq!(r.mock.calls(), 1, "stream={stream}");
        assert!(bodies.iter().all(|b| b == &bodies[0]));
        let served = r.mock.served();
        let price = PriceCatalogue::from_toml(PRICES)
            .unwrap()
            .get("mockant", "claude-b")
            .unwrap();
        let cost = price.cost(&served[0].usage);
        let recs = r.records.lock().unwrap().clone();
        assert_eq!(recs.len(), 20);
        assert_eq!(
            recs.iter().map(|r| r.cost.micros()).sum::<i64>(),
            cost.micros(),
            "{:?} {:?}",
            recs[0],
            served[0]
        );
        assert_eq!(
            recs.iter().map(|r| r.usage.prompt_tokens).sum::<u64>(),
            served[0].usage.prompt_tokens,
            "stream={stream} {:?} {:?}",
            recs[0].usage,
            served[0].usage
        );
        let report = r.gw.costs("tenant-1");
        assert_eq!(report.total.cost_micros, cost.micros());
        assert_eq!(
            report.by_feature["even"].cost_micros + report.by_feature["odd"].cost_micros,
            cost.micros()
        );
    }
}

#[tokio::test]
async fn the_cache_replays_bytes_exactly_and_never_across_tenants() {
    let r = rig(|_| {}).await;
    for stream in [false, true] {
        let a = collect(
            r.gw.chat(caller("f"), req("standard", "cache me", stream))
                .await
                .unwrap(),
        )
        .await;
        let calls = r.mock.calls();
        // Tags differ, the answer is the same.
        let mut body = req("standard", "cache me", stream);
        body["metadata"] = json!({"campaign": "x"});
        let b = collect(r.gw.chat(caller("g"), body).await.unwrap()).await;
        assert_eq!(a, b);
        assert_eq!(r.mock.calls(), calls);
        let rec = last(&r);
        assert!(rec.cache_hit && rec.cost == Money::ZERO);
        let mut other = caller("f");
        other.tenant = "tenant-2".into();
        collect(
            r.gw.chat(other, req("standard", "cache me", stream))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            r.mock.calls(),
            calls + 1,
            "another tenant is never served from this cache"
        );
    }
}

#[tokio::test]
async fn budgets_refuse_with_a_clear_error_and_hold_under_concurrency() {
    let r = rig(|c| {
        c.budgets.push(BudgetConfig {
            tenant: "tenant-1".into(),
            scope: BudgetScope::Campaign,
            name: Some("launch".into()),
            limit: "0.004".into(),
        });
    })
    .await;
    r.mock.set_latency(Duration::from_millis(20));
    let launch = Caller {
        tags: Tags {
            feature: None,
            campaign: Some("launch".into()),
        },
        ..caller("f")
    };
    let mut tasks = Vec::new();
    for i in 0..40 {
        let gw = r.gw.clone();
        let c = launch.clone();
        tasks.push(tokio::spawn(async move {
            let mut body = req("mockai/gpt-c", &format!("question {i}"), false);
            body["max_tokens"] = json!(20);
            gw.chat(c, body).await.map(|_| ())
        }));
    }
    let mut refused = 0;
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            assert_eq!(e.status(), 429);
            assert!(e.to_string().contains("campaign budget 'launch'"), "{e}");
            refused += 1;
        }
    }
    let report = r.gw.costs("tenant-1");
    let b = &report.budgets[0];
    assert!(refused > 0);
    assert!(
        b.spent_micros <= b.limit_micros,
        "spent {} of {}",
        b.spent_micros,
        b.limit_micros
    );
    assert_eq!(b.reserved_micros, 0);
}

/// Thousands of requests, streaming and not, with cache hits, shared calls, retries and
/// fallbacks: the gateway's roll-ups equal the mock's usage priced independently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_roll_ups_equal_an_independent_recomputation() {
    let r = rig(|c| c.cache_entries = 300).await;
    let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let models = ["standard", "critical", "mockai/gpt-c", "flaky"];
    let features = ["search", "copy", "support"];
    let mut expected_requests = 0u64;
    for _batch in 0..100 {
        let mut tasks = Vec::new();
        for _ in 0..24 {
            let x = next();
            let model = models[(x % 4) as usize];
            // Few distinct questions, so cache hits and shared calls happen.
            let q = format!("question {}", (x >> 8) % 150);
            let stream = (x >> 20) % 2 == 0;
            match (x >> 24) % 16 {
                0 => r.mock.push_faults(
                    "gpt-a",
                    [Fault::Status {
                        status: 500,
                        retry_after_s: None,
                    }],
                ),
                1 => r.mock.push_faults(
                    "claude-b",
                    [Fault::Status {
                        status: 429,
                        retry_after_s: Some(0),
                    }],
                ),
                2 => r.mock.push_faults("gpt-a", [Fault::Reset]),
                3 => r.mock.push_faults("gpt-a", [Fault::CutStream { after: 0 }]),
                _ => {}
            }
            let mut c = caller(features[((x >> 28) % 3) as usize]);
            c.key = format!("key-{}", (x >> 32) % 4);
            let gw = r.gw.clone();
            expected_requests += 1;
            tasks.push(tokio::spawn(async move {
                collect(gw.chat(c, req(model, &q, stream)).await.unwrap()).await
            }));
        }
        for t in tasks {
            let body = t.await.unwrap();
            assert!(!body.is_empty());
        }
    }
    let prices = PriceCatalogue::from_toml(PRICES).unwrap();
    let served = r.mock.served();
    let mut expected_cost = 0i64;
    let mut expected_prompt = 0u64;
    for s in &served {
        let table = if s.protocol == "anthropic" {
            "mockant"
        } else {
            "mock"
        };
        expected_cost += prices.get(table, &s.model).unwrap().cost(&s.usage).micros();
        expected_prompt += s.usage.prompt_tokens;
    }
    let report = r.gw.costs("tenant-1");
    let recs = r.records.lock().unwrap().clone();
    assert_eq!(report.total.requests, expected_requests);
    assert_eq!(report.total.cost_micros, expected_cost);
    assert_eq!(report.total.prompt_tokens, expected_prompt);
    assert_eq!(report.total.estimated, 0);
    for part in [&report.by_feature, &report.by_key, &report.by_model] {
        assert_eq!(
            part.values().map(|t| t.cost_micros).sum::<i64>(),
            expected_cost
        );
        assert_eq!(
            part.values().map(|t| t.requests).sum::<u64>(),
            expected_requests
        );
    }
    assert_eq!(
        recs.iter().map(|r| r.cost.micros()).sum::<i64>(),
        expected_cost
    );
    let hits = recs.iter().filter(|r| r.cache_hit).count();
    let shared = recs.iter().filter(|r| r.shared_by > 1).count();
    let fell_back = recs.iter().filter(|r| !r.fallback_path.is_empty()).count();
    assert!(
        hits > 100 && shared > 0 && fell_back > 10,
        "hits {hits}, shared {shared}, fallbacks {fell_back}"
    );
    assert!(expected_cost > 0);
}
