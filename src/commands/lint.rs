//! `swapguard lint`: every problem in every file, then a summary.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;

use crate::exit;
use crate::runbook::lint;

pub fn lint(files: &[PathBuf]) -> Result<exit::Code> {
    let report = lint::lint_paths(files);
    write!(crate::sanitize::stdout(), "{}", lint::render(&report))?;
    Ok(if lint::has_errors(&report) {
        exit::Code::Usage
    } else {
        exit::Code::Success
    })
}
