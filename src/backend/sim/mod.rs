//! The simulator: in-memory arrays and drives that react as real ones do.
//!
//! [`SimBackend`] is a [`Backend`] like md, so a dry run walks the same
//! engine and guard as a real swap (safety contract point 7). It plays three
//! parts the real world plays on a host:
//!
//! - the drives (`pool.rs`): they vanish, come back, and names move
//!   (`names.rs`);
//! - the storage on them, one personality per backend (`personality.rs`;
//!   md: `md.rs`, looked at through `view.rs`, and its command-line tool
//!   `mdadm.rs`; a ZFS pool: `zpool.rs` and `zpool_cmd.rs`): members fail
//!   and recover, and command steps change the array as the backend's tool
//!   would;
//! - the technician's hands and the scenario's events, on the simulated
//!   clock: `wait` advances the shared [`SimClock`] and applies everything
//!   scheduled up to then, in order.
//!
//! Nothing here sleeps; a 24-hour rebuild is a few thousand polls.

mod btrfs;
mod btrfs_cmd;
mod btrfs_view;
mod canary;
pub mod machine;
mod md;
mod mdadm;
pub(crate) mod megaraid;
mod megaraid_cmd;
pub mod names;
mod personality;
mod pool;
mod running;
mod view;
mod zpool;
mod zpool_cmd;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::backend::StepFacts;
use crate::backend::sim::canary::SimCanary;
use crate::backend::sim::machine::{
    Action, CannedCommand, DriveGroup, During, Event, Machine, Probe, Technician,
};
use crate::backend::sim::personality::Personality;
use crate::backend::sim::pool::Pool;
use crate::backend::{Backend, CommandOutput, Depth, Finished, LocateOutcome, Running, StepPhase};
use crate::clock::{Clock, SimClock};
use crate::health::model::{DriveKey, Identity, Snapshot};
use crate::health::policy::DriveExpect;

/// The simulated hardware of one scenario.
pub struct SimBackend {
    clock: SimClock,
    pool: Pool,
    storage: Personality,
    /// Scenario drive labels, for log lines about drives that are absent.
    labels: Vec<String>,
    events: Vec<Event>,
    technician: Technician,
    commands: Vec<CannedCommand>,
    scenario_path: PathBuf,
    /// Spares not yet inserted, in scenario order.
    shelf: Vec<usize>,
    pending: Vec<Pending>,
    next_seq: u64,
    log: Vec<String>,
    canary: SimCanary,
}

/// Something scheduled on the simulated clock.
#[derive(Clone, Debug)]
struct Pending {
    at_ms: u64,
    /// Ties at the same millisecond apply in scheduling order.
    seq: u64,
    what: Work,
}

#[derive(Clone, Debug)]
enum Work {
    /// One scenario event's actions.
    Event { number: usize, actions: Vec<Action> },
    /// The technician pulls the drive with this key (the step's target).
    Pull { key: DriveKey, step: String },
    /// The technician inserts the next spare from the shelf.
    Insert { step: String },
    /// The storage notices that a member's device is gone (md: at the next
    /// write).
    Notice { member: usize },
}

impl SimBackend {
    /// Build the simulated machine; events `during = "baseline"` are applied
    /// now, before anyone looks.
    pub fn new(machine: Machine<'_>, clock: SimClock) -> Result<SimBackend> {
        let storage = Personality::new(machine.backend, machine.array, machine.drives)?;
        let pool = Pool::new(
            machine.drives,
            &machine.array.name,
            machine.array.partition,
            |c| storage.keeps_counter(c),
        );
        let shelf = machine
            .drives
            .iter()
            .enumerate()
            .filter(|(_, d)| d.group == DriveGroup::Spare)
            .map(|(i, _)| i)
            .collect();
        let mut sim = SimBackend {
            clock,
            pool,
            storage,
            labels: machine.drives.iter().map(|d| d.label()).collect(),
            events: machine.events.to_vec(),
            technician: machine.technician,
            commands: machine.commands.to_vec(),
            scenario_path: machine.source.to_path_buf(),
            shelf,
            pending: Vec::new(),
            next_seq: 0,
            log: Vec::new(),
            canary: SimCanary::default(),
        };
        let baseline: Vec<(usize, Vec<Action>)> = sim
            .events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.during == During::Baseline)
            .map(|(i, e)| (i + 1, e.actions.clone()))
            .collect();
        for (number, actions) in baseline {
            sim.apply_event(number, &actions);
        }
        // A drive gone before the baseline has long been noticed by the
        // storage (md failed it, btrfs lists it missing).
        let (noticed, rest): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut sim.pending)
            .into_iter()
            .partition(|p| matches!(p.what, Work::Notice { .. }));
        sim.pending = rest;
        for p in noticed {
            sim.perform(p.what);
        }
        let now = sim.now();
        let mut log = Vec::new();
        sim.storage.settle(&sim.pool, now, &mut log);
        sim.note(log);
        Ok(sim)
    }

    /// Hardware events since the last call, for the transcript:
    /// `[sim 00:00:05] technician pulled sdb (serial S3Z1NB0K100002, bay 1)`.
    pub fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    fn note(&mut self, lines: Vec<String>) {
        let stamp = stamp(self.now());
        self.log
            .extend(lines.into_iter().map(|l| format!("[sim {stamp}] {l}")));
    }

    fn schedule(&mut self, at_ms: u64, what: Work) {
        self.pending.push(Pending {
            at_ms,
            seq: self.next_seq,
            what,
        });
        self.next_seq += 1;
    }

    /// Apply everything due up to `until` (advancing the clock to each
    /// item's time), then move the clock to `until`. With `stop_early`,
    /// return as soon as something happened, at that moment, as a kernel
    /// event wakes a real waiter. Returns whether anything happened.
    fn run_until(&mut self, until: u64, stop_early: bool) -> bool {
        let mut happened = false;
        loop {
            let next = self
                .pending
                .iter()
                .enumerate()
                .min_by_key(|(_, p)| (p.at_ms, p.seq))
                .map(|(i, p)| (i, p.at_ms));
            let recovery = self.storage.due_at();
            let due = match (next, recovery) {
                (Some((_, at)), Some(done)) if done < at => Some((None, done)),
                (Some((i, at)), _) => Some((Some(i), at)),
                (None, Some(done)) => Some((None, done)),
                (None, None) => None,
            };
            let Some((index, at)) = due.filter(|(_, at)| *at <= until) else {
                break;
            };
            self.advance_to(at);
            match index {
                Some(i) => {
                    let p = self.pending.remove(i);
                    self.perform(p.what);
                }
                None => {
                    let mut log = Vec::new();
                    self.storage.on_due(&self.pool, at, &mut log);
                    self.note(log);
                }
            }
            happened = true;
            if stop_early {
                return true;
            }
        }
        self.advance_to(until);
        happened
    }

    fn advance_to(&mut self, at: u64) {
        let now = self.now();
        if at > now {
            self.clock.advance(Duration::from_millis(at - now));
        }
    }

    fn perform(&mut self, work: Work) {
        match work {
            Work::Event { number, actions } => self.apply_event(number, &actions),
            Work::Pull { key, step } => {
                let found = self
                    .pool
                    .drives
                    .iter()
                    .position(|d| d.present && d.identity().key() == key);
                match found {
                    Some(drive) => self.pull(drive, "technician pulled"),
                    None => self.note(vec![format!(
                        "technician found no drive {key} to pull during `{step}`"
                    )]),
                }
            }
            Work::Insert { step } => {
                if self.shelf.is_empty() {
                    self.note(vec![format!(
                        "technician has no spare drive left to insert during `{step}`"
                    )]);
                } else {
                    let drive = self.shelf.remove(0);
                    self.insert(drive);
                }
            }
            Work::Notice { member } => {
                let mut log = Vec::new();
                let now = self.now();
                self.storage.notice_gone(&self.pool, member, now, &mut log);
                self.note(log);
            }
        }
    }

    fn pull(&mut self, drive: usize, verb: &str) {
        let d = &self.pool.drives[drive];
        if !d.present {
            let line = format!("{verb} {}: it is not in the machine", self.labels[drive]);
            self.note(vec![line]);
            return;
        }
        let line = format!("{verb} {}", d.describe());
        self.note(vec![line]);
        self.pool.unplug(drive);
        let now = self.now();
        let mut log = Vec::new();
        let later = self.storage.unplugged(&self.pool, drive, now, &mut log);
        self.note(log);
        if let Some((member, after)) = later {
            let at = now + millis(after);
            self.schedule(at, Work::Notice { member });
        }
    }

    fn insert(&mut self, drive: usize) {
        if self.pool.drives[drive].present {
            let line = format!(
                "technician cannot insert {}: it is already in the machine",
                self.pool.describe(drive)
            );
            self.note(vec![line]);
            return;
        }
        self.shelf.retain(|&d| d != drive);
        self.pool.plug(drive);
        let line = format!("technician inserted {}", self.pool.describe(drive));
        self.note(vec![line]);
        let now = self.now();
        let mut log = Vec::new();
        self.storage.plugged(&self.pool, drive, now, &mut log);
        self.note(log);
    }

    fn apply_event(&mut self, number: usize, actions: &[Action]) {
        for action in actions {
            self.apply(number, action);
        }
        let now = self.now();
        let mut log = Vec::new();
        self.storage.settle(&self.pool, now, &mut log);
        self.note(log);
    }

    fn apply(&mut self, number: usize, action: &Action) {
        let tag = format!("event {number}:");
        match action {
            Action::Set {
                drive,
                counter,
                value,
            } => {
                let who = self.describe(*drive);
                let before = if self.storage.keeps_counter(counter) {
                    match self.storage.set_counter(*drive, counter, *value, &who) {
                        Ok(before) => before,
                        Err(line) => {
                            self.note(vec![format!("{tag} {line}")]);
                            return;
                        }
                    }
                } else {
                    self.pool.drives[*drive]
                        .counters
                        .insert(counter.clone(), *value)
                };
                let before = before.map_or("unset".to_string(), |v| v.to_string());
                self.note(vec![format!("{tag} {who}: {counter} {before} → {value}")]);
            }
            Action::Flags { drive, flags } => {
                let who = self.describe(*drive);
                let line = self.storage.add_flags(*drive, flags, &who);
                self.note(vec![format!("{tag} {line}")]);
            }
            Action::SmartFailed(drive) => {
                self.pool.drives[*drive].smart_passed = false;
                let line = format!(
                    "{tag} SMART overall health of {} fails",
                    self.describe(*drive)
                );
                self.note(vec![line]);
            }
            Action::Unreadable(probe) => {
                let line = match probe {
                    Probe::Array => format!("{tag} {}", self.storage.make_unreadable()),
                    Probe::Smart(d) => {
                        self.pool.drives[*d].smart_unreadable = true;
                        format!("{tag} SMART of {} can no longer be read", self.describe(*d))
                    }
                    Probe::Counters(d) => {
                        self.pool.drives[*d].counters_unreadable = true;
                        format!(
                            "{tag} error counters of {} can no longer be read",
                            self.describe(*d)
                        )
                    }
                };
                self.note(vec![line]);
            }
            Action::Fail(drive) => {
                let mut log = Vec::new();
                let who = self.describe(*drive);
                let now = self.now();
                self.storage.fail(&self.pool, *drive, &who, now, &mut log);
                let lines = log.into_iter().map(|l| format!("{tag} {l}")).collect();
                self.note(lines);
            }
            Action::Pull(drive) => self.pull(*drive, &format!("{tag} technician pulled")),
            Action::Vanish(drive) => self.pull(*drive, &format!("{tag} vanished from the bus:")),
            Action::Insert(drive) => self.insert(*drive),
            Action::ZeroCanary(None) => {
                self.canary.array_zeros = true;
                let line = format!(
                    "{tag} {} returns zeros where the data canary is",
                    self.storage.array_name()
                );
                self.note(vec![line]);
            }
            Action::ZeroCanary(Some(drive)) => {
                let key = self.pool.drives[*drive].identity().key();
                self.canary.zeroed.push(key);
                let line = format!(
                    "{tag} {} wrote zeros over its copy of the data canary",
                    self.describe(*drive)
                );
                self.note(vec![line]);
            }
        }
    }

    /// A drive for a log line: its description while present, else its
    /// scenario label.
    fn describe(&self, drive: usize) -> String {
        let d = &self.pool.drives[drive];
        if d.present {
            d.describe()
        } else {
            format!("{} (not in the machine)", self.labels[drive])
        }
    }

    fn canned(&self, argv: &[String]) -> Option<CommandOutput> {
        self.commands
            .iter()
            .find(|c| c.argv == argv)
            .map(|c| CommandOutput {
                argv: argv.to_vec(),
                code: c.code,
                stdout: c.stdout.clone(),
                stderr: c.stderr.clone(),
                timed_out: c.timed_out,
            })
    }
}

impl Backend for SimBackend {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn arrays(&mut self) -> Result<Vec<String>> {
        Ok(vec![self.storage.array_name().to_string()])
    }

    fn snapshot(&mut self, array: &str, depth: Depth) -> Result<Snapshot> {
        let now = self.now();
        self.run_until(now, false);
        self.storage.snapshot(&self.pool, array, depth, now)
    }

    fn wait(&mut self, timeout: Duration) -> Result<()> {
        let until = self.now().saturating_add(millis(timeout));
        self.run_until(until, true);
        Ok(())
    }

    fn execute(&mut self, argv: &[String], _timeout: Duration) -> Result<CommandOutput> {
        let now = self.now();
        self.run_until(now, false);
        if let Some(out) = self.canned(argv) {
            return Ok(out);
        }
        let Some(program) = argv.first() else {
            bail!("empty command line");
        };
        let base = program.rsplit('/').next().unwrap_or(program);
        let mut log = Vec::new();
        if let Some(out) = self
            .storage
            .command(&mut self.pool, base, argv, now, &mut log)
        {
            self.note(log);
            return out;
        }
        bail!(
            "no simulated program `{base}` in scenario `{}`: add a [[command]] with argv {:?} and its output",
            self.scenario_path.display(),
            argv
        )
    }

    fn start(&mut self, argv: &[String], timeout: Duration) -> Result<Box<dyn Running>> {
        let canned = self
            .commands
            .iter()
            .find(|c| c.argv == argv)
            .map(|c| c.duration);
        let mut output = self.execute(argv, timeout)?;
        // A modelled command that runs until the storage's work ends (a
        // foreground `btrfs balance start`).
        let duration = canned.unwrap_or_else(|| self.storage.runs_for(argv, self.now()));
        if duration.is_zero() {
            return Ok(Box::new(Finished(output)));
        }
        let now = self.now();
        let runs_for = if duration > timeout {
            output.code = None;
            output.timed_out = true;
            timeout
        } else {
            duration
        };
        self.note(vec![format!(
            "`{}` runs for {}",
            argv.join(" "),
            humantime::format_duration(runs_for)
        )]);
        Ok(Box::new(running::SimRunning {
            clock: self.clock.clone(),
            ends_at: now.saturating_add(millis(runs_for)),
            output,
            ended: None,
        }))
    }

    fn locate(&mut self, drive: &Identity, on: bool) -> Result<LocateOutcome> {
        let key = drive.key();
        let found = self
            .pool
            .drives
            .iter()
            .find(|d| d.present && d.identity().key() == key);
        let Some(d) = found else {
            return Ok(LocateOutcome::Unavailable {
                reason: format!("drive {key} is not in the machine"),
            });
        };
        let Some(slot) = d.slot.clone() else {
            return Ok(LocateOutcome::Unavailable {
                reason: format!(
                    "`{}` sits in no known bay, so there is no LED to switch",
                    d.dev
                ),
            });
        };
        let line = format!(
            "locate LED of bay {slot} ({}) {}",
            d.dev,
            if on { "on" } else { "off" }
        );
        self.note(vec![line]);
        Ok(LocateOutcome::Switched {
            how: "simulated enclosure LED".to_string(),
        })
    }

    fn canaries(&mut self) -> Option<&mut dyn crate::canary::Canaries> {
        let now = self.now();
        self.run_until(now, false);
        let (level, members) = self.storage.canary_view(&self.pool);
        self.canary.level = level;
        self.canary.array = self.storage.array_name().to_string();
        self.canary.members = members;
        Some(&mut self.canary)
    }

    fn step_phase(&mut self, step: &StepFacts<'_>, phase: StepPhase, target: &Identity) {
        let now = self.now();
        self.run_until(now, false);
        match phase {
            StepPhase::Began => self.begin(step, target, now),
            StepPhase::Ended => {
                // The technician stops with the step; scenario events keep
                // their times (they are anchored to the step's start).
                self.pending.retain(|p| match &p.what {
                    Work::Pull { step: s, .. } | Work::Insert { step: s } => s != step.id,
                    _ => true,
                });
            }
        }
    }
}

impl SimBackend {
    fn begin(&mut self, step: &StepFacts<'_>, target: &Identity, now: u64) {
        let mut event_pulls = false;
        let mut event_inserts = false;
        let mut due = Vec::new();
        for (i, e) in self.events.iter().enumerate() {
            if e.during != During::Step(step.id.to_string()) {
                continue;
            }
            event_pulls |= e.pulls();
            event_inserts |= e.inserts();
            due.push((now + millis(e.after), i + 1, e.actions.clone()));
        }
        for (at, number, actions) in due {
            self.schedule(at, Work::Event { number, actions });
        }
        if !step.physical {
            return;
        }
        if step.target == Some(DriveExpect::Absent) && !event_pulls {
            let at = now + millis(self.technician.pull_after);
            self.schedule(
                at,
                Work::Pull {
                    key: target.key(),
                    step: step.id.to_string(),
                },
            );
        }
        if step.new == Some(DriveExpect::Present) && !event_inserts {
            let at = now + millis(self.technician.insert_after);
            self.schedule(
                at,
                Work::Insert {
                    step: step.id.to_string(),
                },
            );
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `00:00:05`, or `00:00:05.250` off the whole second.
fn stamp(ms: u64) -> String {
    let secs = ms / 1000;
    let base = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    match ms % 1000 {
        0 => base,
        frac => format!("{base}.{frac:03}"),
    }
}

#[cfg(test)]
mod megaraid_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod zpool_tests;
