//! The keyword index: BM25 over chunks with tantivy. English and German text go to
//! their own fields, each with its language's Snowball stemmer and stop words; other
//! languages get a field that only lower-cases. A query is analysed with every field's
//! analyser and matches any of its terms (no query syntax, so user input never fails to
//! parse). Each commit carries the knowledge base's sequence number as its payload, so
//! opening can tell whether the index is behind the database.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use tantivy::collector::{FilterCollector, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, INDEXED, STORED,
    STRING,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::KnowledgeError;

/// Which chunk ids a keyword search may return (shared with the collector's threads).
pub type Allowed = Arc<dyn Fn(u64) -> bool + Send + Sync>;

fn err(e: impl std::fmt::Display) -> KnowledgeError {
    KnowledgeError::Keyword(e.to_string())
}

/// One chunk as the keyword index sees it.
pub struct KeywordChunk<'a> {
    /// Chunk id (shared with the vector index).
    pub id: u64,
    /// Document id.
    pub document: &'a str,
    /// Language code of the chunk ("de", "en", …).
    pub language: &'a str,
    /// Text to index (heading path and chunk text).
    pub text: &'a str,
}

/// Languages with a field of their own.
const FIELDS: [(&str, &str); 3] = [
    ("en", "body_en"),
    ("de", "body_de"),
    ("other", "body_other"),
];

/// A BM25 index over the chunks of one knowledge base.
pub struct KeywordIndex {
    index: Index,
    writer: IndexWriter,
    reader: IndexReader,
    chunk: Field,
    document: Field,
    bodies: [Field; 3],
}

fn analyzer(lang: &str) -> Result<TextAnalyzer, KnowledgeError> {
    let base = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser);
    Ok(match lang {
        "en" => base
            .filter(
                StopWordFilter::new(Language::English)
                    .ok_or_else(|| err("no English stop words"))?,
            )
            .filter(Stemmer::new(Language::English))
            .build(),
        "de" => base
            .filter(
                StopWordFilter::new(Language::German).ok_or_else(|| err("no German stop words"))?,
            )
            .filter(Stemmer::new(Language::German))
            .build(),
        _ => base.build(),
    })
}

impl KeywordIndex {
    /// Opens the index in `dir`, creating it when missing.
    pub fn open(dir: &Path) -> Result<Self, KnowledgeError> {
        std::fs::create_dir_all(dir)?;
        let mut builder = Schema::builder();
        let chunk = builder.add_u64_field("chunk", INDEXED | FAST | STORED);
        let document = builder.add_text_field("document", STRING);
        let bodies = FIELDS.map(|(lang, name)| {
            builder.add_text_field(
                name,
                TextOptions::default().set_indexing_options(
                    TextFieldIndexing::default()
                        .set_tokenizer(lang)
                        .set_index_option(IndexRecordOption::WithFreqsAndPositions),
                ),
            )
        });
        let schema = builder.build();
        let index =
            Index::open_or_create(MmapDirectory::open(dir).map_err(err)?, schema).map_err(err)?;
        for (lang, _) in FIELDS {
            index.tokenizers().register(lang, analyzer(lang)?);
        }
        let writer = index.writer(30_000_000).map_err(err)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(err)?;
        Ok(Self {
            index,
            writer,
            reader,
            chunk,
            document,
            bodies,
        })
    }

    /// The sequence number of the last commit (0 for a new index).
    pub fn committed_seq(&self) -> Result<u64, KnowledgeError> {
        let metas = self.index.load_metas().map_err(err)?;
        Ok(metas.payload.and_then(|p| p.parse().ok()).unwrap_or(0))
    }

    fn field_for(&self, language: &str) -> Field {
        match language {
            "en" => self.bodies[0],
            "de" => self.bodies[1],
            _ => self.bodies[2],
        }
    }

    /// Stages removal of every chunk of `document`.
    pub fn remove_document(&mut self, document: &str) {
        self.writer
            .delete_term(Term::from_field_text(self.document, document));
    }

    /// Stages removal of everything.
    pub fn clear(&mut self) -> Result<(), KnowledgeError> {
        self.writer.delete_all_documents().map_err(err)?;
        Ok(())
    }

    /// Stages a chunk.
    pub fn add(&mut self, c: &KeywordChunk<'_>) -> Result<(), KnowledgeError> {
        let field = self.field_for(c.language);
        self.writer
            .add_document(doc!(self.chunk => c.id, self.document => c.document, field => c.text))
            .map_err(err)?;
        Ok(())
    }

    /// Makes the staged changes durable and visible to searches, tagged with `seq`.
    pub fn commit(&mut self, seq: u64) -> Result<(), KnowledgeError> {
        let mut prepared = self.writer.prepare_commit().map_err(err)?;
        prepared.set_payload(&seq.to_string());
        prepared.commit().map_err(err)?;
        self.reader.reload().map_err(err)?;
        Ok(())
    }

    /// Indexed chunks.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `k` best chunks for `query` by BM25, best first, restricted to the chunk ids
    /// `allowed` accepts when given.
    pub fn search(
        &self,
        query: &str,
        k: usize,
        allowed: Option<Allowed>,
    ) -> Result<Vec<(u64, f32)>, KnowledgeError> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for ((lang, _), field) in FIELDS.iter().zip(self.bodies) {
            // The analysers registered at open (stop-word sets shared), not new ones per query.
            let mut analyzer = self
                .index
                .tokenizers()
                .get(lang)
                .ok_or_else(|| err(format!("no analyser registered for {lang}")))?;
            let mut stream = analyzer.token_stream(query);
            let mut seen = HashSet::new();
            while stream.advance() {
                let text = stream.token().text.clone();
                if seen.insert(text.clone()) {
                    clauses.push((
                        Occur::Should,
                        Box::new(TermQuery::new(
                            Term::from_field_text(field, &text),
                            IndexRecordOption::WithFreqs,
                        )),
                    ));
                }
            }
        }
        if clauses.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let top = TopDocs::with_limit(k);
        let hits = match allowed {
            Some(set) => searcher
                .search(
                    &query,
                    &FilterCollector::new("chunk".to_owned(), move |id: u64| set(id), top),
                )
                .map_err(err)?,
            None => searcher.search(&query, &top).map_err(err)?,
        };
        let mut out = Vec::with_capacity(hits.len());
        for (score, addr) in hits {
            let d: TantivyDocument = searcher.doc(addr).map_err(err)?;
            if let Some(id) = d.get_first(self.chunk).and_then(|v| v.as_u64()) {
                out.push((id, score));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk<'a>(id: u64, document: &'a str, language: &'a str, text: &'a str) -> KeywordChunk<'a> {
        KeywordChunk {
            id,
            document,
            language,
            text,
        }
    }

    #[test]
    fn stems_per_language_and_replaces_documents() -> Result<(), KnowledgeError> {
        let dir = tempfile::tempdir()?;
        let mut index = KeywordIndex::open(dir.path())?;
        index.add(&chunk(
            1,
            "a",
            "en",
            "Running campaigns across several channels",
        ))?;
        index.add(&chunk(
            2,
            "b",
            "de",
            "Die Kampagnen laufen über mehrere Kanäle",
        ))?;
        index.add(&chunk(3, "c", "en", "Budget planning for the spring"))?;
        index.commit(7)?;
        assert_eq!(index.committed_seq()?, 7);
        // English stemming: "campaign" finds "campaigns"; German: "Kampagne" finds "Kampagnen".
        assert_eq!(index.search("campaign", 5, None)?[0].0, 1);
        assert_eq!(index.search("Kampagne", 5, None)?[0].0, 2);
        // Stop words alone match nothing; query syntax characters are just text.
        assert!(index.search("the and for", 5, None)?.is_empty());
        assert_eq!(index.search("budget: \"spring\" AND (", 5, None)?[0].0, 3);
        // A filter keeps only allowed chunks.
        let allowed: Allowed = Arc::new(|id: u64| id == 3);
        assert!(index.search("campaign", 5, Some(allowed))?.is_empty());
        // Replacing a document: old chunks go, new ones come, in one commit.
        index.remove_document("a");
        index.add(&chunk(4, "a", "en", "Campaign results were measured"))?;
        index.commit(8)?;
        let hits = index.search("campaign", 5, None)?;
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![4]);
        drop(index);
        let reopened = KeywordIndex::open(dir.path())?;
        assert_eq!(reopened.committed_seq()?, 8);
        assert_eq!(reopened.len(), 3);
        Ok(())
    }
}
