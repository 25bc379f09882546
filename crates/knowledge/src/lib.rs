//! Knowledge bases: text extraction, structure-following chunking, transformer
//! embeddings, BM25, hybrid search with re-ranking, and atomic refresh. Vectors go to
//! `regelkreis-index`; PII is redacted by `regelkreis-guard` before anything is embedded
//! or indexed.

pub mod bm25;
pub mod cache;
pub mod chunk;
pub mod embed;
pub mod extract;
pub mod fusion;
pub mod kb;
pub mod models;
mod registry;
mod simd;

pub use extract::Format;
pub use kb::{
    DocMetadata, DocOutcome, DocStatus, Filter, IngestReport, KbConfig, KnowledgeBase, NewDocument,
    SearchHit, SearchMode, SearchRequest, StoredDocument,
};
pub use registry::{validate_name, Knowledge};

/// A knowledge-base error.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// The request or document is invalid; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// A knowledge base or document does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The embedding model failed.
    #[error(transparent)]
    Embed(#[from] embed::EmbedError),
    /// The keyword index failed.
    #[error("keyword index: {0}")]
    Keyword(String),
    /// The vector index failed.
    #[error("vector index: {0}")]
    Vector(#[from] regelkreis_index::IndexError),
    /// The metadata database failed.
    #[error("knowledge database: {0}")]
    Db(#[from] rusqlite::Error),
    /// A file could not be read or written.
    #[error("knowledge files: {0}")]
    Io(#[from] std::io::Error),
}
