//! Text from a PDF's text layer, page by page, with `pdf-extract` (pure
//! Rust, on lopdf).
//!
//! The crate lays glyphs out as lines and puts a blank line where the gap
//! between two lines is wider than a line (a paragraph break), which is
//! what [`super::sections`] splits on. It panics on some broken files, so
//! every call into it runs inside `catch_unwind`; its work is bounded by a
//! deadline and a cap on the text it writes (checked at every glyph and
//! every page), a cap on pages, and the caller's cap on the file's size.
//! An encrypted file is read only if it opens with the empty password (an
//! owner password alone restricts printing or copying, not reading).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use pdf_extract::{MediaBox, OutputDev, OutputError, PlainTextOutput, Transform};
use tracing::warn;

use super::IngestError;

/// Pages are separated by a form feed in the text that [`text`] returns.
pub const PAGE_BREAK: char = '\u{c}';

/// Bounds on reading one PDF.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest file, and the most text taken from it, in bytes.
    pub max_bytes: usize,
    /// Pages beyond this are refused: a real manual has far fewer, and each
    /// page costs a walk of the page tree.
    pub max_pages: usize,
    /// Wall-clock time for the whole extraction.
    pub time: Duration,
}

impl Limits {
    /// Up to `max_bytes`, 5,000 pages and a minute.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            max_pages: 5_000,
            time: Duration::from_secs(60),
        }
    }
}

/// The text of a PDF: pages separated by [`PAGE_BREAK`], paragraphs by
/// blank lines. Blocking and CPU-bound; call it off the async threads.
pub fn text(bytes: &[u8], limits: Limits) -> Result<String, IngestError> {
    if bytes.len() > limits.max_bytes {
        return Err(IngestError::TooLarge {
            size: bytes.len(),
            max: limits.max_bytes,
        });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(IngestError::Empty);
    }
    let deadline = Instant::now() + limits.time;
    let doc = guarded(|| pdf_extract::Document::load_mem(bytes))?
        .map_err(|e| IngestError::UnreadablePdf(e.to_string()))?;
    let doc = open(doc)?;
    let pages: Vec<u32> = guarded(|| doc.get_pages().into_keys().collect())?;
    if pages.is_empty() {
        return Err(IngestError::UnreadablePdf("it has no pages".into()));
    }
    if pages.len() > limits.max_pages {
        return Err(IngestError::UnreadablePdf(format!(
            "it has {} pages; at most {} are read",
            pages.len(),
            limits.max_pages
        )));
    }
    let mut out = String::new();
    let mut failed = 0;
    for &number in &pages {
        let room = limits.max_bytes.saturating_sub(out.len());
        let mut page = String::new();
        let mut budget = Budget::default();
        let result = guarded(|| {
            let mut device = Bounded {
                inner: PlainTextOutput::new(&mut page),
                deadline,
                room,
                written: 0,
                stopped: &mut budget,
            };
            pdf_extract::output_doc_page(&doc, &mut device, number)
        });
        match budget {
            Budget::Time => {
                return Err(IngestError::UnreadablePdf(format!(
                    "reading it took longer than {} s",
                    limits.time.as_secs()
                )));
            }
            Budget::Size => {
                return Err(IngestError::TooLarge {
                    size: out.len() + page.len(),
                    max: limits.max_bytes,
                });
            }
            Budget::Within => {}
        }
        match result {
            Ok(Ok(())) => {
                if !out.is_empty() {
                    out.push(PAGE_BREAK);
                }
                out.push_str(&tidy(&page));
            }
            Ok(Err(_)) | Err(_) => failed += 1,
        }
    }
    if failed == pages.len() {
        return Err(IngestError::UnreadablePdf(
            "none of its pages could be read".into(),
        ));
    }
    if failed > 0 {
        warn!(
            failed,
            pages = pages.len(),
            "PDF pages that could not be read were left out"
        );
    }
    if out.trim().is_empty() {
        return Err(IngestError::NoText);
    }
    Ok(out)
}

/// The document decrypted if it is encrypted and opens without a password.
fn open(mut doc: pdf_extract::Document) -> Result<pdf_extract::Document, IngestError> {
    if doc.is_encrypted() {
        let decrypted = guarded(|| doc.decrypt("").is_ok())?;
        if !decrypted || doc.is_encrypted() {
            return Err(IngestError::EncryptedPdf);
        }
    }
    Ok(doc)
}

/// `f`'s result, or a refusal if the PDF library panicked in it.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, IngestError> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|_| IngestError::UnreadablePdf("its structure is broken".into()))
}

/// Which bound, if any, stopped the extraction.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Budget {
    #[default]
    Within,
    Time,
    Size,
}

/// The crate's plain-text layout, stopped (by an error it passes up) once
/// the deadline passes or the text outgrows its room.
struct Bounded<'a, D> {
    inner: D,
    deadline: Instant,
    /// Bytes of text this page may still add.
    room: usize,
    written: usize,
    /// Set to the bound that stopped it.
    stopped: &'a mut Budget,
}

impl<D> Bounded<'_, D> {
    fn check(&mut self, more: usize) -> Result<(), OutputError> {
        self.written += more;
        if Instant::now() > self.deadline {
            *self.stopped = Budget::Time;
        } else if self.written > self.room {
            *self.stopped = Budget::Size;
        } else {
            return Ok(());
        }
        Err(OutputError::FormatError(std::fmt::Error))
    }
}

impl<D: OutputDev> OutputDev for Bounded<'_, D> {
    fn begin_page(
        &mut self,
        page_num: u32,
        media_box: &MediaBox,
        art_box: Option<(f64, f64, f64, f64)>,
    ) -> Result<(), OutputError> {
        self.check(0)?;
        self.inner.begin_page(page_num, media_box, art_box)
    }
    fn end_page(&mut self) -> Result<(), OutputError> {
        self.inner.end_page()
    }
    fn output_character(
        &mut self,
        trm: &Transform,
        width: f64,
        spacing: f64,
        font_size: f64,
        char: &str,
    ) -> Result<(), OutputError> {
        // A glyph costs at most itself and a line break or a space.
        self.check(char.len() + 2)?;
        self.inner
            .output_character(trm, width, spacing, font_size, char)
    }
    fn begin_word(&mut self) -> Result<(), OutputError> {
        self.inner.begin_word()
    }
    fn end_word(&mut self) -> Result<(), OutputError> {
        self.inner.end_word()
    }
    fn end_line(&mut self) -> Result<(), OutputError> {
        self.inner.end_line()
    }
}

/// A page's text as a reader would type it: ligatures spelt out, words
/// hyphenated across a line break joined, control characters (form feeds
/// included) made spaces, at most one blank line in a row.
fn tidy(page: &str) -> String {
    let mut spelt = String::with_capacity(page.len());
    for c in page.chars() {
        match c {
            '\u{fb00}' => spelt.push_str("ff"),
            '\u{fb01}' => spelt.push_str("fi"),
            '\u{fb02}' => spelt.push_str("fl"),
            '\u{fb03}' => spelt.push_str("ffi"),
            '\u{fb04}' => spelt.push_str("ffl"),
            '\u{fb05}' | '\u{fb06}' => spelt.push_str("st"),
            '\n' | '\t' => spelt.push(c),
            c if c.is_control() => spelt.push(' '),
            c => spelt.push(c),
        }
    }
    let mut out = String::with_capacity(spelt.len());
    let mut blank = true;
    let mut lines = spelt.lines().map(str::trim_end).peekable();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() {
            if !blank {
                out.push('\n');
            }
            blank = true;
            continue;
        }
        blank = false;
        let next_lower = lines
            .peek()
            .and_then(|l| l.trim_start().chars().next())
            .is_some_and(char::is_lowercase);
        let hyphenated = line
            .strip_suffix('-')
            .filter(|head| head.chars().last().is_some_and(char::is_lowercase));
        match hyphenated {
            Some(head) if next_lower => {
                out.push_str(head);
                if let Some(next) = lines.next() {
                    // The rest of the word, then the rest of its line.
                    out.push_str(next.trim_start());
                }
                out.push('\n');
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_tidied() {
        assert_eq!(
            tidy("\n\n1. Wi\u{fb01} \n\nthe neigh-\nbours at seven \nhave a key.\n\n\n\n-2-\n"),
            "1. Wifi\n\nthe neighbours at seven\nhave a key.\n\n-2-"
        );
        // A hyphen before a capital, or at the end, is kept.
        assert_eq!(tidy("Jean-\nPaul left-"), "Jean-\nPaul left-");
    }

    #[test]
    fn what_is_not_a_pdf_is_refused() {
        let limits = Limits::new(1 << 20);
        assert_eq!(text(b"  ", limits), Err(IngestError::Empty));
        assert!(matches!(
            text(b"%PDF-1.7\n1 0 obj << /Type /Catalog", limits),
            Err(IngestError::UnreadablePdf(_))
        ));
        assert!(matches!(
            text(&[7; 2000], limits),
            Err(IngestError::UnreadablePdf(_))
        ));
        assert!(matches!(
            text(&[b'%'; 2000], Limits::new(100)),
            Err(IngestError::TooLarge {
                size: 2000,
                max: 100
            })
        ));
    }
}
