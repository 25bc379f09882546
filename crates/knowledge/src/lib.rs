//! Knowledge bases: text extraction, structure-following chunking, transformer
//! embeddings, BM25, hybrid search with re-ranking, and atomic refresh. Vectors go to
//! `regelkreis-index`; PII is redacted by `regelkreis-guard` before anything is embedded
//! or indexed.

pub mod embed;
mod simd;
