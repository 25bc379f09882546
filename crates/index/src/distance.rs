//! Distances and the kernels behind them, chosen once at run time: AVX2/FMA where the CPU
//! has it, portable scalar code elsewhere.

use std::sync::OnceLock;

/// How closeness is measured. Smaller distances are closer for all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// 1 − cos(a, b). Vectors are normalised on insertion, so this is 1 − a·b.
    Cosine,
    /// −a·b (maximum inner product).
    Dot,
    /// Squared Euclidean distance.
    L2,
}

impl Metric {
    pub(crate) fn code(self) -> u32 {
        match self {
            Metric::Cosine => 0,
            Metric::Dot => 1,
            Metric::L2 => 2,
        }
    }

    pub(crate) fn from_code(code: u32) -> Result<Self, crate::IndexError> {
        match code {
            0 => Ok(Metric::Cosine),
            1 => Ok(Metric::Dot),
            2 => Ok(Metric::L2),
            other => Err(crate::IndexError::Corrupt(format!(
                "unknown metric {other}"
            ))),
        }
    }
}

/// Scalar Σ aᵢbᵢ, the portable fallback and the reference for the SIMD kernel.
pub fn dot_scalar(a: &[f32], b: &[f32]) -> f32 {
    // Four independent accumulators let the compiler pipeline (and auto-vectorise).
    let mut acc = [0.0f32; 4];
    let chunks = a.len().min(b.len()) / 4;
    for c in 0..chunks {
        for j in 0..4 {
            acc[j] += a[4 * c + j] * b[4 * c + j];
        }
    }
    let mut total = acc[0] + acc[1] + acc[2] + acc[3];
    for i in 4 * chunks..a.len().min(b.len()) {
        total += a[i] * b[i];
    }
    total
}

/// Scalar Σ (aᵢ − bᵢ)².
pub fn l2_scalar(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 4];
    let chunks = a.len().min(b.len()) / 4;
    for c in 0..chunks {
        for j in 0..4 {
            let d = a[4 * c + j] - b[4 * c + j];
            acc[j] += d * d;
        }
    }
    let mut total = acc[0] + acc[1] + acc[2] + acc[3];
    for i in 4 * chunks..a.len().min(b.len()) {
        let d = a[i] - b[i];
        total += d * d;
    }
    total
}

/// Scalar Σ qᵢ·cᵢ in integers for an i16 query and int8 codes. Exact: |qᵢcᵢ| ≤ 2¹⁵·2⁷,
/// so up to 2⁹ terms never overflow, and [`QueryCode`] scales queries so the sum cannot.
pub fn dot_q16_scalar(q: &[i16], c: &[i8]) -> i32 {
    q.iter()
        .zip(c)
        .map(|(a, b)| i32::from(*a) * i32::from(*b))
        .sum()
}

/// Scalar Σ aᵢ·bᵢ in integers for two int8 codes.
pub fn dot_i8_i8_scalar(a: &[i8], b: &[i8]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| i32::from(*x) * i32::from(*y))
        .sum()
}

/// Scalar `out[j] = Σ qᵢ·cᵢ` over the code row `rows[j]` of `codes` (rows of `q.len()`
/// bytes).
pub fn dots_i8_rows_scalar(q: &[i8], codes: &[i8], rows: &[u32], out: &mut [i32]) {
    let dim = q.len();
    for (o, &r) in out.iter_mut().zip(rows) {
        let at = r as usize * dim;
        *o = dot_i8_i8_scalar(q, &codes[at..at + dim]);
    }
}

/// A query rounded to int8 like a stored code, `q ≈ scale · values`, for exact scans of
/// many codes ([`Kernels::dots_i8_rows`]): a byte per value halves the query side of
/// each product. Its rounding adds to the codes' own, and only ranks candidates that
/// full-precision re-scoring then orders.
pub(crate) struct QueryCode8 {
    pub values: Vec<i8>,
    pub scale: f32,
}

impl QueryCode8 {
    pub fn new(q: &[f32]) -> Self {
        let max_abs = q.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let scale = if max_abs > 0.0 { max_abs / 127.0 } else { 1.0 };
        QueryCode8 {
            values: q.iter().map(|x| (x / scale).round() as i8).collect(),
            scale,
        }
    }
}

/// A query rounded to i16 for the integer kernels: `q ≈ scale · values`. With 15 bits
/// per value the rounding is far below the int8 codes' own.
pub(crate) struct QueryCode {
    pub values: Vec<i16>,
    pub scale: f32,
}

impl QueryCode {
    pub fn new(q: &[f32]) -> Self {
        let max_abs = q.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        // Σ|qᵢcᵢ| ≤ dim · max|q| · 127 must stay below 2³¹: scale max|q| to at most
        // 2³¹ / (127 · dim), and never above i16's range.
        let top = (f64::from(i32::MAX) / (127.0 * q.len().max(1) as f64))
            .floor()
            .min(32_767.0) as f32;
        let scale = if max_abs > 0.0 { max_abs / top } else { 1.0 };
        QueryCode {
            values: q.iter().map(|x| (x / scale).round() as i16).collect(),
            scale,
        }
    }
}

/// `(query, codes, rows, out)`: see [`dots_i8_rows_scalar`].
pub(crate) type RowsKernel = fn(&[i8], &[i8], &[u32], &mut [i32]);

#[derive(Clone, Copy)]
pub(crate) struct Kernels {
    pub dot: fn(&[f32], &[f32]) -> f32,
    pub l2: fn(&[f32], &[f32]) -> f32,
    pub dot_q16: fn(&[i16], &[i8]) -> i32,
    pub dot_i8_i8: fn(&[i8], &[i8]) -> i32,
    /// `out[j] = Σ qᵢ·cᵢ` over code row `rows[j]` (see [`dots_i8_rows_scalar`]).
    pub dots_i8_rows: RowsKernel,
    pub name: &'static str,
}

/// The fastest kernels this CPU supports, detected once.
pub(crate) fn kernels() -> Kernels {
    static K: OnceLock<Kernels> = OnceLock::new();
    *K.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            use crate::raw::checked::*;
            let vnni = std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vnni");
            return Kernels {
                dot: dot_avx2,
                l2: l2_avx2,
                dot_q16: if vnni { dot_q16_avx512 } else { dot_q16_avx2 },
                dot_i8_i8: if vnni {
                    dot_i8_i8_avx512
                } else {
                    dot_i8_i8_avx2
                },
                dots_i8_rows: if vnni {
                    dots_i8_rows_avx512
                } else {
                    dots_i8_rows_avx2
                },
                name: if vnni {
                    "avx2+fma, avx512-vnni"
                } else {
                    "avx2+fma"
                },
            };
        }
        Kernels {
            dot: dot_scalar,
            l2: l2_scalar,
            dot_q16: dot_q16_scalar,
            dot_i8_i8: dot_i8_i8_scalar,
            dots_i8_rows: dots_i8_rows_scalar,
            name: "scalar",
        }
    })
}

/// The name of the kernels in use (`avx2+fma` or `scalar`), for benchmark reports.
pub fn kernel_name() -> &'static str {
    kernels().name
}

/// The distance under `metric` between a stored vector and a (normalised, for cosine)
/// query.
#[inline]
pub(crate) fn distance(k: &Kernels, metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Metric::Cosine => 1.0 - (k.dot)(a, b),
        Metric::Dot => -(k.dot)(a, b),
        Metric::L2 => (k.l2)(a, b),
    }
}

/// Prepares a vector for storage or search: checks it and normalises it for cosine.
pub(crate) fn prepare(
    metric: Metric,
    v: &[f32],
    dim: usize,
) -> Result<Vec<f32>, crate::IndexError> {
    if v.len() != dim {
        return Err(crate::IndexError::Dimension {
            got: v.len(),
            expected: dim,
        });
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(crate::IndexError::InvalidVector);
    }
    let mut out = v.to_vec();
    if metric == Metric::Cosine {
        let norm = dot_scalar(v, v).sqrt();
        if norm == 0.0 || !norm.is_finite() {
            return Err(crate::IndexError::InvalidVector);
        }
        for x in &mut out {
            *x /= norm;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn simd_kernels_agree_with_scalar(
            v in proptest::collection::vec((-10.0f32..10.0, -10.0f32..10.0), 0..300)
        ) {
            let (a, b): (Vec<f32>, Vec<f32>) = v.into_iter().unzip();
            let k = kernels();
            let (d1, d2) = ((k.dot)(&a, &b), dot_scalar(&a, &b));
            let scale = a.iter().zip(&b).map(|(x, y)| (x * y).abs()).sum::<f32>().max(1.0);
            prop_assert!((d1 - d2).abs() <= 1e-5 * scale, "{d1} vs {d2}");
            let (l1, l2) = ((k.l2)(&a, &b), l2_scalar(&a, &b));
            prop_assert!((l1 - l2).abs() <= 1e-5 * l2.max(1.0), "{l1} vs {l2}");
            let codes: Vec<i8> = b.iter().map(|x| (x * 12.0) as i8).collect();
            let q2: f32 = a.iter().zip(&codes).map(|(x, c)| x * f32::from(*c)).sum();
            let qscale = a.iter().zip(&codes).map(|(x, c)| (x * f32::from(*c)).abs()).sum::<f32>().max(1.0);
            let qc = QueryCode::new(&a);
            prop_assert_eq!((k.dot_q16)(&qc.values, &codes), dot_q16_scalar(&qc.values, &codes));
            // every kernel the CPU has, not only the one chosen
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") {
                prop_assert_eq!(crate::raw::checked::dot_q16_avx2(&qc.values, &codes), dot_q16_scalar(&qc.values, &codes));
            }
            let codes_a: Vec<i8> = a.iter().map(|x| (x * 12.7) as i8).collect();
            prop_assert_eq!((k.dot_i8_i8)(&codes_a, &codes), dot_i8_i8_scalar(&codes_a, &codes));
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") {
                prop_assert_eq!(crate::raw::checked::dot_i8_i8_avx2(&codes_a, &codes), dot_i8_i8_scalar(&codes_a, &codes));
            }
            let approx = qc.scale * dot_q16_scalar(&qc.values, &codes) as f32;
            prop_assert!((approx - q2).abs() <= 1e-3 * qscale, "{approx} vs {q2}");
        }
    }

    proptest! {
        #[test]
        fn row_kernels_agree_with_scalar(
            dim in 1usize..200,
            seed in any::<u64>(),
            picks in proptest::collection::vec(0u32..40, 0..23),
        ) {
            // codes over the whole byte range, rows in any order and repeated, any
            // number of rows (groups of four plus a short one), ragged dimensions
            let mut state = seed | 1;
            let mut byte = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as i8
            };
            let codes: Vec<i8> = (0..40 * dim).map(|_| byte()).collect();
            let q: Vec<i8> = (0..dim).map(|_| byte()).collect();
            let mut want = vec![0i32; picks.len()];
            dots_i8_rows_scalar(&q, &codes, &picks, &mut want);
            let mut got = vec![7i32; picks.len()];
            (kernels().dots_i8_rows)(&q, &codes, &picks, &mut got);
            prop_assert_eq!(&got, &want);
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") {
                let mut got = vec![7i32; picks.len()];
                crate::raw::checked::dots_i8_rows_avx2(&q, &codes, &picks, &mut got);
                prop_assert_eq!(&got, &want);
            }
        }
    }

    #[test]
    fn integer_kernels_do_not_overflow_at_the_extremes() {
        for dim in [1usize, 384, 1536, 4096] {
            let q: Vec<f32> = (0..dim)
                .map(|i| if i % 3 == 0 { -1.0 } else { 1.0 })
                .collect();
            let qc = QueryCode::new(&q);
            // codes with the query's sign everywhere: the largest possible sum
            let codes: Vec<i8> = q
                .iter()
                .map(|&x| if x < 0.0 { -127 } else { 127 })
                .collect();
            let wide: i64 = qc
                .values
                .iter()
                .zip(&codes)
                .map(|(a, b)| i64::from(*a) * i64::from(*b))
                .sum();
            assert_eq!(i64::from((kernels().dot_q16)(&qc.values, &codes)), wide);
            let approx = qc.scale * wide as f32;
            assert!((approx - 127.0 * dim as f32).abs() < 1e-3 * 127.0 * dim as f32);
            let min = vec![-128i8; dim];
            assert_eq!(
                i64::from((kernels().dot_i8_i8)(&min, &min)),
                16_384 * dim as i64
            );
            let mut out = [0i32; 5];
            (kernels().dots_i8_rows)(&min, &min, &[0; 5], &mut out);
            assert_eq!(out, [16_384 * dim as i32; 5]);
        }
    }

    #[test]
    fn cosine_vectors_are_normalised_and_zero_is_refused() {
        let v = prepare(Metric::Cosine, &[3.0, 4.0], 2).unwrap();
        assert!((v[0] - 0.6).abs() < 1e-7 && (v[1] - 0.8).abs() < 1e-7);
        assert!(prepare(Metric::Cosine, &[0.0, 0.0], 2).is_err());
        assert!(prepare(Metric::L2, &[f32::NAN, 0.0], 2).is_err());
        assert!(prepare(Metric::L2, &[1.0], 2).is_err());
    }
}
