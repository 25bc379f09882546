//! Knowledge bases end to end on the real MiniLM weights: ingestion with redaction,
//! the three search modes, filters, refresh, removal, recovery and tenant isolation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use regelkreis_guard::Guard;
use regelkreis_knowledge::embed::models_dir;
use regelkreis_knowledge::{
    DocMetadata, DocStatus, Filter, Format, KbConfig, Knowledge, NewDocument, SearchMode,
    SearchRequest,
};

fn doc(id: &str, format: Format, body: &str, meta: DocMetadata) -> NewDocument {
    NewDocument {
        id: id.to_owned(),
        title: None,
        body: body.as_bytes().to_vec(),
        format,
        metadata: meta,
    }
}

fn meta(doc_type: &str, tags: &[&str], date: &str) -> DocMetadata {
    DocMetadata {
        doc_type: Some(doc_type.to_owned()),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        date: Some(date.to_owned()),
        source: Some(format!("https://example.com/{doc_type}")),
        ..DocMetadata::default()
    }
}

fn search(
    kb: &regelkreis_knowledge::KnowledgeBase,
    q: &str,
    mode: SearchMode,
    filter: Filter,
) -> Vec<String> {
    kb.search(&SearchRequest {
        query: q.to_owned(),
        k: 5,
        mode,
        rerank: false,
        filter,
        fusion: None,
    })
    .unwrap()
    .into_iter()
    .map(|h| h.document_id)
    .collect()
}

fn corpus() -> Vec<NewDocument> {
    vec![
        doc(
            "returns",
            Format::Markdown,
            "# Returns policy\n\nYou can return any product within 30 days of delivery for a full refund.\n\n## Exceptions\n\nGift cards and opened software cannot be returned.\n\nQuestions? Write to anna.schmidt@example.com or call +49 30 1234567.",
            meta("policy", &["support", "returns"], "2026-03-01"),
        ),
        doc(
            "pricing",
            Format::Html,
            "<html><head><title>Pricing</title></head><body><nav>Home | About</nav><main><h1>Plans</h1><p>The Pro plan costs 49 euros per month and includes unlimited users.</p><ul><li>Priority support</li><li>Single sign-on</li></ul></main><footer>Imprint</footer></body></html>",
            meta("product", &["sales"], "2026-05-10"),
        ),
        doc(
            "shipping",
            Format::Text,
            "Shipping takes three to five business days within Germany.\n\nExpress delivery arrives the next day for orders placed before noon.",
            meta("faq", &["support"], "2025-12-01"),
        ),
    ]
}

fn open(dir: &std::path::Path) -> Knowledge {
    Knowledge::open(dir, models_dir()).unwrap()
}

fn english() -> Option<KbConfig> {
    Some(KbConfig {
        model: "minilm".into(),
        ..KbConfig::default()
    })
}

#[test]
fn ingest_search_refresh_remove_recover() {
    let dir = tempfile::tempdir().unwrap();
    let guard = Guard::builtin().unwrap();
    let knowledge = open(dir.path());
    let kb = knowledge.get_or_create("acme", "help", english()).unwrap();
    let report = kb.ingest(corpus(), Some(&guard), b"tenant-key").unwrap();
    assert_eq!(report.documents.len(), 3);
    assert!(report
        .documents
        .iter()
        .all(|d| d.status == DocStatus::Created));
    assert!(report.chunks_embedded >= 3);
    assert_eq!(report.documents[0].pii_redacted, 2);

    // Each mode finds the right document for a paraphrased question.
    for mode in [SearchMode::Vector, SearchMode::Bm25, SearchMode::Hybrid] {
        assert_eq!(
            search(
                &kb,
                "how much is the pro plan per month",
                mode,
                Filter::default()
            )[0],
            "pricing",
            "{mode:?}"
        );
        assert_eq!(
            search(&kb, "refund returned product", mode, Filter::default())[0],
            "returns",
            "{mode:?}"
        );
    }
    assert_eq!(
        search(
            &kb,
            "when will my parcel arrive",
            SearchMode::Vector,
            Filter::default()
        )[0],
        "shipping"
    );

    // Redaction happened before anything was stored or indexed.
    let hits = kb
        .search(&SearchRequest {
            query: "contact email for returns questions".into(),
            k: 10,
            mode: SearchMode::Hybrid,
            rerank: true,
            filter: Filter::default(),
            fusion: None,
        })
        .unwrap();
    let all: String = hits.iter().map(|h| h.text.as_str()).collect();
    assert!(
        all.contains("<EMAIL_1>") && all.contains("<PHONE_1>"),
        "{all}"
    );
    assert!(!all.contains("anna.schmidt") && !all.contains("1234567"));
    assert!(search(
        &kb,
        "anna.schmidt@example.com",
        SearchMode::Bm25,
        Filter::default()
    )
    .is_empty());
    // Navigation and footer of the HTML page were not indexed.
    assert!(search(&kb, "imprint", SearchMode::Bm25, Filter::default()).is_empty());
    // Chunk offsets quote the stored text exactly; heading paths come along.
    let h = &hits.iter().find(|h| h.document_id == "returns").unwrap();
    assert!(h.end > h.start && !h.heading_path.is_empty());
    assert_eq!(h.source.as_deref(), Some("https://example.com/policy"));

    // Filters apply inside both searches.
    let support = Filter {
        tags: vec!["support".into()],
        ..Filter::default()
    };
    for mode in [SearchMode::Vector, SearchMode::Bm25, SearchMode::Hybrid] {
        let r = search(&kb, "pro plan price", mode, support.clone());
        assert!(r.iter().all(|d| d != "pricing"), "{mode:?}: {r:?}");
    }
    let recent = Filter {
        date_from: Some("2026-01-01".into()),
        ..Filter::default()
    };
    assert!(
        !search(&kb, "delivery days", SearchMode::Hybrid, recent).contains(&"shipping".to_owned())
    );
    let typed = Filter {
        doc_type: Some("faq".into()),
        ..Filter::default()
    };
    assert_eq!(
        search(&kb, "refund", SearchMode::Hybrid, typed),
        vec!["shipping".to_owned()]
    );

    // Unchanged documents are skipped; a changed one replaces its chunks everywhere.
    let again = kb.ingest(corpus(), Some(&guard), b"tenant-key").unwrap();
    assert!(again
        .documents
        .iter()
        .all(|d| d.status == DocStatus::Unchanged));
    assert_eq!(again.chunks_embedded + again.chunks_cached, 0);
    let changed = doc(
        "shipping",
        Format::Text,
        "Parcels are carried by bicycle couriers in Berlin.",
        meta("faq", &["support"], "2025-12-01"),
    );
    let r = kb
        .ingest(vec![changed], Some(&guard), b"tenant-key")
        .unwrap();
    assert_eq!(r.documents[0].status, DocStatus::Updated);
    assert!(search(&kb, "express noon", SearchMode::Bm25, Filter::default()).is_empty());
    assert_eq!(
        search(&kb, "bicycle couriers", SearchMode::Bm25, Filter::default())[0],
        "shipping"
    );
    let chunks_before = kb.chunk_count();

    // Removal takes a document out of both indexes.
    assert!(kb.remove("pricing").unwrap());
    assert!(!kb.remove("pricing").unwrap());
    for mode in [SearchMode::Vector, SearchMode::Bm25, SearchMode::Hybrid] {
        assert!(!search(&kb, "pro plan per month", mode, Filter::default())
            .contains(&"pricing".to_owned()));
    }
    let chunks_after = kb.chunk_count();
    assert!(chunks_after < chunks_before);
    drop(kb);
    drop(knowledge);

    // Reopening answers the same without rebuilding; a lost vector file is rebuilt
    // from the database without embedding anything again.
    let knowledge = open(dir.path());
    let kb = knowledge.get("acme", "help").unwrap();
    assert_eq!(kb.chunk_count(), chunks_after);
    let expected = search(
        &kb,
        "refund within 30 days",
        SearchMode::Hybrid,
        Filter::default(),
    );
    assert_eq!(expected[0], "returns");
    drop(kb);
    drop(knowledge);
    let kb_dir = std::fs::read_dir(dir.path().join("tenants"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("help");
    std::fs::remove_file(kb_dir.join("vectors.seq")).unwrap();
    std::fs::remove_dir_all(kb_dir.join("bm25")).unwrap();
    let knowledge = open(dir.path());
    let kb = knowledge.get("acme", "help").unwrap();
    assert_eq!(
        search(
            &kb,
            "refund within 30 days",
            SearchMode::Hybrid,
            Filter::default()
        ),
        expected
    );
    assert_eq!(
        search(&kb, "bicycle couriers", SearchMode::Bm25, Filter::default())[0],
        "shipping"
    );
}

#[test]
fn tenants_never_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let knowledge = open(dir.path());
    let a = knowledge
        .get_or_create("tenant-a", "kb", english())
        .unwrap();
    let b = knowledge
        .get_or_create("tenant-b", "kb", english())
        .unwrap();
    a.ingest(corpus(), None, b"").unwrap();
    b.ingest(
        vec![doc(
            "b-only",
            Format::Text,
            "Our cafeteria serves vegetarian lunch on Fridays.",
            DocMetadata::default(),
        )],
        None,
        b"",
    )
    .unwrap();
    for mode in [SearchMode::Vector, SearchMode::Bm25, SearchMode::Hybrid] {
        for q in ["refund returned product", "pro plan price", "shipping days"] {
            assert!(search(&b, q, mode, Filter::default())
                .iter()
                .all(|d| d == "b-only"));
            let f = Filter {
                document_ids: vec!["returns".into(), "pricing".into()],
                ..Filter::default()
            };
            assert!(search(&b, q, mode, f).is_empty());
        }
        assert!(
            search(&a, "vegetarian lunch cafeteria", mode, Filter::default())
                .iter()
                .all(|d| d != "b-only")
        );
    }
    assert!(knowledge.get("tenant-c", "kb").is_err());
    assert_eq!(knowledge.list("tenant-a"), vec!["kb".to_owned()]);
}

#[test]
fn a_search_never_sees_half_of_a_replaced_document() {
    let dir = tempfile::tempdir().unwrap();
    let knowledge = open(dir.path());
    let kb = knowledge
        .get_or_create("acme", "versions", english())
        .unwrap();
    let version = |v: usize| {
        let paragraphs: Vec<String> = (0..6)
            .map(|p| format!("Release notes version v{v} paragraph {p}: the campaign planner gained feature number {p}."))
            .collect();
        doc(
            "notes",
            Format::Text,
            &paragraphs.join("\n\n"),
            DocMetadata::default(),
        )
    };
    let small = KbConfig {
        model: "minilm".into(),
        chunking: regelkreis_knowledge::chunk::ChunkParams {
            max_tokens: 24,
            overlap_tokens: 0,
        },
        ..KbConfig::default()
    };
    drop(kb);
    let kb = knowledge
        .get_or_create("acme", "versions2", Some(small))
        .unwrap();
    kb.ingest(vec![version(0)], None, b"").unwrap();
    let chunks = kb.chunk_count();
    assert!(chunks >= 3);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let kb = kb.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut checked = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for mode in [SearchMode::Bm25, SearchMode::Vector] {
                    let hits = kb
                        .search(&SearchRequest {
                            query: "release notes campaign planner feature".into(),
                            k: 20,
                            mode,
                            rerank: false,
                            filter: Filter::default(),
                            fusion: None,
                        })
                        .unwrap();
                    let versions: std::collections::HashSet<String> = hits
                        .iter()
                        .map(|h| {
                            h.text
                                .split_whitespace()
                                .find(|w| w.starts_with('v') && w.len() > 1)
                                .unwrap_or("")
                                .to_owned()
                        })
                        .collect();
                    assert!(
                        versions.len() <= 1,
                        "mixed versions in one search: {versions:?}"
                    );
                    assert_eq!(
                        hits.len(),
                        chunks,
                        "{mode:?}: a search saw a document with chunks missing"
                    );
                    checked += 1;
                }
            }
            checked
        })
    };
    for v in 1..=8 {
        kb.ingest(vec![version(v)], None, b"").unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
}

/// Markdown front matter fills the metadata the caller left unset; a page another one
/// supersedes stays searchable but `current_only` leaves it out, in every mode, also
/// after a restart.
#[test]
fn front_matter_marks_superseded_pages_that_current_only_leaves_out() {
    let dir = tempfile::tempdir().unwrap();
    let old = "---\ntitle: Price list 2024\ntype: prices\ndate: 2024-01-01\nsuperseded_by: prices-2026\ntags: [prices, archive]\nowner: sales\n---\n\n# Prices\n\nThe Aurora kettle costs 45 euros.\n";
    let new = "# Prices 2026\n\nThe Aurora kettle costs 49 euros.\n";
    {
        let knowledge = open(dir.path());
        let kb = knowledge
            .get_or_create("acme", "prices", english())
            .unwrap();
        let caller = DocMetadata {
            doc_type: Some("pricing".into()),
            ..DocMetadata::default()
        };
        kb.ingest(
            vec![
                doc("prices-2024", Format::Markdown, old, caller),
                doc("prices-2026", Format::Markdown, new, DocMetadata::default()),
            ],
            None,
            b"k",
        )
        .unwrap();
        let d = kb.document("prices-2024").unwrap().unwrap();
        assert_eq!(d.title.as_deref(), Some("Price list 2024"));
        assert_eq!(d.metadata.superseded_by.as_deref(), Some("prices-2026"));
        // The caller's type wins over the front matter's; the rest comes from it.
        assert_eq!(d.metadata.doc_type.as_deref(), Some("pricing"));
        assert_eq!(d.metadata.date.as_deref(), Some("2024-01-01"));
        assert_eq!(d.metadata.tags, vec!["prices", "archive"]);
        assert_eq!(d.metadata.extra["owner"], "sales");
        // The front matter itself is not indexed.
        assert!(search(&kb, "superseded_by", SearchMode::Bm25, Filter::default()).is_empty());
    }
    let knowledge = open(dir.path());
    let kb = knowledge.get("acme", "prices").unwrap();
    let current = Filter {
        current_only: true,
        ..Filter::default()
    };
    for mode in [SearchMode::Vector, SearchMode::Bm25, SearchMode::Hybrid] {
        let all = search(&kb, "Aurora kettle price", mode, Filter::default());
        assert!(all.contains(&"prices-2024".to_owned()), "{mode:?}: {all:?}");
        let now = search(&kb, "Aurora kettle price", mode, current.clone());
        assert_eq!(now, vec!["prices-2026".to_owned()], "{mode:?}");
    }
    // A front-matter date that is not a date is refused, naming the document.
    let bad = "---\ndate: yesterday\n---\n\nText.\n";
    let err = kb
        .ingest(
            vec![doc("bad", Format::Markdown, bad, DocMetadata::default())],
            None,
            b"k",
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad"), "{err}");
}
