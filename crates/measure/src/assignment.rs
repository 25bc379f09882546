//! Deterministic experiment assignment, compatible with GrowthBook's SDKs: FNV-1a hashing
//! (hash versions 1 and 2), bucket ranges with coverage and weights, variation choice and
//! namespaces. The same user, seed and experiment land in the same arm in every SDK.

const FNV_OFFSET: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;

/// 32-bit FNV-1a over UTF-16 code units, as the JavaScript SDK hashes strings.
pub fn fnv1a32(s: &str) -> u32 {
    fnv_extend(FNV_OFFSET, s)
}

/// 32-bit FNV-1a over bytes; equal to [`fnv1a32`] for ASCII text.
pub fn fnv1a32_bytes(bytes: &[u8]) -> u32 {
    let mut h = FNV_OFFSET;
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// Continues an FNV-1a state over a string's UTF-16 code units (its bytes, for ASCII),
/// so a concatenation can be hashed without building it.
fn fnv_extend(mut h: u32, s: &str) -> u32 {
    if s.is_ascii() {
        for &b in s.as_bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(FNV_PRIME);
        }
    } else {
        for unit in s.encode_utf16() {
            h ^= u32::from(unit);
            h = h.wrapping_mul(FNV_PRIME);
        }
    }
    h
}

/// FNV-1a of the decimal digits of `n`, without formatting a string.
fn fnv_decimal(n: u32) -> u32 {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    let mut m = n;
    while m >= 100 {
        let pair = (m % 100) as usize;
        m /= 100;
        i -= 2;
        digits[i] = b'0' + (pair / 10) as u8;
        digits[i + 1] = b'0' + (pair % 10) as u8;
    }
    if m >= 10 {
        i -= 2;
        digits[i] = b'0' + (m / 10) as u8;
        digits[i + 1] = b'0' + (m % 10) as u8;
    } else {
        i -= 1;
        digits[i] = b'0' + m as u8;
    }
    fnv1a32_bytes(&digits[i..])
}

/// GrowthBook's hash of a unit into `[0, 1)`. Version 1: `fnv(value + seed) % 1000 /
/// 1000`; version 2: `fnv(str(fnv(seed + value))) % 10000 / 10000`. Other versions: `None`.
/// Allocation-free.
pub fn hash(seed: &str, value: &str, version: u32) -> Option<f64> {
    match version {
        1 => {
            let h = fnv_extend(fnv_extend(FNV_OFFSET, value), seed);
            Some(f64::from(h % 1000) / 1000.0)
        }
        2 => {
            let inner = fnv_extend(fnv_extend(FNV_OFFSET, seed), value);
            Some(f64::from(fnv_decimal(inner) % 10000) / 10000.0)
        }
        _ => None,
    }
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
    /// A global holdout: units in it see no experiment, so the combined effect of all
    /// experiments can be measured against them.
    pub holdout: Option<Holdout>,
}

/// A share of all units kept out of every experiment that names this holdout.
#[derive(Debug, Clone, PartialEq)]
pub struct Holdout {
    /// Its id; every experiment naming it excludes the same units.
    pub id: String,
    /// Share of units held out, `[0, 1]`.
    pub share: f64,
}

/// Whether a unit belongs to a holdout (hash version 2 over `__holdout_<id>`).
pub fn in_holdout(unit: &str, holdout: &Holdout) -> bool {
    let seed = format!("__holdout_{}", holdout.id);
    hash(&seed, unit, 2).is_some_and(|n| n < holdout.share)
}

impl Experiment {
    /// Which variation a unit sees, or `None` when it is not in the experiment. For many
    /// units, prepare an [`Assigner`] once.
    pub fn assign(&self, unit: &str) -> Option<usize> {
        Assigner::new(self).assign(unit)
    }
}

/// An experiment with its bucket ranges computed once, for assigning many units.
#[derive(Debug, Clone, PartialEq)]
pub struct Assigner {
    seed: String,
    /// FNV state after the seed, for hash version 2 (seed first).
    seed_state: u32,
    hash_version: u32,
    ranges: Vec<(f64, f64)>,
    namespace: Option<(String, f64, f64)>,
    holdout: Option<(String, f64)>,
}

impl Assigner {
    /// Prepares an experiment.
    pub fn new(e: &Experiment) -> Self {
        let ranges = if e.variations < 2 {
            Vec::new()
        } else {
            bucket_ranges(e.variations as i64, e.coverage, e.weights.as_deref())
        };
        let seed = e.seed.clone().unwrap_or_else(|| e.key.clone());
        Assigner {
            seed_state: fnv_extend(FNV_OFFSET, &seed),
            seed,
            hash_version: e.hash_version,
            ranges,
            namespace: e
                .namespace
                .as_ref()
                .map(|ns| (format!("__{}", ns.id), ns.start, ns.end)),
            holdout: e
                .holdout
                .as_ref()
                .map(|h| (format!("__holdout_{}", h.id), h.share)),
        }
    }

    /// Which variation a unit sees, or `None` when it is not in the experiment.
    pub fn assign(&self, unit: &str) -> Option<usize> {
        if let Some((seed, share)) = &self.holdout {
            if hash(seed, unit, 2)? < *share {
                return None;
            }
        }
        if let Some((seed, start, end)) = &self.namespace {
            let n = hash(seed, unit, 1)?;
            if !(n >= *start && n < *end) {
                return None;
            }
        }
        let n = if self.hash_version == 2 {
            let inner = fnv_extend(self.seed_state, unit);
            f64::from(fnv_decimal(inner) % 10000) / 10000.0
        } else {
            hash(&self.seed, unit, self.hash_version)?
        };
        choose_variation(n, &self.ranges)
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
        assert_eq!(fnv_decimal(0), fnv1a32("0"));
        for n in [7, 10, 99, 100, 12_345, 1_000_000, 987_654_321] {
            assert_eq!(fnv_decimal(n), fnv1a32(&n.to_string()));
        }
        assert_eq!(fnv_decimal(4_294_967_295), fnv1a32("4294967295"));
        assert_eq!(
            fnv_extend(fnv_extend(FNV_OFFSET, "a€"), "b"),
            fnv1a32("a€b")
        );
    }

    #[test]
    fn the_prepared_assigner_agrees_with_the_reference_path() {
        for version in [1, 2] {
            let e = Experiment {
                key: "exp-ü".into(),
                variations: 3,
                weights: Some(vec![0.5, 0.25, 0.25]),
                coverage: 0.8,
                seed: None,
                hash_version: version,
                namespace: Some(Namespace {
                    id: "ns".into(),
                    start: 0.1,
                    end: 0.9,
                }),
                holdout: None,
            };
            let ranges = bucket_ranges(3, 0.8, Some(&[0.5, 0.25, 0.25]));
            let a = Assigner::new(&e);
            for i in 0..5_000 {
                let unit = if i % 7 == 0 {
                    format!("nutzer-ä-{i}")
                } else {
                    format!("u{i}")
                };
                let reference = if in_namespace(&unit, e.namespace.as_ref().unwrap()) {
                    choose_variation(hash("exp-ü", &unit, version).unwrap(), &ranges)
                } else {
                    None
                };
                assert_eq!(a.assign(&unit), reference, "{unit} v{version}");
            }
        }
    }

    #[test]
    fn a_holdout_keeps_the_same_units_out_of_every_experiment() {
        let holdout = Holdout {
            id: "q4".into(),
            share: 0.1,
        };
        let exp = |key: &str| Experiment {
            key: key.into(),
            variations: 2,
            weights: None,
            coverage: 1.0,
            seed: None,
            hash_version: 2,
            namespace: None,
            holdout: Some(holdout.clone()),
        };
        let (a, b) = (Assigner::new(&exp("one")), Assigner::new(&exp("two")));
        let mut held = 0;
        for i in 0..20_000 {
            let unit = format!("user-{i}");
            let out = in_holdout(&unit, &holdout);
            assert_eq!(a.assign(&unit).is_none(), out);
            assert_eq!(b.assign(&unit).is_none(), out);
            held += usize::from(out);
        }
        assert!((held as f64 / 20_000.0 - 0.1).abs() < 0.01, "{held}");
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
            holdout: None,
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
