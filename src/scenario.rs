//! Scenario files: a simulated array, what goes wrong, and what must happen.
//!
//! A scenario is TOML (see docs/scenario-format.md). `scenario/raw.rs`
//! mirrors the file with serde (`deny_unknown_fields`, spans kept where a
//! later check needs to point at a value); `scenario/build.rs` checks it and
//! builds the typed [`Scenario`] defined here, which the dry-run command
//! reads; the simulated machine's part of it (drives, events, canned
//! commands) is the simulator's own vocabulary (`backend/sim/machine.rs`),
//! handed over with [`Scenario::machine`]. Every problem is a runbook-style
//! [`Diagnostic`] with `path:line:col`, so a CI failure in a scenario reads
//! like a lint error in a runbook.

mod build;
mod raw;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::backend::sim::machine::{
    Action, ArraySpec, CannedCommand, DriveGroup, DriveSpec, During, Event, Level, Machine, Probe,
    Technician,
};
use crate::runbook::diag::{Diagnostic, Severity};
use crate::runbook::model::{Runbook, Span};
use crate::scenario::build::Builder;
use crate::scenario::raw::{RawFile, backticked, did_you_mean, error_at, from_toml_error};

/// One scenario file, checked and resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// The scenario file (as given), for messages.
    pub path: PathBuf,
    /// `[scenario] name`: what this scenario shows, for test reports.
    pub name: String,
    /// `[scenario] runbook`, resolved against the scenario file's folder and
    /// made absolute.
    pub runbook: PathBuf,
    /// `[scenario] params`: the runbook parameters, as given on a command
    /// line (`array = "md0"`, `target = "sdb"`).
    pub params: BTreeMap<String, String>,
    /// `[array]`: the simulated array.
    pub array: ArraySpec,
    /// Every drive of the scenario: members, then spares, then others, in
    /// file order. Events refer to drives by index into this list.
    pub drives: Vec<DriveSpec>,
    /// `[technician]`: how the simulated technician's hands behave.
    pub technician: Technician,
    /// `[[event]]`: what goes wrong, and when, in file order.
    pub events: Vec<Event>,
    /// `[[command]]`: canned outputs for programs the simulator does not model.
    pub commands: Vec<CannedCommand>,
    /// `[[quarantined]]`: drives in the quarantine registry when the run
    /// starts (quarantined by an earlier run).
    pub quarantined: Vec<Quarantined>,
    /// `[answers]`: scripted answers by step id, overriding the default
    /// simulated technician (who answers every question correctly).
    pub answers: BTreeMap<String, Vec<String>>,
    /// `[expect]`: what the dry run must end with.
    pub expect: Expected,
    /// The file's text and the places that name runbook steps and
    /// parameters, for [`Scenario::check_against`].
    source: String,
    step_refs: Vec<StepRef>,
    param_spans: BTreeMap<String, Span>,
    params_span: Span,
}

/// `[[quarantined]]`: a drive quarantined before the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quarantined {
    /// Index into [`Scenario::drives`].
    pub drive: usize,
    pub reason: String,
    /// RFC 3339.
    pub at: String,
    pub session: String,
}

/// How a dry run ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every step done.
    Completed,
    /// The guard stopped the run (a survivor degraded, the wrong drive moved).
    Halted,
    /// Preflight refused to start (or a step refused to act).
    Refused,
    /// The technician's answer stopped the run.
    Aborted,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Halted => "halted",
            Outcome::Refused => "refused",
            Outcome::Aborted => "aborted",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `[expect]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub outcome: Outcome,
    /// The step the run stopped at; `preflight` for a refusal before step 1.
    pub step: Option<String>,
    /// Substrings the halt or refusal text must all contain.
    pub reasons: Vec<String>,
}

/// The step id that stands for "before the first step" in `[expect] step`.
pub const PREFLIGHT: &str = "preflight";

/// Every problem found in a scenario file, each pointing at its line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

/// A place in the file that names a runbook step.
#[derive(Clone, Debug, PartialEq, Eq)]
struct StepRef {
    id: String,
    span: Span,
    /// `event 2 `during``, `[answers]`, `[expect] step`.
    what: String,
}

/// Read and check a scenario file; the runbook it names must exist.
pub fn load(path: &Path) -> anyhow::Result<Scenario> {
    // Read once, from a checked descriptor (as root: no links followed,
    // nothing others could have written).
    let source = crate::trust::read_checked(path, "scenario")?;
    let scenario = parse(path, &source)?;
    if !scenario.runbook.is_file() {
        let span = scenario
            .step_refs
            .iter()
            .find(|r| r.what == "runbook")
            .map_or(Span::default(), |r| r.span);
        return Err(error_at(
            path,
            &source,
            span,
            format!("runbook `{}` does not exist", scenario.runbook.display()),
            Some("`runbook` is a path relative to the scenario file".to_string()),
        )
        .into());
    }
    Ok(scenario)
}

/// Check scenario text; `path` is for messages and for resolving `runbook`.
/// The runbook file itself is not opened.
pub fn parse(path: &Path, source: &str) -> anyhow::Result<Scenario> {
    let raw: RawFile = match toml::from_str(source) {
        Ok(raw) => raw,
        Err(e) => return Err(from_toml_error(path, source, &e).into()),
    };
    let mut b = Builder {
        path,
        source,
        diagnostics: Vec::new(),
    };
    let scenario = b.build(raw);
    if b.diagnostics.is_empty() {
        if let Some(scenario) = scenario {
            return Ok(scenario);
        }
    }
    Err(ScenarioError {
        diagnostics: b.diagnostics,
    }
    .into())
}

impl Scenario {
    /// The simulated machine this scenario describes, playing `backend`
    /// (the runbook's), for [`crate::backend::sim::SimBackend::new`].
    pub fn machine<'a>(&'a self, backend: &'a str) -> Machine<'a> {
        Machine {
            source: &self.path,
            backend,
            array: &self.array,
            drives: &self.drives,
            technician: self.technician,
            events: &self.events,
            commands: &self.commands,
        }
    }

    /// Check the scenario against its runbook: every step id it names
    /// exists, and it gives every parameter the runbook takes and no other.
    pub fn check_against(&self, runbook: &Runbook) -> Vec<Diagnostic> {
        let steps: Vec<&str> = runbook.steps.iter().map(|s| s.id.as_str()).collect();
        let params: Vec<&str> = runbook.params.iter().map(|p| p.name.as_str()).collect();
        self.check_names(&steps, &params)
    }

    /// [`Scenario::check_against`] with plain lists of step ids and
    /// parameter names.
    pub fn check_names(&self, steps: &[&str], params: &[&str]) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for r in &self.step_refs {
            if r.what == "runbook" || steps.contains(&r.id.as_str()) {
                continue;
            }
            // Preflight asks too (a survivor that is at risk or failing).
            if (r.what == "[expect] step" || r.what == "[answers]") && r.id == PREFLIGHT {
                continue;
            }
            let help = match did_you_mean(&r.id, steps.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("the runbook's steps are {}", backticked(steps)),
            };
            out.push(self.diag(
                r.span,
                format!(
                    "{} names step `{}`, which the runbook does not have",
                    r.what, r.id
                ),
                Some(help),
            ));
        }
        for (name, span) in &self.param_spans {
            if !params.contains(&name.as_str()) {
                let help = match did_you_mean(name, params.iter().copied()) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => format!("the runbook's parameters are {}", backticked(params)),
                };
                out.push(self.diag(
                    *span,
                    format!("the runbook has no parameter `{name}`"),
                    Some(help),
                ));
            }
        }
        for name in params {
            if !self.params.contains_key(*name) {
                out.push(self.diag(
                    self.params_span,
                    format!("parameter `{name}` of the runbook is not given"),
                    Some(format!("add `{name} = \"...\"` to `[scenario] params`")),
                ));
            }
        }
        out
    }

    /// The drive an index names, for messages.
    pub fn drive_label(&self, drive: usize) -> String {
        self.drives
            .get(drive)
            .map_or_else(|| format!("drive #{drive}"), DriveSpec::label)
    }

    fn diag(&self, span: Span, message: String, help: Option<String>) -> Diagnostic {
        Diagnostic::at(
            Severity::Error,
            &self.path,
            &self.source,
            span,
            message,
            help,
        )
    }
}

#[cfg(test)]
mod tests;
