//! `swapguard plan RUNBOOK`: the runbook as a printable Markdown checklist
//! (`crate::ci::plan`).

use std::path::Path;

use anyhow::Result;

use crate::ci::plan;
use crate::commands::load_runbook;
use crate::exit;

pub fn plan(runbook_path: &Path) -> Result<i32> {
    let runbook = load_runbook(runbook_path)?;
    crate::out!("{}", plan::render(&runbook, runbook_path))?;
    Ok(exit::SUCCESS)
}
