//! Every engine against exact search on random data: recall, filters inside the search,
//! deletes and upserts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use regelkreis_index::{FlatIndex, HnswIndex, HnswParams, IvfFlatIndex, Metric, VectorIndex};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vector(&mut self, dim: usize) -> Vec<f32> {
        (0..dim).map(|_| self.next()).collect()
    }
}

fn recall(truth: &[regelkreis_index::Hit], got: &[regelkreis_index::Hit]) -> f64 {
    let t: std::collections::HashSet<u64> = truth.iter().map(|h| h.id).collect();
    got.iter().filter(|h| t.contains(&h.id)).count() as f64 / truth.len().max(1) as f64
}

/// An HNSW index over `data` (ids 0, 1, …) inserted in one batch on two threads.
fn built_in_batches(metric: Metric, params: HnswParams, data: &[Vec<f32>]) -> HnswIndex {
    let mut hnsw = HnswIndex::new(metric, data[0].len(), params);
    let items: Vec<(u64, &[f32])> = data
        .iter()
        .enumerate()
        .map(|(id, v)| (id as u64, v.as_slice()))
        .collect();
    hnsw.upsert_batch(&items, 2).unwrap();
    hnsw
}

fn build(metric: Metric, n: usize, dim: usize, seed: u64) -> (FlatIndex, HnswIndex, Vec<Vec<f32>>) {
    let mut rng = Rng(seed);
    let mut flat = FlatIndex::new(metric, dim);
    let mut hnsw = HnswIndex::new(metric, dim, HnswParams::default());
    let mut data = Vec::new();
    for id in 0..n as u64 {
        let v = rng.vector(dim);
        flat.upsert(id, &v).unwrap();
        hnsw.upsert(id, &v).unwrap();
        data.push(v);
    }
    (flat, hnsw, data)
}

#[test]
fn hnsw_agrees_with_exact_search_for_every_metric() {
    for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
        let (flat, hnsw, _) = build(metric, 3_000, 24, 7);
        let mut rng = Rng(99);
        let mut total = 0.0;
        for _ in 0..50 {
            let q = rng.vector(24);
            let truth = flat.search(&q, 10, 0, None).unwrap();
            let got = hnsw.search(&q, 10, 100, None).unwrap();
            assert!(
                got.windows(2).all(|w| w[0].distance <= w[1].distance),
                "closest first"
            );
            total += recall(&truth, &got);
        }
        let r = total / 50.0;
        assert!(r >= 0.95, "{metric:?}: recall@10 {r}");
    }
}

#[test]
fn filtered_search_keeps_recall_at_every_selectivity() {
    let (flat, hnsw, _) = build(Metric::L2, 5_000, 16, 3);
    for modulus in [2u64, 10, 50, 200, 1000] {
        let filter = move |id: u64| id % modulus == 1;
        let mut rng = Rng(5 + modulus);
        let mut total = 0.0;
        for _ in 0..30 {
            let q = rng.vector(16);
            let truth = flat.search(&q, 10, 0, Some(&filter)).unwrap();
            let got = hnsw.search(&q, 10, 80, Some(&filter)).unwrap();
            assert!(got.iter().all(|h| filter(h.id)), "only matching ids");
            assert_eq!(got.len(), truth.len(), "no empty pages: {modulus}");
            total += recall(&truth, &got);
        }
        let r = total / 30.0;
        assert!(r >= 0.95, "selectivity 1/{modulus}: recall {r}");
    }
}

#[test]
fn metadata_filters_find_the_exact_answer_among_their_matches() {
    use regelkreis_index::{Attributes, Condition, MetaFilter, MetadataIndex};
    // tenants of very different sizes (0.2 % to 60 %), two tags, a day number; int8 and
    // f32 graphs; filters of one to three conditions: tiny answers come back exact (the
    // index scans the matching list), large ones from a walk over a bitset
    let (n, dim) = (8_000u64, 16);
    let mut rng = Rng(23);
    let data: Vec<Vec<f32>> = (0..n).map(|_| rng.vector(dim)).collect();
    let tenant = |id: u64| match id % 500 {
        0 => "tiny",
        1..=25 => "small",
        26..=199 => "mid",
        _ => "large",
    };
    let mut meta = MetadataIndex::new();
    for id in 0..n {
        let mut keywords = vec![("tenant".to_string(), tenant(id).to_string())];
        if id % 3 == 0 {
            keywords.push(("tag".into(), "promo".into()));
        }
        if id % 7 < 2 {
            keywords.push(("tag".into(), "de".into()));
        }
        meta.set(
            id,
            Attributes {
                keywords,
                numbers: vec![("day".into(), (id * 37 % 365) as i64)],
            },
        );
    }
    let mut flat = FlatIndex::new(Metric::Cosine, dim);
    for (id, v) in data.iter().enumerate() {
        flat.upsert(id as u64, v).unwrap();
    }
    let filters = [
        vec![Condition::equals("tenant", "tiny")],
        vec![Condition::equals("tenant", "small")],
        vec![Condition::equals("tenant", "large")],
        vec![
            Condition::equals("tenant", "mid"),
            Condition::AllOf {
                field: "tag".into(),
                values: vec!["promo".into(), "de".into()],
            },
        ],
        vec![
            Condition::AnyOf {
                field: "tenant".into(),
                values: vec!["large".into(), "small".into()],
            },
            Condition::Range {
                field: "day".into(),
                min: Some(40),
                max: Some(220),
            },
        ],
        vec![Condition::Range {
            field: "day".into(),
            min: None,
            max: Some(3),
        }],
    ];
    for int8 in [false, true] {
        let params = HnswParams {
            int8,
            ..HnswParams::default()
        };
        let mut hnsw = built_in_batches(Metric::Cosine, params, &data);
        // vectors deleted from the index while their metadata stays: never returned
        let mut flat = flat.clone();
        for id in (0..n).filter(|id| id % 11 == 4) {
            assert!(hnsw.remove(id) && flat.remove(id));
        }
        for conditions in &filters {
            let filter = MetaFilter {
                conditions: conditions.clone(),
            };
            let matches = meta.matching(&filter);
            let share = matches.count().unwrap() as f64 / n as f64;
            let pass = |id: u64| filter.holds(meta.attributes(id).unwrap());
            let mut rng = Rng(29);
            let mut total = 0.0;
            for _ in 0..30 {
                let q = rng.vector(dim);
                let truth = flat.search(&q, 10, 0, Some(&pass)).unwrap();
                let got = matches.search(&hnsw, &q, 10, 64).unwrap();
                assert!(got.iter().all(|h| pass(h.id)), "only matching ids");
                // engines without their own bitset search take the list the bits hold
                let by_flat: Vec<u64> = matches
                    .search(&flat, &q, 10, 0)
                    .unwrap()
                    .iter()
                    .map(|h| h.id)
                    .collect();
                assert_eq!(by_flat, truth.iter().map(|h| h.id).collect::<Vec<_>>());
                assert_eq!(got.len(), truth.len(), "no short pages ({share})");
                let r = recall(&truth, &got);
                if share < 0.01 {
                    assert_eq!(r, 1.0, "a tiny answer is searched exactly ({share})");
                }
                total += r;
            }
            let r = total / 30.0;
            assert!(r >= 0.95, "int8={int8}, share {share}: recall {r}");
        }
    }
}

/// Matches multiples of 97, counting how it is asked.
struct Multiples {
    single: std::cell::Cell<usize>,
    blocks: std::cell::Cell<usize>,
}

impl regelkreis_index::IdFilter for Multiples {
    fn matches(&self, id: u64) -> bool {
        self.single.set(self.single.get() + 1);
        id.is_multiple_of(97)
    }
    fn matches_block(&self, ids: &[u64], out: &mut [u64]) {
        self.blocks.set(self.blocks.get() + 1);
        for (word, chunk) in out.iter_mut().zip(ids.chunks(64)) {
            // every bit past the last id set too: the index must ignore those
            let past = if chunk.len() < 64 {
                u64::MAX << chunk.len()
            } else {
                0
            };
            *word = chunk.iter().enumerate().fold(past, |w, (j, id)| {
                w | (u64::from(id.is_multiple_of(97)) << j)
            });
        }
    }
}

#[test]
fn exact_filtered_scans_ask_a_block_of_ids_at_a_time() {
    let (flat, hnsw, data) = build(Metric::Cosine, 5_000, 16, 13);
    let filter = Multiples {
        single: std::cell::Cell::new(0),
        blocks: std::cell::Cell::new(0),
    };
    for q in data.iter().take(5) {
        let got = hnsw.search(q, 10, 64, Some(&filter)).unwrap();
        let truth = flat
            .search(q, 10, 0, Some(&|id: u64| id.is_multiple_of(97)))
            .unwrap();
        assert_eq!(recall(&truth, &got), 1.0, "1 % matching: answered exactly");
    }
    // 5,000 ids in blocks of 1,024: 5 blocks per search; single ids only for the
    // selectivity estimate (at most 512 per search)
    assert_eq!(filter.blocks.get(), 25);
    assert!(filter.single.get() <= 5 * 512, "{}", filter.single.get());
}

#[test]
fn filtered_walks_keep_recall_at_every_selectivity() {
    // exact search switched off, so every filtered search walks the graph: one hop with a
    // breadth scaled to the share matching (≥ 5 %), two hops below
    let (n, dim) = (6_000, 16);
    let mut rng = Rng(11);
    let data: Vec<Vec<f32>> = (0..n).map(|_| rng.vector(dim)).collect();
    let mut flat = FlatIndex::new(Metric::L2, dim);
    for (id, v) in data.iter().enumerate() {
        flat.upsert(id as u64, v).unwrap();
    }
    for int8 in [false, true] {
        let params = HnswParams {
            exact_below: 0.0,
            exact_max_matches: 0,
            int8,
            ..HnswParams::default()
        };
        let hnsw = built_in_batches(Metric::L2, params, &data);
        for modulus in [2u64, 4, 10, 30, 50] {
            let filter = move |id: u64| id % modulus == 1;
            let list: Vec<u64> = (0..n as u64).filter(|&id| filter(id)).collect();
            let mut rng = Rng(17 + modulus);
            let (mut by_predicate, mut by_list) = (0.0, 0.0);
            for _ in 0..40 {
                let q = rng.vector(dim);
                let truth = flat.search(&q, 10, 0, Some(&filter)).unwrap();
                let got = hnsw.search(&q, 10, 64, Some(&filter)).unwrap();
                let among = hnsw.search_among(&q, 10, 64, &list).unwrap();
                for (form, hits) in [("predicate", &got), ("id list", &among)] {
                    assert!(hits.iter().all(|h| filter(h.id)), "only matching ids");
                    assert_eq!(
                        hits.len(),
                        10,
                        "no empty pages ({form}, int8={int8}, 1/{modulus})"
                    );
                }
                by_predicate += recall(&truth, &got);
                by_list += recall(&truth, &among);
            }
            let (p, l) = (by_predicate / 40.0, by_list / 40.0);
            assert!(
                p >= 0.95 && l >= 0.95,
                "int8={int8} 1/{modulus}: recall {p} / {l}"
            );
        }
    }
}

#[test]
fn batched_queries_are_answered_as_single_ones() {
    let (flat, hnsw, _) = build(Metric::Cosine, 2_000, 24, 21);
    let mut rng = Rng(4);
    // 37 queries: several blocks of the exact search's batch and a partial one
    let queries: Vec<Vec<f32>> = (0..37).map(|_| rng.vector(24)).collect();
    let refs: Vec<&[f32]> = queries.iter().map(|q| q.as_slice()).collect();
    for index in [&flat as &dyn VectorIndex, &hnsw] {
        for threads in [1, 3] {
            let batch = index.search_batch(&refs, 10, 64, threads).unwrap();
            assert_eq!(batch.len(), queries.len());
            for (q, got) in queries.iter().zip(&batch) {
                assert_eq!(got, &index.search(q, 10, 64, None).unwrap());
            }
        }
    }
    // a bad query fails the batch; it is not skipped
    let short = [1.0f32; 3];
    let bad = [refs[0], &short[..]];
    for index in [&flat as &dyn VectorIndex, &hnsw] {
        assert!(index.search_batch(&bad, 10, 64, 2).is_err());
    }
}

#[test]
fn search_among_known_ids_keeps_recall_and_skips_unknown_and_deleted_ids() {
    // 30,000 nodes, so both the exact path (few ids) and the walk (many) run.
    for int8 in [false, true] {
        let (flat, mut hnsw, _) = build(Metric::Cosine, 30_000, 16, 17);
        hnsw.set_int8(int8);
        for modulus in [2u64, 3, 50, 1000] {
            let mut ids: Vec<u64> = (0..30_000u64).filter(|id| id % modulus == 1).collect();
            // Unknown ids and duplicates are ignored.
            ids.extend([1_000_000, 2_000_000, 1]);
            let filter = move |id: u64| id % modulus == 1;
            let mut rng = Rng(9 + modulus);
            let mut total = 0.0;
            for _ in 0..20 {
                let q = rng.vector(16);
                let truth = flat.search(&q, 10, 0, Some(&filter)).unwrap();
                let got = hnsw.search_among(&q, 10, 80, &ids).unwrap();
                assert!(got.iter().all(|h| filter(h.id)), "only the given ids");
                assert_eq!(got.len(), truth.len(), "no empty pages: {modulus}");
                for (g, t) in got.iter().zip(&truth) {
                    if g.id == t.id {
                        assert!((g.distance - t.distance).abs() < 1e-4, "exact distances");
                    }
                }
                total += recall(&truth, &got);
            }
            let r = total / 20.0;
            assert!(r >= 0.95, "int8 {int8}, 1/{modulus}: recall {r}");
        }
        // A deleted id is never returned, even when asked for.
        let q = Rng(3).vector(16);
        let first = hnsw.search_among(&q, 1, 40, &[1, 2, 3]).unwrap()[0].id;
        hnsw.remove(first);
        let again = hnsw.search_among(&q, 3, 40, &[1, 2, 3]).unwrap();
        assert_eq!(again.len(), 2);
        assert!(again.iter().all(|h| h.id != first));
        // ... also from a list long enough to be walked as a bitset over ids
        let nearest = hnsw.search(&q, 1, 40, None).unwrap()[0].id;
        hnsw.remove(nearest);
        let all: Vec<u64> = (0..30_000).collect();
        let hits = hnsw.search_among(&q, 10, 80, &all).unwrap();
        assert_eq!(hits.len(), 10);
        assert!(hits.iter().all(|h| h.id != nearest && h.id != first));
    }
}

#[test]
fn deleted_vectors_are_never_returned_and_upserts_replace() {
    let (mut flat, mut hnsw, data) = build(Metric::Cosine, 2_000, 16, 11);
    for id in (0..2_000u64).step_by(3) {
        assert!(flat.remove(id));
        assert!(hnsw.remove(id));
    }
    assert!(!hnsw.remove(0), "already gone");
    assert_eq!(flat.len(), hnsw.len());
    let mut total = 0.0;
    for (i, q) in data.iter().enumerate().take(60) {
        let got = hnsw.search(q, 10, 100, None).unwrap();
        assert!(got.iter().all(|h| h.id % 3 != 0), "deleted id returned");
        let truth = flat.search(q, 10, 0, None).unwrap();
        assert!(truth.iter().all(|h| h.id % 3 != 0));
        total += recall(&truth, &got);
        if i % 3 != 0 {
            assert_eq!(got[0].id, i as u64, "a live vector finds itself first");
        }
    }
    assert!(total / 60.0 >= 0.95, "{}", total / 60.0);
    // a filter matching few vectors is answered exactly: the same hits as the flat
    // index, and no deleted id (multiples of 6 are all deleted)
    let few = |id: u64| id.is_multiple_of(50) || id.is_multiple_of(6);
    for q in data.iter().take(10) {
        let got = hnsw.search(q, 10, 100, Some(&few)).unwrap();
        let truth = flat.search(q, 10, 0, Some(&few)).unwrap();
        assert!(got.iter().all(|h| h.id % 3 != 0), "deleted id returned");
        assert_eq!(recall(&truth, &got), 1.0);
    }
    // moving a vector: the new position wins, the old one is forgotten
    let far: Vec<f32> = data[1].iter().map(|x| -x).collect();
    hnsw.upsert(1, &far).unwrap();
    flat.upsert(1, &far).unwrap();
    assert_eq!(hnsw.search(&far, 1, 50, None).unwrap()[0].id, 1);
    assert_ne!(hnsw.search(&data[1], 1, 50, None).unwrap()[0].id, 1);
    assert_eq!(flat.len(), hnsw.len());
}

#[test]
fn bad_vectors_are_refused() {
    let mut h = HnswIndex::new(Metric::Cosine, 4, HnswParams::default());
    assert!(h.upsert(1, &[1.0, 2.0]).is_err());
    assert!(h.upsert(1, &[0.0; 4]).is_err());
    assert!(h.upsert(1, &[f32::NAN, 0.0, 0.0, 1.0]).is_err());
    assert!(h
        .search(&[1.0, 0.0, 0.0, 0.0], 5, 10, None)
        .unwrap()
        .is_empty());
    h.upsert(1, &[1.0, 0.0, 0.0, 0.0]).unwrap();
    assert_eq!(
        h.search(&[1.0, 0.0, 0.0, 0.0], 5, 10, None).unwrap().len(),
        1
    );
}

#[test]
fn int8_traversal_with_rescoring_keeps_recall() {
    for metric in [Metric::Cosine, Metric::L2] {
        let (flat, mut hnsw, _) = build(metric, 3_000, 32, 21);
        hnsw.set_int8(true);
        let mut rng = Rng(42);
        let mut total = 0.0;
        for _ in 0..50 {
            let q = rng.vector(32);
            let truth = flat.search(&q, 10, 0, None).unwrap();
            let got = hnsw.search(&q, 10, 100, None).unwrap();
            // re-scored distances are exact
            for (g, t) in got.iter().zip(&truth) {
                if g.id == t.id {
                    assert!((g.distance - t.distance).abs() < 1e-4);
                }
            }
            total += recall(&truth, &got);
        }
        assert!(total / 50.0 >= 0.95, "{metric:?}: {}", total / 50.0);
    }
}

mod persistence {
    use super::*;

    #[test]
    fn a_reopened_index_answers_exactly_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let (mut flat, mut hnsw, data) = build(Metric::Cosine, 1_500, 16, 31);
        for id in (0..1_500u64).step_by(7) {
            hnsw.remove(id);
            flat.remove(id);
        }
        hnsw.set_int8(true);
        hnsw.save(&dir.path().join("h.idx")).unwrap();
        flat.save(&dir.path().join("f.idx")).unwrap();
        let h2 = HnswIndex::open(&dir.path().join("h.idx")).unwrap();
        let f2 = FlatIndex::open(&dir.path().join("f.idx")).unwrap();
        assert_eq!(h2.len(), hnsw.len());
        for q in data.iter().take(40) {
            assert_eq!(
                h2.search(q, 10, 64, None).unwrap(),
                hnsw.search(q, 10, 64, None).unwrap()
            );
            assert_eq!(
                f2.search(q, 10, 0, None).unwrap(),
                flat.search(q, 10, 0, None).unwrap()
            );
        }
        assert!(
            !dir.path().join("h.tmp").exists(),
            "the temporary file was renamed"
        );
        // The reopened int8 index serves its full vectors from the file: the heap holds
        // codes and links only.
        assert_eq!(h2.mapped_bytes_per_vector(), 16.0 * 4.0);
        assert!(h2.bytes_per_vector() < hnsw.bytes_per_vector() - 60.0);
        // It can still change: the first write copies the vectors onto the heap; the
        // saved file is replaced by rename while the old mapping stays valid.
        let mut h3 = HnswIndex::open(&dir.path().join("h.idx")).unwrap();
        h3.upsert(7, &data[8]).unwrap();
        h3.save(&dir.path().join("h.idx")).unwrap();
        assert_eq!(h3.mapped_bytes_per_vector(), 0.0);
        assert_eq!(h3.search(&data[8], 2, 64, None).unwrap().len(), 2);
        for q in data.iter().take(40) {
            assert_eq!(
                h2.search(q, 10, 64, None).unwrap(),
                hnsw.search(q, 10, 64, None).unwrap()
            );
        }
        let h4 = HnswIndex::open(&dir.path().join("h.idx")).unwrap();
        assert!(h4
            .search(&data[8], 2, 64, None)
            .unwrap()
            .iter()
            .any(|h| h.id == 7));
    }

    #[test]
    fn damaged_files_are_refused_never_opened_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let (_, hnsw, _) = build(Metric::L2, 300, 8, 5);
        let path = dir.path().join("h.idx");
        hnsw.save(&path).unwrap();
        let good = std::fs::read(&path).unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("flipped byte", {
                let mut b = good.clone();
                b[good.len() / 2] ^= 0x40;
                b
            }),
            ("torn write", good[..good.len() - 100].to_vec()),
            ("empty", Vec::new()),
            ("other version", {
                let mut b = good.clone();
                b[8] = 9;
                b
            }),
            (
                "not an index",
                b"hello world, definitely not an index file".to_vec(),
            ),
        ];
        for (what, bytes) in cases {
            std::fs::write(&path, &bytes).unwrap();
            assert!(HnswIndex::open(&path).is_err(), "{what} opened");
        }
        assert!(matches!(
            FlatIndex::open(&dir.path().join("missing.idx")),
            Err(regelkreis_index::IndexError::Io(_))
        ));
        // a crash after writing the temporary file but before the rename leaves the old file
        std::fs::write(&path, &good).unwrap();
        std::fs::write(dir.path().join("h.tmp"), &good[..50]).unwrap();
        assert!(HnswIndex::open(&path).is_ok());
    }
}

#[test]
fn ivf_flat_agrees_with_exact_search_and_deletes_for_real() {
    for metric in [Metric::Cosine, Metric::L2] {
        let (mut flat, _, data) = build(metric, 4_000, 16, 17);
        let mut ivf = IvfFlatIndex::train(metric, 16, 32, &data[..2_000], 8, 7).unwrap();
        for (i, v) in data.iter().enumerate() {
            ivf.upsert(i as u64, v).unwrap();
        }
        for id in (0..4_000u64).step_by(4) {
            assert!(ivf.remove(id));
            flat.remove(id);
        }
        assert_eq!(ivf.len(), flat.len());
        let mut rng = Rng(8);
        let (mut probed, mut all) = (0.0, 0.0);
        for _ in 0..40 {
            let q = rng.vector(16);
            let truth = flat.search(&q, 10, 0, None).unwrap();
            let got = ivf.search(&q, 10, 12, None).unwrap();
            assert!(got.iter().all(|h| h.id % 4 != 0), "deleted id returned");
            probed += recall(&truth, &got);
            all += recall(&truth, &ivf.search(&q, 10, 32, None).unwrap());
            let even = |id: u64| id.is_multiple_of(2);
            let ids =
                |h: Vec<regelkreis_index::Hit>| h.into_iter().map(|x| x.id).collect::<Vec<_>>();
            assert_eq!(
                ids(ivf.search(&q, 10, 32, Some(&even)).unwrap()),
                ids(flat.search(&q, 10, 0, Some(&even)).unwrap()),
                "a filtered search over every cell is exact"
            );
        }
        assert!(
            probed / 40.0 >= 0.9,
            "{metric:?}: nprobe 12 of 32: {}",
            probed / 40.0
        );
        assert!(
            (all / 40.0 - 1.0).abs() < 1e-9,
            "probing every cell is exact"
        );
    }
    assert!(IvfFlatIndex::train(Metric::L2, 4, 10, &vec![vec![0.0; 4]; 3], 5, 1).is_err());
}

#[test]
fn deleting_and_reinserting_30_percent_keeps_recall_and_memory_without_a_rebuild() {
    let n = 4_000u64;
    let (flat, mut hnsw, data) = build(Metric::Cosine, n as usize, 24, 77);
    hnsw.shrink_to_fit();
    let fresh_bytes = hnsw.bytes_per_vector() * n as f64;
    for id in (0..n).filter(|id| id % 10 < 3) {
        assert!(hnsw.remove(id));
    }
    for id in (0..n).filter(|id| id % 10 < 3) {
        hnsw.upsert(id, &data[id as usize]).unwrap();
    }
    hnsw.compact();
    assert_eq!(hnsw.tombstones(), 0);
    assert_eq!(hnsw.len(), n as usize);
    let bytes = hnsw.bytes_per_vector() * hnsw.len() as f64;
    assert!(
        bytes <= fresh_bytes * 1.10,
        "memory {bytes} vs fresh {fresh_bytes}"
    );
    let mut rng = Rng(1234);
    let mut total = 0.0;
    for _ in 0..50 {
        let q = rng.vector(24);
        total += recall(
            &flat.search(&q, 10, 0, None).unwrap(),
            &hnsw.search(&q, 10, 100, None).unwrap(),
        );
    }
    assert!(total / 50.0 >= 0.95, "recall after churn {}", total / 50.0);
}

#[test]
fn compaction_repairs_the_graph_around_deleted_nodes() {
    let (mut flat, mut hnsw, _) = build(Metric::L2, 3_000, 16, 55);
    for id in (0..3_000u64).filter(|id| id % 2 == 0) {
        hnsw.remove(id);
        flat.remove(id);
    }
    hnsw.compact();
    assert_eq!(hnsw.len(), 1_500);
    let mut rng = Rng(77);
    let mut total = 0.0;
    for _ in 0..50 {
        let q = rng.vector(16);
        let got = hnsw.search(&q, 10, 100, None).unwrap();
        assert!(got.iter().all(|h| h.id % 2 == 1));
        total += recall(&flat.search(&q, 10, 0, None).unwrap(), &got);
    }
    assert!(total / 50.0 >= 0.95, "{}", total / 50.0);
}

#[test]
fn a_parallel_build_finds_what_a_sequential_one_finds() {
    let mut rng = Rng(4242);
    let data: Vec<Vec<f32>> = (0..4_000).map(|_| rng.vector(24)).collect();
    let mut flat = FlatIndex::new(Metric::Cosine, 24);
    for (i, v) in data.iter().enumerate() {
        flat.upsert(i as u64, v).unwrap();
    }
    for int8 in [false, true] {
        let mut hnsw = HnswIndex::new(
            Metric::Cosine,
            24,
            HnswParams {
                int8,
                ..HnswParams::default()
            },
        );
        let items: Vec<(u64, &[f32])> = data
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u64, v.as_slice()))
            .collect();
        hnsw.upsert_batch(&items[..2_000], 2).unwrap();
        hnsw.upsert_batch(&items[2_000..], 2).unwrap();
        assert_eq!(hnsw.len(), 4_000);
        let mut total = 0.0;
        for _ in 0..50 {
            let q = rng.vector(24);
            total += recall(
                &flat.search(&q, 10, 0, None).unwrap(),
                &hnsw.search(&q, 10, 100, None).unwrap(),
            );
        }
        assert!(total / 50.0 >= 0.95, "int8={int8}: {}", total / 50.0);
        if !int8 {
            // an f32 index links batches on codes made for them, then gives them back:
            // no more memory than one built a vector at a time
            let mut single = HnswIndex::new(Metric::Cosine, 24, HnswParams::default());
            for (id, v) in &items {
                single.upsert(*id, v).unwrap();
            }
            single.shrink_to_fit();
            hnsw.shrink_to_fit();
            let (batched, one_by_one) = (hnsw.bytes_per_vector(), single.bytes_per_vector());
            assert!(batched <= one_by_one * 1.02, "{batched} vs {one_by_one}");
        }
        // replacing through a batch keeps one live vector per id
        hnsw.upsert_batch(&items[..100], 2).unwrap();
        assert_eq!(hnsw.len(), 4_000);
    }
}

/// Replacing a handful of vectors again and again with a two-thread batch insert: every
/// live vector must stay reachable. (A back-link written by one thread while the other
/// was still choosing that node's neighbours used to be overwritten, cutting nodes off.)
#[test]
fn parallel_batch_inserts_keep_every_node_reachable() {
    let mut unreachable = 0;
    for trial in 0..100u64 {
        let mut idx = HnswIndex::new(Metric::Cosine, 8, HnswParams::default());
        let mut next = 0u64;
        let mut live: Vec<u64> = Vec::new();
        for round in 0..9u64 {
            for id in live.drain(..) {
                idx.remove(id);
            }
            let vs: Vec<(u64, Vec<f32>)> = (0..6)
                .map(|_| {
                    next += 1;
                    let v = (0..8u64)
                        .map(|d| ((next * 31 + d * 7 + trial * 13 + round) % 17) as f32 - 8.0)
                        .collect();
                    (next, v)
                })
                .collect();
            let items: Vec<(u64, &[f32])> = vs.iter().map(|(i, v)| (*i, v.as_slice())).collect();
            idx.upsert_batch(&items, 2).unwrap();
            live = vs.iter().map(|x| x.0).collect();
            let hits = idx.search(&[1.0; 8], 20, 96, None).unwrap();
            unreachable += 6 - hits.len();
        }
    }
    assert_eq!(unreachable, 0);
}
