//! From a document to chunks: format checks (empty, binary, too large),
//! text extracted from Markdown and HTML with the headings kept as each
//! chunk's context, and from a PDF's text layer ([`pdf`]), and chunking by
//! structure (sections, then paragraphs, then sentences) to a token budget,
//! with overlap between neighbours.

use serde::{Deserialize, Serialize};

pub mod pdf;

/// What a document is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Text,
    Markdown,
    Html,
    /// Arrives as bytes, never as text; stored as its text layer, pages
    /// separated by [`pdf::PAGE_BREAK`].
    Pdf,
}

impl Format {
    /// The format a file name or media type suggests.
    pub fn guess(name_or_type: &str) -> Option<Self> {
        let s = name_or_type.to_ascii_lowercase();
        let s = s.split(';').next().unwrap_or_default().trim();
        if s.ends_with(".md") || s.ends_with(".markdown") || s == "text/markdown" {
            Some(Self::Markdown)
        } else if s.ends_with(".html") || s.ends_with(".htm") || s == "text/html" {
            Some(Self::Html)
        } else if s.ends_with(".txt") || s == "text/plain" {
            Some(Self::Text)
        } else if s.ends_with(".pdf") || s == "application/pdf" {
            Some(Self::Pdf)
        } else {
            None
        }
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("the document is empty")]
    Empty,
    #[error("the document is binary, not text ({0})")]
    Binary(&'static str),
    #[error("the document is {size} bytes; at most {max} are accepted")]
    TooLarge { size: usize, max: usize },
    #[error("the PDF cannot be read: {0}")]
    UnreadablePdf(String),
    #[error("the PDF is encrypted with a password")]
    EncryptedPdf,
    #[error("the PDF has no text to read (a scan needs OCR first)")]
    NoText,
}

/// Text from bytes, refusing what is not text.
pub fn text_of(bytes: &[u8], max: usize) -> Result<String, IngestError> {
    if bytes.len() > max {
        return Err(IngestError::TooLarge {
            size: bytes.len(),
            max,
        });
    }
    if bytes.contains(&0) {
        return Err(IngestError::Binary("it contains NUL bytes"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| IngestError::Binary("it is not UTF-8"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let control = text
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}'))
        .count();
    if control * 20 > text.chars().count().max(1) {
        return Err(IngestError::Binary("it is mostly control characters"));
    }
    if text.trim().is_empty() {
        return Err(IngestError::Empty);
    }
    Ok(text.to_owned())
}

/// A run of paragraphs under one heading path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// `Kitchen > Coffee machine`; empty before the first heading.
    pub heading: String,
    pub paragraphs: Vec<String>,
}

/// The sections of a document.
pub fn sections(text: &str, format: Format) -> Vec<Section> {
    match format {
        Format::Text => paragraphs_only(text),
        Format::Markdown => markdown(text),
        Format::Html => markdown(&html_to_markdown(text)),
        Format::Pdf => pages(text),
    }
}

/// A PDF's text: a section (without a heading) per page, so that no chunk
/// spans two pages.
fn pages(text: &str) -> Vec<Section> {
    text.split(pdf::PAGE_BREAK)
        .flat_map(paragraphs_only)
        .collect()
}

fn paragraphs_only(text: &str) -> Vec<Section> {
    let paragraphs = split_paragraphs(text);
    if paragraphs.is_empty() {
        return Vec::new();
    }
    vec![Section {
        heading: String::new(),
        paragraphs,
    }]
}

fn split_paragraphs(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect()
}

/// Markdown: ATX headings (`#` to `######`) open sections; a heading's
/// path is its ancestors' titles and its own. Setext headings, lists and
/// code are read as text.
fn markdown(text: &str) -> Vec<Section> {
    let mut out = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut body = String::new();
    let flush = |path: &[(usize, String)], body: &mut String, out: &mut Vec<Section>| {
        let paragraphs = split_paragraphs(body);
        if !paragraphs.is_empty() {
            out.push(Section {
                heading: path
                    .iter()
                    .map(|(_, t)| t.as_str())
                    .collect::<Vec<_>>()
                    .join(" > "),
                paragraphs,
            });
        }
        body.clear();
    };
    let mut in_code = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_code = !in_code;
            continue;
        }
        let level = trimmed.chars().take_while(|&c| c == '#').count();
        let is_heading =
            !in_code && (1..=6).contains(&level) && trimmed[level..].starts_with([' ', '\t']);
        if is_heading {
            flush(&path, &mut body, &mut out);
            let title = trimmed[level..]
                .trim()
                .trim_end_matches('#')
                .trim()
                .to_owned();
            path.retain(|(l, _)| *l < level);
            path.push((level, title));
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    flush(&path, &mut body, &mut out);
    out
}

/// HTML to the Markdown subset above: headings become `#` lines, block
/// elements paragraph breaks, scripts, styles and the head are dropped,
/// entities decoded. Tolerant of broken markup, as pages are.
pub fn html_to_markdown(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    let mut skip_until: Option<String> = None;
    while let Some(open) = rest.find('<') {
        let (text, after) = rest.split_at(open);
        if skip_until.is_none() {
            out.push_str(&decode_entities(text));
        }
        let Some(close) = after.find('>') else {
            rest = "";
            break;
        };
        let tag = &after[1..close];
        rest = &after[close + 1..];
        if tag.starts_with("!--") {
            // A comment may contain '>': skip to its real end.
            if let Some(end) = after.find("-->") {
                rest = &after[end + 3..];
            }
            continue;
        }
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        if let Some(until) = &skip_until {
            if closing && &name == until {
                skip_until = None;
            }
            continue;
        }
        match name.as_str() {
            "script" | "style" | "head" | "noscript" | "template" if !closing => {
                skip_until = Some(name);
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                out.push_str("\n\n");
                if !closing {
                    let level = usize::from(name.as_bytes()[1] - b'0');
                    out.push_str(&"#".repeat(level));
                    out.push(' ');
                }
            }
            "p" | "div" | "section" | "article" | "ul" | "ol" | "table" | "tr" | "br"
            | "blockquote" | "pre" | "header" | "footer" | "main" | "nav" | "dl" => {
                out.push_str("\n\n");
            }
            "li" | "dt" | "dd" if !closing => out.push_str("\n\n- "),
            "td" | "th" => out.push(' '),
            _ => {}
        }
    }
    if skip_until.is_none() {
        out.push_str(&decode_entities(rest));
    }
    // Headings must be one line.
    out.lines()
        .map(|l| {
            if l.trim_start().starts_with('#') {
                l.split_whitespace().collect::<Vec<_>>().join(" ")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let end = tail.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let name = &tail[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some(' '),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &tail[e + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A piece of a document to embed and retrieve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piece {
    pub heading: String,
    pub text: String,
}

impl Piece {
    /// What is embedded: the heading path as context, then the text.
    pub fn embedded_text(&self) -> String {
        if self.heading.is_empty() {
            self.text.clone()
        } else {
            format!("{}\n{}", self.heading, self.text)
        }
    }
}

/// Chunks of `sections`, each at most `budget` tokens as `count` measures
/// them (heading included); neighbours in a section share up to `overlap`
/// tokens (whole sentences).
pub fn chunk(
    sections: &[Section],
    budget: usize,
    overlap: usize,
    count: &dyn Fn(&str) -> usize,
) -> Vec<Piece> {
    let mut out = Vec::new();
    for section in sections {
        let heading_cost = if section.heading.is_empty() {
            0
        } else {
            count(&section.heading)
        };
        let room = budget.saturating_sub(heading_cost).max(budget / 2);
        // Units: sentences, grouped back into paragraphs where they fit.
        let mut units: Vec<String> = Vec::new();
        for p in &section.paragraphs {
            if count(p) <= room {
                units.push(p.clone());
            } else {
                for s in sentences(p) {
                    if count(&s) <= room {
                        units.push(s);
                    } else {
                        units.extend(word_runs(&s, room, count));
                    }
                }
            }
        }
        let mut current: Vec<String> = Vec::new();
        let mut i = 0;
        while i < units.len() {
            let candidate = join(&current, &units[i]);
            if current.is_empty() || count(&candidate) <= room {
                current.push(units[i].clone());
                i += 1;
                continue;
            }
            out.push(Piece {
                heading: section.heading.clone(),
                text: current.join(" "),
            });
            // Carry the tail (whole sentences) of this chunk into the next.
            let mut carried: Vec<String> = Vec::new();
            for s in current
                .iter()
                .rev()
                .flat_map(|u| sentences(u).into_iter().rev())
            {
                let with = join(&carried, &s);
                if count(&with) > overlap
                    || count(&join(std::slice::from_ref(&with), &units[i])) > room
                {
                    break;
                }
                carried.insert(0, s);
            }
            current = carried;
        }
        if !current.is_empty() {
            out.push(Piece {
                heading: section.heading.clone(),
                text: current.join(" "),
            });
        }
    }
    out
}

fn join(head: &[String], next: &str) -> String {
    let mut s = head.join(" ");
    if !s.is_empty() {
        s.push(' ');
    }
    s.push_str(next);
    s
}

/// Sentences: split after `.`, `!` or `?` followed by a space.
fn sentences(p: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = p.as_bytes();
    for i in 0..bytes.len() {
        if matches!(bytes[i], b'.' | b'!' | b'?') && bytes.get(i + 1) == Some(&b' ') {
            out.push(p[start..=i].trim().to_owned());
            start = i + 1;
        }
    }
    let last = p[start..].trim();
    if !last.is_empty() {
        out.push(last.to_owned());
    }
    out
}

/// Runs of words that fit `room` (a sentence too long for one chunk).
fn word_runs(s: &str, room: usize, count: &dyn Fn(&str) -> usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut run = String::new();
    for word in s.split_whitespace() {
        let candidate = if run.is_empty() {
            word.to_owned()
        } else {
            format!("{run} {word}")
        };
        if !run.is_empty() && count(&candidate) > room {
            out.push(std::mem::take(&mut run));
            run = word.to_owned();
        } else {
            run = candidate;
        }
    }
    if !run.is_empty() {
        out.push(run);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    #[test]
    fn refused_documents() {
        assert_eq!(text_of(b"  \n ", 100), Err(IngestError::Empty));
        assert!(matches!(
            text_of(b"ab\0cd", 100),
            Err(IngestError::Binary(_))
        ));
        assert!(matches!(
            text_of(&[0xff, 0xfe, 0x41], 100),
            Err(IngestError::Binary(_))
        ));
        assert!(matches!(
            text_of(&[b'a'; 101], 100),
            Err(IngestError::TooLarge {
                size: 101,
                max: 100
            })
        ));
        assert_eq!(text_of("\u{feff}hello".as_bytes(), 100), Ok("hello".into()));
    }

    #[test]
    fn formats_are_guessed() {
        assert_eq!(Format::guess("Manual.PDF"), Some(Format::Pdf));
        assert_eq!(Format::guess("application/pdf"), Some(Format::Pdf));
        assert_eq!(
            Format::guess("text/html; charset=utf-8"),
            Some(Format::Html)
        );
        assert_eq!(Format::guess("application/octet-stream"), None);
    }

    #[test]
    fn pdf_pages_are_sections() {
        let s = sections(
            "Heating\n\nThe boiler is\nin the utility room.\u{c}\u{c}Bins\n\nBlue for paper.",
            Format::Pdf,
        );
        let paragraphs: Vec<&[String]> = s.iter().map(|s| s.paragraphs.as_slice()).collect();
        assert_eq!(
            paragraphs,
            [
                &["Heating", "The boiler is in the utility room."][..],
                &["Bins", "Blue for paper."][..]
            ]
        );
        assert!(s.iter().all(|s| s.heading.is_empty()));
    }

    #[test]
    fn markdown_headings_become_context() {
        let s = sections(
            "Intro line.\n\n# House guide\n\n## Kitchen\n\nThe coffee machine\nis a Moka.\n\n```\n# not a heading\n```\n\n### Coffee\n\nUse pods.\n\n## Wifi\n\nNetwork Villa.\n",
            Format::Markdown,
        );
        let heads: Vec<&str> = s.iter().map(|s| s.heading.as_str()).collect();
        assert_eq!(
            heads,
            [
                "",
                "House guide > Kitchen",
                "House guide > Kitchen > Coffee",
                "House guide > Wifi"
            ]
        );
        assert_eq!(
            s[1].paragraphs,
            ["The coffee machine is a Moka.", "# not a heading"]
        );
    }

    #[test]
    fn html_text_is_extracted() {
        let html = "<html><head><title>x</title><style>p{}</style></head><body>\
            <h1>Guide</h1><script>var a = '<h2>no</h2>';</script>\
            <h2>Towels &amp; linen</h2><p>In the <b>hall</b> cupboard.</p><!-- a > b -->\
            <ul><li>Bath towels</li><li>Beach towels&nbsp;&#x2014; blue</li></ul></body></html>";
        let s = sections(html, Format::Html);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].heading, "Guide > Towels & linen");
        assert_eq!(
            s[0].paragraphs,
            [
                "In the hall cupboard.",
                "- Bath towels",
                "- Beach towels \u{2014} blue"
            ]
        );
    }

    #[test]
    fn chunks_fit_the_budget_and_overlap() {
        let para: String = (0..30)
            .map(|i| format!("Sentence number {i} is here."))
            .collect::<Vec<_>>()
            .join(" ");
        let s = vec![Section {
            heading: "Rules".into(),
            paragraphs: vec!["Short one.".into(), para],
        }];
        let pieces = chunk(&s, 40, 10, &words);
        assert!(pieces.len() > 3);
        for p in &pieces {
            assert!(words(&p.embedded_text()) <= 40, "{p:?}");
            assert_eq!(p.heading, "Rules");
        }
        // Neighbours share a sentence.
        let last_of_first = sentences(&pieces[0].text).pop().unwrap_or_default();
        assert!(pieces[1].text.contains(&last_of_first), "{pieces:?}");
        // Every sentence is somewhere.
        for i in 0..30 {
            let s = format!("Sentence number {i} is here.");
            assert!(pieces.iter().any(|p| p.text.contains(&s)), "{s}");
        }
        // A sentence longer than the budget is cut into word runs.
        let long = vec![Section {
            heading: String::new(),
            paragraphs: vec!["word ".repeat(100)],
        }];
        let pieces = chunk(&long, 30, 5, &words);
        assert!(pieces.iter().all(|p| words(&p.text) <= 30));
        assert!(pieces.iter().map(|p| words(&p.text)).sum::<usize>() >= 100);
    }
}
