//! `swapguard resume`: continue a run that stopped without finishing.
//!
//! This layer finds the session, refuses a journal it cannot vouch for (see
//! [`vouch`]), refuses a runbook that changed since the run started (unless
//! a reason is given, which is recorded), checks the journaled parameters
//! against the runbook again, takes the array's lock, reopens the journal
//! and hands over to
//! [`engine::resume`](crate::engine::resume), which looks at the array
//! before anything else and goes on from the first step not completed.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use crate::cli::Config;
use crate::clock::SystemClock;
use crate::commands::journal::{journal_key, session_path, state_line};
use crate::engine::{self, Journaled, Resume, resume_question_id};
use crate::error::{Diagnostics, UsageError};
use crate::exit;
use crate::journal::{Journal, Key, session_name, sessions};
use crate::operator::Operator;
use crate::operator::scripted::ScriptedOperator;
use crate::operator::terminal::TerminalOperator;
use crate::runbook::model::{ParamKind, Runbook};
use crate::sanitize::sanitize;
use crate::session::{load_trusted_runbook, real_backend};

/// What the command line asked for.
pub struct Options<'a> {
    pub session: Option<&'a str>,
    pub array: Option<&'a str>,
    pub runbook: Option<&'a Path>,
    pub runbook_changed: Option<&'a str>,
    pub answers: Option<&'a Path>,
}

pub fn resume(config: &Config, opts: &Options<'_>) -> Result<exit::Code> {
    let (path, _) = find(config, opts)?;
    let session = session_name(&path);
    let key = journal_key(&config.state_dir).map_err(|why| {
        UsageError(format!(
            "cannot vouch for session `{}`: {}",
            sanitize(&session, false),
            sanitize(&why, false)
        ))
    })?;
    let journaled = vouch(&path, &session, &key)?;
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
    let runbook = load_trusted_runbook(runbook_path)?;
    revalidate_params(&runbook, &journaled.params, &session)?;
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
            let op = ScriptedOperator::from_file(answers, Box::new(std::io::stdout()))
                .map_err(|e| Diagnostics(format!("{e:#}")))?;
            let ids: Vec<String> = runbook
                .steps
                .iter()
                .flat_map(|s| [s.id.clone(), resume_question_id(&s.id)])
                .chain(std::iter::once(
                    crate::engine::PREFLIGHT_QUESTIONS.to_string(),
                ))
                .collect();
            op.check_step_ids(ids.iter().map(String::as_str))
                .map_err(|e| UsageError(format!("{e:#} (in `{}`)", answers.display())))?;
            Box::new(op)
        }
        None => Box::new(
            TerminalOperator::new()
                .map_err(|e| UsageError(format!("{e:#}")))?
                .with_colors(config.color.forced()),
        ),
    };
    let started = crate::journal::rfc3339(crate::clock::Clock::wall_ms(&clock));
    let _lock = crate::lock::acquire(
        &config.state_dir,
        &crate::state::array_file_name(&array),
        &format!("pid {} resumed {started}", std::process::id()),
    )?;
    let (mut journal, dropped) = Journal::reopen(&path, &key)?;
    let interrupted = crate::signals::interrupt_flag()?;
    crate::signals::reset();
    let mut tracking = crate::operator::tracking::Tracking::new(operator.as_mut());
    let mut notifier = crate::session::notifier(
        &runbook,
        &journaled.params,
        &config.state_dir,
        backend.name(),
        &session,
    )?;
    let mut silent = crate::notify::Silent;
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
        notify: match notifier.as_mut() {
            Some(n) => n,
            None => &mut silent,
        },
    };
    let outcome = engine::resume(
        &mut run,
        &Resume {
            journaled: &journaled,
            dropped_torn_bytes: dropped,
            runbook_changed_reason: reason,
        },
    )?;
    crate::session::settle_notifications(&mut run)?;
    tracking.finish()?;
    eprintln!("journal: {}", path.display());
    say_how_to_resume(config, &outcome, &session);
    Ok(outcome.exit_code())
}

/// After a run that can be continued (interrupted, timed out), say the
/// command that continues it.
pub(crate) fn say_how_to_resume(config: &Config, outcome: &engine::Outcome, session: &str) {
    if matches!(
        outcome,
        engine::Outcome::Interrupted { .. } | engine::Outcome::TimedOut { .. }
    ) {
        eprintln!(
            "to continue where it stopped: {}",
            crate::session::resume_command(config, session)
        );
    }
}

/// The session to resume: the one named, or the one unfinished session
/// (of `--array`, when given).
fn find(config: &Config, opts: &Options<'_>) -> Result<(std::path::PathBuf, Journaled)> {
    let state_dir = config.state_dir.as_path();
    // `--array /dev/md/NAME` picks the sessions of the array it links to.
    let same = |want: &str, have: Option<&str>| {
        have.is_some_and(|have| {
            crate::backend::md::name::canonical_array(&config.sysroot, want, &[have.to_string()])
                .is_ok()
        })
    };
    if let Some(name) = opts.session {
        let path = session_path(state_dir, name)?;
        let j = Journaled::read(&path)?;
        if let (Some(want), Some(have)) = (opts.array, j.array())
            && !same(want, Some(have))
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
        if opts.array.is_some_and(|a| !same(a, j.array())) {
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

/// Read the session's journal again, this time as something root will act
/// on, and refuse it unless it can be vouched for: a regular file reached
/// without a symlink through directories only root can write (see
/// [`trust::open_checked`](crate::trust::open_checked)), owned by
/// the user running resume (root) and readable by no one else (mode 0600),
/// whose hash chain is intact and whose every line carries a MAC made with
/// the state directory's key, and which names itself as this session. The
/// chain, the MACs and the replay are checked in one pass over the one
/// descriptor that passed those checks.
fn vouch(path: &Path, session: &str, key: &Key) -> Result<Journaled> {
    use std::os::unix::fs::MetadataExt;
    let euid = nix::unistd::geteuid().as_raw();
    let file = crate::trust::open_checked(path, "journal", euid, crate::trust::login_uid())?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read journal `{}`", path.display()))?;
    let refuse = |why: String| -> anyhow::Error {
        UsageError(format!(
            "refusing to resume session `{}`: {why}",
            sanitize(session, false)
        ))
        .into()
    };
    if meta.uid() != euid || meta.mode() & 0o077 != 0 {
        return Err(refuse(format!(
            "its journal `{}` is owner {} mode {:04o}, not owner {euid} mode 0600, so someone else could have written it",
            path.display(),
            meta.uid(),
            meta.mode() & 0o7777
        )));
    }
    let (journaled, scanned) = Journaled::read_from(file, path, Some(key))?;
    let v = &scanned.verification;
    if !v.is_intact() {
        let problems: Vec<String> = v.problems.iter().map(|p| sanitize(p, false)).collect();
        return Err(refuse(format!(
            "its journal does not verify ({}); `swapguard journal verify {}` shows where",
            problems.join("; "),
            sanitize(session, false)
        )));
    }
    if !v.is_vouched_for() {
        return Err(refuse(
            "its journal carries no MACs (written by an older swapguard, or by someone without the key), \
             so nothing shows root wrote it; start a new run instead"
                .into(),
        ));
    }
    if journaled.session != session {
        return Err(refuse(format!(
            "its journal says it is session `{}`: a journal copied from another session",
            sanitize(&journaled.session, false)
        )));
    }
    Ok(journaled)
}

/// The longest parameter value taken back from a journal.
const MAX_PARAM_BYTES: usize = 1024;

/// Check the journaled parameters against the runbook's parameter kinds
/// again, as if they were given on the command line now: every name must
/// be one the runbook declares (or `array`/`target`), and every value must
/// fit its kind. A journal is the only memory of them, and a journal is
/// only as good as [`vouch`] could make it.
fn revalidate_params(
    runbook: &Runbook,
    params: &BTreeMap<String, String>,
    session: &str,
) -> Result<()> {
    for (name, value) in params {
        let kind = match runbook.params.iter().find(|p| &p.name == name) {
            Some(p) => p.kind,
            None if name == "array" => ParamKind::Array,
            None if name == "target" => ParamKind::Member,
            None => {
                return Err(UsageError(format!(
                    "refusing to resume session `{}`: its journal gives parameter `{}`, which the runbook does not declare",
                    sanitize(session, false),
                    sanitize(name, false)
                ))
                .into());
            }
        };
        let declared = runbook.params.iter().find(|p| &p.name == name);
        if let Some(why) = param_problem(kind, value, declared.is_some_and(|p| p.allow_dash)) {
            return Err(UsageError(format!(
                "refusing to resume session `{}`: parameter `{}` = `{}` from its journal {why}",
                sanitize(session, false),
                sanitize(name, false),
                sanitize(value, false)
            ))
            .into());
        }
    }
    // And the rules a run checks them by (a text param's pattern).
    crate::runbook::vars::check_params(&runbook.params, params).map_err(|why| {
        UsageError(format!(
            "refusing to resume session `{}`: {why}",
            sanitize(session, false)
        ))
    })?;
    Ok(())
}

/// What is wrong with `value` for a parameter of `kind`, if anything.
fn param_problem(kind: ParamKind, value: &str, allow_dash: bool) -> Option<String> {
    if value.len() > MAX_PARAM_BYTES {
        return Some(format!("is longer than {MAX_PARAM_BYTES} bytes"));
    }
    if value.chars().any(char::is_control) {
        return Some("holds control characters".into());
    }
    if value.starts_with('-') && !allow_dash {
        return Some("begins with `-`, which a command would take for an option".into());
    }
    let ok = match kind {
        // `md0`, `/dev/md/name`.
        ParamKind::Array => value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:".contains(c)),
        // A kernel name, serial, WWN or bay: printable, no shell syntax.
        ParamKind::Member | ParamKind::Drive => value
            .chars()
            .all(|c| c.is_alphanumeric() || " ._-/:+#@,".contains(c)),
        ParamKind::Text => true,
    };
    (!ok).then(|| format!("does not look like {} parameter", kind_name(kind)))
}

use crate::runbook::vars::kind_name;

#[cfg(test)]
mod tests {
    use super::param_problem;
    use crate::runbook::model::ParamKind;

    #[test]
    fn journaled_parameters_are_checked_by_kind() {
        let cases: [(ParamKind, &str, Option<&str>); 9] = [
            (ParamKind::Array, "md0", None),
            (ParamKind::Array, "/dev/md/data", None),
            (
                ParamKind::Array,
                "md0; id",
                Some("does not look like an `array`"),
            ),
            (ParamKind::Member, "nvme1n1", None),
            (ParamKind::Member, "S4EWNX0R123456", None),
            (
                ParamKind::Member,
                "x$(id)",
                Some("does not look like a `member`"),
            ),
            (ParamKind::Drive, "--all", Some("begins with `-`")),
            (ParamKind::Text, "offsite replica 2", None),
            (ParamKind::Text, "a\u{1b}]52;c;", Some("control characters")),
        ];
        for (kind, value, want) in cases {
            let got = param_problem(kind, value, false);
            match (want, &got) {
                (None, None) => {}
                (Some(w), Some(g)) if g.contains(w) => {}
                _ => panic!("{value:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
