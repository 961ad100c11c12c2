//! Loading and validating runbooks: the pipeline that turns a TOML file into
//! the typed model, or into every problem found on the way.
//!
//! The linter must report all problems, not the first, so loading runs in
//! stages that each keep going after an error:
//!
//! 1. `toml` parses with recovery, giving a spanned tree and every syntax
//!    error.
//! 2. `keys.rs` walks the tree and checks every table's keys against the
//!    raw structs' own field lists, then drops the unknown keys.
//! 3. serde fills the raw structs (`raw.rs`). A value of the wrong type is
//!    reported, removed from the tree, and serde runs again, so one bad value
//!    does not hide the next.
//! 4. `sections.rs` and `steps.rs` build the model and collect every semantic
//!    problem with its span.
//!
//! The model is returned only when no error was found; warnings never block.

use std::ops::Range;
use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue, ValueDeserializer};

pub use crate::runbook::ctx::hash;
use crate::runbook::ctx::{Ctx, SpanKey, span_key};
use crate::runbook::diag::{Diagnostic, Severity};
use crate::runbook::keys;
use crate::runbook::model::{Runbook, Span};
use crate::runbook::raw::RawRunbook;
use crate::runbook::sections;

/// The outcome of reading a runbook: the model when there is no error, and
/// every diagnostic (errors and warnings) found on the way, in file order.
#[derive(Debug)]
pub struct Loaded {
    pub runbook: Option<Runbook>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }
}

/// Read and validate a runbook file. An unreadable file is an `Err`.
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read runbook `{}`", path.display()))?;
    Ok(match decode(path, bytes) {
        Ok(source) => load_str(path, &source),
        Err(diagnostic) => Loaded {
            runbook: None,
            diagnostics: vec![*diagnostic],
        },
    })
}

/// A runbook's bytes as text. Bytes that are not UTF-8 are a problem in the
/// file like any other (the author's to fix: exit code 2 in `lint`, `run`
/// and `dry-run` alike), pointing at the first bad byte.
pub fn decode(path: &Path, bytes: Vec<u8>) -> Result<String, Box<Diagnostic>> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bad = e.as_bytes()[at];
        // Valid up to `at`, so offsets before it are the same in the
        // lossy text, which shows the bad byte as U+FFFD.
        let text = String::from_utf8_lossy(e.as_bytes());
        Box::new(Diagnostic::at(
            Severity::Error,
            path,
            &text,
            Span {
                start: at,
                end: at + 1,
            },
            format!("`{}` is not UTF-8 text: byte 0x{bad:02x}", path.display()),
            Some("save the runbook as UTF-8".into()),
        ))
    })
}

/// Validate runbook text (`path` is for messages only).
pub fn load_str(path: &Path, original: &str) -> Loaded {
    // `[step]` for `[[step]]` is reported once at its own line, then parsed
    // as meant, instead of as a cascade of duplicate keys.
    let (repaired, header_errors) = keys::single_bracket_headers(path, original);
    let source = repaired.as_deref().unwrap_or(original);
    let mut ctx = Ctx::new(path, source);
    ctx.diagnostics.extend(header_errors);
    let (root, syntax_errors) = DeTable::parse_recoverable(source);
    for error in &syntax_errors {
        ctx.error(
            error.span().unwrap_or(0..0),
            format!("invalid TOML: {}", error.message()),
            syntax_help(error.message()),
        );
    }
    let mut root = Spanned::new(root.span(), DeValue::Table(root.into_inner()));
    keys::check(&mut ctx, &mut root, !syntax_errors.is_empty());

    // A tree recovered from broken syntax has holes; checking its meaning
    // would mostly report the holes again.
    let runbook = if syntax_errors.is_empty() {
        deserialize(&mut ctx, root).and_then(|raw| sections::build(&mut ctx, &raw))
    } else {
        None
    };

    let mut diagnostics = ctx.diagnostics;
    if repaired.is_some() {
        keys::show_original_lines(&mut diagnostics, original);
    }
    diagnostics.sort_by_key(|d| (d.line, d.column));
    let runbook = runbook.filter(|_| !diagnostics.iter().any(Diagnostic::is_error));
    Loaded {
        runbook,
        diagnostics,
    }
}

/// Most type errors reported before giving up on the serde stage.
const MAX_TYPE_ERRORS: usize = 100;

/// Fill the raw structs, reporting and removing each value of the wrong type
/// until serde succeeds.
fn deserialize(ctx: &mut Ctx, mut root: Spanned<DeValue<'_>>) -> Option<RawRunbook> {
    for _ in 0..MAX_TYPE_ERRORS {
        let error = match RawRunbook::deserialize(ValueDeserializer::from(root.clone())) {
            Ok(raw) => return Some(raw),
            Err(error) => error,
        };
        let span = error.span().unwrap_or(0..0);
        let message = tidy_serde_message(error.message());
        let mut marks = Vec::new();
        let removed = remove_at(&mut root, span.start, &mut marks);
        let key = marks.last().map_or("", |(_, _, key)| key.as_str());
        let help = keys::type_help(key, &message);
        ctx.error(span.clone(), message, help);
        if !removed {
            return None;
        }
        ctx.broken.extend(marks);
    }
    None
}

/// Remove the innermost value of `value` whose span holds `pos`. Records
/// `(table span, key)` of every table on the way in `marks`, so later checks
/// do not also call the removed key missing.
fn remove_at(value: &mut Spanned<DeValue<'_>>, pos: usize, marks: &mut Vec<SpanKey>) -> bool {
    let span = value.span();
    match value.get_mut() {
        DeValue::Table(table) => {
            let Some(key) = table
                .iter()
                .find(|(k, v)| holds(k.span(), pos) || reaches(v, pos))
                .map(|(k, _)| k.get_ref().to_string())
            else {
                return false;
            };
            marks.push(span_key(span, &key));
            if let Some(child) = table.get_mut(key.as_str())
                && remove_at(child, pos, marks)
            {
                return true;
            }
            table.remove(key.as_str());
            true
        }
        DeValue::Array(array) => {
            let Some(index) = array.iter().position(|v| reaches(v, pos)) else {
                return false;
            };
            if let Some(child) = array.get_mut(index)
                && remove_at(child, pos, marks)
            {
                return true;
            }
            let old = std::mem::replace(array, DeArray::new());
            for (i, item) in old.into_iter().enumerate() {
                if i != index {
                    array.push(item);
                }
            }
            true
        }
        _ => false,
    }
}

/// Whether `pos` lies in `value` or anything inside it. A table's own span
/// is only its header, so its entries are searched too.
fn reaches(value: &Spanned<DeValue<'_>>, pos: usize) -> bool {
    if holds(value.span(), pos) {
        return true;
    }
    match value.get_ref() {
        DeValue::Table(table) => table
            .iter()
            .any(|(k, v)| holds(k.span(), pos) || reaches(v, pos)),
        DeValue::Array(array) => array.iter().any(|v| reaches(v, pos)),
        _ => false,
    }
}

fn holds(span: Range<usize>, pos: usize) -> bool {
    span.contains(&pos) || (span.is_empty() && span.start == pos)
}

/// serde speaks of Rust types; a runbook author thinks in TOML.
fn tidy_serde_message(message: &str) -> String {
    let mut out = message.replace("a sequence", "an array");
    out = out.replace("invalid type: sequence", "invalid type: array");
    out = out.replace("invalid type: map", "invalid type: table");
    out = out.replace("expected a map", "expected a table");
    out = out.replace("expected u32", "expected a whole number, 0 or more");
    if let Some(at) = out.find("expected struct ") {
        out.truncate(at);
        out.push_str("expected a table");
    }
    out
}

fn syntax_help(message: &str) -> Option<String> {
    if message.contains("duplicate key") {
        Some(
            "each key may appear once in a table; for several steps write one `[[step]]` per step"
                .into(),
        )
    } else if message.contains("string values must be quoted") {
        Some("a value is missing or not quoted; write e.g. `id = \"pull\"`".into())
    } else {
        None
    }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
