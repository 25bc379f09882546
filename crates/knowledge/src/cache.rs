//! The embedding cache: vectors keyed by model and SHA-256 of the embedded text, so an
//! unchanged chunk is never embedded twice (also across knowledge bases). A cache:
//! losing it costs recomputation, never data.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use crate::KnowledgeError;

/// A SQLite-backed embedding cache.
pub struct EmbeddingCache {
    db: Mutex<Connection>,
}

impl EmbeddingCache {
    /// Opens or creates the cache file.
    pub fn open(path: &Path) -> Result<Self, KnowledgeError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let db = Connection::open(path)?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "NORMAL")?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS embeddings (
                model TEXT NOT NULL, hash BLOB NOT NULL, vector BLOB NOT NULL,
                PRIMARY KEY (model, hash)) WITHOUT ROWID",
        )?;
        Ok(Self { db: Mutex::new(db) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached vector of `hash` under `model`.
    pub fn get(&self, model: &str, hash: &[u8; 32]) -> Result<Option<Vec<f32>>, KnowledgeError> {
        let db = self.conn();
        let mut stmt =
            db.prepare_cached("SELECT vector FROM embeddings WHERE model = ?1 AND hash = ?2")?;
        let blob: Option<Vec<u8>> = stmt
            .query_row(params![model, &hash[..]], |r| r.get(0))
            .optional()?;
        Ok(blob.map(|b| {
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        }))
    }

    /// Stores vectors.
    pub fn put(&self, model: &str, items: &[([u8; 32], Vec<f32>)]) -> Result<(), KnowledgeError> {
        let mut db = self.conn();
        let tx = db.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO embeddings (model, hash, vector) VALUES (?1, ?2, ?3)",
            )?;
            for (hash, v) in items {
                let blob: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                stmt.execute(params![model, &hash[..], blob])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}
