//! Vector search engines of our own: exact flat search, HNSW and IVF-Flat, for cosine, dot-product
//! and L2 distance, with metadata filters applied inside the search (never post-filtering
//! that returns empty pages) and deletes by tombstone.
//!
//! **Invariant:** this crate is pure: vectors and predicates in, ids and distances out.
//! **Invariant:** the only `unsafe` is in `raw`, and every kernel there is tested against
//! its scalar twin.

pub mod distance;
mod flat;
mod hnsw;
mod ivf;
pub mod meta;
pub mod persist;
mod raw;
mod slots;
mod topk;

pub use distance::Metric;
pub use flat::FlatIndex;
pub use hnsw::{HnswIndex, HnswParams};
pub use ivf::IvfFlatIndex;
pub use meta::{Attributes, Condition, Matches, MetaFilter, MetadataIndex};

/// An index error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// A vector has the wrong number of dimensions.
    #[error("vector has {got} dimensions; this index takes {expected}")]
    Dimension {
        /// Given.
        got: usize,
        /// Expected.
        expected: usize,
    },
    /// A vector holds NaN or infinity, or is all zeros under cosine distance.
    #[error("vector must be finite (and non-zero for cosine distance)")]
    InvalidVector,
    /// The index is full (u32 internal ids).
    #[error("index is full")]
    Full,
    /// A file could not be read or written.
    #[error("index file: {0}")]
    Io(String),
    /// A file is damaged or not an index file.
    #[error("index file is corrupt: {0}")]
    Corrupt(String),
    /// A file was written by another format version.
    #[error("index file has format version {0}; this build reads version {current}", current = persist::FORMAT_VERSION)]
    Version(u32),
}

/// One search hit: the caller's id and its distance (smaller is closer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// The id given at insertion.
    pub id: u64,
    /// Distance to the query under the index's metric.
    pub distance: f32,
}

/// A filter over ids. Every `Fn(u64) -> bool` is one. Searches ask about single ids
/// (`matches`); an HNSW search that turns exact asks about every stored id, a block at a
/// time (`matches_block`): one dynamic call per block, the filter's own code inlined in a
/// loop over the ids — a filter over columns of metadata can answer a block in one
/// vectorised pass. (Flat and IVF scans compute a distance per id anyway and ask singly.)
pub trait IdFilter {
    /// Whether `id` matches.
    fn matches(&self, id: u64) -> bool;
    /// Writes which of `ids` match as bits: bit `j % 64` of `out[j / 64]` for `ids[j]`
    /// (`out` holds `ids.len().div_ceil(64)` words; each is overwritten, bits past the
    /// last id are ignored).
    fn matches_block(&self, ids: &[u64], out: &mut [u64]) {
        for (word, chunk) in out.iter_mut().zip(ids.chunks(64)) {
            let mut bits = 0u64;
            for (j, &id) in chunk.iter().enumerate() {
                bits |= u64::from(self.matches(id)) << j;
            }
            *word = bits;
        }
    }
}

impl<F: Fn(u64) -> bool> IdFilter for F {
    #[inline]
    fn matches(&self, id: u64) -> bool {
        self(id)
    }
}

/// What every engine offers, so a knowledge base can choose one per collection.
pub trait VectorIndex: Send + Sync {
    /// Number of dimensions.
    fn dim(&self) -> usize;
    /// Live vectors.
    fn len(&self) -> usize;
    /// Whether there are no live vectors.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Inserts or replaces the vector of `id`.
    fn upsert(&mut self, id: u64, vector: &[f32]) -> Result<(), IndexError>;
    /// Removes `id`; returns whether it was present.
    fn remove(&mut self, id: u64) -> bool;
    /// The `k` nearest live vectors for which `filter` holds (all when `None`), closest
    /// first. `ef` is the engine's search breadth (ignored by exact search).
    fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&dyn IdFilter>,
    ) -> Result<Vec<Hit>, IndexError>;
    /// The `k` nearest live vectors to each of several queries (unfiltered), closest
    /// first, answered on up to `threads` threads. Exact search overrides it to answer a
    /// block of queries per pass over the vectors.
    fn search_batch(
        &self,
        queries: &[&[f32]],
        k: usize,
        ef: usize,
        threads: usize,
    ) -> Result<Vec<Vec<Hit>>, IndexError> {
        on_threads(queries, threads, |part| {
            part.iter().map(|q| self.search(q, k, ef, None)).collect()
        })
    }
    /// The `k` nearest live vectors among `ids` — a filter whose matches are already
    /// known, as a metadata index gives them — closest first. Costs grow with the number
    /// of ids, not with the size of the index, where the engine supports it; ids not in
    /// the index are ignored.
    fn search_among(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        ids: &[u64],
    ) -> Result<Vec<Hit>, IndexError> {
        let set: std::collections::HashSet<u64> = ids.iter().copied().collect();
        self.search(query, k, ef, Some(&|id: u64| set.contains(&id)))
    }
    /// As [`VectorIndex::search_among`], the ids given as a bitset over ids (bit
    /// `id % 64` of `words[id / 64]`) holding `count` ids, as a metadata index keeps a
    /// dense posting: no list is built where the engine supports it.
    fn search_among_bits(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        words: &[u64],
        count: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        let mut ids = Vec::with_capacity(count);
        ids.extend(set_bits(words).map(|b| b as u64));
        self.search_among(query, k, ef, &ids)
    }
}

/// The positions of the set bits of `words`, ascending (bit j of word w is 64·w + j).
pub(crate) fn set_bits(words: &[u64]) -> impl Iterator<Item = usize> + '_ {
    words.iter().enumerate().flat_map(|(w, &word)| {
        let mut bits = word;
        std::iter::from_fn(move || {
            (bits != 0).then(|| {
                let j = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                w * 64 + j
            })
        })
    })
}

/// Splits `items` into up to `threads` contiguous parts, runs `work` on each part on its
/// own thread, and joins the answers in order.
pub(crate) fn on_threads<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    work: impl Fn(&[T]) -> Result<Vec<R>, IndexError> + Sync,
) -> Result<Vec<R>, IndexError> {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return work(items);
    }
    let per = items.len().div_ceil(threads);
    let work = &work;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(per)
            .map(|part| s.spawn(move || work(part)))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            let part = h
                .join()
                .map_err(|_| IndexError::Io("a search thread failed".into()))??;
            out.extend(part);
        }
        Ok(out)
    })
}
