//! The two errors the program branches on at the top: a mistake that is the
//! user's to fix, and rendered diagnostics. Both end with exit code 2
//! (`crate::run` prints them); everything else is `anyhow` with context.

use std::fmt;

/// An error that is the user's to fix (exit code 2): a bad runbook, a
/// missing argument, no terminal.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error whose text is already rendered diagnostics (`error: ...
/// --> path:line:col`); printed as it is, exit code 2.
#[derive(Debug)]
pub struct Diagnostics(pub String);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Diagnostics {}
