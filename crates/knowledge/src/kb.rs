//! A knowledge base: documents and chunks in SQLite (the record), a vector index and a
//! BM25 index derived from it, and the search over both.
//!
//! **Invariant:** the SQLite file is the truth. An ingest commits documents, chunks and
//! their embeddings in one transaction, then applies the change to both indexes under
//! one write lock, so a search sees all of a change or none of it. The indexes carry the
//! sequence number of the last change they hold; on open, an index that is behind (a
//! crash between the commit and the index update, or before the vector file was saved)
//! is rebuilt from the database, with no embedding recomputed.
//!
//! Layout of a knowledge base folder: `kb.sqlite`, `vectors.hnsw` (or `vectors.flat`)
//! with `vectors.seq`, and `bm25/`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use rayon::prelude::*;
use regelkreis_guard::Guard;
use regelkreis_index::{
    Attributes, Condition, FlatIndex, HnswIndex, HnswParams, MetaFilter, MetadataIndex, Metric,
    VectorIndex,
};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bm25::{KeywordChunk, KeywordIndex};
use crate::cache::EmbeddingCache;
use crate::chunk::{chunk, ChunkParams};
use crate::embed::{Encoder, Role};
use crate::extract::{detect_language, extract, Format};
use crate::fusion::{fuse, mmr, Fusion};
use crate::models::Models;
use crate::KnowledgeError;

/// How a knowledge base is set up; fixed at creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KbConfig {
    /// Embedding model: "minilm" (English), "e5" (multilingual, German-capable),
    /// "auto" (chosen from the language of the first documents), or a model path.
    pub model: String,
    /// Vector engine: "hnsw" or "flat" (exact).
    pub engine: String,
    /// Chunk budget.
    pub chunking: ChunkParams,
    /// HNSW search breadth.
    pub ef_search: usize,
    /// Fusion used by hybrid search unless a request names one.
    pub fusion: Fusion,
}

impl Default for KbConfig {
    fn default() -> Self {
        Self {
            model: "auto".to_owned(),
            engine: "hnsw".to_owned(),
            chunking: ChunkParams::default(),
            ef_search: 96,
            fusion: Fusion::default(),
        }
    }
}

/// Metadata of a document, given at ingestion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DocMetadata {
    /// Where the document comes from (a URL or path); shown in citations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Language code; detected when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Document type ("faq", "policy", "product", …).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub doc_type: Option<String>,
    /// Date as `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The document that replaces this one (an id, title or URL): an outdated page kept
    /// for reference, which answers leave out unless asked to include it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    /// Anything else, kept as given.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A document to ingest.
#[derive(Debug, Clone)]
pub struct NewDocument {
    /// The caller's id; re-ingesting the same id replaces the document.
    pub id: String,
    /// Title; taken from the document when absent.
    pub title: Option<String>,
    /// Raw content.
    pub body: Vec<u8>,
    /// Format of `body`.
    pub format: Format,
    /// Metadata.
    pub metadata: DocMetadata,
}

/// A stored document's description.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredDocument {
    /// The id given at ingestion.
    pub id: String,
    /// Title.
    pub title: Option<String>,
    /// Language used.
    pub language: String,
    /// Metadata (the caller's, filled from front matter).
    pub metadata: DocMetadata,
}

/// What happened to one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DocStatus {
    /// New.
    Created,
    /// Changed and replaced.
    Updated,
    /// Same content as stored; nothing done.
    Unchanged,
}

/// Outcome for one document.
#[derive(Debug, Clone, Serialize)]
pub struct DocOutcome {
    /// Document id.
    pub id: String,
    /// What happened.
    pub status: DocStatus,
    /// Chunks it now has.
    pub chunks: usize,
    /// PII values redacted before embedding.
    pub pii_redacted: usize,
    /// Language used.
    pub language: String,
}

/// Outcome of an ingest call.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    /// Per document, in input order.
    pub documents: Vec<DocOutcome>,
    /// Chunks embedded by the model.
    pub chunks_embedded: usize,
    /// Chunks whose embedding came from the cache.
    pub chunks_cached: usize,
    /// Tokens run through the model.
    pub tokens_embedded: usize,
    /// Seconds spent extracting, redacting and chunking.
    pub prepare_s: f64,
    /// Seconds spent embedding, cache lookups and writes included.
    pub embed_s: f64,
    /// Of those, seconds in the model (tokenising and the encoder).
    pub model_s: f64,
    /// Seconds spent writing the database and the indexes.
    pub index_s: f64,
}

impl IngestReport {
    /// Adds another report's documents, counts and times to this one.
    pub fn absorb(&mut self, r: IngestReport) {
        self.documents.extend(r.documents);
        self.chunks_embedded += r.chunks_embedded;
        self.chunks_cached += r.chunks_cached;
        self.tokens_embedded += r.tokens_embedded;
        self.prepare_s += r.prepare_s;
        self.embed_s += r.embed_s;
        self.model_s += r.model_s;
        self.index_s += r.index_s;
    }
}

/// Search mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// BM25 and vectors, fused.
    #[default]
    Hybrid,
    /// Vectors only.
    Vector,
    /// BM25 only.
    Bm25,
}

/// A metadata filter, applied inside both searches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Filter {
    /// Only these documents.
    pub document_ids: Vec<String>,
    /// Only this language.
    pub language: Option<String>,
    /// Only this document type.
    #[serde(rename = "type")]
    pub doc_type: Option<String>,
    /// Only documents carrying all of these tags.
    pub tags: Vec<String>,
    /// Only documents dated on or after this day (`YYYY-MM-DD`).
    pub date_from: Option<String>,
    /// Only documents dated on or before this day.
    pub date_to: Option<String>,
    /// Only documents from this source.
    pub source: Option<String>,
    /// Leave out documents another one supersedes (`superseded_by` set).
    pub current_only: bool,
}

impl DocMetadata {
    /// Fills what the caller left unset from a document's front matter (`type`, `date`,
    /// `tags`, `language`, `source`, `superseded_by`, and any other key into `extra`);
    /// what the caller set wins.
    pub fn fill_from(&mut self, front_matter: &serde_json::Map<String, serde_json::Value>) {
        use serde_json::Value;
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
            _ => None,
        };
        for (key, value) in front_matter {
            let slot = match key.as_str() {
                "type" => &mut self.doc_type,
                "date" => &mut self.date,
                "language" | "lang" => &mut self.language,
                "source" => &mut self.source,
                "superseded_by" => &mut self.superseded_by,
                "title" => continue,
                "tags" => {
                    if self.tags.is_empty() {
                        self.tags = match value {
                            Value::Array(items) => items.iter().filter_map(text).collect(),
                            v => text(v).into_iter().collect(),
                        };
                    }
                    continue;
                }
                _ => {
                    self.extra
                        .entry(key.clone())
                        .or_insert_with(|| value.clone());
                    continue;
                }
            };
            if slot.is_none() {
                *slot = text(value);
            }
        }
    }
}

impl Filter {
    /// The filter as conditions over the fields `chunk_attributes` indexes.
    fn conditions(&self) -> MetaFilter {
        let mut all = Vec::new();
        if !self.document_ids.is_empty() {
            all.push(Condition::AnyOf {
                field: "document".into(),
                values: self.document_ids.clone(),
            });
        }
        for (field, value) in [
            ("language", &self.language),
            ("type", &self.doc_type),
            ("source", &self.source),
        ] {
            if let Some(v) = value {
                all.push(Condition::equals(field, v));
            }
        }
        if !self.tags.is_empty() {
            all.push(Condition::AllOf {
                field: "tag".into(),
                values: self.tags.clone(),
            });
        }
        if self.date_from.is_some() || self.date_to.is_some() {
            all.push(Condition::Range {
                field: "date".into(),
                min: self.date_from.as_deref().and_then(day_number),
                max: self.date_to.as_deref().and_then(day_number),
            });
        }
        if self.current_only {
            all.push(Condition::equals("current", "yes"));
        }
        MetaFilter { conditions: all }
    }

    /// The definition the postings answer, for the test that compares them.
    #[cfg(test)]
    fn matches(&self, d: &DocInfo) -> bool {
        (self.document_ids.is_empty() || self.document_ids.contains(&d.id))
            && self.language.as_ref().is_none_or(|l| *l == d.language)
            && self
                .doc_type
                .as_ref()
                .is_none_or(|t| d.doc_type.as_ref() == Some(t))
            && self.tags.iter().all(|t| d.tags.contains(t))
            && self
                .source
                .as_ref()
                .is_none_or(|s| d.source.as_ref() == Some(s))
            && self.date_from.as_deref().is_none_or(|f| {
                d.date
                    .as_deref()
                    .and_then(day_number)
                    .is_some_and(|x| Some(x) >= day_number(f))
            })
            && self.date_to.as_deref().is_none_or(|t| {
                d.date
                    .as_deref()
                    .and_then(day_number)
                    .is_some_and(|x| Some(x) <= day_number(t))
            })
            && !(self.current_only && d.superseded)
    }
}

/// A search request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// The query text.
    pub query: String,
    /// Results wanted (1–100).
    #[serde(default = "default_k")]
    pub k: usize,
    /// Mode.
    #[serde(default)]
    pub mode: SearchMode,
    /// Diversify the results with maximal marginal relevance.
    #[serde(default)]
    pub rerank: bool,
    /// Metadata filter.
    #[serde(default)]
    pub filter: Filter,
    /// Fusion for hybrid mode (the knowledge base's default when absent).
    #[serde(default)]
    pub fusion: Option<Fusion>,
}

fn default_k() -> usize {
    10
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    /// The id given at ingestion.
    pub document_id: String,
    /// Chunk id.
    pub chunk_id: u64,
    /// Score (higher is better; scale depends on the mode).
    pub score: f32,
    /// The chunk text, exactly as in the (redacted) document.
    pub text: String,
    /// Document source.
    pub source: Option<String>,
    /// Document title.
    pub title: Option<String>,
    /// Headings above the chunk.
    pub heading_path: Vec<String>,
    /// Character offset of the chunk in the document text.
    pub start: usize,
    /// Character offset one past the chunk's end.
    pub end: usize,
    /// Language of the chunk.
    pub language: String,
}

/// Most results a search returns.
pub const MAX_K: usize = 100;
/// Candidates each side contributes to fusion and re-ranking.
const CANDIDATES: usize = 50;

/// What a filter needs to know about a document, kept in memory.
#[derive(Debug, Clone)]
struct DocInfo {
    id: String,
    language: String,
    doc_type: Option<String>,
    date: Option<String>,
    tags: Vec<String>,
    source: Option<String>,
    superseded: bool,
}

enum Vectors {
    Hnsw(Box<HnswIndex>),
    Flat(FlatIndex),
}

impl Vectors {
    fn index(&self) -> &dyn VectorIndex {
        match self {
            Vectors::Hnsw(i) => i.as_ref(),
            Vectors::Flat(i) => i,
        }
    }
    fn index_mut(&mut self) -> &mut dyn VectorIndex {
        match self {
            Vectors::Hnsw(i) => i.as_mut(),
            Vectors::Flat(i) => i,
        }
    }
    fn save(&self, path: &Path) -> Result<(), KnowledgeError> {
        match self {
            Vectors::Hnsw(i) => i.save(path)?,
            Vectors::Flat(i) => i.save(path)?,
        }
        Ok(())
    }
    fn insert(&mut self, items: &[(u64, &[f32])]) -> Result<(), KnowledgeError> {
        match self {
            Vectors::Hnsw(i) => i.upsert_batch(items, rayon::current_num_threads().max(1))?,
            Vectors::Flat(i) => {
                for (id, v) in items {
                    i.upsert(*id, v)?;
                }
            }
        }
        Ok(())
    }
}

struct State {
    vectors: Option<Vectors>,
    keywords: KeywordIndex,
    /// Chunk id → (document index in `docs`, language).
    chunks: HashMap<u64, (Arc<DocInfo>, Arc<str>)>,
    /// Postings of every chunk's document metadata, which filters are answered from.
    meta: MetadataIndex,
    docs: HashMap<String, Arc<DocInfo>>,
    seq: u64,
    /// Vector changes not yet saved to the vector file.
    unsaved: usize,
}

/// One knowledge base of one tenant.
pub struct KnowledgeBase {
    tenant: String,
    name: String,
    dir: PathBuf,
    config: KbConfig,
    db: Mutex<Connection>,
    models: Arc<Models>,
    cache: Arc<EmbeddingCache>,
    /// The resolved model name ("minilm", "e5" or a path); `None` until an "auto"
    /// knowledge base has seen documents.
    model: RwLock<Option<String>>,
    state: RwLock<State>,
    /// Serialises writers, so preparation (the slow part) happens outside `state`.
    writer: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}
fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    title TEXT,
    format TEXT NOT NULL,
    language TEXT NOT NULL,
    metadata TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    text TEXT NOT NULL,
    pii_redacted INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ord INTEGER NOT NULL,
    start_char INTEGER NOT NULL,
    end_char INTEGER NOT NULL,
    heading_path TEXT NOT NULL,
    language TEXT NOT NULL,
    text TEXT NOT NULL,
    embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document);
";

fn vector_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn vector_from(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// A chunk prepared for storage.
struct PreparedChunk {
    start_char: usize,
    end_char: usize,
    heading_path: Vec<String>,
    text: String,
    /// What is embedded and keyword-indexed: title, headings and text.
    indexed: String,
    embedding: Vec<f32>,
}

struct PreparedDoc {
    id: String,
    title: Option<String>,
    format: Format,
    language: String,
    metadata: DocMetadata,
    hash: String,
    text: String,
    pii: usize,
    chunks: Vec<PreparedChunk>,
    status: DocStatus,
}

impl KnowledgeBase {
    /// Opens (or with `config`, creates) the knowledge base in `dir`.
    pub(crate) fn open(
        tenant: &str,
        name: &str,
        dir: &Path,
        config: Option<KbConfig>,
        models: Arc<Models>,
        cache: Arc<EmbeddingCache>,
    ) -> Result<Self, KnowledgeError> {
        std::fs::create_dir_all(dir)?;
        let conn = Connection::open(dir.join("kb.sqlite"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        let stored: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'config'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let config = match (stored, config) {
            (Some(json), _) => serde_json::from_str(&json).map_err(|e| {
                KnowledgeError::Invalid(format!("stored configuration unreadable: {e}"))
            })?,
            (None, Some(config)) => {
                validate_config(&config)?;
                let json = serde_json::to_string(&config)
                    .map_err(|e| KnowledgeError::Invalid(e.to_string()))?;
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('config', ?1)",
                    params![json],
                )?;
                config
            }
            (None, None) => {
                return Err(KnowledgeError::NotFound(format!(
                    "knowledge base {name} does not exist"
                )))
            }
        };
        let seq: u64 = conn
            .query_row("SELECT value FROM meta WHERE key = 'seq'", [], |r| {
                r.get::<_, String>(0)
            })
            .optional()?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let model: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'model'", [], |r| {
                r.get(0)
            })
            .optional()?
            .or_else(|| (config.model != "auto").then(|| config.model.clone()));
        let keywords = KeywordIndex::open(&dir.join("bm25"))?;
        let kb = Self {
            tenant: tenant.to_owned(),
            name: name.to_owned(),
            dir: dir.to_owned(),
            config,
            db: Mutex::new(conn),
            models,
            cache,
            model: RwLock::new(model),
            state: RwLock::new(State {
                vectors: None,
                keywords,
                chunks: HashMap::new(),
                meta: MetadataIndex::new(),
                docs: HashMap::new(),
                seq,
                unsaved: 0,
            }),
            writer: Mutex::new(()),
        };
        kb.recover()?;
        Ok(kb)
    }

    /// Tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Configuration.
    pub fn config(&self) -> &KbConfig {
        &self.config
    }

    /// Documents.
    pub fn document_count(&self) -> usize {
        read(&self.state).docs.len()
    }

    /// Chunks.
    pub fn chunk_count(&self) -> usize {
        read(&self.state).chunks.len()
    }

    fn vector_path(&self) -> PathBuf {
        self.dir.join(if self.config.engine == "flat" {
            "vectors.flat"
        } else {
            "vectors.hnsw"
        })
    }

    fn new_vectors(&self, dim: usize) -> Vectors {
        if self.config.engine == "flat" {
            Vectors::Flat(FlatIndex::new(Metric::Cosine, dim))
        } else {
            Vectors::Hnsw(Box::new(HnswIndex::new(
                Metric::Cosine,
                dim,
                HnswParams::default(),
            )))
        }
    }

    /// Loads the in-memory metadata and brings both indexes up to the database.
    fn recover(&self) -> Result<(), KnowledgeError> {
        // Same lock order as everywhere else: state, then database.
        let mut state = write(&self.state);
        let db = lock(&self.db);
        let mut docs = HashMap::new();
        {
            let mut stmt = db.prepare("SELECT id, language, metadata FROM documents")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            for row in rows {
                let (id, language, metadata) = row?;
                let m: DocMetadata = serde_json::from_str(&metadata).unwrap_or_default();
                docs.insert(id.clone(), Arc::new(doc_info(&id, &language, &m)));
            }
        }
        let mut chunks = HashMap::new();
        let mut meta = MetadataIndex::new();
        let keyword_behind = state.keywords.committed_seq()? != state.seq;
        let seq_file = self.dir.join("vectors.seq");
        let saved_seq = std::fs::read_to_string(&seq_file)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        let mut vectors = if saved_seq == Some(state.seq) && self.vector_path().exists() {
            match self.config.engine.as_str() {
                "flat" => FlatIndex::open(&self.vector_path()).map(Vectors::Flat).ok(),
                _ => HnswIndex::open(&self.vector_path())
                    .map(|i| Vectors::Hnsw(Box::new(i)))
                    .ok(),
            }
        } else {
            None
        };
        let rebuild_vectors = vectors.is_none();
        if keyword_behind {
            state.keywords.clear()?;
        }
        let mut pending: Vec<(u64, Vec<f32>)> = Vec::new();
        {
            let mut stmt = db.prepare(
                "SELECT c.id, c.document, c.language, c.text, c.embedding, c.heading_path, d.title
                 FROM chunks c JOIN documents d ON d.id = c.document ORDER BY c.id",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let id: i64 = r.get(0)?;
                let id = id as u64;
                let document: String = r.get(1)?;
                let language: String = r.get(2)?;
                let Some(info) = docs.get(&document) else {
                    continue;
                };
                chunks.insert(id, (info.clone(), Arc::<str>::from(language.as_str())));
                meta.set(id, chunk_attributes(info));
                if keyword_behind {
                    let text: String = r.get(3)?;
                    let path: String = r.get(5)?;
                    let title: Option<String> = r.get(6)?;
                    let path: Vec<String> = serde_json::from_str(&path).unwrap_or_default();
                    let indexed = indexed_text(title.as_deref(), &path, &text);
                    state.keywords.add(&KeywordChunk {
                        id,
                        document: &document,
                        language: &language,
                        text: &indexed,
                    })?;
                }
                if rebuild_vectors {
                    let blob: Vec<u8> = r.get(4)?;
                    pending.push((id, vector_from(&blob)));
                }
            }
        }
        if keyword_behind {
            let seq = state.seq;
            state.keywords.commit(seq)?;
            tracing::info!(kb = %self.name, chunks = chunks.len(), "keyword index rebuilt from the database");
        }
        if rebuild_vectors && !pending.is_empty() {
            let dim = pending[0].1.len();
            let mut v = self.new_vectors(dim);
            let items: Vec<(u64, &[f32])> =
                pending.iter().map(|(id, v)| (*id, v.as_slice())).collect();
            v.insert(&items)?;
            vectors = Some(v);
            state.unsaved = pending.len();
            tracing::info!(kb = %self.name, vectors = pending.len(), "vector index rebuilt from the database");
        }
        state.vectors = vectors;
        state.docs = docs;
        state.chunks = chunks;
        state.meta = meta;
        drop(db);
        drop(state);
        if rebuild_vectors {
            self.save_vectors()?;
        }
        Ok(())
    }

    /// Writes the vector index and its sequence number (write new, fsync, rename).
    pub fn save_vectors(&self) -> Result<(), KnowledgeError> {
        let mut state = write(&self.state);
        if let Some(v) = &state.vectors {
            v.save(&self.vector_path())?;
        }
        let tmp = self.dir.join("vectors.seq.tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            write!(f, "{}", state.seq)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, self.dir.join("vectors.seq"))?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        state.unsaved = 0;
        Ok(())
    }

    fn encoder(&self, model: &str) -> Result<Arc<Encoder>, KnowledgeError> {
        self.models.get(model)
    }

    /// Ingests a batch: every document is extracted, redacted with `guard` (when given,
    /// keyed by `redaction_key`), chunked and embedded; then the whole batch is
    /// committed at once and becomes searchable in one step. Documents whose content
    /// is unchanged are skipped.
    pub fn ingest(
        &self,
        documents: Vec<NewDocument>,
        guard: Option<&Guard>,
        redaction_key: &[u8],
    ) -> Result<IngestReport, KnowledgeError> {
        let _writer = lock(&self.writer);
        let mut report = IngestReport::default();
        let mut seen = HashSet::new();
        for d in &documents {
            validate_id(&d.id)?;
            if !seen.insert(d.id.as_str()) {
                return Err(KnowledgeError::Invalid(format!(
                    "document id {:?} appears twice in the batch",
                    d.id
                )));
            }
        }
        let t0 = Instant::now();
        // Extract and redact; decide the model of an "auto" knowledge base.
        let mut extracted = Vec::with_capacity(documents.len());
        for mut d in documents {
            let e = extract(&d.body, d.format)?;
            d.metadata.fill_from(&e.front_matter);
            if let Some(date) = &d.metadata.date {
                validate_date(date)
                    .map_err(|e| KnowledgeError::Invalid(format!("document {:?}: {e}", d.id)))?;
            }
            let front_title = e
                .front_matter
                .get("title")
                .and_then(|t| t.as_str())
                .map(str::to_owned);
            let (text, mut blocks, pii) = match guard {
                Some(g) => {
                    let (r, spans) = g.redact(&e.text, redaction_key);
                    let mut blocks = e.blocks;
                    for b in &mut blocks {
                        b.range =
                            r.map_offset(b.range.start, true)..r.map_offset(b.range.end, false);
                    }
                    (r.text, blocks, spans.len())
                }
                None => (e.text, e.blocks, 0),
            };
            blocks.retain(|b| b.range.start < b.range.end && b.range.end <= text.len());
            let language = d
                .metadata
                .language
                .clone()
                .or_else(|| detect_language(&text))
                .unwrap_or_else(|| "und".to_owned());
            let title = d.title.clone().or(front_title).or(e.title);
            extracted.push((d, title, text, blocks, pii, language));
        }
        let model = self.resolve_model(extracted.iter().map(|x| x.5.as_str()))?;
        let encoder = self.encoder(&model)?;
        let count = |s: &str| encoder.count_tokens(s);
        let mut prepared = Vec::with_capacity(extracted.len());
        {
            let db = lock(&self.db);
            for (d, title, text, blocks, pii, language) in extracted {
                let mut meta = d.metadata.clone();
                meta.language = None;
                let hash = content_hash(
                    &model,
                    &self.config.chunking,
                    title.as_deref(),
                    &text,
                    &language,
                    &meta,
                );
                let existing: Option<String> = db
                    .query_row(
                        "SELECT content_hash FROM documents WHERE id = ?1",
                        params![d.id],
                        |r| r.get(0),
                    )
                    .optional()?;
                let status = match existing {
                    Some(h) if h == hash => DocStatus::Unchanged,
                    Some(_) => DocStatus::Updated,
                    None => DocStatus::Created,
                };
                let chunks = if status == DocStatus::Unchanged {
                    Vec::new()
                } else {
                    chunk(&text, &blocks, self.config.chunking, &count)
                        .into_iter()
                        .map(|c| {
                            let body = text[c.range.clone()].to_owned();
                            PreparedChunk {
                                start_char: text[..c.range.start].chars().count(),
                                end_char: text[..c.range.end].chars().count(),
                                indexed: indexed_text(title.as_deref(), &c.heading_path, &body),
                                heading_path: c.heading_path,
                                text: body,
                                embedding: Vec::new(),
                            }
                        })
                        .collect()
                };
                prepared.push(PreparedDoc {
                    id: d.id,
                    title,
                    format: d.format,
                    language,
                    metadata: meta,
                    hash,
                    text,
                    pii,
                    chunks,
                    status,
                });
            }
        }
        report.prepare_s = t0.elapsed().as_secs_f64();

        // Embed what the cache does not have.
        let t1 = Instant::now();
        let mut missing: Vec<(usize, usize, [u8; 32])> = Vec::new();
        for (di, d) in prepared.iter_mut().enumerate() {
            for (ci, c) in d.chunks.iter_mut().enumerate() {
                let key: [u8; 32] = Sha256::digest(c.indexed.as_bytes()).into();
                match self.cache.get(encoder.id(), &key)? {
                    Some(v) if v.len() == encoder.dim() => {
                        c.embedding = v;
                        report.chunks_cached += 1;
                    }
                    _ => missing.push((di, ci, key)),
                }
            }
        }
        if !missing.is_empty() {
            let texts: Vec<&str> = missing
                .iter()
                .map(|&(di, ci, _)| prepared[di].chunks[ci].indexed.as_str())
                .collect();
            let model_started = Instant::now();
            let tokens: Vec<Vec<u32>> = texts
                .par_iter()
                .map(|t| encoder.tokenize(t, Role::Passage))
                .collect::<Result<_, _>>()?;
            report.tokens_embedded = tokens.iter().map(Vec::len).sum();
            let vectors = encoder.embed_tokens(&tokens)?;
            report.model_s = model_started.elapsed().as_secs_f64();
            let mut fresh = Vec::with_capacity(vectors.len());
            for (&(di, ci, key), v) in missing.iter().zip(vectors) {
                fresh.push((key, v.clone()));
                prepared[di].chunks[ci].embedding = v;
            }
            self.cache.put(encoder.id(), &fresh)?;
            report.chunks_embedded = missing.len();
        }
        report.embed_s = t1.elapsed().as_secs_f64();

        // Commit to the database, then apply to the indexes in one step.
        let t2 = Instant::now();
        let changed: Vec<&PreparedDoc> = prepared
            .iter()
            .filter(|d| d.status != DocStatus::Unchanged)
            .collect();
        if !changed.is_empty() {
            // Lock order everywhere: state, then database. Holding the state's write
            // lock across the commit means a search (which reads chunk rows under the
            // read lock) never ranks old chunks and then finds their rows gone.
            let mut state = write(&self.state);
            let mut db = lock(&self.db);
            let tx = db.transaction()?;
            let seq = state.seq + 1;
            let mut removed: Vec<u64> = Vec::new();
            let mut added: Vec<(u64, &PreparedDoc, &PreparedChunk)> = Vec::new();
            {
                let mut old = tx.prepare("SELECT id FROM chunks WHERE document = ?1")?;
                let mut ins_chunk = tx.prepare(
                    "INSERT INTO chunks (document, ord, start_char, end_char, heading_path, language, text, embedding)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for d in &changed {
                    let ids: Vec<i64> = old
                        .query_map(params![d.id], |r| r.get(0))?
                        .collect::<Result<_, _>>()?;
                    removed.extend(ids.into_iter().map(|i| i as u64));
                    tx.execute("DELETE FROM chunks WHERE document = ?1", params![d.id])?;
                    let metadata = serde_json::to_string(&d.metadata)
                        .map_err(|e| KnowledgeError::Invalid(e.to_string()))?;
                    tx.execute(
                        "INSERT INTO documents (id, title, format, language, metadata, content_hash, text, pii_redacted, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                         ON CONFLICT(id) DO UPDATE SET title = ?2, format = ?3, language = ?4, metadata = ?5,
                           content_hash = ?6, text = ?7, pii_redacted = ?8, updated_at = ?9",
                        params![
                            d.id,
                            d.title,
                            d.format.name(),
                            d.language,
                            metadata,
                            d.hash,
                            d.text,
                            d.pii as i64,
                            now_seconds()
                        ],
                    )?;
                    for (ord, c) in d.chunks.iter().enumerate() {
                        let path =
                            serde_json::to_string(&c.heading_path).unwrap_or_else(|_| "[]".into());
                        ins_chunk.execute(params![
                            d.id,
                            ord as i64,
                            c.start_char as i64,
                            c.end_char as i64,
                            path,
                            d.language,
                            c.text,
                            vector_bytes(&c.embedding)
                        ])?;
                        added.push((tx.last_insert_rowid() as u64, d, c));
                    }
                }
            }
            write_seq(&tx, seq)?;
            tx.commit()?;
            drop(db);
            // Acknowledged from here on: the database holds the change. The indexes
            // follow under the same write lock (rebuilt from the database after a crash).
            if state.vectors.is_none() {
                state.vectors = Some(self.new_vectors(encoder.dim()));
            }
            for id in &removed {
                if let Some(v) = state.vectors.as_mut() {
                    v.index_mut().remove(*id);
                }
                state.chunks.remove(id);
                state.meta.remove(*id);
            }
            let items: Vec<(u64, &[f32])> = added
                .iter()
                .map(|(id, _, c)| (*id, c.embedding.as_slice()))
                .collect();
            if let Some(v) = state.vectors.as_mut() {
                v.insert(&items)?;
            }
            for d in &changed {
                state.keywords.remove_document(&d.id);
                let info = Arc::new(doc_info(&d.id, &d.language, &d.metadata));
                state.docs.insert(d.id.clone(), info);
            }
            for (id, d, c) in &added {
                state.keywords.add(&KeywordChunk {
                    id: *id,
                    document: &d.id,
                    language: &d.language,
                    text: &c.indexed,
                })?;
                let info = state
                    .docs
                    .get(&d.id)
                    .cloned()
                    .ok_or_else(|| KnowledgeError::Invalid("lost document".into()))?;
                state.meta.set(*id, chunk_attributes(&info));
                state
                    .chunks
                    .insert(*id, (info, Arc::from(d.language.as_str())));
            }
            state.keywords.commit(seq)?;
            state.seq = seq;
            state.unsaved += removed.len() + added.len();
        }
        report.index_s = t2.elapsed().as_secs_f64();
        // Chunk counts of unchanged documents: one pass over the chunks, not one per document.
        let mut unchanged_chunks: HashMap<&str, usize> = prepared
            .iter()
            .filter(|d| d.status == DocStatus::Unchanged)
            .map(|d| (d.id.as_str(), 0))
            .collect();
        if !unchanged_chunks.is_empty() {
            for (info, _) in read(&self.state).chunks.values() {
                if let Some(n) = unchanged_chunks.get_mut(info.id.as_str()) {
                    *n += 1;
                }
            }
        }
        report.documents = prepared
            .iter()
            .map(|d| DocOutcome {
                id: d.id.clone(),
                status: d.status.clone(),
                chunks: if d.status == DocStatus::Unchanged {
                    unchanged_chunks.get(d.id.as_str()).copied().unwrap_or(0)
                } else {
                    d.chunks.len()
                },
                pii_redacted: d.pii,
                language: d.language.clone(),
            })
            .collect();
        Ok(report)
    }

    /// Saves the vector file when enough changes piled up since the last save (the
    /// database already holds them; saving only shortens recovery).
    pub fn maybe_save(&self, threshold: usize) -> Result<(), KnowledgeError> {
        if read(&self.state).unsaved >= threshold.max(1) {
            self.save_vectors()?;
        }
        Ok(())
    }

    /// Removes a document from the database and both indexes; returns whether it existed.
    pub fn remove(&self, id: &str) -> Result<bool, KnowledgeError> {
        let _writer = lock(&self.writer);
        let mut state = write(&self.state);
        let mut db = lock(&self.db);
        let tx = db.transaction()?;
        let ids: Vec<i64> = tx
            .prepare("SELECT id FROM chunks WHERE document = ?1")?
            .query_map(params![id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        tx.execute("DELETE FROM chunks WHERE document = ?1", params![id])?;
        let n = tx.execute("DELETE FROM documents WHERE id = ?1", params![id])?;
        if n == 0 {
            return Ok(false);
        }
        let seq = state.seq + 1;
        write_seq(&tx, seq)?;
        tx.commit()?;
        drop(db);
        for cid in &ids {
            if let Some(v) = state.vectors.as_mut() {
                v.index_mut().remove(*cid as u64);
            }
            state.chunks.remove(&(*cid as u64));
            state.meta.remove(*cid as u64);
        }
        state.docs.remove(id);
        state.keywords.remove_document(id);
        state.keywords.commit(seq)?;
        state.seq = seq;
        state.unsaved += ids.len();
        Ok(true)
    }

    /// The model of an "auto" knowledge base: multilingual when most documents of the
    /// first batch are not English, else MiniLM; fixed from then on.
    fn resolve_model<'a>(
        &self,
        languages: impl Iterator<Item = &'a str>,
    ) -> Result<String, KnowledgeError> {
        if let Some(m) = read(&self.model).clone() {
            return Ok(m);
        }
        let mut guard = write(&self.model);
        if let Some(m) = guard.clone() {
            return Ok(m);
        }
        let (mut english, mut other) = (0, 0);
        for l in languages {
            if l == "en" {
                english += 1;
            } else if l != "und" {
                other += 1;
            }
        }
        let model = if other > english { "e5" } else { "minilm" }.to_owned();
        lock(&self.db).execute(
            "INSERT INTO meta (key, value) VALUES ('model', ?1) ON CONFLICT(key) DO UPDATE SET value = ?1",
            params![model],
        )?;
        *guard = Some(model.clone());
        Ok(model)
    }

    /// A document's title, language and metadata as stored, if it exists.
    pub fn document(&self, id: &str) -> Result<Option<StoredDocument>, KnowledgeError> {
        let db = lock(&self.db);
        let row = db
            .query_row(
                "SELECT title, language, metadata FROM documents WHERE id = ?1",
                params![id],
                |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )
            .optional()?;
        Ok(row.map(|(title, language, metadata)| StoredDocument {
            id: id.to_owned(),
            title,
            language,
            metadata: serde_json::from_str(&metadata).unwrap_or_default(),
        }))
    }

    /// A chunk by id: its document id, its text and its character offset in the
    /// document (what a citation is checked against).
    pub fn chunk(&self, chunk_id: u64) -> Result<Option<(String, String, usize)>, KnowledgeError> {
        let db = lock(&self.db);
        let row = db
            .query_row(
                "SELECT document, text, start_char FROM chunks WHERE id = ?1",
                params![i64::try_from(chunk_id).unwrap_or(i64::MAX)],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                },
            )
            .optional()?;
        Ok(row.map(|(d, t, s)| (d, t, usize::try_from(s).unwrap_or(0))))
    }

    /// Cosine similarity of two texts under the base's embedding model (as passages), or
    /// `None` while the base has no model yet.
    pub fn similarity(&self, a: &str, b: &str) -> Result<Option<f32>, KnowledgeError> {
        let Some(model) = self.model() else {
            return Ok(None);
        };
        let v = self.encoder(&model)?.embed(&[a, b], Role::Passage)?;
        let (x, y) = (&v[0], &v[1]);
        let dot: f32 = x.iter().zip(y).map(|(p, q)| p * q).sum();
        let nx: f32 = x.iter().map(|p| p * p).sum::<f32>().sqrt();
        let ny: f32 = y.iter().map(|q| q * q).sum::<f32>().sqrt();
        Ok((nx > 0.0 && ny > 0.0).then(|| dot / (nx * ny)))
    }

    /// The resolved embedding model, if decided.
    pub fn model(&self) -> Option<String> {
        read(&self.model).clone()
    }

    /// Searches the knowledge base.
    pub fn search(&self, req: &SearchRequest) -> Result<Vec<SearchHit>, KnowledgeError> {
        if req.query.trim().is_empty() {
            return Err(KnowledgeError::Invalid("query must not be empty".into()));
        }
        if req.k == 0 || req.k > MAX_K {
            return Err(KnowledgeError::Invalid(format!(
                "k must be between 1 and {MAX_K}"
            )));
        }
        for d in [&req.filter.date_from, &req.filter.date_to]
            .into_iter()
            .flatten()
        {
            validate_date(d)?;
        }
        let model = self.model();
        // Embed the query before taking the lock.
        let query_vector = match (req.mode, &model) {
            (SearchMode::Bm25, _) | (_, None) => None,
            (_, Some(m)) => Some(
                self.encoder(m)?
                    .embed(&[req.query.as_str()], Role::Query)?
                    .remove(0),
            ),
        };
        let state = read(&self.state);
        // The filter answered from postings: its cost follows the postings it reads, not
        // the number of chunks.
        let matches = state.meta.matching(&req.filter.conditions());
        if matches.count() == Some(0) {
            return Ok(Vec::new());
        }
        let depth = if req.rerank || req.mode == SearchMode::Hybrid {
            CANDIDATES.max(req.k)
        } else {
            req.k
        };
        let keyword = if req.mode == SearchMode::Vector {
            Vec::new()
        } else {
            // the collector wants an owned filter: the answer's own ids (a list or a
            // bitset), copied, not a hash set built from them
            let allowed = matches.count().map(|_| {
                let owned = matches.clone().into_owned();
                Arc::new(move |id: u64| owned.contains(id)) as crate::bm25::Allowed
            });
            state.keywords.search(&req.query, depth, allowed)?
        };
        let vector = match (&query_vector, &state.vectors) {
            (Some(q), Some(v)) if req.mode != SearchMode::Bm25 => {
                let ef = self.config.ef_search.max(depth);
                // a small answer is searched among (exact when that is cheaper), a large
                // one filters the walk as a bitset
                let hits = matches.search(v.index(), q, depth, ef)?;
                // Cosine distance → similarity.
                hits.into_iter().map(|h| (h.id, 1.0 - h.distance)).collect()
            }
            _ => Vec::new(),
        };
        let mut ranked = match req.mode {
            SearchMode::Bm25 => keyword,
            SearchMode::Vector => vector,
            SearchMode::Hybrid => fuse(&keyword, &vector, req.fusion.unwrap_or(self.config.fusion)),
        };
        // The rows are read under the same read lock as the ranking: a concurrent
        // replacement commits only under the write lock, so every ranked chunk exists.
        if req.rerank && ranked.len() > 1 {
            ranked.truncate(CANDIDATES.max(req.k));
            let vectors = self.embeddings(&ranked.iter().map(|r| r.0).collect::<Vec<_>>())?;
            let candidates: Vec<(u64, f32, Vec<f32>)> = ranked
                .iter()
                .filter_map(|(id, s)| vectors.get(id).map(|v| (*id, *s, v.clone())))
                .collect();
            ranked = mmr(&candidates, req.k, 0.7);
        }
        ranked.truncate(req.k);
        let hits = self.hits(&ranked);
        drop(state);
        hits
    }

    fn embeddings(&self, ids: &[u64]) -> Result<HashMap<u64, Vec<f32>>, KnowledgeError> {
        let db = lock(&self.db);
        let mut stmt = db.prepare_cached("SELECT embedding FROM chunks WHERE id = ?1")?;
        let mut out = HashMap::with_capacity(ids.len());
        for &id in ids {
            if let Some(b) = stmt
                .query_row(params![id as i64], |r| r.get::<_, Vec<u8>>(0))
                .optional()?
            {
                out.insert(id, vector_from(&b));
            }
        }
        Ok(out)
    }

    fn hits(&self, ranked: &[(u64, f32)]) -> Result<Vec<SearchHit>, KnowledgeError> {
        let db = lock(&self.db);
        let mut stmt = db.prepare_cached(
            "SELECT c.document, c.text, c.heading_path, c.start_char, c.end_char, c.language, d.title, d.metadata
             FROM chunks c JOIN documents d ON d.id = c.document WHERE c.id = ?1",
        )?;
        let mut out = Vec::with_capacity(ranked.len());
        for &(id, score) in ranked {
            let row = stmt
                .query_row(params![id as i64], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, String>(7)?,
                    ))
                })
                .optional()?;
            // A chunk replaced between ranking and reading is skipped, never half-shown.
            let Some((document_id, text, path, start, end, language, title, metadata)) = row else {
                continue;
            };
            let meta: DocMetadata = serde_json::from_str(&metadata).unwrap_or_default();
            out.push(SearchHit {
                document_id,
                chunk_id: id,
                score,
                text,
                source: meta.source,
                title,
                heading_path: serde_json::from_str(&path).unwrap_or_default(),
                start: start as usize,
                end: end as usize,
                language,
            });
        }
        Ok(out)
    }
}

/// Records the sequence number of a change inside its transaction.
fn write_seq(tx: &rusqlite::Transaction<'_>, seq: u64) -> Result<(), KnowledgeError> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('seq', ?1) ON CONFLICT(key) DO UPDATE SET value = ?1",
        params![seq.to_string()],
    )?;
    Ok(())
}

/// A chunk's metadata as the fields filters ask about: its document, language, type,
/// source, tags, whether it is current, and its date as a day number.
fn chunk_attributes(info: &DocInfo) -> Attributes {
    let current = if info.superseded { "no" } else { "yes" };
    let mut keywords = vec![
        ("document".to_owned(), info.id.clone()),
        ("language".to_owned(), info.language.clone()),
        ("current".to_owned(), current.to_owned()),
    ];
    for (field, value) in [("type", &info.doc_type), ("source", &info.source)] {
        if let Some(v) = value {
            keywords.push((field.to_owned(), v.clone()));
        }
    }
    keywords.extend(info.tags.iter().map(|t| ("tag".to_owned(), t.clone())));
    Attributes {
        keywords,
        numbers: info
            .date
            .as_deref()
            .and_then(day_number)
            .map(|d| ("date".to_owned(), d))
            .into_iter()
            .collect(),
    }
}

/// A date starting `YYYY-MM-DD` as the number yyyymmdd, ordered as the days are (a time
/// after the day is ignored); `None` for anything else.
fn day_number(date: &str) -> Option<i64> {
    let day = date.get(..10)?;
    validate_date(day).ok()?;
    let part = |r: std::ops::Range<usize>| day[r].parse::<i64>().ok();
    Some(part(0..4)? * 10_000 + part(5..7)? * 100 + part(8..10)?)
}

fn doc_info(id: &str, language: &str, m: &DocMetadata) -> DocInfo {
    DocInfo {
        id: id.to_owned(),
        language: language.to_owned(),
        doc_type: m.doc_type.clone(),
        date: m.date.clone(),
        tags: m.tags.clone(),
        source: m.source.clone(),
        superseded: m.superseded_by.is_some(),
    }
}

/// What is embedded and keyword-indexed for a chunk: the title and heading path give a
/// chunk the context its text alone may lack.
fn indexed_text(title: Option<&str>, path: &[String], text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 64);
    if let Some(t) = title {
        if path.first().map(String::as_str) != Some(t) {
            s.push_str(t);
            s.push('\n');
        }
    }
    if !path.is_empty() {
        s.push_str(&path.join(" › "));
        s.push('\n');
    }
    s.push_str(text);
    s
}

fn content_hash(
    model: &str,
    chunking: &ChunkParams,
    title: Option<&str>,
    text: &str,
    language: &str,
    meta: &DocMetadata,
) -> String {
    let mut h = Sha256::new();
    for part in [
        model,
        &format!("{}:{}", chunking.max_tokens, chunking.overlap_tokens),
        title.unwrap_or(""),
        language,
        &serde_json::to_string(meta).unwrap_or_default(),
        text,
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn validate_id(id: &str) -> Result<(), KnowledgeError> {
    if id.is_empty() || id.len() > 512 || id.chars().any(char::is_control) {
        return Err(KnowledgeError::Invalid(
            "document id must be 1–512 bytes without control characters".into(),
        ));
    }
    Ok(())
}

fn validate_date(d: &str) -> Result<(), KnowledgeError> {
    let b = d.as_bytes();
    let ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && (1..=12).contains(&d[5..7].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&d[8..10].parse::<u32>().unwrap_or(0));
    if ok {
        Ok(())
    } else {
        Err(KnowledgeError::Invalid(format!(
            "date {d:?} must be YYYY-MM-DD"
        )))
    }
}

fn validate_config(c: &KbConfig) -> Result<(), KnowledgeError> {
    if !matches!(c.engine.as_str(), "hnsw" | "flat") {
        return Err(KnowledgeError::Invalid(format!(
            "engine {:?}: use \"hnsw\" or \"flat\"",
            c.engine
        )));
    }
    if c.chunking.max_tokens < 16 || c.chunking.max_tokens > 512 {
        return Err(KnowledgeError::Invalid(
            "chunking.max_tokens must be 16–512".into(),
        ));
    }
    if c.model.is_empty() {
        return Err(KnowledgeError::Invalid("model must not be empty".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Filters answered from the postings agree with the filter's definition over every
    /// chunk, for each field alone and in combination.
    #[test]
    fn postings_answer_filters_as_defined() {
        let dates = [
            None,
            Some("2025-12-31"),
            Some("2026-01-01T09:30:00Z"),
            Some("2026-03-15"),
            Some("soon"),
        ];
        let mut infos = Vec::new();
        for i in 0..200usize {
            infos.push(DocInfo {
                id: format!("d{}", i % 17),
                language: ["en", "de"][i % 2].into(),
                doc_type: (i % 3 > 0).then(|| ["faq", "policy"][i % 3 - 1].into()),
                date: dates[i % 5].map(str::to_owned),
                tags: ["a", "b", "c"]
                    .iter()
                    .take(i % 4)
                    .map(|t| t.to_string())
                    .collect(),
                source: (i % 5 == 0).then(|| "web".into()),
                superseded: i % 7 == 0,
            });
        }
        let mut meta = MetadataIndex::new();
        for (id, info) in infos.iter().enumerate() {
            meta.set(id as u64, chunk_attributes(info));
        }
        let day = |d: &str| Some(d.to_owned());
        let filters = [
            Filter::default(),
            Filter {
                document_ids: vec!["d3".into(), "d5".into()],
                ..Filter::default()
            },
            Filter {
                language: day("de"),
                doc_type: day("faq"),
                ..Filter::default()
            },
            Filter {
                tags: vec!["a".into(), "b".into()],
                ..Filter::default()
            },
            Filter {
                date_from: day("2026-01-01"),
                ..Filter::default()
            },
            Filter {
                date_to: day("2026-01-01"),
                ..Filter::default()
            },
            Filter {
                date_from: day("2025-12-31"),
                date_to: day("2026-01-01"),
                source: day("web"),
                ..Filter::default()
            },
            Filter {
                current_only: true,
                tags: vec!["c".into()],
                ..Filter::default()
            },
            Filter {
                language: day("fr"),
                ..Filter::default()
            },
        ];
        for f in &filters {
            let want: Vec<u64> = (0..infos.len() as u64)
                .filter(|&i| f.matches(&infos[i as usize]))
                .collect();
            let got = meta
                .matching(&f.conditions())
                .ids()
                .unwrap_or_else(|| (0..infos.len() as u64).collect());
            assert_eq!(got, want, "{f:?}");
        }
        // a day carries its time of day along: on and before that day
        assert_eq!(day_number("2026-01-01T09:30:00Z"), Some(20_260_101));
        assert_eq!(day_number("soon"), None);
    }
}
