//! The marketing mix model's log posterior and its gradient, written out by hand.
//!
//! `y_t / s_y ~ Normal(mu_t, sigma)` with
//! `mu_t = intercept + Σ_c sat_c(adstock_c(x_c / s_c)_t) + Σ_k gamma_k z_kt + Σ_m f_m F_mt`
//! where `s_y` and `s_c` are the target's and each channel's largest absolute value (at
//! least 1), `z` are the control columns as given and `F` the yearly Fourier terms. Lift
//! tests add `Δy / s_y ~ Normal(sat_c((x + Δx) / s_c) − sat_c(x / s_c), σ_lift / s_y)`.

use super::prior::Prior;
use super::transform::{convolve, saturate_series, Adstock, Saturation};
use crate::mcmc::LogDensity;

/// Where each parameter sits in the unconstrained vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub channels: usize,
    pub adstock: usize,
    pub saturation: usize,
    pub controls: usize,
    pub fourier: usize,
}

impl Layout {
    pub const INTERCEPT: usize = 0;
    pub fn adstock_at(&self, channel: usize) -> usize {
        1 + channel * self.adstock
    }
    pub fn saturation_at(&self, channel: usize) -> usize {
        1 + self.channels * self.adstock + channel * self.saturation
    }
    pub fn controls_at(&self) -> usize {
        1 + self.channels * (self.adstock + self.saturation)
    }
    pub fn fourier_at(&self) -> usize {
        self.controls_at() + self.controls
    }
    pub fn sigma_at(&self) -> usize {
        self.fourier_at() + self.fourier
    }
    pub fn dim(&self) -> usize {
        self.sigma_at() + 1
    }
}

/// A lift test in the model's scaled units.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScaledLift {
    pub channel: usize,
    pub x: f64,
    pub delta_x: f64,
    pub delta_y: f64,
    pub sigma: f64,
}

/// Everything the density needs, scaled.
#[derive(Debug, Clone)]
pub(crate) struct Density {
    pub adstock: Adstock,
    pub saturation: Saturation,
    pub layout: Layout,
    /// Prior of every unconstrained coordinate.
    pub priors: Vec<Prior>,
    /// Scaled spend, one row per channel.
    pub spend: Vec<Vec<f64>>,
    /// Control columns, one row per control.
    pub controls: Vec<Vec<f64>>,
    /// Fourier terms, one row per term.
    pub fourier: Vec<Vec<f64>>,
    /// Scaled target.
    pub target: Vec<f64>,
    pub lifts: Vec<ScaledLift>,
    /// Mean scaled spend of each channel over the rows where it spends.
    pub typical_spend: Vec<f64>,
}

impl Density {
    /// Parameter values of a point in the sampler's coordinates.
    pub fn constrain(&self, v: &[f64]) -> Vec<f64> {
        self.values(&self.natural(v))
    }

    /// Parameter values of a point in each prior's own unconstrained coordinate.
    fn values(&self, u: &[f64]) -> Vec<f64> {
        u.iter()
            .zip(&self.priors)
            .map(|(&u, p)| p.constrain(u))
            .collect()
    }

    /// The sampler's coordinates differ from the priors' in one place: for logistic
    /// saturation it moves `s = log(beta · f(lam))` instead of `log beta`, with
    /// `f(lam) = tanh(lam · a / 2)` the curve at the channel's typical active spend `a`.
    /// The data pin down about `beta · f(lam)` (the response where the channel spends),
    /// so `(log lam, log beta)` form a curved ridge a diagonal mass matrix walks slowly;
    /// in `(log lam, s)` it runs along an axis. `u_beta = s − log f(e^(u_lam))` is
    /// triangular with unit diagonal: determinant 1, no Jacobian term.
    fn natural(&self, v: &[f64]) -> Vec<f64> {
        let mut u = v.to_vec();
        if self.saturation == Saturation::Logistic {
            for c in 0..self.layout.channels {
                let at = self.layout.saturation_at(c);
                u[at + 1] = v[at + 1] - self.log_curve(c, v[at]).0;
            }
        }
        u
    }

    /// `log f(e^v)` and its derivative in `v` for channel `c`.
    fn log_curve(&self, c: usize, v: f64) -> (f64, f64) {
        let z = 0.5 * v.exp() * self.typical_spend[c];
        let t = z.tanh().max(f64::MIN_POSITIVE);
        (t.ln(), z * (1.0 - t * t) / t)
    }

    /// Moves a gradient in the priors' coordinates to the sampler's (at sampler point `v`).
    fn gradient_to_sampler(&self, v: &[f64], grad: &mut [f64]) {
        if self.saturation == Saturation::Logistic {
            for c in 0..self.layout.channels {
                let at = self.layout.saturation_at(c);
                grad[at] -= grad[at + 1] * self.log_curve(c, v[at]).1;
            }
        }
    }

    /// The saturated, adstocked contribution of `channel` for scaled spend `spend`, in
    /// the model's scaled units, given parameter values `x`.
    pub fn channel_response(&self, x: &[f64], channel: usize, spend: &[f64], out: &mut [f64]) {
        let l = self.layout;
        let l_max = self.adstock.l_max();
        let mut w = vec![0.0; l_max];
        let mut dw = vec![0.0; l_max * l.adstock];
        self.adstock
            .weights(&x[l.adstock_at(channel)..][..l.adstock], &mut w, &mut dw);
        convolve(spend, &w, out);
        let sat = &x[l.saturation_at(channel)..][..l.saturation];
        for v in out.iter_mut() {
            *v = self.saturation.value(*v, sat);
        }
    }
}

/// `Σ a_i b_i` with four running sums, so the additions do not wait on each other.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// `Σ a_i` with four running sums.
fn sum(a: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let chunks = a.chunks_exact(4);
    let tail: f64 = chunks.remainder().iter().sum();
    for x in chunks {
        for k in 0..4 {
            acc[k] += x[k];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

impl LogDensity for Density {
    fn dim(&self) -> usize {
        self.layout.dim()
    }

    fn log_density(&self, v: &[f64], grad: &mut [f64]) -> f64 {
        let u = self.natural(v);
        let lp = self.log_density_natural(&u, grad);
        self.gradient_to_sampler(v, grad);
        lp
    }
}

impl Density {
    /// Log density and its gradient in each prior's own unconstrained coordinate.
    fn log_density_natural(&self, u: &[f64], grad: &mut [f64]) -> f64 {
        thread_local! {
            /// Working arrays of the gradient, reused from call to call.
            static SCRATCH: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buffer) => self.log_density_in(u, grad, &mut buffer),
            Err(_) => self.log_density_in(u, grad, &mut Vec::new()),
        })
    }

    fn log_density_in(&self, u: &[f64], grad: &mut [f64], buffer: &mut Vec<f64>) -> f64 {
        let l = self.layout;
        let n = self.target.len();
        let l_max = self.adstock.l_max();
        let (na, ns) = (l.adstock, l.saturation);
        let x = self.values(u);
        buffer.resize(
            4 * n + l.channels * (n + l_max * na + ns * n) + 2 * l_max + l.dim(),
            0.0,
        );
        let (mu, rest) = buffer.split_at_mut(n);
        let (adstocked, rest) = rest.split_at_mut(n);
        let (ds_da, rest) = rest.split_at_mut(l.channels * n); // d sat / d adstocked
        let (dw, rest) = rest.split_at_mut(l.channels * l_max * na); // d weights / d adstock param
        let (ds_dp, rest) = rest.split_at_mut(l.channels * ns * n); // d sat / d sat param
        let (w, rest) = rest.split_at_mut(l_max);
        let (values, rest) = rest.split_at_mut(n);
        let (g, rest) = rest.split_at_mut(n); // d lp / d mu_t, first the residuals
        let (gx, rest) = rest.split_at_mut(l.dim()); // gradient of the likelihood in the values x
        let crossed = &mut rest[..l_max];
        let mut lp = 0.0;
        // Priors (with Jacobians), gradients in u.
        for (i, prior) in self.priors.iter().enumerate() {
            let (v, d) = prior.log_density(u[i], x[i]);
            lp += v;
            grad[i] = d;
        }
        mu.fill(x[Layout::INTERCEPT]);
        for (k, column) in self.controls.iter().enumerate() {
            let gamma = x[l.controls_at() + k];
            mu.iter_mut().zip(column).for_each(|(m, z)| *m += gamma * z);
        }
        for (k, column) in self.fourier.iter().enumerate() {
            let f = x[l.fourier_at() + k];
            mu.iter_mut().zip(column).for_each(|(m, z)| *m += f * z);
        }
        // Channels: keep what the gradient needs once the residuals are known.
        for c in 0..l.channels {
            self.adstock.weights(
                &x[l.adstock_at(c)..][..na],
                w,
                &mut dw[c * l_max * na..(c + 1) * l_max * na],
            );
            convolve(&self.spend[c], w, adstocked);
            let sat = &x[l.saturation_at(c)..][..ns];
            saturate_series(
                self.saturation,
                adstocked,
                sat,
                values,
                &mut ds_da[c * n..(c + 1) * n],
                &mut ds_dp[c * ns * n..(c + 1) * ns * n],
            );
            mu.iter_mut().zip(values.iter()).for_each(|(m, v)| *m += v);
        }
        let sigma = x[l.sigma_at()];
        let inv_var = 1.0 / (sigma * sigma);
        for t in 0..n {
            g[t] = self.target[t] - mu[t];
        }
        let sum_sq = dot(g, g);
        g.iter_mut().for_each(|r| *r *= inv_var);
        lp += -0.5 * sum_sq * inv_var - n as f64 * sigma.ln();
        gx[Layout::INTERCEPT] = sum(g);
        for (k, column) in self.controls.iter().enumerate() {
            gx[l.controls_at() + k] = dot(g, column);
        }
        for (k, column) in self.fourier.iter().enumerate() {
            gx[l.fourier_at() + k] = dot(g, column);
        }
        for c in 0..l.channels {
            // d lp / d adstocked_t, reused by every adstock parameter.
            for t in 0..n {
                values[t] = g[t] * ds_da[c * n + t];
            }
            // Σ_t v_t Σ_l dw_l x_(t−l) = Σ_l dw_l Σ_t v_t x_(t−l): one cross-correlation
            // per lag serves every adstock parameter, no convolution of dw needed.
            let spend = &self.spend[c];
            let lags = l_max.min(n);
            for (lag, cross) in crossed.iter_mut().enumerate().take(lags) {
                *cross = dot(&values[lag..], &spend[..n - lag]);
            }
            for j in 0..na {
                let dwj = &dw[(c * na + j) * l_max..][..lags];
                gx[l.adstock_at(c) + j] = dwj.iter().zip(crossed.iter()).map(|(a, b)| a * b).sum();
            }
            for j in 0..ns {
                gx[l.saturation_at(c) + j] = dot(g, &ds_dp[(c * ns + j) * n..][..n]);
            }
        }
        // d/d(log sigma) of the likelihood: Σ (r²/σ² − 1); the values chain below
        // multiplies by the Jacobian σ, so store the derivative in σ.
        gx[l.sigma_at()] = (sum_sq * inv_var - n as f64) / sigma;
        // Lift tests.
        for lift in &self.lifts {
            let sat = &x[l.saturation_at(lift.channel)..][..ns];
            let (mut d_hi, mut d_lo) = ([0.0; 3], [0.0; 3]);
            let hi = self
                .saturation
                .apply(lift.x + lift.delta_x, sat, &mut d_hi)
                .0;
            let lo = self.saturation.apply(lift.x, sat, &mut d_lo).0;
            let r = (lift.delta_y - (hi - lo)) / lift.sigma;
            lp += -0.5 * r * r;
            for j in 0..ns {
                gx[l.saturation_at(lift.channel) + j] += r / lift.sigma * (d_hi[j] - d_lo[j]);
            }
        }
        for i in 0..l.dim() {
            grad[i] += gx[i] * self.priors[i].jacobian(x[i]);
        }
        lp
    }
}

#[cfg(test)]
mod tests {
    use super::super::{build, LiftTest, MmmData, MmmSpec};
    use super::*;
    use crate::rng::Rng;

    fn data(rng: &mut Rng) -> MmmData {
        let n = 40;
        MmmData {
            day_of_year: (0..n).map(|t| (t * 7 % 365 + 1) as f64).collect(),
            channels: vec!["tv".into(), "search".into()],
            spend: (0..2)
                .map(|_| (0..n).map(|_| rng.uniform() * 50.0).collect())
                .collect(),
            control_names: vec!["promo".into()],
            controls: vec![(0..n).map(|t| f64::from(t % 5 == 0)).collect()],
            target: (0..n).map(|_| 100.0 + rng.normal() * 5.0).collect(),
        }
    }

    #[test]
    fn gradient_matches_finite_differences_for_every_transform() {
        let mut rng = Rng::seeded(11);
        let data = data(&mut rng);
        let lifts = [LiftTest {
            channel: "search".into(),
            spend: 20.0,
            delta_spend: 10.0,
            delta_target: 3.0,
            sigma: 1.0,
        }];
        for (adstock, saturation) in [
            (Adstock::Geometric { l_max: 6 }, Saturation::Logistic),
            (Adstock::WeibullPdf { l_max: 6 }, Saturation::Hill),
        ] {
            let spec = MmmSpec::new(adstock, saturation, 2);
            let (density, _, _) = build(&spec, &data, &lifts).unwrap();
            let dim = density.dim();
            for _ in 0..3 {
                let u: Vec<f64> = (0..dim).map(|_| rng.normal() * 0.5).collect();
                let mut grad = vec![0.0; dim];
                density.log_density(&u, &mut grad);
                let mut scratch = vec![0.0; dim];
                for i in 0..dim {
                    let h = 1e-5;
                    let (mut up, mut down) = (u.clone(), u.clone());
                    up[i] += h;
                    down[i] -= h;
                    let numeric = (density.log_density(&up, &mut scratch)
                        - density.log_density(&down, &mut scratch))
                        / (2.0 * h);
                    let tolerance = 1e-5 * numeric.abs().max(1.0);
                    assert!(
                        (grad[i] - numeric).abs() < tolerance,
                        "{adstock:?}/{saturation:?} coordinate {i}: {} vs {numeric}",
                        grad[i]
                    );
                }
            }
        }
    }
}
