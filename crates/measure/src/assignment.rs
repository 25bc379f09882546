//! Deterministic experiment assignment, compatible with GrowthBook's SDKs: FNV-1a hashing
//! (hash versions 1 and 2), bucket ranges with coverage and weights, variation choice and
//! namespaces. The same user, seed and experiment land in the same arm in every SDK.

/// 32-bit FNV-1a over UTF-16 code units, as the JavaScript SDK hashes strings.
pub fn fnv1a32(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for unit in s.encode_utf16() {
        h ^= u32::from(unit);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// 32-bit FNV-1a over bytes; equal to [`fnv1a32`] for ASCII text, and faster.
pub fn fnv1a32_bytes(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

fn fnv(s: &str) -> u32 {
    if s.is_ascii() {
        fnv1a32_bytes(s.as_bytes())
    } else {
        fnv1a32(s)
    }
}

/// GrowthBook's hash of a unit into `[0, 1)`. Version 1: `fnv(value + seed) % 1000 /
/// 1000`; version 2: `fnv(str(fnv(seed + value))) % 10000 / 10000`. Other versions: `None`.
pub fn hash(seed: &str, value: &str, version: u32) -> Option<f64> {
    match version {
        1 => {
            let mut s = String::with_capacity(value.len() + seed.len());
            s.push_str(value);
            s.push_str(seed);
            Some(f64::from(fnv(&s) % 1000) / 1000.0)
        }
        2 => {
            let mut s = String::with_capacity(value.len() + seed.len());
            s.push_str(seed);
            s.push_str(value);
            let inner = fnv(&s);
            let mut buf = itoa_u32(inner);
            let outer = fnv1a32_bytes(buf.as_bytes());
            buf.clear();
            Some(f64::from(outer % 10000) / 10000.0)
        }
        _ => None,
    }
}

fn itoa_u32(mut n: u32) -> String {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits[i..].iter().map(|&d| d as char).collect()
}

/// `n` equal weights summing to one; empty for `n <= 0`.
pub fn equal_weights(n: i64) -> Vec<f64> {
    if n <= 0 {
        return Vec::new();
    }
    vec![1.0 / n as f64; n as usize]
}

/// The `[start, end)` hash range of each variation. Coverage is clamped to `[0, 1]`;
/// weights that do not match the number of variations or do not sum to 1 (±0.01) are
/// replaced by equal weights.
pub fn bucket_ranges(
    num_variations: i64,
    coverage: f64,
    weights: Option<&[f64]>,
) -> Vec<(f64, f64)> {
    let coverage = if coverage.is_nan() {
        0.0
    } else {
        coverage.clamp(0.0, 1.0)
    };
    let mut w: Vec<f64> = match weights {
        Some(w) if w.len() as i64 == num_variations => w.to_vec(),
        _ => equal_weights(num_variations),
    };
    let total: f64 = w.iter().sum();
    if !(0.99..=1.01).contains(&total) {
        w = equal_weights(num_variations);
    }
    let mut cumulative = 0.0;
    w.iter()
        .map(|&weight| {
            let start = cumulative;
            cumulative += weight;
            (start, start + coverage * weight)
        })
        .collect()
}

/// The variation whose range holds `n`, or `None` when `n` falls outside all of them
/// (the unit is not in the experiment).
pub fn choose_variation(n: f64, ranges: &[(f64, f64)]) -> Option<usize> {
    ranges
        .iter()
        .position(|&(start, end)| n >= start && n < end)
}

/// A namespace: units hashing into `[start, end)` of it may join the experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Namespace {
    /// Its id; experiments sharing it are mutually exclusive.
    pub id: String,
    /// Range start in `[0, 1]`.
    pub start: f64,
    /// Range end in `[0, 1]`.
    pub end: f64,
}

/// Whether a unit falls into the namespace's range.
pub fn in_namespace(unit: &str, namespace: &Namespace) -> bool {
    let seed = format!("__{}", namespace.id);
    hash(&seed, unit, 1).is_some_and(|n| n >= namespace.start && n < namespace.end)
}

/// An experiment's assignment settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    /// The key; also the hash seed unless `seed` is set.
    pub key: String,
    /// Number of variations (arm 0 is control).
    pub variations: usize,
    /// Traffic share per variation; equal when `None`.
    pub weights: Option<Vec<f64>>,
    /// Share of units included, `[0, 1]`.
    pub coverage: f64,
    /// Hash seed, when not the key.
    pub seed: Option<String>,
    /// Hash version, 1 or 2.
    pub hash_version: u32,
    /// Mutual exclusion with other experiments.
    pub namespace: Option<Namespace>,
}

impl Experiment {
    /// Which variation a unit sees, or `None` when it is not in the experiment.
    pub fn assign(&self, unit: &str) -> Option<usize> {
        if self.variations < 2 {
            return None;
        }
        if let Some(ns) = &self.namespace {
            if !in_namespace(unit, ns) {
                return None;
            }
        }
        let seed = self.seed.as_deref().unwrap_or(&self.key);
        let n = hash(seed, unit, self.hash_version)?;
        let ranges = bucket_ranges(
            self.variations as i64,
            self.coverage,
            self.weights.as_deref(),
        );
        choose_variation(n, &ranges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_over_bytes_and_utf16_agree_on_ascii() {
        for s in ["", "a", "hello world", "123456789"] {
            assert_eq!(fnv1a32(s), fnv1a32_bytes(s.as_bytes()));
        }
        assert_eq!(itoa_u32(0), "0");
        assert_eq!(itoa_u32(4_294_967_295), "4294967295");
    }

    #[test]
    fn assignment_is_stable_and_follows_weights() {
        let e = Experiment {
            key: "headline".into(),
            variations: 2,
            weights: Some(vec![0.2, 0.8]),
            coverage: 1.0,
            seed: None,
            hash_version: 2,
            namespace: None,
        };
        let mut counts = [0usize; 2];
        for i in 0..20_000 {
            let unit = format!("user-{i}");
            let v = e.assign(&unit).unwrap();
            assert_eq!(e.assign(&unit), Some(v));
            counts[v] += 1;
        }
        let share = counts[1] as f64 / 20_000.0;
        assert!((share - 0.8).abs() < 0.02, "{share}");
    }
}
