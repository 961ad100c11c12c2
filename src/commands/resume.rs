//! `swapguard resume`: continue a run that stopped without finishing.
//!
//! This layer finds the session, refuses a runbook that changed since the
//! run started (unless a reason is given, which is recorded), takes the
//! array's lock, reopens the journal and hands over to
//! [`engine::resume`](crate::engine::resume), which looks at the array
//! before anything else and goes on from the first step not completed.

use std::path::Path;

use anyhow::Result;

use crate::cli::Config;
use crate::clock::SystemClock;
use crate::commands::journal::{session_name, session_path, sessions, state_line};
use crate::commands::{UsageError, load_runbook, real_backend, trust};
use crate::engine::{self, Journaled, Resume, resume_question_id};
use crate::exit;
use crate::journal::Journal;
use crate::operator::Operator;
use crate::operator::scripted::ScriptedOperator;
use crate::operator::terminal::TerminalOperator;
use crate::sanitize::sanitize;

/// What the command line asked for.
pub struct Options<'a> {
    pub session: Option<&'a str>,
    pub array: Option<&'a str>,
    pub runbook: Option<&'a Path>,
    pub runbook_changed: Option<&'a str>,
    pub answers: Option<&'a Path>,
}

pub fn resume(config: &Config, opts: &Options<'_>) -> Result<i32> {
    let (path, journaled) = find(&config.state_dir, opts)?;
    let session = session_name(&path);
    if let Some(why) = journaled.not_resumable() {
        return Err(UsageError(why).into());
    }
    if journaled.backend == "sim" {
        return Err(UsageError(format!(
            "session `{session}` was a dry-run: its simulated hardware ended with that process, so it cannot be resumed from another one"
        ))
        .into());
    }
    let runbook_path = opts.runbook.unwrap_or(&journaled.runbook);
    trust::check_runbook(runbook_path)?;
    let runbook = load_runbook(runbook_path)?;
    let changed = runbook.hash != journaled.runbook_hash;
    let reason = match (changed, opts.runbook_changed) {
        (false, _) => None,
        (true, Some(r)) if !r.trim().is_empty() => Some(r.trim().to_string()),
        (true, _) => {
            return Err(UsageError(format!(
                "runbook `{}` changed since session `{session}` started (SHA-256 {} then, {} now); \
                 check what changed, then resume with `--runbook-changed REASON` to go on with the \
                 file as it is now (the reason is recorded in the journal)",
                runbook_path.display(),
                short(&journaled.runbook_hash),
                short(&runbook.hash)
            ))
            .into());
        }
    };
    let clock = SystemClock::new();
    let mut backend = real_backend(config, &runbook, clock)?;
    let array = journaled
        .array()
        .ok_or_else(|| UsageError(format!("session `{session}` names no array")))?
        .to_string();
    let mut operator: Box<dyn Operator> = match opts.answers {
        Some(answers) => {
            let op = ScriptedOperator::from_file(answers, Box::new(std::io::stdout()))?;
            let ids: Vec<String> = runbook
                .steps
                .iter()
                .flat_map(|s| [s.id.clone(), resume_question_id(&s.id)])
                .chain(std::iter::once(
                    crate::engine::PREFLIGHT_QUESTIONS.to_string(),
                ))
                .collect();
            op.check_step_ids(ids.iter().map(String::as_str))?;
            Box::new(op)
        }
        None => Box::new(TerminalOperator::new().map_err(|e| UsageError(format!("{e:#}")))?),
    };
    let started = crate::journal::rfc3339(crate::clock::Clock::wall_ms(&clock));
    let _lock = crate::lock::acquire(
        &config.state_dir,
        &array,
        &format!("pid {} resumed {started}", std::process::id()),
    )?;
    let (mut journal, dropped) = Journal::reopen(&path)?;
    let interrupted = crate::signals::interrupt_flag()?;
    crate::signals::reset();
    let mut tracking = crate::signals::Tracking::new(operator.as_mut());
    let mut run = engine::Run {
        runbook: &runbook,
        params: journaled.params.clone(),
        backend: backend.as_mut(),
        operator: &mut tracking,
        clock: &clock,
        journal: &mut journal,
        interrupted: &interrupted,
        session: session.clone(),
        state_dir: &config.state_dir,
    };
    let outcome = engine::resume(
        &mut run,
        &Resume {
            journaled: &journaled,
            dropped_torn_bytes: dropped,
            runbook_changed_reason: reason,
        },
    )?;
    tracking.finish()?;
    eprintln!("journal: {}", path.display());
    Ok(exit::for_outcome(&outcome))
}

/// The session to resume: the one named, or the one unfinished session
/// (of `--array`, when given).
fn find(state_dir: &Path, opts: &Options<'_>) -> Result<(std::path::PathBuf, Journaled)> {
    if let Some(name) = opts.session {
        let path = session_path(state_dir, name)?;
        let j = Journaled::read(&path)?;
        if let (Some(want), Some(have)) = (opts.array, j.array())
            && want != have
        {
            return Err(UsageError(format!(
                "session `{}` is for array `{}`, not `{want}`",
                sanitize(name, false),
                sanitize(have, false)
            ))
            .into());
        }
        return Ok((path, j));
    }
    let mut open = Vec::new();
    for path in sessions(state_dir)? {
        let Ok(j) = Journaled::read(&path) else {
            continue;
        };
        if j.not_resumable().is_some() || j.backend == "sim" {
            continue;
        }
        if opts.array.is_some_and(|a| j.array() != Some(a)) {
            continue;
        }
        open.push((path, j));
    }
    let scope = opts
        .array
        .map(|a| format!(" for array `{}`", sanitize(a, false)))
        .unwrap_or_default();
    match open.len() {
        0 => Err(UsageError(format!(
            "no unfinished session{scope} under `{}`; `swapguard journal list` shows them all",
            state_dir.join("sessions").display()
        ))
        .into()),
        1 => Ok(open.remove(0)),
        _ => {
            let names: Vec<String> = open
                .iter()
                .map(|(p, j)| format!("  {}  ({})", session_name(p), state_line(j)))
                .collect();
            Err(UsageError(format!(
                "{} unfinished sessions{scope}; name one: `swapguard resume SESSION`\n{}",
                open.len(),
                names.join("\n")
            ))
            .into())
        }
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
