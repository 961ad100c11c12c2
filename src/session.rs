//! One guarded session, as `run`, `resume` and the dry-run set it up: load
//! the runbook (warnings shown, errors refuse), build the real backend, take
//! the array's lock, open the journal and hand over to the engine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::Result;

use crate::backend::Backend;
use crate::cli::Config;
use crate::clock::Clock;
use crate::engine::{self, Ended, Journaled, Outcome};
use crate::error::{Diagnostics, UsageError};
use crate::journal::{Event, Journal};
use crate::operator::Operator;
use crate::runbook::load;
use crate::runbook::model::Runbook;
use crate::sanitize::sanitize;
use crate::trust;

/// Load a runbook for running: warnings go to stderr, errors refuse.
pub(crate) fn load_runbook(path: &Path) -> Result<Runbook> {
    runbook_from(path, load::load(path)?)
}

/// [`load_runbook`] for a run as root: the file is read once, from the
/// descriptor that passed [`trust::read_runbook`]'s checks.
pub(crate) fn load_trusted_runbook(path: &Path) -> Result<Runbook> {
    let loaded = match load::decode(path, trust::read_runbook(path)?) {
        Ok(source) => load::load_str(path, &source),
        Err(diagnostic) => load::Loaded {
            runbook: None,
            diagnostics: vec![*diagnostic],
        },
    };
    runbook_from(path, loaded)
}

fn runbook_from(path: &Path, loaded: load::Loaded) -> Result<Runbook> {
    let (errors, warnings): (Vec<_>, Vec<_>) =
        loaded.diagnostics.iter().partition(|d| d.is_error());
    for w in &warnings {
        eprintln!("{w}\n");
    }
    match loaded.runbook {
        Some(runbook) if errors.is_empty() => Ok(runbook),
        _ => {
            let text: Vec<String> = errors.iter().map(|d| d.to_string()).collect();
            Err(Diagnostics(format!(
                "{}\n\nerror: `{}` has {} error(s); nothing was run",
                text.join("\n\n"),
                path.display(),
                errors.len(),
            ))
            .into())
        }
    }
}

/// The backend a real run of `runbook` talks to, reading under `--sysroot`.
pub(crate) fn real_backend(
    config: &Config,
    runbook: &Runbook,
    clock: crate::clock::SystemClock,
) -> Result<Box<dyn Backend>> {
    use crate::backend::registry;
    let name = runbook.backend.name();
    let open = registry::opener(name).ok_or_else(|| UsageError(registry::not_built(name)))?;
    open(registry::Host {
        sysroot: config.sysroot.clone(),
        processes: crate::backend::process::ProcessRunner::from_state_dir(&config.state_dir)?,
        watch_kernel_log: true,
        clock: Some(clock),
    })
}

/// Everything one guarded walk needs besides the runbook.
pub(crate) struct Setup<'a> {
    pub backend: &'a mut dyn Backend,
    pub operator: &'a mut dyn Operator,
    pub clock: &'a dyn Clock,
    pub interrupted: &'a AtomicBool,
    pub state_dir: &'a Path,
    pub earlier: Earlier<'a>,
}

/// What a new session does about an unfinished session of the same array:
/// one whose journal has no final outcome (the process crashed, was killed,
/// or stopped at a Ctrl-C or a timeout) and whose lock is free.
pub(crate) enum Earlier<'a> {
    /// Dry-runs: their simulated array is new each time, and simulated
    /// sessions cannot be resumed anyway.
    Ignore,
    /// Refuse to start a second session; say which session it is and the
    /// exact command that resumes it ([`resume_command`] for `config`).
    Refuse { config: &'a Config },
    /// `run --new-session`: journal each as abandoned (it cannot be resumed
    /// after that) and start a new session.
    Abandon,
}

/// Take the array's lock, open a journal and walk the runbook.
pub(crate) fn guarded(
    runbook: &Runbook,
    params: &BTreeMap<String, String>,
    setup: Setup<'_>,
) -> Result<(Outcome, std::path::PathBuf)> {
    let array = params
        .get("array")
        .cloned()
        .ok_or_else(|| UsageError("no array given: pass `--array NAME` (e.g. `md0`)".into()))?;
    crate::runbook::vars::check_params(&runbook.params, params).map_err(UsageError)?;
    // The array names the lock file and the journal: one plain name, never
    // a path (real runs have made it the kernel's name already).
    let file_name = crate::state::array_file_name(&array);
    crate::state::component("array name", &file_name).map_err(UsageError)?;
    let started = crate::journal::rfc3339(setup.clock.wall_ms());
    let _lock = crate::lock::acquire(
        setup.state_dir,
        &file_name,
        &format!("pid {} started {started}", std::process::id()),
    )?;
    let earlier = match setup.earlier {
        Earlier::Ignore => Vec::new(),
        _ => unfinished(setup.state_dir, &array)?,
    };
    if let (Earlier::Refuse { config }, false) = (&setup.earlier, earlier.is_empty()) {
        return Err(UsageError(refusal(&array, &earlier, config)).into());
    }
    let (mut journal, session) = Journal::create_session(setup.state_dir, &file_name, &started)?;
    for (path, _) in &earlier {
        abandon(path, &session, setup.state_dir, setup.clock)?;
        eprintln!(
            "session `{}` abandoned (journaled); this is session `{session}`",
            sanitize(&crate::journal::session_name(path), false)
        );
    }
    let path = journal.path().to_path_buf();
    let mut notifier = notifier(
        runbook,
        params,
        setup.state_dir,
        setup.backend.name(),
        &session,
    )?;
    let mut silent = crate::notify::Silent;
    let mut run = engine::Run {
        runbook,
        params: params.clone(),
        backend: setup.backend,
        operator: setup.operator,
        clock: setup.clock,
        journal: &mut journal,
        interrupted: setup.interrupted,
        session,
        state_dir: setup.state_dir,
        notify: match notifier.as_mut() {
            Some(n) => n,
            None => &mut silent,
        },
    };
    let outcome = engine::execute(&mut run)?;
    settle_notifications(&mut run)?;
    run.operator.finish()?;
    Ok((outcome, path))
}

/// The webhook notifier a session uses, if the runbook or the host's
/// config names one (a simulated session only with `dry_runs = true`).
pub(crate) fn notifier(
    runbook: &Runbook,
    params: &BTreeMap<String, String>,
    state_dir: &Path,
    backend: &str,
    session: &str,
) -> Result<Option<crate::notify::worker::Notifier>> {
    use crate::notify::{host, payload::Context, worker::Notifier};
    let simulated = backend == "sim";
    let Some(settings) = host::for_session(runbook.notify.as_ref(), state_dir, simulated)? else {
        return Ok(None);
    };
    let param = |k: &str| params.get(k).cloned().unwrap_or_default();
    let ctx = Context {
        host: host::hostname(),
        array: param("array"),
        target: param("target"),
        session: session.to_string(),
        runbook: runbook.name.clone(),
        dry_run: simulated,
    };
    Ok(Some(Notifier::start(settings, ctx)))
}

/// The run is over: give queued notifications a bounded time to go out,
/// and journal and show those that did not.
pub(crate) fn settle_notifications(run: &mut engine::Run<'_>) -> Result<()> {
    let failures = run.notify.settle(crate::notify::worker::SETTLE);
    engine::notify_failures(failures, run.journal, run.clock.wall_ms(), run.operator)
}

/// The unfinished real sessions of `array` under `state_dir`, oldest first.
/// A journal that cannot be read is left out (as `resume` leaves it out).
fn unfinished(state_dir: &Path, array: &str) -> Result<Vec<(PathBuf, Journaled)>> {
    let mut open = Vec::new();
    for path in crate::journal::sessions(state_dir)? {
        let Ok(j) = Journaled::read(&path) else {
            continue;
        };
        if j.not_resumable().is_none() && j.backend != "sim" && j.array() == Some(array) {
            open.push((path, j));
        }
    }
    Ok(open)
}

/// `array` has unfinished sessions: which, how each stands, and the two
/// ways on.
fn refusal(array: &str, earlier: &[(PathBuf, Journaled)], config: &Config) -> String {
    let one = earlier.len() == 1;
    let mut text = if one {
        format!(
            "array `{}` has an unfinished session; not starting a second one",
            sanitize(array, false)
        )
    } else {
        format!(
            "array `{}` has {} unfinished sessions; not starting another",
            sanitize(array, false),
            earlier.len()
        )
    };
    for (path, j) in earlier {
        let session = crate::journal::session_name(path);
        let name = sanitize(&session, false);
        text.push_str(&format!(
            "\n  session `{name}` (runbook `{}`, started {}): {}\n  = help: to go on with it: {}",
            sanitize(&j.runbook.display().to_string(), false),
            sanitize(&j.started_at, false),
            sanitize(&how_it_stands(j), false),
            sanitize(&resume_command(config, &session), false),
        ));
    }
    text.push_str(&format!(
        "\n  = help: to give {} up and start over: run again with `--new-session` (journaled as abandoned, {} can no longer be resumed)",
        if one { "it" } else { "them" },
        if one { "it" } else { "they" },
    ));
    text
}

/// How an unfinished session stopped, in a few words.
fn how_it_stands(j: &Journaled) -> String {
    match (&j.ended, &j.unfinished) {
        (Some(Ended::Finished { outcome, .. }), _) => {
            format!("it ended `{outcome}` before its last step")
        }
        (Some(Ended::Stopped { kind, step, .. }), _) => {
            format!("{kind} at step `{step}`, and the process ended before recording it finished")
        }
        (None, Some(u)) => format!("it stopped during step `{}`", u.step),
        (None, None) => format!(
            "it stopped after {} completed step{}",
            j.completed.len(),
            if j.completed.len() == 1 { "" } else { "s" }
        ),
    }
}

/// Journal that the session at `path` was given up for session `by`.
fn abandon(path: &Path, by: &str, state_dir: &Path, clock: &dyn Clock) -> Result<()> {
    let key = crate::journal::Key::load_or_create(state_dir)?;
    let (mut journal, _) = Journal::reopen(path, &key)?;
    journal.record(
        clock.wall_ms(),
        &Event::Abandoned {
            by: by.to_string(),
            pid: std::process::id(),
            user: crate::journal::who(),
        },
    )?;
    journal.record(
        clock.wall_ms(),
        &Event::RunFinished {
            outcome: "abandoned".into(),
            exit_code: -1,
        },
    )
}

/// The exact command that continues `session`, with the `--state-dir` and
/// `--sysroot` this process was given when they are not the defaults.
pub(crate) fn resume_command(config: &Config, session: &str) -> String {
    let mut argv = vec!["swapguard".to_string(), "resume".into(), session.into()];
    if config.state_dir != Path::new(crate::cli::DEFAULT_STATE_DIR) {
        argv.push("--state-dir".into());
        argv.push(config.state_dir.display().to_string());
    }
    if config.sysroot != Path::new("/") {
        argv.push("--sysroot".into());
        argv.push(config.sysroot.display().to_string());
    }
    crate::operator::render::shell_line(&argv)
}

#[cfg(test)]
mod tests {
    use crate::operator::render::shell_line;

    #[test]
    fn resume_command_paths_are_one_shell_word() {
        for (path, want) in [
            ("/var/lib/swapguard", "/var/lib/swapguard"),
            ("/tmp/a b", "'/tmp/a b'"),
            ("/tmp/it's", "'/tmp/it'\\''s'"),
            ("/tmp/$(x)", "'/tmp/$(x)'"),
        ] {
            let line = shell_line(&["--state-dir".to_string(), path.to_string()]);
            assert_eq!(line, format!("--state-dir {want}"), "{path}");
        }
    }
}
