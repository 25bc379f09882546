//! Chunking that follows structure: a heading starts a new chunk; blocks (paragraphs,
//! list items, tables, code) are packed whole while they fit the token budget; a block
//! too large for one chunk is split at sentences (tables and code at lines), and a
//! sentence too large at words. Consecutive pieces of one section overlap by up to
//! `overlap_tokens` of whole sentences. Every chunk is one contiguous slice of the
//! document text, so a citation can quote it exactly.

use std::ops::Range;

use unicode_segmentation::UnicodeSegmentation;

use crate::extract::{Block, BlockKind};

/// Chunk budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkParams {
    /// Most tokens in a chunk.
    pub max_tokens: usize,
    /// Tokens repeated from the end of the previous chunk of the same section.
    pub overlap_tokens: usize,
}

impl Default for ChunkParams {
    fn default() -> Self {
        Self {
            max_tokens: 200,
            overlap_tokens: 32,
        }
    }
}

/// A chunk: a byte range of the document text and the headings above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Byte range in the document text.
    pub range: Range<usize>,
    /// Heading titles, outermost first.
    pub heading_path: Vec<String>,
}

/// A unit that is never split further (unless it alone exceeds the budget).
struct Piece {
    range: Range<usize>,
    tokens: usize,
}

/// Splits `text` along `blocks` into chunks of at most `params.max_tokens` tokens as
/// counted by `count`.
pub fn chunk(
    text: &str,
    blocks: &[Block],
    params: ChunkParams,
    count: &dyn Fn(&str) -> usize,
) -> Vec<Chunk> {
    let max = params.max_tokens.max(8);
    let mut chunks = Vec::new();
    // The open chunk: pieces of the current section.
    let mut open: Vec<Piece> = Vec::new();
    let mut open_tokens = 0;
    let mut path: Vec<String> = Vec::new();

    let flush = |open: &mut Vec<Piece>,
                 open_tokens: &mut usize,
                 path: &[String],
                 chunks: &mut Vec<Chunk>,
                 keep: usize| {
        if open.is_empty() {
            return;
        }
        chunks.push(Chunk {
            range: open[0].range.start..open[open.len() - 1].range.end,
            heading_path: path.to_vec(),
        });
        // Keep trailing pieces worth at most `keep` tokens as the overlap.
        let mut kept = 0;
        let mut from = open.len();
        while from > 0 && kept + open[from - 1].tokens <= keep && from > 1 {
            kept += open[from - 1].tokens;
            from -= 1;
        }
        if keep == 0 || from == open.len() {
            open.clear();
            *open_tokens = 0;
        } else {
            open.drain(..from);
            *open_tokens = kept;
        }
    };

    for block in blocks {
        if let BlockKind::Heading(_) = block.kind {
            flush(&mut open, &mut open_tokens, &path, &mut chunks, 0);
            path.clone_from(&block.heading_path);
        } else if block.heading_path != path {
            flush(&mut open, &mut open_tokens, &path, &mut chunks, 0);
            path.clone_from(&block.heading_path);
        }
        let block_text = &text[block.range.clone()];
        let tokens = count(block_text);
        let pieces = if tokens <= max {
            vec![Piece {
                range: block.range.clone(),
                tokens,
            }]
        } else {
            split(text, block, max, count)
        };
        for piece in pieces {
            if open_tokens + piece.tokens > max && !open.is_empty() {
                // Overlap only inside a block that had to be split or between
                // paragraphs of one section; never more than a third of the budget.
                let keep = params.overlap_tokens.min(max / 3);
                flush(&mut open, &mut open_tokens, &path, &mut chunks, keep);
                if open_tokens + piece.tokens > max {
                    open.clear();
                    open_tokens = 0;
                }
            }
            open_tokens += piece.tokens;
            open.push(piece);
        }
    }
    flush(&mut open, &mut open_tokens, &path, &mut chunks, 0);
    chunks
}

/// Splits an oversized block into pieces of at most `max` tokens: lines for tables and
/// code, sentences otherwise; words for anything still too large.
fn split(text: &str, block: &Block, max: usize, count: &dyn Fn(&str) -> usize) -> Vec<Piece> {
    let base = block.range.start;
    let s = &text[block.range.clone()];
    let units: Vec<Range<usize>> = match block.kind {
        BlockKind::Table | BlockKind::Code => s
            .split_inclusive('\n')
            .scan(0, |at, line| {
                let r = *at..*at + line.len();
                *at += line.len();
                Some(r)
            })
            .collect(),
        _ => s
            .split_sentence_bound_indices()
            .map(|(i, sen)| i..i + sen.len())
            .collect(),
    };
    let mut pieces = Vec::new();
    for unit in units {
        let trimmed = trim(s, unit);
        if trimmed.is_empty() {
            continue;
        }
        let tokens = count(&s[trimmed.clone()]);
        if tokens <= max {
            pieces.push(Piece {
                range: base + trimmed.start..base + trimmed.end,
                tokens,
            });
            continue;
        }
        // Word windows: grow until the budget is reached.
        let words: Vec<Range<usize>> = s[trimmed.clone()]
            .split_word_bound_indices()
            .map(|(i, w)| trimmed.start + i..trimmed.start + i + w.len())
            .collect();
        let mut start = 0;
        while start < words.len() {
            let mut end = start + 1;
            let mut tokens = count(&s[words[start].clone()]);
            while end < words.len() {
                let t = count(&s[words[end].clone()]);
                if tokens + t > max {
                    break;
                }
                tokens += t;
                end += 1;
            }
            let r = trim(s, words[start].start..words[end - 1].end);
            if !r.is_empty() {
                pieces.push(Piece {
                    range: base + r.start..base + r.end,
                    tokens,
                });
            }
            start = end;
        }
    }
    pieces
}

fn trim(s: &str, r: Range<usize>) -> Range<usize> {
    let part = &s[r.clone()];
    let start = r.start + (part.len() - part.trim_start().len());
    let end = r.start + part.trim_end().len();
    start..end.max(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::{extract, Format};

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    #[test]
    fn headings_start_chunks_and_small_blocks_pack_together() {
        let src = "# A\n\none two three\n\nfour five\n\n# B\n\nsix seven\n";
        let e = extract(src.as_bytes(), Format::Markdown).unwrap_or_else(|e| unreachable!("{e}"));
        let chunks = chunk(
            &e.text,
            &e.blocks,
            ChunkParams {
                max_tokens: 50,
                overlap_tokens: 0,
            },
            &words,
        );
        let texts: Vec<&str> = chunks.iter().map(|c| &e.text[c.range.clone()]).collect();
        assert_eq!(
            texts,
            vec!["# A\n\none two three\n\nfour five", "# B\n\nsix seven"]
        );
        assert_eq!(chunks[1].heading_path, vec!["B".to_owned()]);
    }

    #[test]
    fn a_long_paragraph_is_split_at_sentences_within_budget_with_overlap() {
        let sentences: Vec<String> = (0..40)
            .map(|i| format!("Sentence number {i} has exactly seven words."))
            .collect();
        let src = sentences.join(" ");
        let e = extract(src.as_bytes(), Format::Text).unwrap_or_else(|e| unreachable!("{e}"));
        let params = ChunkParams {
            max_tokens: 50,
            overlap_tokens: 10,
        };
        let chunks = chunk(&e.text, &e.blocks, params, &words);
        assert!(chunks.len() >= 6);
        for c in &chunks {
            let t = &e.text[c.range.clone()];
            assert!(words(t) <= 50, "{t}");
            assert!(
                t.starts_with("Sentence") && t.ends_with("words."),
                "cut inside a sentence: {t}"
            );
        }
        // Consecutive chunks share their boundary sentence (overlap), and together they
        // cover the whole text.
        for w in chunks.windows(2) {
            assert!(w[1].range.start < w[0].range.end, "no overlap");
        }
        assert_eq!(chunks[0].range.start, 0);
        assert_eq!(chunks[chunks.len() - 1].range.end, src.len());
    }

    #[test]
    fn a_sentence_longer_than_the_budget_is_cut_at_words() {
        let src = (0..300)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let e = extract(src.as_bytes(), Format::Text).unwrap_or_else(|e| unreachable!("{e}"));
        let chunks = chunk(
            &e.text,
            &e.blocks,
            ChunkParams {
                max_tokens: 64,
                overlap_tokens: 0,
            },
            &words,
        );
        assert!(chunks.iter().all(|c| words(&e.text[c.range.clone()]) <= 64));
        let total: usize = chunks.iter().map(|c| words(&e.text[c.range.clone()])).sum();
        assert_eq!(total, 300);
    }

    #[test]
    fn tables_split_at_rows() {
        let mut src = String::from("| h1 | h2 |\n|---|---|\n");
        for i in 0..60 {
            src.push_str(&format!("| cell {i} | value {i} |\n"));
        }
        let e = extract(src.as_bytes(), Format::Markdown).unwrap_or_else(|e| unreachable!("{e}"));
        let chunks = chunk(
            &e.text,
            &e.blocks,
            ChunkParams {
                max_tokens: 40,
                overlap_tokens: 0,
            },
            &words,
        );
        assert!(chunks.len() > 3);
        for c in &chunks {
            let t = &e.text[c.range.clone()];
            assert!(t.starts_with('|') && t.ends_with('|'), "row cut: {t:?}");
        }
    }
}
