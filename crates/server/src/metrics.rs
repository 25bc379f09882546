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
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(events_dropped.clone()),
            Box::new(events_failed.clone()),
        ] {
            registry.register(c)?;
        }
        Ok(Metrics {
            registry,
            requests,
            latency,
            events_dropped,
            events_failed,
        })
    }

    /// Records one answered request.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.latency.with_label_values(&labels).observe(seconds);
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
