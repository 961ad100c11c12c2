//! The zpool personality: one ZFS pool of a single top-level vdev (a
//! mirror or a raidz) over drives of the pool.
//!
//! It follows what OpenZFS 2.3 did in the lab guest (lab-notes.md, "ZFS in
//! the same guest"), so a dry run shows the guard what a real pool shows:
//!
//! - a pulled leaf goes `REMOVED` at once, before any I/O, and the pool
//!   `DEGRADED` (md waits for the next write);
//! - `zpool offline` makes a leaf `OFFLINE`; it stays so when pulled;
//! - `zpool replace` groups the old leaf and the new one under
//!   `replacing-N`, resilvers the new one on the simulated clock and then
//!   detaches the old one; a replace while the old leaf is still `ONLINE`
//!   never lowers redundancy;
//! - errors fault a leaf (`FAULTED`) while the pool can still say `ONLINE`;
//!   ZFS keeps the last replica of the data `DEGRADED` instead.
//!
//! Leaves are identified by GUID, derived from the pool name, the drive's
//! place in the scenario and its serial, so a scenario's GUIDs are the same
//! on every run. A leaf's entry is never deleted: a replaced one is marked
//! detached, a pulled one gone, so indexes stay valid.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use crate::backend::Depth;
use crate::backend::sim::machine::{ArraySpec, DriveGroup, DriveSpec, Level};
use crate::backend::sim::pool::Pool;
use crate::health::model::{
    ArrayHealth, Drive, MemberState, Membership, Problem, Snapshot, SyncProgress,
};

/// The pool's state: its leaves and the running resilver.
#[derive(Clone, Debug)]
pub(crate) struct Zpool {
    pub name: String,
    pub level: Level,
    /// Children of the top-level vdev (a replacing group is one child).
    pub slots: u32,
    pub resilver_ms: u64,
    /// Bytes of one leaf's share of the data.
    pub leaf_bytes: u64,
    pub leaves: Vec<Leaf>,
    pub resilver: Option<Resilver>,
    /// How the last resilver ended, for `zpool status`.
    pub last_scan: Option<String>,
    /// The pool can no longer be read (a scenario event).
    pub unreadable: bool,
    /// Leaves made so far, for new GUIDs.
    generation: u64,
}

/// A leaf vdev's state, as `zpool status` spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LeafState {
    Online,
    /// Too many errors, but the last replica: ZFS keeps using it.
    Degraded,
    Faulted,
    Offline,
    Removed,
}

impl LeafState {
    pub fn word(self) -> &'static str {
        match self {
            LeafState::Online => "ONLINE",
            LeafState::Degraded => "DEGRADED",
            LeafState::Faulted => "FAULTED",
            LeafState::Offline => "OFFLINE",
            LeafState::Removed => "REMOVED",
        }
    }

    /// Whether the leaf serves I/O.
    fn serves(self) -> bool {
        matches!(self, LeafState::Online | LeafState::Degraded)
    }
}

/// One leaf vdev.
#[derive(Clone, Debug)]
pub(crate) struct Leaf {
    pub drive: usize,
    /// The partition of the drive the leaf is, or `None` for the whole disk.
    pub partition: Option<u32>,
    pub guid: u64,
    /// Its child index in the top-level vdev.
    pub slot: u32,
    pub state: LeafState,
    pub resilvering: bool,
    /// For a new leaf of a `replacing-N` group: the leaf it replaces.
    pub replaces: Option<usize>,
    /// No longer in the pool's configuration (replaced and detached).
    pub detached: bool,
    /// Its device was pulled; ZFS holds the leaf under its old path.
    pub gone: bool,
    /// The path ZFS recorded: `/dev/sdb1`.
    pub path: String,
    /// `zfs.read_errors`, `zfs.write_errors`, `zfs.checksum_errors`,
    /// `zfs.slow_ios`.
    pub counters: BTreeMap<String, u64>,
    /// Flags a scenario event set beyond the state.
    pub flags: Vec<String>,
}

/// A running resilver onto `leaf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Resilver {
    pub leaf: usize,
    pub started_ms: u64,
}

/// The counters every leaf carries.
pub(crate) const LEAF_COUNTERS: [&str; 4] = [
    "zfs.read_errors",
    "zfs.write_errors",
    "zfs.checksum_errors",
    "zfs.slow_ios",
];

/// A GUID that is the same on every run of a scenario: FNV-1a over the
/// pool, the drive's place, its serial and the leaf's generation.
fn guid(pool: &str, drive: usize, serial: &str, generation: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{pool}/{drive}/{serial}/{generation}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // ZFS GUIDs are never zero; keep them 19 or 20 digits as real ones are.
    h | (1 << 63)
}

impl Zpool {
    pub fn new(array: &ArraySpec, specs: &[DriveSpec]) -> Result<Zpool> {
        if !array.level.is_zfs() {
            bail!(
                "a ZFS scenario's `[array] level` is `mirror`, `raidz1`, `raidz2` or `raidz3`, not `{}`",
                array.level.name()
            );
        }
        let mut pool = Zpool {
            name: array.name.clone(),
            level: array.level,
            slots: 0,
            resilver_ms: u64::try_from(array.rebuild_time.as_millis()).unwrap_or(u64::MAX),
            leaf_bytes: specs
                .iter()
                .filter(|d| d.group == DriveGroup::Member)
                .map(|d| d.size_bytes)
                .min()
                .unwrap_or(0),
            leaves: Vec::new(),
            resilver: None,
            last_scan: None,
            unreadable: false,
            generation: 0,
        };
        for (index, spec) in specs.iter().enumerate() {
            if spec.group != DriveGroup::Member {
                continue;
            }
            let state = match spec.state {
                MemberState::InSync | MemberState::Rebuilding => LeafState::Online,
                MemberState::Faulty => LeafState::Faulted,
                MemberState::Spare => bail!(
                    "the simulated pool has no hot spares: member `{}` cannot start as `spare`",
                    spec.label()
                ),
            };
            let mut counters: BTreeMap<String, u64> =
                LEAF_COUNTERS.iter().map(|c| (c.to_string(), 0)).collect();
            for (k, v) in &spec.counters {
                if k.starts_with("zfs.") {
                    counters.insert(k.clone(), *v);
                }
            }
            let dev = spec.dev.clone().unwrap_or_default();
            let leaf = pool.leaves.len();
            let guid = pool.next_guid(index, spec.serial.as_deref());
            pool.leaves.push(Leaf {
                drive: index,
                partition: array.partition,
                guid,
                slot: pool.slots,
                state,
                resilvering: spec.state == MemberState::Rebuilding,
                replaces: None,
                detached: false,
                gone: false,
                path: partition_path(&dev, array.partition),
                counters,
                flags: Vec::new(),
            });
            pool.slots += 1;
            if spec.state == MemberState::Rebuilding && pool.resilver.is_none() {
                pool.resilver = Some(Resilver {
                    leaf,
                    started_ms: 0,
                });
            }
        }
        if pool.slots == 0 {
            bail!("the simulated pool `{}` has no members", pool.name);
        }
        Ok(pool)
    }

    fn next_guid(&mut self, drive: usize, serial: Option<&str>) -> u64 {
        self.generation += 1;
        guid(&self.name, drive, serial.unwrap_or(""), self.generation)
    }

    /// Leaves in the pool's configuration.
    fn live(&self) -> impl Iterator<Item = (usize, &Leaf)> {
        self.leaves.iter().enumerate().filter(|(_, l)| !l.detached)
    }

    /// The leaf ZFS holds through `drive`'s current device node.
    pub fn attached_leaf(&self, drive: usize) -> Option<usize> {
        self.live()
            .filter(|(_, l)| l.drive == drive && !l.gone)
            .map(|(i, _)| i)
            .last()
    }

    /// The leaf of `drive`, present or pulled.
    pub fn any_leaf(&self, drive: usize) -> Option<usize> {
        self.live()
            .filter(|(_, l)| l.drive == drive)
            .map(|(i, _)| i)
            .last()
    }

    /// The leaf a `zpool` argument names: a GUID, or the leaf's path
    /// (`/dev/sdb1` or `sdb1`).
    pub fn leaf_named(&self, arg: &str) -> Option<usize> {
        if let Ok(g) = arg.parse::<u64>() {
            return self.live().find(|(_, l)| l.guid == g).map(|(i, _)| i);
        }
        let path = if arg.starts_with('/') {
            arg.to_string()
        } else {
            format!("/dev/{arg}")
        };
        self.live()
            .filter(|(_, l)| l.path == path)
            .map(|(i, _)| i)
            .last()
    }

    /// Whether a slot has a leaf that serves a full copy: one `ONLINE` and
    /// not being resilvered (the zfs backend's rule).
    fn served(&self, slot: u32) -> bool {
        self.live()
            .any(|(_, l)| l.slot == slot && l.state == LeafState::Online && !l.resilvering)
    }

    /// Children of the top-level vdev without a leaf that serves their data.
    pub fn degraded(&self) -> u32 {
        (0..self.slots).filter(|&s| !self.served(s)).count() as u32
    }

    fn tolerates(&self) -> u32 {
        self.level.tolerates(self.slots)
    }

    /// The pool's state word. A leaf faulted by errors leaves the pool
    /// `ONLINE` (as the lab saw); a leaf that is missing (offline, removed)
    /// or kept `DEGRADED` makes it `DEGRADED`; a child with no usable leaf
    /// beyond what the parity covers makes it `UNAVAIL`.
    pub fn state(&self) -> &'static str {
        let usable = |s: u32| {
            self.live()
                .any(|(_, l)| l.slot == s && l.state.serves() && !l.resilvering)
        };
        let lost = (0..self.slots).filter(|&s| !usable(s)).count() as u32;
        if lost > self.tolerates() {
            return "UNAVAIL";
        }
        let weak = (0..self.slots).any(|s| {
            !self.served(s)
                && !self
                    .live()
                    .any(|(_, l)| l.slot == s && l.state == LeafState::Faulted)
        });
        if weak { "DEGRADED" } else { "ONLINE" }
    }

    /// Whether the leaf is in a `replacing-N` group.
    fn replacing(&self, leaf: usize) -> bool {
        self.leaves[leaf]
            .replaces
            .is_some_and(|old| !self.leaves[old].detached)
            || self
                .live()
                .any(|(_, l)| l.replaces == Some(leaf) && !self.leaves[leaf].detached)
    }

    pub fn describe_leaf(&self, pool: &Pool, leaf: usize) -> String {
        let l = &self.leaves[leaf];
        if l.gone {
            format!("leaf {} ({}, pulled)", l.guid, l.path)
        } else {
            format!("leaf {} ({})", l.guid, pool.describe(l.drive))
        }
    }

    /// The pool took `drive` off the bus: ZFS sees its leaf removed at once.
    pub fn unplugged(&mut self, pool: &Pool, drive: usize, log: &mut Vec<String>) {
        let Some(leaf) = self.attached_leaf(drive) else {
            return;
        };
        let l = &mut self.leaves[leaf];
        l.gone = true;
        if l.state != LeafState::Offline {
            l.state = LeafState::Removed;
        }
        let line = format!("ZFS saw leaf {} ({}) {}", l.guid, l.path, l.state.word());
        log.push(format!("{line}: pool {} {}", self.name, self.state()));
        self.check_resilver(pool, log);
    }

    /// Errors make ZFS fault a leaf; the last replica is only degraded.
    pub fn fault(&mut self, pool: &Pool, drive: usize, who: &str, log: &mut Vec<String>) {
        let Some(leaf) = self.any_leaf(drive) else {
            log.push(format!(
                "{who} is not a leaf of {}; ZFS has nothing to fault",
                self.name
            ));
            return;
        };
        let before = self.leaves[leaf].state;
        if !before.serves() || before == LeafState::Degraded {
            log.push(format!("{who} was {} already", before.word()));
            return;
        }
        let slot = self.leaves[leaf].slot;
        // Would the pool still have every slot's data without this leaf?
        let others_serve = self.live().any(|(i, l)| {
            i != leaf && l.slot == slot && l.state == LeafState::Online && !l.resilvering
        });
        let after_loss = self.degraded() + u32::from(!others_serve && self.served(slot));
        let l = &mut self.leaves[leaf];
        l.state = if after_loss > self.level.tolerates(self.slots) {
            LeafState::Degraded
        } else {
            LeafState::Faulted
        };
        let state = l.state;
        log.push(format!(
            "ZFS marked {} {} (too many errors); pool {} says {}",
            self.describe_leaf(pool, leaf),
            state.word(),
            self.name,
            self.state()
        ));
        self.check_resilver(pool, log);
    }

    /// Stop the resilver when its leaf stopped serving or the pool lost
    /// the data to rebuild it from.
    fn check_resilver(&mut self, pool: &Pool, log: &mut Vec<String>) {
        let Some(r) = self.resilver else {
            return;
        };
        let l = &self.leaves[r.leaf];
        let reason = if !l.state.serves() || l.gone {
            Some(format!("its new leaf is {}", l.state.word()))
        } else if self.degraded() > self.tolerates() {
            Some("no valid replicas are left to copy from".to_string())
        } else {
            None
        };
        if let Some(reason) = reason {
            self.resilver = None;
            let name = self.describe_leaf(pool, r.leaf);
            self.last_scan = Some(format!("resilver onto {name} stopped: {reason}"));
            log.push(format!("ZFS stopped the resilver onto {name}: {reason}"));
        }
    }

    /// When the running resilver finishes, if one runs.
    pub fn resilver_done_at(&self) -> Option<u64> {
        self.resilver
            .map(|r| r.started_ms.saturating_add(self.resilver_ms))
    }

    /// Finish the running resilver and detach the leaf it replaced.
    pub fn finish_resilver(&mut self, pool: &Pool, log: &mut Vec<String>) {
        let Some(r) = self.resilver.take() else {
            return;
        };
        self.leaves[r.leaf].resilvering = false;
        let name = self.describe_leaf(pool, r.leaf);
        let mut line = format!("ZFS finished the resilver onto {name}");
        if let Some(old) = self.leaves[r.leaf].replaces {
            let old_name = self.describe_leaf(pool, old);
            self.leaves[old].detached = true;
            line.push_str(&format!("; it detached the replaced {old_name}"));
        }
        self.last_scan = Some(format!(
            "resilvered onto {name} with 0 errors (pool {})",
            self.name
        ));
        log.push(line);
    }

    /// Start a resilver onto a new leaf replacing `old` with `drive`'s
    /// device (`partition` of it, or the whole disk). The caller checked
    /// that nothing stands in the way.
    pub fn start_replace(
        &mut self,
        pool: &mut Pool,
        old: usize,
        drive: usize,
        partition: Option<u32>,
        now_ms: u64,
        log: &mut Vec<String>,
    ) {
        let serial = pool.drives[drive].serial.clone();
        let guid = self.next_guid(drive, serial.as_deref());
        let path = pool.drives[drive].path(partition);
        let slot = self.leaves[old].slot;
        self.leaves.push(Leaf {
            drive,
            partition,
            guid,
            slot,
            state: LeafState::Online,
            resilvering: true,
            replaces: Some(old),
            detached: false,
            gone: false,
            path,
            counters: LEAF_COUNTERS.iter().map(|c| (c.to_string(), 0)).collect(),
            flags: Vec::new(),
        });
        let leaf = self.leaves.len() - 1;
        let d = &mut pool.drives[drive];
        d.superblock = Some(self.name.clone());
        d.blank = false;
        self.resilver = Some(Resilver {
            leaf,
            started_ms: now_ms,
        });
        log.push(format!(
            "ZFS started replacing-{slot}: {} resilvering in place of {}",
            self.describe_leaf(pool, leaf),
            self.describe_leaf(pool, old)
        ));
    }

    /// One look, as the zfs backend would take it from `zpool status`.
    pub fn snapshot(&self, pool: &Pool, name: &str, depth: Depth, now_ms: u64) -> Result<Snapshot> {
        if name != self.name {
            bail!(
                "no pool `{name}` in the simulation (it has `{}`)",
                self.name
            );
        }
        if self.unreadable {
            bail!("cannot read pool `{name}`: the scenario made `zpool status` fail");
        }
        let sync = self.resilver.map(|r| {
            let total = self.leaf_bytes / SyncProgress::UNIT_BYTES;
            let span = self.resilver_ms.max(1);
            let elapsed = now_ms.saturating_sub(r.started_ms).min(span);
            let done = u64::try_from(u128::from(total) * u128::from(elapsed) / u128::from(span))
                .unwrap_or(total);
            SyncProgress {
                action: "resilver".to_string(),
                done,
                total,
                speed_kib: Some(
                    u64::try_from(u128::from(total / 2) * 1000 / u128::from(span))
                        .unwrap_or(u64::MAX),
                ),
            }
        });
        let mut members: Vec<(usize, usize)> = pool
            .drives
            .iter()
            .enumerate()
            .filter(|(_, d)| d.present)
            .filter_map(|(i, _)| self.attached_leaf(i).map(|l| (i, l)))
            .collect();
        members.sort_by_key(|&(i, l)| (self.leaves[l].slot, i));
        let mut drives = Vec::new();
        let mut problems: Vec<Problem> = Vec::new();
        for &(i, l) in &members {
            let mut view: Drive = pool.drive_view(i, depth, &mut problems);
            if !pool.drives[i].counters_unreadable {
                view.counters.extend(self.leaves[l].counters.clone());
            }
            view.member = Some(self.membership(l));
            drives.push(view);
        }
        for (i, d) in pool.drives.iter().enumerate() {
            if d.present && self.attached_leaf(i).is_none() {
                drives.push(pool.drive_view(i, depth, &mut problems));
            }
        }
        let mut snap = Snapshot {
            at_ms: now_ms,
            array: ArrayHealth {
                name: self.name.clone(),
                level: self.level.name().to_string(),
                state: self.state().to_string(),
                raid_disks: self.slots,
                degraded: self.degraded(),
                sync,
                running: false,
                redundancy_left: 0,
            },
            drives,
            problems,
        };
        // The simulator plays ZFS: ZFS's words mean what they mean to the
        // zfs backend.
        crate::backend::zfs::facts::annotate(&mut snap);
        Ok(snap)
    }

    /// A leaf as the snapshot convention spells it: state lowercased, plus
    /// `resilvering`/`replacing`; its name the GUID.
    fn membership(&self, leaf: usize) -> Membership {
        let l = &self.leaves[leaf];
        let state = match (l.state, l.resilvering) {
            (LeafState::Online, true) => MemberState::Rebuilding,
            (LeafState::Online, false) => MemberState::InSync,
            _ => MemberState::Faulty,
        };
        let mut flags = vec![l.state.word().to_ascii_lowercase()];
        if l.resilvering && self.resilver.is_some_and(|r| r.leaf == leaf) {
            flags.push("resilvering".to_string());
        }
        if self.replacing(leaf) {
            flags.push("replacing".to_string());
        }
        for f in &l.flags {
            if !flags.contains(f) {
                flags.push(f.clone());
            }
        }
        Membership {
            state,
            role: Some(l.slot),
            flags,
            name: Some(l.guid.to_string()),
        }
    }
}

/// `/dev/sdb`, `/dev/sdb1`, `/dev/nvme0n1p1` from a kernel name.
fn partition_path(dev: &str, partition: Option<u32>) -> String {
    match partition {
        None => format!("/dev/{dev}"),
        Some(n) if dev.starts_with("nvme") => format!("/dev/{dev}p{n}"),
        Some(n) => format!("/dev/{dev}{n}"),
    }
}
