//! Ordered candidates for the searches: a total order on distances and bounded heaps.

use std::cmp::Ordering;

/// A candidate: distance and internal id, ordered by distance then id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cand {
    pub dist: f32,
    pub node: u32,
}

impl Eq for Cand {}

impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Cand {
    fn cmp(&self, other: &Self) -> Ordering {
        self.dist
            .total_cmp(&other.dist)
            .then(self.node.cmp(&other.node))
    }
}

/// Keeps the `k` smallest candidates seen.
pub(crate) struct TopK {
    k: usize,
    heap: std::collections::BinaryHeap<Cand>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: std::collections::BinaryHeap::with_capacity(k + 1),
        }
    }

    /// The current k-th distance (infinite until k are held).
    #[inline]
    pub fn bound(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::INFINITY
        } else {
            self.heap.peek().map_or(f32::INFINITY, |c| c.dist)
        }
    }

    #[inline]
    pub fn push(&mut self, c: Cand) {
        if self.k == 0 {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(c);
        } else if let Some(top) = self.heap.peek() {
            if c < *top {
                self.heap.pop();
                self.heap.push(c);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Closest first.
    pub fn into_sorted(self) -> Vec<Cand> {
        self.heap.into_sorted_vec()
    }
}
