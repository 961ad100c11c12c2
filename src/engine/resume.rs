//! Resuming a run that stopped without finishing: a crash, a power cut, a
//! closed terminal, Ctrl-C.
//!
//! The journal is the only memory. [`Journaled::read`] replays it into what
//! the walk knew: the baseline, the target, the new drive, the drives
//! quarantined, the steps completed and the step in flight. [`resume`] then
//! walks on from there, under three rules that keep a resumed run as safe as
//! an unbroken one:
//!
//! - **Look first.** A fresh full snapshot is compared with the original
//!   baseline (the guard's baseline never moves) under what the step in
//!   flight allows. A survivor that degraded while nothing was watching is a
//!   halt, as it would have been had the tool been running.
//! - **Never twice without asking.** A step that was started and not
//!   finished is not silently run again. If its expectation already holds
//!   (the command ran, the drive was pulled) it is marked done, through the
//!   same checks as a step that finishes normally (acceptance of a new drive,
//!   quarantine). A command whose result was journaled is never run again:
//!   the engine only watches for its effect. Otherwise the technician is
//!   shown the step and the current state, and chooses.
//! - **Completed steps stay completed.** The walk continues with the first
//!   step not completed, in runbook order.
//!
//! Simulated runs cannot be resumed from another process: the simulated
//! hardware lived in the process that died. The crash tests therefore
//! resume in-process with the same simulator still alive, which models a
//! process crash while the hardware keeps its state (see `tests` below).

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use crate::backend::Depth;
use crate::engine::step::{COMMAND_SETTLE, operator_stop};
use crate::engine::{
    Outcome, Run, Stop, Walk, WalkResult, bind_drive, finish, initial_expect, preflight, record,
    walk,
};
use crate::health::guard::Observed;
use crate::health::model::{Drive, Snapshot};
use crate::journal::Event;
use crate::operator::{Answer, HaltReport, NoteLevel, Question, QuestionKind, StepView};
use crate::runbook::model::{DriveExpect, Runbook, Step, StepKind};
use crate::sanitize::sanitize;

mod replay;

pub use replay::{Ended, Journaled, Unfinished};

/// A resume: the replayed journal and what the command layer decided.
pub struct Resume<'j> {
    pub journaled: &'j Journaled,
    /// Bytes of a torn last line cut off when the journal was reopened.
    pub dropped_torn_bytes: u64,
    /// Why the run goes on although the runbook changed since it started.
    pub runbook_changed_reason: Option<String>,
}

/// Continue a journaled run. `run.journal` is the session's journal,
/// reopened for appending; `run.params` are the journaled parameters.
pub fn resume(run: &mut Run<'_>, from: &Resume<'_>) -> Result<Outcome> {
    let j = from.journaled;
    let array = run
        .params
        .get("array")
        .cloned()
        .context("the journal names no array")?;
    record(
        run,
        Event::Resumed {
            session: run.session.clone(),
            pid: std::process::id(),
            user: crate::journal::who(),
            runbook_hash: run.runbook.hash.clone(),
            runbook_changed_reason: from.runbook_changed_reason.clone(),
            dropped_torn_bytes: from.dropped_torn_bytes,
            completed: j.completed.clone(),
            unfinished: j.unfinished.as_ref().map(|u| u.step.clone()),
        },
    )?;
    if let Some(Ended::Stopped {
        kind,
        step,
        headline,
        details,
    }) = &j.ended
    {
        return finish_stopped(run, j, kind, step, headline, details);
    }
    let result = match &j.baseline {
        // Nothing was looked at yet, let alone touched: start from the top.
        None => walk(run, &array),
        Some(baseline) => resume_walk(run, &array, j, baseline.clone()),
    };
    finish(run, result)
}

/// The run had already stopped (halt, refusal, abort) when the process
/// died: record how it ended and say so again.
fn finish_stopped(
    run: &mut Run<'_>,
    j: &Journaled,
    kind: &str,
    step: &str,
    headline: &str,
    details: &[String],
) -> Result<Outcome> {
    let report = if kind == "refused" {
        super::view::refusal_report(run, details.to_vec())
    } else {
        HaltReport {
            step_id: step.to_string(),
            headline: headline.to_string(),
            details: details.to_vec(),
            guidance: run.runbook.halt_guidance(step).to_string(),
        }
    };
    let outcome = match kind {
        "halted" => Outcome::Halted(report.clone()),
        "refused" => Outcome::Refused(report.clone()),
        _ => Outcome::Aborted {
            step: step.to_string(),
            reason: headline.to_string(),
        },
    };
    match &outcome {
        Outcome::Aborted { .. } => run.operator.note(
            NoteLevel::Warn,
            &format!("this run had already been aborted at step `{step}`: {headline}"),
        ),
        Outcome::Refused(_) => run.operator.refused(&report),
        _ => run.operator.halted(&report),
    }
    // The LEDs it had switched on and not yet off.
    let drives = j
        .baseline
        .iter()
        .flat_map(|b| b.drives.iter().map(|d| d.id.clone()))
        .chain(j.new_drive.clone());
    for id in drives.filter(|id| j.leds_on.contains(&id.describe())) {
        if let Ok(off) = run.backend.locate(&id, false) {
            record(
                run,
                Event::Locate {
                    step: "cleanup".into(),
                    drive: id.describe(),
                    on: false,
                    outcome: off,
                },
            )?;
        }
    }
    record(
        run,
        Event::RunFinished {
            outcome: outcome.kind().into(),
            exit_code: outcome.exit_code().number(),
        },
    )?;
    Ok(outcome)
}

fn resume_walk(run: &mut Run<'_>, array: &str, j: &Journaled, baseline: Snapshot) -> WalkResult {
    let target = match preflight::resolve_target(run, &baseline) {
        Ok(t) => t,
        Err(stop) => return Err((vec![], stop)),
    };
    // What the target and new drive must look like now: replay the
    // expectations of the steps completed, in the order they completed.
    let mut target_now = initial_expect(Observed::of(Some(&target)));
    let mut new_now = None;
    for id in &j.completed {
        if let Some(step) = run.runbook.step(id) {
            if let Some(t) = step.expect.target {
                target_now = t;
            }
            if let Some(n) = step.expect.new {
                new_now = Some(n);
            }
        }
    }
    let new = j.new_drive.clone().map(|id| Drive {
        id,
        member: None,
        counters: BTreeMap::new(),
        smart: None,
        blank: None,
        faults: Vec::new(),
    });
    let mut leds_on = Vec::new();
    for described in &j.leds_on {
        for id in [Some(&target.id), new.as_ref().map(|d| &d.id)]
            .into_iter()
            .flatten()
        {
            if &id.describe() == described && !leds_on.contains(id) {
                leds_on.push(id.clone());
            }
        }
    }
    let mut walk = Walk::new(run, array, baseline, target, target_now);
    walk.new = new;
    walk.new_now = new_now;
    walk.quarantined = j.quarantined.clone();
    walk.leds_on = leds_on;
    walk.answered_before = j.preflight_answers.clone();
    walk.drive(|walk| walk.resume_all(j))
}

type StepResult<T> = std::result::Result<T, Stop>;

impl Walk<'_, '_> {
    fn resume_all(&mut self, j: &Journaled) -> StepResult<()> {
        let runbook: &Runbook = self.run.runbook;
        self.banner("resume");
        self.bind_params()?;
        if let Some(new) = self.new.clone() {
            bind_drive(&mut self.vars, "new", &new);
        }
        if !j.preflight_passed {
            preflight::check(self)?;
            self.record(Event::PreflightPassed)?;
        }
        let unfinished = j
            .unfinished
            .as_ref()
            .and_then(|u| runbook.step(&u.step).map(|s| (u, s)));
        let here = unfinished.map_or("resume", |(_, s)| s.id.as_str());

        // Look first: did anything degrade while nothing was watching?
        let fresh = self.look(here, Depth::Full)?;
        if let Some(key) = self.new.as_ref().map(Drive::key)
            && let Some(d) = fresh.drive(&key)
        {
            self.new = Some(d.clone());
        }
        // What the step in flight (or, between steps, the next one) may have
        // done by now, as its own opening guard allows: work the kernel was
        // doing (a copy, a rebuild) goes on while nothing watches.
        let next = unfinished
            .map(|(_, s)| s)
            .or_else(|| runbook.steps.iter().find(|s| !j.completed.contains(&s.id)));
        let allowed = match next {
            Some(step) => self.allowed(Some(step), false),
            None => self.allowed(None, true),
        };
        if let Err(stop) = self.guard(here, &fresh, &allowed) {
            return Err(unwatched(stop, &j.last_at));
        }
        self.record(Event::Snapshot {
            label: "resume".into(),
            snapshot: fresh.clone(),
        })?;
        // The canary the dead run planted cannot be trusted to be as it
        // was read last: plant it afresh when it was due.
        match runbook.canary.as_ref().map(|c| c.after.clone()) {
            Some(None) => self.plant_canary(None)?,
            Some(Some(after)) if j.completed.contains(&after) => self.plant_canary(Some(&after))?,
            _ => {}
        }
        let done = j.completed.len();
        let total = runbook.steps.len();
        self.run.operator.note(
            NoteLevel::Info,
            &format!(
                "resuming session `{}`: {done} of {total} steps were completed; nothing degraded while swapguard was not watching",
                sanitize(&j.session, false)
            ),
        );
        let lines = self.panel_for(&fresh);
        self.run.operator.health(&lines);

        if let Some((u, step)) = unfinished {
            let number = position(runbook, &step.id);
            self.settle(u, step, &fresh, number, total)?;
        }
        let mut skip: Vec<&str> = j.completed.iter().map(String::as_str).collect();
        skip.extend(unfinished.map(|(_, s)| s.id.as_str()));
        self.steps(&skip)
    }

    /// Decide what to do with the step that was in flight.
    fn settle(
        &mut self,
        u: &Unfinished,
        step: &Step,
        fresh: &Snapshot,
        number: usize,
        total: usize,
    ) -> StepResult<()> {
        if let Some(reason) = self.journaled_refusal(u) {
            // The answer that stops the run was given and journaled; the
            // abort it leads to only was not.
            return Err(Stop::Abort {
                step: step.id.clone(),
                reason,
            });
        }
        let has_expect = !step.expect.is_empty() || matches!(step.kind, StepKind::Wait { .. });
        let holds = has_expect && self.expectation_holds(step, fresh);
        // A command whose output was not journaled counts as run only when
        // the array shows a change since the look before the step acted:
        // its expectation did not hold then, or the target's or the new
        // drive's membership moved (MegaRAID `set missing`: `offln` to
        // `msng`, faulty both times). An expectation that already held and
        // nothing moved (`expect = { degraded = 1 }` around `sgdisk -R`)
        // says nothing about whether the command ran.
        let changed = holds
            && u.before.as_ref().is_some_and(|before| {
                !self.expectation_holds(step, before) || self.membership_moved(before, fresh)
            });
        let (done, why) = match &step.kind {
            StepKind::Confirm => (
                u.answers.iter().any(|(_, a)| a == "yes"),
                "the technician had confirmed it",
            ),
            StepKind::Locate { .. } => (u.located, "its LED had been switched"),
            // A command journaled as failed is not done, whatever the array
            // shows: the unbroken run stopped there (below).
            StepKind::Command { .. }
                if holds && (u.command == Some(true) || (u.command.is_none() && changed)) =>
            {
                (
                    true,
                    if u.command.is_some() {
                        "its command ran and its expected result is there"
                    } else {
                        "its expected result is there (the command's output was not journaled before the interruption)"
                    },
                )
            }
            StepKind::Command { .. } => (
                !has_expect && u.command == Some(true),
                "its command ran and succeeded",
            ),
            StepKind::Physical | StepKind::Wait { .. } => {
                (holds, "its expected result is already there")
            }
            StepKind::Check { .. } => {
                // A check only reads: running it again is always safe, and
                // its answer must be current.
                self.record(Event::ResumeDecision {
                    step: step.id.clone(),
                    decision: "run-again".into(),
                    detail: "a check only reads; it is checked again".into(),
                })?;
                return self.step(step, number, total);
            }
        };
        let id = step.id.clone();
        // A rebuild that finished while nothing was watching is further
        // along than the step expects, not a failure: the step is done, and
        // its end state is the one now seen.
        let advanced = if done || u.command == Some(false) {
            None
        } else {
            advanced(step)
        };
        if let Some(step) = advanced.filter(|a| self.expectation_holds(a, fresh)) {
            self.record(Event::ResumeDecision {
                step: id.clone(),
                decision: "done-already".into(),
                detail: "its result is there and has moved on (the rebuild finished)".into(),
            })?;
            return self.conclude(&step, self.target_before(u));
        }
        if done {
            self.record(Event::ResumeDecision {
                step: id.clone(),
                decision: "done-already".into(),
                detail: why.into(),
            })?;
            self.run.operator.note(
                NoteLevel::Good,
                &format!(
                    "step `{id}` was under way when the run stopped; {why}, so it counts as done"
                ),
            );
            return self.conclude(step, self.target_before(u));
        }
        if let (StepKind::Command { .. }, Some(succeeded)) = (&step.kind, u.command) {
            // The journal holds the command's result: it is never run twice.
            if !succeeded && !step.optional {
                return Err(Stop::Halt {
                    step: id.clone(),
                    headline: format!(
                        "step `{id}` failed before the run stopped (its command's output is in the journal)"
                    ),
                    violations: vec![],
                });
            }
            self.record(Event::ResumeDecision {
                step: id.clone(),
                decision: "watch-again".into(),
                detail: "the command ran; watching for its expected result".into(),
            })?;
            self.run.operator.note(
                NoteLevel::Info,
                &format!("step `{id}`: its command ran before the run stopped; it is not run again, swapguard watches for its result"),
            );
            self.watch(step, step.timeout.unwrap_or(COMMAND_SETTLE))?;
            return self.conclude(step, self.target_before(u));
        }

        // Nothing shows the step finished: show it and the state now, and
        // let the technician choose.
        let text = self.instruction(step)?;
        let argv = match &step.kind {
            StepKind::Command { run, .. } => Some(self.command_argv(&id, run)?),
            _ => None,
        };
        self.run
            .operator
            .show_step(&StepView {
                id: id.clone(),
                kind: step.kind.name().into(),
                number,
                total,
                text: sanitize(&text, true),
                argv: argv.clone(),
            })
            .map_err(|e| operator_stop(self.interrupted(), &id, e))?;
        let state = if has_expect {
            self.describe_wait(step, fresh)
        } else {
            "swapguard cannot see from the array whether it was done".into()
        };
        self.run.operator.note(
            NoteLevel::Warn,
            &sanitize(
                &format!(
                    "step `{id}` was started at {} and did not finish; now: {state}",
                    u.started_at
                ),
                false,
            ),
        );
        let prompt = match (&argv, u.answers.is_empty()) {
            (Some(argv), false) => format!(
                "The journal cannot tell whether `{}` ran before the run stopped. Start step `{id}` again (its confirmation is asked again)?",
                argv.join(" ")
            ),
            _ => format!("Start step `{id}` again from its beginning?"),
        };
        let answer = self
            .run
            .operator
            .ask(&Question {
                step_id: resume_question_id(&id),
                prompt: sanitize(&prompt, false),
                kind: QuestionKind::YesNo,
            })
            .map_err(|e| operator_stop(self.interrupted(), &id, e))?;
        self.record(Event::Answer {
            step: resume_question_id(&id),
            question: prompt,
            answer: crate::engine::step::answer_text(&answer),
        })?;
        if answer != Answer::Yes {
            self.record(Event::ResumeDecision {
                step: id.clone(),
                decision: "declined".into(),
                detail: state,
            })?;
            return Err(Stop::Abort {
                step: id.clone(),
                reason: format!(
                    "the technician chose not to start step `{id}` again after the interruption"
                ),
            });
        }
        self.record(Event::ResumeDecision {
            step: id,
            decision: "run-again".into(),
            detail: state,
        })?;
        self.step(step, number, total)
    }
}

/// The step with `rebuilding` expectations moved on to `in-sync`, if it has
/// any.
fn advanced(step: &Step) -> Option<Step> {
    let up = |e: Option<DriveExpect>| match e {
        Some(DriveExpect::Rebuilding) => Some(DriveExpect::InSync),
        other => other,
    };
    let mut s = step.clone();
    s.expect.target = up(step.expect.target);
    s.expect.new = up(step.expect.new);
    (s.expect != step.expect).then_some(s)
}

impl Walk<'_, '_> {
    /// Whether the target's or the new drive's membership (state and the
    /// backend's flags) differs between two looks.
    fn membership_moved(&self, before: &Snapshot, now: &Snapshot) -> bool {
        let member = |snap: &Snapshot, key| {
            snap.drive(key)
                .and_then(|d| d.member.as_ref())
                .map(|m| (m.state, m.flags.clone()))
        };
        let mut keys = vec![self.target.key()];
        keys.extend(self.new.as_ref().map(|d| d.key()));
        keys.iter().any(|k| member(before, k) != member(now, k))
    }

    /// How the target looked just before the unfinished step acted.
    fn target_before(&self, u: &Unfinished) -> Option<Drive> {
        u.before
            .as_ref()
            .and_then(|s| s.drive(&self.target.key()))
            .cloned()
    }

    /// The abort a journaled answer of the step in flight decided: a no, a
    /// typed serial that matches no drive of the run, a sign-off without a
    /// name. The questions are told apart by the engine's own wording
    /// (`confirm` and `sign_off` ask for "the last 4 characters of the
    /// serial", a sign-off for a name), which the crash tests pin.
    fn journaled_refusal(&self, u: &Unfinished) -> Option<String> {
        // (full serial, its last 4 characters) of the drives of the run
        let serials: Vec<(String, String)> = [Some(&self.target), self.new.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|d| d.id.serial.clone())
            .map(|serial| {
                let chars: Vec<char> = serial.chars().collect();
                let last: String = chars[chars.len().saturating_sub(4)..].iter().collect();
                (serial, last)
            })
            .collect();
        for (question, answer) in &u.answers {
            let answer = answer.trim();
            if answer == "no" {
                return Some("the technician answered no".into());
            }
            // The question names the drive by its serial.
            let asked = serials
                .iter()
                .find(|(serial, _)| question.contains(serial.as_str()));
            let right = match asked {
                Some((_, last)) => last == answer,
                None => serials.iter().any(|(_, last)| last == answer),
            };
            if question.contains("last 4 characters of the serial") && !right {
                return Some(format!(
                    "typed `{}`, which is not the end of the serial asked for; nothing was run",
                    sanitize(answer, false)
                ));
            }
            if question.contains("type your name") && answer.chars().count() < 2 {
                return Some(
                    "no second person signed off (no name given); nothing was done".into(),
                );
            }
        }
        None
    }
}

/// The key of the question a resume asks about the step in flight, in
/// scripted answers files: `resume-<step>`.
pub fn resume_question_id(step: &str) -> String {
    format!("resume-{step}")
}

fn position(runbook: &Runbook, id: &str) -> usize {
    runbook
        .steps
        .iter()
        .position(|s| s.id == id)
        .map_or(0, |i| i + 1)
}

/// A halt found by the first look of a resume happened while nothing was
/// watching: say so.
fn unwatched(stop: Stop, since: &str) -> Stop {
    match stop {
        Stop::Halt {
            step,
            headline,
            violations,
        } => Stop::Halt {
            step,
            headline: format!(
                "while swapguard was not running (last journal entry {since}): {headline}"
            ),
            violations,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests;
