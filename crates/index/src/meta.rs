//! Metadata filters answered from posting lists: the predicate over metadata (tenant,
//! collection, language, type, tags, date ranges) of a filtered search, evaluated to the
//! set of matching ids at a cost that grows with the postings it reads, not with the
//! size of the collection, and then searched among by a vector index
//! ([`Matches::search`]).
//!
//! Keyword fields (`tenant`, `language`, a repeated `tag`) keep one posting per value;
//! number fields (dates as day numbers, prices) keep one posting per distinct value in
//! order, so a range is the union of the postings it spans. A posting is a sorted list
//! of ids while sparse and a bitset over ids once it holds at least one id in 32 of its
//! range (so never much more memory than the list would take); conditions over large
//! postings then combine a word at a time, and a dense answer is handed to the search as
//! the bitset it is (`VectorIndex::search_among_bits`), with no list built.
//!
//! Useful for: filters over a few structured fields, repeated with different values.
//! Not useful for: arbitrary code over a record (pass a closure instead,
//! which an exact search must ask about every id: [`crate::IdFilter`]).

use crate::{Hit, IndexError, VectorIndex};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

/// One condition of a [`MetaFilter`].
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The keyword field holds one of these values (`language = de`, `tenant ∈ {a, b}`).
    AnyOf {
        /// Field name.
        field: String,
        /// Accepted values.
        values: Vec<String>,
    },
    /// The keyword field holds every one of these values (tags).
    AllOf {
        /// Field name.
        field: String,
        /// Required values.
        values: Vec<String>,
    },
    /// The number field holds a value in `min..=max` (an open end when `None`).
    Range {
        /// Field name.
        field: String,
        /// Smallest accepted value.
        min: Option<i64>,
        /// Largest accepted value.
        max: Option<i64>,
    },
}

impl Condition {
    /// `field = value`.
    pub fn equals(field: &str, value: &str) -> Self {
        Condition::AnyOf {
            field: field.into(),
            values: vec![value.into()],
        }
    }

    /// Whether `attributes` satisfy the condition (the definition the postings answer).
    pub fn holds(&self, attributes: &Attributes) -> bool {
        let has = |field: &str, value: &str| {
            attributes
                .keywords
                .iter()
                .any(|(f, v)| f == field && v == value)
        };
        match self {
            Condition::AnyOf { field, values } => values.iter().any(|v| has(field, v)),
            Condition::AllOf { field, values } => values.iter().all(|v| has(field, v)),
            Condition::Range { field, min, max } => attributes.numbers.iter().any(|(f, x)| {
                f == field && min.is_none_or(|m| *x >= m) && max.is_none_or(|m| *x <= m)
            }),
        }
    }
}

/// Conditions that must all hold; none: every id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetaFilter {
    /// The conditions.
    pub conditions: Vec<Condition>,
}

impl MetaFilter {
    /// Whether `attributes` satisfy every condition.
    pub fn holds(&self, attributes: &Attributes) -> bool {
        self.conditions.iter().all(|c| c.holds(attributes))
    }
}

/// The metadata of one id: keyword and number fields, each field may repeat (tags).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes {
    /// `(field, value)` pairs.
    pub keywords: Vec<(String, String)>,
    /// `(field, value)` pairs.
    pub numbers: Vec<(String, i64)>,
}

/// A posting: the ids holding one value.
#[derive(Debug, Clone, PartialEq)]
enum IdSet {
    /// Sorted, distinct.
    Sparse(Vec<u64>),
    /// Bit `id % 64` of word `id / 64`; `count` set bits.
    Dense { words: Vec<u64>, count: usize },
}

/// A posting turns into a bitset once its ids cover no more than this many bits each...
const TO_DENSE: u64 = 32;
/// ...and back into a list once they spread over more than this many each.
const TO_SPARSE: u64 = 128;

impl Default for IdSet {
    fn default() -> Self {
        IdSet::Sparse(Vec::new())
    }
}

impl IdSet {
    fn len(&self) -> usize {
        match self {
            IdSet::Sparse(list) => list.len(),
            IdSet::Dense { count, .. } => *count,
        }
    }

    /// One past the largest id the set can hold without growing.
    fn end(&self) -> u64 {
        match self {
            IdSet::Sparse(list) => list.last().map_or(0, |&id| id.saturating_add(1)),
            IdSet::Dense { words, .. } => words.len() as u64 * 64,
        }
    }

    fn contains(&self, id: u64) -> bool {
        match self {
            IdSet::Sparse(list) => list.binary_search(&id).is_ok(),
            IdSet::Dense { words, .. } => words
                .get((id / 64) as usize)
                .is_some_and(|w| w >> (id % 64) & 1 == 1),
        }
    }

    fn insert(&mut self, id: u64) {
        if let IdSet::Dense { count, .. } = self {
            if id.saturating_add(1) > TO_SPARSE * (*count as u64 + 1) {
                self.make_sparse();
            }
        }
        match self {
            IdSet::Sparse(list) => {
                if let Err(at) = list.binary_search(&id) {
                    list.insert(at, id);
                }
            }
            IdSet::Dense { words, count } => {
                let w = (id / 64) as usize;
                if w >= words.len() {
                    words.resize(w + 1, 0);
                }
                *count += usize::from(words[w] >> (id % 64) & 1 == 0);
                words[w] |= 1 << (id % 64);
            }
        }
        self.rebalance();
    }

    fn remove(&mut self, id: u64) {
        match self {
            IdSet::Sparse(list) => {
                if let Ok(at) = list.binary_search(&id) {
                    list.remove(at);
                }
            }
            IdSet::Dense { words, count } => {
                if let Some(word) = words.get_mut((id / 64) as usize) {
                    *count -= usize::from(*word >> (id % 64) & 1 == 1);
                    *word &= !(1 << (id % 64));
                }
            }
        }
        self.rebalance();
    }

    /// Switches form when the density crossed a threshold (with a gap between the two, so
    /// a set near one does not flip on every change).
    fn rebalance(&mut self) {
        let (len, end) = (self.len() as u64, self.end());
        match self {
            IdSet::Sparse(_) if len >= 64 && end <= TO_DENSE * len => {
                let mut words = vec![0u64; end.div_ceil(64) as usize];
                for id in self.iter() {
                    words[(id / 64) as usize] |= 1 << (id % 64);
                }
                *self = IdSet::Dense {
                    words,
                    count: len as usize,
                };
            }
            IdSet::Dense { .. } if end > TO_SPARSE * len.max(1) => self.make_sparse(),
            _ => {}
        }
    }

    fn make_sparse(&mut self) {
        if let IdSet::Dense { .. } = self {
            *self = IdSet::Sparse(self.iter().collect());
        }
    }

    /// The ids in ascending order.
    fn iter(&self) -> Box<dyn Iterator<Item = u64> + '_> {
        match self {
            IdSet::Sparse(list) => Box::new(list.iter().copied()),
            IdSet::Dense { words, .. } => Box::new(crate::set_bits(words).map(|b| b as u64)),
        }
    }

    /// The union of `sets`: gathered in a bitset when the ids are dense enough for one,
    /// else merged as a sorted list.
    fn union(sets: &[&IdSet]) -> IdSet {
        let total: u64 = sets.iter().map(|s| s.len() as u64).sum();
        let end = sets.iter().map(|s| s.end()).max().unwrap_or(0);
        if total >= 64 && end <= TO_DENSE * total {
            let mut words = vec![0u64; end.div_ceil(64) as usize];
            for set in sets {
                match set {
                    IdSet::Dense { words: w, .. } => {
                        words.iter_mut().zip(w).for_each(|(a, b)| *a |= b);
                    }
                    IdSet::Sparse(list) => {
                        for &id in list {
                            words[(id / 64) as usize] |= 1 << (id % 64);
                        }
                    }
                }
            }
            let count = words.iter().map(|w| w.count_ones() as usize).sum();
            let mut out = IdSet::Dense { words, count };
            out.rebalance();
            return out;
        }
        let mut list: Vec<u64> = sets.iter().flat_map(|s| s.iter()).collect();
        list.sort_unstable();
        list.dedup();
        IdSet::Sparse(list)
    }

    /// The intersection of two sets: a word at a time for two bitsets, else the smaller
    /// list filtered by membership in the other.
    fn intersect(a: &IdSet, b: &IdSet) -> IdSet {
        let mut out = match (a, b) {
            (IdSet::Dense { words: x, .. }, IdSet::Dense { words: y, .. }) => {
                let words: Vec<u64> = x.iter().zip(y).map(|(p, q)| p & q).collect();
                let count = words.iter().map(|w| w.count_ones() as usize).sum();
                IdSet::Dense { words, count }
            }
            (IdSet::Sparse(list), other) | (other, IdSet::Sparse(list)) => IdSet::Sparse(
                list.iter()
                    .copied()
                    .filter(|&id| other.contains(id))
                    .collect(),
            ),
        };
        out.rebalance();
        out
    }
}

/// Keyword and number postings over ids, kept up to date as ids are set and removed.
#[derive(Debug, Default)]
pub struct MetadataIndex {
    keywords: HashMap<String, HashMap<String, IdSet>>,
    numbers: HashMap<String, BTreeMap<i64, IdSet>>,
    of_id: HashMap<u64, Attributes>,
}

static EMPTY: IdSet = IdSet::Sparse(Vec::new());

impl MetadataIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ids with metadata.
    pub fn len(&self) -> usize {
        self.of_id.len()
    }

    /// Whether no id has metadata.
    pub fn is_empty(&self) -> bool {
        self.of_id.is_empty()
    }

    /// The metadata of `id`.
    pub fn attributes(&self, id: u64) -> Option<&Attributes> {
        self.of_id.get(&id)
    }

    /// Sets the metadata of `id`, replacing what it had.
    pub fn set(&mut self, id: u64, attributes: Attributes) {
        self.remove(id);
        for (field, value) in &attributes.keywords {
            self.keywords
                .entry(field.clone())
                .or_default()
                .entry(value.clone())
                .or_default()
                .insert(id);
        }
        for (field, value) in &attributes.numbers {
            self.numbers
                .entry(field.clone())
                .or_default()
                .entry(*value)
                .or_default()
                .insert(id);
        }
        self.of_id.insert(id, attributes);
    }

    /// Removes the metadata of `id`; returns whether it had any.
    pub fn remove(&mut self, id: u64) -> bool {
        let Some(old) = self.of_id.remove(&id) else {
            return false;
        };
        for (field, value) in &old.keywords {
            if let Some(values) = self.keywords.get_mut(field) {
                if let Some(set) = values.get_mut(value) {
                    set.remove(id);
                    if set.len() == 0 {
                        values.remove(value);
                    }
                }
            }
        }
        for (field, value) in &old.numbers {
            if let Some(values) = self.numbers.get_mut(field) {
                if let Some(set) = values.get_mut(value) {
                    set.remove(id);
                    if set.len() == 0 {
                        values.remove(value);
                    }
                }
            }
        }
        true
    }

    fn keyword(&self, field: &str, value: &str) -> &IdSet {
        self.keywords
            .get(field)
            .and_then(|values| values.get(value))
            .unwrap_or(&EMPTY)
    }

    /// The ids one condition accepts: a posting itself when one is all it reads.
    fn condition(&self, c: &Condition) -> Option<Cow<'_, IdSet>> {
        match c {
            Condition::AnyOf { field, values } => {
                let sets: Vec<&IdSet> = values.iter().map(|v| self.keyword(field, v)).collect();
                Some(match sets.as_slice() {
                    [one] => Cow::Borrowed(*one),
                    many => Cow::Owned(IdSet::union(many)),
                })
            }
            Condition::AllOf { field, values } => {
                let mut sets: Vec<&IdSet> = values.iter().map(|v| self.keyword(field, v)).collect();
                sets.sort_by_key(|s| s.len());
                intersect_all(sets.into_iter().map(Cow::Borrowed))
            }
            Condition::Range { field, min, max } => {
                let (lo, hi) = (min.unwrap_or(i64::MIN), max.unwrap_or(i64::MAX));
                let sets: Vec<&IdSet> = match self.numbers.get(field) {
                    Some(values) if lo <= hi => values.range(lo..=hi).map(|(_, s)| s).collect(),
                    _ => Vec::new(),
                };
                Some(match sets.as_slice() {
                    [one] => Cow::Borrowed(*one),
                    many => Cow::Owned(IdSet::union(many)),
                })
            }
        }
    }

    /// The ids `filter` accepts, the smallest condition's postings first.
    pub fn matching(&self, filter: &MetaFilter) -> Matches<'_> {
        let mut sets: Vec<Cow<'_, IdSet>> = filter
            .conditions
            .iter()
            .filter_map(|c| self.condition(c))
            .collect();
        sets.sort_by_key(|s| s.len());
        Matches {
            set: intersect_all(sets.into_iter()),
        }
    }
}

/// The intersection of sets ordered smallest first; `None` (every id) for no sets.
fn intersect_all<'a>(mut sets: impl Iterator<Item = Cow<'a, IdSet>>) -> Option<Cow<'a, IdSet>> {
    let mut acc = sets.next()?;
    for set in sets {
        if acc.len() == 0 {
            break;
        }
        acc = Cow::Owned(IdSet::intersect(&acc, &set));
    }
    Some(acc)
}

/// The ids a [`MetaFilter`] accepts, ready to be searched among.
#[derive(Debug, Clone)]
pub struct Matches<'a> {
    /// `None`: the filter had no conditions.
    set: Option<Cow<'a, IdSet>>,
}

impl Matches<'_> {
    /// How many ids match; `None` when the filter had no conditions (every id matches).
    pub fn count(&self) -> Option<usize> {
        self.set.as_ref().map(|s| s.len())
    }

    /// Whether `id` matches.
    pub fn contains(&self, id: u64) -> bool {
        self.set.as_ref().is_none_or(|s| s.contains(id))
    }

    /// The matching ids in ascending order (`None`: every id).
    pub fn ids(&self) -> Option<Vec<u64>> {
        self.set.as_ref().map(|s| s.iter().collect())
    }

    /// The answer with its own copy of any posting it borrowed (a list or a bitset:
    /// a copy of memory, no per-id work), free of the index.
    pub fn into_owned(self) -> Matches<'static> {
        Matches {
            set: self.set.map(|s| Cow::Owned(s.into_owned())),
        }
    }

    /// The `k` nearest vectors of `index` among the matches, closest first: a sparse
    /// answer goes to the index as a list of ids, a dense one as the bitset it already is
    /// (the index turns exact over the matches when that is cheaper than a walk, and
    /// else walks testing each node's id against the bits).
    pub fn search(
        &self,
        index: &dyn VectorIndex,
        query: &[f32],
        k: usize,
        ef: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        match self.set.as_deref() {
            None => index.search(query, k, ef, None),
            Some(IdSet::Sparse(list)) => index.search_among(query, k, ef, list),
            Some(IdSet::Dense { words, count }) => {
                index.search_among_bits(query, k, ef, words, *count)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn attrs(tenant: u8, tags: &[u8], day: i64) -> Attributes {
        let mut keywords = vec![("tenant".to_string(), format!("t{tenant}"))];
        keywords.extend(tags.iter().map(|t| ("tag".to_string(), format!("g{t}"))));
        Attributes {
            keywords,
            numbers: vec![("day".to_string(), day)],
        }
    }

    fn condition() -> impl Strategy<Value = Condition> {
        prop_oneof![
            proptest::collection::vec(0u8..4, 1..3).prop_map(|v| Condition::AnyOf {
                field: "tenant".into(),
                values: v.iter().map(|t| format!("t{t}")).collect(),
            }),
            proptest::collection::vec(0u8..3, 0..3).prop_map(|v| Condition::AllOf {
                field: "tag".into(),
                values: v.iter().map(|t| format!("g{t}")).collect(),
            }),
            (
                proptest::option::of(0i64..30),
                proptest::option::of(0i64..30)
            )
                .prop_map(|(min, max)| Condition::Range {
                    field: "day".into(),
                    min,
                    max
                }),
            Just(Condition::equals("missing", "x")),
        ]
    }

    proptest! {
        /// Postings agree with the definition (`MetaFilter::holds` over every id) through
        /// sets, replacements and removals, for small ids (bitsets) and ids spread over
        /// the whole u64 range (lists).
        #[test]
        fn matches_agree_with_the_definition(
            ops in proptest::collection::vec(
                (0u64..600, any::<bool>(), 0u8..4, proptest::collection::vec(0u8..3, 0..3), 0i64..30),
                1..700,
            ),
            spread in any::<bool>(),
            filters in proptest::collection::vec(proptest::collection::vec(condition(), 0..3), 1..6),
        ) {
            let mut index = MetadataIndex::new();
            let mut truth: HashMap<u64, Attributes> = HashMap::new();
            for (id, keep, tenant, tags, day) in ops {
                let id = if spread { id.wrapping_mul(0x9e37_79b9_7f4a_7c15) } else { id };
                if keep {
                    index.set(id, attrs(tenant, &tags, day));
                    truth.insert(id, attrs(tenant, &tags, day));
                } else {
                    prop_assert_eq!(index.remove(id), truth.remove(&id).is_some());
                }
            }
            prop_assert_eq!(index.len(), truth.len());
            for conditions in filters {
                let filter = MetaFilter { conditions };
                let m = index.matching(&filter);
                let mut want: Vec<u64> =
                    truth.iter().filter(|(_, a)| filter.holds(a)).map(|(id, _)| *id).collect();
                want.sort_unstable();
                match m.ids() {
                    Some(got) => prop_assert_eq!(got, want),
                    // no condition constrains (none given, or only empty tag lists)
                    None => prop_assert!(truth.values().all(|a| filter.holds(a))),
                }
                for id in truth.keys() {
                    prop_assert_eq!(m.contains(*id), filter.holds(&truth[id]));
                }
                prop_assert_eq!(m.clone().into_owned().ids(), m.ids());
            }
        }
    }

    #[test]
    fn postings_turn_into_bitsets_and_back_as_density_changes() {
        let mut set = IdSet::default();
        for id in 0..100 {
            set.insert(id * 2);
        }
        assert!(matches!(set, IdSet::Dense { count: 100, .. }));
        for id in 1..100 {
            set.remove(id * 2);
        }
        // one id left in a 200-bit range
        assert!(matches!(&set, IdSet::Sparse(list) if list == &[0]));
        set.insert(u64::MAX - 1);
        assert!(set.contains(u64::MAX - 1) && set.contains(0) && set.len() == 2);
    }
}
