//! The crate's only `unsafe`, in two kinds:
//!
//! 1. SIMD distance kernels: x86-64 AVX2/FMA and AVX-512 (VNNI) intrinsics, called only
//!    after `is_x86_feature_detected!` confirmed the CPU has them (checked once, in
//!    `distance::kernels`, which installs their safe entry points from `checked`). Loads
//!    are unaligned (`loadu`), so any slice is valid input;
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

    /// The sum of eight i32 lanes.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn hsum_epi32(v: __m256i) -> i32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
        _mm_cvtsi128_si32(s)
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

    /// Σ qᵢ·cᵢ in integers for an i16 query and int8 codes: 16 lanes per step,
    /// `vpmaddwd` (pairwise i16 products summed into i32).
    ///
    /// # Safety
    /// The CPU must support AVX2, and `q.len() == c.len()`.
    #[target_feature(enable = "avx2")]
    pub(crate) unsafe fn dot_q16(q: &[i16], c: &[i8]) -> i32 {
        let n = q.len().min(c.len());
        let (pq, pc) = (q.as_ptr(), c.as_ptr());
        let mut acc0 = _mm256_setzero_si256();
        let mut acc1 = _mm256_setzero_si256();
        let mut i = 0;
        // SAFETY: loads of 16 codes / 16 i16 at offset i (and i + 16) below n.
        unsafe {
            while i + 32 <= n {
                let c0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(pc.add(i) as *const __m128i));
                let c1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(pc.add(i + 16) as *const __m128i));
                let q0 = _mm256_loadu_si256(pq.add(i) as *const __m256i);
                let q1 = _mm256_loadu_si256(pq.add(i + 16) as *const __m256i);
                acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(c0, q0));
                acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(c1, q1));
                i += 32;
            }
            while i + 16 <= n {
                let c0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(pc.add(i) as *const __m128i));
                let q0 = _mm256_loadu_si256(pq.add(i) as *const __m256i);
                acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(c0, q0));
                i += 16;
            }
            let mut total = hsum_epi32(_mm256_add_epi32(acc0, acc1));
            while i < n {
                total += i32::from(*pq.add(i)) * i32::from(*pc.add(i));
                i += 1;
            }
            total
        }
    }

    /// Σ aᵢ·bᵢ in integers for two int8 codes, 16 lanes per step (`vpmaddwd`).
    ///
    /// # Safety
    /// The CPU must support AVX2, and `a.len() == b.len()`.
    #[target_feature(enable = "avx2")]
    pub(crate) unsafe fn dot_i8_i8(a: &[i8], b: &[i8]) -> i32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = _mm256_setzero_si256();
        let mut i = 0;
        // SAFETY: loads of 16 bytes at offset i with i + 16 <= n.
        unsafe {
            while i + 16 <= n {
                let x = _mm256_cvtepi8_epi16(_mm_loadu_si128(pa.add(i) as *const __m128i));
                let y = _mm256_cvtepi8_epi16(_mm_loadu_si128(pb.add(i) as *const __m128i));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, y));
                i += 16;
            }
            let mut total = hsum_epi32(acc);
            while i < n {
                total += i32::from(*pa.add(i)) * i32::from(*pb.add(i));
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

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use std::arch::x86_64::*;

    /// Σ qᵢ·cᵢ in integers for an i16 query and int8 codes: 32 lanes per step, one
    /// VNNI `vpdpwssd` (pairwise i16 products summed into i32) each.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW and VNNI, and `q.len() == c.len()`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(crate) unsafe fn dot_q16(q: &[i16], c: &[i8]) -> i32 {
        let n = q.len().min(c.len());
        let (pq, pc) = (q.as_ptr(), c.as_ptr());
        let mut acc0 = _mm512_setzero_si512();
        let mut acc1 = _mm512_setzero_si512();
        let mut i = 0;
        // SAFETY: every load reads 32 codes / 32 i16 at offset i with i + 32 <= n (or
        // i + 64 <= n in the unrolled loop); unaligned loads are allowed.
        unsafe {
            while i + 64 <= n {
                let c0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(pc.add(i) as *const __m256i));
                let c1 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(pc.add(i + 32) as *const __m256i));
                acc0 = _mm512_dpwssd_epi32(acc0, c0, _mm512_loadu_si512(pq.add(i) as *const _));
                acc1 =
                    _mm512_dpwssd_epi32(acc1, c1, _mm512_loadu_si512(pq.add(i + 32) as *const _));
                i += 64;
            }
            while i + 32 <= n {
                let c0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(pc.add(i) as *const __m256i));
                acc0 = _mm512_dpwssd_epi32(acc0, c0, _mm512_loadu_si512(pq.add(i) as *const _));
                i += 32;
            }
            let mut total = _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
            while i < n {
                total += i32::from(*pq.add(i)) * i32::from(*pc.add(i));
                i += 1;
            }
            total
        }
    }

    /// Σ aᵢ·bᵢ in integers for two int8 codes: 64 lanes per step with VNNI `vpdpbusd`,
    /// which multiplies unsigned by signed bytes, so `a` is shifted to `a + 128` (a flip
    /// of its sign bit) and `128 · Σ bᵢ`, summed alongside, is taken off at the end.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW and VNNI, and `a.len() == b.len()`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(crate) unsafe fn dot_i8_i8(a: &[i8], b: &[i8]) -> i32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let flip = _mm512_set1_epi8(-128);
        let ones = _mm512_set1_epi8(1);
        let mut acc = _mm512_setzero_si512();
        let mut sum_b = _mm512_setzero_si512();
        let mut i = 0;
        // SAFETY: loads of 64 bytes at offset i with i + 64 <= n.
        unsafe {
            while i + 64 <= n {
                let x = _mm512_xor_si512(_mm512_loadu_si512(pa.add(i) as *const _), flip);
                let y = _mm512_loadu_si512(pb.add(i) as *const _);
                acc = _mm512_dpbusd_epi32(acc, x, y);
                sum_b = _mm512_dpbusd_epi32(sum_b, ones, y);
                i += 64;
            }
            let mut total = _mm512_reduce_add_epi32(acc) - 128 * _mm512_reduce_add_epi32(sum_b);
            while i < n {
                total += i32::from(*pa.add(i)) * i32::from(*pb.add(i));
                i += 1;
            }
            total
        }
    }

    /// `out[j] = Σ qᵢ·cᵢ` over the code row `rows[j]` of `codes` (rows of `q.len()`
    /// bytes), for an exact scan of many rows against one query: four rows at a time, so
    /// four independent `vpdpbusd` chains hide the instruction's latency (one row per
    /// call waited on each chain and on the call). The query is made unsigned (`q + 128`,
    /// a flip of its sign bit) and `128 · Σ cᵢ`, summed alongside, is taken off; a ragged
    /// last chunk is read through a byte mask, so no scalar tail. Rows a few groups ahead
    /// are prefetched (they are scattered).
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW and VNNI, and every
    /// `(rows[j] + 1) · q.len() <= codes.len()` for `j < min(rows.len(), out.len())`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(crate) unsafe fn dots_i8_rows(q: &[i8], codes: &[i8], rows: &[u32], out: &mut [i32]) {
        const AHEAD: usize = 8;
        let dim = q.len();
        let n = rows.len().min(out.len());
        let chunks = dim.div_ceil(64);
        let last: u64 = match dim % 64 {
            0 => u64::MAX,
            r => (1u64 << r) - 1,
        };
        let flip = _mm512_set1_epi8(-128);
        let ones = _mm512_set1_epi8(1);
        let (pq, pc) = (q.as_ptr(), codes.as_ptr());
        let mut j = 0;
        while j < n {
            let group = (n - j).min(4);
            for &row in rows.iter().take(n).skip(j + AHEAD).take(group) {
                super::prefetch(pc.wrapping_add(row as usize * dim), chunks);
            }
            // a short last group repeats its last row (computed, not written)
            let at = |r: usize| rows[j + r.min(group - 1)] as usize * dim;
            let p = [at(0), at(1), at(2), at(3)];
            let mut acc = [_mm512_setzero_si512(); 4];
            let mut sum = [_mm512_setzero_si512(); 4];
            for c in 0..chunks {
                let mask = if c + 1 == chunks { last } else { u64::MAX };
                // SAFETY: chunk c covers bytes [64c, 64c + 64) masked to < dim of the
                // query and of each row, which the caller guarantees lie in `codes`.
                unsafe {
                    let qv = _mm512_xor_si512(_mm512_maskz_loadu_epi8(mask, pq.add(64 * c)), flip);
                    for r in 0..4 {
                        let cv = _mm512_maskz_loadu_epi8(mask, pc.add(p[r] + 64 * c));
                        acc[r] = _mm512_dpbusd_epi32(acc[r], qv, cv);
                        sum[r] = _mm512_dpbusd_epi32(sum[r], ones, cv);
                    }
                }
            }
            for r in 0..group {
                out[j + r] = _mm512_reduce_add_epi32(_mm512_sub_epi32(
                    acc[r],
                    _mm512_slli_epi32::<7>(sum[r]),
                ));
            }
            j += group;
        }
    }
}

/// Safe entry points to the kernels above, for `distance::kernels()` to install. Each is
/// sound only on a CPU with its kernel's features; `kernels()` installs one only after
/// `is_x86_feature_detected!` confirmed them (tests call the AVX2 ones under the same
/// check). Slices of unequal length are harmless: the kernels stop at the shorter one.
#[cfg(target_arch = "x86_64")]
pub(crate) mod checked {
    macro_rules! checked {
        ($($name:ident = $kernel:path, ($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {$(
            pub(crate) fn $name($($arg: $ty),*) -> $ret {
                // SAFETY: see the module doc — installed only after feature detection.
                unsafe { $kernel($($arg),*) }
            }
        )*};
    }

    checked! {
        dot_avx2 = super::avx2::dot, (a: &[f32], b: &[f32]) -> f32;
        l2_avx2 = super::avx2::l2, (a: &[f32], b: &[f32]) -> f32;
        dot_q16_avx2 = super::avx2::dot_q16, (q: &[i16], c: &[i8]) -> i32;
        dot_i8_i8_avx2 = super::avx2::dot_i8_i8, (a: &[i8], b: &[i8]) -> i32;
        dot_q16_avx512 = super::avx512::dot_q16, (q: &[i16], c: &[i8]) -> i32;
        dot_i8_i8_avx512 = super::avx512::dot_i8_i8, (a: &[i8], b: &[i8]) -> i32;
    }

    /// [`super::avx512::dots_i8_rows`] once every row is known to lie in `codes` (one
    /// pass over the row numbers; a row outside is a caller's bug, and the scalar twin
    /// then panics on it as slice indexing does).
    pub(crate) fn dots_i8_rows_avx512(q: &[i8], codes: &[i8], rows: &[u32], out: &mut [i32]) {
        let n = rows.len().min(out.len());
        let top = rows[..n]
            .iter()
            .copied()
            .max()
            .map_or(0, |r| r as usize + 1);
        if top * q.len() > codes.len() {
            return crate::distance::dots_i8_rows_scalar(q, codes, rows, out);
        }
        // SAFETY: installed only after feature detection (module doc); rows checked above.
        unsafe { super::avx512::dots_i8_rows(q, codes, rows, out) }
    }

    /// One AVX2 row product per row (no batched AVX2 kernel).
    pub(crate) fn dots_i8_rows_avx2(q: &[i8], codes: &[i8], rows: &[u32], out: &mut [i32]) {
        let dim = q.len();
        for (o, &r) in out.iter_mut().zip(rows) {
            let at = r as usize * dim;
            *o = dot_i8_i8_avx2(q, &codes[at..at + dim]);
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
