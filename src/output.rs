//! Standard output that may be closed early (`swapguard status --json |
//! head -1`).
//!
//! Rust ignores SIGPIPE, so a write to a closed pipe fails with EPIPE, and
//! `println!` panics on that. swapguard keeps SIGPIPE ignored on purpose: a
//! run must never be killed mid-step, between a command and the journal
//! entry for its result, because whoever read its output went away. So a
//! closed stdout is an error that ends only the output:
//!
//! - [`out!`](crate::out) and [`outln!`](crate::outln) print a command's
//!   result; once stdout is closed they print nothing more and succeed, so
//!   the command still exits with its own code (`lint` 2 on errors, `test`
//!   7 on a failed scenario);
//! - a writer from [`stdout`] that streams (the demo, completions) fails
//!   with [`StdoutClosed`], which ends the command; [`crate::run`] then
//!   exits quietly (status 0, as ripgrep does), with no message and no
//!   panic;
//! - the operator's own output during `run`, `resume` and `dry-run` ignores
//!   write errors, so the engine, the guard and the journal carry on.

use std::fmt;
use std::io::{self, Write};

/// The version of every JSON document swapguard prints (`status --json`,
/// `test --json`, `quarantine list --json`), as a top-level `"format"`.
/// Raised when a key is removed or changes meaning; adding keys keeps it.
pub const JSON_FORMAT: u32 = 1;

/// The error of a write to a closed standard output.
#[derive(Debug)]
pub struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Standard output whose broken-pipe error is [`StdoutClosed`].
pub struct Stdout;

/// Standard output, for a command that streams.
pub fn stdout() -> Stdout {
    Stdout
}

fn closed(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        io::Error::new(io::ErrorKind::BrokenPipe, StdoutClosed)
    } else {
        e
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::stdout().lock().write(buf).map_err(closed)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        io::stdout().lock().write_all(buf).map_err(closed)
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stdout().lock().flush().map_err(closed)
    }
}

/// Standard output for a command's result: once it is closed, the rest is
/// dropped and writing succeeds (see [`print`]). The sanitising sink
/// ([`crate::sanitize::stdout`]) writes through it.
pub struct Quiet;

impl Write for Quiet {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match io::stdout().lock().write_all(buf) {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e),
            _ => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match io::stdout().lock().flush() {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e),
            _ => Ok(()),
        }
    }
}

/// Whether `error` (anywhere in its chain) is a write to a closed stdout.
pub fn is_stdout_closed(error: &anyhow::Error) -> bool {
    error.chain().any(|e| {
        e.is::<StdoutClosed>()
            || e.downcast_ref::<io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.is::<StdoutClosed>())
    })
}

/// Print `args` to stdout. A closed stdout is not an error here (the rest
/// of the output is dropped); any other write error is.
pub fn print(args: fmt::Arguments<'_>) -> io::Result<()> {
    Quiet.write_fmt(args).and_then(|()| Quiet.flush())
}

/// `print!` that survives a closed stdout; returns `io::Result<()>`.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::print(format_args!($($arg)*))
    };
}

/// `println!` that survives a closed stdout; returns `io::Result<()>`.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::print(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `--color WHEN`, as ripgrep and fd have it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ColorChoice {
    /// Colour on a terminal, unless `NO_COLOR` is set, `TERM` is `dumb` or
    /// missing, or `CLICOLOR=0`.
    #[default]
    Auto,
    /// Colour even into a pipe or file, whatever the environment says.
    Always,
    /// Never colour.
    Never,
}

impl ColorChoice {
    /// Whether to colour output that goes to a terminal (`terminal`) or
    /// not, with the environment as it is.
    pub fn wanted(self, terminal: bool) -> bool {
        self.wanted_with(
            std::env::var_os("NO_COLOR").is_some(),
            std::env::var("TERM").ok().as_deref(),
            std::env::var("CLICOLOR").ok().as_deref(),
            terminal,
        )
    }

    /// What the terminal operator is told: `Some` when `--color` decided
    /// (`always`, `never`), `None` under `auto`, where the operator looks
    /// at the environment and the terminal itself.
    pub fn forced(self) -> Option<bool> {
        match self {
            ColorChoice::Auto => None,
            ColorChoice::Always => Some(true),
            ColorChoice::Never => Some(false),
        }
    }

    /// [`wanted`](Self::wanted) with the environment given.
    pub fn wanted_with(
        self,
        no_color_set: bool,
        term: Option<&str>,
        clicolor: Option<&str>,
        terminal: bool,
    ) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => colors_wanted(no_color_set, term, clicolor, terminal),
        }
    }
}

/// Whether to colour output. `NO_COLOR` (any value, even empty) wins, then a
/// dumb or missing `TERM`, then `CLICOLOR=0`; otherwise whatever the terminal
/// supports.
pub fn colors_wanted(
    no_color_set: bool,
    term: Option<&str>,
    clicolor: Option<&str>,
    color_terminal: bool,
) -> bool {
    if no_color_set || is_plain_term(term) || clicolor == Some("0") {
        return false;
    }
    color_terminal
}

/// True for a terminal that understands no escape sequences: `TERM` unset,
/// empty or `dumb`. Such a terminal gets no cursor movement at all (a line
/// per 10% of progress instead of a bar, plain line prompts).
pub fn is_plain_term(term: Option<&str>) -> bool {
    matches!(term.map(str::trim), None | Some("") | Some("dumb"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_stdout_is_recognised_through_context() {
        let e = anyhow::Error::from(closed(io::Error::from(io::ErrorKind::BrokenPipe)))
            .context("cannot write the man page");
        assert!(is_stdout_closed(&e));
        // A broken pipe to some other program is a real error.
        let other = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe))
            .context("cannot feed smartctl");
        assert!(!is_stdout_closed(&other));
    }

    #[test]
    fn color_choice_always_and_never_win_auto_asks_the_environment() {
        use ColorChoice::{Always, Auto, Never};
        let xterm = Some("xterm-256color");
        for (choice, no_color, term, clicolor, terminal, want) in [
            (Auto, false, xterm, None, true, true),
            (Auto, false, xterm, None, false, false),
            (Auto, true, xterm, None, true, false),
            (Auto, false, Some("dumb"), None, true, false),
            (Auto, false, xterm, Some("0"), true, false),
            (Always, true, Some("dumb"), Some("0"), false, true),
            (Never, false, xterm, None, true, false),
        ] {
            assert_eq!(
                choice.wanted_with(no_color, term, clicolor, terminal),
                want,
                "{choice:?} {no_color} {term:?} {clicolor:?} {terminal}"
            );
        }
    }
}
