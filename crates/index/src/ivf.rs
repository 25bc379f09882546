//! IVF-Flat: k-means partitions the space into `nlist` cells; a vector lives in its
//! nearest cell's list, stored contiguously; a search scans the `nprobe` cells nearest to
//! the query. Deletes swap the last vector of a list into the freed place.
//!
//! Useful for: large collections with cheap, predictable builds and memory close to the
//! raw vectors. Not useful for: the highest recall at low latency (HNSW is better).

use crate::distance::{distance, kernels, prepare, Metric};
use crate::topk::{Cand, TopK};
use crate::{Hit, IdFilter, IndexError, VectorIndex};
use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
struct List {
    ids: Vec<u64>,
    vectors: Vec<f32>,
}

/// An inverted-file index with flat (uncompressed) lists.
#[derive(Debug, Clone)]
pub struct IvfFlatIndex {
    metric: Metric,
    dim: usize,
    centroids: Vec<f32>,
    lists: Vec<List>,
    place: HashMap<u64, (u32, u32)>,
}

impl IvfFlatIndex {
    /// Trains `nlist` centroids with k-means (k-means++ seeding, `iterations` Lloyd
    /// rounds) on `sample`, which must hold at least `nlist` valid vectors.
    pub fn train(
        metric: Metric,
        dim: usize,
        nlist: usize,
        sample: &[Vec<f32>],
        iterations: usize,
        seed: u64,
    ) -> Result<Self, IndexError> {
        let points = sample
            .iter()
            .map(|v| prepare(metric, v, dim))
            .collect::<Result<Vec<_>, _>>()?;
        if nlist == 0 || points.len() < nlist {
            return Err(IndexError::Corrupt(format!(
                "training needs at least nlist = {nlist} vectors, got {}",
                points.len()
            )));
        }
        let k = kernels();
        // L2 assignment for training; for cosine and dot the centroids are normalised
        // (spherical k-means), which ranks cells like the metric does.
        let d2 = |a: &[f32], b: &[f32]| (k.l2)(a, b);
        let mut rng = seed | 1;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut centroids: Vec<f32> = Vec::with_capacity(nlist * dim);
        centroids
            .extend_from_slice(&points[(next() * points.len() as f64) as usize % points.len()]);
        let mut nearest: Vec<f32> = points.iter().map(|p| d2(p, &centroids[..dim])).collect();
        while centroids.len() < nlist * dim {
            let total: f64 = nearest.iter().map(|&x| f64::from(x)).sum();
            let mut target = next() * total;
            let mut pick = points.len() - 1;
            for (i, &w) in nearest.iter().enumerate() {
                target -= f64::from(w);
                if target <= 0.0 {
                    pick = i;
                    break;
                }
            }
            let start = centroids.len();
            centroids.extend_from_slice(&points[pick]);
            for (n, p) in nearest.iter_mut().zip(&points) {
                *n = n.min(d2(p, &centroids[start..start + dim]));
            }
        }
        let normalise = metric != Metric::L2;
        for _ in 0..iterations {
            let mut sums = vec![0.0f64; nlist * dim];
            let mut counts = vec![0usize; nlist];
            for p in &points {
                let c = nearest_centroid(&centroids, dim, p, &d2);
                counts[c] += 1;
                for (s, x) in sums[c * dim..(c + 1) * dim].iter_mut().zip(p) {
                    *s += f64::from(*x);
                }
            }
            for c in 0..nlist {
                if counts[c] == 0 {
                    continue; // an empty cell keeps its centroid
                }
                let cell = &mut centroids[c * dim..(c + 1) * dim];
                for (x, s) in cell.iter_mut().zip(&sums[c * dim..(c + 1) * dim]) {
                    *x = (s / counts[c] as f64) as f32;
                }
                if normalise {
                    let norm = cell.iter().map(|x| x * x).sum::<f32>().sqrt();
                    if norm > 0.0 {
                        cell.iter_mut().for_each(|x| *x /= norm);
                    }
                }
            }
        }
        Ok(IvfFlatIndex {
            metric,
            dim,
            centroids,
            lists: vec![List::default(); nlist],
            place: HashMap::new(),
        })
    }

    /// Number of cells.
    pub fn nlist(&self) -> usize {
        self.lists.len()
    }

    fn cell_for(&self, v: &[f32]) -> usize {
        let k = kernels();
        nearest_centroid(&self.centroids, self.dim, v, &|a, b| (k.l2)(a, b))
    }
}

fn nearest_centroid(
    centroids: &[f32],
    dim: usize,
    v: &[f32],
    d2: &impl Fn(&[f32], &[f32]) -> f32,
) -> usize {
    let mut best = (0, f32::INFINITY);
    for (i, c) in centroids.chunks_exact(dim).enumerate() {
        let d = d2(v, c);
        if d < best.1 {
            best = (i, d);
        }
    }
    best.0
}

impl VectorIndex for IvfFlatIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.place.len()
    }

    fn upsert(&mut self, id: u64, vector: &[f32]) -> Result<(), IndexError> {
        let v = prepare(self.metric, vector, self.dim)?;
        self.remove(id);
        let cell = self.cell_for(&v);
        let list = &mut self.lists[cell];
        let pos = u32::try_from(list.ids.len()).map_err(|_| IndexError::Full)?;
        list.ids.push(id);
        list.vectors.extend_from_slice(&v);
        self.place.insert(id, (cell as u32, pos));
        Ok(())
    }

    fn remove(&mut self, id: u64) -> bool {
        let Some((cell, pos)) = self.place.remove(&id) else {
            return false;
        };
        let (d, pos) = (self.dim, pos as usize);
        let list = &mut self.lists[cell as usize];
        let last = list.ids.len() - 1;
        if pos != last {
            let moved = list.ids[last];
            list.ids[pos] = moved;
            list.vectors.copy_within(last * d..(last + 1) * d, pos * d);
            self.place.insert(moved, (cell, pos as u32));
        }
        list.ids.pop();
        list.vectors.truncate(last * d);
        true
    }

    /// `ef` is the number of cells probed (`nprobe`).
    fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&dyn IdFilter>,
    ) -> Result<Vec<Hit>, IndexError> {
        let q = prepare(self.metric, query, self.dim)?;
        let kern = kernels();
        let mut cells: Vec<(f32, usize)> = self
            .centroids
            .chunks_exact(self.dim)
            .enumerate()
            .map(|(i, c)| ((kern.l2)(c, &q), i))
            .collect();
        let nprobe = ef.clamp(1, cells.len());
        cells.select_nth_unstable_by(nprobe - 1, |a, b| a.0.total_cmp(&b.0));
        let mut top = TopK::new(k);
        let mut hits: Vec<(u64, f32)> = Vec::new();
        for &(_, cell) in &cells[..nprobe] {
            let list = &self.lists[cell];
            for (&id, v) in list.ids.iter().zip(list.vectors.chunks_exact(self.dim)) {
                if filter.is_some_and(|f| !f.matches(id)) {
                    continue;
                }
                let d = distance(&kern, self.metric, v, &q);
                if d < top.bound() {
                    top.push(Cand {
                        dist: d,
                        node: hits.len() as u32,
                    });
                    hits.push((id, d));
                }
            }
        }
        Ok(top
            .into_sorted()
            .into_iter()
            .map(|c| Hit {
                id: hits[c.node as usize].0,
                distance: c.dist,
            })
            .collect())
    }
}
