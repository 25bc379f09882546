//! Prometheus metrics: request counts and latency histograms by method, route template
//! and status, plus counters of the server's own health.

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

/// The server's metrics, in their own registry.
pub struct Metrics {
    registry: Registry,
    /// Requests answered.
    pub requests: IntCounterVec,
    /// Request latency in seconds.
    pub latency: HistogramVec,
    /// Request events dropped because the writer was saturated.
    pub events_dropped: IntCounter,
    /// Request events that failed to be written.
    pub events_failed: IntCounter,
    /// Model calls through the gateway.
    pub llm_calls: IntCounterVec,
    /// Gateway call latency in seconds, by provider, model and cache hit.
    pub llm_latency: HistogramVec,
    /// Cost of gateway calls in micro-units.
    pub llm_cost_micros: IntCounterVec,
    /// Tokens of gateway calls, by kind (`prompt`, `completion`, `cached`).
    pub llm_tokens: IntCounterVec,
    /// Drift checks that found drift, by tenant and feature: alert on its increase.
    pub drift_alerts: IntCounterVec,
}

impl Metrics {
    /// Fresh metrics in their own registry.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let labels = &["method", "route", "status"];
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            labels,
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ],
            ),
            labels,
        )?;
        let events_dropped = IntCounter::new(
            "regelkreis_request_events_dropped_total",
            "request events dropped because the event writer was saturated",
        )?;
        let events_failed = IntCounter::new(
            "regelkreis_request_events_failed_total",
            "request events the store refused",
        )?;
        let llm_labels = &["provider", "model", "cache_hit"];
        let llm_calls = IntCounterVec::new(
            Opts::new(
                "regelkreis_llm_calls_total",
                "model calls through the gateway",
            ),
            llm_labels,
        )?;
        let llm_latency = HistogramVec::new(
            HistogramOpts::new(
                "regelkreis_llm_call_duration_seconds",
                "gateway call latency, request to the end of the answer",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0, 60.0,
            ]),
            llm_labels,
        )?;
        let llm_cost_micros = IntCounterVec::new(
            Opts::new(
                "regelkreis_llm_cost_micros_total",
                "cost of gateway calls in micro-units of the account currency",
            ),
            &["provider", "model"],
        )?;
        let llm_tokens = IntCounterVec::new(
            Opts::new("regelkreis_llm_tokens_total", "tokens of gateway calls"),
            &["provider", "model", "kind"],
        )?;
        let drift_alerts = IntCounterVec::new(
            Opts::new(
                "regelkreis_drift_alerts_total",
                "drift checks that found drift (PSI ≥ 0.1, KS p < 0.05 or embedding p < 0.05)",
            ),
            &["tenant", "feature"],
        )?;
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(drift_alerts.clone()),
            Box::new(latency.clone()),
            Box::new(events_dropped.clone()),
            Box::new(events_failed.clone()),
            Box::new(llm_calls.clone()),
            Box::new(llm_latency.clone()),
            Box::new(llm_cost_micros.clone()),
            Box::new(llm_tokens.clone()),
        ] {
            registry.register(c)?;
        }
        Ok(Metrics {
            registry,
            requests,
            latency,
            events_dropped,
            events_failed,
            llm_calls,
            llm_latency,
            llm_cost_micros,
            llm_tokens,
            drift_alerts,
        })
    }

    /// Records one answered request.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.latency.with_label_values(&labels).observe(seconds);
    }

    /// Records one gateway call.
    pub fn observe_llm(&self, r: &regelkreis_gateway::CallRecord) {
        let hit = if r.cache_hit { "true" } else { "false" };
        let labels = [r.provider.as_str(), r.model.as_str(), hit];
        self.llm_calls.with_label_values(&labels).inc();
        self.llm_latency
            .with_label_values(&labels)
            .observe(r.latency_us as f64 / 1e6);
        let pm = [r.provider.as_str(), r.model.as_str()];
        self.llm_cost_micros
            .with_label_values(&pm)
            .inc_by(r.cost.micros().max(0) as u64);
        for (kind, n) in [
            ("prompt", r.usage.prompt_tokens),
            ("completion", r.usage.completion_tokens),
            ("cached", r.usage.cached_tokens),
        ] {
            if n > 0 {
                self.llm_tokens
                    .with_label_values(&[pm[0], pm[1], kind])
                    .inc_by(n);
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!("metrics encoding failed: {e}");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}
