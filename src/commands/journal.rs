//! `swapguard journal verify|list`: check a session journal's hash chain,
//! list the sessions under the state directory. Also where a session named
//! on the command line is found, for `resume` and `report`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cli::Config;
use crate::engine::{Ended, Journaled};
use crate::error::UsageError;
use crate::exit;
use crate::journal::{self, session_name, sessions};
use crate::sanitize::sanitize;
use crate::state::{SESSIONS, StateDir};
use nix::fcntl::OFlag;

/// A session named on the command line: a name under
/// `<state_dir>/sessions/` (as `journal list` shows it), never a path
/// elsewhere. A path that is in fact that directory's journal is taken by its
/// name; any other path is refused (`--file` reads one on purpose).
pub(crate) fn session_path(state_dir: &Path, name: &str) -> Result<PathBuf> {
    let dir = state_dir.join(SESSIONS);
    let shown = sanitize(name, false);
    let mut name = name;
    if name.contains('/') || name.ends_with(".jsonl") {
        let as_path = Path::new(name);
        let inside = match (
            as_path.parent().map(std::fs::canonicalize),
            std::fs::canonicalize(&dir),
        ) {
            (Some(Ok(parent)), Ok(sessions)) => parent == sessions,
            (None, _) => true,
            _ => false,
        };
        let stem = as_path.file_name().and_then(|n| n.to_str());
        match stem.and_then(|n| n.strip_suffix(".jsonl")) {
            Some(stem) if inside => name = stem,
            _ => {
                return Err(UsageError(format!(
                    "`{shown}` is not a session under `{}`; give a session name as `swapguard journal list` shows it, or pass `--file` to `report` or `journal verify` to read a journal kept elsewhere",
                    dir.display()
                ))
                .into());
            }
        }
    }
    crate::state::component("session name", name).map_err(UsageError)?;
    let state = StateDir::existing(state_dir)?;
    if let Some(state) = &state
        && let Some((_, path)) =
            state.open_existing(Some(SESSIONS), &format!("{name}.jsonl"), OFlag::O_RDONLY)?
    {
        return Ok(path);
    }
    let known: Vec<String> = sessions(state_dir)?
        .iter()
        .map(|p| session_name(p))
        .collect();
    Err(UsageError(if known.is_empty() {
        format!(
            "no session `{shown}` and no sessions at all under `{}`",
            dir.display()
        )
    } else {
        format!(
            "no session `{shown}` under `{}`; sessions: {}",
            dir.display(),
            known.join(", ")
        )
    })
    .into())
}

/// The state directory's journal key, or why there is none to check with.
pub(crate) fn journal_key(state_dir: &Path) -> std::result::Result<journal::Key, String> {
    match journal::Key::load(state_dir) {
        Ok(Some(key)) => Ok(key),
        Ok(None) => Err(format!(
            "there is no key `{}`",
            state_dir.join(journal::KEY_FILE).display()
        )),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// The journal `report` or `journal verify` reads: a session, or with
/// `--file` a journal file anywhere, named on purpose.
pub(crate) fn journal_to_read(config: &Config, session: &str, file: bool) -> Result<PathBuf> {
    if !file {
        return session_path(&config.state_dir, session);
    }
    let path = PathBuf::from(session);
    let meta = std::fs::metadata(&path)
        .with_context(|| format!("cannot read journal file `{}`", sanitize(session, false)))?;
    if !meta.is_file() {
        return Err(UsageError(format!(
            "`{}` is not a regular file",
            sanitize(session, false)
        ))
        .into());
    }
    Ok(path)
}

/// `journal verify`: exit 0 only when the chain is intact and every line's
/// MAC was checked with the state directory's key.
pub fn verify(config: &Config, session: &str, file: bool) -> Result<exit::Code> {
    let path = journal_to_read(config, session, file)?;
    let key = journal_key(&config.state_dir);
    let mut v = journal::verify(&path, key.as_ref().ok())?;
    if let (journal::Keyed::NotChecked(_), Err(why)) = (&v.keyed, &key) {
        v.keyed = journal::Keyed::NotChecked(sanitize(why, false));
    }
    let torn = if v.torn_bytes > 0 {
        format!(
            "; a torn last line of {} bytes (a crash mid-write) is not counted",
            v.torn_bytes
        )
    } else {
        String::new()
    };
    let shown = sanitize(&path.display().to_string(), false);
    if v.is_intact() {
        crate::outln!(
            "journal `{shown}`: {} entries, {}{torn}\nhead: {}",
            v.entries,
            v.summary(),
            v.head
        )?;
        if v.is_vouched_for() {
            return Ok(exit::Code::Success);
        }
        crate::outln!(
            "the lines fit together, but nothing shows who wrote them: `resume` refuses this journal"
        )?;
        return Ok(exit::Code::Failure);
    }
    crate::outln!(
        "journal `{shown}`: hash chain BROKEN ({} entries read{torn})",
        v.entries
    )?;
    for p in &v.problems {
        crate::outln!("  - {}", sanitize(p, false))?;
    }
    crate::outln!(
        "the journal was changed after it was written; keep this copy and compare it with the report attached to the ticket"
    )?;
    Ok(exit::Code::Failure)
}

/// Every line goes through a sanitising sink: file names, and every field
/// read back from a journal (array, times, step ids, outcomes), are the
/// journal's, not the tool's.
pub fn list(config: &Config) -> Result<exit::Code> {
    let mut out = crate::sanitize::stdout();
    let paths = sessions(&config.state_dir)?;
    if paths.is_empty() {
        writeln!(
            out,
            "no sessions under `{}`",
            config.state_dir.join("sessions").display()
        )?;
        return Ok(exit::Code::Success);
    }
    for path in paths {
        // One line per session, whatever its name or fields hold.
        let name = sanitize(&session_name(&path), false);
        match Journaled::read(&path) {
            Ok(j) => writeln!(
                out,
                "{name}  array {}  started {}  {}",
                sanitize(j.array().unwrap_or("?"), false),
                sanitize(&j.started_at, false),
                sanitize(&state_line(&j), false)
            )?,
            Err(e) => writeln!(
                out,
                "{name}  unreadable: {}",
                sanitize(&format!("{e:#}"), false)
            )?,
        }
    }
    Ok(exit::Code::Success)
}

/// How a session stands, in a few words.
pub(crate) fn state_line(j: &Journaled) -> String {
    match &j.ended {
        Some(Ended::Finished { outcome, .. }) if outcome == "abandoned" => {
            "abandoned for a new session (`run --new-session`)".into()
        }
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
