//! Replaying a session journal into what the walk knew when it stopped:
//! the baseline, the steps completed, the step in flight and what it had
//! done, the new drive, the drives quarantined, the LEDs still on, and how
//! the run ended, if it did.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::health::model::{Identity, Snapshot};
use crate::journal;

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

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn parse<T: serde::de::DeserializeOwned>(v: &Value, key: &str, seq: u64) -> Result<T> {
    let field = v.get(key).cloned().unwrap_or(Value::Null);
    serde_json::from_value(field)
        .with_context(|| format!("journal entry {seq} has an unreadable `{key}`"))
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
        let scanned = journal::scan(reader, path, key, |_, e| j.apply(&e))
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
    pub fn replay(entries: &[Value]) -> Result<Journaled> {
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
    fn apply(&mut self, e: &Value) -> Result<()> {
        if self.entries == 0 && text(e, "event") != "run-started" {
            bail!("the journal does not begin with run-started");
        }
        let seq = e.get("seq").and_then(Value::as_u64).unwrap_or(0);
        let step = text(e, "step");
        self.last_at = text(e, "at");
        self.entries += 1;
        match text(e, "event").as_str() {
            "run-started" if self.entries > 1 => {
                bail!("journal entry {seq} starts a second run in the same journal");
            }
            "run-started" => {
                self.session = text(e, "session");
                self.runbook = PathBuf::from(text(e, "runbook"));
                self.runbook_hash = text(e, "runbook_hash");
                self.backend = text(e, "backend");
                self.params = parse(e, "params", seq)?;
                self.started_at = text(e, "at");
            }
            "resumed" => self.ended = None,
            "snapshot" if text(e, "label") == "baseline" => {
                self.baseline = Some(parse(e, "snapshot", seq)?);
            }
            "snapshot" => {
                let label = text(e, "label");
                if let Some(u) = self
                    .unfinished
                    .as_mut()
                    .filter(|u| label == format!("before {}", u.step))
                {
                    u.before = Some(parse(e, "snapshot", seq)?);
                }
            }
            "preflight-passed" => self.preflight_passed = true,
            "step-started" => {
                self.unfinished = Some(Unfinished {
                    step,
                    started_at: text(e, "at"),
                    ..Unfinished::default()
                });
            }
            "answer" => {
                let count = self.answers.entry(step.clone()).or_default();
                *count = count.saturating_add(1);
                if let Some(u) = self.unfinished.as_mut().filter(|u| u.step == step) {
                    u.answers.push((text(e, "question"), text(e, "answer")));
                }
                if step == crate::engine::PREFLIGHT_QUESTIONS {
                    self.preflight_answers
                        .push((text(e, "question"), text(e, "answer")));
                }
            }
            "command" => {
                if let Some(u) = self.unfinished.as_mut().filter(|u| u.step == step) {
                    let out = e.get("output");
                    let code = out.and_then(|o| o.get("code")).and_then(Value::as_i64);
                    let timed_out = out
                        .and_then(|o| o.get("timed_out"))
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    u.command = Some(code == Some(0) && !timed_out);
                }
            }
            "locate" => {
                let drive = text(e, "drive");
                let on = e.get("on").and_then(Value::as_bool).unwrap_or(false);
                let switched = e
                    .get("outcome")
                    .and_then(|o| o.get("led"))
                    .and_then(Value::as_str)
                    == Some("switched");
                if let Some(u) = self.unfinished.as_mut().filter(|u| u.step == step) {
                    u.located = true;
                }
                self.leds_on.retain(|d| d != &drive);
                if on && switched {
                    self.leds_on.push(drive);
                }
            }
            "new-drive" => self.new_drive = Some(parse(e, "drive", seq)?),
            "quarantined" => self.quarantined.push(parse(e, "drive", seq)?),
            "step-completed" => {
                if self.unfinished.as_ref().is_some_and(|u| u.step == step) {
                    self.unfinished = None;
                }
                if !self.completed.contains(&step) {
                    self.completed.push(step);
                }
            }
            "halted" => {
                self.ended = Some(Ended::Stopped {
                    kind: "halted".into(),
                    step,
                    headline: text(e, "headline"),
                    details: parse(e, "details", seq)?,
                });
            }
            "refused" => {
                self.ended = Some(Ended::Stopped {
                    kind: "refused".into(),
                    step: "preflight".into(),
                    headline: "preflight refused to start: nothing was touched".into(),
                    details: parse(e, "reasons", seq)?,
                });
            }
            "aborted" => {
                self.ended = Some(Ended::Stopped {
                    kind: "aborted".into(),
                    step,
                    headline: text(e, "reason"),
                    details: vec![],
                });
            }
            "run-finished" => {
                self.ended = Some(Ended::Finished {
                    outcome: text(e, "outcome"),
                    exit_code: e.get("exit_code").and_then(Value::as_i64).unwrap_or(-1),
                });
            }
            _ => {}
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
