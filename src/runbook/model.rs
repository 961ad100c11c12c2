//! The typed runbook model: what the engine walks.
//!
//! The loader (`load.rs`) turns a TOML file into this model only when the
//! file is free of errors, so everything here is already validated: step ids
//! are unique, every variable is defined, every physical step has an
//! expectation, destructive commands sit behind a typed confirmation.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use crate::health::policy::{
    CRC_COUNTER, DriveExpect, GuardPolicy, NVME_ERROR_LOG_COUNTER, Requirement,
};

/// A byte range in the runbook source, for messages that point at a line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// A string with `{variables}`, kept unrendered until the live array binds them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Template {
    pub text: String,
    #[serde(skip)]
    pub span: Span,
}

/// The storage a runbook is written for: a name from the backend registry
/// (src/backend/registry.rs), e.g. `md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct BackendKind(pub &'static str);

impl BackendKind {
    pub fn name(self) -> &'static str {
        self.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParamKind {
    /// An array name, e.g. `md0`.
    Array,
    /// A member of the array: kernel name, serial or bay.
    Member,
    /// A drive outside the array, such as a restore target: kernel name,
    /// serial or WWN, resolved against the live system. It must not be a
    /// member of the array nor a quarantined drive.
    Drive,
    /// Free text.
    Text,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Param {
    pub name: String,
    pub kind: ParamKind,
    pub help: String,
    /// For `text` params: the regex the whole value must match (the
    /// runbook's `pattern`, or `None` for the default,
    /// [`DEFAULT_TEXT_PATTERN`](crate::runbook::vars::DEFAULT_TEXT_PATTERN)).
    pub pattern: Option<String>,
    /// Whether a value may begin with `-` (only `text` params may say so).
    pub allow_dash: bool,
}

/// Built-in preflight conditions, evaluated on the baseline snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precondition {
    /// The array stays redundant-enough (not failed) once the target leaves.
    RedundantWithoutTarget,
    /// Every survivor is in sync, SMART passes, no error flags.
    SurvivorsHealthy,
    /// No resync, recovery, reshape or check is running.
    NoRebuildRunning,
    /// The target has a serial or WWN (so a wrong pull can be told apart).
    TargetIdentified,
}

impl Precondition {
    pub const ALL: [(&'static str, Precondition); 4] = [
        (
            "redundant-without-target",
            Precondition::RedundantWithoutTarget,
        ),
        ("survivors-healthy", Precondition::SurvivorsHealthy),
        ("no-rebuild-running", Precondition::NoRebuildRunning),
        ("target-identified", Precondition::TargetIdentified),
    ];

    pub fn name(self) -> &'static str {
        Precondition::ALL
            .iter()
            .find(|(_, p)| *p == self)
            .map(|(n, _)| *n)
            .unwrap_or("unknown")
    }
}

/// What an external check's output must satisfy (besides its exit status).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckTest {
    /// The exit status alone decides.
    ExitZero,
    /// The JSON value at `pointer` in stdout equals `value`.
    JsonEquals {
        pointer: String,
        value: serde_json::Value,
    },
    /// The JSON value at `pointer` exists and differs from `value`.
    JsonNotEquals {
        pointer: String,
        value: serde_json::Value,
    },
    /// The JSON value at `pointer` is a number no less than `bound`.
    JsonAtLeast {
        pointer: String,
        bound: serde_json::Number,
    },
    /// The JSON value at `pointer` is a number no more than `bound`.
    JsonAtMost {
        pointer: String,
        bound: serde_json::Number,
    },
    /// The JSON value at `pointer` is a timestamp (RFC 3339 or Unix seconds)
    /// no older than `max_age`.
    JsonMaxAge { pointer: String, max_age: Duration },
    /// The regular expression finds a match in stdout.
    Matches { pattern: String },
    /// The regular expression finds no match in stdout.
    NotMatches { pattern: String },
    /// stdout, without leading and trailing white space, is exactly
    /// `text`. Loaded, `text` is the template (runbook variables allowed);
    /// the engine fills them in before it judges.
    StdoutIs { text: String },
}

/// A fact outside the array, such as backup freshness, checked by running
/// an argv (never a shell).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExternalCheck {
    pub name: String,
    pub run: Vec<Template>,
    /// Exit statuses that pass (default `[0]`).
    pub exit: Vec<i32>,
    pub test: CheckTest,
    pub timeout: Duration,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Preflight {
    pub require: Vec<Precondition>,
    pub checks: Vec<ExternalCheck>,
}

/// The drive a step talks about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The member being replaced.
    Target,
    /// The drive inserted during the run.
    New,
}

impl DriveExpect {
    pub const ALL: [(&'static str, DriveExpect); 6] = [
        ("in-sync", DriveExpect::InSync),
        ("rebuilding", DriveExpect::Rebuilding),
        ("faulty", DriveExpect::Faulty),
        ("removed", DriveExpect::Removed),
        ("absent", DriveExpect::Absent),
        ("present", DriveExpect::Present),
    ];

    pub fn name(self) -> &'static str {
        DriveExpect::ALL
            .iter()
            .find(|(_, e)| *e == self)
            .map(|(n, _)| *n)
            .unwrap_or("unknown")
    }
}

/// Rules a newly inserted drive must pass before anything writes to it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NewDriveRule {
    /// Minimum size as a template (e.g. `{target.size}`) or a literal size.
    pub min_size: Option<Template>,
    pub blank: bool,
    pub not_quarantined: bool,
}

/// What a step must achieve, and what may change while it runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Expectation {
    pub target: Option<DriveExpect>,
    pub new: Option<DriveExpect>,
    /// Most array slots allowed missing during and after this step.
    pub degraded: Option<u32>,
}

impl Expectation {
    pub fn is_empty(&self) -> bool {
        self.target.is_none() && self.new.is_none() && self.degraded.is_none()
    }
}

/// How a step asks the technician before acting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Confirm {
    /// No question (the default for command steps that are not destructive).
    #[default]
    None,
    /// A yes/no question.
    YesNo,
    /// Type the last 4 characters of the drive's serial.
    TypeSerial(Role),
}

/// What a wait step waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitUntil {
    /// No sync running, no slot missing, the new drive (if any) in sync.
    InSync,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum StepKind {
    /// The technician confirms something the tool cannot see.
    Confirm,
    /// Run an argv (never through a shell).
    Command {
        run: Vec<Template>,
        /// What the command does, for lint: true when it can destroy data.
        destructive: bool,
    },
    /// Hands in the chassis: the tool watches until the expectation holds.
    Physical,
    /// Wait, watching, until a condition holds.
    Wait { until: WaitUntil },
    /// Blink a bay's locate LED.
    Locate { on: Role },
    /// Test an external fact (e.g. the backup verifies); a failure halts.
    Check { check: ExternalCheck },
}

impl StepKind {
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Confirm => "confirm",
            StepKind::Command { .. } => "command",
            StepKind::Physical => "physical",
            StepKind::Wait { .. } => "wait",
            StepKind::Locate { .. } => "locate",
            StepKind::Check { .. } => "check",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    pub id: String,
    pub kind: StepKind,
    /// The instruction shown to the technician.
    pub say: Option<Template>,
    pub expect: Expectation,
    /// Rules for the drive this step inserts (physical steps expecting `new`).
    pub new_drive: Option<NewDriveRule>,
    pub confirm: Confirm,
    /// Record the target as quarantined once this step completes.
    pub quarantine: Option<Role>,
    /// A failure of this step (e.g. no LED control) does not stop the run.
    pub optional: bool,
    /// How long the step may take (waits, physical steps, commands).
    pub timeout: Option<Duration>,
    /// A second person signs off (name and typed confirmation) before the
    /// step acts.
    pub sign_off: bool,
    /// What happens to the command of a command step that is still running
    /// when the guard halts the run (or the technician interrupts it).
    pub on_halt: OnHalt,
    #[serde(skip)]
    pub span: Span,
}

impl Step {
    /// What the backend is told of this step (see [`StepFacts`]).
    pub fn facts(&self) -> crate::backend::StepFacts<'_> {
        crate::backend::StepFacts {
            id: &self.id,
            physical: self.kind == StepKind::Physical,
            target: self.expect.target,
            new: self.expect.new,
        }
    }
}

/// `on_halt` on a command step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnHalt {
    /// End it at once: SIGTERM to its process group, then SIGKILL. The
    /// default: a halt means "touch nothing more", and a command left
    /// running goes on writing, or reading the last good copy hard, after
    /// the tool said stop.
    #[default]
    Kill,
    /// Let it finish (within its timeout) while the run is halted: for a
    /// command that must never be cut off halfway.
    Wait,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Runbook {
    #[serde(skip)]
    pub path: PathBuf,
    /// SHA-256 of the file's bytes, recorded in the journal.
    pub hash: String,
    pub name: String,
    pub backend: BackendKind,
    pub params: Vec<Param>,
    pub guard: GuardPolicy,
    pub preflight: Preflight,
    /// Guidance printed after a halt (`[on_halt] say`), unless
    /// `on_halt_for` has text for the step or its kind.
    pub on_halt: String,
    /// `[on_halt.step]` and `[on_halt.kind]`: guidance for one step, or
    /// for every step of a kind (a halt during a rebuild wait is not
    /// "hands out of the chassis").
    #[serde(skip_serializing_if = "HaltTexts::is_empty")]
    pub on_halt_for: HaltTexts,
    /// A data canary on the array's filesystem, when the runbook names one.
    pub canary: Option<CanaryRule>,
    /// Webhook notifications (`[notify]`); kept out of serialised output,
    /// since a webhook URL can be a secret.
    #[serde(skip)]
    pub notify: Option<crate::notify::Settings>,
    pub steps: Vec<Step>,
}

/// `[canary]`: a file of random content written at the start, re-read with
/// O_DIRECT at every step boundary and during watches (see src/canary.rs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CanaryRule {
    /// The directory the canary file is written in (on the guarded filesystem).
    pub dir: Template,
    /// Size of the canary file in bytes.
    pub size: u64,
    /// How often it is re-read during watches.
    pub every: Duration,
    /// Plant it once this step is done (default: before the first step).
    pub after: Option<String>,
}

/// Halt guidance by step id and by step kind (see [`Runbook::halt_guidance`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HaltTexts {
    pub steps: std::collections::BTreeMap<String, String>,
    pub kinds: std::collections::BTreeMap<String, String>,
}

impl HaltTexts {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.kinds.is_empty()
    }
}

impl Runbook {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The guidance for a halt at step `step_id`: the step's own
    /// `[on_halt.step]` text, else its kind's `[on_halt.kind]` text, else
    /// `[on_halt] say`. A halt outside any step (`preflight`) gets `say`.
    pub fn halt_guidance(&self, step_id: &str) -> &str {
        let texts = &self.on_halt_for;
        if let Some(text) = texts.steps.get(step_id) {
            return text;
        }
        self.step(step_id)
            .and_then(|s| texts.kinds.get(s.kind.name()))
            .map_or(&self.on_halt, |t| t)
    }
}
