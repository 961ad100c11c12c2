//! `swapguard run`: a real swap on a real array.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use crate::cli::Config;
use crate::clock::SystemClock;
use crate::error::{Diagnostics, UsageError};
use crate::exit;
use crate::operator::Operator;
use crate::operator::scripted::ScriptedOperator;
use crate::operator::terminal::TerminalOperator;
use crate::session::{Earlier, Setup, guarded, load_trusted_runbook, real_backend};

pub fn run(
    config: &Config,
    runbook_path: &Path,
    params: &BTreeMap<String, String>,
    answers: Option<&Path>,
    new_session: bool,
) -> Result<exit::Code> {
    let runbook = load_trusted_runbook(runbook_path)?;
    let clock = SystemClock::new();
    let mut backend = real_backend(config, &runbook, clock)?;
    let mut params = params.clone();
    if !params.contains_key("array") {
        let arrays = backend.arrays().unwrap_or_default();
        return Err(UsageError(if arrays.is_empty() {
            "no array given: pass `--array NAME`".to_string()
        } else {
            format!(
                "no array given: pass `--array NAME` (arrays here: {})",
                arrays.join(", ")
            )
        })
        .into());
    }
    // One array, one name: `/dev/md16`, `/dev/md/NAME` and `md16` all
    // become `md16` before the lock, the journal and the runbook see it.
    let given = params.get("array").cloned().unwrap_or_default();
    let known = backend.arrays().unwrap_or_default();
    let array = backend
        .canonical_array(&given, &known)
        .map_err(UsageError)?;
    params.insert("array".into(), array);
    params.entry("target".into()).or_default();
    if params.get("target").is_some_and(String::is_empty) {
        return Err(UsageError("no target given: pass `--target DEVICE|SERIAL|BAY`".into()).into());
    }
    let mut operator: Box<dyn Operator> = match answers {
        Some(path) => {
            // The file's problems are rendered diagnostics (exit code 2);
            // keys naming no step are found here, before step 1, not after
            // the physical steps ran.
            let op = ScriptedOperator::from_file(path, Box::new(std::io::stdout()))
                .map_err(|e| Diagnostics(format!("{e:#}")))?;
            op.check_step_ids(
                runbook
                    .steps
                    .iter()
                    .map(|s| s.id.as_str())
                    .chain(std::iter::once(crate::engine::PREFLIGHT_QUESTIONS)),
            )
            .map_err(|e| UsageError(format!("{e:#} (in `{}`)", path.display())))?;
            Box::new(op)
        }
        None => Box::new(
            TerminalOperator::new()
                .map_err(|e| UsageError(format!("{e:#}")))?
                .with_colors(config.color.forced()),
        ),
    };
    let interrupted = crate::signals::interrupt_flag()?;
    crate::signals::reset();
    let (outcome, journal) = guarded(
        &runbook,
        &params,
        Setup {
            backend: backend.as_mut(),
            operator: &mut crate::operator::tracking::Tracking::new(operator.as_mut()),
            clock: &clock,
            interrupted: &interrupted,
            state_dir: &config.state_dir,
            earlier: if new_session {
                Earlier::Abandon
            } else {
                Earlier::Refuse { config }
            },
        },
    )?;
    eprintln!("journal: {}", journal.display());
    crate::commands::resume::say_how_to_resume(
        config,
        &outcome,
        &crate::journal::session_name(&journal),
    );
    Ok(outcome.exit_code())
}
