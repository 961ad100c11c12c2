//! Make strings from hardware, files, the journal and external tools safe
//! to print.
//!
//! Every string swapguard did not write itself (a drive's serial or model,
//! a key or line of a runbook, a session file's name, a field read back
//! from the journal or the quarantine registry, a scenario's drive) goes
//! through this module before a terminal sees it, so an escape sequence in
//! it (an OSC 52 clipboard write, a screen clear, a cursor move, a bidi
//! override) is shown as `?` instead of being obeyed. Three ways in, one
//! rule ([`sanitize`]):
//!
//! - [`sanitize`] for one string;
//! - [`Clean`], a `Display` wrapper for a value in a `format!`;
//! - [`CleanWriter`], an output sink for commands whose output carries no
//!   colours of the tool's own (`lint`, `journal list`, `quarantine list`,
//!   `dry-run` transcripts): everything written through it is sanitised,
//!   newlines and tabs kept. The operators, which colour their output,
//!   sanitise each value in `operator/render.rs` instead.

use std::fmt;
use std::io::{self, Write};

/// Replace control characters (escape sequences, carriage returns, bells)
/// with `?` so a drive's model string cannot move the cursor or recolour the
/// terminal. Newlines and tabs are kept only when `multiline` is true.
pub fn sanitize(text: &str, multiline: bool) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\t' if multiline => c,
            c if c.is_control() => '?',
            // Bidirectional overrides can reorder what the eye reads.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => '?',
            c => c,
        })
        .collect()
}

/// A value shown on one line: formats as [`sanitize`]`(value, false)`.
pub struct Clean<'a>(pub &'a str);

impl fmt::Display for Clean<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&sanitize(self.0, false))
    }
}

/// Everything written through it reaches `inner` sanitised (newlines and
/// tabs kept). Bytes that are not UTF-8 become `?`; a character split across
/// two writes is kept until its end arrives.
pub struct CleanWriter<W: Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: Write> CleanWriter<W> {
    pub fn new(inner: W) -> Self {
        CleanWriter {
            inner,
            pending: Vec::new(),
        }
    }

    /// Write out what is pending; `all` also writes an unfinished character.
    fn drain(&mut self, all: bool) -> io::Result<()> {
        let mut text = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    text.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    text.push_str(std::str::from_utf8(good).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            text.push('?');
                            rest = &bad[n..];
                        }
                        // An unfinished character at the end.
                        None if all => {
                            text.push('?');
                            rest = &[];
                            break;
                        }
                        None => {
                            rest = bad;
                            break;
                        }
                    }
                }
            }
        }
        let rest = rest.to_vec();
        self.pending = rest;
        self.inner.write_all(sanitize(&text, true).as_bytes())
    }
}

impl<W: Write> Write for CleanWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        self.drain(false)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain(true)?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for CleanWriter<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Standard output, sanitised; a closed stdout drops the rest quietly
/// ([`crate::output::Quiet`]).
pub fn stdout() -> CleanWriter<crate::output::Quiet> {
    CleanWriter::new(crate::output::Quiet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_writer_sanitises_across_writes() {
        let mut out = CleanWriter::new(Vec::new());
        writeln!(out, "a\x1b]52;c;aGk=\x07b").unwrap();
        // An é split across two writes, then a C1 CSI (U+009B) and a bad byte.
        out.write_all(&[0xc3]).unwrap();
        out.write_all(&[0xa9, b'\t', 0xc2, 0x9b, b'2', b'J', 0xff, b'\n'])
            .unwrap();
        out.flush().unwrap();
        assert_eq!(
            String::from_utf8(out.inner.clone()).unwrap(),
            "a?]52;c;aGk=?b\né\t?2J?\n"
        );
        assert_eq!(Clean("x\x1b[2Jy\nz").to_string(), "x?[2Jy?z");
    }

    #[test]
    fn strips_escapes_and_controls() {
        for (input, multiline, want) in [
            ("Samsung SSD 860", false, "Samsung SSD 860"),
            ("evil\x1b[2J\x07", false, "evil?[2J?"),
            ("a\nb\tc\r", true, "a\nb\tc?"),
            ("a\nb", false, "a?b"),
            ("x\u{202e}y", false, "x?y"),
        ] {
            assert_eq!(sanitize(input, multiline), want, "{input:?}");
        }
    }
}
