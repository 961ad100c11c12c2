//! The engine: walks a runbook's steps with the guard around every step.
//!
//! The guard is not a step. Before the first step the engine takes a full
//! baseline and runs preflight; around every step it looks again (before,
//! during and after) and compares with the baseline through
//! `guard::compare`. During physical steps and waits it keeps watching:
//! woken by kernel events where the backend has them, polling cheap counters
//! every `watch_poll`, and SMART every `smart_poll`. The first violation
//! stops the run. The engine is the same for real hardware and for the
//! simulator; it never prints or reads stdin (the operator does).

mod accept;
mod canary;
mod command;
pub mod external_check;
mod preflight;
mod quarantine;
mod resume;
mod signoff;
mod step;
mod view;

pub(crate) use view::bind_drive;

/// The step id of the questions preflight asks (about a survivor that is
/// at risk or failing), for answers files.
pub const PREFLIGHT_QUESTIONS: &str = preflight::PREFLIGHT;
pub use view::panel_lines;

pub use resume::{Ended, Journaled, Resume, Unfinished, resume, resume_question_id};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::backend::{Backend, Depth, StepPhase};
use crate::clock::Clock;
use crate::health::guard::{self, Allowed, NewAllowance, Observed, Violation};
use crate::health::model::{Drive, Identity, Snapshot};
use crate::journal::{Event, Journal};
use crate::operator::live::describe_target;
use crate::operator::{Banner, HaltReport, NoteLevel, Operator};
use crate::runbook::model::{DriveExpect, Role, Runbook, Step};
use crate::runbook::template::{self, Vars};
use crate::sanitize::sanitize;

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    /// The guard stopped the run.
    Halted(HaltReport),
    /// Preflight refused to start.
    Refused(HaltReport),
    /// The technician said no, or typed the wrong confirmation.
    Aborted {
        step: String,
        reason: String,
    },
    /// Ctrl-C, SIGTERM or SIGHUP, at a safe point.
    Interrupted {
        step: String,
    },
    /// A physical step's change was not seen within its timeout and no one
    /// chose to keep waiting; nothing degraded. Resumable.
    TimedOut {
        step: String,
        reason: String,
    },
}

impl Outcome {
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Halted(_) => "halted",
            Outcome::Refused(_) => "refused",
            Outcome::Aborted { .. } => "aborted",
            Outcome::Interrupted { .. } => "interrupted",
            Outcome::TimedOut { .. } => "timed-out",
        }
    }

    /// The process exit code this outcome ends a run with.
    pub fn exit_code(&self) -> crate::exit::Code {
        use crate::exit::Code;
        match self {
            Outcome::Completed => Code::Success,
            Outcome::Halted(_) => Code::Halted,
            Outcome::Refused(_) => Code::Refused,
            Outcome::Aborted { .. } => Code::Aborted,
            Outcome::TimedOut { .. } => Code::TimedOut,
            Outcome::Interrupted { .. } => Code::Interrupted,
        }
    }

    /// The step the run stopped at (`preflight` before step 1), if it stopped.
    pub fn step(&self) -> Option<&str> {
        match self {
            Outcome::Completed => None,
            Outcome::Halted(r) | Outcome::Refused(r) => Some(&r.step_id),
            Outcome::Aborted { step, .. }
            | Outcome::Interrupted { step }
            | Outcome::TimedOut { step, .. } => Some(step),
        }
    }

    /// Everything said about why the run stopped, for matching in scenarios.
    pub fn text(&self) -> String {
        match self {
            Outcome::Completed => String::new(),
            Outcome::Halted(r) | Outcome::Refused(r) => {
                let mut t = r.headline.clone();
                for d in &r.details {
                    t.push('\n');
                    t.push_str(d);
                }
                t
            }
            Outcome::Aborted { reason, .. } | Outcome::TimedOut { reason, .. } => reason.clone(),
            Outcome::Interrupted { .. } => "interrupted".into(),
        }
    }
}

/// Everything a run needs. The CLI builds it; tests build it directly.
pub struct Run<'a> {
    pub runbook: &'a Runbook,
    /// Parameter values: at least the array and the target.
    pub params: BTreeMap<String, String>,
    pub backend: &'a mut dyn Backend,
    pub operator: &'a mut dyn Operator,
    pub clock: &'a dyn Clock,
    pub journal: &'a mut Journal,
    /// Set by the signal handler; checked at every safe point.
    pub interrupted: &'a AtomicBool,
    /// A label for the journal's run-started entry.
    pub session: String,
    /// The state directory: the quarantine registry lives there.
    pub state_dir: &'a std::path::Path,
    /// Told of every journal entry (webhooks; `crate::notify::Silent` for none).
    pub notify: &'a mut dyn crate::notify::Sink,
}

/// Why the walk stopped early. Internal: `execute` turns it into an Outcome.
pub(crate) enum Stop {
    Halt {
        step: String,
        headline: String,
        violations: Vec<Violation>,
    },
    Refuse {
        reasons: Vec<String>,
    },
    Abort {
        step: String,
        reason: String,
    },
    Interrupt {
        step: String,
    },
    TimedOut {
        step: String,
        reason: String,
    },
    Error(anyhow::Error),
}

impl From<anyhow::Error> for Stop {
    fn from(e: anyhow::Error) -> Self {
        Stop::Error(e)
    }
}

/// The live state of a walk.
pub(crate) struct Walk<'r, 'a> {
    run: &'r mut Run<'a>,
    array: String,
    baseline: Snapshot,
    target: Drive,
    /// What the target must look like now (after the last completed step).
    target_now: DriveExpect,
    /// The drive inserted during the run, once it appeared.
    new: Option<Drive>,
    new_now: Option<DriveExpect>,
    vars: Vars,
    /// Drives pulled (and quarantined) in this run.
    quarantined: Vec<Identity>,
    /// The target as the last look that saw it showed it (for the
    /// quarantine registry's last health).
    target_seen: Option<Drive>,
    /// LEDs this run switched on, to switch off whatever happens.
    leds_on: Vec<Identity>,
    last_full_ms: u64,
    /// Warnings already given (counter rises the policy only warns about),
    /// so each is said once.
    warned: std::collections::BTreeSet<String>,
    /// Preflight's questions answered before an interruption (question,
    /// answer); a resumed preflight uses them instead of asking again.
    answered_before: Vec<(String, String)>,
    /// The data canary, when the runbook names one.
    canary: canary::Watch,
    /// What the guard halted on (the step's allowances and the look), kept
    /// so the halt report can be completed by a full look once the run has
    /// stopped acting (see `Walk::drive`).
    halted_on: Option<(Allowed, Snapshot)>,
}

/// Walk the runbook. Journal write failures and operator failures (no
/// answer) are errors; everything else is an `Outcome`.
pub fn execute(run: &mut Run<'_>) -> Result<Outcome> {
    let array = run
        .params
        .get("array")
        .cloned()
        .context("no array given: pass `--array NAME`")?;
    record(
        run,
        Event::RunStarted {
            session: run.session.clone(),
            runbook: run.runbook.path.display().to_string(),
            runbook_name: run.runbook.name.clone(),
            runbook_hash: run.runbook.hash.clone(),
            backend: run.backend.name().to_string(),
            params: run.params.clone(),
            pid: std::process::id(),
            user: crate::journal::who(),
        },
    )?;
    let result = walk(run, &array);
    finish(run, result)
}

/// Switch off the LEDs the walk left on and record how the run ended.
pub(crate) fn finish(run: &mut Run<'_>, result: WalkResult) -> Result<Outcome> {
    let (outcome, leds) = match result {
        Ok((leds, ())) => (Ok(Outcome::Completed), leds),
        Err((leds, stop)) => (finish_stop(run, stop), leds),
    };
    for drive in leds {
        // Best effort: an LED left on is confusing, not dangerous.
        if let Ok(off) = run.backend.locate(&drive, false) {
            let _ = record(
                run,
                Event::Locate {
                    step: "cleanup".into(),
                    drive: drive.describe(),
                    on: false,
                    outcome: off,
                },
            );
        }
    }
    let outcome = outcome?;
    record(
        run,
        Event::RunFinished {
            outcome: outcome.kind().into(),
            exit_code: outcome.exit_code().number(),
        },
    )?;
    Ok(outcome)
}

fn finish_stop(run: &mut Run<'_>, stop: Stop) -> Result<Outcome> {
    match stop {
        Stop::Halt {
            step,
            headline,
            violations,
        } => {
            let details: Vec<String> = violations
                .iter()
                .map(|v| sanitize(&v.to_string(), false))
                .collect();
            record(
                run,
                Event::Halted {
                    step: step.clone(),
                    headline: headline.clone(),
                    violations,
                    details: details.clone(),
                },
            )?;
            let report = HaltReport {
                headline,
                details,
                guidance: run.runbook.halt_guidance(&step).to_string(),
                step_id: step,
            };
            run.operator.halted(&report);
            Ok(Outcome::Halted(report))
        }
        Stop::Refuse { reasons } => {
            let reasons: Vec<String> = reasons.iter().map(|r| sanitize(r, false)).collect();
            record(
                run,
                Event::Refused {
                    reasons: reasons.clone(),
                },
            )?;
            let report = view::refusal_report(run, reasons);
            run.operator.refused(&report);
            Ok(Outcome::Refused(report))
        }
        Stop::Abort { step, reason } => {
            record(
                run,
                Event::Aborted {
                    step: step.clone(),
                    reason: reason.clone(),
                },
            )?;
            run.operator.note(
                NoteLevel::Warn,
                &format!("aborted at step `{step}`: {reason}"),
            );
            Ok(Outcome::Aborted { step, reason })
        }
        Stop::Interrupt { step } => {
            record(run, Event::Interrupted { step: step.clone() })?;
            run.operator.note(
                NoteLevel::Warn,
                &format!("interrupted at step `{step}`; the journal has everything up to here"),
            );
            Ok(Outcome::Interrupted { step })
        }
        Stop::TimedOut { step, reason } => {
            record(
                run,
                Event::TimedOut {
                    step: step.clone(),
                    reason: reason.clone(),
                },
            )?;
            run.operator.note(
                NoteLevel::Warn,
                &format!(
                    "timed out at step `{step}`: {reason}; nothing degraded, and the journal has everything up to here"
                ),
            );
            Ok(Outcome::TimedOut { step, reason })
        }
        Stop::Error(e) => {
            let _ = record(
                run,
                Event::RunFinished {
                    outcome: format!("error: {e:#}"),
                    exit_code: crate::exit::Code::Failure.number(),
                },
            );
            Err(e)
        }
    }
}

pub(crate) fn record(run: &mut Run<'_>, event: Event) -> Result<()> {
    let at = run.clock.wall_ms();
    run.journal.record(at, &event)?;
    run.notify.observe(at, &event);
    notify_failures(run.notify.failures(), run.journal, at, run.operator)
}

/// Journal each failed notification and show it as a note: never fatal.
pub(crate) fn notify_failures(
    failures: Vec<crate::notify::Failure>,
    journal: &mut Journal,
    at: u64,
    operator: &mut dyn Operator,
) -> Result<()> {
    for f in failures {
        journal.record(
            at,
            &Event::NotifyFailed {
                notice: f.event.name().into(),
                target: f.target.clone(),
                attempts: f.attempts,
                error: f.error.clone(),
            },
        )?;
        operator.note(NoteLevel::Warn, &f.note());
    }
    Ok(())
}

type WalkResult = std::result::Result<(Vec<Identity>, ()), (Vec<Identity>, Stop)>;

fn walk(run: &mut Run<'_>, array: &str) -> WalkResult {
    walk_with(run, array, |walk| walk.all())
}

/// Preflight alone (`swapguard preflight`): the baseline, the target and
/// every preflight check of a real run, by the same code, and nothing
/// after: no canary, no step. `Completed` means a run would start.
pub fn preflight_only(run: &mut Run<'_>) -> Result<Outcome> {
    let array = run
        .params
        .get("array")
        .cloned()
        .context("no array given: pass `--array NAME`")?;
    let result = walk_with(run, &array, |walk| {
        walk.bind_params()?;
        preflight::check(walk)
    });
    finish(run, result)
}

fn walk_with(
    run: &mut Run<'_>,
    array: &str,
    body: impl FnOnce(&mut Walk<'_, '_>) -> std::result::Result<(), Stop>,
) -> WalkResult {
    let baseline = match run.backend.snapshot(array, Depth::Full) {
        Ok(s) => s,
        Err(e) => {
            return Err((
                vec![],
                Stop::Refuse {
                    reasons: vec![format!("cannot read array `{array}`: {e:#}")],
                },
            ));
        }
    };
    if let Err(e) = record(
        run,
        Event::Snapshot {
            label: "baseline".into(),
            snapshot: baseline.clone(),
        },
    ) {
        return Err((vec![], Stop::Error(e)));
    }
    let target = match preflight::resolve_target(run, &baseline) {
        Ok(t) => t,
        Err(stop) => return Err((vec![], stop)),
    };
    let target_now = initial_expect(Observed::of(Some(&target)));
    let walk = Walk::new(run, array, baseline, target, target_now);
    walk.drive(body)
}

fn initial_expect(observed: Observed) -> DriveExpect {
    match observed {
        Observed::InSync => DriveExpect::InSync,
        Observed::Rebuilding => DriveExpect::Rebuilding,
        Observed::Faulty => DriveExpect::Faulty,
        Observed::Spare | Observed::Removed => DriveExpect::Removed,
        Observed::Absent => DriveExpect::Absent,
    }
}

impl<'r, 'a> Walk<'r, 'a> {
    fn all(&mut self) -> std::result::Result<(), Stop> {
        self.banner("run");
        self.bind_params()?;
        preflight::check(self)?;
        self.record(Event::PreflightPassed)?;
        self.plant_canary(None)?;
        self.panel();
        self.steps(&[])
    }

    /// A walk at its start: nothing done yet after the baseline.
    fn new(
        run: &'r mut Run<'a>,
        array: &str,
        baseline: Snapshot,
        target: Drive,
        target_now: DriveExpect,
    ) -> Self {
        Walk {
            array: array.to_string(),
            target_now,
            target,
            new: None,
            new_now: None,
            vars: Vars::new(),
            quarantined: Vec::new(),
            target_seen: None,
            leds_on: Vec::new(),
            last_full_ms: baseline.at_ms,
            warned: std::collections::BTreeSet::new(),
            answered_before: Vec::new(),
            canary: canary::Watch::new(),
            halted_on: None,
            baseline,
            run,
        }
    }

    /// Walk `body` (a run from the top, or a resume), then end the canary
    /// and hand back the LEDs left on, whatever happened.
    fn drive(
        mut self,
        body: impl FnOnce(&mut Self) -> std::result::Result<(), Stop>,
    ) -> WalkResult {
        let mut result = body(&mut self);
        if let Err(stop) = &mut result {
            self.complete_halt(stop);
        }
        self.end_canary(result.as_mut().err());
        let leds = std::mem::take(&mut self.leds_on);
        match result {
            Ok(()) => Ok((leds, ())),
            Err(stop) => Err((leds, stop)),
        }
    }

    /// The step loop, one for a run and a resume: every step not in
    /// `skip`, in runbook order, each after a look at the interrupt flag.
    pub(crate) fn steps(&mut self, skip: &[&str]) -> std::result::Result<(), Stop> {
        let runbook: &Runbook = self.run.runbook;
        let total = runbook.steps.len();
        for (index, step) in runbook.steps.iter().enumerate() {
            if skip.contains(&step.id.as_str()) {
                continue;
            }
            if self.interrupted() {
                return Err(Stop::Interrupt {
                    step: step.id.clone(),
                });
            }
            self.step(step, index + 1, total)?;
        }
        self.run.operator.note(
            NoteLevel::Good,
            "all steps done; the array is guarded no longer",
        );
        Ok(())
    }

    fn record(&mut self, event: Event) -> Result<()> {
        record(self.run, event)
    }

    /// What this run is about, before anything is asked or done.
    pub(crate) fn banner(&mut self, verb: &str) {
        let banner = Banner {
            verb: verb.into(),
            runbook: self.run.runbook.name.clone(),
            file: self.run.runbook.path.display().to_string(),
            array: self.array.clone(),
            target: describe_target(&self.target.id),
            session: self.run.session.clone(),
            journal: self.run.journal.path().display().to_string(),
        };
        self.run.operator.banner(&banner);
    }

    fn bind_params(&mut self) -> Result<()> {
        let params = self.run.params.clone();
        crate::runbook::vars::check_params(&self.run.runbook.params, &params)
            .map_err(anyhow::Error::msg)?;
        for (name, value) in &params {
            self.vars.set(name.clone(), value.clone());
        }
        let target = self.target.clone();
        let target_param = self
            .run
            .runbook
            .params
            .iter()
            .find(|p| p.kind == crate::runbook::model::ParamKind::Member)
            .map_or("target".to_string(), |p| p.name.clone());
        bind_drive(&mut self.vars, &target_param, &target);
        // The bays not to touch: every other member at the baseline.
        let key = target.key();
        let survivors: Vec<String> = self
            .baseline
            .members()
            .filter(|d| d.key() != key)
            .map(|d| {
                let serial = d.id.serial.as_deref().unwrap_or("unknown");
                match &d.id.slot {
                    Some(slot) => format!("bay {slot} (serial {serial})"),
                    None => format!("{} (serial {serial}, bay unknown)", d.id.dev),
                }
            })
            .collect();
        self.vars.set(
            crate::runbook::vars::SURVIVORS,
            if survivors.is_empty() {
                "none".to_string()
            } else {
                survivors.join(", ")
            },
        );
        Ok(())
    }

    /// One look at the array; unreadable is a halt at `step`.
    fn look(&mut self, step: &str, depth: Depth) -> std::result::Result<Snapshot, Stop> {
        match self.run.backend.snapshot(&self.array, depth) {
            Ok(s) => {
                if matches!(depth, Depth::Full | Depth::Watch { smart_due: true }) {
                    self.last_full_ms = s.at_ms;
                }
                // Before anything judges this look: a target seen leaving
                // is quarantined now, whatever the guard says next.
                self.seen_leaving(step, &s)?;
                Ok(s)
            }
            Err(e) => Err(Stop::Halt {
                step: step.to_string(),
                headline: format!(
                    "cannot read array `{}`: the guard cannot see, so it stops",
                    self.array
                ),
                violations: vec![Violation {
                    subject: guard::Subject::Probe,
                    who: self.array.clone(),
                    what: "array readable".into(),
                    before: "yes".into(),
                    after: format!("no ({e:#})"),
                }],
            }),
        }
    }

    /// The end state of the wait that follows `step`, when `step` starts a
    /// copy onto the new drive (`new = "rebuilding"`) and that wait sees it
    /// through: on a small or fast array the copy can finish before the
    /// step's own look (the lab's hot replaces did), and that is the wait's
    /// end reached early, not a surprise.
    pub(crate) fn ahead_of(&self, step: &Step) -> Option<&crate::runbook::model::Expectation> {
        use crate::runbook::model::{StepKind, WaitUntil};
        if step.expect.new != Some(DriveExpect::Rebuilding) {
            return None;
        }
        let steps = &self.run.runbook.steps;
        let next = steps.get(steps.iter().position(|s| s.id == step.id)? + 1)?;
        matches!(
            next.kind,
            StepKind::Wait {
                until: WaitUntil::InSync
            }
        )
        .then_some(&next.expect)
    }

    /// What the guard allows right now, given the step's expectation (or
    /// none, for the state between steps).
    fn allowed(&self, during: Option<&Step>, finished: bool) -> Allowed {
        let expect = during.map(|s| &s.expect);
        let ahead = during.and_then(|s| self.ahead_of(s));
        let mut target_states = vec![self.target_now];
        if let Some(t) = expect.and_then(|e| e.target) {
            if finished {
                target_states = vec![t];
            } else if !target_states.contains(&t) {
                target_states.push(t);
            }
        }
        if let Some(t) = ahead.and_then(|e| e.target)
            && !target_states.contains(&t)
        {
            target_states.push(t);
        }
        let new = match (&self.new, expect.and_then(|e| e.new)) {
            (Some(drive), next) => {
                let mut states: Vec<DriveExpect> = self.new_now.into_iter().collect();
                if let Some(n) = next {
                    if finished {
                        states = vec![n];
                    } else if !states.contains(&n) {
                        states.push(n);
                    }
                }
                if let Some(n) = ahead.and_then(|e| e.new)
                    && !states.contains(&n)
                {
                    states.push(n);
                }
                NewAllowance::Bound(drive.key(), states)
            }
            (None, Some(_)) => NewAllowance::MayAppear,
            (None, None) => NewAllowance::NotYet,
        };
        let policy = &self.run.runbook.guard;
        let derived = self.baseline.array.degraded
            + u32::from(target_states.iter().any(|s| *s != DriveExpect::InSync));
        let max_degraded = expect
            .and_then(|e| e.degraded)
            .or(policy.max_degraded)
            .unwrap_or(derived);
        Allowed {
            target: self.target.key(),
            target_states,
            new,
            max_degraded,
        }
    }

    /// Compare with the baseline; any violation halts.
    fn guard(
        &mut self,
        step: &str,
        now: &Snapshot,
        allowed: &Allowed,
    ) -> std::result::Result<(), Stop> {
        // The pulled drive coming back is the incident's third mistake:
        // say so plainly instead of a generic state mismatch.
        if self.target_now == DriveExpect::Absent && now.drive(&self.target.key()).is_some() {
            let when = self
                .quarantined
                .iter()
                .any(|q| q.key() == self.target.key());
            return Err(Stop::Halt {
                step: step.to_string(),
                headline: format!(
                    "the drive that was pulled is back: {}{}; it must not be written to",
                    self.target.id.describe(),
                    if when {
                        ", quarantined in this run"
                    } else {
                        ""
                    }
                ),
                violations: vec![Violation {
                    subject: guard::Subject::Target,
                    who: self.target.id.describe(),
                    what: "present".into(),
                    before: "pulled".into(),
                    after: "inserted again".into(),
                }],
            });
        }
        let violations = guard::compare(&self.baseline, now, allowed, &self.run.runbook.guard);
        if violations.is_empty() {
            self.warn(step, now)?;
            return Ok(());
        }
        // The full look that lists everything else that moved waits until
        // the run has stopped acting (a running command killed): reading
        // SMART first would let the command write on for a SMART round.
        self.halted_on = Some((allowed.clone(), now.clone()));
        let headline = self.halt_headline(step, &violations);
        Err(Stop::Halt {
            step: step.to_string(),
            headline,
            violations,
        })
    }

    /// A guard halt, completed once the run has stopped acting: one full
    /// look (SMART included) adds everything else that moved since the
    /// baseline, and the look is journaled with the halt.
    fn complete_halt(&mut self, stop: &mut Stop) {
        // The headline stays: it was made from the first violation, which
        // stays first (a resume's "while swapguard was not running" too).
        let Stop::Halt {
            step, violations, ..
        } = stop
        else {
            return;
        };
        let Some((allowed, now)) = self.halted_on.take() else {
            return;
        };
        let (all, seen) = self.all_that_moved(std::mem::take(violations), &allowed);
        *violations = all;
        let _ = self.record(Event::Snapshot {
            label: format!("halt at {step}"),
            snapshot: seen.unwrap_or(now),
        });
    }

    /// Say each new rise of a warn-only counter (the ATA CRC count by
    /// default) once, and journal it; the NVMe error-log count only once
    /// per drive (see `guard::warning_key`). The run goes on.
    fn warn(&mut self, step: &str, now: &Snapshot) -> Result<()> {
        let rises = guard::warnings(
            &self.baseline,
            now,
            &self.target.key(),
            &self.run.runbook.guard,
        );
        for rise in rises {
            let line = sanitize(&rise.to_string(), false);
            if !self.warned.insert(guard::warning_key(&rise)) {
                continue;
            }
            self.run.operator.note(
                NoteLevel::Warn,
                &format!(
                    "{line}: {}; the run goes on (`halt_on` in [guard] makes it halt)",
                    guard::warning_reason(&rise.what)
                ),
            );
            self.record(Event::Warning {
                step: step.to_string(),
                detail: line,
            })?;
        }
        Ok(())
    }

    fn panel(&mut self) {
        let Ok(now) = self.run.backend.snapshot(&self.array, Depth::Fast) else {
            return;
        };
        let lines = self.panel_for(&now);
        self.run.operator.health(&lines);
    }

    /// Text with variables bound; an unbound variable is an error (lint
    /// should have caught it), never an empty hole.
    fn render(&self, text: &str) -> Result<String> {
        template::render(text, &self.vars)
    }

    fn drive_for(&self, role: Role) -> Option<&Drive> {
        match role {
            Role::Target => Some(&self.target),
            Role::New => self.new.as_ref(),
        }
    }

    fn interrupted(&self) -> bool {
        self.run.interrupted.load(Ordering::SeqCst)
    }

    fn phase(&mut self, step: &Step, phase: StepPhase) {
        let target = self.target.id.clone();
        self.run.backend.step_phase(&step.facts(), phase, &target);
    }

    fn poll(&self) -> Duration {
        self.run.runbook.guard.watch_poll
    }
}
