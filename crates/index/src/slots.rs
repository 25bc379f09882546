//! Id → slot lookup that stores only the slot, 4 bytes per entry: the id is read back
//! from the index's own `ids` array instead of being stored a second time (a
//! `HashMap<u64, u32>` spends 16 bytes per entry on the pair).

use hashbrown::HashTable;

/// The lookup; every call passes the `ids` array its slots index into.
#[derive(Default)]
pub(crate) struct SlotTable {
    table: HashTable<u32>,
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
        let rehash = |&s: &u32| hash(ids[s as usize]);
        match self.table.find_mut(hash(id), |&s| ids[s as usize] == id) {
            Some(old) => *old = slot,
            None => {
                self.table.insert_unique(hash(id), slot, rehash);
            }
        }
    }

    /// The slot of `id`.
    pub fn get(&self, id: u64, ids: &[u64]) -> Option<u32> {
        self.table
            .find(hash(id), |&s| ids[s as usize] == id)
            .copied()
    }

    /// Forgets `id`, returning its slot.
    pub fn remove(&mut self, id: u64, ids: &[u64]) -> Option<u32> {
        match self.table.find_entry(hash(id), |&s| ids[s as usize] == id) {
            Ok(entry) => Some(entry.remove().0),
            Err(_) => None,
        }
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Bytes allocated: 4 per bucket plus a control byte (buckets = capacity · 8/7).
    pub fn allocated_bytes(&self) -> usize {
        self.table.capacity() * 8 / 7 * 5
    }

    /// Releases spare capacity.
    pub fn shrink_to_fit(&mut self, ids: &[u64]) {
        self.table.shrink_to_fit(|&s| hash(ids[s as usize]));
    }

    /// A table of the live slots of `ids`.
    pub fn build(ids: &[u64], live: impl Fn(usize) -> bool) -> SlotTable {
        let mut t = SlotTable::default();
        for (slot, &id) in ids.iter().enumerate() {
            if live(slot) {
                t.insert(id, slot as u32, ids);
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn agrees_with_a_hash_map_under_inserts_replacements_and_removals() {
        let mut ids: Vec<u64> = Vec::new();
        let mut table = SlotTable::default();
        let mut reference: HashMap<u64, u32> = HashMap::new();
        let mut x = 7u64;
        for step in 0..20_000u64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let id = (x >> 33) % 3_000;
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
        for id in 0..3_000 {
            assert_eq!(table.get(id, &ids), reference.get(&id).copied());
        }
        table.shrink_to_fit(&ids);
        for (id, slot) in &reference {
            assert_eq!(table.get(*id, &ids), Some(*slot));
        }
        let rebuilt = SlotTable::build(&ids, |s| reference.get(&ids[s]) == Some(&(s as u32)));
        assert_eq!(rebuilt.len(), reference.len());
    }
}
