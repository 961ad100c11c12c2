//! One guarded session, as `run`, `resume` and the dry-run set it up: load
//! the runbook (warnings shown, errors refuse), build the real backend, take
//! the array's lock, open the journal and hand over to the engine.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use anyhow::Result;

use crate::backend::Backend;
use crate::cli::Config;
use crate::clock::Clock;
use crate::engine::{self, Outcome};
use crate::error::{Diagnostics, UsageError};
use crate::journal::Journal;
use crate::operator::Operator;
use crate::runbook::load;
use crate::runbook::model::Runbook;
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
    match runbook.backend {
        crate::runbook::model::BackendKind::Md => Ok(Box::new(
            crate::backend::md::MdBackend::real(
                config.sysroot.clone(),
                crate::backend::process::ProcessRunner::from_state_dir(&config.state_dir)?,
            )
            .watching(config.sysroot.join("dev/kmsg"))
            .with_clock(Box::new(clock)),
        )),
        other => Err(UsageError(format!(
            "the `{other:?}` backend is not available yet; only `md` runbooks can run",
        ))
        .into()),
    }
}

/// Everything one guarded walk needs besides the runbook.
pub(crate) struct Setup<'a> {
    pub backend: &'a mut dyn Backend,
    pub operator: &'a mut dyn Operator,
    pub clock: &'a dyn Clock,
    pub interrupted: &'a AtomicBool,
    pub state_dir: &'a Path,
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
    crate::state::component("array name", &array).map_err(UsageError)?;
    let started = crate::journal::rfc3339(setup.clock.wall_ms());
    let _lock = crate::lock::acquire(
        setup.state_dir,
        &array,
        &format!("pid {} started {started}", std::process::id()),
    )?;
    let (mut journal, session) = Journal::create_session(setup.state_dir, &array, &started)?;
    let path = journal.path().to_path_buf();
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
    };
    let outcome = engine::execute(&mut run)?;
    run.operator.finish()?;
    Ok((outcome, path))
}
