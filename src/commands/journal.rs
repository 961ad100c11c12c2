//! `swapguard journal verify|list`: check a session journal's hash chain,
//! list the sessions under the state directory. Also where a session named
//! on the command line is found, for `resume` and `report`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cli::Config;
use crate::commands::UsageError;
use crate::engine::{Ended, Journaled};
use crate::exit;
use crate::journal;
use crate::sanitize::sanitize;

/// Every session journal under `<state_dir>/sessions/`, sorted by name
/// (names begin with the array and the start time).
pub(crate) fn sessions(state_dir: &Path) -> Result<Vec<PathBuf>> {
    let dir = state_dir.join("sessions");
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list sessions in `{}`", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    out.sort();
    Ok(out)
}

/// The session's name: the journal's file name without `.jsonl`.
pub(crate) fn session_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A session named on the command line: a journal path, or a name under
/// `<state_dir>/sessions/`.
pub(crate) fn session_path(state_dir: &Path, name: &str) -> Result<PathBuf> {
    let as_path = Path::new(name);
    if name.ends_with(".jsonl") && as_path.is_file() {
        return Ok(as_path.to_path_buf());
    }
    let path = state_dir.join("sessions").join(format!("{name}.jsonl"));
    if path.is_file() {
        return Ok(path);
    }
    let known: Vec<String> = sessions(state_dir)?
        .iter()
        .map(|p| session_name(p))
        .collect();
    Err(UsageError(if known.is_empty() {
        format!(
            "no session `{}` and no sessions at all under `{}`",
            sanitize(name, false),
            state_dir.join("sessions").display()
        )
    } else {
        format!(
            "no session `{}` under `{}`; sessions: {}",
            sanitize(name, false),
            state_dir.join("sessions").display(),
            known.join(", ")
        )
    })
    .into())
}

pub fn verify(config: &Config, session: &str) -> Result<i32> {
    let path = session_path(&config.state_dir, session)?;
    let v = journal::verify(&path)?;
    let torn = if v.torn_bytes > 0 {
        format!(
            "; a torn last line of {} bytes (a crash mid-write) is not counted",
            v.torn_bytes
        )
    } else {
        String::new()
    };
    if v.is_intact() {
        crate::outln!(
            "journal `{}`: {} entries, hash chain intact{torn}\nhead: {}",
            path.display(),
            v.entries,
            v.head
        )?;
        return Ok(exit::SUCCESS);
    }
    crate::outln!(
        "journal `{}`: hash chain BROKEN ({} entries read{torn})",
        path.display(),
        v.entries
    )?;
    for p in &v.problems {
        crate::outln!("  - {p}")?;
    }
    crate::outln!(
        "the journal was changed after it was written; keep this copy and compare it with the report attached to the ticket"
    )?;
    Ok(exit::FAILURE)
}

pub fn list(config: &Config) -> Result<i32> {
    let paths = sessions(&config.state_dir)?;
    if paths.is_empty() {
        crate::outln!(
            "no sessions under `{}`",
            config.state_dir.join("sessions").display()
        )?;
        return Ok(exit::SUCCESS);
    }
    for path in paths {
        let name = session_name(&path);
        match Journaled::read(&path) {
            Ok(j) => crate::outln!(
                "{name}  array {}  started {}  {}",
                sanitize(j.array().unwrap_or("?"), false),
                j.started_at,
                state_line(&j)
            )?,
            Err(e) => crate::outln!("{name}  unreadable: {}", sanitize(&format!("{e:#}"), false))?,
        }
    }
    Ok(exit::SUCCESS)
}

/// How a session stands, in a few words.
pub(crate) fn state_line(j: &Journaled) -> String {
    match &j.ended {
        Some(Ended::Finished { outcome, exit_code }) if j.not_resumable().is_none() => {
            format!("{outcome} (exit {exit_code}); resumable")
        }
        Some(Ended::Finished { outcome, exit_code }) => format!("{outcome} (exit {exit_code})"),
        Some(Ended::Stopped { kind, step, .. }) => {
            format!("{kind} at step `{step}`, not recorded as finished; resumable")
        }
        None => match &j.unfinished {
            Some(u) => format!("stopped during step `{}`; resumable", u.step),
            None => format!(
                "stopped after {} completed steps; resumable",
                j.completed.len()
            ),
        },
    }
}
