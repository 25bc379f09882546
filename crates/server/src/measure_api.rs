//! The marketing mix model's request and answer shapes, shared by `/api/mmm` and the
//! `regelkreis mmm` command so both read the same table and print the same JSON.

use regelkreis_measure::mcmc::SamplerOptions;
use regelkreis_measure::mmm::{
    day_of_year, Adstock, Allocation, Bounds, ChannelSummary, Interval, LiftTest, MmmData, MmmFit,
    MmmSpec, Saturation,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// A table: named columns of equal length, values as text (CSV) or JSON scalars.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Columns in their order.
    pub columns: Vec<(String, Vec<String>)>,
}

impl Table {
    fn column(&self, name: &str) -> Result<&[String], String> {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .ok_or_else(|| {
                let known: Vec<&str> = self.columns.iter().map(|(n, _)| n.as_str()).collect();
                format!("no column named {name} (columns: {})", known.join(", "))
            })
    }

    fn numbers(&self, name: &str) -> Result<Vec<f64>, String> {
        self.column(name)?
            .iter()
            .enumerate()
            .map(|(row, v)| {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| format!("column {name} row {}: {v:?} is not a number", row + 1))
            })
            .collect()
    }

    /// A table from a JSON object of column name → array of numbers or strings.
    pub fn from_json(value: &Value) -> Result<Table, String> {
        let object = value
            .as_object()
            .ok_or("data must be an object of column name → array")?;
        let mut columns = Vec::with_capacity(object.len());
        for (name, values) in object {
            let values = values
                .as_array()
                .ok_or_else(|| format!("column {name} must be an array"))?;
            let text = values
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(format!("column {name} holds {other}, not a number or text")),
                })
                .collect::<Result<Vec<_>, _>>()?;
            columns.push((name.clone(), text));
        }
        Ok(Table { columns })
    }
}

/// The model and sampler settings a fit takes (CLI flags and JSON fields alike).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MmmArgs {
    /// Column of dates (`YYYY-MM-DD`).
    pub date_column: String,
    /// Columns of spend, one per channel.
    pub spend_columns: Vec<String>,
    /// Column of the target.
    pub target: String,
    /// Control columns.
    pub controls: Vec<String>,
    /// `geometric` or `weibull`.
    pub adstock: String,
    /// `logistic` or `hill`.
    pub saturation: String,
    /// Longest carry-over in rows.
    pub l_max: usize,
    /// Yearly Fourier order (0: none).
    pub yearly_order: usize,
    /// Chains.
    pub chains: usize,
    /// Warm-up draws per chain.
    pub tune: u64,
    /// Kept draws per chain.
    pub draws: u64,
    /// Seed.
    pub seed: u64,
    /// Lift tests that calibrate the saturation curves.
    pub lift_tests: Vec<LiftTestArgs>,
}

/// One lift test as given in JSON or a CSV row.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LiftTestArgs {
    /// Channel (a spend column).
    pub channel: String,
    /// Weekly spend before the test.
    pub spend: f64,
    /// Change of weekly spend.
    pub delta_spend: f64,
    /// Measured change of the weekly target.
    pub delta_target: f64,
    /// Standard error of the measured change.
    pub sigma: f64,
}

impl Default for MmmArgs {
    fn default() -> Self {
        MmmArgs {
            date_column: "date".into(),
            spend_columns: Vec::new(),
            target: "revenue".into(),
            controls: Vec::new(),
            adstock: "geometric".into(),
            saturation: "logistic".into(),
            l_max: 8,
            yearly_order: 2,
            chains: 4,
            tune: 1000,
            draws: 1000,
            seed: 42,
            lift_tests: Vec::new(),
        }
    }
}

/// Parses `YYYY-MM-DD` (anything after the day, such as a time, is ignored) into its
/// day of the year.
pub fn parse_day_of_year(text: &str) -> Option<f64> {
    let date = text.trim().get(..10)?;
    let mut parts = date.split('-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    day_of_year(year, month, day).map(f64::from)
}

impl MmmArgs {
    /// The model these settings describe.
    pub fn spec(&self) -> Result<MmmSpec, String> {
        let adstock = match self.adstock.as_str() {
            "geometric" => Adstock::Geometric { l_max: self.l_max },
            "weibull" => Adstock::WeibullPdf { l_max: self.l_max },
            other => return Err(format!("adstock {other:?}: use geometric or weibull")),
        };
        let saturation = match self.saturation.as_str() {
            "logistic" => Saturation::Logistic,
            "hill" => Saturation::Hill,
            other => return Err(format!("saturation {other:?}: use logistic or hill")),
        };
        if self.l_max == 0 || self.l_max > 104 {
            return Err(format!("l_max {} must be in 1..=104", self.l_max));
        }
        if self.yearly_order > 10 {
            return Err(format!(
                "yearly_order {} must be at most 10",
                self.yearly_order
            ));
        }
        Ok(MmmSpec::new(adstock, saturation, self.yearly_order))
    }

    /// Sampler settings (chains run on every core).
    pub fn sampler(&self) -> Result<SamplerOptions, String> {
        if self.chains == 0 || self.chains > 64 || self.draws == 0 || self.draws > 100_000 {
            return Err("chains must be in 1..=64 and draws in 1..=100000".into());
        }
        if self.tune > 100_000 {
            return Err("tune must be at most 100000".into());
        }
        Ok(SamplerOptions {
            chains: self.chains,
            tune: self.tune,
            draws: self.draws,
            seed: self.seed,
            ..SamplerOptions::default()
        })
    }

    /// The lift tests.
    pub fn lift_tests(&self) -> Vec<LiftTest> {
        self.lift_tests
            .iter()
            .map(|l| LiftTest {
                channel: l.channel.clone(),
                spend: l.spend,
                delta_spend: l.delta_spend,
                delta_target: l.delta_target,
                sigma: l.sigma,
            })
            .collect()
    }

    /// The model's data from a table.
    pub fn data(&self, table: &Table) -> Result<MmmData, String> {
        if self.spend_columns.is_empty() {
            return Err("name at least one spend column".into());
        }
        let dates = table.column(&self.date_column)?;
        let day_of_year = dates
            .iter()
            .enumerate()
            .map(|(row, d)| {
                parse_day_of_year(d).ok_or_else(|| {
                    format!(
                        "column {} row {}: {d:?} is not a YYYY-MM-DD date",
                        self.date_column,
                        row + 1
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MmmData {
            day_of_year,
            channels: self.spend_columns.clone(),
            spend: self
                .spend_columns
                .iter()
                .map(|c| table.numbers(c))
                .collect::<Result<_, _>>()?,
            control_names: self.controls.clone(),
            controls: self
                .controls
                .iter()
                .map(|c| table.numbers(c))
                .collect::<Result<_, _>>()?,
            target: table.numbers(&self.target)?,
        })
    }
}

/// Parses `a=lo:hi,b=lo:hi`.
pub fn parse_bounds(text: &str) -> Result<Vec<Bounds>, String> {
    text.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|part| {
            let (channel, range) = part
                .split_once('=')
                .ok_or_else(|| format!("bounds {part:?}: write channel=lo:hi"))?;
            let (lo, hi) = range
                .split_once(':')
                .ok_or_else(|| format!("bounds {part:?}: write channel=lo:hi"))?;
            let number = |s: &str| {
                s.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("bounds {part:?}: {s:?} is not a number"))
            };
            Ok(Bounds {
                channel: channel.trim().to_string(),
                lo: number(lo)?,
                hi: number(hi)?,
            })
        })
        .collect()
}

/// `{"mean", "lo", "hi"}`.
pub fn interval_json(i: Interval) -> Value {
    json!({ "mean": i.mean, "lo": i.lo, "hi": i.hi })
}

fn named_json(items: &[(String, Interval)]) -> Value {
    Value::Object(
        items
            .iter()
            .map(|(n, i)| (n.clone(), interval_json(*i)))
            .collect::<Map<_, _>>(),
    )
}

/// Channel summaries, diagnostics and every parameter's posterior, as one object.
pub fn fit_json(fit: &MmmFit, channels: &[ChannelSummary]) -> Value {
    let d = fit.diagnostics();
    let mut by_channel = Map::new();
    for c in channels {
        by_channel.insert(
            c.name.clone(),
            json!({
                "spend": c.spend,
                "contribution": interval_json(c.contribution),
                "roas": interval_json(c.roas),
                "marginal_roas": interval_json(c.marginal_roas),
                "adstock": named_json(&c.adstock),
                "saturation": named_json(&c.saturation),
            }),
        );
    }
    let parameters: Vec<Value> = fit
        .parameters()
        .into_iter()
        .map(|p| {
            json!({
                "name": p.name, "mean": p.interval.mean, "sd": p.sd, "lo": p.interval.lo,
                "hi": p.interval.hi, "rhat": p.rhat, "ess_bulk": p.ess_bulk, "ess_tail": p.ess_tail,
            })
        })
        .collect();
    json!({
        "channels": by_channel,
        "diagnostics": {
            "rhat_max": d.rhat_max,
            "ess_min": d.ess_min,
            "divergences": d.divergences,
            "seconds": d.seconds,
            "gradient_evaluations": d.gradient_evaluations,
        },
        "parameters": parameters,
        "interval": 0.9,
    })
}

/// The optimizer's answer as one object.
pub fn allocation_json(a: &Allocation) -> Value {
    json!({
        "allocation": a.allocation.iter().map(|(n, v)| (n.clone(), json!(v))).collect::<Map<_, _>>(),
        "expected_revenue": interval_json(a.expected),
        "expected_revenue_at_historical_split": interval_json(a.expected_at_historical_split),
    })
}
