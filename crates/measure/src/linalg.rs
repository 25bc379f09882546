//! Small dense linear algebra the statistics share: Cholesky factors and solves of
//! symmetric positive (semi-)definite matrices stored row-major.

/// Lower Cholesky factor `L` (`m = L Lᵀ`) of a `d × d` matrix; a non-positive pivot
/// gives a zero column instead of a NaN (for semi-definite matrices).
pub(crate) fn cholesky(m: &[f64], d: usize) -> Vec<f64> {
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum();
            if i == j {
                l[i * d + i] = (m[i * d + i] - s).max(0.0).sqrt();
            } else if l[j * d + j] > 0.0 {
                l[i * d + j] = (m[i * d + j] - s) / l[j * d + j];
            }
        }
    }
    l
}

/// Solves `A x = b` for a symmetric positive (semi-)definite `d × d` matrix `A`, with a
/// ridge of 1e-12 times its largest diagonal entry so a singular `A` still solves.
pub(crate) fn solve_symmetric(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let ridge = 1e-12 * (0..d).map(|i| a[i * d + i]).fold(0.0, f64::max).max(1e-300);
    let mut ridged = a.to_vec();
    for i in 0..d {
        ridged[i * d + i] += ridge;
    }
    let l = cholesky(&ridged, d);
    let pivot = |i: usize| l[i * d + i].max(1e-150);
    let mut y = vec![0.0; d];
    for i in 0..d {
        y[i] = (b[i] - (0..i).map(|k| l[i * d + k] * y[k]).sum::<f64>()) / pivot(i);
    }
    let mut x = vec![0.0; d];
    for i in (0..d).rev() {
        x[i] = (y[i] - (i + 1..d).map(|k| l[k * d + i] * x[k]).sum::<f64>()) / pivot(i);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_known_system() {
        // [[4, 2], [2, 3]] x = [2, 1] → x = [0.5, 0].
        let x = solve_symmetric(&[4.0, 2.0, 2.0, 3.0], &[2.0, 1.0], 2);
        assert!((x[0] - 0.5).abs() < 1e-9 && x[1].abs() < 1e-9, "{x:?}");
        let l = cholesky(&[4.0, 2.0, 2.0, 3.0], 2);
        assert_eq!(l, vec![2.0, 0.0, 1.0, 2.0_f64.sqrt()]);
    }
}
