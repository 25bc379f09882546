//! A BERT encoder on `candle-core` and `candle-nn`: embeddings, post-norm self-attention
//! layers, mean pooling. Written here rather than taken from `candle-transformers`, whose
//! clean build compiles every model family (15 minutes on a CI machine).
//!
//! Speed choices: Q, K and V are one fused matrix product; every dense layer runs as one
//! two-dimensional product over all tokens of the batch (`[batch·len, hidden]`), so the
//! matrix kernel sees large operands; weights are stored transposed once at load time.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, D};

use super::{ops, EmbedError};

/// Shape of a BERT encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BertShape {
    /// Hidden size.
    pub hidden: usize,
    /// Encoder layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Feed-forward size.
    pub intermediate: usize,
    /// Position embeddings (the longest input).
    pub max_positions: usize,
}

struct Layer {
    qkv_w: Tensor,
    qkv_b: Vec<f32>,
    out_w: Tensor,
    out_b: Vec<f32>,
    ln1_w: Vec<f32>,
    ln1_b: Vec<f32>,
    ff_in_w: Tensor,
    ff_in_b: Vec<f32>,
    ff_out_w: Tensor,
    ff_out_b: Vec<f32>,
    ln2_w: Vec<f32>,
    ln2_b: Vec<f32>,
}

/// The word-embedding table: dense, or 4-bit blocks expanded a row at a time (a
/// 250k-word vocabulary would take 384 MB as f32).
pub enum WordTable {
    /// `[vocab, hidden]` f32.
    Dense(Tensor),
    /// `Q4_0` rows of `hidden / 32` blocks each.
    Q4 {
        /// The blocks.
        blocks: Vec<u8>,
        /// Rows.
        vocab: usize,
        /// Row width.
        hidden: usize,
    },
}

impl WordTable {
    /// A 4-bit table.
    pub fn q4(blocks: Vec<u8>, vocab: usize, hidden: usize) -> Self {
        Self::Q4 {
            blocks,
            vocab,
            hidden,
        }
    }

    fn rows(&self, ids: &[u32]) -> Result<Tensor, EmbedError> {
        match self {
            Self::Dense(t) => {
                let vocab = t.dim(0)?;
                if let Some(bad) = ids.iter().find(|&&i| i as usize >= vocab) {
                    return Err(EmbedError::Input(format!(
                        "token id {bad} is outside the vocabulary"
                    )));
                }
                let ids = Tensor::from_slice(ids, ids.len(), &Device::Cpu)?;
                Ok(t.index_select(&ids, 0)?)
            }
            Self::Q4 {
                blocks,
                vocab,
                hidden,
            } => {
                let row_bytes = hidden / 32 * 18;
                let mut out = Vec::with_capacity(ids.len() * hidden);
                for &id in ids {
                    let id = id as usize;
                    if id >= *vocab {
                        return Err(EmbedError::Input(format!(
                            "token id {id} is outside the vocabulary"
                        )));
                    }
                    super::e5q4::dequantize(
                        &blocks[id * row_bytes..(id + 1) * row_bytes],
                        &mut out,
                    );
                }
                Ok(Tensor::from_vec(out, (ids.len(), *hidden), &Device::Cpu)?)
            }
        }
    }
}

/// A loaded encoder.
pub struct Bert {
    shape: BertShape,
    eps: f64,
    word: WordTable,
    pos: Tensor,
    token_type: Tensor,
    ln_w: Tensor,
    ln_b: Tensor,
    layers: Vec<Layer>,
}

/// Weight source: tensors by Hugging Face BERT name (`embeddings.word_embeddings.weight`,
/// `encoder.layer.0.attention.self.query.weight`, …), dense weights as `[out, in]`.
pub type Weights = HashMap<String, Tensor>;

fn take(w: &mut Weights, name: &str) -> Result<Tensor, EmbedError> {
    // Some exports prefix every name with `bert.`.
    w.remove(name)
        .or_else(|| w.remove(&format!("bert.{name}")))
        .ok_or_else(|| EmbedError::Model(format!("weight {name} is missing")))?
        .to_dtype(DType::F32)
        .map_err(EmbedError::from)
}

fn vector(w: &mut Weights, name: &str) -> Result<Vec<f32>, EmbedError> {
    Ok(take(w, name)?.flatten_all()?.to_vec1::<f32>()?)
}

/// `[out, in]` → contiguous `[in, out]`, so `x · w` needs no transposition per call.
fn dense(w: &mut Weights, name: &str) -> Result<(Tensor, Vec<f32>), EmbedError> {
    let weight = take(w, &format!("{name}.weight"))?.t()?.contiguous()?;
    let bias = vector(w, &format!("{name}.bias"))?;
    Ok((weight, bias))
}

impl Bert {
    /// Builds the encoder from its weights; `word` replaces the word-embedding weight.
    pub fn new(
        mut w: Weights,
        word: Option<WordTable>,
        shape: BertShape,
        eps: f64,
    ) -> Result<Self, EmbedError> {
        if shape.heads == 0 || !shape.hidden.is_multiple_of(shape.heads) {
            return Err(EmbedError::Model(format!(
                "hidden size {} is not divisible by {} heads",
                shape.hidden, shape.heads
            )));
        }
        let word = match word {
            Some(word) => word,
            None => WordTable::Dense(take(&mut w, "embeddings.word_embeddings.weight")?),
        };
        let pos = take(&mut w, "embeddings.position_embeddings.weight")?;
        let token_type = take(&mut w, "embeddings.token_type_embeddings.weight")?.get(0)?;
        let ln_w = take(&mut w, "embeddings.LayerNorm.weight")?;
        let ln_b = take(&mut w, "embeddings.LayerNorm.bias")?;
        let word_width = match &word {
            WordTable::Dense(t) => t.dim(1)?,
            WordTable::Q4 { hidden, .. } => *hidden,
        };
        if word_width != shape.hidden || pos.dim(1)? != shape.hidden {
            return Err(EmbedError::Model(format!(
                "embedding width {word_width} does not match hidden size {}",
                shape.hidden
            )));
        }
        let mut layers = Vec::with_capacity(shape.layers);
        for i in 0..shape.layers {
            let p = format!("encoder.layer.{i}");
            let (q_w, q_b) = dense(&mut w, &format!("{p}.attention.self.query"))?;
            let (k_w, k_b) = dense(&mut w, &format!("{p}.attention.self.key"))?;
            let (v_w, v_b) = dense(&mut w, &format!("{p}.attention.self.value"))?;
            let (out_w, out_b) = dense(&mut w, &format!("{p}.attention.output.dense"))?;
            let (ff_in_w, ff_in_b) = dense(&mut w, &format!("{p}.intermediate.dense"))?;
            let (ff_out_w, ff_out_b) = dense(&mut w, &format!("{p}.output.dense"))?;
            layers.push(Layer {
                qkv_w: Tensor::cat(&[&q_w, &k_w, &v_w], 1)?.contiguous()?,
                qkv_b: [q_b, k_b, v_b].concat(),
                out_w,
                out_b,
                ln1_w: vector(&mut w, &format!("{p}.attention.output.LayerNorm.weight"))?,
                ln1_b: vector(&mut w, &format!("{p}.attention.output.LayerNorm.bias"))?,
                ff_in_w,
                ff_in_b,
                ff_out_w,
                ff_out_b,
                ln2_w: vector(&mut w, &format!("{p}.output.LayerNorm.weight"))?,
                ln2_b: vector(&mut w, &format!("{p}.output.LayerNorm.bias"))?,
            });
        }
        Ok(Self {
            shape,
            eps,
            word,
            pos,
            token_type,
            ln_w,
            ln_b,
            layers,
        })
    }

    /// The encoder's shape.
    pub fn shape(&self) -> BertShape {
        self.shape
    }

    /// Mean-pooled, L2-normalised embeddings of token sequences (each already with its
    /// special tokens and no longer than `max_positions`). Sequences are padded to the
    /// longest in the call; callers batch sequences of similar length.
    pub fn embed(&self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let batch = sequences.len();
        let len = sequences.iter().map(Vec::len).max().unwrap_or(0);
        if batch == 0 || len == 0 {
            return Ok(vec![Vec::new(); batch]);
        }
        if len > self.shape.max_positions {
            return Err(EmbedError::Input(format!(
                "sequence of {len} tokens is longer than the model's {}",
                self.shape.max_positions
            )));
        }
        let dev = Device::Cpu;
        let h = self.shape.hidden;
        let heads = self.shape.heads;
        let mut ids = Vec::with_capacity(batch * len);
        let mut mask = Vec::with_capacity(batch * len);
        for s in sequences {
            ids.extend_from_slice(s);
            ids.extend(std::iter::repeat_n(0u32, len - s.len()));
            mask.extend(std::iter::repeat_n(1f32, s.len()));
            mask.extend(std::iter::repeat_n(0f32, len - s.len()));
        }
        let mask = Tensor::from_vec(mask, (batch, len), &dev)?;
        let lengths: Vec<usize> = sequences.iter().map(Vec::len).collect();

        let x = self.word.rows(&ids)?.reshape((batch, len, h))?;
        let x = x
            .broadcast_add(&self.pos.narrow(0, 0, len)?)?
            .broadcast_add(&self.token_type)?;
        let mut x = candle_nn::ops::layer_norm(
            &x.reshape((batch * len, h))?,
            &self.ln_w,
            &self.ln_b,
            self.eps as f32,
        )?;
        let eps = self.eps as f32;
        for l in &self.layers {
            let ctx = x.matmul(&l.qkv_w)?.apply_op1_no_bwd(&ops::Attention {
                bias: &l.qkv_b,
                lengths: &lengths,
                heads,
            })?;
            let attn = ctx.matmul(&l.out_w)?;
            attn.inplace_op2(
                &x,
                &ops::BiasResidualNorm {
                    bias: &l.out_b,
                    gamma: &l.ln1_w,
                    beta: &l.ln1_b,
                    eps,
                },
            )?;
            x = attn;
            let ff = x.matmul(&l.ff_in_w)?;
            ff.inplace_op1(&ops::BiasGelu { bias: &l.ff_in_b })?;
            let out = ff.matmul(&l.ff_out_w)?;
            out.inplace_op2(
                &x,
                &ops::BiasResidualNorm {
                    bias: &l.ff_out_b,
                    gamma: &l.ln2_w,
                    beta: &l.ln2_b,
                    eps,
                },
            )?;
            x = out;
        }
        let x = x.reshape((batch, len, h))?;
        let summed = x.broadcast_mul(&mask.unsqueeze(2)?)?.sum(1)?;
        let counts = mask.sum_keepdim(1)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean
            .sqr()?
            .sum_keepdim(D::Minus1)?
            .sqrt()?
            .clamp(1e-12, f64::MAX)?;
        let out = mean.broadcast_div(&norm)?;
        Ok(out.to_vec2::<f32>()?)
    }
}
