//! Data simulated from the model itself, for simulation-based calibration: draw the
//! parameters from the priors, the target from the likelihood, and keep the true
//! contributions to check the posterior's intervals against.

use super::model::Density;
use super::{build, MmmData, MmmError, MmmSpec};
use crate::rng::Rng;

/// A simulated data set and the truth behind it.
#[derive(Debug, Clone)]
pub struct Simulated {
    /// The data, with the simulated target.
    pub data: MmmData,
    /// True parameter values, in the fit's parameter order.
    pub parameters: Vec<f64>,
    /// True contribution of every channel over the data (data units).
    pub contribution: Vec<f64>,
    /// True ROAS of every channel.
    pub roas: Vec<f64>,
}

impl Density {
    /// The model's mean of the scaled target for parameter values `x`.
    fn mean(&self, x: &[f64]) -> Vec<f64> {
        let l = self.layout;
        let n = self.target.len();
        let mut mu = vec![x[0]; n];
        for (k, column) in self.controls.iter().enumerate() {
            mu.iter_mut()
                .zip(column)
                .for_each(|(m, z)| *m += x[l.controls_at() + k] * z);
        }
        for (k, column) in self.fourier.iter().enumerate() {
            mu.iter_mut()
                .zip(column)
                .for_each(|(m, z)| *m += x[l.fourier_at() + k] * z);
        }
        let mut out = vec![0.0; n];
        for c in 0..l.channels {
            self.channel_response(x, c, &self.spend[c], &mut out);
            mu.iter_mut().zip(&out).for_each(|(m, v)| *m += v);
        }
        mu
    }
}

/// Simulates a target for the spend, controls and dates of `template` from `spec`'s
/// priors. Redraws (up to 1,000 times) until the target lies in [0, 1], so that the
/// fit's scaling of the target (by its largest value, at least 1) leaves it unchanged
/// and the truth is in the fit's units; conditioning on the data does not disturb the
/// calibration of the posterior.
pub fn simulate(spec: &MmmSpec, template: &MmmData, rng: &mut Rng) -> Result<Simulated, MmmError> {
    let mut data = template.clone();
    data.target = vec![0.0; template.spend.first().map_or(0, Vec::len)];
    let (density, channel_scale, _) = build(spec, &data, &[])?;
    for _ in 0..1000 {
        let parameters: Vec<f64> = density.priors.iter().map(|p| p.sample(rng)).collect();
        let sigma = parameters[density.layout.sigma_at()];
        let target: Vec<f64> = density
            .mean(&parameters)
            .into_iter()
            .map(|m| m + sigma * rng.normal())
            .collect();
        if target.iter().any(|y| !(0.0..=1.0).contains(y)) {
            continue;
        }
        let mut out = vec![0.0; target.len()];
        let mut contribution = Vec::new();
        let mut roas = Vec::new();
        for (c, scale) in channel_scale.iter().enumerate() {
            density.channel_response(&parameters, c, &density.spend[c], &mut out);
            let total: f64 = out.iter().sum();
            let spend: f64 = density.spend[c].iter().sum::<f64>() * scale;
            contribution.push(total);
            roas.push(total / spend);
        }
        data.target = target;
        return Ok(Simulated {
            data,
            parameters,
            contribution,
            roas,
        });
    }
    Err(MmmError::Spec(
        "the priors rarely give a target in [0, 1]; narrow them for simulation".into(),
    ))
}
