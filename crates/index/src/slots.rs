//! Id → slot lookup that stores only the slot, 4 bytes per entry: the id is read back
//! from the index's own `ids` array instead of being stored a second time (a
//! `HashMap<u64, u32>` spends 16 bytes per entry on the pair).

use hashbrown::HashTable;

/// No slot (dense mode).
const EMPTY: u32 = u32::MAX;
/// Dense mode holds ids below `2 · entries + DENSE_SLACK`.
const DENSE_SLACK: u64 = 1 << 16;

/// The lookup; every call passes the `ids` array its slots index into.
///
/// Ids handed out by a database (row ids, sequences) are small and nearly contiguous:
/// while every id stays below twice the number of entries (plus some slack), the table
/// is a plain array indexed by id — 4 bytes per id and one sequential read per lookup
/// of ascending ids, which is what makes converting a long list of allowed ids into
/// slots cheap. The first id beyond that switches it to a hash table for good.
pub(crate) struct SlotTable {
    dense: Option<Vec<u32>>,
    table: HashTable<u32>,
    entries: usize,
}

impl Default for SlotTable {
    fn default() -> Self {
        SlotTable {
            dense: Some(Vec::new()),
            table: HashTable::new(),
            entries: 0,
        }
    }
}

/// splitmix64's finaliser: ids are often sequential, so they are mixed before hashing.
#[inline]
fn hash(id: u64) -> u64 {
    let mut z = id.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl SlotTable {
    /// Points `id` at `slot` (`ids[slot]` must already be `id`), replacing an older slot.
    pub fn insert(&mut self, id: u64, slot: u32, ids: &[u64]) {
        let limit = 2 * (self.entries as u64 + 1) + DENSE_SLACK;
        if let Some(dense) = &mut self.dense {
            if id < limit {
                let i = id as usize;
                if i >= dense.len() {
                    dense.resize((i + 1).max(dense.len() * 3 / 2), EMPTY);
                }
                if dense[i] == EMPTY {
                    self.entries += 1;
                }
                dense[i] = slot;
                return;
            }
            // an id far beyond the others: hash from now on
            if let Some(dense) = self.dense.take() {
                for (i, &s) in dense.iter().enumerate() {
                    if s != EMPTY {
                        self.table
                            .insert_unique(hash(i as u64), s, |&s| hash(ids[s as usize]));
                    }
                }
            }
        }
        let rehash = |&s: &u32| hash(ids[s as usize]);
        match self.table.find_mut(hash(id), |&s| ids[s as usize] == id) {
            Some(old) => *old = slot,
            None => {
                self.table.insert_unique(hash(id), slot, rehash);
                self.entries += 1;
            }
        }
    }

    /// The slot of `id`.
    #[cfg(test)]
    pub fn get(&self, id: u64, ids: &[u64]) -> Option<u32> {
        match &self.dense {
            Some(dense) => usize::try_from(id)
                .ok()
                .and_then(|i| dense.get(i))
                .copied()
                .filter(|&s| s != EMPTY),
            None => self
                .table
                .find(hash(id), |&s| ids[s as usize] == id)
                .copied(),
        }
    }

    /// Sets the bit of every listed id's slot in `bits` (one bit per slot, all clear on
    /// entry); returns how many bits are set. Ids not in the table are skipped.
    pub fn mark(
        &self,
        list: impl IntoIterator<Item = u64>,
        ids: &[u64],
        bits: &mut [u64],
    ) -> usize {
        let mut mark = |s: u32| {
            if let Some(word) = bits.get_mut(s as usize / 64) {
                *word |= 1u64 << (s % 64);
            }
        };
        match &self.dense {
            Some(dense) => {
                for id in list {
                    let slot = usize::try_from(id).ok().and_then(|i| dense.get(i));
                    match slot {
                        Some(&s) if s != EMPTY => mark(s),
                        _ => {}
                    }
                }
            }
            None => {
                for id in list {
                    if let Some(&s) = self.table.find(hash(id), |&s| ids[s as usize] == id) {
                        mark(s);
                    }
                }
            }
        }
        // counted afterwards: no read-compare per id, and duplicates fold by themselves
        bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The ids a dense table covers (`0..n`), or `None` in hash mode.
    pub fn dense_range(&self) -> Option<usize> {
        self.dense.as_ref().map(Vec::len)
    }

    /// Forgets `id`, returning its slot.
    pub fn remove(&mut self, id: u64, ids: &[u64]) -> Option<u32> {
        let old = match &mut self.dense {
            Some(dense) => usize::try_from(id)
                .ok()
                .and_then(|i| dense.get_mut(i))
                .filter(|s| **s != EMPTY)
                .map(|s| std::mem::replace(s, EMPTY)),
            None => match self.table.find_entry(hash(id), |&s| ids[s as usize] == id) {
                Ok(entry) => Some(entry.remove().0),
                Err(_) => None,
            },
        };
        if old.is_some() {
            self.entries -= 1;
        }
        old
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Bytes allocated: 4 per id in dense mode; else 4 per bucket plus a control byte
    /// (buckets = capacity · 8/7).
    pub fn allocated_bytes(&self) -> usize {
        match &self.dense {
            Some(dense) => dense.capacity() * 4,
            None => self.table.capacity() * 8 / 7 * 5,
        }
    }

    /// Releases spare capacity.
    pub fn shrink_to_fit(&mut self, ids: &[u64]) {
        match &mut self.dense {
            Some(dense) => {
                let used = dense.iter().rposition(|&s| s != EMPTY).map_or(0, |i| i + 1);
                dense.truncate(used);
                dense.shrink_to_fit();
            }
            None => self.table.shrink_to_fit(|&s| hash(ids[s as usize])),
        }
    }

    /// A table of the live slots of `ids`.
    pub fn build(ids: &[u64], live: impl Fn(usize) -> bool) -> SlotTable {
        let mut t = SlotTable::default();
        for (slot, &id) in ids.iter().enumerate() {
            if live(slot) {
                t.insert(id, slot as u32, ids);
            }
        }
        t.shrink_to_fit(ids);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn agrees_with_a_hash_map_under_inserts_replacements_and_removals() {
        // small ids (dense mode throughout), then ids that force the switch to hashing
        for spread in [1u64, 1 << 40] {
            agrees_with_a_hash_map(spread);
        }
    }

    fn agrees_with_a_hash_map(spread: u64) {
        let mut ids: Vec<u64> = Vec::new();
        let mut table = SlotTable::default();
        let mut reference: HashMap<u64, u32> = HashMap::new();
        let mut x = 7u64;
        for step in 0..20_000u64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let id = (x >> 33) % 3_000;
            // one id in a thousand far away once `spread` is large
            let id = if step % 1_000 == 998 { id * spread } else { id };
            if step % 5 == 4 {
                assert_eq!(table.remove(id, &ids), reference.remove(&id));
            } else {
                ids.push(id);
                let slot = (ids.len() - 1) as u32;
                table.insert(id, slot, &ids);
                reference.insert(id, slot);
            }
        }
        assert_eq!(table.len(), reference.len());
        assert_eq!(table.dense.is_some(), spread == 1);
        for id in 0..3_000 {
            assert_eq!(table.get(id, &ids), reference.get(&id).copied());
        }
        table.shrink_to_fit(&ids);
        for (id, slot) in &reference {
            assert_eq!(table.get(*id, &ids), Some(*slot));
        }
        // marking a list of ids (with repeats and unknown ids) sets exactly their slots
        let list: Vec<u64> = (0..3_500).chain(0..100).chain([3 << 40]).collect();
        let mut bits = vec![0u64; ids.len().div_ceil(64)];
        let set = table.mark(list.iter().copied(), &ids, &mut bits);
        let mut expected = vec![0u64; bits.len()];
        for id in 0..3_500u64 {
            if let Some(&s) = reference.get(&id) {
                expected[s as usize / 64] |= 1 << (s % 64);
            }
        }
        assert_eq!(bits, expected);
        assert_eq!(
            set,
            expected
                .iter()
                .map(|w| w.count_ones() as usize)
                .sum::<usize>()
        );
        let rebuilt = SlotTable::build(&ids, |s| reference.get(&ids[s]) == Some(&(s as u32)));
        assert_eq!(rebuilt.len(), reference.len());
    }
}
