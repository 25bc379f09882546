//! The crate's only `unsafe`, in two kinds:
//!
//! 1. SIMD distance kernels: x86-64 AVX2/FMA intrinsics, called only after
//!    `is_x86_feature_detected!` confirmed the CPU has them (checked once, in
//!    `distance::kernels`). Loads are unaligned (`loadu`), so any slice is valid input;
//!    lengths are handled with a scalar tail. Each kernel has a scalar twin in `distance`
//!    and a test that they agree. Prefetch is a hint that never faults.
//! 2. Memory-mapping an index file (`map_file`). A mapping is undefined behaviour if
//!    another process truncates or rewrites the file while it is mapped; index files are
//!    only ever replaced by rename (write new, fsync, rename), never modified in place,
//!    so an open mapping keeps seeing the old, complete file.
#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    #[inline]
    unsafe fn hsum(v: __m256) -> f32 {
        // SAFETY: plain register arithmetic, AVX is available (caller's contract).
        unsafe {
            let lo = _mm256_castps256_ps128(v);
            let hi = _mm256_extractf128_ps(v, 1);
            let s = _mm_add_ps(lo, hi);
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
            _mm_cvtss_f32(s)
        }
    }

    /// Σ aᵢbᵢ.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA, and `a.len() == b.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY: every load reads 8 floats at offset i + 8j < n (loop bounds), from
        // slices of length >= n; unaligned loads are allowed.
        unsafe {
            while i + 32 <= n {
                for (j, a_j) in acc.iter_mut().enumerate() {
                    let x = _mm256_loadu_ps(pa.add(i + 8 * j));
                    let y = _mm256_loadu_ps(pb.add(i + 8 * j));
                    *a_j = _mm256_fmadd_ps(x, y, *a_j);
                }
                i += 32;
            }
            while i + 8 <= n {
                let x = _mm256_loadu_ps(pa.add(i));
                let y = _mm256_loadu_ps(pb.add(i));
                acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
                i += 8;
            }
            let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
            let mut total = hsum(sum);
            while i < n {
                total += *pa.add(i) * *pb.add(i);
                i += 1;
            }
            total
        }
    }

    /// Σ qᵢ·cᵢ for a float query and int8 codes (asymmetric distance).
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA, and `q.len() == c.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn dot_i8(q: &[f32], c: &[i8]) -> f32 {
        let n = q.len().min(c.len());
        let (pq, pc) = (q.as_ptr(), c.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY: loads of 16 codes / 2×8 floats at offset i with i + 16 <= n.
        unsafe {
            while i + 16 <= n {
                let codes = _mm_loadu_si128(pc.add(i) as *const __m128i);
                let lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(codes));
                let hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(codes, 8)));
                acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pq.add(i)), lo, acc0);
                acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(pq.add(i + 8)), hi, acc1);
                i += 16;
            }
            let mut total = hsum(_mm256_add_ps(acc0, acc1));
            while i < n {
                total += *pq.add(i) * f32::from(*pc.add(i));
                i += 1;
            }
            total
        }
    }

    /// Σ (aᵢ − bᵢ)².
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA, and `a.len() == b.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn l2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY: as in `dot`: all loads stay below n.
        unsafe {
            while i + 32 <= n {
                for (j, a_j) in acc.iter_mut().enumerate() {
                    let d = _mm256_sub_ps(
                        _mm256_loadu_ps(pa.add(i + 8 * j)),
                        _mm256_loadu_ps(pb.add(i + 8 * j)),
                    );
                    *a_j = _mm256_fmadd_ps(d, d, *a_j);
                }
                i += 32;
            }
            while i + 8 <= n {
                let d = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                acc[0] = _mm256_fmadd_ps(d, d, acc[0]);
                i += 8;
            }
            let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
            let mut total = hsum(sum);
            while i < n {
                let d = *pa.add(i) - *pb.add(i);
                total += d * d;
                i += 1;
            }
            total
        }
    }
}

/// Asks the CPU to start loading the cache lines at `ptr` (a hint; never faults, even for
/// addresses that are not mapped, so any pointer is acceptable).
#[inline(always)]
pub(crate) fn prefetch<T>(ptr: *const T, lines: usize) {
    #[cfg(target_arch = "x86_64")]
    for i in 0..lines {
        // SAFETY: prefetch is a hint that does not dereference; `wrapping_add` keeps the
        // pointer arithmetic defined for any input.
        unsafe {
            std::arch::x86_64::_mm_prefetch(
                (ptr as *const i8).wrapping_add(64 * i),
                std::arch::x86_64::_MM_HINT_T0,
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (ptr, lines);
}

/// Maps a file read-only.
pub(crate) fn map_file(file: &std::fs::File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: see the module header: index files are replaced by rename, never modified
    // in place, so the mapped bytes cannot change under us.
    unsafe { memmap2::Mmap::map(file) }
}
