//! Operators: the human side of a run.
//!
//! The engine never reads stdin or prints; everything a technician sees or
//! answers goes through an [`Operator`]. The terminal operator talks to a
//! person at a console; the scripted operator answers from a file, so CI and
//! dry-runs drive the same engine without a person.

pub mod live;
pub mod prompt;
pub mod render;
pub mod scripted;
pub mod terminal;
pub mod tracking;

use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

/// A step as the technician sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepView {
    pub id: String,
    /// `confirm`, `command`, `physical`, `wait`, `locate`.
    pub kind: String,
    /// 1-based position and the total number of steps.
    pub number: usize,
    pub total: usize,
    /// The rendered instruction (variables bound, hardware strings sanitised).
    pub text: String,
    /// For command steps: the argv that will run, rendered.
    pub argv: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum QuestionKind {
    /// Yes or no.
    YesNo,
    /// The technician must type `expected` exactly (for example the last four
    /// characters of a serial) before something irreversible.
    TypeExact { expected: String },
    /// A person's name (a second person signing off a step): any text that
    /// is not blank.
    Name,
    /// A written reason for going on against a refusal (a failing survivor).
    /// Free text; the engine decides whether it is enough (blank, or too
    /// short to say anything, keeps the refusal). The simulated technician
    /// of a dry-run never gives one.
    Reason,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Question {
    /// The step asking; scripted answers are keyed by it.
    pub step_id: String,
    pub prompt: String,
    pub kind: QuestionKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Answer {
    Yes,
    No,
    Text(String),
}

/// One line of the health panel: a drive and how it is doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PanelLine {
    /// `survivor`, `target`, `new`, `other`.
    pub role: String,
    /// `sda (serial S3Z1NB0K100001, bay 0)`.
    pub drive: String,
    /// `in-sync`, `faulty`, `absent`, ...
    pub state: String,
    /// True when nothing is wrong with this drive.
    pub ok: bool,
}

/// Progress of a wait (a rebuild) or a watch. Every figure comes from the
/// backend (md's `sync_speed` and `sync_completed`; ZFS's `scan_stats` fill
/// the same fields): the operator shows them and never estimates its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Progress {
    pub step_id: String,
    pub label: String,
    /// 0.0 ..= 1.0, when known.
    pub fraction: Option<f64>,
    /// The finish estimate: work remaining divided by the backend's speed.
    pub eta: Option<Duration>,
    /// The backend's current speed in bytes per second.
    pub speed: Option<u64>,
    /// Bytes of work remaining.
    pub remaining: Option<u64>,
    /// Progress has not moved for this long (at least
    /// [`STALL_AFTER`]); the estimate is withheld while it is stalled.
    pub stalled_for: Option<Duration>,
}

/// How long progress may stand still before a wait is said to be stalled.
/// md updates `sync_completed` many times a second while it works, and even
/// a rebuild throttled to `speed_limit_min` (1 MB/s) moves within seconds.
pub const STALL_AFTER: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoteLevel {
    Info,
    Good,
    Warn,
}

/// Everything a technician needs when the guard stops the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HaltReport {
    /// The step during which the halt happened (`preflight` before step 1).
    pub step_id: String,
    pub headline: String,
    /// One line per violation: drive, what changed, before → after.
    pub details: Vec<String>,
    /// The runbook's `[on_halt]` guidance.
    pub guidance: String,
}

/// What a run is about, shown once before step 1 (and again when a run is
/// resumed): the technician checks it against the ticket and the drive in
/// hand before anything happens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Banner {
    /// `run` or `resume`.
    pub verb: String,
    /// The runbook's `name`.
    pub runbook: String,
    /// The runbook's file, as given.
    pub file: String,
    pub array: String,
    /// The resolved target: kernel name, serial, model, size, bay.
    pub target: String,
    pub session: String,
    /// Where the journal is written.
    pub journal: String,
}

pub trait Operator {
    /// Say what the run is about before step 1. Operators that draw
    /// nothing special show it as notes.
    fn banner(&mut self, banner: &Banner) {
        for (label, value) in live::banner_rows(banner) {
            self.note(NoteLevel::Info, &format!("{label}: {value}"));
        }
    }
    /// Whether a person answers (a terminal): only then is a physical
    /// step's timeout a question rather than the end of the run.
    fn interactive(&self) -> bool {
        false
    }
    /// A physical step is waiting for hands: the live line and the panel of
    /// the look just taken, called at every watch turn (about four times a
    /// second). Operators decide how often to draw; the default draws
    /// nothing (scripted transcripts stay deterministic).
    fn waiting(&mut self, _waiting: &live::Waiting, _panel: &[PanelLine]) {}
    /// Show a step's instruction, large and plain.
    fn show_step(&mut self, step: &StepView) -> Result<()>;
    /// Ask a question. Err when no answer can be had (no TTY, no scripted
    /// answer for this step).
    fn ask(&mut self, question: &Question) -> Result<Answer>;
    /// Show the survivors' health.
    fn health(&mut self, panel: &[PanelLine]);
    /// Show progress of a wait or watch.
    fn progress(&mut self, progress: &Progress);
    /// A one-line message.
    fn note(&mut self, level: NoteLevel, text: &str);
    /// The guard stopped the run.
    fn halted(&mut self, report: &HaltReport);
    /// Preflight refused to start; nothing was touched. Not an alarm: the
    /// report says what failed and how to run again. The default shows it
    /// as a halt block (the scripted transcript does).
    fn refused(&mut self, report: &HaltReport) {
        self.halted(report)
    }
    /// The run is over; the scripted operator fails here on answers left over.
    fn finish(&mut self) -> Result<()>;
}
