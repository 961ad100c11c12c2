//! Backends: where snapshots come from and where commands go.
//!
//! A [`Backend`] is one kind of storage (Linux md, the simulator, later btrfs,
//! ZFS, MegaRAID). The engine and the guard only ever see this trait, so a
//! dry-run against the simulator walks exactly the code a real swap walks.

pub mod btrfs;
pub mod disk;
pub mod led;
pub mod md;
pub mod megaraid;
pub mod process;
pub mod registry;
pub mod sim;
pub mod smart;
pub mod zfs;

use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::health::model::{Identity, Snapshot};
use crate::health::policy::DriveExpect;

/// Counters from the kernel's own reports: the kernel log's count of I/O
/// errors per drive, and the SMART/health asynchronous events an NVMe
/// controller sent (its uevents).
pub const KERNEL_COUNTER_NAMES: [&str; 2] =
    ["kernel.io_errors", disk::uevent::HEALTH_EVENT_COUNTER];

/// Every counter name any backend produces: what a runbook's `[guard]
/// tolerate` and `halt_on` may name.
pub fn counter_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = registry::counter_names()
        .chain(smart::COUNTER_NAMES.iter().copied())
        .chain(KERNEL_COUNTER_NAMES.iter().copied())
        .collect();
    names.sort_unstable();
    names
}

/// How much a look includes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Kernel state and cheap counters only (sysfs); for the fast watch loop.
    Fast,
    /// Everything, including SMART (slow: runs smartctl per drive).
    Full,
    /// For the watch loop: a fast look, plus SMART results that finished in
    /// the background since the last look. `smart_due` starts a new
    /// background round (unless one is still running). A slow `smartctl`
    /// never delays this look.
    Watch { smart_due: bool },
}

/// What an external command did. Goes into the journal verbatim.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutput {
    pub argv: Vec<String>,
    /// `None` when the process was killed by a signal or timed out.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }
}

/// Runs external programs as argv, never through a shell. Real processes in
/// production; canned outputs in tests.
pub trait CommandRunner {
    /// Err only when the program could not be started at all (missing,
    /// permission); a non-zero exit is a normal `CommandOutput`.
    fn run(&mut self, argv: &[String], timeout: Duration) -> Result<CommandOutput>;
}

/// A command started by [`Backend::start`], running while the engine keeps
/// watching the array.
pub trait Running {
    /// Its output once it has ended (or its timeout ended it); `None` while
    /// it still runs. Returns at once.
    fn try_finish(&mut self) -> Result<Option<CommandOutput>>;
    /// End it now (real processes: SIGTERM to its process group, a grace
    /// period, SIGKILL) and return what it printed.
    fn kill(&mut self) -> CommandOutput;
}

/// A command that had ended before anyone asked: what backends without
/// background processes return from [`Backend::start`].
pub struct Finished(pub CommandOutput);

impl Running for Finished {
    fn try_finish(&mut self) -> Result<Option<CommandOutput>> {
        Ok(Some(self.0.clone()))
    }

    fn kill(&mut self) -> CommandOutput {
        self.0.clone()
    }
}

/// What one argument of a command names on the system, for the quarantine
/// check (src/engine/quarantine.rs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgDevice {
    /// Nothing that exists, and nothing that looks like a device: an
    /// option, a name, a file still to be written.
    Nothing,
    /// An existing file, directory or character device: no drive.
    NotABlockDevice,
    /// A block device (`what`: `nvme0n1p1 259:1`) and the whole disks a
    /// write to it reaches: its own disk for a partition, the disks under a
    /// device-mapper or md device.
    Block { what: String, disks: Vec<String> },
    /// It names or looks like a device that cannot be resolved (missing,
    /// or unknown to sysfs): fail closed.
    Unresolved(String),
}

/// What happened when the tool tried to switch a locate LED.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "led", rename_all = "kebab-case")]
pub enum LocateOutcome {
    /// The LED was switched; `how` says through what.
    Switched { how: String },
    /// No LED control exists for this drive; the message says why.
    Unavailable { reason: String },
}

/// What a backend is told of a step the engine begins or ends: enough for
/// the simulator to play the technician (a physical step that expects the
/// target gone is a pull, one that expects a new drive is an insert).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepFacts<'a> {
    pub id: &'a str,
    pub physical: bool,
    /// What the step expects of the target and of the new drive.
    pub target: Option<DriveExpect>,
    pub new: Option<DriveExpect>,
}

/// Where the engine is, told to the backend so the simulator can play the
/// technician's hands and the scenario's events. Real backends ignore it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepPhase {
    Began,
    Ended,
}

/// One kind of storage.
pub trait Backend {
    /// A short name for messages and the journal: `md`, `sim`.
    fn name(&self) -> &'static str;

    /// Names of the arrays this backend can see.
    fn arrays(&mut self) -> Result<Vec<String>>;

    /// Why this kind of storage is not offered by this kernel at all (md:
    /// no `/proc/mdstat`), or `None`. Not an error, and not the same as
    /// "no arrays".
    fn unavailable(&self) -> Option<String> {
        None
    }

    /// The backend's own name for the array `given` names (md:
    /// `/dev/md/data` → `md127`), which must be one of `known`; the error
    /// says which arrays there are.
    fn canonical_array(&self, given: &str, known: &[String]) -> Result<String, String> {
        if known.iter().any(|k| k == given) {
            return Ok(given.to_string());
        }
        Err(format!(
            "`--array {}`: no such array (arrays here: {})",
            crate::sanitize::sanitize(given, false),
            known.join(", ")
        ))
    }

    /// One look at `array` and every whole disk present. Err when the array
    /// itself cannot be read; partial failures go into `Snapshot::problems`.
    fn snapshot(&mut self, array: &str, depth: Depth) -> Result<Snapshot>;

    /// Block until the kernel reports an array event or `timeout` passes.
    /// Real md waits on /proc/mdstat; the simulator advances simulated time.
    fn wait(&mut self, timeout: Duration) -> Result<()>;

    /// Things the technician should be told once (md: kernel device events
    /// are not available, so the watch relies on its timed polls).
    fn notices(&mut self) -> Vec<String> {
        Vec::new()
    }

    /// Run an external command as argv.
    fn execute(&mut self, argv: &[String], timeout: Duration) -> Result<CommandOutput>;

    /// Start an external command and return while it runs, so the engine
    /// can keep watching (a command step). No default on purpose: a
    /// wrapper that forgot it would run commands unwatched.
    fn start(&mut self, argv: &[String], timeout: Duration) -> Result<Box<dyn Running>>;

    /// Switch the locate LED of a drive's bay on or off.
    fn locate(&mut self, drive: &Identity, on: bool) -> Result<LocateOutcome>;

    /// What `arg`, an argument of a command about to run, names on this
    /// system (`stat` and sysfs). `None`, the default: the backend has no
    /// filesystem of its own (the simulator), and the engine matches
    /// `/dev/` paths by name against a look.
    fn resolve_arg(&mut self, _arg: &str) -> Option<ArgDevice> {
        None
    }

    /// The engine is starting or has finished `step`; `target` is the drive
    /// being replaced.
    fn step_phase(&mut self, _step: &StepFacts<'_>, _phase: StepPhase, _target: &Identity) {}

    /// Data canaries the backend plays itself (the simulator). `None`, the
    /// default: the engine writes and reads real files (src/canary.rs).
    fn canaries(&mut self) -> Option<&mut dyn crate::canary::Canaries> {
        None
    }
}
