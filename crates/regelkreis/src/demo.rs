//! `regelkreis demo`: a fresh data dir, a server on a free port, a tenant and keys,
//! authenticated calls, and what each of them did, in readable form.

use crate::cli::{create_key, table};
use anyhow::Context;
use regelkreis_store::audit::verify_all;
use regelkreis_store::{SqliteStore, Store};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

struct Call {
    what: &'static str,
    method: Method,
    path: String,
    key: Option<String>,
    body: Option<Value>,
    headers: Vec<(&'static str, &'static str)>,
}

fn call(what: &'static str, method: Method, path: &str, key: Option<&str>) -> Call {
    Call {
        what,
        method,
        path: path.to_owned(),
        key: key.map(str::to_owned),
        body: None,
        headers: vec![],
    }
}

/// Runs the demo.
pub fn run() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(demo())
}

async fn demo() -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("regelkreis-demo-")
        .tempdir()?;
    println!("regelkreis demo\n===============\n");
    println!("1. data dir {} (removed at the end)", dir.path().display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(
        &dir.path().join(regelkreis_store::SQLITE_FILE),
    )?);
    println!("   store: embedded SQLite, WAL, synchronous=FULL");

    let state = regelkreis_server::AppState::new(store.clone(), Default::default())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(regelkreis_server::serve(listener, state, async move {
        let _ = stop_rx.await;
    }));
    println!("2. server listening on http://{addr}");

    let s = store.clone();
    let (admin, writer, other) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        Ok((
            create_key(s.as_ref(), "acme", &["admin".into()], "demo-admin")?,
            create_key(s.as_ref(), "acme", &["events:write".into()], "demo-writer")?,
            create_key(s.as_ref(), "globex", &["admin".into()], "demo-other")?,
        ))
    })
    .await??;
    println!("3. tenants acme and globex; keys: acme admin, acme events:write, globex admin\n");

    let outcome = |v: f64| json!({"type": "outcome", "data": {"name": "revenue", "value": v, "unit": "user-17"}});
    let mut calls = vec![
        call("liveness", Method::GET, "/healthz", None),
        call("readiness checks the store", Method::GET, "/readyz", None),
        call("who am I", Method::GET, "/api/tenant", Some(&admin)),
        call("no key", Method::POST, "/api/events", None),
        Call {
            body: Some(
                json!([outcome(19.99), outcome(5.0), {"type": "exposure", "data": {"experiment": "headline", "arm": "b", "unit": "user-17"}}]),
            ),
            headers: vec![("x-regelkreis-campaign", "black-friday")],
            ..call(
                "append 3 events",
                Method::POST,
                "/api/events",
                Some(&writer),
            )
        },
        Call {
            body: Some(json!({"type": "model_call", "data": {}})),
            ..call(
                "forged event type",
                Method::POST,
                "/api/events",
                Some(&writer),
            )
        },
        call(
            "writer reads events",
            Method::GET,
            "/api/events",
            Some(&writer),
        ),
        call(
            "admin reads outcomes",
            Method::GET,
            "/api/events?type=outcome",
            Some(&admin),
        ),
        call(
            "other tenant reads",
            Method::GET,
            "/api/events?type=outcome",
            Some(&other),
        ),
        Call {
            body: Some(json!({"name": "dashboard", "scopes": ["stats"]})),
            ..call(
                "admin creates a key",
                Method::POST,
                "/api/keys",
                Some(&admin),
            )
        },
        call(
            "audit chain",
            Method::GET,
            "/api/audit/verify",
            Some(&admin),
        ),
        call(
            "unknown route",
            Method::GET,
            "/api/nothing-here",
            Some(&admin),
        ),
    ];
    let client = reqwest::Client::new();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for c in calls.drain(..) {
        let mut req = client.request(c.method.clone(), format!("http://{addr}{}", c.path));
        if let Some(k) = &c.key {
            req = req.bearer_auth(k);
        }
        for (h, v) in &c.headers {
            req = req.header(*h, *v);
        }
        if let Some(b) = &c.body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("calling {}", c.path))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let summary = summarize(status, &body);
        rows.push([
            c.what.to_owned(),
            format!("{} {}", c.method, c.path),
            status.as_u16().to_string(),
            summary,
        ]);
        if c.path == "/api/tenant" {
            notes.push(format!(
                "   acme's admin key acts for tenant {}",
                body["tenant"]["id"]
            ));
        }
    }
    print!("{}", table(&["WHAT", "REQUEST", "STATUS", "ANSWER"], &rows));

    let metrics = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let counted: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("http_requests_total{"))
        .collect();
    println!(
        "\n4. /metrics counts requests by route and status ({} series), e.g.",
        counted.len()
    );
    for l in counted.iter().take(4) {
        println!("   {l}");
    }
    for n in notes {
        println!("{n}");
    }

    let _ = stop_tx.send(());
    server.await??;
    println!("\n5. server stopped gracefully; request log flushed");
    let s = store.clone();
    let (report, events) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let acme = s.tenant_by_name("acme")?.context("tenant acme")?;
        let events = s.events(&regelkreis_core::EventQuery::for_tenant(acme.id, 10_000))?;
        Ok((verify_all(s.as_ref())?, events))
    })
    .await??;
    let requests = events
        .iter()
        .filter(|e| e.kind.type_name() == "request")
        .count();
    println!(
        "   acme's event log: {} events ({} request events, {} from clients)",
        events.len(),
        requests,
        events.len() - requests
    );
    match report {
        Ok(r) => println!("   audit verify: intact, {} records", r.records),
        Err(b) => anyhow::bail!("audit verify failed: {b}"),
    }
    println!("\ndone.");
    Ok(())
}

fn summarize(status: StatusCode, body: &Value) -> String {
    if let Some(msg) = body["error"]["message"].as_str() {
        return format!(
            "error {}: {}",
            body["error"]["code"].as_str().unwrap_or("?"),
            truncate(msg, 60)
        );
    }
    if let Some(events) = body["events"].as_array() {
        return format!("{} events", events.len());
    }
    if let Some(ids) = body["ids"].as_array() {
        return format!(
            "appended ids {}",
            ids.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if body["ok"].as_bool() == Some(true) {
        return format!("intact, {} records", body["records"]);
    }
    if let Some(key) = body["key"].as_str() {
        return format!(
            "new key {} (rk_…{} shown once)",
            body["id"].as_str().unwrap_or("?"),
            &key[key.len().saturating_sub(4)..]
        );
    }
    if status.is_success() {
        truncate(&body.to_string(), 60)
    } else {
        status.to_string()
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n).collect::<String>() + "…"
    }
}
