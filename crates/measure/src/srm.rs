//! The sequential sample-ratio-mismatch test of Lindon & Malek (2022), as Optimizely's
//! `ssrm-test` implements it: a Dirichlet–multinomial mixture against the intended split,
//! whose Bayes factor gives an always-valid p-value, so traffic can be checked after every
//! batch without inflating false alarms.

use crate::special::ln_gamma;

/// Running state of the test.
#[derive(Debug, Clone, PartialEq)]
pub struct SequentialSrm {
    null: Vec<f64>,
    posterior: Vec<f64>,
    log_ml_alternative: f64,
    log_ml_null: f64,
    p_value: f64,
}

fn xlogy(x: f64, y: f64) -> f64 {
    if x == 0.0 {
        0.0
    } else {
        x * y.ln()
    }
}

impl SequentialSrm {
    /// A test of the intended split `null` (summing to 1) with a Dirichlet prior centred
    /// on it with the given concentration (`ssrm-test` uses 10,000).
    pub fn new(null: &[f64], concentration: f64) -> Self {
        SequentialSrm {
            null: null.to_vec(),
            posterior: null.iter().map(|p| p * concentration).collect(),
            log_ml_alternative: 0.0,
            log_ml_null: 0.0,
            p_value: 1.0,
        }
    }

    /// Adds a batch of counts per arm; returns the always-valid p-value so far.
    pub fn update(&mut self, counts: &[f64]) -> f64 {
        let n: f64 = counts.iter().sum();
        let a_sum: f64 = self.posterior.iter().sum();
        let mut alt = ln_gamma(n + 1.0) + ln_gamma(a_sum) - ln_gamma(a_sum + n);
        let mut null = ln_gamma(n + 1.0);
        for ((x, a), p) in counts.iter().zip(&self.posterior).zip(&self.null) {
            alt += ln_gamma(a + x) - ln_gamma(*a) - ln_gamma(x + 1.0);
            null += xlogy(*x, *p) - ln_gamma(x + 1.0);
        }
        self.log_ml_alternative += alt;
        if n > 0.0 {
            self.log_ml_null += null;
        }
        for (a, x) in self.posterior.iter_mut().zip(counts) {
            *a += x;
        }
        let bayes_factor = (self.log_ml_alternative - self.log_ml_null).exp();
        self.p_value = self.p_value.min(1.0 / bayes_factor);
        self.p_value
    }

    /// The log Bayes factor of a mismatch against the intended split.
    pub fn log_bayes_factor(&self) -> f64 {
        self.log_ml_alternative - self.log_ml_null
    }

    /// The current p-value.
    pub fn p_value(&self) -> f64 {
        self.p_value
    }
}
