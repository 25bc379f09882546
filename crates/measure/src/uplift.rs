//! Uplift modelling: who changes their behaviour because of a treatment (a coupon, an
//! e-mail), not who would buy anyway. Meta-learners (S, T, X) over regularised linear or
//! logistic regression and gradient-boosted trees, an uplift random forest, and the
//! Qini and AUUC scores under the two definitions in common use — CausalML's and
//! scikit-uplift's — named as such.

use crate::rng::Rng;

/// Why an uplift model cannot be fitted or scored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpliftError {
    /// The data cannot be used as given.
    #[error("invalid data: {0}")]
    Data(String),
}

/// Rows of features, a treatment flag and an outcome each.
#[derive(Debug, Clone, PartialEq)]
pub struct UpliftData {
    /// `features[i]` of row `i`; every row as long as the first.
    pub features: Vec<Vec<f64>>,
    /// Whether row `i` was treated.
    pub treated: Vec<bool>,
    /// Outcome of row `i` (0/1 for conversions, any number otherwise).
    pub outcome: Vec<f64>,
}

impl UpliftData {
    fn check(&self) -> Result<usize, UpliftError> {
        let n = self.features.len();
        if n == 0 || self.treated.len() != n || self.outcome.len() != n {
            return Err(UpliftError::Data(format!(
                "{n} feature rows, {} treatment flags, {} outcomes (need equal, non-zero)",
                self.treated.len(),
                self.outcome.len()
            )));
        }
        let p = self.features[0].len();
        if let Some(i) = self
            .features
            .iter()
            .position(|r| r.len() != p || r.iter().any(|v| !v.is_finite()))
        {
            return Err(UpliftError::Data(format!(
                "row {} has {} features (want {p}) or a value that is not finite",
                i + 1,
                self.features[i].len()
            )));
        }
        if self.outcome.iter().any(|v| !v.is_finite()) {
            return Err(UpliftError::Data(
                "an outcome is not a finite number".into(),
            ));
        }
        let treated = self.treated.iter().filter(|t| **t).count();
        if treated < 2 || n - treated < 2 {
            return Err(UpliftError::Data(format!(
                "{treated} treated and {} control rows: need at least 2 of each",
                n - treated
            )));
        }
        Ok(p)
    }

    fn subset(&self, rows: &[usize]) -> (Vec<Vec<f64>>, Vec<f64>) {
        (
            rows.iter().map(|&i| self.features[i].clone()).collect(),
            rows.iter().map(|&i| self.outcome[i]).collect(),
        )
    }
}

/// A base learner of the meta-learners.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BaseLearner {
    /// Least squares with an L2 penalty on the (standardised) coefficients.
    Linear {
        /// Penalty weight.
        l2: f64,
    },
    /// Logistic regression with an L2 penalty (outcomes in [0, 1]); a regression stage
    /// (the X-learner's second) uses least squares with the same penalty.
    Logistic {
        /// Penalty weight.
        l2: f64,
    },
    /// Gradient-boosted regression trees; log-loss for outcomes in [0, 1] in a
    /// classification stage.
    Boosting(BoostingParams),
}

/// Gradient boosting settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoostingParams {
    /// Trees.
    pub trees: usize,
    /// Depth of every tree.
    pub depth: usize,
    /// Shrinkage of every tree's contribution.
    pub learning_rate: f64,
    /// Fewest rows in a leaf.
    pub min_leaf: usize,
    /// Candidate thresholds per feature (quantile bins).
    pub bins: usize,
}

impl Default for BoostingParams {
    fn default() -> Self {
        BoostingParams {
            trees: 100,
            depth: 3,
            learning_rate: 0.1,
            min_leaf: 20,
            bins: 32,
        }
    }
}

/// A fitted base model.
#[derive(Debug, Clone)]
enum Fitted {
    Linear {
        mean: Vec<f64>,
        sd: Vec<f64>,
        coef: Vec<f64>,
        logistic: bool,
    },
    Boosted {
        base: f64,
        trees: Vec<Tree>,
        rate: f64,
        logistic: bool,
    },
}

impl Fitted {
    fn predict(&self, x: &[f64]) -> f64 {
        match self {
            Fitted::Linear {
                mean,
                sd,
                coef,
                logistic,
            } => {
                let z = coef[0]
                    + x.iter()
                        .zip(mean)
                        .zip(sd)
                        .zip(&coef[1..])
                        .map(|(((v, m), s), c)| c * (v - m) / s)
                        .sum::<f64>();
                if *logistic {
                    sigmoid(z)
                } else {
                    z
                }
            }
            Fitted::Boosted {
                base,
                trees,
                rate,
                logistic,
            } => {
                let z = base + rate * trees.iter().map(|t| t.predict(x)).sum::<f64>();
                if *logistic {
                    sigmoid(z)
                } else {
                    z
                }
            }
        }
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Whether every outcome lies in [0, 1] (a classification stage).
fn is_probability(y: &[f64]) -> bool {
    y.iter().all(|v| (0.0..=1.0).contains(v))
}

fn fit_base(base: BaseLearner, x: &[Vec<f64>], y: &[f64], classify: bool) -> Fitted {
    let logistic = classify && is_probability(y);
    match base {
        BaseLearner::Linear { l2 } => fit_linear(x, y, l2, false),
        BaseLearner::Logistic { l2 } => fit_linear(x, y, l2, logistic),
        BaseLearner::Boosting(params) => fit_boosting(x, y, params, logistic),
    }
}

/// Penalised (logistic) regression on standardised features by Newton–Raphson (one step
/// for least squares).
fn fit_linear(x: &[Vec<f64>], y: &[f64], l2: f64, logistic: bool) -> Fitted {
    let n = x.len();
    let p = x.first().map_or(0, Vec::len);
    let mut mean = vec![0.0; p];
    let mut sd = vec![0.0; p];
    for j in 0..p {
        mean[j] = x.iter().map(|r| r[j]).sum::<f64>() / n as f64;
        let var = x.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n as f64;
        sd[j] = if var > 0.0 { var.sqrt() } else { 1.0 };
    }
    let design: Vec<Vec<f64>> = x
        .iter()
        .map(|r| {
            std::iter::once(1.0)
                .chain(r.iter().zip(&mean).zip(&sd).map(|((v, m), s)| (v - m) / s))
                .collect()
        })
        .collect();
    let d = p + 1;
    let mut coef = vec![0.0; d];
    for _ in 0..if logistic { 50 } else { 1 } {
        let mut hessian = vec![0.0; d * d];
        let mut gradient = vec![0.0; d];
        for (row, &target) in design.iter().zip(y) {
            let z: f64 = row.iter().zip(&coef).map(|(a, b)| a * b).sum();
            let (mu, w) = if logistic {
                let m = sigmoid(z);
                (m, (m * (1.0 - m)).max(1e-10))
            } else {
                (z, 1.0)
            };
            for a in 0..d {
                gradient[a] += (target - mu) * row[a];
                for b in 0..=a {
                    hessian[a * d + b] += w * row[a] * row[b];
                }
            }
        }
        for a in 0..d {
            for b in 0..a {
                hessian[b * d + a] = hessian[a * d + b];
            }
            if a > 0 {
                hessian[a * d + a] += l2;
                gradient[a] -= l2 * coef[a];
            }
        }
        let step = crate::linalg::solve_symmetric(&hessian, &gradient, d);
        let size: f64 = step.iter().map(|s| s.abs()).fold(0.0, f64::max);
        coef.iter_mut().zip(&step).for_each(|(c, s)| *c += s);
        if size < 1e-10 {
            break;
        }
    }
    Fitted::Linear {
        mean,
        sd,
        coef,
        logistic,
    }
}

/// A regression tree over binned features.
#[derive(Debug, Clone)]
struct Tree {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, Copy)]
enum Node {
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
    Leaf(f64),
}

impl Tree {
    fn predict(&self, x: &[f64]) -> f64 {
        let mut at = 0;
        loop {
            match self.nodes[at] {
                Node::Leaf(v) => return v,
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    at = if x[feature] <= threshold { left } else { right };
                }
            }
        }
    }
}

/// Candidate thresholds of each feature: quantiles of its values.
fn thresholds(x: &[Vec<f64>], bins: usize) -> Vec<Vec<f64>> {
    let p = x.first().map_or(0, Vec::len);
    (0..p)
        .map(|j| {
            let mut values: Vec<f64> = x.iter().map(|r| r[j]).collect();
            values.sort_by(f64::total_cmp);
            let mut cuts: Vec<f64> = (1..bins)
                .map(|b| values[(b * values.len() / bins).min(values.len() - 1)])
                .collect();
            cuts.dedup();
            // A cut at the largest value separates nothing.
            cuts.retain(|c| *c < values[values.len() - 1]);
            cuts
        })
        .collect()
}

/// Grows a tree on gradients `g` and hessians `h` (Newton leaves `−Σg / Σh`), splitting
/// on the largest gain `G_L²/H_L + G_R²/H_R − G²/H`.
#[allow(clippy::too_many_arguments)]
fn grow(
    x: &[Vec<f64>],
    rows: Vec<usize>,
    g: &[f64],
    h: &[f64],
    cuts: &[Vec<f64>],
    depth: usize,
    min_leaf: usize,
    nodes: &mut Vec<Node>,
) -> usize {
    let at = nodes.len();
    let (gs, hs): (f64, f64) = rows
        .iter()
        .fold((0.0, 0.0), |(a, b), &i| (a + g[i], b + h[i]));
    nodes.push(Node::Leaf(-gs / hs.max(1e-12)));
    if depth == 0 || rows.len() < 2 * min_leaf {
        return at;
    }
    let parent = gs * gs / hs.max(1e-12);
    let mut best: Option<(f64, usize, f64)> = None;
    for (j, feature_cuts) in cuts.iter().enumerate() {
        if feature_cuts.is_empty() {
            continue;
        }
        // Histogram of g, h and counts per bin.
        let bins = feature_cuts.len() + 1;
        let mut hg = vec![0.0; bins];
        let mut hh = vec![0.0; bins];
        let mut hc = vec![0usize; bins];
        for &i in &rows {
            let b = feature_cuts.partition_point(|c| *c < x[i][j]);
            hg[b] += g[i];
            hh[b] += h[i];
            hc[b] += 1;
        }
        let (mut gl, mut hl, mut cl) = (0.0, 0.0, 0usize);
        for b in 0..bins - 1 {
            gl += hg[b];
            hl += hh[b];
            cl += hc[b];
            let cr = rows.len() - cl;
            if cl < min_leaf || cr < min_leaf {
                continue;
            }
            let (gr, hr) = (gs - gl, hs - hl);
            let gain = gl * gl / hl.max(1e-12) + gr * gr / hr.max(1e-12) - parent;
            if best.is_none_or(|(g0, _, _)| gain > g0) {
                best = Some((gain, j, feature_cuts[b]));
            }
        }
    }
    let Some((gain, feature, threshold)) = best else {
        return at;
    };
    if gain <= 1e-12 {
        return at;
    }
    let (left_rows, right_rows): (Vec<usize>, Vec<usize>) =
        rows.into_iter().partition(|&i| x[i][feature] <= threshold);
    let left = grow(x, left_rows, g, h, cuts, depth - 1, min_leaf, nodes);
    let right = grow(x, right_rows, g, h, cuts, depth - 1, min_leaf, nodes);
    nodes[at] = Node::Split {
        feature,
        threshold,
        left,
        right,
    };
    at
}

fn fit_boosting(x: &[Vec<f64>], y: &[f64], params: BoostingParams, logistic: bool) -> Fitted {
    let n = y.len();
    let mean = y.iter().sum::<f64>() / n as f64;
    let base = if logistic {
        let m = mean.clamp(1e-6, 1.0 - 1e-6);
        (m / (1.0 - m)).ln()
    } else {
        mean
    };
    let cuts = thresholds(x, params.bins.max(2));
    let mut z = vec![base; n];
    let mut trees = Vec::with_capacity(params.trees);
    let (mut g, mut h) = (vec![0.0; n], vec![1.0; n]);
    for _ in 0..params.trees {
        for i in 0..n {
            if logistic {
                let p = sigmoid(z[i]);
                g[i] = p - y[i];
                h[i] = (p * (1.0 - p)).max(1e-6);
            } else {
                g[i] = z[i] - y[i];
            }
        }
        let mut nodes = Vec::new();
        grow(
            x,
            (0..n).collect(),
            &g,
            &h,
            &cuts,
            params.depth,
            params.min_leaf,
            &mut nodes,
        );
        let tree = Tree { nodes };
        for i in 0..n {
            z[i] += params.learning_rate * tree.predict(&x[i]);
        }
        trees.push(tree);
    }
    Fitted::Boosted {
        base,
        trees,
        rate: params.learning_rate,
        logistic,
    }
}

/// Which meta-learner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetaLearner {
    /// One model of the outcome on features and treatment; uplift = f(x, 1) − f(x, 0).
    S,
    /// One model per arm; uplift = f₁(x) − f₀(x).
    T,
    /// Künzel et al.'s X-learner: T-learner, imputed effects regressed per arm, blended
    /// by the propensity score.
    X,
}

/// A fitted uplift model.
#[derive(Debug, Clone)]
pub struct UpliftModel {
    kind: ModelKind,
}

#[derive(Debug, Clone)]
enum ModelKind {
    S(Fitted),
    T(Fitted, Fitted),
    X {
        tau0: Fitted,
        tau1: Fitted,
        propensity: Fitted,
    },
    Forest(Vec<UpliftTree>),
}

impl UpliftModel {
    /// Predicted uplift (treated minus control outcome) for one row of features.
    pub fn predict(&self, x: &[f64]) -> f64 {
        match &self.kind {
            ModelKind::S(f) => {
                let mut with = x.to_vec();
                with.push(1.0);
                let treated = f.predict(&with);
                *with.last_mut().unwrap_or(&mut 0.0) = 0.0;
                treated - f.predict(&with)
            }
            ModelKind::T(m1, m0) => m1.predict(x) - m0.predict(x),
            ModelKind::X {
                tau0,
                tau1,
                propensity,
            } => {
                let e = propensity.predict(x).clamp(0.0, 1.0);
                e * tau0.predict(x) + (1.0 - e) * tau1.predict(x)
            }
            ModelKind::Forest(trees) => {
                trees.iter().map(|t| t.predict(x)).sum::<f64>() / trees.len().max(1) as f64
            }
        }
    }

    /// Predicted uplift for many rows.
    pub fn predict_all(&self, rows: &[Vec<f64>]) -> Vec<f64> {
        rows.iter().map(|x| self.predict(x)).collect()
    }
}

/// Fits a meta-learner over `base`.
pub fn fit_meta(
    data: &UpliftData,
    meta: MetaLearner,
    base: BaseLearner,
) -> Result<UpliftModel, UpliftError> {
    data.check()?;
    let treated: Vec<usize> = (0..data.treated.len())
        .filter(|&i| data.treated[i])
        .collect();
    let control: Vec<usize> = (0..data.treated.len())
        .filter(|&i| !data.treated[i])
        .collect();
    let kind = match meta {
        MetaLearner::S => {
            let x: Vec<Vec<f64>> = data
                .features
                .iter()
                .zip(&data.treated)
                .map(|(r, t)| {
                    let mut r = r.clone();
                    r.push(f64::from(u8::from(*t)));
                    r
                })
                .collect();
            ModelKind::S(fit_base(base, &x, &data.outcome, true))
        }
        MetaLearner::T | MetaLearner::X => {
            let (x1, y1) = data.subset(&treated);
            let (x0, y0) = data.subset(&control);
            let m1 = fit_base(base, &x1, &y1, true);
            let m0 = fit_base(base, &x0, &y0, true);
            if meta == MetaLearner::T {
                ModelKind::T(m1, m0)
            } else {
                let d1: Vec<f64> = x1.iter().zip(&y1).map(|(x, y)| y - m0.predict(x)).collect();
                let d0: Vec<f64> = x0.iter().zip(&y0).map(|(x, y)| m1.predict(x) - y).collect();
                let regression = match base {
                    BaseLearner::Logistic { l2 } => BaseLearner::Linear { l2 },
                    other => other,
                };
                let t: Vec<f64> = data
                    .treated
                    .iter()
                    .map(|t| f64::from(u8::from(*t)))
                    .collect();
                ModelKind::X {
                    tau1: fit_base(regression, &x1, &d1, false),
                    tau0: fit_base(regression, &x0, &d0, false),
                    propensity: fit_linear(&data.features, &t, 1.0, true),
                }
            }
        }
    };
    Ok(UpliftModel { kind })
}

/// Uplift random forest settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForestParams {
    /// Trees.
    pub trees: usize,
    /// Depth of every tree.
    pub depth: usize,
    /// Fewest treated and fewest control rows in a leaf.
    pub min_leaf: usize,
    /// Share of features tried at each split.
    pub feature_fraction: f64,
    /// Candidate thresholds per feature.
    pub bins: usize,
    /// Seed of the bootstrap samples and feature choices.
    pub seed: u64,
}

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams {
            trees: 100,
            depth: 6,
            min_leaf: 30,
            feature_fraction: 0.6,
            bins: 32,
            seed: 1,
        }
    }
}

#[derive(Debug, Clone)]
struct UpliftTree {
    tree: Tree,
}

impl UpliftTree {
    fn predict(&self, x: &[f64]) -> f64 {
        self.tree.predict(x)
    }
}

/// Per-bin sums for an uplift split: treated count and outcome sum, control likewise.
#[derive(Debug, Clone, Copy, Default)]
struct ArmSums {
    nt: f64,
    yt: f64,
    nc: f64,
    yc: f64,
}

impl ArmSums {
    fn uplift(&self) -> f64 {
        self.yt / self.nt.max(1.0) - self.yc / self.nc.max(1.0)
    }
}

/// An uplift random forest: bootstrap samples, trees split where the two children's
/// uplifts differ most (gain `n_L n_R / n² · (τ_L − τ_R)²`, the squared-difference
/// criterion of uplift trees), leaves predict their treated-minus-control mean.
pub fn fit_forest(data: &UpliftData, params: ForestParams) -> Result<UpliftModel, UpliftError> {
    let p = data.check()?;
    let n = data.features.len();
    let cuts = thresholds(&data.features, params.bins.max(2));
    let mut rng = Rng::seeded(params.seed);
    let mut trees = Vec::with_capacity(params.trees);
    for _ in 0..params.trees {
        let rows: Vec<usize> = (0..n).map(|_| rng.below(n)).collect();
        let mut nodes = Vec::new();
        grow_uplift(
            data,
            rows,
            &cuts,
            params,
            p,
            &mut rng,
            params.depth,
            &mut nodes,
        );
        trees.push(UpliftTree {
            tree: Tree { nodes },
        });
    }
    Ok(UpliftModel {
        kind: ModelKind::Forest(trees),
    })
}

#[allow(clippy::too_many_arguments)]
fn grow_uplift(
    data: &UpliftData,
    rows: Vec<usize>,
    cuts: &[Vec<f64>],
    params: ForestParams,
    p: usize,
    rng: &mut Rng,
    depth: usize,
    nodes: &mut Vec<Node>,
) -> usize {
    let sums = |rows: &[usize]| {
        rows.iter().fold(ArmSums::default(), |mut s, &i| {
            if data.treated[i] {
                s.nt += 1.0;
                s.yt += data.outcome[i];
            } else {
                s.nc += 1.0;
                s.yc += data.outcome[i];
            }
            s
        })
    };
    let all = sums(&rows);
    let at = nodes.len();
    nodes.push(Node::Leaf(all.uplift()));
    let min = params.min_leaf as f64;
    if depth == 0 || all.nt < 2.0 * min || all.nc < 2.0 * min {
        return at;
    }
    let tried = ((p as f64 * params.feature_fraction).ceil() as usize).clamp(1, p);
    let mut features: Vec<usize> = (0..p).collect();
    for i in 0..tried {
        let j = i + rng.below(p - i);
        features.swap(i, j);
    }
    let total = all.nt + all.nc;
    let mut best: Option<(f64, usize, f64)> = None;
    for &j in &features[..tried] {
        let feature_cuts = &cuts[j];
        if feature_cuts.is_empty() {
            continue;
        }
        let mut bins = vec![ArmSums::default(); feature_cuts.len() + 1];
        for &i in &rows {
            let b = feature_cuts.partition_point(|c| *c < data.features[i][j]);
            if data.treated[i] {
                bins[b].nt += 1.0;
                bins[b].yt += data.outcome[i];
            } else {
                bins[b].nc += 1.0;
                bins[b].yc += data.outcome[i];
            }
        }
        let mut left = ArmSums::default();
        for b in 0..bins.len() - 1 {
            left.nt += bins[b].nt;
            left.yt += bins[b].yt;
            left.nc += bins[b].nc;
            left.yc += bins[b].yc;
            let right = ArmSums {
                nt: all.nt - left.nt,
                yt: all.yt - left.yt,
                nc: all.nc - left.nc,
                yc: all.yc - left.yc,
            };
            if left.nt < min || left.nc < min || right.nt < min || right.nc < min {
                continue;
            }
            let (nl, nr) = (left.nt + left.nc, right.nt + right.nc);
            let gain = nl * nr / (total * total) * (left.uplift() - right.uplift()).powi(2);
            if best.is_none_or(|(g, _, _)| gain > g) {
                best = Some((gain, j, feature_cuts[b]));
            }
        }
    }
    let Some((_, feature, threshold)) = best else {
        return at;
    };
    let (l, r): (Vec<usize>, Vec<usize>) = rows
        .into_iter()
        .partition(|&i| data.features[i][feature] <= threshold);
    let left = grow_uplift(data, l, cuts, params, p, rng, depth - 1, nodes);
    let right = grow_uplift(data, r, cuts, params, p, rng, depth - 1, nodes);
    nodes[at] = Node::Split {
        feature,
        threshold,
        left,
        right,
    };
    at
}

/// Whose definition of a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Definition {
    /// CausalML 0.15 (`causalml.metrics.qini_score`, `auuc_score`, normalised): curves
    /// over every row in score order, divided by their end value; Qini is the mean
    /// height above the straight line, AUUC the mean height of the cumulative gain.
    CausalMl,
    /// scikit-uplift 0.5 (`sklift.metrics.qini_auc_score`, `uplift_auc_score`): curves
    /// at distinct scores, trapezoid areas above the random line divided by the perfect
    /// model's.
    ScikitUplift,
}

/// Sorted cumulative counts in descending score order.
fn check_scores(outcome: &[f64], treated: &[bool], score: &[f64]) -> Result<(), UpliftError> {
    let n = outcome.len();
    if n == 0 || treated.len() != n || score.len() != n {
        return Err(UpliftError::Data(format!(
            "{n} outcomes, {} treatment flags, {} scores (need equal, non-zero)",
            treated.len(),
            score.len()
        )));
    }
    if score.iter().chain(outcome).any(|v| !v.is_finite()) {
        return Err(UpliftError::Data(
            "a score or outcome is not a finite number".into(),
        ));
    }
    Ok(())
}

/// Qini score of `score` (higher: more uplift expected) under `definition`.
pub fn qini(
    outcome: &[f64],
    treated: &[bool],
    score: &[f64],
    definition: Definition,
) -> Result<f64, UpliftError> {
    area(outcome, treated, score, definition, true)
}

/// Area under the uplift (cumulative gain) curve of `score` under `definition`.
pub fn auuc(
    outcome: &[f64],
    treated: &[bool],
    score: &[f64],
    definition: Definition,
) -> Result<f64, UpliftError> {
    area(outcome, treated, score, definition, false)
}

fn area(
    outcome: &[f64],
    treated: &[bool],
    score: &[f64],
    definition: Definition,
    qini: bool,
) -> Result<f64, UpliftError> {
    check_scores(outcome, treated, score)?;
    Ok(match definition {
        Definition::CausalMl => causalml_score(outcome, treated, score, qini),
        Definition::ScikitUplift => sklift_score(outcome, treated, score, qini),
    })
}

/// CausalML's curves: row k (1-based) of the descending sort gives
/// qini_k = Y_t − Y_c·N_t/N_c, gain_k = (Y_t/N_t − Y_c/N_c)·k; row 0 is 0; undefined
/// points (an empty arm) are interpolated linearly; normalised by |last value|.
fn causalml_score(outcome: &[f64], treated: &[bool], score: &[f64], qini: bool) -> f64 {
    let n = outcome.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let mut curve: Vec<Option<f64>> = Vec::with_capacity(n + 1);
    curve.push(Some(0.0));
    let (mut nt, mut yt, mut yc) = (0.0, 0.0, 0.0);
    for (k, &i) in order.iter().enumerate() {
        if treated[i] {
            nt += 1.0;
            yt += outcome[i];
        } else {
            yc += outcome[i];
        }
        let rows = (k + 1) as f64;
        let nc = rows - nt;
        let value = if qini {
            (nc > 0.0).then(|| yt - yc * nt / nc)
        } else {
            (nt > 0.0 && nc > 0.0).then(|| (yt / nt - yc / nc) * rows)
        };
        curve.push(value);
    }
    let filled = interpolate(&curve);
    let last = filled[n];
    let norm = if last != 0.0 { last.abs() } else { 1.0 };
    let total: f64 = filled.iter().map(|v| v / norm).sum();
    if qini {
        let (first, end) = (filled[0] / norm, last / norm);
        // numpy.linspace(first, end, n + 1).sum()
        let step = (end - first) / n as f64;
        let line: f64 = (0..=n)
            .map(|k| if k == n { end } else { first + k as f64 * step })
            .sum();
        (total - line) / (n + 1) as f64
    } else {
        total / (n + 1) as f64
    }
}

/// Fills `None` linearly between known neighbours (pandas' `interpolate()`); trailing
/// gaps keep the last known value.
fn interpolate(values: &[Option<f64>]) -> Vec<f64> {
    let mut out = vec![0.0; values.len()];
    let mut last_known: Option<(usize, f64)> = None;
    let mut i = 0;
    while i < values.len() {
        match values[i] {
            Some(v) => {
                if let Some((k, kv)) = last_known {
                    for (m, o) in out.iter_mut().enumerate().take(i).skip(k + 1) {
                        *o = kv + (v - kv) * (m - k) as f64 / (i - k) as f64;
                    }
                }
                out[i] = v;
                last_known = Some((i, v));
            }
            None if i + 1 == values.len() || values[i + 1..].iter().all(Option::is_none) => {
                let kv = last_known.map_or(0.0, |(_, v)| v);
                out[i..].iter_mut().for_each(|o| *o = kv);
                break;
            }
            None => {}
        }
        i += 1;
    }
    out
}

/// scikit-uplift's curve of `score`: points at every distinct score (descending), from
/// (0, 0).
fn sklift_curve(
    outcome: &[f64],
    treated: &[bool],
    score: &[f64],
    qini: bool,
) -> (Vec<f64>, Vec<f64>) {
    let n = outcome.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let (mut xs, mut ys) = (vec![0.0], vec![0.0]);
    let (mut nt, mut yt, mut yc) = (0.0, 0.0, 0.0);
    for (k, &i) in order.iter().enumerate() {
        if treated[i] {
            nt += 1.0;
            yt += outcome[i];
        } else {
            yc += outcome[i];
        }
        let threshold_end = k + 1 == n || score[order[k + 1]] != score[i];
        if !threshold_end {
            continue;
        }
        let all = (k + 1) as f64;
        let nc = all - nt;
        let value = if qini {
            yt - if nc != 0.0 { yc * nt / nc } else { 0.0 }
        } else {
            let rt = if nt != 0.0 { yt / nt } else { 0.0 };
            let rc = if nc != 0.0 { yc / nc } else { 0.0 };
            (rt - rc) * all
        };
        xs.push(all);
        ys.push(value);
    }
    (xs, ys)
}

fn trapezoid(xs: &[f64], ys: &[f64]) -> f64 {
    xs.windows(2)
        .zip(ys.windows(2))
        .map(|(x, y)| (x[1] - x[0]) * (y[0] + y[1]) / 2.0)
        .sum()
}

fn sklift_score(outcome: &[f64], treated: &[bool], score: &[f64], qini: bool) -> f64 {
    let (xa, ya) = sklift_curve(outcome, treated, score, qini);
    let perfect_score: Vec<f64> = if qini {
        // y·t − y·(1 − t): responders treated first, responders in control last.
        outcome
            .iter()
            .zip(treated)
            .map(|(y, &t)| if t { *y } else { -*y })
            .collect()
    } else {
        let control_responders = outcome
            .iter()
            .zip(treated)
            .filter(|(y, t)| **y == 1.0 && !**t)
            .count();
        let treated_non = outcome
            .iter()
            .zip(treated)
            .filter(|(y, t)| **y == 0.0 && **t)
            .count();
        outcome
            .iter()
            .zip(treated)
            .map(|(y, &t)| {
                let t = f64::from(u8::from(t));
                let summand = if control_responders > treated_non {
                    *y
                } else {
                    t
                };
                2.0 * f64::from(u8::from(*y == t)) + summand
            })
            .collect()
    };
    let (xp, yp) = sklift_curve(outcome, treated, &perfect_score, qini);
    let (x_end, y_end) = (xp[xp.len() - 1], yp[yp.len() - 1]);
    let baseline = trapezoid(&[0.0, x_end], &[0.0, y_end]);
    (trapezoid(&xa, &ya) - baseline) / (trapezoid(&xp, &yp) - baseline)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Uplift only where the first feature is positive.
    fn synthetic(n: usize, seed: u64) -> (UpliftData, Vec<f64>) {
        let mut rng = Rng::seeded(seed);
        let mut data = UpliftData {
            features: vec![],
            treated: vec![],
            outcome: vec![],
        };
        let mut truth = vec![];
        for _ in 0..n {
            let x: Vec<f64> = (0..4).map(|_| rng.normal()).collect();
            let t = rng.uniform() < 0.5;
            let tau = if x[0] > 0.0 { 0.2 } else { 0.0 };
            let p = 0.2 + 0.1 * x[1].tanh() + if t { tau } else { 0.0 };
            data.outcome.push(f64::from(u8::from(rng.uniform() < p)));
            data.treated.push(t);
            data.features.push(x);
            truth.push(tau);
        }
        (data, truth)
    }

    #[test]
    fn every_learner_ranks_the_responsive_half_first() {
        let (train, _) = synthetic(6000, 1);
        let (test, truth) = synthetic(4000, 2);
        let gbt = BaseLearner::Boosting(BoostingParams::default());
        let models = [
            fit_meta(&train, MetaLearner::T, gbt).unwrap(),
            fit_meta(&train, MetaLearner::X, gbt).unwrap(),
            fit_meta(&train, MetaLearner::S, gbt).unwrap(),
            fit_forest(&train, ForestParams::default()).unwrap(),
        ];
        for (k, model) in models.iter().enumerate() {
            let predicted = model.predict_all(&test.features);
            let on: Vec<f64> = predicted
                .iter()
                .zip(&truth)
                .filter(|(_, t)| **t > 0.0)
                .map(|(p, _)| *p)
                .collect();
            let off: Vec<f64> = predicted
                .iter()
                .zip(&truth)
                .filter(|(_, t)| **t == 0.0)
                .map(|(p, _)| *p)
                .collect();
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            assert!(
                mean(&on) > mean(&off) + 0.08,
                "model {k}: {} vs {}",
                mean(&on),
                mean(&off)
            );
            let q = qini(
                &test.outcome,
                &test.treated,
                &predicted,
                Definition::CausalMl,
            )
            .unwrap();
            assert!(q > 0.0, "model {k}: qini {q}");
        }
    }

    #[test]
    fn the_true_effect_scores_above_a_random_one_under_both_definitions() {
        let (test, truth) = synthetic(4000, 3);
        let mut rng = Rng::seeded(9);
        let random: Vec<f64> = (0..truth.len()).map(|_| rng.uniform()).collect();
        for d in [Definition::CausalMl, Definition::ScikitUplift] {
            let good = qini(&test.outcome, &test.treated, &truth, d).unwrap();
            let bad = qini(&test.outcome, &test.treated, &random, d).unwrap();
            assert!(good > bad + 0.02, "{d:?}: {good} vs {bad}");
            let good = auuc(&test.outcome, &test.treated, &truth, d).unwrap();
            let bad = auuc(&test.outcome, &test.treated, &random, d).unwrap();
            assert!(good > bad, "{d:?}: {good} vs {bad}");
        }
        assert!(qini(&[1.0], &[true], &[], Definition::CausalMl).is_err());
    }
}
