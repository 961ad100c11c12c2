//! `swapguard dry-run`: the real engine against a simulated array.
//!
//! The runbook, guard, journal and lock are exactly those of a real run; only
//! the backend (the simulator) and the operator (the simulated technician
//! plus the scenario's scripted answers) differ.

use std::io::Write;
use std::path::Path;

use anyhow::Result;

use crate::cli::Config;
use crate::error::{Diagnostics, UsageError};
use crate::exit;
use crate::scenario;
use crate::session::load_runbook;
use crate::simulate::{judge, simulate};

pub fn dry_run(
    config: &Config,
    runbook_path: Option<&Path>,
    scenario_path: &Path,
    exit_with_outcome: bool,
) -> Result<exit::Code> {
    let scenario = scenario::load(scenario_path).map_err(|e| Diagnostics(format!("{e:#}")))?;
    // The runbook's own problems first (a file that is not a runbook says
    // so), then whether the scenario was written for it.
    let runbook = load_runbook(runbook_path.unwrap_or(&scenario.runbook))?;
    if let Some(given) = runbook_path {
        same_runbook(given, &scenario.runbook, scenario_path)?;
    }
    let problems = scenario.check_against(&runbook);
    if problems.iter().any(|d| d.is_error()) {
        let text: Vec<String> = problems.iter().map(|d| d.to_string()).collect();
        return Err(Diagnostics(text.join("\n\n")).into());
    }
    let state = match config.state_dir.as_path() {
        p if p == Path::new("/var/lib/swapguard") => None,
        _ => Some(config.state_dir.clone()),
    };
    // Scenario strings (serials, models, names, expected reasons) are
    // shown like hardware strings: sanitised.
    let mut out = crate::sanitize::stdout();
    let (outcome, _) = simulate(&runbook, &scenario, state.as_deref(), &mut out)?;
    if exit_with_outcome {
        writeln!(out, "outcome: {}", outcome.kind())?;
        return Ok(outcome.exit_code());
    }
    Ok(judge(&outcome, &scenario.expect, &mut out))
}

/// A scenario is written for one runbook (`[scenario] runbook`); walking
/// another against it would judge that one by the wrong expectation. The
/// two paths must name the same file (same device and inode, so `./a.toml`
/// and a symlink to it are the same).
fn same_runbook(given: &Path, named: &Path, scenario_path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let identity = |p: &Path| std::fs::metadata(p).map(|m| (m.dev(), m.ino()));
    let given_id = identity(given)
        .map_err(|e| UsageError(format!("cannot read runbook `{}`: {e}", given.display())))?;
    if identity(named).is_ok_and(|id| id == given_id) {
        return Ok(());
    }
    Err(UsageError(format!(
        "scenario `{}` is for runbook `{}` (its `[scenario] runbook`), not `{}`\n  \
         = help: leave out the runbook to walk the scenario's own, or pass a scenario written for `{}`",
        scenario_path.display(),
        named.display(),
        given.display(),
        given.display(),
    ))
    .into())
}
