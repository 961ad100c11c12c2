//! Replaying a session journal into what the walk knew when it stopped:
//! the baseline, the steps completed, the step in flight and what it had
//! done, the new drive, the drives quarantined, the LEDs still on, and how
//! the run ended, if it did.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::health::model::{Identity, Snapshot};
use crate::journal::{self, Entry, Event};

/// What a session's journal says happened.
#[derive(Clone, Debug, Default)]
pub struct Journaled {
    pub session: String,
    /// The runbook path as given when the run started.
    pub runbook: PathBuf,
    pub runbook_hash: String,
    pub backend: String,
    pub params: BTreeMap<String, String>,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// When the last entry was written (RFC 3339).
    pub last_at: String,
    pub baseline: Option<Snapshot>,
    pub preflight_passed: bool,
    /// Steps completed, in the order they completed.
    pub completed: Vec<String>,
    /// The step started and not finished.
    pub unfinished: Option<Unfinished>,
    pub new_drive: Option<Identity>,
    pub quarantined: Vec<Identity>,
    /// Drives (as described in the journal) whose LED is still on.
    pub leds_on: Vec<String>,
    /// Answers given, per step, over the whole session.
    pub answers: BTreeMap<String, usize>,
    /// Preflight's questions answered (about a survivor that is not
    /// healthy), question and answer. Preflight judges the journaled
    /// baseline again on resume, so the same questions come up; their
    /// answers are not asked for twice.
    pub preflight_answers: Vec<(String, String)>,
    /// How the run ended, if it did.
    pub ended: Option<Ended>,
    /// Whole entries read.
    pub entries: usize,
}

/// The step in flight when the run stopped, and what the journal says it
/// did before it stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unfinished {
    pub step: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Answers given in this attempt, in order: the question and the answer.
    pub answers: Vec<(String, String)>,
    /// The command's result when it was journaled: whether it succeeded.
    pub command: Option<bool>,
    /// A locate LED was switched for it.
    pub located: bool,
    /// The look taken just before it acted.
    pub before: Option<Snapshot>,
}

/// How a journaled run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The run-finished entry: the outcome's name and the exit code.
    Finished { outcome: String, exit_code: i64 },
    /// A halt, refusal or abort was journaled, and then the process died
    /// before run-finished.
    Stopped {
        kind: String,
        step: String,
        headline: String,
        details: Vec<String>,
    },
}

impl Journaled {
    /// Read and replay a session journal, streaming it. A torn last line is
    /// skipped. Nothing here vouches for the journal: `resume` reads it
    /// with the key and more checks (see `commands::resume`).
    pub fn read(path: &Path) -> Result<Journaled> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot read journal `{}`", path.display()))?;
        let (j, scanned) = Journaled::read_from(file, path, None)?;
        if let Some(line) = scanned.damaged {
            bail!("journal `{}` line {line} is damaged", path.display());
        }
        Ok(j)
    }

    /// Replay the journal read from `reader` (named `path`), checking its
    /// chain and, with `key`, every line's MAC on the way, in one pass that
    /// holds one line at a time. The caller decides what a problem in the
    /// [`Scanned`](journal::Scanned) verification means.
    pub fn read_from(
        reader: impl std::io::Read,
        path: &Path,
        key: Option<&journal::Key>,
    ) -> Result<(Journaled, journal::Scanned)> {
        let mut j = Journaled::default();
        let scanned = journal::scan_entries(reader, path, key, |_, e| j.apply(e))
            .with_context(|| format!("cannot replay journal `{}`", path.display()))?;
        if j.entries == 0 {
            bail!(
                "cannot replay journal `{}`: the journal is empty",
                path.display()
            );
        }
        Ok((j, scanned))
    }

    /// Replay journal entries in order.
    pub fn replay(entries: impl IntoIterator<Item = Entry>) -> Result<Journaled> {
        let mut j = Journaled::default();
        for e in entries {
            j.apply(e)?;
        }
        if j.entries == 0 {
            bail!("the journal is empty");
        }
        Ok(j)
    }

    /// Replay one entry.
    fn apply(&mut self, e: Entry) -> Result<()> {
        let first = self.entries == 0;
        if first && !matches!(e.event, Event::RunStarted { .. }) {
            bail!("the journal does not begin with run-started");
        }
        self.last_at.clone_from(&e.at);
        self.entries += 1;
        match e.event {
            Event::RunStarted { .. } if !first => {
                bail!(
                    "journal entry {} starts a second run in the same journal",
                    e.seq
                );
            }
            Event::RunStarted {
                session,
                runbook,
                runbook_hash,
                backend,
                params,
                ..
            } => {
                self.session = session;
                self.runbook = PathBuf::from(runbook);
                self.runbook_hash = runbook_hash;
                self.backend = backend;
                self.params = params;
                self.started_at = e.at;
            }
            Event::Resumed { .. } => self.ended = None,
            // A new session took the array over; the `run-finished` that
            // follows ends this one.
            Event::Abandoned { .. } => {}
            Event::Snapshot { label, snapshot } if label == "baseline" => {
                self.baseline = Some(snapshot);
            }
            Event::Snapshot { label, snapshot } => {
                if let Some(u) = self
                    .unfinished
                    .as_mut()
                    .filter(|u| label == format!("before {}", u.step))
                {
                    u.before = Some(snapshot);
                }
            }
            Event::PreflightPassed => self.preflight_passed = true,
            Event::StepStarted { step, .. } => {
                self.unfinished = Some(Unfinished {
                    step,
                    started_at: e.at,
                    ..Unfinished::default()
                });
            }
            Event::Answer {
                step,
                question,
                answer,
            } => {
                let count = self.answers.entry(step.clone()).or_default();
                *count = count.saturating_add(1);
                if let Some(u) = self.unfinished.as_mut().filter(|u| u.step == step) {
                    u.answers.push((question.clone(), answer.clone()));
                }
                if step == crate::engine::PREFLIGHT_QUESTIONS {
                    self.preflight_answers.push((question, answer));
                }
            }
            Event::Command { step, output } => {
                if let Some(u) = self.unfinished.as_mut().filter(|u| u.step == step) {
                    u.command = Some(output.success());
                }
            }
            Event::Locate {
                step,
                drive,
                on,
                outcome,
            } => {
                let switched = matches!(outcome, crate::backend::LocateOutcome::Switched { .. });
                if let Some(u) = self.unfinished.as_mut().filter(|u| u.step == step) {
                    u.located = true;
                }
                self.leds_on.retain(|d| d != &drive);
                if on && switched {
                    self.leds_on.push(drive);
                }
            }
            Event::NewDrive { drive, .. } => self.new_drive = Some(drive),
            Event::Quarantined { drive, .. } => self.quarantined.push(drive),
            Event::StepCompleted { step } => {
                if self.unfinished.as_ref().is_some_and(|u| u.step == step) {
                    self.unfinished = None;
                }
                if !self.completed.contains(&step) {
                    self.completed.push(step);
                }
            }
            // A run that died between naming the violation and the
            // halt's full look stopped all the same.
            Event::Halting {
                step,
                headline,
                violations,
            } => {
                self.ended = Some(Ended::Stopped {
                    kind: "halted".into(),
                    step,
                    headline,
                    details: violations
                        .iter()
                        .map(|v| crate::sanitize::sanitize(&v.to_string(), false))
                        .collect(),
                });
            }
            Event::Halted {
                step,
                headline,
                details,
                ..
            } => {
                self.ended = Some(Ended::Stopped {
                    kind: "halted".into(),
                    step,
                    headline,
                    details,
                });
            }
            Event::Refused { reasons } => {
                self.ended = Some(Ended::Stopped {
                    kind: "refused".into(),
                    step: "preflight".into(),
                    headline: "preflight refused to start: nothing was touched".into(),
                    details: reasons,
                });
            }
            Event::Aborted { step, reason } => {
                self.ended = Some(Ended::Stopped {
                    kind: "aborted".into(),
                    step,
                    headline: reason,
                    details: vec![],
                });
            }
            Event::RunFinished { outcome, exit_code } => {
                self.ended = Some(Ended::Finished {
                    outcome,
                    exit_code: i64::from(exit_code),
                });
            }
            Event::Check { .. }
            | Event::Warning { .. }
            | Event::Interrupted { .. }
            | Event::StepTimeout { .. }
            | Event::TimedOut { .. }
            | Event::ResumeDecision { .. }
            | Event::QuarantineAdded { .. }
            | Event::QuarantineReleased { .. }
            | Event::SurvivorAccepted { .. }
            | Event::SignOff { .. }
            | Event::CanaryPlanted { .. }
            | Event::NotifyFailed { .. }
            | Event::CanaryVerified { .. }
            | Event::CanaryRemoved { .. }
            | Event::CanaryKept { .. } => {}
        }
        Ok(())
    }

    pub fn array(&self) -> Option<&str> {
        self.params.get("array").map(String::as_str)
    }

    /// Why this session cannot be resumed, or `None` when it can: it
    /// stopped without finishing, was interrupted, timed out, or ended in
    /// an error.
    pub fn not_resumable(&self) -> Option<String> {
        match &self.ended {
            None | Some(Ended::Stopped { .. }) => None,
            Some(Ended::Finished { outcome, .. })
                if outcome == "interrupted"
                    || outcome == "timed-out"
                    || outcome.starts_with("error") =>
            {
                None
            }
            Some(Ended::Finished { outcome, .. }) => Some(format!(
                "session `{}` already finished ({outcome}); start a new run instead",
                self.session
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A journal swapguard wrote: a dry run halted by a survivor's write
    /// errors, kept as a fuzz seed.
    const WRITTEN: &str =
        include_str!("../../../fuzz/seeds/journal_read/halted-survivor-write-errors.jsonl");

    fn journal(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("j.jsonl");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn replay_reads_what_a_written_journal_says() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journaled::read(&journal(dir.path(), WRITTEN)).unwrap();
        assert_eq!(j.entries, WRITTEN.lines().count());
        assert_eq!(j.array(), Some("md0"));
        assert!(j.preflight_passed && j.baseline.is_some());
        assert_eq!(
            j.ended,
            Some(Ended::Finished {
                outcome: "halted".into(),
                exit_code: 3
            })
        );
        assert!(!j.completed.is_empty());
    }

    #[test]
    fn replay_refuses_an_event_it_does_not_know_naming_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut lines: Vec<&str> = WRITTEN.lines().collect();
        let unknown = r#"{"seq":4,"at":"t","prev":"p","event":"teleported","step":"pull"}"#;
        lines.insert(3, unknown);
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let err = format!(
            "{:#}",
            Journaled::read(&journal(dir.path(), &text)).unwrap_err()
        );
        assert!(
            err.contains("line 4 is an event swapguard does not know: `teleported`"),
            "{err}"
        );
    }
}
