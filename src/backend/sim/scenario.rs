//! Scenario files: a simulated array, what goes wrong, and what must happen.
//!
//! A scenario is TOML (see docs/scenario-format.md). `scenario/raw.rs`
//! mirrors the file with serde (`deny_unknown_fields`, spans kept where a
//! later check needs to point at a value); `scenario/build.rs` checks it and
//! builds the typed [`Scenario`] defined here, which the simulator and the
//! dry-run command read. Every problem is a runbook-style [`Diagnostic`]
//! with `path:line:col`, so a CI failure in a scenario reads like a lint
//! error in a runbook.

mod build;
mod raw;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::backend::sim::names::Family;
use crate::backend::sim::scenario::build::Builder;
use crate::backend::sim::scenario::raw::{
    RawFile, backticked, did_you_mean, error_at, from_toml_error,
};
use crate::health::model::MemberState;
use crate::runbook::diag::{Diagnostic, Severity};
use crate::runbook::model::{Runbook, Span};

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

/// `[array]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArraySpec {
    /// Kernel name without `/dev/`, e.g. `md0`.
    pub name: String,
    pub level: Level,
    /// Slots the array has; defaults to the number of members that are not
    /// spares.
    pub raid_disks: u32,
    /// Simulated time a full recovery or replacement copy takes.
    pub rebuild_time: Duration,
}

/// RAID level of the simulated array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Raid1,
    Raid5,
    Raid6,
    Raid10,
}

impl Level {
    /// The md spelling: `raid1`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Raid1 => "raid1",
            Level::Raid5 => "raid5",
            Level::Raid6 => "raid6",
            Level::Raid10 => "raid10",
        }
    }

    /// How many slots may be missing before the array loses data. RAID10 is
    /// counted as surviving one loss (the worst case for a near layout).
    pub fn tolerates(self, raid_disks: u32) -> u32 {
        match self {
            Level::Raid1 => raid_disks.saturating_sub(1),
            Level::Raid5 | Level::Raid10 => 1,
            Level::Raid6 => 2,
        }
    }
}

/// Where a drive sits at the start of the scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriveGroup {
    /// `[array] members`: in the array and present.
    Member,
    /// `[array] spares`: on the shelf, inserted by the technician in order.
    Spare,
    /// `[array] others`: present, not in the array (e.g. the boot disk).
    Other,
}

/// One drive of the scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveSpec {
    pub group: DriveGroup,
    /// Kernel name at the start. Always set for members and others; for a
    /// spare it is optional and only says which name family it joins (`sd`,
    /// `vd`, `nvme`): an inserted drive takes the lowest free name.
    pub dev: Option<String>,
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    /// Bay or slot.
    pub slot: Option<String>,
    pub size_bytes: u64,
    /// Member state at the start (members only; `InSync` otherwise).
    pub state: MemberState,
    pub smart_passed: bool,
    /// Counters at the start: the family's defaults merged with the file's.
    pub counters: BTreeMap<String, u64>,
    /// Whether the drive carries no signature (members never are).
    pub blank: bool,
    /// The kernel name family an inserted drive's name comes from.
    pub family: Family,
}

impl DriveSpec {
    /// How messages name the drive: its starting kernel name, else serial.
    pub fn label(&self) -> String {
        match (&self.dev, &self.serial) {
            (Some(dev), _) if self.group != DriveGroup::Spare => dev.clone(),
            (_, Some(serial)) => serial.clone(),
            (Some(dev), None) => dev.clone(),
            (None, None) => "unnamed drive".to_string(),
        }
    }
}

/// `[technician]`: how long the simulated technician takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Technician {
    /// From the start of a physical step expecting `target = "absent"` to the
    /// pull. Default 5 s.
    pub pull_after: Duration,
    /// From the start of a physical step expecting `new = "present"` to the
    /// insertion. Default 5 s.
    pub insert_after: Duration,
}

impl Default for Technician {
    fn default() -> Self {
        Technician {
            pull_after: Duration::from_secs(5),
            insert_after: Duration::from_secs(5),
        }
    }
}

/// When an event happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum During {
    /// Before the baseline snapshot: the array starts this way.
    Baseline,
    /// While the step with this id runs, `after` its start.
    Step(String),
}

/// `[[event]]`: something that happens to the simulated hardware.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub during: During,
    /// Simulated delay after the step begins (default 1 s; zero for the
    /// baseline).
    pub after: Duration,
    /// In the order they are applied (see [`Action`]).
    pub actions: Vec<Action>,
}

impl Event {
    pub fn pulls(&self) -> bool {
        self.actions.iter().any(|a| matches!(a, Action::Pull(_)))
    }

    pub fn inserts(&self) -> bool {
        self.actions.iter().any(|a| matches!(a, Action::Insert(_)))
    }
}

/// One change an event makes. Drives are indexes into [`Scenario::drives`].
/// Within one event they apply in this order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A counter takes a new value.
    Set {
        drive: usize,
        counter: String,
        value: u64,
    },
    /// md state flags appear on a member (it stays in sync, as real md does
    /// on write errors).
    Flags { drive: usize, flags: Vec<String> },
    /// SMART overall health fails.
    SmartFailed(usize),
    /// A probe can no longer be read.
    Unreadable(Probe),
    /// md marks the member faulty.
    Fail(usize),
    /// The technician pulls this drive (instead of the target, when it
    /// happens during a step that pulls).
    Pull(usize),
    /// A non-member disk disappears from the bus.
    Vanish(usize),
    /// The technician inserts this drive (instead of the next spare).
    Insert(usize),
    /// The data canary reads back as zeros: through the array (`None`), or
    /// in one member's copy only.
    ZeroCanary(Option<usize>),
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

/// A probe an event can make unreadable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// `<drive>.smart`: SMART reads as `Smart::Unreadable`.
    Smart(usize),
    /// `<drive>.counters`: the cheap counters become a snapshot problem.
    Counters(usize),
    /// `array`: the whole snapshot fails.
    Array,
}

/// `[[command]]`: what a program the simulator does not model prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CannedCommand {
    /// Matched exactly against the rendered argv.
    pub argv: Vec<String>,
    /// `None` when `timed_out`.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    /// How long it runs on the simulated clock (`0`: it has ended before
    /// the engine looks again); the guard watches meanwhile.
    pub duration: Duration,
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
