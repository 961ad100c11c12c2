//! What the simulator is given: one array, its drives, how the
//! technician's hands behave, what goes wrong and when, and the canned
//! outputs of programs it does not model.
//!
//! This is the simulator's own vocabulary. The scenario language
//! (`src/scenario.rs`, docs/scenario-format.md) reads a file into these
//! types; the simulator never reads a file itself.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::backend::sim::names::Family;
use crate::health::model::MemberState;

/// Everything the simulated machine starts from, borrowed from whatever
/// described it (a scenario file).
#[derive(Clone, Copy, Debug)]
pub struct Machine<'a> {
    /// The file that described the machine, for messages.
    pub source: &'a Path,
    /// The storage to play on the drives: the runbook's `backend` (`md`).
    pub backend: &'a str,
    pub array: &'a ArraySpec,
    /// Members, then spares, then others; events refer to drives by index
    /// into this list.
    pub drives: &'a [DriveSpec],
    pub technician: Technician,
    pub events: &'a [Event],
    pub commands: &'a [CannedCommand],
}

/// `[array]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArraySpec {
    /// Kernel name without `/dev/`, e.g. `md0`.
    pub name: String,
    pub level: Level,
    /// Slots the array has; defaults to the number of members that are not
    /// spares.
    pub raid_disks: u32,
    /// Simulated time a full recovery or replacement copy takes.
    pub rebuild_time: Duration,
    /// ZFS: the partition of each member the pool uses (members carry
    /// partitions 1 to this one, as a Proxmox boot mirror carries BIOS
    /// boot, ESP and ZFS); `None`: the pool uses whole disks.
    pub partition: Option<u32>,
    /// btrfs: where the file system is mounted (its `name` is its UUID).
    pub mount: Option<String>,
    /// MegaRAID: the controller starts a rebuild by itself when a good
    /// drive goes into the bay of a missing row (`None`: not given; the
    /// personality's default is on, as controllers ship).
    pub auto_rebuild: Option<bool>,
    /// MegaRAID: the drive group the virtual drive lives on (`None`: the
    /// VD's own number).
    pub drive_group: Option<u32>,
}

/// RAID level of the simulated array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Raid1,
    Raid5,
    Raid6,
    Raid10,
    /// A ZFS mirror vdev.
    Mirror,
    /// ZFS raidz with one, two or three parity leaves.
    Raidz1,
    Raidz2,
    Raidz3,
    /// btrfs only: three copies of everything.
    Raid1c3,
}

impl Level {
    /// The backend's spelling: md `raid1`, ZFS `mirror`, `raidz2`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Raid1 => "raid1",
            Level::Raid5 => "raid5",
            Level::Raid6 => "raid6",
            Level::Raid10 => "raid10",
            Level::Mirror => "mirror",
            Level::Raidz1 => "raidz1",
            Level::Raidz2 => "raidz2",
            Level::Raidz3 => "raidz3",
            Level::Raid1c3 => "raid1c3",
        }
    }

    /// Whether this is a ZFS vdev layout rather than an md level.
    pub fn is_zfs(self) -> bool {
        matches!(
            self,
            Level::Mirror | Level::Raidz1 | Level::Raidz2 | Level::Raidz3
        )
    }

    /// How many slots may be missing before the array loses data. RAID10 is
    /// counted as surviving one loss (the worst case for a near layout).
    pub fn tolerates(self, raid_disks: u32) -> u32 {
        match self {
            Level::Raid1 | Level::Mirror => raid_disks.saturating_sub(1),
            Level::Raid5 | Level::Raid10 | Level::Raidz1 => 1,
            Level::Raid6 | Level::Raidz2 | Level::Raid1c3 => 2,
            Level::Raidz3 => 3,
        }
    }
}

/// The drive a btrfs devid names at the start: the btrfs personality gives
/// members devids in scenario order from 1 (`sim/btrfs.rs`).
pub fn btrfs_devid_drive(drives: &[DriveSpec], devid: &str) -> Option<usize> {
    let n: usize = devid.parse().ok().filter(|n| *n > 0)?;
    drives
        .iter()
        .enumerate()
        .filter(|(_, d)| d.group == DriveGroup::Member)
        .nth(n - 1)
        .map(|(i, _)| i)
}

/// Where a drive sits at the start of the scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriveGroup {
    /// `[array] members`: in the array and present.
    Member,
    /// `[array] spares`: on the shelf, inserted by the technician in order.
    Spare,
    /// `[array] others`: present, not in the array (e.g. the boot disk).
    Other,
}

/// One drive of the scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveSpec {
    pub group: DriveGroup,
    /// Kernel name at the start. Always set for members and others; for a
    /// spare it is optional and only says which name family it joins (`sd`,
    /// `vd`, `nvme`): an inserted drive takes the lowest free name.
    pub dev: Option<String>,
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    /// Bay or slot.
    pub slot: Option<String>,
    pub size_bytes: u64,
    /// Member state at the start (members only; `InSync` otherwise).
    pub state: MemberState,
    pub smart_passed: bool,
    /// Counters at the start: the family's defaults merged with the file's.
    pub counters: BTreeMap<String, u64>,
    /// Whether the drive carries no signature (members never are).
    pub blank: bool,
    /// The kernel name family an inserted drive's name comes from.
    pub family: Family,
    /// What a RAID controller knows of the drive (MegaRAID scenarios only).
    pub controller: ControllerDrive,
}

/// A drive as a MegaRAID controller holds it: the scenario's `intf`,
/// `pd_state`, `dg`, `foreign` and `smart_alert` keys. All default to a
/// plain drive: interface from the kernel name, unconfigured good, no
/// foreign configuration, no SMART alert.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ControllerDrive {
    /// `SATA`, `SAS` or `NVMe`.
    pub intf: Option<String>,
    /// A drive outside the array's drive group: `UGood`, `UBad`, `JBOD`,
    /// `GHS` (global hot spare), `DHS` (dedicated to the array's group),
    /// or `Onln` in another drive group (with `dg`).
    pub pd_state: Option<String>,
    /// The drive group of a drive in another drive group.
    pub dg: Option<u32>,
    /// The drive carries another controller's configuration.
    pub foreign: bool,
    /// "S.M.A.R.T alert flagged by drive" = Yes.
    pub smart_alert: bool,
}

impl ControllerDrive {
    /// Whether any controller key was given.
    pub fn given(&self) -> bool {
        *self != ControllerDrive::default()
    }
}

impl DriveSpec {
    /// How messages name the drive: its starting kernel name, else serial.
    pub fn label(&self) -> String {
        match (&self.dev, &self.serial) {
            (Some(dev), _) if self.group != DriveGroup::Spare => dev.clone(),
            (_, Some(serial)) => serial.clone(),
            (Some(dev), None) => dev.clone(),
            (None, None) => "unnamed drive".to_string(),
        }
    }
}

/// `[technician]`: how long the simulated technician takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Technician {
    /// From the start of a physical step expecting `target = "absent"` to the
    /// pull. Default 5 s.
    pub pull_after: Duration,
    /// From the start of a physical step expecting `new = "present"` to the
    /// insertion. Default 5 s.
    pub insert_after: Duration,
}

impl Default for Technician {
    fn default() -> Self {
        Technician {
            pull_after: Duration::from_secs(5),
            insert_after: Duration::from_secs(5),
        }
    }
}

/// When an event happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum During {
    /// Before the baseline snapshot: the array starts this way.
    Baseline,
    /// While the step with this id runs, `after` its start.
    Step(String),
}

/// `[[event]]`: something that happens to the simulated hardware.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub during: During,
    /// Simulated delay after the step begins (default 1 s; zero for the
    /// baseline).
    pub after: Duration,
    /// In the order they are applied (see [`Action`]).
    pub actions: Vec<Action>,
}

impl Event {
    pub fn pulls(&self) -> bool {
        self.actions.iter().any(|a| matches!(a, Action::Pull(_)))
    }

    pub fn inserts(&self) -> bool {
        self.actions.iter().any(|a| matches!(a, Action::Insert(_)))
    }
}

/// One change an event makes. Drives are indexes into [`Machine::drives`].
/// Within one event they apply in this order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A counter takes a new value.
    Set {
        drive: usize,
        counter: String,
        value: u64,
    },
    /// md state flags appear on a member (it stays in sync, as real md does
    /// on write errors).
    Flags { drive: usize, flags: Vec<String> },
    /// SMART overall health fails.
    SmartFailed(usize),
    /// A probe can no longer be read.
    Unreadable(Probe),
    /// md marks the member faulty.
    Fail(usize),
    /// The technician pulls this drive (instead of the target, when it
    /// happens during a step that pulls).
    Pull(usize),
    /// A non-member disk disappears from the bus.
    Vanish(usize),
    /// The technician inserts this drive (instead of the next spare).
    Insert(usize),
    /// The data canary reads back as zeros: through the array (`None`), or
    /// in one member's copy only.
    ZeroCanary(Option<usize>),
}

/// A probe an event can make unreadable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// `<drive>.smart`: SMART reads as `Smart::Unreadable`.
    Smart(usize),
    /// `<drive>.counters`: the cheap counters become a snapshot problem.
    Counters(usize),
    /// `array`: the whole snapshot fails.
    Array,
}

/// `[[command]]`: what a program the simulator does not model prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CannedCommand {
    /// Matched exactly against the rendered argv.
    pub argv: Vec<String>,
    /// `None` when `timed_out`.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    /// How long it runs on the simulated clock (`0`: it has ended before
    /// the engine looks again); the guard watches meanwhile.
    pub duration: Duration,
}
