//! All knowledge bases under one data folder, by tenant and name. Each tenant's bases
//! live in a folder of their own, so no search can reach another tenant's files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::cache::EmbeddingCache;
use crate::kb::{KbConfig, KnowledgeBase};
use crate::models::Models;
use crate::KnowledgeError;

/// The knowledge bases of a data folder.
pub struct Knowledge {
    root: PathBuf,
    models: Arc<Models>,
    cache: Arc<EmbeddingCache>,
    open: Mutex<HashMap<(String, String), Arc<KnowledgeBase>>>,
}

/// Checks a knowledge-base name: 1–64 letters, digits, `_`, `-`, `.`, not starting with `.`.
pub fn validate_name(name: &str) -> Result<(), KnowledgeError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(KnowledgeError::Invalid(format!(
            "knowledge base name {name:?}: use 1–64 letters, digits, '_', '-' or '.'"
        )))
    }
}

impl Knowledge {
    /// Knowledge bases under `root`, models from `models_dir`.
    pub fn open(root: &Path, models_dir: PathBuf) -> Result<Self, KnowledgeError> {
        std::fs::create_dir_all(root)?;
        Ok(Self {
            root: root.to_owned(),
            models: Arc::new(Models::new(models_dir)),
            cache: Arc::new(EmbeddingCache::open(&root.join("embedding-cache.sqlite"))?),
            open: Mutex::new(HashMap::new()),
        })
    }

    fn tenant_dir(&self, tenant: &str) -> PathBuf {
        let h = hex::encode(Sha256::digest(tenant.as_bytes()));
        self.root.join("tenants").join(&h[..24])
    }

    /// The model loader (shared).
    pub fn models(&self) -> &Arc<Models> {
        &self.models
    }

    fn get_inner(
        &self,
        tenant: &str,
        name: &str,
        create: Option<KbConfig>,
    ) -> Result<Arc<KnowledgeBase>, KnowledgeError> {
        validate_name(name)?;
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (tenant.to_owned(), name.to_owned());
        if let Some(kb) = open.get(&key) {
            return Ok(kb.clone());
        }
        let dir = self.tenant_dir(tenant).join(name);
        if create.is_none() && !dir.join("kb.sqlite").exists() {
            return Err(KnowledgeError::NotFound(format!(
                "knowledge base {name} does not exist"
            )));
        }
        let kb = Arc::new(KnowledgeBase::open(
            tenant,
            name,
            &dir,
            create,
            self.models.clone(),
            self.cache.clone(),
        )?);
        open.insert(key, kb.clone());
        Ok(kb)
    }

    /// An existing knowledge base.
    pub fn get(&self, tenant: &str, name: &str) -> Result<Arc<KnowledgeBase>, KnowledgeError> {
        self.get_inner(tenant, name, None)
    }

    /// A knowledge base, created with `config` (or defaults) when missing.
    pub fn get_or_create(
        &self,
        tenant: &str,
        name: &str,
        config: Option<KbConfig>,
    ) -> Result<Arc<KnowledgeBase>, KnowledgeError> {
        self.get_inner(tenant, name, Some(config.unwrap_or_default()))
    }

    /// Names of a tenant's knowledge bases.
    pub fn list(&self, tenant: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.tenant_dir(tenant))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("kb.sqlite").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    /// Saves the vector files of every open knowledge base.
    pub fn flush(&self) -> Result<(), KnowledgeError> {
        let open: Vec<Arc<KnowledgeBase>> = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for kb in open {
            kb.maybe_save(1)?;
        }
        Ok(())
    }
}
