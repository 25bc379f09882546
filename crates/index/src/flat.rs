//! Exact search: every live vector is compared with the query. Deletes move the last
//! vector into the freed slot, so memory is given back at once.
//!
//! Useful for: small collections, ground truth, and the filtered searches whose matching
//! set is small. Not useful for: large collections under latency budgets.

use crate::distance::{distance, kernels, prepare, Metric};
use crate::persist::{read_file, write_file, Encoder};
use crate::topk::{Cand, TopK};
use crate::{Hit, IdFilter, IndexError, VectorIndex};
use std::collections::HashMap;
use std::path::Path;

const KIND_FLAT: u32 = 1;
/// Queries answered per pass over the vectors in a batch: their f32 copies (12 KB at 384
/// dimensions) stay in the L1 cache beside the vector being compared.
const QUERY_BLOCK: usize = 8;

/// Exact nearest-neighbour search.
#[derive(Debug, Clone)]
pub struct FlatIndex {
    metric: Metric,
    dim: usize,
    vectors: Vec<f32>,
    ids: Vec<u64>,
    slot_of: HashMap<u64, u32>,
}

impl FlatIndex {
    /// An empty index.
    pub fn new(metric: Metric, dim: usize) -> Self {
        FlatIndex {
            metric,
            dim,
            vectors: Vec::new(),
            ids: Vec::new(),
            slot_of: HashMap::new(),
        }
    }

    /// Writes the index to `path` atomically (write new, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<(), IndexError> {
        let mut e = Encoder::default();
        e.u32(self.metric.code());
        e.u64(self.dim as u64);
        e.f32s(&self.vectors);
        e.u64s(&self.ids);
        write_file(path, KIND_FLAT, &e.buf)
    }

    /// Opens an index written by [`FlatIndex::save`].
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        read_file(path, KIND_FLAT, |d, _| {
            let metric = Metric::from_code(d.u32()?)?;
            let dim = usize::try_from(d.u64()?).map_err(|_| IndexError::Corrupt("dim".into()))?;
            let vectors = d.f32s()?;
            let ids = d.u64s()?;
            if dim == 0 || vectors.len() != ids.len() * dim {
                return Err(IndexError::Corrupt("section sizes disagree".into()));
            }
            let slot_of = ids
                .iter()
                .enumerate()
                .map(|(i, &id)| (id, i as u32))
                .collect();
            Ok(FlatIndex {
                metric,
                dim,
                vectors,
                ids,
                slot_of,
            })
        })
    }

    /// Exact search for a block of prepared queries in one pass over the vectors: each
    /// stored vector is read from memory once and compared with every query of the block
    /// while it is in the L1 cache, so the pass is bound by arithmetic, not bandwidth.
    fn search_block(&self, queries: &[Vec<f32>], k: usize) -> Vec<Vec<Hit>> {
        let kern = kernels();
        let mut tops: Vec<TopK> = queries.iter().map(|_| TopK::new(k)).collect();
        for (slot, v) in self.vectors.chunks_exact(self.dim).enumerate() {
            for (q, top) in queries.iter().zip(&mut tops) {
                top.push(Cand {
                    dist: distance(&kern, self.metric, v, q),
                    node: slot as u32,
                });
            }
        }
        tops.into_iter().map(|top| self.hits(top)).collect()
    }

    fn hits(&self, top: TopK) -> Vec<Hit> {
        top.into_sorted()
            .into_iter()
            .map(|c| Hit {
                id: self.ids[c.node as usize],
                distance: c.dist,
            })
            .collect()
    }

    /// Bytes held per live vector (vector, id and map entry).
    pub fn bytes_per_vector(&self) -> f64 {
        (self.dim * 4 + 8 + 16) as f64
    }
}

impl VectorIndex for FlatIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn upsert(&mut self, id: u64, vector: &[f32]) -> Result<(), IndexError> {
        let v = prepare(self.metric, vector, self.dim)?;
        match self.slot_of.get(&id) {
            Some(&slot) => {
                let s = slot as usize * self.dim;
                self.vectors[s..s + self.dim].copy_from_slice(&v);
            }
            None => {
                let slot = u32::try_from(self.ids.len()).map_err(|_| IndexError::Full)?;
                self.vectors.extend_from_slice(&v);
                self.ids.push(id);
                self.slot_of.insert(id, slot);
            }
        }
        Ok(())
    }

    fn remove(&mut self, id: u64) -> bool {
        let Some(slot) = self.slot_of.remove(&id) else {
            return false;
        };
        let slot = slot as usize;
        let last = self.ids.len() - 1;
        if slot != last {
            let (d, moved) = (self.dim, self.ids[last]);
            self.vectors.copy_within(last * d..(last + 1) * d, slot * d);
            self.ids[slot] = moved;
            self.slot_of.insert(moved, slot as u32);
        }
        self.ids.pop();
        self.vectors.truncate(last * self.dim);
        self.vectors.shrink_to_fit();
        true
    }

    fn search(
        &self,
        query: &[f32],
        k: usize,
        _ef: usize,
        filter: Option<&dyn IdFilter>,
    ) -> Result<Vec<Hit>, IndexError> {
        let q = prepare(self.metric, query, self.dim)?;
        let kern = kernels();
        let mut top = TopK::new(k);
        for (slot, (&id, v)) in self
            .ids
            .iter()
            .zip(self.vectors.chunks_exact(self.dim))
            .enumerate()
        {
            if filter.is_some_and(|f| !f.matches(id)) {
                continue;
            }
            top.push(Cand {
                dist: distance(&kern, self.metric, v, &q),
                node: slot as u32,
            });
        }
        Ok(self.hits(top))
    }

    fn search_batch(
        &self,
        queries: &[&[f32]],
        k: usize,
        _ef: usize,
        threads: usize,
    ) -> Result<Vec<Vec<Hit>>, IndexError> {
        let prepared = queries
            .iter()
            .map(|q| prepare(self.metric, q, self.dim))
            .collect::<Result<Vec<_>, _>>()?;
        let blocks: Vec<&[Vec<f32>]> = prepared.chunks(QUERY_BLOCK).collect();
        let answers = crate::on_threads(&blocks, threads, |part| {
            Ok(part
                .iter()
                .map(|block| self.search_block(block, k))
                .collect())
        })?;
        Ok(answers.into_iter().flatten().collect())
    }
}
