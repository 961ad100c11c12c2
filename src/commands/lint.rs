//! `swapguard lint`: every problem in every file, then a summary.

use std::path::PathBuf;

use anyhow::Result;

use crate::exit;
use crate::runbook::lint;

pub fn lint(files: &[PathBuf]) -> Result<i32> {
    let report = lint::lint_paths(files);
    crate::out!("{}", lint::render(&report))?;
    Ok(if lint::has_errors(&report) {
        exit::USAGE
    } else {
        exit::SUCCESS
    })
}
