//! `swapguard plan RUNBOOK`: the runbook as a printable Markdown checklist
//! (`crate::ci::plan`).

use std::io::Write;
use std::path::Path;

use anyhow::Result;

use crate::ci::plan;
use crate::exit;
use crate::session::load_runbook;

pub fn plan(runbook_path: &Path) -> Result<exit::Code> {
    let runbook = load_runbook(runbook_path)?;
    // The checklist is the runbook's text: sanitised like any file's.
    write!(
        crate::sanitize::stdout(),
        "{}",
        plan::render(&runbook, runbook_path)
    )?;
    Ok(exit::Code::Success)
}
