//! Reading an answer at the terminal: always a whole line.
//!
//! An answer is what the technician typed before Enter, never a single key:
//! `maybe` is not a yes because it contains a `y`, and `not yet` is not a no
//! because it starts with `n` (dialoguer's `Confirm` read keys one at a
//! time and the last y or n won; see the regression test in
//! tests/terminal.rs). The same reader serves every terminal, capable or
//! `TERM=dumb`: it echoes printable characters itself and moves the cursor
//! only with backspace, so it works on a serial console too.
//!
//! Ctrl-C at a prompt is read as a key (the terminal is in raw mode while a
//! line is typed, so the kernel sends no SIGINT) and comes back as
//! [`PromptInterrupted`]. A signal that arrives while the reader waits
//! (SIGTERM, SIGHUP, or a Ctrl-C between two reads) is seen through the
//! signal flag, which the reader checks every [`POLL_MS`] milliseconds: the same error.
//! Callers tell an interruption from a failure by that type, never by
//! racing the signal thread for the flag.

use std::io::Write;
use std::os::fd::AsFd;

use anyhow::{Context, Result, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{self, SetArg, Termios};

/// How often (milliseconds) a waiting reader looks at the signal flag.
const POLL_MS: u16 = 100;

/// The prompt was interrupted: Ctrl-C, or a signal that stops the run.
#[derive(Debug)]
pub struct PromptInterrupted;

impl std::fmt::Display for PromptInterrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted at the prompt")
    }
}

impl std::error::Error for PromptInterrupted {}

/// What a yes/no line means: `Some(true)` for y/yes, `Some(false)` for
/// n/no (any case, surrounding blanks ignored), `None` for anything else.
pub fn yes_no(line: &str) -> Option<bool> {
    match line.trim().to_lowercase().as_str() {
        "y" | "yes" => Some(true),
        "n" | "no" => Some(false),
        _ => None,
    }
}

/// What one key does to the line being typed.
#[derive(Debug, PartialEq, Eq)]
pub enum Edit {
    /// Nothing to do (a key that is not text, an escape sequence).
    None,
    /// Echo this text.
    Echo(String),
    /// Rub out this many characters on screen.
    Rubout(usize),
    /// Enter: the line is complete.
    Done,
    /// Ctrl-C.
    Interrupt,
    /// Ctrl-D on an empty line: no more input.
    End,
}

/// The line being typed, fed byte by byte (a pure state machine, so its
/// rules are tested without a terminal).
#[derive(Default)]
pub struct LineEditor {
    line: String,
    /// Bytes of a UTF-8 character not yet complete.
    partial: Vec<u8>,
    /// Inside an escape sequence (an arrow key): swallow until it ends.
    escape: Option<usize>,
}

impl LineEditor {
    pub fn line(&self) -> &str {
        &self.line
    }

    pub fn feed(&mut self, byte: u8) -> Edit {
        if let Some(seen) = self.escape {
            // ESC [ ... final byte in 0x40..=0x7e; ESC x is two bytes.
            let ends = match seen {
                0 => byte != b'[' && byte != b'O',
                _ => (0x40..=0x7e).contains(&byte),
            };
            self.escape = if ends { None } else { Some(seen + 1) };
            return Edit::None;
        }
        if !self.partial.is_empty() || byte >= 0x80 {
            self.partial.push(byte);
            return match std::str::from_utf8(&self.partial) {
                Ok(s) => {
                    let s = s.to_string();
                    self.partial.clear();
                    if s.chars().all(|c| !c.is_control()) {
                        self.line.push_str(&s);
                        Edit::Echo(s)
                    } else {
                        Edit::None
                    }
                }
                Err(e) if e.error_len().is_some() || self.partial.len() >= 4 => {
                    self.partial.clear();
                    Edit::None
                }
                Err(_) => Edit::None,
            };
        }
        match byte {
            b'\r' | b'\n' => Edit::Done,
            0x03 => Edit::Interrupt,
            0x04 if self.line.is_empty() => Edit::End,
            0x7f | 0x08 => match self.line.pop() {
                Some(_) => Edit::Rubout(1),
                None => Edit::None,
            },
            // Ctrl-U: rub out the whole line.
            0x15 => {
                let n = self.line.chars().count();
                self.line.clear();
                if n == 0 { Edit::None } else { Edit::Rubout(n) }
            }
            0x1b => {
                self.escape = Some(0);
                Edit::None
            }
            b if b.is_ascii_control() => Edit::None,
            b => {
                self.line.push(char::from(b));
                Edit::Echo(char::from(b).to_string())
            }
        }
    }
}

/// The terminal in raw mode (no echo, no line editing, no signals from
/// keys) for as long as this lives; output processing is kept, so `\n`
/// still starts a new line.
struct Raw {
    saved: Termios,
}

impl Raw {
    fn enter() -> Result<Self> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).context("cannot read the terminal's mode")?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        raw.output_flags = saved.output_flags;
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSADRAIN, &raw)
            .context("cannot set the terminal's mode")?;
        Ok(Raw { saved })
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}

/// Read one line from the terminal on stdin, echoing it to `out`. Returns
/// the line without its end; [`PromptInterrupted`] on Ctrl-C or when
/// `interrupted()` turns true while waiting. Keys typed after Enter (typed
/// ahead, as a cooked terminal keeps them) stay in `ahead` for the next
/// line.
pub fn read_line(
    out: &mut dyn Write,
    ahead: &mut Vec<u8>,
    interrupted: &dyn Fn() -> bool,
) -> Result<String> {
    let raw = Raw::enter()?;
    let mut editor = LineEditor::default();
    let stdin = std::io::stdin();
    let timeout = PollTimeout::from(POLL_MS);
    let edit = loop {
        if ahead.is_empty() {
            if interrupted() {
                break Edit::Interrupt;
            }
            let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(e).context("cannot read the terminal"),
            }
            let mut buf = [0u8; 64];
            match nix::unistd::read(stdin.as_fd(), &mut buf) {
                Ok(0) => break Edit::End,
                Ok(n) => ahead.extend_from_slice(&buf[..n]),
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
                Err(e) => return Err(e).context("cannot read the terminal"),
            }
        }
        let mut used = 0;
        let mut end = None;
        for &byte in ahead.iter() {
            used += 1;
            match editor.feed(byte) {
                Edit::None => {}
                Edit::Echo(text) => out.write_all(text.as_bytes())?,
                Edit::Rubout(k) => {
                    for _ in 0..k {
                        out.write_all(b"\x08 \x08")?;
                    }
                }
                other => {
                    end = Some(other);
                    break;
                }
            }
        }
        ahead.drain(..used);
        out.flush()?;
        if let Some(end) = end {
            break end;
        }
    };
    drop(raw);
    if matches!(edit, Edit::Interrupt | Edit::End) {
        // Nothing typed ahead answers anything after an interruption.
        ahead.clear();
    }
    // The line the answer was typed on ends here, whatever ended it.
    out.write_all(b"\r\n")?;
    out.flush()?;
    match edit {
        Edit::Done => Ok(editor.line),
        Edit::Interrupt => Err(PromptInterrupted.into()),
        _ => bail!("the terminal closed (end of input) before an answer was given"),
    }
}

#[cfg(test)]
mod tests {
    use super::{Edit, LineEditor, yes_no};

    #[test]
    fn a_yes_no_answer_is_a_whole_word() {
        let cases = [
            ("y", Some(true)),
            ("yes", Some(true)),
            ("  YES ", Some(true)),
            ("Y", Some(true)),
            ("n", Some(false)),
            ("No", Some(false)),
            ("\tno\t", Some(false)),
            // The bug: single keys, the last y or n won.
            ("maybe", None),
            ("not yet", None),
            ("", None),
            ("yes please", None),
            ("nope", None),
            ("yy", None),
        ];
        for (line, want) in cases {
            assert_eq!(yes_no(line), want, "{line:?}");
        }
    }

    fn typed(bytes: &[u8]) -> (String, Vec<Edit>) {
        let mut e = LineEditor::default();
        let edits = bytes.iter().map(|&b| e.feed(b)).collect();
        (e.line().to_string(), edits)
    }

    #[test]
    fn the_line_editor_echoes_rubs_out_and_ends() {
        let (line, edits) = typed(b"mayb\x7fbe\r");
        assert_eq!(line, "maybe");
        assert_eq!(edits.last(), Some(&Edit::Done));
        assert!(edits.contains(&Edit::Rubout(1)));
        // An arrow key moves nothing and types nothing.
        assert_eq!(typed(b"y\x1b[Ds").0, "ys");
        assert_eq!(typed(b"\x1bOAno").0, "no");
        // Ctrl-U clears, Ctrl-C interrupts, Ctrl-D on an empty line ends.
        assert_eq!(typed(b"abc\x15no").0, "no");
        assert_eq!(typed(b"ab\x03").1.last(), Some(&Edit::Interrupt));
        assert_eq!(typed(b"\x04").1, vec![Edit::End]);
        assert_eq!(typed(b"a\x04").0, "a");
        // UTF-8 arrives byte by byte and is echoed whole.
        let (line, edits) = typed("né".as_bytes());
        assert_eq!(line, "né");
        assert_eq!(edits.last(), Some(&Edit::Echo("é".into())));
        // Backspace on an empty line does nothing.
        assert_eq!(typed(b"\x7f").1, vec![Edit::None]);
    }
}
