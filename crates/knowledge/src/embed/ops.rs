//! Fused CPU operations for the encoder. candle's stock element-wise operations each
//! allocate a tensor and run on one thread; between the matrix products of a BERT layer
//! they took more time than the products. Each operation here makes one pass over its
//! input, in parallel over rows.

use candle_core::{CpuStorage, CustomOp1, InplaceOp1, InplaceOp2, Layout, Shape};
use rayon::prelude::*;

use crate::simd::multiversion;

fn contiguous_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> candle_core::Result<&'a mut [f32]> {
    let (a, b) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("fused op needs a contiguous input".into()))?;
    match s {
        CpuStorage::F32(v) => Ok(&mut v[a..b]),
        _ => Err(candle_core::Error::Msg("fused op needs f32".into())),
    }
}

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    let (a, b) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("fused op needs a contiguous input".into()))?;
    Ok(&s.as_slice::<f32>()?[a..b])
}

/// Rows handed to one rayon task.
const ROWS_PER_TASK: usize = 16;

/// `e^x` for `x ≤ 88`, relative error below 5e-7 (a few ulp; down to `x = −87`; below that the
/// result is subnormal or 0), without branches or calls, so loops
/// over it vectorise (libm's `expf` is a call per element). Inputs below −87 give 0.
#[inline]
pub(crate) fn exp(x: f32) -> f32 {
    // Round to nearest by the 1.5·2²³ trick: `round()` is a libm call on baseline x86-64.
    const SHIFT: f32 = 12_582_912.0;
    let n = ((x * std::f32::consts::LOG2_E).clamp(-127.0, 127.0) + SHIFT) - SHIFT;
    // Cody–Waite reduction: ln 2 in two parts, so x − n·ln2 loses no precision.
    let f = x - n * 0.693_145_75 - n * 1.428_606_8e-6; // |f| ≤ ln2/2
                                                       // exp(f) by its Taylor polynomial to degree 6 (error < 1e-7 on |f| ≤ 0.347).
    let p = 1.0
        + f * (1.0
            + f * (0.5
                + f * (1.0 / 6.0 + f * (1.0 / 24.0 + f * (1.0 / 120.0 + f * (1.0 / 720.0))))));
    let scale = f32::from_bits(((n as i32 + 127).max(0) as u32) << 23);
    p * scale
}

/// erf with absolute error below 3e-7 (Abramowitz & Stegun 7.1.26), branch-free.
#[inline]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    (1.0 - poly * exp(-a * a)).copysign(x)
}

/// `gelu(x + bias)` with the exact (erf) GELU, for `[rows, width]` inputs.
pub struct BiasGelu<'a> {
    /// Bias, one per column.
    pub bias: &'a [f32],
}

impl InplaceOp1 for BiasGelu<'_> {
    fn name(&self) -> &'static str {
        "bias-gelu"
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> candle_core::Result<()> {
        let x = contiguous_mut(s, l)?;
        let w = self.bias.len();
        if w == 0 || x.len() % w != 0 {
            return Err(candle_core::Error::Msg("bias-gelu: shape".into()));
        }
        x.par_chunks_mut(w * ROWS_PER_TASK)
            .for_each(|o| bias_gelu(o, self.bias));
        Ok(())
    }
}

multiversion! {
    fn bias_gelu(o: &mut [f32], bias: &[f32]) {
        let w = bias.len();
        for o in o.chunks_exact_mut(w) {
            for (o, &b) in o.iter_mut().zip(bias) {
                let v = *o + b;
                *o = 0.5 * v * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2));
            }
        }
    }
}

/// Sum with eight independent accumulators, so the loop vectorises.
#[inline(always)]
fn sum(v: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = v.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + tail
}

multiversion! {
    fn residual_norm(o: &mut [f32], r: &[f32], op: &BiasResidualNorm<'_>) {
        let w = op.bias.len();
        for (o, r) in o.chunks_exact_mut(w).zip(r.chunks_exact(w)) {
            for ((o, &r), &b) in o.iter_mut().zip(r).zip(op.bias) {
                *o += b + r;
            }
            let mean = sum(o) / w as f32;
            o.iter_mut().for_each(|v| *v -= mean);
            let mut sq = [0f32; 8];
            for c in o.chunks_exact(8) {
                for (a, &v) in sq.iter_mut().zip(c) {
                    *a += v * v;
                }
            }
            let tail: f32 = o.chunks_exact(8).remainder().iter().map(|v| v * v).sum();
            let var = (sq.iter().sum::<f32>() + tail) / w as f32;
            let inv = 1.0 / (var + op.eps).sqrt();
            for ((o, &g), &b) in o.iter_mut().zip(op.gamma).zip(op.beta) {
                *o = *o * inv * g + b;
            }
        }
    }
}

/// `layer_norm(x + bias + residual) · gamma + beta` over the last dimension.
pub struct BiasResidualNorm<'a> {
    /// Bias of the preceding dense layer.
    pub bias: &'a [f32],
    /// Scale.
    pub gamma: &'a [f32],
    /// Shift.
    pub beta: &'a [f32],
    /// Variance epsilon.
    pub eps: f32,
}

impl InplaceOp2 for BiasResidualNorm<'_> {
    fn name(&self) -> &'static str {
        "bias-residual-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let r = contiguous(s2, l2)?;
        let x = contiguous_mut(s1, l1)?;
        let w = self.bias.len();
        if x.len() != r.len() || w == 0 || x.len() % w != 0 {
            return Err(candle_core::Error::Msg("layer norm: shapes differ".into()));
        }
        x.par_chunks_mut(w * ROWS_PER_TASK)
            .zip(r.par_chunks(w * ROWS_PER_TASK))
            .for_each(|(o, r)| residual_norm(o, r, self));
        Ok(())
    }
}

/// Multi-head self-attention from a fused `[batch·len, 3·hidden]` Q/K/V product (bias
/// not yet added) to the merged context `[batch·len, hidden]`. Each sequence attends only
/// to its own `lengths[sequence]` tokens; padding rows come out as zeros. One task per
/// sequence; per head, scores are formed row by row against the transposed keys, so the
/// inner loops run along contiguous memory.
pub struct Attention<'a> {
    /// Bias of the fused product.
    pub bias: &'a [f32],
    /// Real length of each sequence.
    pub lengths: &'a [usize],
    /// Heads.
    pub heads: usize,
}

impl CustomOp1 for Attention<'_> {
    fn name(&self) -> &'static str {
        "attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous(s, l)?;
        let hidden3 = self.bias.len();
        let hidden = hidden3 / 3;
        let d = hidden / self.heads;
        let batch = self.lengths.len();
        if batch == 0 || x.len() % (batch * hidden3) != 0 {
            return Err(candle_core::Error::Msg("attention: shape".into()));
        }
        let len = x.len() / (batch * hidden3);
        let scale = 1.0 / (d as f32).sqrt();
        let mut out = vec![0f32; batch * len * hidden];
        out.par_chunks_mut(len * hidden)
            .zip(x.par_chunks(len * hidden3))
            .zip(self.lengths.par_iter())
            .for_each(|((out, x), &n)| {
                attend(x, out, self.bias, n.min(len), self.heads, d, scale);
            });
        Ok((CpuStorage::F32(out), Shape::from((batch * len, hidden))))
    }
}

/// Head width of MiniLM and e5-small (384 / 12).
const HEAD32: usize = 32;

multiversion! {
fn attend(x: &[f32], out: &mut [f32], bias: &[f32], n: usize, heads: usize, d: usize, scale: f32) {
    const ROWS: usize = 4;
    const LANES: usize = 8;
    let hidden = heads * d;
    let hidden3 = 3 * hidden;
    // Keys transposed and padded to whole lanes, queries padded to whole row blocks,
    // so the score tile below needs no edge cases (the padding scores are ignored).
    let n8 = n.div_ceil(LANES) * LANES;
    let n4 = n.div_ceil(ROWS) * ROWS;
    let mut q = vec![0f32; n4 * d];
    let mut kt = vec![0f32; d * n8];
    let mut v = vec![0f32; n * d];
    let mut scores = vec![0f32; ROWS * n8];
    let mut ctx = vec![0f32; d];
    for h in 0..heads {
        let (qc, kc, vc) = (h * d, hidden + h * d, 2 * hidden + h * d);
        for t in 0..n {
            let row = &x[t * hidden3..(t + 1) * hidden3];
            for e in 0..d {
                q[t * d + e] = (row[qc + e] + bias[qc + e]) * scale;
                kt[e * n8 + t] = row[kc + e] + bias[kc + e];
                v[t * d + e] = row[vc + e] + bias[vc + e];
            }
        }
        for i0 in (0..n).step_by(ROWS) {
            // A ROWS × LANES tile of scores per step: each key load feeds ROWS
            // multiply-adds, and the tile stays in registers.
            for j0 in (0..n8).step_by(LANES) {
                let mut acc = [[0f32; LANES]; ROWS];
                for e in 0..d {
                    let k: &[f32; LANES] = match kt[e * n8 + j0..e * n8 + j0 + LANES].try_into() {
                        Ok(k) => k,
                        Err(_) => continue,
                    };
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let qv = q[(i0 + r) * d + e];
                        for (a, &kv) in acc.iter_mut().zip(k) {
                            *a += qv * kv;
                        }
                    }
                }
                for (r, acc) in acc.iter().enumerate() {
                    scores[r * n8 + j0..r * n8 + j0 + LANES].copy_from_slice(acc);
                }
            }
            for r in 0..ROWS.min(n - i0) {
                let i = i0 + r;
                let row = &mut scores[r * n8..r * n8 + n];
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                row.iter_mut().for_each(|s| *s = exp(*s - max));
                let inv = 1.0 / sum(row);
                if d == HEAD32 {
                    // The common head width: the accumulator stays in registers.
                    let mut acc = [0f32; HEAD32];
                    for (&p, vrow) in row.iter().zip(v.chunks_exact(HEAD32)) {
                        for (a, &vv) in acc.iter_mut().zip(vrow) {
                            *a += p * vv;
                        }
                    }
                    ctx.copy_from_slice(&acc);
                } else {
                    ctx.iter_mut().for_each(|c| *c = 0.0);
                    for (j, &p) in row.iter().enumerate() {
                        for (c, &vv) in ctx.iter_mut().zip(&v[j * d..(j + 1) * d]) {
                            *c += p * vv;
                        }
                    }
                }
                for (o, &c) in out[i * hidden + h * d..i * hidden + (h + 1) * d].iter_mut().zip(&ctx) {
                    *o = c * inv;
                }
            }
        }
    }
}
}

#[cfg(test)]
mod tests {
    use super::{erf, exp};

    #[test]
    fn exp_matches_std_within_five_parts_in_ten_million() {
        for i in -8700..=8800 {
            if i < -8700 {
                // Near the subnormal range only the absolute error matters.
                let x = i as f32 / 100.0;
                assert!(
                    (exp(x) - x.exp()).abs() < 1e-36,
                    "{x}: {} vs {}",
                    exp(x),
                    x.exp()
                );
                continue;
            }
            let x = i as f32 / 100.0;
            let (got, want) = (exp(x), x.exp());
            assert!(
                (got - want).abs() <= 5e-7 * want + 1e-37,
                "{x}: {got} vs {want}"
            );
        }
        assert_eq!(exp(-200.0), 0.0);
    }

    #[test]
    fn erf_matches_libm_within_its_error_bound() {
        for i in -400..=400 {
            let x = i as f32 / 100.0;
            assert!((erf(x) - libm_erf(x)).abs() < 3e-7, "{x}");
        }
    }

    fn libm_erf(x: f32) -> f32 {
        // Series/continued fraction free reference: integrate exp(-t²) by Simpson's rule.
        let n = 2000;
        let h = f64::from(x) / n as f64;
        let f = |t: f64| (-t * t).exp();
        let mut s = f(0.0) + f(f64::from(x));
        for k in 1..n {
            s += if k % 2 == 1 { 4.0 } else { 2.0 } * f(k as f64 * h);
        }
        (s * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()) as f32
    }
}
