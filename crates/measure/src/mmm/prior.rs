//! Prior distributions of the marketing mix model, each sampled on an unconstrained
//! scale: identity for Normal and Laplace, log for Gamma and HalfNormal, logit for Beta.
//! The log density returned includes the Jacobian of that transform.

use crate::rng::Rng;

/// A prior distribution (parameterised as PyMC parameterises it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Prior {
    /// Normal(mu, sigma).
    Normal {
        /// Mean.
        mu: f64,
        /// Standard deviation.
        sigma: f64,
    },
    /// Laplace(mu, b).
    Laplace {
        /// Location.
        mu: f64,
        /// Scale.
        b: f64,
    },
    /// Beta(alpha, beta), on (0, 1).
    Beta {
        /// First shape.
        alpha: f64,
        /// Second shape.
        beta: f64,
    },
    /// Gamma(alpha, beta) with rate beta, on (0, ∞).
    Gamma {
        /// Shape.
        alpha: f64,
        /// Rate.
        beta: f64,
    },
    /// HalfNormal(sigma), on (0, ∞).
    HalfNormal {
        /// Scale.
        sigma: f64,
    },
}

impl Prior {
    /// Gamma given its mean and standard deviation (PyMC's `mu`, `sigma` form).
    pub fn gamma_from_moments(mean: f64, sd: f64) -> Prior {
        Prior::Gamma {
            alpha: mean * mean / (sd * sd),
            beta: mean / (sd * sd),
        }
    }

    /// The parameter value of unconstrained coordinate `u`.
    pub fn constrain(&self, u: f64) -> f64 {
        match self {
            Prior::Normal { .. } | Prior::Laplace { .. } => u,
            Prior::Beta { .. } => 1.0 / (1.0 + (-u).exp()),
            Prior::Gamma { .. } | Prior::HalfNormal { .. } => u.exp(),
        }
    }

    /// The unconstrained coordinate of parameter value `x`.
    pub fn unconstrain(&self, x: f64) -> f64 {
        match self {
            Prior::Normal { .. } | Prior::Laplace { .. } => x,
            Prior::Beta { .. } => (x / (1.0 - x)).ln(),
            Prior::Gamma { .. } | Prior::HalfNormal { .. } => x.ln(),
        }
    }

    /// d(value)/d(u) at unconstrained `u` whose value is `x`.
    pub fn jacobian(&self, x: f64) -> f64 {
        match self {
            Prior::Normal { .. } | Prior::Laplace { .. } => 1.0,
            Prior::Beta { .. } => x * (1.0 - x),
            Prior::Gamma { .. } | Prior::HalfNormal { .. } => x,
        }
    }

    /// Log density on the unconstrained scale (with the transform's Jacobian, up to a
    /// constant) at `u` whose value is `x`, and its derivative in `u`.
    pub fn log_density(&self, u: f64, x: f64) -> (f64, f64) {
        match *self {
            Prior::Normal { mu, sigma } => {
                let z = (x - mu) / sigma;
                (-0.5 * z * z, -z / sigma)
            }
            Prior::Laplace { mu, b } => {
                let d = x - mu;
                (-d.abs() / b, -d.signum() / b)
            }
            Prior::Beta { alpha, beta } => (
                alpha * x.ln() + beta * (1.0 - x).ln(),
                alpha * (1.0 - x) - beta * x,
            ),
            Prior::Gamma { alpha, beta } => (alpha * u - beta * x, alpha - beta * x),
            Prior::HalfNormal { sigma } => {
                let z = x / sigma;
                (-0.5 * z * z + u, 1.0 - z * z)
            }
        }
    }

    /// A draw of the parameter value.
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        match *self {
            Prior::Normal { mu, sigma } => mu + sigma * rng.normal(),
            Prior::Laplace { mu, b } => {
                let u = rng.uniform() - 0.5;
                mu - b * u.signum() * (1.0 - 2.0 * u.abs()).max(f64::MIN_POSITIVE).ln()
            }
            Prior::Beta { alpha, beta } => rng.beta(alpha, beta),
            Prior::Gamma { alpha, beta } => rng.gamma(alpha) / beta,
            Prior::HalfNormal { sigma } => (sigma * rng.normal()).abs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_finite_differences_and_transforms_round_trip() {
        let priors = [
            Prior::Normal {
                mu: 1.0,
                sigma: 2.0,
            },
            Prior::Laplace { mu: 0.0, b: 1.0 },
            Prior::Beta {
                alpha: 1.0,
                beta: 3.0,
            },
            Prior::Gamma {
                alpha: 3.0,
                beta: 1.0,
            },
            Prior::HalfNormal { sigma: 2.0 },
        ];
        for prior in priors {
            for u in [-1.3, 0.4, 2.1] {
                let x = prior.constrain(u);
                assert!((prior.unconstrain(x) - u).abs() < 1e-12);
                let (_, d) = prior.log_density(u, x);
                let h = 1e-6;
                let up = prior.log_density(u + h, prior.constrain(u + h)).0;
                let down = prior.log_density(u - h, prior.constrain(u - h)).0;
                assert!(
                    (d - (up - down) / (2.0 * h)).abs() < 1e-5,
                    "{prior:?} at {u}"
                );
            }
        }
    }

    #[test]
    fn draws_have_the_prior_mean() {
        let mut rng = Rng::seeded(5);
        let n = 100_000;
        for (prior, mean) in [
            (Prior::gamma_from_moments(2.0, 1.0), 2.0),
            (
                Prior::HalfNormal { sigma: 2.0 },
                2.0 * (2.0 / std::f64::consts::PI).sqrt(),
            ),
            (Prior::Laplace { mu: 0.5, b: 1.0 }, 0.5),
            (
                Prior::Beta {
                    alpha: 1.0,
                    beta: 3.0,
                },
                0.25,
            ),
        ] {
            let m = (0..n).map(|_| prior.sample(&mut rng)).sum::<f64>() / n as f64;
            assert!((m - mean).abs() < 0.02, "{prior:?}: {m}");
        }
    }
}
