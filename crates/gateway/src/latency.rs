//! Latency quantiles per model over a sliding window of recent calls.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};

/// Calls kept per model.
pub const WINDOW: usize = 10_000;

/// p50, p95 and p99 of one model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LatencySummary {
    /// Calls in the window.
    pub calls: usize,
    /// Median, in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

/// Recent latencies by tenant and model.
#[derive(Debug, Default)]
pub struct LatencyWindow {
    by: Mutex<BTreeMap<(String, String), VecDeque<u64>>>,
}

/// The `q` quantile of sorted values (nearest rank).
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl LatencyWindow {
    /// Records one call.
    pub fn record(&self, tenant: &str, model: &str, micros: u64) {
        let mut g = self.by.lock().unwrap_or_else(PoisonError::into_inner);
        let w = g.entry((tenant.to_owned(), model.to_owned())).or_default();
        if w.len() == WINDOW {
            w.pop_front();
        }
        w.push_back(micros);
    }

    /// Quantiles per model of one tenant.
    pub fn summary(&self, tenant: &str) -> BTreeMap<String, LatencySummary> {
        let g = self.by.lock().unwrap_or_else(PoisonError::into_inner);
        g.iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|((_, m), w)| {
                let mut v: Vec<u64> = w.iter().copied().collect();
                v.sort_unstable();
                let ms = |x: u64| x as f64 / 1e3;
                (
                    m.clone(),
                    LatencySummary {
                        calls: v.len(),
                        p50_ms: ms(quantile(&v, 0.50)),
                        p95_ms: ms(quantile(&v, 0.95)),
                        p99_ms: ms(quantile(&v, 0.99)),
                        max_ms: ms(v.last().copied().unwrap_or(0)),
                    },
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 50);
        assert_eq!(quantile(&v, 0.95), 95);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&[7], 0.99), 7);
        let w = LatencyWindow::default();
        for i in 0..(WINDOW as u64 + 5) {
            w.record("t", "m", i);
        }
        let s = &w.summary("t")["m"];
        assert_eq!(s.calls, WINDOW);
        assert!(w.summary("other").is_empty());
    }
}
