//! Text extraction: Markdown, HTML (main content only), PDF and plain text become one
//! document text plus its structure, as blocks with offsets into that text.
//!
//! Markdown keeps its source as the document text (offsets point into what the user
//! wrote); HTML and PDF are reduced to their visible text first.

use std::ops::Range;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use scraper::{ElementRef, Html, Node, Selector};

use crate::KnowledgeError;

/// A document format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Plain text: paragraphs are separated by blank lines.
    Text,
    /// CommonMark with tables.
    Markdown,
    /// An HTML page; navigation, headers, footers, scripts are dropped.
    Html,
    /// A PDF file (text layer).
    Pdf,
}

impl Format {
    /// The format a file name suggests (`None` for unknown extensions).
    pub fn from_path(path: &std::path::Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "md" | "markdown" | "mdx" => Self::Markdown,
            "html" | "htm" | "xhtml" => Self::Html,
            "pdf" => Self::Pdf,
            "txt" | "text" | "csv" | "log" | "rst" => Self::Text,
            _ => return None,
        })
    }

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Markdown => "markdown",
            Self::Html => "html",
            Self::Pdf => "pdf",
        }
    }
}

/// What a block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// A heading of the given level (1–6).
    Heading(u8),
    /// A paragraph.
    Paragraph,
    /// A list item (nested lists stay inside their item).
    ListItem,
    /// A table; its rows are lines.
    Table,
    /// Preformatted code.
    Code,
}

/// A structural unit of the document text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Kind.
    pub kind: BlockKind,
    /// Byte range in the document text.
    pub range: Range<usize>,
    /// Titles of the headings this block sits under, outermost first (for a heading:
    /// including itself).
    pub heading_path: Vec<String>,
}

/// An extracted document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// The document text every offset refers to.
    pub text: String,
    /// A title found in the document (HTML `<title>`, first level-1 heading).
    pub title: Option<String>,
    /// Blocks in reading order.
    pub blocks: Vec<Block>,
    /// Metadata a Markdown document carries in a front-matter block (`---` … `---` of
    /// flat `key: value` lines; `[a, b]` lists, `true`/`false`, quoted strings).
    pub front_matter: serde_json::Map<String, serde_json::Value>,
}

/// Extracts text and structure.
pub fn extract(input: &[u8], format: Format) -> Result<Extracted, KnowledgeError> {
    let text = || {
        std::str::from_utf8(input).map_err(|e| {
            KnowledgeError::Invalid(format!("{} document is not UTF-8: {e}", format.name()))
        })
    };
    match format {
        Format::Text => Ok(plain(text()?.to_owned())),
        Format::Markdown => Ok(markdown(text()?)),
        Format::Html => Ok(html(text()?)),
        Format::Pdf => pdf(input),
    }
}

/// Tracks the heading path while blocks are read.
#[derive(Default)]
struct Headings(Vec<(u8, String)>);

impl Headings {
    fn enter(&mut self, level: u8, title: String) {
        self.0.retain(|(l, _)| *l < level);
        self.0.push((level, title));
    }
    fn path(&self) -> Vec<String> {
        self.0.iter().map(|(_, t)| t.clone()).collect()
    }
}

fn plain(text: String) -> Extracted {
    let mut blocks = Vec::new();
    let mut start = None;
    let mut offset = 0;
    let push = |range: Range<usize>, text: &str, blocks: &mut Vec<Block>| {
        let trimmed = text[range.clone()].trim_end();
        if trimmed.is_empty() {
            return;
        }
        let kind = if is_list_line(trimmed) {
            BlockKind::ListItem
        } else {
            BlockKind::Paragraph
        };
        blocks.push(Block {
            kind,
            range: range.start..range.start + trimmed.len(),
            heading_path: Vec::new(),
        });
    };
    for line in text.split_inclusive('\n') {
        let blank = line.trim().is_empty();
        let list = is_list_line(line.trim_start());
        match (start, blank) {
            (Some(s), true) => {
                push(s..offset, &text, &mut blocks);
                start = None;
            }
            (Some(s), false) if list => {
                push(s..offset, &text, &mut blocks);
                start = Some(offset + (line.len() - line.trim_start().len()));
            }
            (None, false) => start = Some(offset + (line.len() - line.trim_start().len())),
            _ => {}
        }
        offset += line.len();
    }
    if let Some(s) = start {
        push(s..text.len(), &text, &mut blocks);
    }
    Extracted {
        title: None,
        blocks,
        text,
        front_matter: Default::default(),
    }
}

fn is_list_line(line: &str) -> bool {
    line.starts_with("- ")
        || line.starts_with("* ")
        || line.starts_with("• ")
        || line.split_once(". ").is_some_and(|(n, _)| {
            !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit())
        })
}

fn markdown(src: &str) -> Extracted {
    let mut blocks = Vec::new();
    let mut headings = Headings::default();
    let mut title = None;
    let mut heading: Option<(u8, Range<usize>, String)> = None;
    // Depth of containers whose blocks are already covered (list items, tables, code).
    let mut covered = 0usize;
    let mut front_matter = serde_json::Map::new();
    let mut in_front_matter = false;
    let options = Options::ENABLE_TABLES | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    for (event, range) in Parser::new_ext(src, options).into_offset_iter() {
        match event {
            Event::Start(Tag::MetadataBlock(_)) => in_front_matter = true,
            Event::End(TagEnd::MetadataBlock(_)) => in_front_matter = false,
            Event::Text(t) if in_front_matter => front_matter.extend(parse_front_matter(&t)),
            Event::Start(Tag::Heading { level, .. }) => {
                heading = Some((level_number(level), range, String::new()))
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((level, range, text)) = heading.take() {
                    let text = text.trim().to_owned();
                    if level == 1 && title.is_none() && !text.is_empty() {
                        title = Some(text.clone());
                    }
                    headings.enter(level, text);
                    blocks.push(Block {
                        kind: BlockKind::Heading(level),
                        range: trim_range(src, range),
                        heading_path: headings.path(),
                    });
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some((_, _, text)) = heading.as_mut() {
                    text.push_str(&t);
                }
            }
            Event::Start(tag @ (Tag::Item | Tag::Table(_) | Tag::CodeBlock(_))) => {
                if covered == 0 {
                    let kind = match tag {
                        Tag::Item => BlockKind::ListItem,
                        Tag::Table(_) => BlockKind::Table,
                        _ => BlockKind::Code,
                    };
                    blocks.push(Block {
                        kind,
                        range: trim_range(src, range),
                        heading_path: headings.path(),
                    });
                }
                covered += 1;
            }
            Event::End(TagEnd::Item | TagEnd::Table | TagEnd::CodeBlock) => {
                covered = covered.saturating_sub(1)
            }
            Event::Start(Tag::Paragraph | Tag::HtmlBlock) if covered == 0 => blocks.push(Block {
                kind: BlockKind::Paragraph,
                range: trim_range(src, range),
                heading_path: headings.path(),
            }),
            _ => {}
        }
    }
    blocks.retain(|b| !b.range.is_empty());
    Extracted {
        text: src.to_owned(),
        title,
        blocks,
        front_matter,
    }
}

/// Flat `key: value` lines of a front-matter block; nested YAML is not read (lines that
/// are not `key: value` are skipped).
fn parse_front_matter(text: &str) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let scalar = |v: &str| -> Value {
        let v = v.trim();
        let unquoted = v
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')));
        match (unquoted, v) {
            (Some(u), _) => Value::String(u.to_owned()),
            (None, "true") => Value::Bool(true),
            (None, "false") => Value::Bool(false),
            (None, _) => Value::String(v.to_owned()),
        }
    };
    let mut out = serde_json::Map::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim();
        let value = value.trim();
        if key.is_empty() || key.starts_with('#') || key.contains(' ') || value.is_empty() {
            continue;
        }
        let v = match value.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            Some(items) => Value::Array(
                items
                    .split(',')
                    .filter(|i| !i.trim().is_empty())
                    .map(scalar)
                    .collect(),
            ),
            None => scalar(value),
        };
        out.insert(key.to_owned(), v);
    }
    out
}

fn level_number(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

fn trim_range(src: &str, range: Range<usize>) -> Range<usize> {
    let s = &src[range.clone()];
    let start = range.start + (s.len() - s.trim_start().len());
    let end = range.start + s.trim_end().len();
    start..end.max(start)
}

/// Elements that never hold main content.
const BOILERPLATE_TAGS: &[&str] = &[
    "nav", "header", "footer", "aside", "script", "style", "noscript", "form", "template", "svg",
    "iframe", "button", "select", "head", "menu", "dialog",
];
/// Class or id fragments of boilerplate containers.
const BOILERPLATE_MARKS: &[&str] = &[
    "nav",
    "menu",
    "footer",
    "cookie",
    "consent",
    "sidebar",
    "breadcrumb",
    "banner",
    "share",
    "social",
    "newsletter",
    "skip-link",
    "pagination",
];

struct HtmlText {
    text: String,
    blocks: Vec<Block>,
    headings: Headings,
    title: Option<String>,
}

impl HtmlText {
    fn push(&mut self, kind: BlockKind, content: &str) {
        let content = collapse(content);
        if content.is_empty() {
            return;
        }
        if !self.text.is_empty() {
            self.text.push_str("\n\n");
        }
        let start = self.text.len();
        self.text.push_str(&content);
        if let BlockKind::Heading(level) = kind {
            if level == 1 && self.title.is_none() {
                self.title = Some(content.clone());
            }
            self.headings.enter(level, content);
        }
        self.blocks.push(Block {
            kind,
            range: start..self.text.len(),
            heading_path: self.headings.path(),
        });
    }
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_boilerplate(el: &ElementRef<'_>) -> bool {
    let v = el.value();
    if BOILERPLATE_TAGS.contains(&v.name())
        || v.attr("hidden").is_some()
        || v.attr("aria-hidden") == Some("true")
    {
        return true;
    }
    if matches!(
        v.attr("role"),
        Some("navigation" | "banner" | "contentinfo" | "complementary")
    ) {
        return true;
    }
    let marks = format!(
        "{} {}",
        v.attr("class").unwrap_or(""),
        v.attr("id").unwrap_or("")
    )
    .to_ascii_lowercase();
    marks.split(|c: char| c.is_whitespace()).any(|m| {
        BOILERPLATE_MARKS
            .iter()
            .any(|b| m == *b || m.starts_with(&format!("{b}-")) || m.ends_with(&format!("-{b}")))
    })
}

fn inline_text(el: ElementRef<'_>, out: &mut String) {
    for child in el.children() {
        match child.value() {
            Node::Text(t) => out.push_str(t),
            Node::Element(e) => {
                if let Some(child) = ElementRef::wrap(child) {
                    if is_boilerplate(&child) {
                        continue;
                    }
                    if e.name() == "br" {
                        out.push(' ');
                    }
                    inline_text(child, out);
                    if matches!(e.name(), "td" | "th") {
                        out.push_str(" | ");
                    }
                }
            }
            _ => {}
        }
    }
}

fn walk(el: ElementRef<'_>, out: &mut HtmlText) {
    if is_boilerplate(&el) {
        return;
    }
    let name = el.value().name();
    let block = match name {
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
            Some(BlockKind::Heading(name.as_bytes()[1] - b'0'))
        }
        "p" | "blockquote" | "dd" | "dt" | "figcaption" | "address" => Some(BlockKind::Paragraph),
        "li" => Some(BlockKind::ListItem),
        "pre" => Some(BlockKind::Code),
        "table" => {
            // One line per row, cells separated by " | ".
            let mut rows = Vec::new();
            if let Ok(tr) = Selector::parse("tr") {
                for row in el.select(&tr) {
                    let mut line = String::new();
                    inline_text(row, &mut line);
                    let line = collapse(line.trim_end_matches([' ', '|']));
                    if !line.is_empty() {
                        rows.push(line);
                    }
                }
            }
            if !out.text.is_empty() && !rows.is_empty() {
                out.text.push_str("\n\n");
            }
            let start = out.text.len();
            out.text.push_str(&rows.join("\n"));
            if out.text.len() > start {
                let path = out.headings.path();
                out.blocks.push(Block {
                    kind: BlockKind::Table,
                    range: start..out.text.len(),
                    heading_path: path,
                });
            }
            return;
        }
        _ => None,
    };
    if let Some(kind) = block {
        // A list item holding a nested list stays one block, like in Markdown.
        let mut s = String::new();
        inline_text(el, &mut s);
        out.push(kind, &s);
        return;
    }
    // A container: loose text directly inside it is a paragraph of its own.
    let mut loose = String::new();
    for child in el.children() {
        match child.value() {
            Node::Text(t) => loose.push_str(t),
            Node::Element(e) if is_inline(e.name()) => {
                if let Some(c) = ElementRef::wrap(child) {
                    if !is_boilerplate(&c) {
                        inline_text(c, &mut loose);
                    }
                }
            }
            Node::Element(_) => {
                if let Some(c) = ElementRef::wrap(child) {
                    out.push(BlockKind::Paragraph, &std::mem::take(&mut loose));
                    walk(c, out);
                }
            }
            _ => {}
        }
    }
    out.push(BlockKind::Paragraph, &loose);
}

fn is_inline(name: &str) -> bool {
    matches!(
        name,
        "a" | "abbr"
            | "b"
            | "bdi"
            | "bdo"
            | "cite"
            | "code"
            | "data"
            | "dfn"
            | "em"
            | "i"
            | "kbd"
            | "mark"
            | "q"
            | "s"
            | "samp"
            | "small"
            | "span"
            | "strong"
            | "sub"
            | "sup"
            | "time"
            | "u"
            | "var"
            | "wbr"
            | "br"
    )
}

fn html(src: &str) -> Extracted {
    let doc = Html::parse_document(src);
    let page_title = Selector::parse("title")
        .ok()
        .and_then(|s| doc.select(&s).next())
        .map(|t| collapse(&t.text().collect::<String>()))
        .filter(|t| !t.is_empty());
    // The main content where the page marks it; the body otherwise.
    let root = [
        "main",
        "article",
        "[role=main]",
        "#content",
        ".content",
        "body",
    ]
    .iter()
    .filter_map(|s| Selector::parse(s).ok())
    .find_map(|s| doc.select(&s).next())
    .unwrap_or_else(|| doc.root_element());
    let mut out = HtmlText {
        text: String::new(),
        blocks: Vec::new(),
        headings: Headings::default(),
        title: None,
    };
    walk(root, &mut out);
    Extracted {
        front_matter: Default::default(),
        title: page_title.or(out.title),
        text: out.text,
        blocks: out.blocks,
    }
}

fn pdf(bytes: &[u8]) -> Result<Extracted, KnowledgeError> {
    // pdf-extract panics on some malformed files; a bad upload must be an error.
    let text = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem(bytes))
        .map_err(|_| KnowledgeError::Invalid("the PDF could not be read (malformed file)".into()))?
        .map_err(|e| KnowledgeError::Invalid(format!("the PDF could not be read: {e}")))?;
    if text.trim().is_empty() {
        return Err(KnowledgeError::Invalid(
            "the PDF has no text layer (scanned images are not read)".into(),
        ));
    }
    Ok(plain(text))
}

/// The language of a text as an ISO 639-1 code where one exists ("de", "en", …), else
/// ISO 639-3; `None` when the text is too short or mixed to tell.
pub fn detect_language(text: &str) -> Option<String> {
    let sample: String = text.chars().take(4_000).collect();
    let info = whatlang::detect(&sample)?;
    if !info.is_reliable() && sample.split_whitespace().count() < 8 {
        return None;
    }
    Some(
        match info.lang() {
            whatlang::Lang::Deu => "de",
            whatlang::Lang::Eng => "en",
            whatlang::Lang::Fra => "fr",
            whatlang::Lang::Spa => "es",
            whatlang::Lang::Ita => "it",
            whatlang::Lang::Nld => "nl",
            whatlang::Lang::Por => "pt",
            whatlang::Lang::Pol => "pl",
            other => return Some(other.code().to_owned()),
        }
        .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(e: &Extracted) -> Vec<&str> {
        e.blocks.iter().map(|b| &e.text[b.range.clone()]).collect()
    }

    #[test]
    fn markdown_front_matter_is_metadata_not_text_to_chunk() {
        let src = "---\ntitle: \"Price list 2024\"\nsuperseded_by: price-list-2026.md\ntags: [prices, old]\ndraft: false\nnested:\n  - x\n---\n\n# Prices\n\nThe kettle costs 45 euros.\n";
        let e = extract(src.as_bytes(), Format::Markdown).unwrap();
        let fm = &e.front_matter;
        assert_eq!(fm["title"], "Price list 2024");
        assert_eq!(fm["superseded_by"], "price-list-2026.md");
        assert_eq!(fm["tags"], serde_json::json!(["prices", "old"]));
        assert_eq!(fm["draft"], false);
        assert!(!fm.contains_key("nested"));
        // No block covers the front matter.
        assert!(e
            .blocks
            .iter()
            .all(|b| !e.text[b.range.clone()].contains("superseded")));
        assert_eq!(e.title.as_deref(), Some("Prices"));
    }

    #[test]
    fn markdown_blocks_point_into_the_source_with_heading_paths() {
        let src = "# Guide\n\nIntro text.\n\n## Setup\n\n- one\n- two\n  - nested\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```\ncode\n```\n";
        let e = extract(src.as_bytes(), Format::Markdown).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(e.title.as_deref(), Some("Guide"));
        assert_eq!(e.text, src);
        let t = texts(&e);
        assert_eq!(t[0], "# Guide");
        assert_eq!(t[1], "Intro text.");
        assert_eq!(t[2], "## Setup");
        assert_eq!(t[3], "- one");
        assert!(t[4].starts_with("- two") && t[4].contains("nested"));
        assert!(t[5].starts_with("| a | b |"));
        assert_eq!(e.blocks[5].kind, BlockKind::Table);
        assert_eq!(e.blocks[6].kind, BlockKind::Code);
        assert_eq!(
            e.blocks[3].heading_path,
            vec!["Guide".to_owned(), "Setup".to_owned()]
        );
        assert_eq!(e.blocks.len(), 7);
    }

    #[test]
    fn html_keeps_the_main_content_and_drops_navigation() {
        let src = r#"<html><head><title>Pricing</title><script>var x=1;</script></head><body>
            <nav><a href="/">Home</a> <a href="/about">About us</a></nav>
            <div class="cookie-banner">We use cookies</div>
            <main><h1>Plans</h1><p>The <b>Pro</b> plan costs 49 €.</p>
            <ul><li>Unlimited users</li><li>Priority support</li></ul>
            <table><tr><th>Plan</th><th>Price</th></tr><tr><td>Pro</td><td>49</td></tr></table></main>
            <footer>© 2026 Example GmbH</footer></body></html>"#;
        let e = extract(src.as_bytes(), Format::Html).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(e.title.as_deref(), Some("Pricing"));
        assert!(
            !e.text.contains("About us") && !e.text.contains("cookies") && !e.text.contains("2026")
        );
        assert!(!e.text.contains("var x"));
        let t = texts(&e);
        assert_eq!(
            t,
            vec![
                "Plans",
                "The Pro plan costs 49 €.",
                "Unlimited users",
                "Priority support",
                "Plan | Price\nPro | 49"
            ]
        );
        assert_eq!(e.blocks[1].heading_path, vec!["Plans".to_owned()]);
    }

    #[test]
    fn plain_text_paragraphs_and_list_lines() {
        let src = "First paragraph\nstill first.\n\n- item one\n- item two\n\nLast.";
        let e = extract(src.as_bytes(), Format::Text).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            texts(&e),
            vec![
                "First paragraph\nstill first.",
                "- item one",
                "- item two",
                "Last."
            ]
        );
    }

    /// A one-page PDF with two lines of text in Helvetica, offsets computed.
    fn tiny_pdf(lines: &[&str]) -> Vec<u8> {
        let mut content = String::from("BT /F1 12 Tf 72 720 Td 14 TL\n");
        for l in lines {
            content.push_str(&format!("({l}) Tj T*\n"));
        }
        content.push_str("ET");
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
            format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_owned(),
        ];
        let mut pdf = String::from("%PDF-1.4\n");
        let mut offsets = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            offsets.push(pdf.len());
            pdf.push_str(&format!("{} 0 obj\n{o}\nendobj\n", i + 1));
        }
        let xref = pdf.len();
        pdf.push_str(&format!(
            "xref\n0 {}\n0000000000 65535 f \n",
            objects.len() + 1
        ));
        for o in offsets {
            pdf.push_str(&format!("{o:010} 00000 n \n"));
        }
        pdf.push_str(&format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        ));
        pdf.into_bytes()
    }

    #[test]
    fn pdf_text_layer_is_read() {
        let pdf = tiny_pdf(&[
            "Quarterly campaign report",
            "Revenue grew by twelve percent.",
        ]);
        let e = extract(&pdf, Format::Pdf).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(e.text.contains("Quarterly campaign report"), "{:?}", e.text);
        assert!(e.text.contains("twelve percent"), "{:?}", e.text);
        assert!(!e.blocks.is_empty());
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(matches!(
            extract(b"%PDF-1.4 garbage", Format::Pdf),
            Err(KnowledgeError::Invalid(_))
        ));
        assert!(matches!(
            extract(&[0xff, 0xfe, 0x00], Format::Markdown),
            Err(KnowledgeError::Invalid(_))
        ));
    }

    #[test]
    fn languages_are_told_apart() {
        assert_eq!(
            detect_language("Die Kampagne startet im Frühjahr und richtet sich an Bestandskunden in Österreich und der Schweiz.").as_deref(),
            Some("de")
        );
        assert_eq!(
            detect_language("The campaign starts in spring and targets existing customers in Austria and Switzerland.").as_deref(),
            Some("en")
        );
    }
}
