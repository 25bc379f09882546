//! The eval dataset: JSON lines, one case per line.
//!
//! ```json
//! {"id": "price-01", "question": "What does the Aurora kettle cost?",
//!  "reference": "49 euros", "required_facts": ["49"], "relevant_documents": ["aurora-sheet"],
//!  "answerable": true, "tags": ["price"], "assertions": [{"kind": "contains", "text": "49"}]}
//! ```

use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// A check of one answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Assertion {
    /// The answer contains this text (case-insensitive).
    Contains {
        /// The text.
        text: String,
    },
    /// The answer does not contain this text (case-insensitive).
    NotContains {
        /// The text.
        text: String,
    },
    /// The answer cites this document.
    Cites {
        /// The document id.
        document: String,
    },
    /// The answer abstains.
    Abstains,
}

impl Assertion {
    /// Whether an answer passes: its text, whether it abstained, the documents it cites.
    pub fn holds(&self, answer: &str, abstained: bool, cited: &[String]) -> bool {
        let lower = answer.to_lowercase();
        match self {
            Assertion::Contains { text } => lower.contains(&text.to_lowercase()),
            Assertion::NotContains { text } => !lower.contains(&text.to_lowercase()),
            Assertion::Cites { document } => cited.iter().any(|d| d == document),
            Assertion::Abstains => abstained,
        }
    }
}

fn yes() -> bool {
    true
}

/// One eval case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Unique within the dataset.
    pub id: String,
    /// The question asked.
    pub question: String,
    /// A reference answer, for token F1 and similarity.
    #[serde(default)]
    pub reference: Option<String>,
    /// Facts the answer must state (each checked as a `contains` assertion).
    #[serde(default)]
    pub required_facts: Vec<String>,
    /// Documents that hold the answer, for the retrieval metrics.
    #[serde(default)]
    pub relevant_documents: Vec<String>,
    /// False when the sources do not hold the answer: the right answer is to abstain.
    #[serde(default = "yes")]
    pub answerable: bool,
    /// The guard policy whose brand rules the answer must follow, when not the default.
    #[serde(default)]
    pub policy: Option<String>,
    /// Free labels for slicing the report.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Checks of the answer.
    #[serde(default)]
    pub assertions: Vec<Assertion>,
}

impl Case {
    /// Every assertion of the case, required facts included.
    pub fn all_assertions(&self) -> Vec<Assertion> {
        let mut out: Vec<Assertion> = self
            .required_facts
            .iter()
            .map(|f| Assertion::Contains { text: f.clone() })
            .collect();
        out.extend(self.assertions.iter().cloned());
        if !self.answerable && !out.contains(&Assertion::Abstains) {
            out.push(Assertion::Abstains);
        }
        out
    }
}

/// A dataset line could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct DatasetError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses JSON lines (blank lines and lines starting with `#` skipped).
pub fn parse(text: &str) -> Result<Vec<Case>, DatasetError> {
    let mut cases = Vec::new();
    let mut ids = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let err = |message: String| DatasetError {
            line: line_no,
            message,
        };
        let case: Case = serde_json::from_str(t).map_err(|e| err(e.to_string()))?;
        if case.id.trim().is_empty() {
            return Err(err("'id' must not be empty".into()));
        }
        if case.question.trim().is_empty() {
            return Err(err(format!(
                "case {}: 'question' must not be empty",
                case.id
            )));
        }
        if !ids.insert(case.id.clone()) {
            return Err(err(format!("case id {:?} appears twice", case.id)));
        }
        if !case.answerable && !case.relevant_documents.is_empty() {
            return Err(err(format!(
                "case {}: an unanswerable case lists relevant documents",
                case.id
            )));
        }
        cases.push(case);
    }
    if cases.is_empty() {
        return Err(DatasetError {
            line: 0,
            message: "the dataset has no cases".into(),
        });
    }
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cases_and_names_the_bad_line() {
        let text = r#"# comment
{"id": "a", "question": "What does it cost?", "required_facts": ["49"], "relevant_documents": ["d1"]}

{"id": "b", "question": "Who is the CEO of Mars?", "answerable": false, "tags": ["trick"]}
"#;
        let cases = parse(text).unwrap();
        assert_eq!(cases.len(), 2);
        assert!(cases[0].answerable);
        assert_eq!(cases[1].all_assertions(), vec![Assertion::Abstains]);
        assert_eq!(
            cases[0].all_assertions(),
            vec![Assertion::Contains { text: "49".into() }]
        );
        let e = parse("{\"id\": \"a\", \"question\": \"q\"}\n{\"id\": \"a\", \"question\": \"q\"}")
            .unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse("{\"id\": \"a\", \"question\": \"q\", \"answr\": 1}").unwrap_err();
        assert!(e.message.contains("answr"), "{e}");
        assert!(parse("").is_err());
    }

    #[test]
    fn assertions_check_answers() {
        let cited = vec!["d1".to_owned()];
        assert!(Assertion::Contains {
            text: "EURO".into()
        }
        .holds("49 euro", false, &cited));
        assert!(!Assertion::NotContains {
            text: "garantiert".into()
        }
        .holds("Garantiert!", false, &cited));
        assert!(Assertion::Cites {
            document: "d1".into()
        }
        .holds("", false, &cited));
        assert!(!Assertion::Abstains.holds("x", false, &cited));
    }
}
