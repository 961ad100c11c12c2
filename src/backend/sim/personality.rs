//! The storage the simulated drives carry: one personality per backend.
//!
//! The pool (`pool.rs`) is the disks; a personality is what a backend
//! builds on them and how it reacts: its members and their states, its
//! own counters, its rebuilds, its command-line tool, its snapshot: md
//! (`md.rs`, `mdadm.rs`, `view.rs`), a ZFS pool (`zpool.rs`,
//! `zpool_cmd.rs`), btrfs (`btrfs.rs`, `btrfs_cmd.rs`, `btrfs_view.rs`) and
//! a MegaRAID controller (`megaraid.rs`, `megaraid_cmd.rs`).
//! Another backend is one more variant here and its own files; the
//! simulator (`mod.rs`) asks only the questions below.

use std::time::Duration;

use anyhow::Result;

use crate::backend::sim::btrfs::{BTRFS_NOTICES_AFTER, BtrfsFs};
use crate::backend::sim::btrfs_cmd;
use crate::backend::sim::machine::{ArraySpec, DriveSpec, Level};
use crate::backend::sim::md::{Failure, MdArray};
use crate::backend::sim::mdadm;
use crate::backend::sim::megaraid::MegaRaid;
use crate::backend::sim::megaraid_cmd;
use crate::backend::sim::pool::Pool;
use crate::backend::sim::zpool::Zpool;
use crate::backend::sim::zpool_cmd;
use crate::backend::{CommandOutput, Depth};
use crate::health::model::{DriveKey, MemberState, Snapshot};

/// How long md takes to notice a member pulled without `--fail`: until the
/// next write reaches it (lab-notes.md). Fixed, so runs are reproducible.
const MD_NOTICES_AFTER: Duration = Duration::from_secs(2);

/// The storage on the simulated drives.
#[derive(Clone, Debug)]
pub(crate) enum Personality {
    /// One Linux md array.
    Md(MdArray),
    /// One ZFS pool.
    Zfs(Zpool),
    /// One multi-device btrfs file system.
    Btrfs(BtrfsFs),
    /// A MegaRAID controller and the virtual drive guarded on it.
    Megaraid(MegaRaid),
}

impl Personality {
    /// The storage `backend` (the runbook's) builds on the drives a
    /// scenario's `[array]` describes.
    pub fn new(backend: &str, array: &ArraySpec, drives: &[DriveSpec]) -> Result<Personality> {
        if backend != "megaraid" {
            if array.auto_rebuild.is_some() || array.drive_group.is_some() {
                anyhow::bail!(
                    "`[array] auto_rebuild` and `drive_group` are for a MegaRAID controller, not `{}`",
                    crate::sanitize::sanitize(backend, false)
                );
            }
            if let Some(d) = drives.iter().find(|d| d.controller.given()) {
                anyhow::bail!(
                    "drive `{}`: `intf`, `pd_state`, `dg`, `foreign` and `smart_alert` are for drives behind a MegaRAID controller, not `{}`",
                    d.label(),
                    crate::sanitize::sanitize(backend, false)
                );
            }
        }
        match backend {
            "megaraid" => Ok(Personality::Megaraid(MegaRaid::new(array, drives)?)),
            "md" if array.level.is_zfs() || array.level == Level::Raid1c3 => {
                anyhow::bail!(
                    "an md scenario's `[array] level` is `raid1`, `raid5`, `raid6` or `raid10`, not `{}`",
                    array.level.name()
                )
            }
            "md" if array.mount.is_some() => {
                anyhow::bail!("`[array] mount` is for btrfs; an md array is not mounted")
            }
            "md" => Ok(Personality::Md(MdArray::new(array, drives))),
            "zfs" if array.mount.is_some() => {
                anyhow::bail!("`[array] mount` is for btrfs; a ZFS pool is named, not mounted")
            }
            "zfs" => Ok(Personality::Zfs(Zpool::new(array, drives)?)),
            "btrfs" => {
                if !matches!(array.level, Level::Raid1 | Level::Raid1c3 | Level::Raid10) {
                    anyhow::bail!(
                        "the simulator plays btrfs `raid1`, `raid1c3` and `raid10`, not `{}`",
                        array.level.name()
                    );
                }
                if !crate::backend::btrfs::sysfs::is_uuid(&array.name) {
                    anyhow::bail!(
                        "a btrfs `[array] name` is the file system's UUID (as `--array` becomes in a real run), not `{}`",
                        crate::sanitize::sanitize(&array.name, false)
                    );
                }
                if array.mount.is_none() {
                    anyhow::bail!(
                        "a btrfs `[array]` needs `mount`, the mount point its commands are given (`/mnt/data`)"
                    );
                }
                Ok(Personality::Btrfs(BtrfsFs::new(array, drives)))
            }
            other => anyhow::bail!(
                "the simulator cannot play the `{}` backend yet",
                crate::sanitize::sanitize(other, false)
            ),
        }
    }

    /// Counters the storage keeps per member rather than the drive itself
    /// (md's `md.errors`, `md.bad_blocks`, ...).
    pub fn keeps_counter(&self, counter: &str) -> bool {
        match self {
            Personality::Md(_) => md_counter(counter),
            Personality::Zfs(_) => counter.starts_with("zfs."),
            Personality::Btrfs(_) => counter.starts_with("btrfs."),
            // The controller reads its counters from the drive: they stay
            // with it when it moves.
            Personality::Megaraid(_) => false,
        }
    }

    /// The array's kernel name (`md0`).
    pub fn array_name(&self) -> &str {
        match self {
            Personality::Md(md) => &md.array.name,
            Personality::Zfs(zp) => &zp.name,
            Personality::Btrfs(fs) => &fs.uuid,
            Personality::Megaraid(mr) => &mr.name,
        }
    }

    /// A fast or full look at the array and every present drive.
    pub fn snapshot(
        &self,
        pool: &Pool,
        array: &str,
        depth: Depth,
        now_ms: u64,
    ) -> Result<Snapshot> {
        match self {
            Personality::Md(md) => md.snapshot(pool, array, depth, now_ms),
            Personality::Zfs(zp) => zp.snapshot(pool, array, depth, now_ms),
            Personality::Btrfs(fs) => fs.snapshot(pool, array, depth, now_ms),
            Personality::Megaraid(mr) => mr.snapshot(pool, array, depth, now_ms),
        }
    }

    /// A scenario event sets a counter the storage keeps on `drive`'s
    /// member. `Err` is the log line when `drive` is no member.
    pub fn set_counter(
        &mut self,
        drive: usize,
        counter: &str,
        value: u64,
        who: &str,
    ) -> Result<Option<u64>, String> {
        match self {
            Personality::Md(md) => match md.any_member(drive) {
                Some(m) => Ok(md.members[m].counters.insert(counter.to_string(), value)),
                None => Err(format!("{who} is not a member; `{counter}` has no meaning")),
            },
            Personality::Zfs(zp) => match zp.any_leaf(drive) {
                Some(l) => Ok(zp.leaves[l].counters.insert(counter.to_string(), value)),
                None => Err(format!("{who} is not a leaf; `{counter}` has no meaning")),
            },
            Personality::Btrfs(fs) => match fs.any_device(drive) {
                Some(d) => Ok(fs.devices[d].counters.insert(counter.to_string(), value)),
                None => Err(format!(
                    "{who} is not a device of {}; `{counter}` has no meaning",
                    fs.mount
                )),
            },
            Personality::Megaraid(_) => Err(format!(
                "the controller keeps no `{counter}` apart from the drive's own"
            )),
        }
    }

    /// A scenario event sets state flags on `drive`'s member; the log line.
    pub fn add_flags(&mut self, drive: usize, flags: &[String], who: &str) -> String {
        match self {
            Personality::Md(md) => match md.any_member(drive) {
                Some(m) => {
                    let have = &mut md.members[m].flags;
                    for f in flags {
                        if !have.contains(f) {
                            have.push(f.clone());
                        }
                    }
                    format!("md set {} on {who}", flags.join(","))
                }
                None => format!("{who} is not a member; md flags have no meaning"),
            },
            Personality::Zfs(zp) => match zp.any_leaf(drive) {
                Some(l) => {
                    let have = &mut zp.leaves[l].flags;
                    for f in flags {
                        if !have.contains(f) {
                            have.push(f.clone());
                        }
                    }
                    format!("ZFS set {} on {who}", flags.join(","))
                }
                None => format!("{who} is not a leaf; ZFS flags have no meaning"),
            },
            Personality::Btrfs(_) => format!(
                "btrfs keeps no such flags; {} on {who} has no meaning",
                flags.join(",")
            ),
            Personality::Megaraid(_) => format!(
                "the controller keeps no md flags; {} on {who} has no meaning",
                flags.join(",")
            ),
        }
    }

    /// A scenario event fails `drive`'s member.
    pub fn fail(
        &mut self,
        pool: &Pool,
        drive: usize,
        who: &str,
        now_ms: u64,
        log: &mut Vec<String>,
    ) {
        match self {
            Personality::Md(md) => match md.any_member(drive) {
                Some(m) => {
                    if md.md_error(pool, m, log) == Failure::AlreadyFaulty {
                        log.push(format!("{who} was faulty already"));
                    }
                }
                None => log.push(format!("{who} is not a member; md has nothing to fail")),
            },
            Personality::Zfs(zp) => zp.fault(pool, drive, who, log),
            // btrfs never fails a device itself: one that stops answering is
            // what it lists as missing.
            Personality::Btrfs(fs) => match fs.any_device(drive) {
                Some(d) => {
                    log.push(format!("{who} stopped answering"));
                    fs.lose(pool, d, now_ms, log);
                }
                None => log.push(format!(
                    "{who} is not a device of {}; btrfs has nothing to lose",
                    fs.mount
                )),
            },
            Personality::Megaraid(mr) => mr.fail(pool, drive, now_ms, log),
        }
    }

    /// A scenario event makes the whole array unreadable; the log line.
    pub fn make_unreadable(&mut self) -> String {
        match self {
            Personality::Md(md) => {
                md.array.unreadable = true;
                format!("array {} can no longer be read", md.array.name)
            }
            Personality::Zfs(zp) => {
                zp.unreadable = true;
                format!("pool {} can no longer be read", zp.name)
            }
            Personality::Btrfs(fs) => {
                fs.unreadable = true;
                format!("btrfs file system {} can no longer be read", fs.mount)
            }
            Personality::Megaraid(mr) => {
                mr.unreadable = true;
                format!("controller /c{} no longer answers storcli", mr.controller)
            }
        }
    }

    /// The pool took `drive` off the bus. When the storage notices only
    /// later, the member to notice and how long it takes (ZFS notices at
    /// once, before any I/O).
    pub fn unplugged(
        &mut self,
        pool: &Pool,
        drive: usize,
        now_ms: u64,
        log: &mut Vec<String>,
    ) -> Option<(usize, Duration)> {
        match self {
            // The controller sees a drive leave at once.
            Personality::Megaraid(mr) => {
                mr.unplugged(pool, drive, now_ms, log);
                None
            }
            Personality::Md(md) => md.unplugged(drive).map(|m| (m, MD_NOTICES_AFTER)),
            Personality::Zfs(zp) => {
                zp.unplugged(pool, drive, log);
                None
            }
            Personality::Btrfs(fs) => fs.unplugged(drive).map(|d| (d, BTRFS_NOTICES_AFTER)),
        }
    }

    /// The pool put `drive` on the bus (a controller looks at it at once).
    pub fn plugged(&mut self, pool: &Pool, drive: usize, now_ms: u64, log: &mut Vec<String>) {
        match self {
            Personality::Megaraid(mr) => mr.plugged(pool, drive, now_ms, log),
            Personality::Md(_) | Personality::Zfs(_) | Personality::Btrfs(_) => {}
        }
    }

    /// The storage notices that `member`'s device is gone.
    pub fn notice_gone(&mut self, pool: &Pool, member: usize, now_ms: u64, log: &mut Vec<String>) {
        match self {
            Personality::Md(md) => {
                let m = &md.members[member];
                if m.removed || !m.detached {
                    return;
                }
                log.push(format!(
                    "md noticed at the next write that {} is gone",
                    md.describe_member(pool, member)
                ));
                md.md_error(pool, member, log);
                md.start_recovery(pool, now_ms, log);
            }
            Personality::Zfs(_) | Personality::Megaraid(_) => {}
            Personality::Btrfs(fs) => {
                if fs.devices[member].detached {
                    fs.lose(pool, member, now_ms, log);
                }
            }
        }
    }

    /// What the storage does by itself after any change (md: start a
    /// recovery onto a spare).
    pub fn settle(&mut self, pool: &Pool, now_ms: u64, log: &mut Vec<String>) {
        match self {
            Personality::Md(md) => md.start_recovery(pool, now_ms, log),
            Personality::Zfs(_) => {}
            // btrfs starts nothing by itself; the controller acts when a
            // drive comes or goes.
            Personality::Btrfs(_) | Personality::Megaraid(_) => {}
        }
    }

    /// When the storage's running work (a rebuild) ends, if any runs.
    pub fn due_at(&self) -> Option<u64> {
        match self {
            Personality::Md(md) => md.recovery_done_at(),
            Personality::Zfs(zp) => zp.resilver_done_at(),
            Personality::Btrfs(fs) => fs.due_at(),
            Personality::Megaraid(mr) => mr.due_at(),
        }
    }

    /// The running work's time has come.
    pub fn on_due(&mut self, pool: &Pool, now_ms: u64, log: &mut Vec<String>) {
        match self {
            Personality::Md(md) => md.finish_recovery(pool, now_ms, log),
            Personality::Zfs(zp) => zp.finish_resilver(pool, log),
            Personality::Btrfs(fs) => fs.on_due(pool, now_ms, log),
            Personality::Megaraid(mr) => mr.on_due(pool, now_ms, log),
        }
    }

    /// Run the storage's own tool (`mdadm`; `zpool`, and `sgdisk` for a
    /// pool on partitions), or `None` when `program` is not one.
    pub fn command(
        &mut self,
        pool: &mut Pool,
        program: &str,
        argv: &[String],
        now_ms: u64,
        log: &mut Vec<String>,
    ) -> Option<Result<CommandOutput>> {
        match self {
            Personality::Md(md) => {
                (program == "mdadm").then(|| mdadm::run(md, pool, argv, now_ms, log))
            }
            Personality::Zfs(zp) => match program {
                "zpool" => Some(zpool_cmd::zpool(zp, pool, argv, now_ms, log)),
                "sgdisk" => Some(zpool_cmd::sgdisk(pool, argv, log)),
                _ => None,
            },
            Personality::Btrfs(fs) => match program {
                "btrfs" => Some(btrfs_cmd::run(fs, pool, argv, now_ms, log)),
                "findmnt" => Some(btrfs_cmd::findmnt(fs, pool, argv)),
                _ => None,
            },
            Personality::Megaraid(mr) => match program {
                "storcli64" | "storcli" | "perccli64" | "perccli" => {
                    Some(megaraid_cmd::run(mr, pool, argv, now_ms, log))
                }
                _ => None,
            },
        }
    }

    /// How long a modelled command, just run, keeps running: until the
    /// work it waits for ends (btrfs: `replace status` without `-1`, a
    /// `balance start` without `--bg`). Zero for everything else.
    pub fn runs_for(&self, argv: &[String], now_ms: u64) -> Duration {
        match self {
            Personality::Md(_) | Personality::Zfs(_) | Personality::Megaraid(_) => Duration::ZERO,
            Personality::Btrfs(fs) => btrfs_cmd::runs_for(fs, argv, now_ms),
        }
    }

    /// For the data canary: the array's level, and the members that hold a
    /// whole copy of a file (`(key, kernel name)`; none unless mirrored).
    pub fn canary_view(&self, pool: &Pool) -> (String, Vec<(DriveKey, String)>) {
        match self {
            Personality::Md(md) => {
                let members = md
                    .members
                    .iter()
                    .filter(|m| {
                        !m.removed
                            && !m.detached
                            && m.state == MemberState::InSync
                            && pool.drives[m.drive].present
                    })
                    .map(|m| {
                        let d = &pool.drives[m.drive];
                        (d.identity().key(), d.dev.clone())
                    })
                    .collect();
                (md.array.level.name().to_string(), members)
            }
            Personality::Zfs(zp) => {
                let members = zp
                    .leaves
                    .iter()
                    .filter(|l| {
                        !l.detached
                            && !l.gone
                            && !l.resilvering
                            && l.state == crate::backend::sim::zpool::LeafState::Online
                            && pool.drives[l.drive].present
                    })
                    .map(|l| {
                        let d = &pool.drives[l.drive];
                        (d.identity().key(), d.dev.clone())
                    })
                    .collect();
                (zp.level.name().to_string(), members)
            }
            // btrfs maps no file to per-device byte ranges (no FIEMAP per
            // device): the canary is read through the file system only.
            Personality::Btrfs(fs) => (fs.profile.name().to_string(), Vec::new()),
            // The controller hides its drives: the canary is read through
            // the virtual drive only.
            Personality::Megaraid(mr) => (mr.level.name().to_string(), Vec::new()),
        }
    }
}

/// md's own counters.
fn md_counter(counter: &str) -> bool {
    counter.starts_with("md.")
}
