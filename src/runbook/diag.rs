//! Diagnostics for files people write: `path:line:col`, the source line
//! with a caret under the problem, and a `help:` line.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::runbook::model::Span;
use crate::sanitize::sanitize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub path: PathBuf,
    /// 1-based line and column (in characters).
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The whole source line the problem is on.
    pub source_line: String,
    /// Width of the caret underline, in characters (at least 1).
    pub width: usize,
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at `span` of `source` (the file's text).
    pub fn at(
        severity: Severity,
        path: &Path,
        source: &str,
        span: Span,
        message: impl Into<String>,
        help: Option<String>,
    ) -> Self {
        let mut start = span.start.min(source.len());
        // A span from outside the TOML parser could split a character.
        while !source.is_char_boundary(start) {
            start -= 1;
        }
        // A UTF-8 byte-order mark is no character of the first line: the
        // column counts from after it, and the line is shown without it.
        let line_start = match source[..start].rfind('\n') {
            Some(i) => i + 1,
            None if source.starts_with('\u{feff}') => '\u{feff}'.len_utf8(),
            None => 0,
        };
        let start = start.max(line_start);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let line = source[..start].matches('\n').count() + 1;
        let column = source[line_start..start].chars().count() + 1;
        let mut end = span.end.clamp(start, line_end);
        while !source.is_char_boundary(end) {
            end -= 1;
        }
        let width = source[start..end].chars().count().max(1);
        Diagnostic {
            severity,
            path: path.to_path_buf(),
            line,
            column,
            message: message.into(),
            source_line: source[line_start..line_end]
                .trim_end_matches('\r')
                .to_string(),
            width,
            help,
        }
    }

    /// A diagnostic about a whole file that has no position, such as a file
    /// that cannot be read. It renders without a source line.
    pub fn whole_file(
        severity: Severity,
        path: &Path,
        message: impl Into<String>,
        help: Option<String>,
    ) -> Self {
        Diagnostic {
            severity,
            path: path.to_path_buf(),
            line: 0,
            column: 0,
            message: message.into(),
            source_line: String::new(),
            width: 0,
            help,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Every string a diagnostic shows may come from the file (a key name, the
/// source line, a value quoted in the message) or its name: each is
/// sanitised here, so an escape sequence in a runbook shows as `?` instead
/// of reaching the terminal. Control characters become one `?` each, so the
/// caret still lines up; tabs in the source line are kept for the same
/// reason.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let message = sanitize(&self.message, true);
        let path = sanitize(&self.path.display().to_string(), false);
        let help = self.help.as_deref().map(|h| sanitize(h, true));
        let source_line = sanitize(&self.source_line, true);
        writeln!(f, "{label}: {message}")?;
        if self.line == 0 {
            write!(f, " --> {path}")?;
            if let Some(help) = &help {
                write!(f, "\n  = help: {help}")?;
            }
            return Ok(());
        }
        let gutter = self.line.to_string().len();
        writeln!(f, "{:gutter$}--> {path}:{}:{}", "", self.line, self.column)?;
        writeln!(f, "{:gutter$} |", "")?;
        writeln!(f, "{} | {source_line}", self.line)?;
        let pad: String = source_line
            .chars()
            .take(self.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, "{:gutter$} | {pad}{}", "", "^".repeat(self.width.max(1)))?;
        if let Some(help) = &help {
            write!(f, "\n{:gutter$} = help: {help}", "")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_inside_a_character_do_not_panic() {
        let src = "say = \"é\"\n";
        let d = Diagnostic::at(
            Severity::Error,
            Path::new("rb.toml"),
            src,
            Span { start: 8, end: 9 },
            "m",
            None,
        );
        assert_eq!((d.line, d.column), (1, 8));
    }

    #[test]
    fn a_byte_order_mark_is_not_a_column() {
        let src = "\u{feff}name = 3\n";
        for (start, column) in [(0, 1), (3, 1), (10, 8)] {
            let d = Diagnostic::at(
                Severity::Error,
                Path::new("rb.toml"),
                src,
                Span {
                    start,
                    end: start + 1,
                },
                "m",
                None,
            );
            assert_eq!((d.line, d.column), (1, column), "span at {start}");
            assert_eq!(d.source_line, "name = 3");
        }
    }

    #[test]
    fn whole_file_diagnostic_names_the_path() {
        let d = Diagnostic::whole_file(
            Severity::Error,
            Path::new("gone.toml"),
            "cannot read `gone.toml`: no such file",
            None,
        );
        assert_eq!(
            d.to_string(),
            "error: cannot read `gone.toml`: no such file\n --> gone.toml"
        );
    }

    #[test]
    fn caret_sits_under_the_column_with_tabs_kept() {
        let src = "a = 1\n\tsay = \"x\"\n";
        let d = Diagnostic::at(
            Severity::Warning,
            Path::new("rb.toml"),
            src,
            Span { start: 13, end: 16 },
            "m",
            None,
        );
        assert_eq!((d.line, d.column, d.width), (2, 8, 3));
        assert!(
            d.to_string()
                .ends_with("2 | \tsay = \"x\"\n  | \t      ^^^"),
            "{d}"
        );
    }

    #[test]
    fn points_at_line_and_column() {
        let src = "[guard]\nsmrt = \"required\"\n";
        let d = Diagnostic::at(
            Severity::Error,
            Path::new("rb.toml"),
            src,
            Span { start: 8, end: 12 },
            "unknown key `smrt` in [guard]",
            Some("did you mean `smart`?".into()),
        );
        assert_eq!((d.line, d.column, d.width), (2, 1, 4));
        assert_eq!(
            d.to_string(),
            "error: unknown key `smrt` in [guard]\n --> rb.toml:2:1\n  |\n2 | smrt = \"required\"\n  | ^^^^\n  = help: did you mean `smart`?"
        );
    }
}
