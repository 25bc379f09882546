//! Hierarchical navigable small-world graphs (Malkov & Yashunin 2018).
//!
//! Layout for the hot path: vectors in one contiguous array; layer-0 adjacency in one
//! flat array of fixed-size slots (`[count, n₁ … n_M0]` per node), upper layers (about
//! 1/M of the nodes) in small vectors held in a side map by node. Neighbours are chosen
//! with the paper's diversity heuristic. Visited sets are epoch-stamped arrays reused
//! across searches.
//!
//! Filters are applied while the graph is walked: nodes that fail the predicate are still
//! used to navigate but never enter the result set. When a sample says the predicate
//! matches few vectors (below `exact_below`, or fewer than a walk would cost), the search
//! switches to exact search over the matching ones.
//!
//! Deletes tombstone a node: it keeps routing but is never returned.
//!
//! Useful for: large collections, high recall at low latency. Not useful for: tiny
//! collections (use [`crate::FlatIndex`]).

use crate::distance::{distance, kernels, prepare, Kernels, Metric, QueryCode, QueryCode8};
use crate::persist::{read_file, write_file, Decoder, Encoder};
use crate::slots::SlotTable;
use crate::topk::{Cand, TopK};
use crate::{set_bits, Hit, IdFilter, IndexError, VectorIndex};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Lock stripes guarding link-list writes during a parallel build.
const STRIPES: usize = 1024;
/// A filtered walk looks through failing neighbours (two hops) below this share of
/// matching vectors; above it, a one-hop walk scores every neighbour and keeps
/// `ef · selectivity · FILTERED_BREADTH` matching nodes (at least k).
const TWO_HOP_BELOW: f64 = 0.05;
/// See [`TWO_HOP_BELOW`]: at 1 a filtered walk reaches about as many nodes as an
/// unfiltered walk at the same `ef` and costs about as much, but keeps fewer results
/// than it: on real all-MiniLM-L6-v2 vectors (20,000, ef 64) its recall at 25 % / 50 %
/// matching was 0.956 / 0.980 where the unfiltered walk has 0.982. At 1.5: 0.991 at
/// 50 % (25 % turns exact at that size); at 200,000 synthetic vectors 0.9997 / 1.0 at
/// 25 % / 50 % for p95 1.25× / 1.30× the unfiltered walk's (was 1.0–1.1×).
const FILTERED_BREADTH: f64 = 1.5;
/// An int8 search re-scores this many candidates per hit asked for.
const RESCORE_PER_HIT: usize = 3;
/// Exact search over the matches is chosen while they number fewer than this many per
/// node of breadth a filtered walk would reach (see `exact_is_cheaper`).
const EXACT_PER_WALK_NODE: f64 = 70.0;
/// Vectors (codes) being loaded ahead of the one scored in a walk.
const PREFETCH_AHEAD: usize = 4;
/// An f32 index links a batch of at least this many vectors on int8 codes made for it...
const CODED_BATCH: usize = 1_000;
/// ...when the stored vectors it must code too number at most this many per batch vector:
/// coding a vector costs under a microsecond, linking one on codes instead of f32 saves
/// ~180 µs at 200,000 × 384, so at this bound coding stays a small part of the gain — a
/// small batch into a large index keeps linking on f32 rather than code it all.
const CODED_BATCH_SHARE: usize = 64;
/// Largest `m` accepted (layer 0 keeps `2m` links).
const MAX_M: usize = 32;

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The entry point and the top layer, changed together.
#[derive(Debug, Clone, Copy, Default)]
struct Top {
    entry: Option<u32>,
    max_level: usize,
}

const KIND_HNSW: u32 = 2;

/// Build parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HnswParams {
    /// Links per node on upper layers; layer 0 keeps twice as many.
    pub m: usize,
    /// Search breadth while inserting.
    pub ef_construction: usize,
    /// Seed of the level generator, so builds are reproducible.
    pub seed: u64,
    /// Below this estimated share of matching vectors, a filtered search is exact
    /// (whatever the cost rule says, up to `exact_max_matches`): walks below about 8 %
    /// lose recall as the graph grows — at 1,000,000 vectors and 5 % matching a one-hop
    /// walk found 0.88 of the true top 10 and a two-hop walk 0.80, and holding two or
    /// three times more matching nodes only reached 0.90–0.91 for 2–3× the time — where
    /// exact search is exact at the cost of reading the matches' codes.
    pub exact_below: f64,
    /// A filtered search is exact when its expected matches cost less to scan than a
    /// filtered walk costs (see the search), and never above this many matches.
    pub exact_max_matches: usize,
    /// Walk the graph on int8 codes (a quarter of the memory traffic) and re-score the
    /// candidates with the full-precision vectors.
    pub int8: bool,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 200,
            seed: 0x5eed,
            exact_below: 0.08,
            exact_max_matches: usize::MAX,
            int8: false,
        }
    }
}

/// Visited marks: one byte per node (a fifth of a megabyte at 200,000 nodes, so the
/// checks stay in the L2 cache), cleared once every 255 searches.
struct Visited {
    marks: Vec<u8>,
    epoch: u8,
}

impl Visited {
    fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.epoch = 1;
        }
    }

    /// Marks a node; returns whether it was new.
    #[inline]
    fn insert(&mut self, node: u32) -> bool {
        let m = &mut self.marks[node as usize];
        if *m == self.epoch {
            false
        } else {
            *m = self.epoch;
            true
        }
    }
}

/// Links copied out of the graph.
struct Links {
    buf: [u32; 2 * MAX_M],
    len: usize,
}

impl Links {
    fn empty() -> Self {
        Links {
            buf: [0; 2 * MAX_M],
            len: 0,
        }
    }
}

impl std::ops::Deref for Links {
    type Target = [u32];
    fn deref(&self) -> &[u32] {
        &self.buf[..self.len]
    }
}

/// A section of `f32`s inside a mapped index file.
struct MappedF32 {
    map: Arc<memmap2::Mmap>,
    /// Byte offset (a multiple of 4: the format aligns it).
    start: usize,
    len: usize,
}

/// Full-precision vectors: on the heap while an index is built or changed; inside the
/// memory-mapped file once an int8 index is opened, where only re-scoring reads them —
/// the page cache keeps what is read, the process's own memory holds none of it.
#[derive(Default)]
struct FullVectors {
    heap: Vec<f32>,
    mapped: Option<MappedF32>,
}

impl FullVectors {
    #[inline]
    fn as_slice(&self) -> &[f32] {
        match &self.mapped {
            // Alignment and length were checked when the file was opened.
            Some(m) => {
                bytemuck::try_cast_slice(&m.map[m.start..m.start + m.len * 4]).unwrap_or(&[])
            }
            None => &self.heap,
        }
    }

    /// The vectors on the heap, copied out of the mapping first when they are mapped (the
    /// first change to an opened int8 index).
    fn heap_mut(&mut self) -> &mut Vec<f32> {
        if self.mapped.is_some() {
            self.heap = self.as_slice().to_vec();
            self.mapped = None;
        }
        &mut self.heap
    }

    fn mapped_bytes(&self) -> usize {
        self.mapped.as_ref().map_or(0, |m| m.len * 4)
    }
}

/// The links on the layers above 0, of the nodes that have any (about 1 in m): kept
/// aside in a map so the other nodes cost nothing for them (a pointer per node was 8
/// bytes of the 550 an int8 node held). Written only while nodes are staged (`&mut`),
/// so parallel insertions only read the map; the lists change under their own lock.
#[derive(Default)]
struct UpperLayers {
    lists: hashbrown::HashMap<u32, Mutex<Vec<Vec<u32>>>>,
}

impl UpperLayers {
    /// A node's lists (layer 1 first), if it lives above layer 0.
    #[inline]
    fn get(&self, node: u32) -> Option<&Mutex<Vec<Vec<u32>>>> {
        self.lists.get(&node)
    }

    /// Stores a node's lists (nothing for a node on layer 0 only).
    fn insert(&mut self, node: u32, lists: Vec<Vec<u32>>) {
        if !lists.is_empty() {
            self.lists.insert(node, Mutex::new(lists));
        }
    }

    /// Heap bytes: the map's table (entries and control bytes) and every list.
    fn allocated_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(u32, Mutex<Vec<Vec<u32>>>)>() + 1;
        self.lists.capacity() * entry
            + self
                .lists
                .values()
                .map(|l| {
                    locked(l)
                        .iter()
                        .map(|v| v.capacity() * 4 + 24)
                        .sum::<usize>()
                })
                .sum::<usize>()
    }
}

/// An HNSW index.
pub struct HnswIndex {
    metric: Metric,
    dim: usize,
    params: HnswParams,
    m0: usize,
    vectors: FullVectors,
    /// int8 codes, per-vector scale and (L2 only) squared norm of the decoded vector
    /// (int8 mode, and an f32 index while a batch is linked: see `upsert_batch`).
    codes: Vec<i8>,
    code_scale: Vec<f32>,
    code_norm: Vec<f32>,
    ids: Vec<u64>,
    slot_of: SlotTable,
    deleted: Vec<bool>,
    live: usize,
    levels: Vec<u8>,
    /// `[count, n₁ … n_M0]` per node; atomics so a parallel build can write links while
    /// other threads read them (a reader sees an old or a new list, both valid).
    layer0: Vec<AtomicU32>,
    upper: UpperLayers,
    top: Mutex<Top>,
    /// Held for the whole insertion of a node that raises the top layer.
    level_up: Mutex<()>,
    stripes: Vec<Mutex<()>>,
    rng: u64,
    scratch: Mutex<Vec<Visited>>,
    /// An f32 index linking a batch on codes made for the batch (dropped after it).
    batch_on_codes: bool,
}

impl HnswIndex {
    /// An empty index.
    pub fn new(metric: Metric, dim: usize, params: HnswParams) -> Self {
        let m = params.m.clamp(2, MAX_M);
        HnswIndex {
            metric,
            dim,
            params: HnswParams { m, ..params },
            m0: 2 * m,
            vectors: FullVectors::default(),
            codes: Vec::new(),
            code_scale: Vec::new(),
            code_norm: Vec::new(),
            ids: Vec::new(),
            slot_of: SlotTable::default(),
            deleted: Vec::new(),
            live: 0,
            levels: Vec::new(),
            layer0: Vec::new(),
            upper: UpperLayers::default(),
            top: Mutex::new(Top::default()),
            level_up: Mutex::new(()),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            rng: params.seed ^ 0x9e37_79b9_7f4a_7c15,
            scratch: Mutex::new(Vec::new()),
            batch_on_codes: false,
        }
    }

    /// Bytes of the index file mapped per stored node and served from the page cache
    /// instead of the heap: the full-precision vectors of an opened int8 index, else 0.
    pub fn mapped_bytes_per_vector(&self) -> f64 {
        self.vectors.mapped_bytes() as f64 / self.ids.len().max(1) as f64
    }

    /// Heap bytes held per stored node: vector (unless mapped), int8 code, links, id,
    /// level and map entry.
    pub fn bytes_per_vector(&self) -> f64 {
        let n = self.ids.len().max(1) as f64;
        let upper = self.upper.allocated_bytes();
        (self.vectors.heap.capacity() * 4
            + self.codes.capacity()
            + self.code_scale.capacity() * 4
            + self.code_norm.capacity() * 4
            + self.layer0.capacity() * 4
            + upper
            + self.ids.capacity() * 8
            + self.deleted.capacity()
            + self.levels.capacity()
            + self.slot_of.allocated_bytes()) as f64
            / n
    }

    #[inline]
    fn vector(&self, node: u32) -> &[f32] {
        let s = node as usize * self.dim;
        &self.vectors.as_slice()[s..s + self.dim]
    }

    fn top(&self) -> Top {
        *locked(&self.top)
    }

    /// A node's links on a layer, copied out (layer 0 without locking).
    #[inline]
    fn neighbors(&self, node: u32, level: usize) -> Links {
        let mut out = Links::empty();
        self.neighbors_into(node, level, &mut out);
        out
    }

    /// Copies a node's links into `out`, reusing its buffer (the search loop calls this
    /// once per expanded node, so the buffer is not re-initialised each time).
    #[inline]
    fn neighbors_into(&self, node: u32, level: usize, out: &mut Links) {
        out.len = 0;
        if level == 0 {
            let s = node as usize * (self.m0 + 1);
            let count = (self.layer0[s].load(Ordering::Acquire) as usize).min(self.m0);
            for (slot, cell) in out.buf[..count]
                .iter_mut()
                .zip(&self.layer0[s + 1..s + 1 + count])
            {
                *slot = cell.load(Ordering::Relaxed);
            }
            out.len = count;
        } else {
            if let Some(lists) = self.upper.get(node) {
                if let Some(list) = locked(lists).get(level - 1) {
                    let n = list.len().min(out.buf.len());
                    out.buf[..n].copy_from_slice(&list[..n]);
                    out.len = n;
                }
            }
        }
    }

    fn set_neighbors(&self, node: u32, level: usize, list: &[u32]) {
        if level == 0 {
            let s = node as usize * (self.m0 + 1);
            let n = list.len().min(self.m0);
            // Shrink the count first so no reader sees a slot while it is rewritten.
            let old = self.layer0[s].load(Ordering::Relaxed) as usize;
            self.layer0[s].store(n.min(old) as u32, Ordering::Release);
            for (cell, &x) in self.layer0[s + 1..s + 1 + n].iter().zip(list) {
                cell.store(x, Ordering::Relaxed);
            }
            self.layer0[s].store(n as u32, Ordering::Release);
        } else if let Some(lists) = self.upper.get(node) {
            if let Some(l) = locked(lists).get_mut(level - 1) {
                *l = list.to_vec();
            }
        }
    }

    fn random_level(&mut self) -> usize {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let u = ((r >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let ml = 1.0 / (self.params.m as f64).ln();
        ((-u.ln() * ml) as usize).min(30)
    }

    fn take_visited(&self) -> Visited {
        let mut pool = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        let mut v = pool.pop().unwrap_or(Visited {
            marks: Vec::new(),
            epoch: 0,
        });
        drop(pool);
        v.reset(self.ids.len());
        v
    }

    fn give_visited(&self, v: Visited) {
        self.scratch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(v);
    }

    #[inline]
    fn exact_dist(&self, k: &Kernels, q: &[f32], node: u32) -> f32 {
        distance(k, self.metric, self.vector(node), q)
    }

    /// Distance from a query to a node's int8 code.
    #[inline]
    fn code_dist(&self, k: &Kernels, q: &QueryCode, q_norm: f32, node: u32) -> f32 {
        let s = node as usize * self.dim;
        let dot = self.code_scale[node as usize]
            * q.scale
            * (k.dot_q16)(&q.values, &self.codes[s..s + self.dim]) as f32;
        self.code_distance(dot, q_norm, node)
    }

    /// The distance under the metric from a query's dot product with a node's code.
    #[inline]
    fn code_distance(&self, dot: f32, q_norm: f32, node: u32) -> f32 {
        match self.metric {
            Metric::Cosine => 1.0 - dot,
            Metric::Dot => -dot,
            Metric::L2 => q_norm - 2.0 * dot + self.code_norm[node as usize],
        }
    }

    fn greedy(&self, dist: &impl Fn(u32) -> f32, mut ep: Cand, level: usize) -> Cand {
        loop {
            let mut changed = false;
            for &nb in self.neighbors(ep.node, level).iter() {
                let d = dist(nb);
                if d < ep.dist {
                    ep = Cand { dist: d, node: nb };
                    changed = true;
                }
            }
            if !changed {
                return ep;
            }
        }
    }

    /// Best-first search of one layer. Only nodes for which `accept` holds enter the
    /// result set; all nodes route. Returns up to `ef` accepted nodes, closest first.
    #[allow(clippy::too_many_arguments)]
    fn search_layer(
        &self,
        dist: &impl Fn(u32) -> f32,
        on_codes: bool,
        two_hop: bool,
        eps: &[Cand],
        ef: usize,
        level: usize,
        visited: &mut Visited,
        accept: &impl Fn(u32) -> bool,
    ) -> Vec<Cand> {
        let mut candidates: BinaryHeap<Reverse<Cand>> = BinaryHeap::with_capacity(ef * 2);
        let mut results = TopK::new(ef);
        for &ep in eps {
            if visited.insert(ep.node) {
                candidates.push(Reverse(ep));
                if accept(ep.node) {
                    results.push(ep);
                }
            }
        }
        let (base, bytes) = if on_codes {
            (self.codes.as_ptr() as *const u8, self.dim)
        } else {
            (self.vectors.as_slice().as_ptr() as *const u8, self.dim * 4)
        };
        let lines = bytes.div_ceil(64).min(8);
        // an int8 distance also reads the node's scale, kept apart from the codes
        let scales = on_codes.then_some(self.code_scale.as_ptr());
        let (links_base, stride) = (self.layer0.as_ptr() as *const u8, (self.m0 + 1) * 4);
        let mut nbs = Links::empty();
        let mut hop = Links::empty();
        let mut batch = Links::empty();
        let mut failing = Links::empty();
        while let Some(Reverse(c)) = candidates.pop() {
            if c.dist > results.bound() {
                break;
            }
            // the next node to expand is most likely the best one left: its links load
            // while this one's neighbours are scored
            if let Some(Reverse(next)) = candidates.peek() {
                if level == 0 {
                    crate::raw::prefetch(links_base.wrapping_add(next.node as usize * stride), 3);
                }
            }
            self.neighbors_into(c.node, level, &mut nbs);
            // Two-hop walk: start loading every unvisited neighbour's code before the
            // first distance, a failing neighbour's links instead (they are read, its
            // code is not). Other walks load a few ahead of the one scored (below).
            if two_hop {
                for &nb in nbs.iter() {
                    if visited.marks[nb as usize] != visited.epoch {
                        if level == 0 && !accept(nb) {
                            let links = links_base.wrapping_add(nb as usize * stride);
                            crate::raw::prefetch(links, 3);
                        } else {
                            crate::raw::prefetch(base.wrapping_add(nb as usize * bytes), lines);
                        }
                    }
                }
            }
            // The nodes to score, gathered first: in a two-hop walk the codes of those
            // found two hops away load while the rest are gathered.
            batch.len = 0;
            if two_hop {
                // Filtered walk (ACORN-1 with a budget): score the neighbours that pass;
                // while fewer than an unfiltered expansion would score were found, look
                // through the failing ones at their own neighbours that pass, so the walk
                // stays among the matching nodes without losing the graph's reach.
                let mut budget = self.m0;
                failing.len = 0;
                for &nb in nbs.iter() {
                    if visited.marks[nb as usize] == visited.epoch {
                        continue;
                    }
                    if !accept(nb) {
                        failing.buf[failing.len] = nb;
                        failing.len += 1;
                    } else if budget > 0 {
                        visited.insert(nb);
                        budget -= 1;
                        batch.buf[batch.len] = nb;
                        batch.len += 1;
                    }
                }
                for &nb in failing.iter() {
                    if budget == 0 {
                        break;
                    }
                    visited.insert(nb);
                    self.neighbors_into(nb, level, &mut hop);
                    for &nb2 in hop.iter() {
                        if budget == 0 {
                            break;
                        }
                        if !accept(nb2) || !visited.insert(nb2) {
                            continue;
                        }
                        budget -= 1;
                        crate::raw::prefetch(base.wrapping_add(nb2 as usize * bytes), lines);
                        batch.buf[batch.len] = nb2;
                        batch.len += 1;
                    }
                }
            } else {
                for &nb in nbs.iter() {
                    if visited.insert(nb) {
                        batch.buf[batch.len] = nb;
                        batch.len += 1;
                    }
                }
            }
            // A few loads in flight ahead of the distance being computed: enough to
            // hide latency without flooding the line-fill buffers (loading all 2M
            // neighbours at once was 12–22 % slower at 200k).
            if !two_hop {
                for &nb in batch.iter().take(PREFETCH_AHEAD) {
                    crate::raw::prefetch(base.wrapping_add(nb as usize * bytes), lines);
                    if let Some(scales) = scales {
                        crate::raw::prefetch(scales.wrapping_add(nb as usize), 1);
                    }
                }
            }
            for (i, &nb) in batch.iter().enumerate() {
                if !two_hop {
                    if let Some(&next) = batch.get(i + PREFETCH_AHEAD) {
                        crate::raw::prefetch(base.wrapping_add(next as usize * bytes), lines);
                        if let Some(scales) = scales {
                            crate::raw::prefetch(scales.wrapping_add(next as usize), 1);
                        }
                    }
                }
                let d = dist(nb);
                if d < results.bound() || results.len() < ef {
                    let cand = Cand { dist: d, node: nb };
                    candidates.push(Reverse(cand));
                    // two-hop batches hold passing nodes only
                    if two_hop || accept(nb) {
                        results.push(cand);
                    }
                }
            }
        }
        results.into_sorted()
    }

    /// The distance between two stored nodes, as links are chosen: between their int8
    /// codes in an int8 index (a quarter of the memory traffic; the codes' error is far
    /// below the gaps the heuristic compares), else between the vectors.
    #[inline]
    fn pair_dist(&self, k: &Kernels, a: u32, b: u32) -> f32 {
        if !self.links_on_codes() {
            return distance(k, self.metric, self.vector(a), self.vector(b));
        }
        let (sa, sb) = (a as usize * self.dim, b as usize * self.dim);
        let dot = self.code_scale[a as usize]
            * self.code_scale[b as usize]
            * (k.dot_i8_i8)(
                &self.codes[sa..sa + self.dim],
                &self.codes[sb..sb + self.dim],
            ) as f32;
        match self.metric {
            Metric::Cosine => 1.0 - dot,
            Metric::Dot => -dot,
            Metric::L2 => self.code_norm[a as usize] + self.code_norm[b as usize] - 2.0 * dot,
        }
    }

    /// The best `max` links of `base` among `pool`, by the diversity heuristic.
    fn prune(&self, k: &Kernels, base: u32, pool: &[u32], max: usize) -> Vec<u32> {
        let mut cands: Vec<Cand> = pool
            .iter()
            .map(|&x| Cand {
                dist: self.pair_dist(k, x, base),
                node: x,
            })
            .collect();
        cands.sort();
        self.select(k, &cands, max)
    }

    /// The diversity heuristic: keep a candidate only if it is closer to the base than
    /// to every neighbour kept so far.
    fn select(&self, k: &Kernels, sorted: &[Cand], max: usize) -> Vec<u32> {
        let mut kept: Vec<Cand> = Vec::with_capacity(max);
        for &c in sorted {
            if kept.len() >= max {
                break;
            }
            if kept
                .iter()
                .all(|r| self.pair_dist(k, c.node, r.node) > c.dist)
            {
                kept.push(c);
            }
        }
        kept.into_iter().map(|c| c.node).collect()
    }

    /// Links a prepared node into the graph. Takes `&self`: several threads may insert
    /// different nodes at once; link lists are written under striped locks.
    fn insert_node(&self, node: u32) {
        let k = kernels();
        let level = self.levels[node as usize] as usize;
        let q = self.vector(node);
        // A node that raises the top layer is inserted alone (as hnswlib does).
        let mut raise_guard = None;
        let mut top = self.top();
        if top.entry.is_none() || level > top.max_level {
            raise_guard = Some(locked(&self.level_up));
            top = self.top();
            if top.entry.is_none() {
                *locked(&self.top) = Top {
                    entry: Some(node),
                    max_level: level,
                };
                return;
            }
        }
        let Some(entry) = top.entry else {
            return;
        };
        // An int8 index walks on the codes (a quarter of the memory traffic) and chooses
        // links on code distances too (`pair_dist`): its build never reads f32 vectors.
        let int8 = self.links_on_codes();
        let coded = int8.then(|| (QueryCode::new(q), crate::distance::dot_scalar(q, q)));
        let dist = |n: u32| match &coded {
            Some((qc, q_norm)) => self.code_dist(&k, qc, *q_norm, n),
            None => distance(&k, self.metric, self.vector(n), q),
        };
        let mut ep = Cand {
            dist: dist(entry),
            node: entry,
        };
        for lc in (level + 1..=top.max_level).rev() {
            ep = self.greedy(&dist, ep, lc);
        }
        let mut eps = vec![ep];
        let mut visited = self.take_visited();
        for lc in (0..=level.min(top.max_level)).rev() {
            visited.reset(self.ids.len());
            let found = self.search_layer(
                &dist,
                int8,
                false,
                &eps,
                self.params.ef_construction,
                lc,
                &mut visited,
                &|_| true,
            );
            let max = if lc == 0 { self.m0 } else { self.params.m };
            let chosen = self.select(&k, &found, self.params.m);
            {
                let _g = locked(&self.stripes[node as usize % STRIPES]);
                // Another thread may already have linked itself to this node (a back-link
                // written while this node was still searching): keep those links, or a
                // node whose only incoming link came that way becomes unreachable.
                let earlier: Vec<u32> = self.neighbors(node, lc).to_vec();
                let mut list = chosen.clone();
                for e in earlier {
                    if !list.contains(&e) {
                        list.push(e);
                    }
                }
                if list.len() > max {
                    list = self.prune(&k, node, &list, max);
                }
                self.set_neighbors(node, lc, &list);
            }
            for &nb in &chosen {
                let _g = locked(&self.stripes[nb as usize % STRIPES]);
                let mut list: Vec<u32> = self.neighbors(nb, lc).to_vec();
                if list.contains(&node) {
                    continue;
                }
                list.push(node);
                if list.len() > max {
                    list = self.prune(&k, nb, &list, max);
                }
                self.set_neighbors(nb, lc, &list);
            }
            eps = found;
        }
        self.give_visited(visited);
        if raise_guard.is_some() {
            let mut t = locked(&self.top);
            if level > t.max_level {
                *t = Top {
                    entry: Some(node),
                    max_level: level,
                };
            }
        }
    }

    /// Stores a prepared vector as a new, not yet linked node.
    fn stage(&mut self, id: u64, v: &[f32]) -> Result<u32, IndexError> {
        let node = u32::try_from(self.ids.len()).map_err(|_| IndexError::Full)?;
        let level = self.random_level();
        self.vectors.heap_mut().extend_from_slice(v);
        if self.links_on_codes() {
            self.encode(v);
        }
        self.ids.push(id);
        self.deleted.push(false);
        self.levels.push(level as u8);
        self.layer0
            .extend((0..self.m0 + 1).map(|_| AtomicU32::new(0)));
        self.upper.insert(node, vec![Vec::new(); level]);
        self.slot_of.insert(id, node, &self.ids);
        self.live += 1;
        Ok(node)
    }

    /// Whether insertions walk and choose links on int8 codes: always in an int8 index,
    /// and in an f32 index while it links a batch.
    #[inline]
    fn links_on_codes(&self) -> bool {
        self.params.int8 || self.batch_on_codes
    }

    /// Inserts or replaces many vectors, linking them on `threads` threads at once.
    /// The graph is the same kind a sequential build makes; which neighbours each node
    /// gets depends on the interleaving, so builds with more than one thread are not
    /// bit-for-bit reproducible. An f32 index links a batch of `CODED_BATCH` or more (and
    /// at least 1/64 of what it stores) on int8 codes made for the batch and dropped
    /// after it, as an int8 index always does
    /// (a quarter of the memory traffic per distance; the graph finds what an f32-linked
    /// one finds — see `bench ann`): its searches stay on the f32 vectors.
    pub fn upsert_batch(
        &mut self,
        items: &[(u64, &[f32])],
        threads: usize,
    ) -> Result<(), IndexError> {
        let prepared = items
            .iter()
            .map(|(id, v)| prepare(self.metric, v, self.dim).map(|p| (*id, p)))
            .collect::<Result<Vec<_>, _>>()?;
        for (id, _) in &prepared {
            self.remove(*id);
        }
        if self.tombstones() * 4 > self.ids.len() && self.ids.len() >= 64 {
            self.compact();
        }
        // Coding the batch means coding the stored vectors too (new nodes link to them):
        // only where that is bounded by the batch's own size.
        if !self.params.int8
            && prepared.len() >= CODED_BATCH
            && prepared.len() * CODED_BATCH_SHARE >= self.ids.len()
        {
            self.encode_stored();
            self.batch_on_codes = true;
        }
        let first = self.ids.len() as u32;
        let staged = prepared
            .iter()
            .try_for_each(|(id, v)| self.stage(*id, v).map(|_| ()));
        if let Err(e) = staged {
            self.drop_batch_codes();
            return Err(e);
        }
        let end = self.ids.len() as u32;
        let next = AtomicUsize::new(first as usize);
        let this = &*self;
        std::thread::scope(|s| {
            for _ in 0..threads.max(1) {
                s.spawn(|| loop {
                    let node = next.fetch_add(1, Ordering::Relaxed);
                    if node >= end as usize {
                        break;
                    }
                    this.insert_node(node as u32);
                });
            }
        });
        self.drop_batch_codes();
        Ok(())
    }

    /// Gives back the codes an f32 index made for a batch.
    fn drop_batch_codes(&mut self) {
        if self.batch_on_codes {
            self.batch_on_codes = false;
            self.codes = Vec::new();
            self.code_scale = Vec::new();
            self.code_norm = Vec::new();
        }
    }

    /// Appends the int8 code of a vector: per-vector symmetric scale, rounded.
    fn encode(&mut self, v: &[f32]) {
        encode_into(
            self.metric,
            v,
            &mut self.codes,
            &mut self.code_scale,
            &mut self.code_norm,
        );
    }

    /// Makes the codes of every stored vector (unless they are all there).
    fn encode_stored(&mut self) {
        if self.code_scale.len() == self.ids.len() {
            return;
        }
        self.codes.clear();
        self.code_scale.clear();
        self.code_norm.clear();
        self.codes.reserve(self.ids.len() * self.dim);
        for v in self.vectors.as_slice().chunks_exact(self.dim) {
            encode_into(
                self.metric,
                v,
                &mut self.codes,
                &mut self.code_scale,
                &mut self.code_norm,
            );
        }
    }

    /// Switches int8 traversal (with full-precision re-scoring) on or off; switching on
    /// encodes the vectors already stored.
    pub fn set_int8(&mut self, on: bool) {
        if on {
            self.encode_stored();
        }
        self.params.int8 = on;
    }

    /// Tombstoned nodes still held.
    pub fn tombstones(&self) -> usize {
        self.ids.len() - self.live
    }

    /// Removes tombstoned nodes for good: every live node that linked to one is re-linked
    /// (its own live neighbours plus the dead node's live neighbours, pruned with the
    /// diversity heuristic), then storage is renumbered and shrunk, giving memory back.
    /// No rebuild: cost is proportional to the links touched.
    pub fn compact(&mut self) {
        if self.tombstones() == 0 {
            self.shrink_to_fit();
            return;
        }
        let k = kernels();
        let n = self.ids.len();
        // 1. repair links around deleted nodes, layer by layer
        for node in 0..n as u32 {
            if self.deleted[node as usize] {
                continue;
            }
            for level in 0..=self.levels[node as usize] as usize {
                let list = self.neighbors(node, level);
                if list.iter().all(|&x| !self.deleted[x as usize]) {
                    continue;
                }
                let mut pool: Vec<u32> = Vec::new();
                for &x in list.iter() {
                    if !self.deleted[x as usize] {
                        pool.push(x);
                    } else {
                        pool.extend(
                            self.neighbors(x, level)
                                .iter()
                                .filter(|&&y| y != node && !self.deleted[y as usize]),
                        );
                    }
                }
                pool.sort_unstable();
                pool.dedup();
                let max = if level == 0 { self.m0 } else { self.params.m };
                let chosen = self.prune(&k, node, &pool, max);
                self.set_neighbors(node, level, &chosen);
            }
        }
        // 2. renumber the live nodes and shrink every array
        let mut new_of = vec![u32::MAX; n];
        let mut next = 0u32;
        for (old, dead) in self.deleted.iter().enumerate() {
            if !dead {
                new_of[old] = next;
                next += 1;
            }
        }
        let live_n = next as usize;
        let (dim, stride) = (self.dim, self.m0 + 1);
        let mut vectors = Vec::with_capacity(live_n * dim);
        let mut codes = Vec::with_capacity(if self.codes.is_empty() {
            0
        } else {
            live_n * dim
        });
        let (mut scale, mut norm) = (Vec::new(), Vec::new());
        let mut ids = Vec::with_capacity(live_n);
        let mut levels = Vec::with_capacity(live_n);
        let mut layer0: Vec<AtomicU32> = (0..live_n * stride).map(|_| AtomicU32::new(0)).collect();
        let mut upper = UpperLayers::default();
        for old in 0..n {
            let new = new_of[old];
            if new == u32::MAX {
                continue;
            }
            vectors.extend_from_slice(&self.vectors.as_slice()[old * dim..(old + 1) * dim]);
            if !self.code_scale.is_empty() {
                codes.extend_from_slice(&self.codes[old * dim..(old + 1) * dim]);
                scale.push(self.code_scale[old]);
                if let Some(&x) = self.code_norm.get(old) {
                    norm.push(x);
                }
            }
            ids.push(self.ids[old]);
            levels.push(self.levels[old]);
            let remap = |list: &[u32]| -> Vec<u32> {
                list.iter()
                    .map(|&x| new_of[x as usize])
                    .filter(|&x| x != u32::MAX)
                    .collect()
            };
            let l0 = remap(&self.neighbors(old as u32, 0));
            let s = new as usize * stride;
            layer0[s] = AtomicU32::new(l0.len() as u32);
            for (cell, &x) in layer0[s + 1..s + 1 + l0.len()].iter_mut().zip(&l0) {
                *cell = AtomicU32::new(x);
            }
            let lists: Vec<Vec<u32>> = self
                .upper
                .get(old as u32)
                .map(|l| locked(l).iter().map(|l| remap(l)).collect())
                .unwrap_or_default();
            upper.insert(new, lists);
        }
        // 3. a live entry point on the top layer
        let entry = self
            .top()
            .entry
            .map(|e| new_of[e as usize])
            .filter(|&e| e != u32::MAX)
            .filter(|&e| {
                let top_level = levels.iter().copied().max().unwrap_or(0);
                levels[e as usize] == top_level
            })
            .or_else(|| (0..live_n).max_by_key(|&i| levels[i]).map(|i| i as u32));
        *locked(&self.top) = Top {
            entry,
            max_level: entry.map_or(0, |e| levels[e as usize] as usize),
        };
        self.vectors = FullVectors {
            heap: vectors,
            mapped: None,
        };
        self.codes = codes;
        self.code_scale = scale;
        self.code_norm = norm;
        self.ids = ids;
        self.levels = levels;
        self.layer0 = layer0;
        self.upper = upper;
        self.deleted = vec![false; live_n];
        self.slot_of = SlotTable::build(&self.ids, |_| true);
        self.live = live_n;
        self.scratch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Releases spare capacity left by growth, so memory matches the stored nodes.
    pub fn shrink_to_fit(&mut self) {
        self.vectors.heap.shrink_to_fit();
        self.codes.shrink_to_fit();
        self.code_scale.shrink_to_fit();
        self.code_norm.shrink_to_fit();
        self.ids.shrink_to_fit();
        self.deleted.shrink_to_fit();
        self.levels.shrink_to_fit();
        self.layer0.shrink_to_fit();
        self.upper.lists.shrink_to_fit();
        self.slot_of.shrink_to_fit(&self.ids);
    }

    /// Writes the index to `path` atomically (write new, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<(), IndexError> {
        let mut e = Encoder::default();
        e.u32(self.metric.code());
        e.u64(self.dim as u64);
        e.u64(self.params.m as u64);
        e.u64(self.params.ef_construction as u64);
        e.u64(self.params.seed);
        e.f64(self.params.exact_below);
        e.u64(self.params.exact_max_matches as u64);
        e.u8(u8::from(self.params.int8));
        let top = self.top();
        e.u64(top.entry.map_or(u64::MAX, u64::from));
        e.u64(top.max_level as u64);
        e.u64(self.rng);
        e.align4();
        e.f32s(self.vectors.as_slice());
        e.u64s(&self.ids);
        e.bytes(
            &self
                .deleted
                .iter()
                .map(|&d| u8::from(d))
                .collect::<Vec<_>>(),
        );
        e.bytes(&self.levels);
        let layer0: Vec<u32> = self
            .layer0
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        e.u32s(&layer0);
        for lists in (0..self.ids.len() as u32).filter_map(|node| self.upper.get(node)) {
            for list in locked(lists).iter() {
                e.u32s(list);
            }
        }
        e.bytes(&self.codes.iter().map(|&c| c as u8).collect::<Vec<_>>());
        e.f32s(&self.code_scale);
        e.f32s(&self.code_norm);
        write_file(path, KIND_HNSW, &e.buf)
    }

    /// Opens an index written by [`HnswIndex::save`], without rebuilding the graph.
    /// A damaged file, or one of another format version, is refused.
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        read_file(path, KIND_HNSW, Self::decode)
    }

    fn decode(d: &mut Decoder<'_>, map: &Arc<memmap2::Mmap>) -> Result<Self, IndexError> {
        let bad = |what: &str| IndexError::Corrupt(what.to_owned());
        let metric = Metric::from_code(d.u32()?)?;
        let dim = usize::try_from(d.u64()?).map_err(|_| bad("dim"))?;
        let m = usize::try_from(d.u64()?).map_err(|_| bad("m"))?;
        let ef_construction = usize::try_from(d.u64()?).map_err(|_| bad("ef"))?;
        let params = HnswParams {
            m,
            ef_construction,
            seed: d.u64()?,
            exact_below: d.f64()?,
            exact_max_matches: usize::try_from(d.u64()?).unwrap_or(usize::MAX),
            int8: d.u8()? != 0,
        };
        let mut index = HnswIndex::new(metric, dim, params);
        if index.params.m != m || dim == 0 {
            return Err(bad("parameters"));
        }
        let entry = d.u64()?;
        let max_level = usize::try_from(d.u64()?).map_err(|_| bad("level"))?;
        index.rng = d.u64()?;
        d.align4()?;
        let (start, len) = d.f32s_span()?;
        let mapped = MappedF32 {
            map: map.clone(),
            start,
            len,
        };
        // An int8 index walks its codes and reads full vectors only to re-score: those
        // stay in the file. An f32 index walks the vectors themselves: on the heap.
        let in_place = FullVectors {
            heap: Vec::new(),
            mapped: Some(mapped),
        };
        if start % 4 != 0 || in_place.as_slice().len() != len {
            return Err(bad("vectors are not aligned"));
        }
        index.vectors = if params.int8 && cfg!(target_endian = "little") {
            in_place
        } else {
            FullVectors {
                heap: map[start..start + len * 4]
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                mapped: None,
            }
        };
        index.ids = d.u64s()?;
        let n = index.ids.len();
        index.deleted = d.bytes()?.into_iter().map(|b| b != 0).collect();
        index.levels = d.bytes()?;
        let layer0 = d.u32s()?;
        if index.vectors.as_slice().len() != n * dim
            || index.deleted.len() != n
            || index.levels.len() != n
            || layer0.len() != n * (index.m0 + 1)
        {
            return Err(bad("section sizes disagree"));
        }
        let entry = match entry {
            u64::MAX => None,
            e => Some(
                u32::try_from(e)
                    .ok()
                    .filter(|&e| (e as usize) < n)
                    .ok_or_else(|| bad("entry"))?,
            ),
        };
        if entry.is_some_and(|e| index.levels[e as usize] as usize != max_level) {
            return Err(bad("entry point is not on the top layer"));
        }
        *locked(&index.top) = Top { entry, max_level };
        let mut upper = Vec::with_capacity(n);
        for node in 0..n {
            let mut lists = Vec::with_capacity(index.levels[node] as usize);
            for _ in 0..index.levels[node] {
                lists.push(d.u32s()?);
            }
            upper.push(lists);
        }
        // every link must point at a stored node
        let links_ok = (0..n).all(|node| {
            let s = node * (index.m0 + 1);
            let count = layer0[s] as usize;
            count <= index.m0
                && layer0[s + 1..s + 1 + count]
                    .iter()
                    .all(|&x| (x as usize) < n)
        }) && upper
            .iter()
            .all(|ls| ls.iter().all(|l| l.iter().all(|&x| (x as usize) < n)));
        if !links_ok {
            return Err(bad("link to a node that does not exist"));
        }
        index.layer0 = layer0.into_iter().map(AtomicU32::new).collect();
        for (node, lists) in upper.into_iter().enumerate() {
            index.upper.insert(node as u32, lists);
        }
        index.codes = d.bytes()?.into_iter().map(|b| b as i8).collect();
        index.code_scale = d.f32s()?;
        index.code_norm = d.f32s()?;
        let norms = if metric == Metric::L2 { n } else { 0 };
        if !index.code_scale.is_empty()
            && (index.code_scale.len() != n
                || index.codes.len() != n * dim
                || index.code_norm.len() != norms)
        {
            return Err(bad("int8 sections"));
        }
        index.slot_of = SlotTable::build(&index.ids, |node| !index.deleted[node]);
        index.live = index.slot_of.len();
        Ok(index)
    }

    /// Greedy descent through the upper layers to the entry point of layer 0.
    fn descend(&self, dist: &impl Fn(u32) -> f32, entry: u32, max_level: usize) -> Cand {
        let mut ep = Cand {
            dist: dist(entry),
            node: entry,
        };
        for lc in (1..=max_level).rev() {
            ep = self.greedy(dist, ep, lc);
        }
        ep
    }

    fn estimate_selectivity(&self, filter: &dyn IdFilter) -> f64 {
        let n = self.ids.len();
        if n == 0 {
            return 0.0;
        }
        let samples = 512.min(n);
        let step = n as f64 / samples as f64;
        let hits = (0..samples)
            .map(|i| (i as f64 * step) as usize)
            .filter(|&s| !self.deleted[s] && filter.matches(self.ids[s]))
            .count();
        hits as f64 / samples as f64
    }

    /// Exact search over the live vectors `filter` accepts: a scan of every id, asking
    /// the filter about a block of ids at a time.
    fn exact(&self, k: &Kernels, q: &[f32], top_k: usize, filter: &dyn IdFilter) -> Vec<Cand> {
        const BLOCK: usize = 1024;
        let mut hit = [0u64; BLOCK / 64];
        let mut slots = Vec::new();
        for (b, ids) in self.ids.chunks(BLOCK).enumerate() {
            let (first, end) = (b * BLOCK, b * BLOCK + ids.len());
            filter.matches_block(ids, &mut hit);
            for slot in set_bits(&hit[..ids.len().div_ceil(64)]).map(|j| first + j) {
                if slot < end && !self.deleted[slot] {
                    slots.push(slot as u32);
                }
            }
        }
        self.exact_among(k, q, top_k, &slots)
    }
}

impl VectorIndex for HnswIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.live
    }

    fn upsert(&mut self, id: u64, vector: &[f32]) -> Result<(), IndexError> {
        let v = prepare(self.metric, vector, self.dim)?;
        self.remove(id);
        // Keep tombstones under a quarter of the nodes: memory stays near a fresh build's.
        if self.tombstones() * 4 > self.ids.len() && self.ids.len() >= 64 {
            self.compact();
        }
        let node = self.stage(id, &v)?;
        self.insert_node(node);
        Ok(())
    }

    fn remove(&mut self, id: u64) -> bool {
        match self.slot_of.remove(id, &self.ids) {
            Some(node) => {
                self.deleted[node as usize] = true;
                self.live -= 1;
                true
            }
            None => false,
        }
    }

    fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&dyn IdFilter>,
    ) -> Result<Vec<Hit>, IndexError> {
        let Some((q, kern, top, entry)) = self.start_search(query, k)? else {
            return Ok(Vec::new());
        };
        let selectivity = filter.map_or(1.0, |f| self.estimate_selectivity(f));
        let found = match filter {
            // Exact search when few vectors match: by share, or when scanning the
            // matches costs less than a filtered walk (`exact_is_cheaper`).
            Some(f) if self.exact_is_cheaper(selectivity, k, ef) => self.exact(&kern, &q, k, f),
            _ => {
                let accept = |node: u32| {
                    !self.deleted[node as usize]
                        && filter.is_none_or(|f| f.matches(self.ids[node as usize]))
                };
                let found = self.walk(&kern, &q, k, ef, entry, top, selectivity, &accept);
                match filter {
                    // The walk stayed in a neighbourhood with too few matching nodes (a
                    // sparse graph, few matches): never return a short page for that.
                    Some(f) if found.len() < k => self.exact(&kern, &q, k, f),
                    _ => found,
                }
            }
        };
        Ok(self.hits(found, k))
    }

    fn search_among(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        ids: &[u64],
    ) -> Result<Vec<Hit>, IndexError> {
        let Some(search) = self.start_among(query, k, ef)? else {
            return Ok(Vec::new());
        };
        // A long list (an eighth of the nodes or more) while ids are small (a dense slot
        // table) walks with a bitset over ids, set in one pass in list order — sequential
        // for a sorted list, where marking slots would land at random; the list's length
        // bounds the matches from above, and exact search only gets less attractive as
        // they grow: when it wins at the bound, no id bitset is built.
        if let Some(range) = self.slot_of.dense_range() {
            let at_most = ids.len() as f64 / self.live.max(1) as f64;
            if ids.len() * 8 >= self.live && !self.exact_is_cheaper(at_most, k, ef) {
                let mut listed = vec![0u64; range.div_ceil(64)];
                set_id_bits(&mut listed, ids);
                // distinct listed ids the table covers: at least the matching nodes
                let count = listed.iter().map(|w| w.count_ones() as usize).sum();
                if let Some(found) = self.walk_among_id_bits(&search, &listed, count) {
                    return Ok(self.hits(found, k));
                }
            }
        }
        Ok(self.hits(self.among_slots(&search, ids.iter().copied()), k))
    }

    fn search_among_bits(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        words: &[u64],
        count: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        let Some(search) = self.start_among(query, k, ef)? else {
            return Ok(Vec::new());
        };
        if let Some(found) = self.walk_among_id_bits(&search, words, count) {
            return Ok(self.hits(found, k));
        }
        let ids = set_bits(words).map(|b| b as u64);
        Ok(self.hits(self.among_slots(&search, ids), k))
    }
}

/// Appends the int8 code of `v` to `codes` (per-vector symmetric scale, rounded), its
/// scale, and for L2 the decoded code's squared norm (cosine and dot use the product
/// alone).
fn encode_into(
    metric: Metric,
    v: &[f32],
    codes: &mut Vec<i8>,
    scales: &mut Vec<f32>,
    norms: &mut Vec<f32>,
) {
    let max_abs = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let scale = if max_abs > 0.0 { max_abs / 127.0 } else { 1.0 };
    let mut norm = 0.0;
    for x in v {
        let c = (x / scale).round().clamp(-127.0, 127.0);
        norm += c * c;
        codes.push(c as i8);
    }
    scales.push(scale);
    if metric == Metric::L2 {
        norms.push(norm * scale * scale);
    }
}

/// Sets the bit of every id in `ids` (ids beyond `listed` are skipped). Eight ids at a
/// time: when all eight fall in one word — nearly always for a long sorted list — their
/// bits are gathered without a branch and the word is written once; otherwise one by
/// one.
fn set_id_bits(listed: &mut [u64], ids: &[u64]) {
    let mut set = |id: u64, bits: u64| {
        if let Some(word) = usize::try_from(id / 64)
            .ok()
            .and_then(|w| listed.get_mut(w))
        {
            *word |= bits;
        }
    };
    let mut chunks = ids.chunks_exact(8);
    for chunk in &mut chunks {
        let word = chunk[0] / 64;
        if chunk.iter().all(|&id| id / 64 == word) {
            set(
                chunk[0],
                chunk.iter().fold(0, |bits, &id| bits | 1 << (id % 64)),
            );
        } else {
            chunk.iter().for_each(|&id| set(id, 1 << (id % 64)));
        }
    }
    chunks
        .remainder()
        .iter()
        .for_each(|&id| set(id, 1 << (id % 64)));
}

/// A search among known ids: the prepared query and its parameters.
struct Among {
    q: Vec<f32>,
    kern: Kernels,
    k: usize,
    ef: usize,
    top: Top,
    entry: u32,
}

impl HnswIndex {
    /// The search among known ids, or `None` when there is nothing to search.
    fn start_among(&self, query: &[f32], k: usize, ef: usize) -> Result<Option<Among>, IndexError> {
        Ok(self
            .start_search(query, k)?
            .map(|(q, kern, top, entry)| Among {
                q,
                kern,
                k,
                ef,
                top,
                entry,
            }))
    }

    /// A filtered walk accepting the live nodes whose id's bit is set in `listed` (a
    /// bitset over ids, `count` set). `None` when exact search is cheaper or the walk
    /// came back short: the slot path decides then.
    fn walk_among_id_bits(&self, s: &Among, listed: &[u64], count: usize) -> Option<Vec<Cand>> {
        let selectivity = count as f64 / self.live.max(1) as f64;
        if self.exact_is_cheaper(selectivity, s.k, s.ef) {
            return None;
        }
        let accept = |node: u32| {
            let id = self.ids[node as usize];
            !self.deleted[node as usize]
                && listed
                    .get((id / 64) as usize)
                    .is_some_and(|w| w >> (id % 64) & 1 == 1)
        };
        let found = self.walk_among(s, selectivity, &accept);
        (found.len() >= s.k).then_some(found)
    }

    /// The filtered walk of a search among known ids.
    fn walk_among(&self, s: &Among, selectivity: f64, accept: &impl Fn(u32) -> bool) -> Vec<Cand> {
        let (q, kern) = (&s.q, &s.kern);
        self.walk(kern, q, s.k, s.ef, s.entry, s.top, selectivity, accept)
    }

    /// Search among `ids` through their slots: a bitset of slots (set in any order,
    /// duplicates fold, read back in slot order — the order an exact scan wants — without
    /// sorting), then exact over them by the cost rule, else a walk with the bitset as
    /// the filter.
    fn among_slots(&self, s: &Among, ids: impl IntoIterator<Item = u64>) -> Vec<Cand> {
        let mut member = vec![0u64; self.ids.len().div_ceil(64)];
        let matching = self.slot_of.mark(ids, &self.ids, &mut member);
        let selectivity = matching as f64 / self.live.max(1) as f64;
        let exact = || {
            let mut slots = Vec::with_capacity(matching);
            slots.extend(set_bits(&member).map(|s| s as u32));
            self.exact_among(&s.kern, &s.q, s.k, &slots)
        };
        if self.exact_is_cheaper(selectivity, s.k, s.ef) {
            return exact();
        }
        let accept = |node: u32| member[node as usize / 64] >> (node % 64) & 1 == 1;
        let found = self.walk_among(s, selectivity, &accept);
        // as in `search`: no short page when more matching nodes exist
        if found.len() < s.k.min(matching) {
            exact()
        } else {
            found
        }
    }

    /// The prepared query, kernels, top layer and entry point, or `None` when there is
    /// nothing to search (an empty index or `k` = 0).
    #[allow(clippy::type_complexity)]
    fn start_search(
        &self,
        query: &[f32],
        k: usize,
    ) -> Result<Option<(Vec<f32>, Kernels, Top, u32)>, IndexError> {
        let q = prepare(self.metric, query, self.dim)?;
        let top = self.top();
        Ok(match top.entry {
            Some(entry) if k > 0 => Some((q, kernels(), top, entry)),
            _ => None,
        })
    }

    /// Whether exact search over the matching vectors beats a filtered walk: by share
    /// (`exact_below`), or by cost — a walk holding its matches reaches about
    /// `max(k / selectivity, ef)` nodes of the whole graph, scoring some 14
    /// vectors per node at random addresses, while an exact scan reads the matches'
    /// codes ahead in order at about a fifth of the cost per vector (both measured at
    /// 200,000 × 384) — capped by `exact_max_matches`. The same rule serves a predicate
    /// (whose exact path also scans every id; kept, since its walks below 10 % lose
    /// recall) and a list of ids.
    fn exact_is_cheaper(&self, selectivity: f64, k: usize, ef: usize) -> bool {
        let matches = selectivity * self.live as f64;
        let breadth = (k as f64 / selectivity.max(f64::MIN_POSITIVE))
            .max(FILTERED_BREADTH * ef.max(k) as f64);
        selectivity < self.params.exact_below
            || (matches < self.params.exact_max_matches as f64
                && matches < EXACT_PER_WALK_NODE * breadth)
    }

    /// Hits from candidates.
    fn hits(&self, found: Vec<Cand>, k: usize) -> Vec<Hit> {
        found
            .into_iter()
            .take(k)
            .map(|c| Hit {
                id: self.ids[c.node as usize],
                distance: c.dist,
            })
            .collect()
    }

    /// Exact search over known slots: on int8 codes (then re-scored) for an int8 index.
    fn exact_among(&self, k: &Kernels, q: &[f32], top_k: usize, slots: &[u32]) -> Vec<Cand> {
        // The slots are scattered: load a few ahead so the scan is bound by bandwidth,
        // not by one memory latency per vector.
        const AHEAD: usize = 8;
        if !self.params.int8 {
            let base = self.vectors.as_slice().as_ptr();
            let mut top = TopK::new(top_k);
            for (i, &s) in slots.iter().enumerate() {
                if let Some(&next) = slots.get(i + AHEAD) {
                    crate::raw::prefetch(base.wrapping_add(next as usize * self.dim), 8);
                }
                top.push(Cand {
                    dist: self.exact_dist(k, q, s),
                    node: s,
                });
            }
            return top.into_sorted();
        }
        // Codes scored a block of slots per kernel call (the kernel overlaps several
        // rows and loads ahead), against the query rounded to int8 like them.
        const BLOCK: usize = 256;
        let q_norm = crate::distance::dot_scalar(q, q);
        let qc = QueryCode8::new(q);
        let mut dots = [0i32; BLOCK];
        // only the best `RESCORE_PER_HIT · k` by code distance are re-scored
        let mut top = TopK::new(RESCORE_PER_HIT * top_k.max(1));
        for block in slots.chunks(BLOCK) {
            (k.dots_i8_rows)(&qc.values, &self.codes, block, &mut dots);
            for (&s, &dot) in block.iter().zip(&dots) {
                let dot = self.code_scale[s as usize] * qc.scale * dot as f32;
                top.push(Cand {
                    dist: self.code_distance(dot, q_norm, s),
                    node: s,
                });
            }
        }
        let mut found = top.into_sorted();
        self.rescore(k, q, &mut found, top_k);
        found
    }

    /// Keeps the best `RESCORE_PER_HIT · k` candidates by code distance and replaces
    /// their distances by full-precision ones, re-sorted. The code distances are close
    /// enough that the true top k sit far inside that margin (recall at 200,000 vectors
    /// is the same as re-scoring all `ef`). The vectors are scattered (and, in an opened
    /// index, in the mapped file): a few are loading ahead of the one being scored.
    fn rescore(&self, k: &Kernels, q: &[f32], found: &mut Vec<Cand>, top_k: usize) {
        found.truncate(RESCORE_PER_HIT * top_k.max(1));
        const AHEAD: usize = 4;
        let base = self.vectors.as_slice().as_ptr();
        let lines = (self.dim * 4).div_ceil(64);
        for c in found.iter().take(AHEAD) {
            crate::raw::prefetch(base.wrapping_add(c.node as usize * self.dim), lines);
        }
        for i in 0..found.len() {
            if let Some(next) = found.get(i + AHEAD) {
                crate::raw::prefetch(base.wrapping_add(next.node as usize * self.dim), lines);
            }
            found[i].dist = self.exact_dist(k, q, found[i].node);
        }
        found.sort();
    }

    /// The graph walk of layer 0 from the entry point, accepting nodes for which
    /// `accept` holds.
    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        kern: &Kernels,
        q: &[f32],
        k: usize,
        ef: usize,
        entry: u32,
        top: Top,
        selectivity: f64,
        accept: &impl Fn(u32) -> bool,
    ) -> Vec<Cand> {
        // With few vectors matching, walk the matching nodes two hops at a time instead
        // of computing distances for the others.
        let two_hop = selectivity < TWO_HOP_BELOW;
        // A one-hop filtered walk holding `ef` matching nodes reaches as far as an
        // unfiltered walk holding ef / selectivity: keep its breadth in the whole graph
        // near the unfiltered walk's instead (its recall stays near the unfiltered
        // walk's: 0.996–0.999 vs 0.999 at 200,000 vectors, 0.945 vs 0.956 at 1,000,000).
        let ef = if two_hop || selectivity >= 1.0 {
            ef
        } else {
            ((ef as f64 * selectivity * FILTERED_BREADTH).ceil() as usize).max(k)
        };
        let mut visited = self.take_visited();
        let found = if self.params.int8 {
            let q_norm = crate::distance::dot_scalar(q, q);
            let qc = QueryCode::new(q);
            let dist = |n: u32| self.code_dist(kern, &qc, q_norm, n);
            let ep = self.descend(&dist, entry, top.max_level);
            let mut found = self.search_layer(
                &dist,
                true,
                two_hop,
                &[ep],
                ef.max(k),
                0,
                &mut visited,
                accept,
            );
            self.rescore(kern, q, &mut found, k);
            found
        } else {
            let dist = |n: u32| self.exact_dist(kern, q, n);
            let ep = self.descend(&dist, entry, top.max_level);
            self.search_layer(
                &dist,
                false,
                two_hop,
                &[ep],
                ef.max(k),
                0,
                &mut visited,
                accept,
            )
        };
        self.give_visited(visited);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The eight-at-a-time fast path sets exactly the bits one-by-one setting would,
        /// for sorted and shuffled lists, runs that cross words, duplicates and ids past
        /// the end.
        #[test]
        fn id_bits_are_set_as_one_at_a_time(
            mut ids in proptest::collection::vec(0u64..700, 0..300),
            sorted in any::<bool>(),
            far in proptest::collection::vec(640u64..u64::MAX, 0..4),
        ) {
            if sorted {
                ids.sort_unstable();
            }
            ids.extend(far);
            let mut got = vec![0u64; 10];
            set_id_bits(&mut got, &ids);
            let mut want = vec![0u64; 10];
            for &id in ids.iter().filter(|&&id| id < 640) {
                want[(id / 64) as usize] |= 1 << (id % 64);
            }
            prop_assert_eq!(got, want);
        }
    }
}
