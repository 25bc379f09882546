//! Quick embedding throughput probe: `cargo run --release -p regelkreis-knowledge --example embed_speed`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
use regelkreis_knowledge::embed::{models_dir, Encoder, Role, E5_SMALL_Q4, MINILM};
fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "minilm".into());
    let path = if which == "e5" {
        models_dir().join(E5_SMALL_Q4)
    } else {
        models_dir().join(MINILM)
    };
    let t = std::time::Instant::now();
    let enc = Encoder::load(&path).unwrap();
    eprintln!("load {:?}", t.elapsed());
    let base = "Regelkreis ingests marketing documents, redacts personal data and answers questions with citations. The quick brown fox jumps over the lazy dog while the campaign budget is optimised across channels.";
    let texts: Vec<String> = (0..256)
        .map(|i| format!("{i} {}", base.repeat(1 + i % 5)))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let tokens: usize = refs
        .iter()
        .map(|t| enc.tokenize(t, Role::Passage).unwrap().len())
        .sum();
    let t = std::time::Instant::now();
    let v = enc.embed(&refs, Role::Passage).unwrap();
    let s = t.elapsed().as_secs_f64();
    println!(
        "{} texts, {tokens} tokens in {s:.2}s: {:.0} tokens/s (dim {})",
        v.len(),
        tokens as f64 / s,
        v[0].len()
    );
}
