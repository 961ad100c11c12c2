//! A command step's command runs while the watch goes on.
//!
//! The command runs as a child process (its own process group); the engine
//! stays on its watch loop, the same one that guards physical steps: kernel
//! events and cheap counters every `watch_poll`, SMART in the background
//! every `smart_poll`, the data canary every `[canary] every`. A survivor
//! that degrades while a twelve-hour restore runs halts the run then, not
//! twelve hours later. What happens to the command at a halt (or a Ctrl-C)
//! is the step's `on_halt`: `kill` (the default) ends its whole process
//! group, `wait` lets it finish within its timeout before the run stops.
//! Check steps (a two-hour `restic check`) run the same way and are ended
//! at a halt.

use std::time::Duration;

use crate::backend::{CommandOutput, Depth, Running};
use crate::engine::{Stop, Walk};
use crate::health::model::Snapshot;
use crate::journal::Event;
use crate::operator::NoteLevel;
use crate::runbook::model::{OnHalt, Step};
use crate::sanitize::sanitize;

type StepResult<T> = std::result::Result<T, Stop>;

impl Walk<'_, '_> {
    /// Run `argv` for a command step, watching until it ends; its output
    /// is journaled however it ends.
    pub(crate) fn run_watched(
        &mut self,
        step: &Step,
        argv: &[String],
        timeout: Duration,
    ) -> StepResult<CommandOutput> {
        match self.watched(step, argv, timeout)? {
            Ok(output) => {
                self.record(Event::Command {
                    step: step.id.clone(),
                    output: output.clone(),
                })?;
                Ok(output)
            }
            // Nothing ran; the halt entry records why.
            Err(e) => {
                Err(self.command_failed(step, &format!("cannot run `{}`: {e:#}", argv.join(" "))))
            }
        }
    }

    /// Start `argv` and watch until it ends: `Ok(Ok(output))` when it
    /// ended, `Ok(Err(_))` when it could not start. `Err(stop)` when the
    /// watch stopped the run meanwhile: the command was then ended or
    /// waited out as the step's `on_halt` says, and what it printed is
    /// journaled here; the caller journals the normal end.
    pub(crate) fn watched(
        &mut self,
        step: &Step,
        argv: &[String],
        timeout: Duration,
    ) -> StepResult<anyhow::Result<CommandOutput>> {
        let line = argv.join(" ");
        let mut running = match self.run.backend.start(argv, timeout) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        let mut told = false;
        let stop = loop {
            match running.try_finish() {
                Ok(Some(output)) => return Ok(Ok(output)),
                Ok(None) => {}
                Err(e) => break Stop::Error(e),
            }
            if let Err(stop) = self.watch_turn(step) {
                break stop;
            }
            // Said once the command has outlived one turn of the watch, so
            // a quick `mdadm --fail` does not clutter the screen.
            if !told {
                told = true;
                self.run.operator.note(
                    NoteLevel::Info,
                    &sanitize(
                        &format!("`{line}` is running; watching every drive meanwhile"),
                        false,
                    ),
                );
            }
        };
        let (output, what) = match step.on_halt {
            OnHalt::Kill => (running.kill(), "was stopped (on_halt = \"kill\")"),
            OnHalt::Wait => {
                self.run.operator.note(
                    NoteLevel::Warn,
                    &sanitize(
                        &format!(
                            "the run stops, but `{line}` must not be cut off (on_halt = \"wait\"): waiting for it to end, at most its timeout of {}",
                            humantime::format_duration(timeout)
                        ),
                        false,
                    ),
                );
                (
                    self.wait_out(&mut *running),
                    "was left to finish (on_halt = \"wait\")",
                )
            }
        };
        let _ = self.record(Event::Command {
            step: step.id.clone(),
            output,
        });
        Err(match stop {
            Stop::Halt {
                step: at,
                headline,
                violations,
            } => Stop::Halt {
                step: at,
                headline: format!("{headline}; the command `{line}` {what}"),
                violations,
            },
            other => other,
        })
    }

    /// One turn of the watch, for a physical step, a wait or a running
    /// command alike: wait for a kernel event or `watch_poll`, look (SMART
    /// on the background worker when due), guard, read the canary when due.
    /// Returns the look and the time it was taken.
    pub(crate) fn watch_turn(&mut self, step: &Step) -> StepResult<(Snapshot, u64)> {
        if self.interrupted() {
            return Err(Stop::Interrupt {
                step: step.id.clone(),
            });
        }
        let poll = self.poll();
        self.run.backend.wait(poll)?;
        for notice in self.run.backend.notices() {
            self.run.operator.note(NoteLevel::Warn, &notice);
        }
        let now_ms = self.run.clock.now_ms();
        let smart_poll = self.run.runbook.guard.smart_poll.as_millis() as u64;
        // SMART runs in the background during watches: a slow smartctl
        // must never delay noticing an md state change.
        let depth = Depth::Watch {
            smart_due: now_ms.saturating_sub(self.last_full_ms) >= smart_poll,
        };
        let now = self.look(&step.id, depth)?;
        let allowed = self.allowed(Some(step), false);
        self.guard(&step.id, &now, &allowed)?;
        self.watch_canary(&step.id)?;
        Ok((now, now_ms))
    }

    /// Let a command the run no longer waits on end by itself (its own
    /// timeout bounds this).
    fn wait_out(&mut self, running: &mut dyn Running) -> CommandOutput {
        let poll = self.poll();
        loop {
            match running.try_finish() {
                Ok(Some(output)) => return output,
                Ok(None) => {}
                Err(_) => return running.kill(),
            }
            if self.run.backend.wait(poll).is_err() {
                std::thread::sleep(poll);
            }
        }
    }
}
