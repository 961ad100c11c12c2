//! `swapguard preflight`: would `swapguard run` start this swap today? The
//! real backend takes its full look, the target is resolved, and every
//! preflight check of the runbook runs, by the engine's own preflight code
//! (`engine::preflight_only`); then it stops. Nothing is touched: no lock
//! is taken, no step runs, no canary is planted, and the journal the engine
//! writes goes to a temporary directory removed after, so fleet tooling
//! (contrib/ansible/) can ask every host as often as it likes.
//!
//! A question preflight would ask the technician (go on with an at-risk
//! survivor, override a failing one) has no one to answer it here: the
//! swap is reported as not safe (exit 4), with the reason.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use crate::cli::Config;
use crate::clock::SystemClock;
use crate::engine::{self, Outcome};
use crate::error::UsageError;
use crate::exit;
use crate::operator::{
    Answer, HaltReport, NoteLevel, Operator, PanelLine, Progress, Question, StepView,
};
use crate::sanitize::sanitize;
use crate::session::{load_trusted_runbook, real_backend};

pub fn preflight(
    config: &Config,
    runbook_path: &Path,
    params: &BTreeMap<String, String>,
    json: bool,
) -> Result<exit::Code> {
    let runbook = load_trusted_runbook(runbook_path)?;
    let clock = SystemClock::new();
    let mut backend = real_backend(config, &runbook, clock)?;
    let mut params = params.clone();
    let given = params
        .get("array")
        .cloned()
        .ok_or_else(|| UsageError("no array given: pass `--array NAME`".into()))?;
    let known = backend.arrays().unwrap_or_default();
    let array = backend
        .canonical_array(&given, &known)
        .map_err(UsageError)?;
    crate::state::component("array name", &crate::state::array_file_name(&array))
        .map_err(UsageError)?;
    params.insert("array".into(), array.clone());
    if params.get("target").is_none_or(String::is_empty) {
        return Err(UsageError("no target given: pass `--target DEVICE|SERIAL|BAY`".into()).into());
    }
    crate::runbook::vars::check_params(&runbook.params, &params).map_err(UsageError)?;
    let scratch = tempfile::tempdir()?;
    let (mut journal, session) = crate::journal::Journal::create_session(
        scratch.path(),
        &array,
        &crate::journal::rfc3339(crate::clock::Clock::wall_ms(&clock)),
    )?;
    let interrupted = std::sync::atomic::AtomicBool::new(false);
    let mut operator = Checking::default();
    let mut silent = crate::notify::Silent;
    let outcome = engine::preflight_only(&mut engine::Run {
        runbook: &runbook,
        params: params.clone(),
        backend: backend.as_mut(),
        operator: &mut operator,
        clock: &clock,
        journal: &mut journal,
        interrupted: &interrupted,
        session,
        state_dir: &config.state_dir,
        notify: &mut silent,
    })?;
    let (safe, reasons) = match &outcome {
        Outcome::Completed => (true, Vec::new()),
        Outcome::Refused(r) | Outcome::Halted(r) => (false, r.details.clone()),
        Outcome::Aborted { reason, .. } => (
            false,
            operator
                .warnings
                .iter()
                .cloned()
                .chain(std::iter::once(format!(
                    "{reason}: `swapguard run` would ask the technician to acknowledge it"
                )))
                .collect(),
        ),
        Outcome::Interrupted { step } | Outcome::TimedOut { step, .. } => {
            (false, vec![format!("stopped at `{step}`")])
        }
    };
    let reasons: Vec<String> = reasons.iter().map(|r| sanitize(r, false)).collect();
    let host = crate::notify::host::hostname();
    if json {
        let doc = serde_json::json!({
            "format": crate::output::JSON_FORMAT,
            "host": host,
            "runbook": runbook.name,
            "array": array,
            "target": params.get("target"),
            "safe": safe,
            "exit_code": if safe { 0 } else { exit::Code::Refused.number() },
            "reasons": reasons,
            "passed": operator.passed,
        });
        crate::outln!("{}", serde_json::to_string_pretty(&doc)?)?;
    } else if safe {
        crate::outln!(
            "safe: `{}` on {host}, array `{}`, target `{}`: every preflight check passed; nothing was touched",
            sanitize(&runbook.name, false),
            sanitize(&array, false),
            sanitize(params.get("target").map_or("", String::as_str), false)
        )?;
    } else {
        crate::outln!(
            "not safe: `{}` on {host}, array `{}`: `swapguard run` would refuse; nothing was touched",
            sanitize(&runbook.name, false),
            sanitize(&array, false)
        )?;
        for r in &reasons {
            crate::outln!("  {r}")?;
        }
    }
    Ok(if safe {
        exit::Code::Success
    } else {
        exit::Code::Refused
    })
}

/// An operator with no one at it: notes are kept, every question is
/// answered with nothing (which keeps a refusal, and does not acknowledge).
#[derive(Default)]
struct Checking {
    passed: Vec<String>,
    warnings: Vec<String>,
}

impl Operator for Checking {
    fn show_step(&mut self, _: &StepView) -> Result<()> {
        Ok(())
    }
    fn ask(&mut self, _: &Question) -> Result<Answer> {
        Ok(Answer::Text(String::new()))
    }
    fn health(&mut self, _: &[PanelLine]) {}
    fn progress(&mut self, _: &Progress) {}
    fn note(&mut self, level: NoteLevel, text: &str) {
        match level {
            NoteLevel::Good => self.passed.push(text.to_string()),
            NoteLevel::Warn => self.warnings.push(text.to_string()),
            _ => {}
        }
    }
    fn halted(&mut self, _: &HaltReport) {}
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}
