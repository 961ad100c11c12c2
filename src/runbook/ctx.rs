//! What the checks share while one runbook file is loaded ([`Ctx`]: where
//! diagnostics go, where each key sits, which keys were dropped after a type
//! error) and the span helpers every check uses to point at the file.
//!
//! Every other file of `runbook/` may use this one; it uses none of them
//! but `diag`, `model` and `raw`, so no import loop runs through it.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::runbook::diag::{Diagnostic, Severity};
use crate::runbook::model::Span;
use crate::runbook::raw::Str;

/// SHA-256 of the runbook's bytes, as lowercase hex.
pub fn hash(source: &str) -> String {
    let digest = Sha256::digest(source.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

pub(crate) fn to_span(range: Range<usize>) -> Span {
    Span {
        start: range.start,
        end: range.end,
    }
}

/// `(table start, table end, key)`: a key of one particular table.
pub(crate) type SpanKey = (usize, usize, String);

pub(crate) fn span_key(table: impl IntoSpan, key: &str) -> SpanKey {
    let span = table.into_span();
    (span.start, span.end, key.to_string())
}

/// What the checks share while one file is loaded: where diagnostics go,
/// where each key sits, and which keys were dropped after a type error.
pub(crate) struct Ctx<'a> {
    pub path: &'a Path,
    pub source: &'a str,
    pub diagnostics: Vec<Diagnostic>,
    /// `(table span, key)` of values removed after a type error; checks for
    /// a missing key stay quiet about these (the type error was reported).
    pub broken: HashSet<SpanKey>,
    /// Span of every key, by `(table span, key)`.
    pub keys: HashMap<SpanKey, Span>,
    /// The runbook's backend, once `[runbook]` named a built one.
    pub backend: Option<&'static str>,
}

impl<'a> Ctx<'a> {
    pub fn new(path: &'a Path, source: &'a str) -> Self {
        Ctx {
            path,
            source,
            diagnostics: Vec::new(),
            broken: HashSet::new(),
            keys: HashMap::new(),
            backend: None,
        }
    }

    pub fn error(&mut self, span: impl IntoSpan, message: impl Into<String>, help: Option<String>) {
        self.push(Severity::Error, span.into_span(), message.into(), help);
    }

    pub fn warn(&mut self, span: impl IntoSpan, message: impl Into<String>, help: Option<String>) {
        self.push(Severity::Warning, span.into_span(), message.into(), help);
    }

    fn push(&mut self, severity: Severity, span: Span, message: String, help: Option<String>) {
        let diagnostic = Diagnostic::at(severity, self.path, self.source, span, message, help);
        self.diagnostics.push(diagnostic);
    }

    /// Whether `key` of the table at `table` was removed after a type error.
    pub fn is_broken(&self, table: impl IntoSpan, key: &str) -> bool {
        self.broken.contains(&span_key(table, key))
    }

    /// Whether any key of the table at `table` was removed after a type error.
    pub fn any_broken(&self, table: impl IntoSpan) -> bool {
        let span = table.into_span();
        self.broken
            .iter()
            .any(|(start, end, _)| (*start, *end) == (span.start, span.end))
    }

    /// The span of `key` in the table at `table`, else `fallback`.
    pub fn key_span(&self, table: impl IntoSpan, key: &str, fallback: impl IntoSpan) -> Span {
        self.keys
            .get(&span_key(table, key))
            .copied()
            .unwrap_or_else(|| fallback.into_span())
    }

    /// 1-based line of a byte offset, for help texts that name a line.
    pub fn line_of(&self, span: impl IntoSpan) -> usize {
        let start = span.into_span().start.min(self.source.len());
        self.source
            .get(..start)
            .map_or(1, |before| before.matches('\n').count() + 1)
    }

    /// The span of `len` bytes at `offset` inside the text of string value
    /// `value`. Exact for strings whose text appears verbatim in the source
    /// (no escapes); otherwise the whole string.
    pub fn inner_span(&self, value: &Str, offset: usize, len: usize) -> Span {
        let whole = to_span(value.span());
        match content_start(self.source, value.span(), value.get_ref()) {
            Some(start) => Span {
                start: start + offset,
                end: start + offset + len,
            },
            None => whole,
        }
    }
}

/// Where the text of a string value starts in the source, when the source
/// holds it verbatim between its delimiters.
fn content_start(source: &str, span: Range<usize>, text: &str) -> Option<usize> {
    let raw = source.get(span.clone())?;
    let delimiter = ["\"\"\"", "'''", "\"", "'"]
        .into_iter()
        .find(|d| raw.starts_with(d) && raw.len() >= 2 * d.len())?;
    let mut start = span.start + delimiter.len();
    if delimiter.len() == 3 {
        // A newline right after the opening delimiter is not part of the text.
        if source.get(start..)?.starts_with("\r\n") {
            start += 2;
        } else if source.get(start..)?.starts_with('\n') {
            start += 1;
        }
    }
    let end = span.end.checked_sub(delimiter.len())?;
    let verbatim =
        end.checked_sub(start) == Some(text.len()) && source.get(start..end) == Some(text);
    verbatim.then_some(start)
}

/// Anything a diagnostic can point at.
pub(crate) trait IntoSpan {
    fn into_span(self) -> Span;
}

impl IntoSpan for Span {
    fn into_span(self) -> Span {
        self
    }
}

impl IntoSpan for Range<usize> {
    fn into_span(self) -> Span {
        to_span(self)
    }
}

impl IntoSpan for &Range<usize> {
    fn into_span(self) -> Span {
        to_span(self.clone())
    }
}
