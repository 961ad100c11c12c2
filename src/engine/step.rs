//! One step: guard before, act, watch, guard after.

use std::time::Duration;

use crate::backend::{Depth, LocateOutcome, StepPhase};
use crate::engine::{Stop, Walk, accept, bind_drive, panel_lines};
use crate::health::guard::{Observed, satisfies};
use crate::health::model::{Drive, Identity, Snapshot};
use crate::journal::Event;
use crate::operator::live::Waiting;
use crate::operator::prompt::PromptInterrupted;
use crate::operator::{Answer, NoteLevel, Question, QuestionKind, StepView};
use crate::runbook::model::{Confirm, DriveExpect, Role, Step, StepKind, WaitUntil};
use crate::sanitize::sanitize;

/// How long a command's expectation may take to show in the kernel.
pub(crate) const COMMAND_SETTLE: Duration = Duration::from_secs(30);
/// How long a physical step may take when the runbook does not say.
const PHYSICAL_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long a wait may take when the runbook does not say.
const WAIT_TIMEOUT: Duration = Duration::from_secs(48 * 3600);

type StepResult<T> = std::result::Result<T, Stop>;

impl Walk<'_, '_> {
    pub(crate) fn step(&mut self, step: &Step, number: usize, total: usize) -> StepResult<()> {
        let id = step.id.clone();
        let text = self.instruction(step)?;
        self.record(Event::StepStarted {
            step: id.clone(),
            kind: step.kind.name().into(),
            text: text.clone(),
        })?;
        self.phase(step, StepPhase::Began);

        // Guard before: nothing may have moved since the last step ended,
        // except toward what this step expects. Work the kernel was already
        // doing can finish between steps (a small md replacement copy can
        // complete before its wait step starts: found in the QEMU lab).
        let before = self.look(&id, Depth::Full)?;
        let allowed = self.allowed(Some(step), false);
        self.guard(&id, &before, &allowed)?;
        self.verify_canary(&id)?;
        // How the target looked last, for the quarantine registry.
        let target_before = before.drive(&self.target.key()).cloned();
        self.record(Event::Snapshot {
            label: format!("before {id}"),
            snapshot: before,
        })?;

        let argv = match &step.kind {
            StepKind::Command { run, .. } => Some(self.command_argv(&id, run)?),
            _ => None,
        };
        self.run.operator.show_step(&StepView {
            id: id.clone(),
            kind: step.kind.name().into(),
            number,
            total,
            text: sanitize(&text, true),
            argv: argv.clone(),
        })?;

        match &step.kind {
            StepKind::Confirm => {
                self.ask_yes_no(step, "Done, and ready to go on?")?;
            }
            StepKind::Command { .. } => {
                self.confirm(step)?;
                self.sign_off(step)?;
                let argv = argv.unwrap_or_default();
                let named = self.argv_refusal(step, &argv)?;
                self.before_removal(step, &argv, &named)?;
                let timeout = step.timeout.unwrap_or(Duration::from_secs(600));
                // The watch goes on while the command runs (engine/command.rs).
                let output = self.run_watched(step, &argv, timeout)?;
                if !output.success() {
                    let reason = format!(
                        "`{}` {}: {}",
                        argv.join(" "),
                        match (output.timed_out, output.code) {
                            (true, _) => "timed out".to_string(),
                            (false, Some(c)) => format!("exited with status {c}"),
                            (false, None) => "was killed by a signal".to_string(),
                        },
                        sanitize(&output.stderr.trim().replace('\n', " / "), false)
                    );
                    if !step.optional {
                        return Err(self.command_failed(step, &reason));
                    }
                    self.run
                        .operator
                        .note(NoteLevel::Warn, &format!("optional step failed: {reason}"));
                }
                if !step.expect.is_empty() {
                    let deadline = step.timeout.unwrap_or(COMMAND_SETTLE);
                    self.watch(step, deadline)?;
                }
            }
            StepKind::Physical => {
                // Asked before the technician's hands go in, like a
                // command's confirmation before it runs.
                self.confirm(step)?;
                self.sign_off(step)?;
                let deadline = step.timeout.unwrap_or(PHYSICAL_TIMEOUT);
                self.run.operator.note(
                    NoteLevel::Info,
                    "watching every drive while you work; the step completes by itself when the change is seen",
                );
                self.watch(step, deadline)?;
            }
            StepKind::Wait { until } => {
                let deadline = step.timeout.unwrap_or(WAIT_TIMEOUT);
                match until {
                    WaitUntil::InSync => self.watch(step, deadline)?,
                }
            }
            StepKind::Locate { on } => self.locate(step, *on)?,
            StepKind::Check { check } => self.check_step(step, check)?,
        }

        self.conclude(step, target_before)
    }

    /// The end of a step: guard after, bind the new drive, quarantine,
    /// step-completed. A resume enters here for a step whose expectation
    /// already holds.
    pub(crate) fn conclude(&mut self, step: &Step, target_before: Option<Drive>) -> StepResult<()> {
        let id = step.id.clone();
        // Guard after: the step's end state must hold exactly.
        let after = self.look(&id, Depth::Full)?;
        if step.expect.new.is_some() && self.new.is_none() {
            self.bind_new(step, &after)?;
        }
        let allowed = self.allowed(Some(step), true);
        self.guard(&id, &after, &allowed)?;
        if !self.expectation_holds(step, &after) {
            return Err(self.unmet(step, &after));
        }
        self.verify_canary(&id)?;
        self.record(Event::Snapshot {
            label: format!("after {id}"),
            snapshot: after.clone(),
        })?;
        if let Some(t) = step.expect.target {
            self.target_now = t;
        }
        if let Some(n) = step.expect.new {
            self.new_now = Some(n);
        }
        if step.quarantine == Some(Role::Target) {
            // Usually done already, the moment the target was seen leaving.
            if self.target_seen.is_none() {
                self.target_seen = target_before;
            }
            self.quarantine_target(&id, &format!("pulled by step `{id}`"))?;
        }
        self.record(Event::StepCompleted { step: id.clone() })?;
        self.plant_canary(Some(&id))?;
        self.phase(step, StepPhase::Ended);
        let lines = panel_lines(
            &self.baseline,
            &after,
            &self.target.key(),
            self.new.as_ref().map(Drive::key).as_ref(),
        );
        self.run.operator.health(&lines);
        Ok(())
    }

    pub(crate) fn instruction(&self, step: &Step) -> anyhow::Result<String> {
        if let Some(say) = &step.say {
            return self.render(&say.text);
        }
        Ok(match &step.kind {
            StepKind::Confirm => format!("Confirm step `{}`.", step.id),
            StepKind::Command { .. } => "Running the command below.".into(),
            StepKind::Physical => format!("Physical step `{}`.", step.id),
            StepKind::Wait { .. } => "Waiting until the array is fully in sync again.".into(),
            StepKind::Check { check } => format!("Checking `{}`.", check.name),
            StepKind::Locate { on } => format!(
                "Blinking the locate LED of the {} drive.",
                match on {
                    Role::Target => "target",
                    Role::New => "new",
                }
            ),
        })
    }

    /// Ask the operator; no answer is an interruption (Ctrl-C, a signal)
    /// or an error (see [`operator_stop`]).
    pub(crate) fn ask(&mut self, step: &str, question: &Question) -> StepResult<Answer> {
        self.run
            .operator
            .ask(question)
            .map_err(|e| operator_stop(self.interrupted(), step, e))
    }

    fn ask_yes_no(&mut self, step: &Step, prompt: &str) -> StepResult<()> {
        let answer = self.ask(
            &step.id,
            &Question {
                step_id: step.id.clone(),
                prompt: prompt.into(),
                kind: QuestionKind::YesNo,
            },
        )?;
        self.record(Event::Answer {
            step: step.id.clone(),
            question: prompt.into(),
            answer: answer_text(&answer),
        })?;
        match answer {
            Answer::Yes => Ok(()),
            _ => Err(Stop::Abort {
                step: step.id.clone(),
                reason: "the technician answered no".into(),
            }),
        }
    }

    /// The confirmation a command step asks for before it runs, and a
    /// physical step before the technician starts.
    fn confirm(&mut self, step: &Step) -> StepResult<()> {
        let physical = matches!(step.kind, StepKind::Physical);
        match step.confirm {
            Confirm::None => Ok(()),
            Confirm::YesNo if physical => self.ask_yes_no(step, "Ready to start this step now?"),
            Confirm::YesNo => self.ask_yes_no(step, "Run this command now?"),
            Confirm::TypeSerial(role) => {
                let Some(drive) = self.drive_for(role) else {
                    return Err(Stop::Error(anyhow::anyhow!(
                        "step `{}` asks for the new drive's serial before a new drive was seen",
                        step.id
                    )));
                };
                let id = drive.id.clone();
                let (prompt, consequence) = if physical {
                    (
                        format!(
                            "Read the serial on the drive's label: type its last 4 characters to confirm it is {}",
                            id.describe()
                        ),
                        "do not start this step; touch no drive",
                    )
                } else {
                    (
                        format!(
                            "This cannot be undone. Type the last 4 characters of the serial of {} to go on",
                            id.describe()
                        ),
                        "nothing was run",
                    )
                };
                self.ask_serial4(step, &id, &prompt, "", consequence)?;
                Ok(())
            }
        }
    }

    /// Ask for the last four characters of `drive`'s serial (before anything
    /// irreversible), journal the answer, and abort unless it matches.
    /// `who` names the person in the refusal (empty for the technician);
    /// `consequence` says what did not happen.
    pub(crate) fn ask_serial4(
        &mut self,
        step: &Step,
        drive: &Identity,
        prompt: &str,
        who: &str,
        consequence: &str,
    ) -> StepResult<()> {
        let serial = drive.serial.clone().unwrap_or_default();
        let chars: Vec<char> = serial.chars().collect();
        if chars.len() < 4 {
            return Err(Stop::Error(anyhow::anyhow!(
                "cannot ask for the serial of {}: it has no serial of 4 or more characters",
                drive.describe()
            )));
        }
        let expected: String = chars[chars.len() - 4..].iter().collect();
        let prompt = sanitize(prompt, false);
        // The last four are what the technician types: masked on screen, so
        // they are read off the drive's label, not copied off it. The
        // journal keeps the question whole (a resume reads which drive was
        // asked about from it; drives of one batch differ only there).
        let shown = crate::operator::render::mask_serial(&prompt, &serial);
        let answer = self
            .run
            .operator
            .ask(&Question {
                step_id: step.id.clone(),
                prompt: shown,
                kind: QuestionKind::TypeExact {
                    expected: expected.clone(),
                },
            })
            .map_err(|e| operator_stop(self.interrupted(), &step.id, e))?;
        let typed = answer_text(&answer);
        self.record(Event::Answer {
            step: step.id.clone(),
            question: prompt,
            answer: typed.clone(),
        })?;
        if typed.trim() != expected {
            return Err(Stop::Abort {
                step: step.id.clone(),
                reason: format!(
                    "{who}typed `{}` but the serial ends in `{expected}`; {consequence}",
                    sanitize(typed.trim(), false)
                ),
            });
        }
        Ok(())
    }

    pub(crate) fn command_failed(&self, step: &Step, reason: &str) -> Stop {
        Stop::Halt {
            step: step.id.clone(),
            headline: format!("step `{}` failed: {reason}", step.id),
            violations: vec![],
        }
    }

    /// Watch until the step's expectation holds, the guard halts, or the
    /// deadline passes. A physical step shows a live line and the panel of
    /// every look, and its deadline is not a halt: see [`Walk::timed_out`].
    pub(crate) fn watch(&mut self, step: &Step, deadline: Duration) -> StepResult<()> {
        let start = self.run.clock.now_ms();
        let mut end = start.saturating_add(deadline.as_millis() as u64);
        let physical = matches!(step.kind, StepKind::Physical);
        let mut rate: Option<(u64, u64)> = None;
        let mut last_progress_ms = 0u64;
        loop {
            let (now, now_ms) = self.watch_turn(step)?;
            if self.expectation_holds(step, &now) {
                return Ok(());
            }
            if matches!(step.kind, StepKind::Wait { .. })
                && now_ms.saturating_sub(last_progress_ms) >= 1000
            {
                last_progress_ms = now_ms;
                self.progress(step, &now, &mut rate);
            }
            if physical {
                // What the watch turn just read, nothing more: no probe of
                // its own.
                let panel = panel_lines(
                    &self.baseline,
                    &now,
                    &self.target.key(),
                    self.new.as_ref().map(Drive::key).as_ref(),
                );
                let waiting = Waiting {
                    step_id: step.id.clone(),
                    what: self.awaited(step),
                    elapsed: Duration::from_millis(now_ms.saturating_sub(start)),
                    left: Duration::from_millis(end.saturating_sub(now_ms)),
                };
                self.run.operator.waiting(&waiting, &panel);
            }
            if now_ms >= end {
                if physical {
                    self.timed_out(step, deadline, now_ms.saturating_sub(start), &now)?;
                    end = now_ms.saturating_add(deadline.as_millis() as u64);
                    continue;
                }
                return Err(Stop::Halt {
                    step: step.id.clone(),
                    headline: format!(
                        "step `{}` did not complete within {}: {}",
                        step.id,
                        humantime::format_duration(deadline),
                        self.describe_wait(step, &now)
                    ),
                    violations: vec![],
                });
            }
        }
    }

    /// What a physical step waits for, for the live line.
    fn awaited(&self, step: &Step) -> String {
        match (step.expect.target, step.expect.new) {
            (Some(DriveExpect::Absent), _) => "the target to be pulled".into(),
            (_, Some(_)) if self.new.is_none() => "a new drive".into(),
            _ => format!("step `{}`", step.id),
        }
    }

    /// A physical step's timeout came and the change was not seen. That is
    /// not a degradation (the guard would have said so): at a terminal the
    /// technician is asked whether to keep waiting (Ok: wait another
    /// timeout); without one, or on a no, the run ends as timed out, which
    /// `swapguard resume` continues. Question and answer are journaled.
    fn timed_out(
        &mut self,
        step: &Step,
        deadline: Duration,
        waited_ms: u64,
        now: &Snapshot,
    ) -> StepResult<()> {
        let waited = humantime::format_duration(Duration::from_secs(waited_ms / 1000)).to_string();
        let seen = sanitize(&self.not_seen(step, now), false);
        let timeout = humantime::format_duration(deadline).to_string();
        let (question, answer) = if self.run.operator.interactive() {
            let situation = format!(
                "step `{}` has waited {waited}: {seen}; every drive is still watched",
                step.id
            );
            self.run.operator.note(NoteLevel::Warn, &situation);
            let prompt = format!("Keep waiting another {timeout}?");
            let answer = self.ask(
                &step.id,
                &Question {
                    step_id: step.id.clone(),
                    prompt: prompt.clone(),
                    kind: QuestionKind::YesNo,
                },
            )?;
            let keep = answer == Answer::Yes;
            (
                format!("{situation}. {prompt}"),
                if keep { "keep waiting" } else { "stop" },
            )
        } else {
            (String::new(), "no terminal")
        };
        self.record(Event::StepTimeout {
            step: step.id.clone(),
            waited: waited.clone(),
            seen: seen.clone(),
            question,
            answer: answer.into(),
        })?;
        if answer == "keep waiting" {
            self.run.operator.note(
                NoteLevel::Info,
                &format!("waiting another {timeout}; the step completes by itself when the change is seen"),
            );
            return Ok(());
        }
        Err(Stop::TimedOut {
            step: step.id.clone(),
            reason: format!(
                "step `{}` waited {waited} and {seen}{}",
                step.id,
                if answer == "stop" {
                    "; the technician chose to stop waiting"
                } else {
                    "; no one at a terminal to ask whether to keep waiting"
                }
            ),
        })
    }

    /// What a timed-out physical step did not see, plainly.
    fn not_seen(&self, step: &Step, now: &Snapshot) -> String {
        match (step.expect.target, step.expect.new) {
            (Some(DriveExpect::Absent), _)
                if !satisfies(
                    Observed::of(now.drive(&self.target.key())),
                    DriveExpect::Absent,
                ) =>
            {
                format!(
                    "the target {} has not been seen leaving",
                    self.target.id.describe()
                )
            }
            (_, Some(_)) if self.new.is_none() => "no new drive has been seen arriving".into(),
            _ => self.describe_wait(step, now),
        }
    }

    fn progress(&mut self, step: &Step, now: &Snapshot, rate: &mut Option<(u64, u64)>) {
        if let Some(p) = crate::engine::view::wait_progress(&step.id, now, rate) {
            self.run.operator.progress(&p);
        }
    }

    pub(crate) fn describe_wait(&self, step: &Step, now: &Snapshot) -> String {
        let mut parts = Vec::new();
        if let Some(t) = step.expect.target {
            parts.push(format!(
                "expected the target {} to be {}, it is {}",
                self.target.id.describe(),
                t.name(),
                Observed::of(now.drive(&self.target.key()))
            ));
        }
        if let Some(n) = step.expect.new {
            match &self.new {
                Some(d) => parts.push(format!(
                    "expected the new drive {} to be {}, it is {}",
                    d.id.describe(),
                    n.name(),
                    Observed::of(now.drive(&d.key()))
                )),
                None => parts.push("no new drive appeared".into()),
            }
        }
        if let Some(sync) = &now.array.sync {
            parts.push(format!(
                "{} at {:.1}%",
                sync.action,
                sync.fraction() * 100.0
            ));
        }
        let wanted = self.baseline.array.tolerated().min(1);
        if matches!(step.kind, StepKind::Wait { .. }) && now.array.redundancy_left < wanted {
            parts.push(format!(
                "`{}` can lose {} more members, not {wanted} (state: {})",
                now.array.name, now.array.redundancy_left, now.array.state
            ));
        }
        if parts.is_empty() {
            "the expected change was not seen".into()
        } else {
            parts.join("; ")
        }
    }

    /// Drives that appeared since the baseline (not the target).
    fn appeared<'s>(&self, now: &'s Snapshot) -> Vec<&'s Drive> {
        now.drives
            .iter()
            .filter(|d| self.baseline.drive(&d.key()).is_none())
            .collect()
    }

    pub(crate) fn expectation_holds(&self, step: &Step, now: &Snapshot) -> bool {
        // The copy the step started may have finished already, in part or
        // in whole: each drive may be where this step or the next wait puts
        // it (see `ahead_of`; ZFS detaches the old leaf a moment after the
        // new one is in sync).
        let ahead = self.ahead_of(step);
        let holds = |this: Option<DriveExpect>, next: Option<DriveExpect>, observed: Observed| {
            this.is_none_or(|t| satisfies(observed, t))
                || next.is_some_and(|n| this.is_some() && satisfies(observed, n))
        };
        if !holds(
            step.expect.target,
            ahead.and_then(|a| a.target),
            Observed::of(now.drive(&self.target.key())),
        ) {
            return false;
        }
        if step.expect.new.is_some() {
            let observed = match &self.new {
                Some(d) => Observed::of(now.drive(&d.key())),
                None => match self.appeared(now).as_slice() {
                    [one] => Observed::of(Some(one)),
                    _ => Observed::Absent,
                },
            };
            if !holds(step.expect.new, ahead.and_then(|a| a.new), observed) {
                return false;
            }
        }
        if let StepKind::Wait {
            until: WaitUntil::InSync,
        } = step.kind
        {
            // Redundancy back as well: a btrfs file system with a `single`
            // chunk left by a degraded mount has no slot missing, yet that
            // data has one copy (redundancy 0) until a balance converts it.
            let array_settled = now.array.sync.is_none()
                && now.array.degraded <= self.baseline.array.degraded
                && now.array.redundancy_left >= self.baseline.array.tolerated().min(1);
            if !array_settled {
                return false;
            }
        }
        true
    }

    fn unmet(&self, step: &Step, now: &Snapshot) -> Stop {
        Stop::Halt {
            step: step.id.clone(),
            headline: format!(
                "step `{}` did not do what it should: {}",
                step.id,
                self.describe_wait(step, now)
            ),
            violations: vec![],
        }
    }

    /// The drive this step inserted: exactly one new drive, which must pass
    /// the acceptance rules before anything writes to it.
    fn bind_new(&mut self, step: &Step, after: &Snapshot) -> StepResult<()> {
        let appeared: Vec<Drive> = self.appeared(after).into_iter().cloned().collect();
        let drive = match appeared.as_slice() {
            [one] => one.clone(),
            [] => return Err(self.unmet(step, after)),
            many => {
                return Err(Stop::Halt {
                    step: step.id.clone(),
                    headline: format!(
                        "{} drives appeared during step `{}`; exactly one was expected",
                        many.len(),
                        step.id
                    ),
                    violations: many
                        .iter()
                        .map(|d| crate::health::guard::Violation {
                            subject: crate::health::guard::Subject::OtherDrive,
                            who: d.id.describe(),
                            what: "present".into(),
                            before: "absent".into(),
                            after: "appeared".into(),
                        })
                        .collect(),
                });
            }
        };
        accept::check(self, step, &drive)?;
        self.record(Event::NewDrive {
            step: step.id.clone(),
            drive: drive.id.clone(),
        })?;
        bind_drive(&mut self.vars, "new", &drive);
        self.run.operator.note(
            NoteLevel::Good,
            &sanitize(
                &format!("new drive accepted: {}", drive.id.describe()),
                false,
            ),
        );
        self.new = Some(drive);
        Ok(())
    }

    fn locate(&mut self, step: &Step, on: Role) -> StepResult<()> {
        let Some(drive) = self.drive_for(on).map(|d| d.id.clone()) else {
            return Err(Stop::Error(anyhow::anyhow!(
                "step `{}` locates the new drive before a new drive was seen",
                step.id
            )));
        };
        let outcome = self.run.backend.locate(&drive, true)?;
        self.record(Event::Locate {
            step: step.id.clone(),
            drive: drive.describe(),
            on: true,
            outcome: outcome.clone(),
        })?;
        match outcome {
            LocateOutcome::Switched { how } => {
                self.leds_on.push(drive.clone());
                self.run.operator.note(
                    NoteLevel::Good,
                    &sanitize(
                        &format!("locate LED blinking for {} ({how})", drive.describe()),
                        false,
                    ),
                );
                Ok(())
            }
            LocateOutcome::Unavailable { reason } => {
                let text = sanitize(
                    &format!(
                        "no locate LED for {}: {reason}; identify the drive by its serial instead",
                        drive.describe()
                    ),
                    false,
                );
                if step.optional {
                    self.run.operator.note(NoteLevel::Warn, &text);
                    Ok(())
                } else {
                    Err(Stop::Halt {
                        step: step.id.clone(),
                        headline: text,
                        violations: vec![],
                    })
                }
            }
        }
    }
}

/// A question that got no answer: an interrupt when a signal arrived or the
/// technician pressed Ctrl-C at the prompt (read as a key in raw mode, so
/// no signal came: the prompt's own error type says it, and the signal
/// flag is not raced for), otherwise an error.
pub(crate) fn operator_stop(interrupted: bool, step: &str, e: anyhow::Error) -> Stop {
    let ctrl_c = e.chain().any(|cause| {
        cause.is::<PromptInterrupted>()
            || cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::Interrupted)
    });
    if interrupted || ctrl_c {
        Stop::Interrupt {
            step: step.to_string(),
        }
    } else {
        Stop::Error(e)
    }
}

pub(crate) fn answer_text(answer: &Answer) -> String {
    match answer {
        Answer::Yes => "yes".into(),
        Answer::No => "no".into(),
        Answer::Text(t) => t.clone(),
    }
}
