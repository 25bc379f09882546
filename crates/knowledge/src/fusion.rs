//! Combining ranked lists and diversifying them: reciprocal rank fusion, weighted score
//! fusion and maximal marginal relevance. Pure functions over ids and scores.

use std::collections::HashMap;

/// How keyword and vector results are combined.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Fusion {
    /// Reciprocal rank fusion: `Σ weight / (k + rank)`, ranks from 1.
    Rrf {
        /// Rank constant (60 in the original paper).
        k: f32,
        /// Weight of the vector list; the keyword list gets `1 − vector_weight`.
        vector_weight: f32,
    },
    /// Min–max normalised scores, mixed: `w · vector + (1 − w) · keyword`.
    Weighted {
        /// Weight of the vector score.
        vector_weight: f32,
    },
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion::Rrf {
            k: 60.0,
            vector_weight: 0.5,
        }
    }
}

/// Fuses two lists of `(id, score)`, each best first (higher score is better), into
/// one list best first.
pub fn fuse(keyword: &[(u64, f32)], vector: &[(u64, f32)], fusion: Fusion) -> Vec<(u64, f32)> {
    let mut scores: HashMap<u64, f32> = HashMap::new();
    match fusion {
        Fusion::Rrf { k, vector_weight } => {
            for (list, w) in [(keyword, 1.0 - vector_weight), (vector, vector_weight)] {
                for (rank, (id, _)) in list.iter().enumerate() {
                    *scores.entry(*id).or_default() += w / (k + rank as f32 + 1.0);
                }
            }
        }
        Fusion::Weighted { vector_weight } => {
            for (list, w) in [(keyword, 1.0 - vector_weight), (vector, vector_weight)] {
                let max = list.iter().map(|x| x.1).fold(f32::NEG_INFINITY, f32::max);
                let min = list.iter().map(|x| x.1).fold(f32::INFINITY, f32::min);
                let span = (max - min).max(f32::EPSILON);
                for (id, s) in list {
                    *scores.entry(*id).or_default() += w * (s - min) / span;
                }
            }
        }
    }
    let mut out: Vec<(u64, f32)> = scores.into_iter().collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// Maximal marginal relevance: picks `k` of `candidates` (best first, with their
/// relevance and unit vectors), each maximising
/// `λ · relevance − (1 − λ) · max similarity to those already picked`. Relevance is
/// min–max normalised first so λ means the same for every scoring method.
pub fn mmr(candidates: &[(u64, f32, Vec<f32>)], k: usize, lambda: f32) -> Vec<(u64, f32)> {
    if candidates.is_empty() {
        return Vec::new();
    }
    let max = candidates
        .iter()
        .map(|c| c.1)
        .fold(f32::NEG_INFINITY, f32::max);
    let min = candidates.iter().map(|c| c.1).fold(f32::INFINITY, f32::min);
    let span = (max - min).max(f32::EPSILON);
    let relevance: Vec<f32> = candidates.iter().map(|c| (c.1 - min) / span).collect();
    let mut chosen: Vec<usize> = Vec::with_capacity(k);
    let mut redundancy = vec![f32::NEG_INFINITY; candidates.len()];
    let mut used = vec![false; candidates.len()];
    while chosen.len() < k.min(candidates.len()) {
        let mut best = None;
        let mut best_score = f32::NEG_INFINITY;
        for i in 0..candidates.len() {
            if used[i] {
                continue;
            }
            let penalty = if chosen.is_empty() {
                0.0
            } else {
                redundancy[i]
            };
            let score = lambda * relevance[i] - (1.0 - lambda) * penalty;
            if score > best_score {
                best_score = score;
                best = Some(i);
            }
        }
        let Some(pick) = best else { break };
        used[pick] = true;
        chosen.push(pick);
        for i in 0..candidates.len() {
            if !used[i] {
                let sim: f32 = candidates[i]
                    .2
                    .iter()
                    .zip(&candidates[pick].2)
                    .map(|(a, b)| a * b)
                    .sum();
                redundancy[i] = redundancy[i].max(sim);
            }
        }
    }
    chosen
        .into_iter()
        .map(|i| (candidates[i].0, candidates[i].1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrf_rewards_agreement_between_lists() {
        let keyword = [(1, 9.0), (2, 8.0), (3, 7.0)];
        let vector = [(3, 0.9), (4, 0.8), (1, 0.7)];
        let fused = fuse(&keyword, &vector, Fusion::default());
        // 1 is first and third, 3 is third and first: they tie ahead of the singletons.
        assert_eq!(fused[0].1, fused[1].1);
        let top: Vec<u64> = fused.iter().take(2).map(|x| x.0).collect();
        assert!(top.contains(&1) && top.contains(&3));
        assert_eq!(fused.len(), 4);
        let expected = 0.5 / 61.0 + 0.5 / 63.0;
        assert!((fused[0].1 - expected).abs() < 1e-7);
    }

    #[test]
    fn weighted_fusion_with_all_weight_on_vectors_keeps_the_vector_order() {
        let keyword = [(1, 9.0), (2, 8.0)];
        let vector = [(3, 0.9), (2, 0.5), (1, 0.1)];
        let fused = fuse(&keyword, &vector, Fusion::Weighted { vector_weight: 1.0 });
        assert_eq!(
            fused.iter().map(|x| x.0).take(3).collect::<Vec<_>>(),
            vec![3, 2, 1]
        );
    }

    #[test]
    fn mmr_skips_near_duplicates() {
        let a = vec![1.0, 0.0];
        let a2 = vec![0.999, 0.0447];
        let b = vec![0.0, 1.0];
        let candidates = vec![(1, 1.0, a), (2, 0.95, a2), (3, 0.6, b)];
        let picked: Vec<u64> = mmr(&candidates, 2, 0.5).into_iter().map(|x| x.0).collect();
        assert_eq!(picked, vec![1, 3]);
        // λ = 1 is plain relevance order.
        let plain: Vec<u64> = mmr(&candidates, 3, 1.0).into_iter().map(|x| x.0).collect();
        assert_eq!(plain, vec![1, 2, 3]);
    }
}
