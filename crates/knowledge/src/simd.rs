//! The crate's only `unsafe`: functions compiled twice, once for baseline x86-64 and
//! once for AVX2 + FMA, the second called only after `is_x86_feature_detected!`
//! confirmed the CPU has both (checked once). The bodies are plain safe Rust; compiled
//! for AVX2 their loops are vectorised eight lanes wide with fused multiply-adds
//! instead of SSE2's four. Both builds are tested to agree (`ops` tests run whichever
//! the machine picks and compare with a scalar reference).

use std::sync::OnceLock;

/// Whether the AVX2/FMA builds may run.
pub(crate) fn has_avx2_fma() -> bool {
    static DETECTED: OnceLock<bool> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// Defines `fn name(args)` whose body is compiled for baseline and for AVX2/FMA, and
/// which runs the AVX2 build when the CPU supports it.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        #[allow(unsafe_code)]
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) $body
            fn baseline($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            if $crate::simd::has_avx2_fma() {
                // SAFETY: the CPU supports AVX2 and FMA (detected at run time), the
                // only precondition of a `target_feature` function.
                return unsafe { avx2($($arg),*) };
            }
            baseline($($arg),*)
        }
    };
}
pub(crate) use multiversion;
