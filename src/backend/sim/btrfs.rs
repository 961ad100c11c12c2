//! The btrfs personality: one multi-device btrfs file system over drives of
//! the pool, as the kernel and btrfs-progs show it.
//!
//! What it follows from real btrfs (docs/btrfs-runbooks.md, the lab captures
//! in shared/reference/samples/lab/btrfs-*.txt):
//!
//! - every device has a devid, given in scenario order from 1 (the devid is
//!   the member's name, `{target.member}`);
//! - a device pulled from the bus is noticed [`BTRFS_NOTICES_AFTER`] later,
//!   at the next I/O to it; then btrfs lists it as `missing`, and the file
//!   system counts one device short (degraded);
//! - `btrfs replace start` writes a replace target (devid 0 while it runs)
//!   and copies onto it over the scenario's `rebuild_time`; when done the
//!   target takes the old devid and the old device leaves the file system
//!   (the drive stays on the bus, no longer a member). The source keeps
//!   its copy until then, so a hot replace never drops redundancy;
//! - while a device is missing and too few devices are left for the
//!   profile, new chunks are written `single`: the file system, writing as
//!   a busy server does, needs a new chunk [`DEGRADED_WRITES_AFTER`] after it
//!   noticed the loss. Data in them has one copy until a balance with
//!   `-dconvert=<profile>,soft -mconvert=<profile>,soft` converts them.
//!
//! The file system's device list is kept apart from the drives themselves:
//! a device entry is never deleted (a device that left is `removed`), so
//! indexes stay valid.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::backend::sim::machine::{ArraySpec, DriveGroup, DriveSpec, Level};
use crate::backend::sim::pool::Pool;

/// How long btrfs takes to notice a device pulled from the bus: until the
/// next I/O to it. Fixed, so runs are reproducible.
pub const BTRFS_NOTICES_AFTER: Duration = Duration::from_secs(2);

/// How long after btrfs noticed a missing device the file system needs a
/// new chunk (and, short of devices for its profile, writes it `single`).
pub const DEGRADED_WRITES_AFTER: Duration = Duration::from_secs(10);

/// How long a balance that converts `single` chunks takes, per chunk kind.
pub const BALANCE_PER_KIND: Duration = Duration::from_secs(20);

/// The size the simulated chunks of one kind add up to, for progress.
pub const CHUNK_BYTES: u64 = 1 << 30;

/// The chunk kinds a degraded write makes `single`, as btrfs-progs spells
/// them.
pub const SINGLE_KINDS: [&str; 2] = ["Data", "Metadata"];

/// The five per-device error counters, as swapguard names them.
pub use crate::backend::btrfs::COUNTER_NAMES;

#[derive(Clone, Debug)]
pub(crate) struct BtrfsFs {
    /// The file system's UUID (the scenario's `[array] name`): what the
    /// btrfs backend calls it.
    pub uuid: String,
    /// Where it is mounted (`[array] mount`): what its commands are given.
    pub mount: String,
    /// The data and metadata profile.
    pub profile: Level,
    pub devices: Vec<Device>,
    pub copy_ms: u64,
    pub replace: Option<Replace>,
    /// The last replace that ended, for `btrfs replace status`.
    pub replace_ended: Option<Ended>,
    pub balance: Option<Balance>,
    /// Chunk kinds that hold `single` chunks (`Data`, `Metadata`).
    pub single: Vec<String>,
    /// When the file system writes its next chunk while short of devices.
    pub degraded_write_at: Option<u64>,
    /// The file system itself can no longer be read (a scenario event).
    pub unreadable: bool,
}

/// btrfs's record of one device (`/sys/fs/btrfs/<uuid>/devinfo/<devid>`).
#[derive(Clone, Debug)]
pub(crate) struct Device {
    /// 0 while it is a replace target.
    pub devid: u64,
    pub drive: usize,
    /// The size btrfs uses on it (`btrfs filesystem resize` grows it).
    pub size_bytes: u64,
    /// btrfs lists the device as missing.
    pub missing: bool,
    /// The block device is gone; btrfs has not noticed yet.
    pub detached: bool,
    /// The device left the file system (replaced).
    pub removed: bool,
    /// `btrfs.write_io_errs`, ...
    pub counters: BTreeMap<String, u64>,
}

impl Device {
    fn live(&self) -> bool {
        !self.removed
    }
}

/// A running `btrfs replace`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Replace {
    /// Device indexes.
    pub source: usize,
    pub target: usize,
    pub started_ms: u64,
    /// The source devid, which the target takes at the end.
    pub devid: u64,
    /// `-r`: the source is read only when no other copy exists.
    pub avoid_source: bool,
}

/// How the last replace ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ended {
    pub started_ms: u64,
    pub ended_ms: u64,
    /// `None`: finished; else canceled at this progress (tenths of a percent).
    pub canceled_at: Option<u64>,
}

/// A running balance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Balance {
    pub started_ms: u64,
    /// The kinds it converts back to the profile.
    pub kinds: Vec<String>,
    /// Chunks it considers, for `btrfs balance status`.
    pub chunks: u64,
}

fn btrfs_counters() -> BTreeMap<String, u64> {
    COUNTER_NAMES.iter().map(|c| (c.to_string(), 0)).collect()
}

impl BtrfsFs {
    pub fn new(array: &ArraySpec, specs: &[DriveSpec]) -> BtrfsFs {
        let mut devices = Vec::new();
        for (index, spec) in specs.iter().enumerate() {
            if spec.group != DriveGroup::Member {
                continue;
            }
            let mut counters = btrfs_counters();
            for (k, v) in &spec.counters {
                if k.starts_with("btrfs.") {
                    counters.insert(k.clone(), *v);
                }
            }
            devices.push(Device {
                devid: devices.len() as u64 + 1,
                drive: index,
                size_bytes: spec.size_bytes,
                missing: false,
                detached: false,
                removed: false,
                counters,
            });
        }
        BtrfsFs {
            uuid: array.name.clone(),
            mount: array.mount.clone().unwrap_or_default(),
            profile: array.level,
            devices,
            copy_ms: u64::try_from(array.rebuild_time.as_millis()).unwrap_or(u64::MAX),
            replace: None,
            replace_ended: None,
            balance: None,
            single: Vec::new(),
            degraded_write_at: None,
            unreadable: false,
        }
    }

    /// Fewest writable devices a new chunk of the profile needs.
    pub fn devs_min(&self) -> usize {
        match self.profile {
            Level::Raid1c3 => 3,
            _ => 2,
        }
    }

    /// The device entry for `drive` through its current block device.
    pub fn attached(&self, drive: usize) -> Option<usize> {
        self.devices
            .iter()
            .position(|d| d.drive == drive && d.live() && !d.detached && !d.missing)
    }

    /// The device entry for `drive`, attached, detached or missing.
    pub fn any_device(&self, drive: usize) -> Option<usize> {
        self.devices
            .iter()
            .rposition(|d| d.drive == drive && d.live())
    }

    /// The live device with this devid (not the replace target).
    pub fn by_devid(&self, devid: u64) -> Option<usize> {
        self.devices
            .iter()
            .position(|d| d.live() && d.devid == devid && devid != 0)
    }

    /// Whether the device is the running replace's target.
    pub fn is_replace_target(&self, device: usize) -> bool {
        self.replace.is_some_and(|r| r.target == device)
    }

    /// Devices that count toward the file system (not a replace target).
    pub fn slots(&self) -> u32 {
        (0..self.devices.len())
            .filter(|&i| self.devices[i].live() && !self.is_replace_target(i))
            .count() as u32
    }

    /// Devices btrfs lists as missing.
    pub fn missing(&self) -> u32 {
        self.devices
            .iter()
            .filter(|d| d.live() && d.missing)
            .count() as u32
    }

    /// Devices new chunks can go to: present, not missing, not a replace
    /// target.
    fn writable(&self) -> usize {
        (0..self.devices.len())
            .filter(|&i| {
                let d = &self.devices[i];
                d.live() && !d.missing && !d.detached && !self.is_replace_target(i)
            })
            .count()
    }

    /// How a log line names a device: `devid 2 on sdb (serial ..., bay 1)`.
    pub fn describe(&self, pool: &Pool, device: usize) -> String {
        let d = &self.devices[device];
        let id = if self.is_replace_target(device) {
            "the replace target".to_string()
        } else {
            format!("devid {}", d.devid)
        };
        format!("{id} on {}", pool.describe(d.drive))
    }

    /// The pool took `drive` off the bus. Returns the device btrfs still
    /// holds for it, if btrfs has yet to notice.
    pub fn unplugged(&mut self, drive: usize) -> Option<usize> {
        let device = self.attached(drive)?;
        self.devices[device].detached = true;
        Some(device)
    }

    /// btrfs notices, at the next I/O, that a device's block device is
    /// gone (or a scenario makes it stop answering).
    pub fn lose(&mut self, pool: &Pool, device: usize, now_ms: u64, log: &mut Vec<String>) {
        let d = &self.devices[device];
        if d.removed || d.missing {
            return;
        }
        let name = self.describe(pool, device);
        if self.is_replace_target(device) {
            if let Some(r) = self.replace.take() {
                self.devices[device].removed = true;
                self.replace_ended = Some(Ended {
                    started_ms: r.started_ms,
                    ended_ms: now_ms,
                    canceled_at: Some(self.replace_permille(&r, now_ms)),
                });
                log.push(format!(
                    "btrfs canceled the replace: {name} is gone; devid {} is as it was",
                    r.devid
                ));
            }
            return;
        }
        self.devices[device].missing = true;
        log.push(format!(
            "btrfs noticed at the next I/O that {name} is gone: devid {} is missing",
            self.devices[device].devid
        ));
        self.schedule_degraded_write(now_ms);
    }

    /// Short of devices for the profile, the next chunk is `single`.
    fn schedule_degraded_write(&mut self, now_ms: u64) {
        if self.degraded_write_at.is_none() && self.writable() < self.devs_min() {
            self.degraded_write_at = Some(now_ms.saturating_add(millis(DEGRADED_WRITES_AFTER)));
        }
    }

    /// The replace's progress in tenths of a percent.
    pub fn replace_permille(&self, r: &Replace, now_ms: u64) -> u64 {
        let copy = self.copy_ms.max(1);
        now_ms.saturating_sub(r.started_ms).min(copy) * 1000 / copy
    }

    /// The balance's progress: chunks done of all.
    pub fn balance_done(&self, b: &Balance, now_ms: u64) -> u64 {
        let whole = self.balance_ms(b).max(1);
        now_ms.saturating_sub(b.started_ms).min(whole) * b.chunks / whole
    }

    /// When the running balance ends.
    pub fn balance_ends_at(&self) -> Option<u64> {
        self.balance
            .as_ref()
            .map(|b| b.started_ms.saturating_add(self.balance_ms(b)))
    }

    fn balance_ms(&self, b: &Balance) -> u64 {
        millis(BALANCE_PER_KIND).saturating_mul(b.kinds.len().max(1) as u64)
    }

    /// Start copying `source` onto the present drive `drive`.
    pub fn start_replace(
        &mut self,
        pool: &mut Pool,
        source: usize,
        drive: usize,
        avoid_source: bool,
        now_ms: u64,
        log: &mut Vec<String>,
    ) {
        let size = self.devices[source].size_bytes;
        let d = &mut pool.drives[drive];
        d.blank = false;
        d.superblock = Some(self.uuid.clone());
        self.devices.push(Device {
            devid: 0,
            drive,
            size_bytes: size,
            missing: false,
            detached: false,
            removed: false,
            counters: btrfs_counters(),
        });
        let target = self.devices.len() - 1;
        let devid = self.devices[source].devid;
        self.replace = Some(Replace {
            source,
            target,
            started_ms: now_ms,
            devid,
            avoid_source,
        });
        log.push(format!(
            "btrfs started replacing devid {devid} with {}{}",
            pool.describe(drive),
            if avoid_source {
                " (reading the other copies, not devid's own)"
            } else {
                ""
            }
        ));
    }

    /// Start converting `kinds` back to the profile.
    pub fn start_balance(&mut self, kinds: Vec<String>, now_ms: u64, log: &mut Vec<String>) {
        let chunks = 2 + 3 * kinds.iter().filter(|k| self.single.contains(k)).count() as u64;
        log.push(format!(
            "btrfs started a balance of {} converting {} to {}",
            self.mount,
            kinds.join(" and ").to_lowercase(),
            self.profile.name()
        ));
        self.balance = Some(Balance {
            started_ms: now_ms,
            kinds,
            chunks,
        });
    }

    /// When the next thing the file system does by itself is due.
    pub fn due_at(&self) -> Option<u64> {
        let replace = self
            .replace
            .map(|r| r.started_ms.saturating_add(self.copy_ms));
        let balance = self.balance_ends_at();
        [replace, balance, self.degraded_write_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Do what is due at `now_ms`.
    pub fn on_due(&mut self, pool: &Pool, now_ms: u64, log: &mut Vec<String>) {
        if let Some(r) = self.replace
            && r.started_ms.saturating_add(self.copy_ms) <= now_ms
        {
            self.finish_replace(pool, r, now_ms, log);
        }
        if let Some(b) = self.balance.clone()
            && b.started_ms.saturating_add(self.balance_ms(&b)) <= now_ms
        {
            self.balance = None;
            if self.writable() >= self.devs_min() {
                self.single.retain(|k| !b.kinds.contains(k));
                log.push(format!(
                    "btrfs finished the balance of {}: {} chunks relocated",
                    self.mount, b.chunks
                ));
            } else {
                log.push(format!(
                    "btrfs balance of {} failed: too few devices for {}",
                    self.mount,
                    self.profile.name()
                ));
            }
        }
        if let Some(at) = self.degraded_write_at
            && at <= now_ms
        {
            self.degraded_write_at = None;
            if self.writable() < self.devs_min() {
                for kind in SINGLE_KINDS {
                    if !self.single.iter().any(|k| k == kind) {
                        self.single.push(kind.to_string());
                    }
                }
                log.push(format!(
                    "{} wrote new data and metadata while short of devices: single chunks (one copy)",
                    self.mount
                ));
            }
        }
    }

    fn finish_replace(&mut self, pool: &Pool, r: Replace, now_ms: u64, log: &mut Vec<String>) {
        self.replace = None;
        self.replace_ended = Some(Ended {
            started_ms: r.started_ms,
            ended_ms: now_ms,
            canceled_at: None,
        });
        let old_drive = self.devices[r.source].drive;
        let source_was_missing = self.devices[r.source].missing;
        self.devices[r.source].removed = true;
        let t = &mut self.devices[r.target];
        t.devid = r.devid;
        log.push(format!(
            "btrfs finished the replace: {} is devid {}{}",
            pool.describe(self.devices[r.target].drive),
            r.devid,
            if source_was_missing {
                String::new()
            } else {
                format!(", {} left the file system", pool.describe(old_drive))
            }
        ));
        // Short of devices no more: no further single chunks.
        if self.writable() >= self.devs_min() {
            self.degraded_write_at = None;
        }
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[path = "btrfs_tests.rs"]
mod tests;
