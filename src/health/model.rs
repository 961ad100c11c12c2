//! The health model: what one look at an array and its drives saw.
//!
//! Every backend (md, the simulator, later btrfs/zfs/storcli) produces a
//! [`Snapshot`]; the guard compares snapshots and never knows which backend
//! made them. A snapshot records what could not be read in `problems`
//! instead of guessing: health that was not read is not healthy.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// How a drive is known across hot-plugs.
///
/// Drives are identified by serial number or WWN, never by their /dev name,
/// because kernel names move after a hot-plug: a freshly inserted drive can
/// come up under the pulled drive's old name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DriveKey(pub String);

impl DriveKey {
    /// True when the key comes from the kernel name only (no serial, no WWN).
    /// Such a drive cannot be told apart from a different drive that later
    /// takes its name; a member keyed this way is a guard problem.
    pub fn is_weak(&self) -> bool {
        self.0.starts_with("dev:")
    }
}

impl fmt::Display for DriveKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who a drive is: the facts that survive a hot-plug, plus where it sits now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Kernel name at the time of the look, without `/dev/` (`sda`, `nvme0n1`).
    pub dev: String,
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub size_bytes: Option<u64>,
    /// Bay or slot, only when the hardware says so.
    pub slot: Option<String>,
    /// A stable `/dev/disk/by-id/` name, when present.
    pub by_id: Option<String>,
    /// How the drive is attached: `nvme`, `sata`, `sas`, `scsi`, `virtio`,
    /// `usb`, when it can be told.
    #[serde(default)]
    pub transport: Option<String>,
}

impl Identity {
    /// The stable key: serial first, then WWN, then (weakly) the kernel name.
    pub fn key(&self) -> DriveKey {
        if let Some(serial) = self.serial.as_deref().filter(|s| !s.is_empty()) {
            DriveKey(format!("serial:{serial}"))
        } else if let Some(wwn) = self.wwn.as_deref().filter(|s| !s.is_empty()) {
            DriveKey(format!("wwn:{wwn}"))
        } else {
            DriveKey(format!("dev:{}", self.dev))
        }
    }

    /// A short human description: `sdb (serial S3Z1..., bay 1)`.
    pub fn describe(&self) -> String {
        let serial = self.serial.as_deref().unwrap_or("unknown");
        let dev = if self.dev.is_empty() {
            "a missing device"
        } else {
            &self.dev
        };
        match &self.slot {
            Some(slot) => format!("{dev} (serial {serial}, bay {slot})"),
            None => format!("{dev} (serial {serial}, bay unknown)"),
        }
    }
}

/// A drive's role in the array, as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemberState {
    /// Holds a role and is fully in sync.
    InSync,
    /// Holds a role (or is a replacement) and is being recovered to.
    Rebuilding,
    /// A spare with no role.
    Spare,
    /// Marked faulty by the kernel, still listed in the array.
    Faulty,
}

impl fmt::Display for MemberState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemberState::InSync => "in-sync",
            MemberState::Rebuilding => "rebuilding",
            MemberState::Spare => "spare",
            MemberState::Faulty => "faulty",
        })
    }
}

/// Membership of a drive in the array being guarded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub state: MemberState,
    /// Role number in the array (md sysfs `slot`), when it has one.
    pub role: Option<u32>,
    /// The backend's raw state flags, as it spells them (md: `in_sync`,
    /// `writemostly`, ...). Informational: what a flag means for health is
    /// in [`Drive::faults`].
    pub flags: Vec<String>,
    /// The backend's own name for this member, what its tool is given to
    /// act on it (`{target.member}` in a runbook): md the member device
    /// (`sdb1`), ZFS the leaf's GUID, btrfs the devid, MegaRAID the drive's
    /// address (`/c0/e252/s1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The drive's own view of its health, when this look included SMART.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Smart {
    Read {
        /// Overall SMART health verdict.
        passed: bool,
        /// Error counters, keyed `smart.<name>` or `nvme.<name>`.
        counters: BTreeMap<String, u64>,
    },
    /// SMART could not be read: tool missing, timeout, unparsable output.
    Unreadable { reason: String },
}

/// One drive as seen in one look.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drive {
    pub id: Identity,
    /// `None` when the drive is present but not part of the array.
    pub member: Option<Membership>,
    /// Cheap error counters read at every look, named `<source>.<name>`
    /// by the backend. Any increase on a survivor halts.
    pub counters: BTreeMap<String, u64>,
    /// `None` when this look did not include SMART (a fast look).
    pub smart: Option<Smart>,
    /// Whether the drive carries no partition table, RAID superblock or
    /// filesystem signature; `None` when not checked or not readable.
    pub blank: Option<bool>,
    /// What the backend says is wrong with the drive, in its own words,
    /// whatever its state (md keeps a member in sync after failed rewrites
    /// and only records a flag). Each one makes the drive failing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
}

/// One thing the backend says is wrong with a drive: a flag it set, a
/// counter of its own above zero.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// The condition's name, what `[guard] accept_survivor` takes
    /// (`md.write_error`).
    pub condition: String,
    /// What was seen: `set`, a count.
    pub value: String,
    /// What it means, for `status`, refusals and lint help.
    pub meaning: String,
    /// A flag the backend set on the member, named `<backend>.<flag>`:
    /// the guard halts when one appears. False for a fault the guard
    /// watches another way already (a counter that rose).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flag: bool,
}

impl Fault {
    /// For a flag: the backend and the flag's own name (`md`,
    /// `write_error`).
    pub fn flag_name(&self) -> Option<(&str, &str)> {
        self.condition.split_once('.').filter(|_| self.flag)
    }
}

impl Drive {
    pub fn key(&self) -> DriveKey {
        self.id.key()
    }

    pub fn state(&self) -> Option<MemberState> {
        self.member.as_ref().map(|m| m.state)
    }

    /// A member the array still lists whose device is gone (a btrfs device
    /// `missing`): nothing about the drive can be read, so the backend
    /// leaves its kernel name empty.
    pub fn device_gone(&self) -> bool {
        self.member.is_some() && self.id.dev.is_empty()
    }
}

/// Array-wide resync, recovery, reshape or check progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncProgress {
    /// `recover`, `resync`, `reshape`, `check`, `repair` (md sysfs spelling).
    pub action: String,
    /// Work done and total, in the same unit (md: 512-byte sectors).
    pub done: u64,
    pub total: u64,
    /// Current speed in KiB/s when the kernel reports it.
    pub speed_kib: Option<u64>,
}

impl SyncProgress {
    /// The unit of `done` and `total`: md counts 512-byte sectors, and other
    /// backends convert to the same unit.
    pub const UNIT_BYTES: u64 = 512;

    /// Bytes of work remaining.
    pub fn remaining_bytes(&self) -> u64 {
        self.total
            .saturating_sub(self.done)
            .saturating_mul(Self::UNIT_BYTES)
    }

    /// The backend's speed in bytes per second, when it reports one.
    pub fn speed_bytes(&self) -> Option<u64> {
        self.speed_kib.map(|k| k.saturating_mul(1024))
    }

    /// The backend's own finish estimate: remaining work over its current
    /// speed (what md's `finish=` in /proc/mdstat is too). `None` without a
    /// speed, or at a speed of zero.
    pub fn finish_estimate(&self) -> Option<std::time::Duration> {
        let speed = self.speed_bytes().filter(|s| *s > 0)?;
        Some(std::time::Duration::from_secs(
            self.remaining_bytes().div_ceil(speed),
        ))
    }

    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.done as f64 / self.total as f64
        }
    }
}

/// The array as a whole.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrayHealth {
    pub name: String,
    /// The backend's word for its layout: `raid1`, `raid5`, `mirror`, ...
    pub level: String,
    /// The backend's word for the array's state: `clean`, `active`,
    /// `inactive`, `ONLINE`, ...
    pub state: String,
    /// Whether the array serves I/O normally in that state.
    #[serde(default)]
    pub running: bool,
    /// Slots the array should have.
    pub raid_disks: u32,
    /// Slots without an in-sync device.
    pub degraded: u32,
    /// `None` when no resync, recovery, reshape or check is running.
    pub sync: Option<SyncProgress>,
    /// How many more members the array can lose and still serve all its
    /// data; negative when it has already lost more than that.
    #[serde(default)]
    pub redundancy_left: i64,
}

impl ArrayHealth {
    /// How many members the array can lose in all (those missing now and
    /// those it can still lose).
    pub fn tolerated(&self) -> i64 {
        self.redundancy_left + i64::from(self.degraded)
    }

    /// Whether the survivors hold the last copy of (some of) the data once
    /// `leaving` more members are out.
    pub fn last_copy(&self, leaving: u32) -> bool {
        self.redundancy_left <= i64::from(leaving)
    }
}

/// Something that could not be read. Never treated as healthy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Which probe: `md`, `identity`, `counters`, `smart`.
    pub probe: String,
    /// What it was about: a drive's kernel name or the array name.
    pub subject: String,
    pub message: String,
}

/// One look at an array and every drive that matters to it: its members and
/// any other whole disk present (so a drive that appears or vanishes is seen).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Milliseconds on the run's clock (wall clock or simulated).
    pub at_ms: u64,
    pub array: ArrayHealth,
    pub drives: Vec<Drive>,
    pub problems: Vec<Problem>,
}

impl Snapshot {
    pub fn drive(&self, key: &DriveKey) -> Option<&Drive> {
        self.drives.iter().find(|d| &d.key() == key)
    }

    pub fn members(&self) -> impl Iterator<Item = &Drive> {
        self.drives.iter().filter(|d| d.member.is_some())
    }

    /// Find a drive by kernel name, serial, WWN, slot or the backend's own
    /// member name (a btrfs devid), as a technician would name it on the
    /// command line. Several matches are an error for
    /// the caller to report; this returns all of them.
    pub fn find(&self, name: &str) -> Vec<&Drive> {
        let bare = name.strip_prefix("/dev/").unwrap_or(name);
        self.drives
            .iter()
            .filter(|d| {
                d.id.dev == bare
                    || d.id.serial.as_deref() == Some(name)
                    || d.id.wwn.as_deref() == Some(name)
                    || d.id.slot.as_deref() == Some(name)
                    || d.id.by_id.as_deref() == Some(name)
                    || d.member.as_ref().and_then(|m| m.name.as_deref()) == Some(name)
                    // A controller address (`c0/e252/s1`) as its tool
                    // spells it: `/c0/e252/s1`.
                    || (d.id.dev.contains('/') && name.strip_prefix('/') == Some(d.id.dev.as_str()))
            })
            .collect()
    }
}
