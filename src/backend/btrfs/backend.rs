//! The btrfs backend: one look at a mounted multi-device btrfs file system
//! and every whole disk present.
//!
//! What one look reads, cheapest first:
//!
//! - `/sys/fs/btrfs/<uuid>/` (sysfs.rs): devids, `missing`,
//!   `replace_target`, `in_fs_metadata`, `writeable`, the five error
//!   counters (`error_stats`, kernels since 5.14), chunk profiles
//!   (`allocation/`), member block devices (`devices/`) and the running
//!   exclusive operation (`exclusive_operation`: balance, replace, ...);
//! - `btrfs filesystem show --raw MNT`: which devid is which block device
//!   (sysfs has no such link). Run again only when the devids or the block
//!   devices sysfs lists change;
//! - `btrfs device stats MNT` only where the kernel has no `error_stats`;
//!   `btrfs filesystem df --raw MNT` only where sysfs has no `allocation/`;
//! - `btrfs replace status -1 MNT` while a replace runs (devid 0 exists),
//!   `btrfs balance status MNT` while a balance runs (or on every look when
//!   the kernel has no `exclusive_operation`), `btrfs scrub status MNT` in a
//!   full look;
//! - every whole disk's identity (shared code, src/backend/disk/), the
//!   kernel log's I/O errors in a guarded run, and SMART as for md.
//!
//! A btrfs call that fails, times out or prints what its parser refuses is
//! a `Problem` (fail closed), never a healthy default. The snapshot follows
//! the convention in `facts.rs` and goes through `facts::annotate`, as the
//! simulator's do.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::backend::btrfs::profile::{Allocation, ChunkKind, Profile};
use crate::backend::btrfs::{ErrorStats, facts, progs, sysfs};
use crate::backend::disk::identity::{ByIdIndex, PciSlots};
use crate::backend::disk::ioerr::{self, IoerrLedger};
use crate::backend::disk::kmsg::{self, KernelLog};
use crate::backend::disk::uevent::{self, UeventSource};
use crate::backend::disk::{blank, devpath, identity, read_attr};
use crate::backend::led;
use crate::backend::process::ProcessRunner;
use crate::backend::smart::poller::{ProbeFn, RunnerFactory, SmartPoller};
use crate::backend::{Backend, CommandOutput, CommandRunner, Depth, LocateOutcome, Running, smart};
use crate::clock::{Clock, SystemClock};
use crate::health::model::{
    ArrayHealth, Drive, Identity, MemberState, Membership, Problem, Snapshot, SyncProgress,
};

/// How long one `btrfs` call may take. They are ioctls on a mounted file
/// system and return in milliseconds; a hung one is a problem.
const TOOL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one `smartctl` run may take.
const SMART_TIMEOUT: Duration = Duration::from_secs(30);

/// How often `wait` looks at sysfs and the kernel log when nothing wakes
/// it sooner: btrfs has no event file to block on.
pub const POLL: Duration = Duration::from_millis(100);

/// How long a wait woken by a disk's `remove` event waits for the disk to
/// leave `/sys/block` before the look (a few ms in the lab).
const REMOVAL_SETTLE: Duration = Duration::from_millis(100);

/// The btrfs backend.
pub struct BtrfsBackend {
    /// `/` on a real host; a captured tree in tests.
    pub root: PathBuf,
    runner: Box<dyn CommandRunner>,
    clock: Box<dyn Clock>,
    poller: SmartPoller,
    processes: Option<ProcessRunner>,
    ioerr: Arc<IoerrLedger>,
    kmsg_path: Option<PathBuf>,
    kernel_log: Option<KernelLog>,
    /// The devices of the last `filesystem show` by devid, and what sysfs
    /// listed when it was taken (devids, block devices and whether each
    /// still leads to a device): reused while that holds.
    devmap: Option<(DevmapKey, DevMap)>,
    /// The sizes btrfs keeps for its missing devices (`device usage`), and
    /// which devids were missing when they were read.
    missing_sizes: Option<(MissingKey, BTreeMap<u64, u64>)>,
    /// The last look's sysfs signature, for `wait`.
    watched: Option<(String, String)>,
    /// Kernel uevents, for a guarded run: `None` until its first look
    /// tries to listen, then the source or why there is none.
    uevents: Option<Result<Box<dyn UeventSource>, String>>,
    /// Said once to the technician, then cleared.
    notices: Vec<String>,
}

type DevmapKey = (String, Vec<u64>, Vec<(String, bool)>);

/// A file system's UUID and its missing devids.
type MissingKey = (String, Vec<u64>);

/// `btrfs filesystem show`'s devices by devid.
type DevMap = BTreeMap<u64, progs::ShowDevice>;

/// Members by whole disk: membership and btrfs counters.
type Members = BTreeMap<String, (Membership, BTreeMap<String, u64>)>;

impl BtrfsBackend {
    pub fn new(root: PathBuf, runner: Box<dyn CommandRunner>) -> Self {
        let ioerr = Arc::new(IoerrLedger::new(root.join("sys/block"), false));
        BtrfsBackend {
            runner,
            clock: Box::new(SystemClock::new()),
            poller: SmartPoller::new(
                Arc::new(|| Box::new(ProcessRunner::default())),
                SMART_TIMEOUT,
            )
            .with_probe(discounted_probe(&ioerr)),
            processes: None,
            ioerr,
            kmsg_path: None,
            kernel_log: None,
            devmap: None,
            missing_sizes: None,
            watched: None,
            uevents: None,
            notices: Vec::new(),
            root,
        }
    }

    /// The backend of a real run: every program runs through `processes`.
    pub fn real(root: PathBuf, processes: ProcessRunner) -> Self {
        let factory = processes.clone();
        let mut backend = BtrfsBackend::new(root, Box::new(processes.clone()))
            .with_smart_runner(Arc::new(move || Box::new(factory.clone())));
        backend.processes = Some(processes);
        backend
    }

    pub fn with_smart_runner(mut self, factory: RunnerFactory) -> Self {
        self.poller =
            SmartPoller::new(factory, SMART_TIMEOUT).with_probe(discounted_probe(&self.ioerr));
        self
    }

    /// For a guarded run: the kernel log's I/O errors as
    /// `kernel.io_errors` (btrfs does not count a write the block layer
    /// failed with `BLK_STS_NOSPC`; the kernel log does) and `io.ioerr_cnt`
    /// from the first look.
    pub fn watching(mut self, kmsg: PathBuf) -> Self {
        self.ioerr = Arc::new(IoerrLedger::new(self.root.join("sys/block"), true));
        self.poller.set_probe(discounted_probe(&self.ioerr));
        self.kmsg_path = Some(kmsg);
        self
    }

    /// Tests: listen to `source` instead of the kernel.
    #[cfg(test)]
    pub(super) fn with_uevents(mut self, source: Box<dyn UeventSource>) -> Self {
        self.uevents = Some(Ok(source));
        self
    }

    pub fn with_clock(mut self, clock: Box<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Run `btrfs ARGS`; Err with what went wrong (failed to start, timed
    /// out, exit code not among `ok_codes`).
    fn btrfs(&mut self, args: &[&str], ok_codes: &[i32]) -> Result<CommandOutput, String> {
        let mut argv = vec!["btrfs".to_string()];
        argv.extend(args.iter().map(|a| a.to_string()));
        let shown = argv.join(" ");
        let out = self
            .runner
            .run(&argv, TOOL_TIMEOUT)
            .map_err(|e| format!("`{shown}` could not run: {e:#}"))?;
        if out.timed_out {
            return Err(format!(
                "`{shown}` did not answer within {}s",
                TOOL_TIMEOUT.as_secs()
            ));
        }
        match out.code {
            Some(code) if ok_codes.contains(&code) => Ok(out),
            code => Err(format!(
                "`{shown}` failed ({}): {}",
                code.map_or("killed by a signal".to_string(), |c| format!("exit {c}")),
                first_line(&out.stderr).unwrap_or("no message")
            )),
        }
    }

    /// The devid → device map (block device path, `MISSING`), from
    /// `filesystem show` unless sysfs lists the same devids and devices as
    /// last time, each still leading to a block device. A pulled member
    /// stays in sysfs (`missing` 0, its `devices/` link dangling): that
    /// change runs `filesystem show` again, which says `MISSING`.
    fn devmap(
        &mut self,
        uuid: &str,
        mnt: &str,
        look: &sysfs::FsLook,
        problems: &mut Vec<Problem>,
    ) -> DevMap {
        let devices_dir = sysfs::fs_dir(&self.root, uuid)
            .map(|d| d.join("devices"))
            .unwrap_or_default();
        let key = (
            uuid.to_string(),
            look.devices.iter().map(|d| d.devid).collect(),
            look.members
                .iter()
                .map(|m| (m.clone(), devices_dir.join(m).exists()))
                .collect(),
        );
        if let Some((k, map)) = &self.devmap
            && *k == key
        {
            return map.clone();
        }
        let show = self
            .btrfs(&["filesystem", "show", "--raw", mnt], &[0])
            .and_then(|out| progs::parse_show(&out.stdout));
        match show {
            Ok(show) if show.uuid == uuid => {
                let map: DevMap = show.devices.into_iter().map(|d| (d.devid, d)).collect();
                self.devmap = Some((key, map.clone()));
                map
            }
            Ok(show) => {
                problems.push(problem(
                    uuid,
                    format!(
                        "`btrfs filesystem show {mnt}` shows file system {}, not {uuid}",
                        show.uuid
                    ),
                ));
                BTreeMap::new()
            }
            Err(why) => {
                problems.push(problem(uuid, why));
                BTreeMap::new()
            }
        }
    }

    /// `btrfs device stats MNT` by devid, for a kernel without
    /// `error_stats`.
    fn device_stats(
        &mut self,
        uuid: &str,
        mnt: &str,
        devmap: &DevMap,
        problems: &mut Vec<Problem>,
    ) -> BTreeMap<u64, ErrorStats> {
        let parsed = self
            .btrfs(&["device", "stats", mnt], &[0, 64])
            .and_then(|out| progs::parse_device_stats(&out.stdout));
        let mut out = BTreeMap::new();
        match parsed {
            Ok(list) => {
                for d in list {
                    let devid = d.devid.or_else(|| {
                        let path = d.path.as_deref()?;
                        devmap
                            .iter()
                            .find(|(_, d)| d.path.as_deref() == Some(path))
                            .map(|(id, _)| *id)
                    });
                    match devid {
                        Some(id) => {
                            out.insert(id, d.stats);
                        }
                        None => problems.push(problem(
                            uuid,
                            format!(
                                "`btrfs device stats {mnt}` lists `{}`, which is no devid of the file system",
                                d.path.as_deref().unwrap_or("?")
                            ),
                        )),
                    }
                }
            }
            Err(why) => problems.push(problem(uuid, why)),
        }
        out
    }

    /// Replace, balance or scrub progress, in 512-byte sectors.
    fn progress(
        &mut self,
        uuid: &str,
        mnt: &str,
        look: &sysfs::FsLook,
        fs_bytes: u64,
        depth: Depth,
        problems: &mut Vec<Problem>,
    ) -> Option<SyncProgress> {
        let sectors = fs_bytes / SyncProgress::UNIT_BYTES;
        let exclusive = read_attr(
            &sysfs::fs_dir(&self.root, uuid)
                .ok()?
                .join("exclusive_operation"),
        )
        .ok()
        .flatten();
        // devid 0 is the replace target while a replace runs; the
        // exclusive operation says so too (`device replace`).
        let replacing = look.devices.iter().any(|d| d.devid == 0)
            || exclusive
                .as_deref()
                .is_some_and(|op| op.contains("replace"));
        if replacing {
            match self
                .btrfs(&["replace", "status", "-1", mnt], &[0])
                .and_then(|out| progs::parse_replace_status(&out.stdout))
            {
                Ok(progs::ReplaceStatus::Running { permille, .. }) => {
                    // btrfs gives a per mille: scaled to the data the file
                    // system holds (at least 1000 units, so a small file
                    // system keeps the resolution).
                    let total = sectors.max(1000);
                    let done =
                        u64::try_from(u128::from(total) * u128::from(permille.min(1000)) / 1000)
                            .unwrap_or(total);
                    return Some(SyncProgress {
                        action: "replace".into(),
                        done,
                        total,
                        speed_kib: None,
                    });
                }
                // devid 0 still there: the replace is finishing.
                Ok(_) => {
                    return Some(SyncProgress {
                        action: "replace".into(),
                        done: sectors,
                        total: sectors,
                        speed_kib: None,
                    });
                }
                Err(why) => problems.push(problem(uuid, why)),
            }
        }
        let balance_may_run = match exclusive.as_deref() {
            Some(op) => op.starts_with("balance"),
            None => true,
        };
        if balance_may_run {
            let status = self
                .btrfs(&["balance", "status", mnt], &[0, 1])
                .and_then(|out| progs::parse_balance_status(&out.stdout, out.code.unwrap_or(-1)));
            match status {
                Ok(progs::BalanceStatus::Running {
                    completed,
                    expected,
                    ..
                }) => {
                    return Some(SyncProgress {
                        action: "balance".into(),
                        done: completed,
                        total: expected.max(completed),
                        speed_kib: None,
                    });
                }
                Ok(progs::BalanceStatus::None) => {}
                Err(why) => problems.push(problem(uuid, why)),
            }
        }
        if depth == Depth::Full {
            match self
                .btrfs(&["scrub", "status", mnt], &[0])
                .and_then(|out| progs::parse_scrub_status(&out.stdout))
            {
                Ok(s) if s.state == progs::ScrubState::Running => {
                    return Some(SyncProgress {
                        action: "scrub".into(),
                        done: 0,
                        total: 0,
                        speed_kib: None,
                    });
                }
                Ok(_) => {}
                Err(why) => problems.push(problem(uuid, why)),
            }
        }
        None
    }

    /// The size btrfs keeps for each missing device, from `btrfs device
    /// usage --raw` (`filesystem show` prints 0 for a device it cannot
    /// open). Asked only while a device is missing, once per set of
    /// missing devids: a new drive must be at least that large.
    fn missing_sizes(
        &mut self,
        uuid: &str,
        mnt: &str,
        look: &sysfs::FsLook,
        devmap: &DevMap,
        problems: &mut Vec<Problem>,
    ) -> BTreeMap<u64, u64> {
        let missing: Vec<u64> = look
            .devices
            .iter()
            .filter(|d| d.missing || devmap.get(&d.devid).is_some_and(|s| s.missing))
            .map(|d| d.devid)
            .collect();
        if missing.is_empty() {
            return BTreeMap::new();
        }
        let key = (uuid.to_string(), missing.clone());
        if let Some((k, sizes)) = &self.missing_sizes
            && *k == key
        {
            return sizes.clone();
        }
        let usage = self
            .btrfs(&["device", "usage", "--raw", mnt], &[0])
            .and_then(|out| {
                progs::parse_device_usage(&out.stdout)
                    .map_err(|e| format!("`btrfs device usage --raw {mnt}`: {e}"))
            });
        let mut sizes = BTreeMap::new();
        match usage {
            Ok(list) => {
                for devid in &missing {
                    match list.iter().find(|u| u.devid == *devid) {
                        Some(u) if u.size > 0 => {
                            sizes.insert(*devid, u.size);
                        }
                        _ => problems.push(problem(
                            &format!("devid {devid}"),
                            format!(
                                "`btrfs device usage --raw {mnt}` gives no size for the missing device"
                            ),
                        )),
                    }
                }
                if sizes.len() == missing.len() {
                    self.missing_sizes = Some((key, sizes.clone()));
                }
            }
            Err(why) => problems.push(problem(uuid, why)),
        }
        sizes
    }

    /// Chunk profiles: sysfs `allocation/`, or `filesystem df` where the
    /// kernel has none.
    fn allocations(
        &mut self,
        uuid: &str,
        mnt: &str,
        look: &sysfs::FsLook,
        problems: &mut Vec<Problem>,
    ) -> Vec<Allocation> {
        if !look.allocations.is_empty() {
            return look.allocations.clone();
        }
        match self
            .btrfs(&["filesystem", "df", "--raw", mnt], &[0])
            .and_then(|out| progs::parse_df(&out.stdout))
        {
            Ok(list) => list,
            Err(why) => {
                problems.push(problem(uuid, why));
                Vec::new()
            }
        }
    }

    /// Every whole disk present, with the file system's devices as members.
    fn drives(
        &mut self,
        uuid: &str,
        members: Members,
        depth: Depth,
        problems: &mut Vec<Problem>,
    ) -> Vec<Drive> {
        let sys_block = self.root.join("sys/block");
        let mut disks: BTreeSet<String> = match identity::whole_disks(&sys_block) {
            Ok(disks) => disks.into_iter().collect(),
            Err(err) => {
                problems.push(Problem {
                    probe: "identity".into(),
                    subject: "sys/block".into(),
                    message: format!("{err:#}"),
                });
                BTreeSet::new()
            }
        };
        disks.extend(members.keys().cloned());
        if let Some(path) = &self.kmsg_path {
            let log = self.kernel_log.get_or_insert_with(|| KernelLog::open(path));
            problems.extend(log.drain(&disks));
        }
        self.ioerr.retain(&disks);
        let mut background = match depth {
            Depth::Watch { smart_due } => {
                if smart_due {
                    self.poller.start(disks.iter().cloned().collect());
                }
                self.poller.take()
            }
            Depth::Fast | Depth::Full => BTreeMap::new(),
        };
        let by_id = ByIdIndex::scan(&self.root.join("dev/disk/by-id"), problems);
        let enclosures = identity::enclosures_present(&self.root);
        let slots = PciSlots::scan(&self.root);
        let mut members = members;
        let mut drives = Vec::with_capacity(disks.len());
        for disk in disks {
            if !sys_block.join(&disk).exists() {
                // A member whose block device has gone (pulled): no Drive,
                // its serial vanishing is the signal, as for md.
                continue;
            }
            // Pulled while this look reads it: gone, not unreadable (the
            // lab's hot replace, pulling the old drive, halted on this).
            let Some(id) = identity::read_disk_settled(
                &sys_block, &disk, &by_id, enclosures, &slots, problems,
            ) else {
                continue;
            };
            let mut counters = BTreeMap::new();
            match self.ioerr.read(&disk) {
                Ok(Some(count)) => {
                    counters.insert(ioerr::COUNTER.to_string(), count);
                }
                Ok(None) => {}
                Err(message) => problems.push(Problem {
                    probe: "counters".into(),
                    subject: disk.clone(),
                    message,
                }),
            }
            if let Some(log) = self.kernel_log.as_ref().filter(|l| l.is_open()) {
                counters.insert(kmsg::COUNTER.to_string(), log.count(&disk));
            }
            let member = members.remove(&disk).map(|(m, c)| {
                counters.extend(c);
                m
            });
            let (smart, blank) = match depth {
                Depth::Fast => (None, None),
                Depth::Watch { .. } => (background.remove(&disk), None),
                Depth::Full => (
                    Some(self.ioerr.probe(&disk, || {
                        smart::probe(&mut *self.runner, &format!("/dev/{disk}"), SMART_TIMEOUT)
                    })),
                    blank::is_blank(&self.root.join("dev").join(&disk), &sys_block.join(&disk)),
                ),
            };
            drives.push(Drive {
                id,
                member,
                counters,
                smart,
                blank,
                faults: Vec::new(),
            });
        }
        let _ = uuid;
        drives
    }
}

fn discounted_probe(ledger: &Arc<IoerrLedger>) -> ProbeFn {
    let ledger = Arc::clone(ledger);
    Arc::new(move |runner, disk, timeout| {
        ledger.probe(disk, || {
            smart::probe(runner, &format!("/dev/{disk}"), timeout)
        })
    })
}

fn problem(subject: &str, message: String) -> Problem {
    Problem {
        probe: "btrfs".into(),
        subject: subject.to_string(),
        message,
    }
}

fn first_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|l| !l.is_empty())
}

/// The identity of a device btrfs lists as missing: nothing can be read
/// from it, so it has no kernel name (the engine's gone-device shape,
/// `Drive::device_gone`, which the simulator's missing device has too), no
/// serial, and only the size btrfs keeps for it (`None` when that could not
/// be read, and then the look has a problem saying so). Its devid is its
/// member name.
pub fn missing_identity(size: Option<u64>) -> Identity {
    Identity {
        size_bytes: size,
        ..Identity::default()
    }
}

/// One btrfs mount from `/proc/self/mountinfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted (octal escapes undone).
    pub point: String,
    /// The subvolume's path inside the file system (`/` for the top).
    pub root: String,
    /// The block device it was mounted from (`/dev/sdb`).
    pub source: String,
}

/// The btrfs mounts in a mountinfo text. Lines that are not mountinfo
/// lines are skipped; a btrfs line without its fields is an error.
pub fn btrfs_mounts(mountinfo: &str) -> Result<Vec<Mount>, String> {
    let mut out = Vec::new();
    for (n, line) in mountinfo.lines().enumerate() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.get(sep + 1) != Some(&"btrfs") {
            continue;
        }
        let (Some(root), Some(point), Some(source)) =
            (fields.get(3), fields.get(4), fields.get(sep + 2))
        else {
            return Err(format!("mountinfo line {} is cut short: `{line}`", n + 1));
        };
        if sep < 6 {
            return Err(format!("mountinfo line {} is cut short: `{line}`", n + 1));
        }
        out.push(Mount {
            point: unescape(point),
            root: unescape(root),
            source: unescape(source),
        });
    }
    Ok(out)
}

/// Undo mountinfo's octal escapes (`\040` for a space).
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl BtrfsBackend {
    fn mounts(&self) -> Result<Vec<Mount>, String> {
        let path = self.root.join("proc/self/mountinfo");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        btrfs_mounts(&text).map_err(|e| format!("cannot parse `{}`: {e}", path.display()))
    }

    /// The file system a mount belongs to: the one whose `devices/` lists
    /// the block device it was mounted from.
    fn uuid_of_mount(&self, mount: &Mount, known: &[String]) -> Option<String> {
        let kname = mount_kname(&self.root, &mount.source)?;
        known
            .iter()
            .find(|uuid| {
                sysfs::fs_dir(&self.root, uuid)
                    .is_ok_and(|dir| dir.join("devices").join(&kname).exists())
            })
            .cloned()
    }

    /// Where the file system `uuid` is mounted (its top first).
    fn mount_point(&self, uuid: &str) -> Result<String, String> {
        let mounts = self.mounts()?;
        let known = [uuid.to_string()];
        let mut found: Vec<&Mount> = mounts
            .iter()
            .filter(|m| self.uuid_of_mount(m, &known).is_some())
            .collect();
        found.sort_by_key(|m| m.root != "/");
        found
            .first()
            .map(|m| m.point.clone())
            .ok_or_else(|| format!("btrfs file system {uuid} is not mounted (not in mountinfo)"))
    }
}

/// The kernel name of a mount's source device (`/dev/sdb1` → `sdb1`,
/// `/dev/mapper/x` → `dm-0`), resolving links under `root`.
fn mount_kname(root: &Path, source: &str) -> Option<String> {
    let rel = source.strip_prefix('/')?;
    let path = root.join(rel);
    let resolved = std::fs::canonicalize(&path).unwrap_or(path);
    resolved
        .file_name()?
        .to_str()
        .map(str::to_string)
        .filter(|n| !n.is_empty() && !n.contains('/'))
}

impl Backend for BtrfsBackend {
    fn name(&self) -> &'static str {
        "btrfs"
    }

    /// The file systems under `/sys/fs/btrfs/` (mounted ones), by UUID.
    fn arrays(&mut self) -> Result<Vec<String>> {
        let dir = self.root.join("sys/fs/btrfs");
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| anyhow::anyhow!("cannot list `{}`: {e}", dir.display()))?;
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| sysfs::is_uuid(n))
            .collect();
        names.sort();
        Ok(names)
    }

    fn unavailable(&self) -> Option<String> {
        let sys = self.root.join("sys");
        let dir = self.root.join("sys/fs/btrfs");
        let missing = matches!(
            std::fs::symlink_metadata(&dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound
        );
        (missing && sys.is_dir()).then(|| {
            format!(
                "btrfs is not available on this kernel (no `{}`; is the btrfs module loaded?)",
                dir.display()
            )
        })
    }

    /// A UUID, or the mount point of a btrfs file system: an absolute path
    /// to an existing directory, with no symbolic link in it, that
    /// mountinfo lists as a btrfs mount.
    fn canonical_array(&self, given: &str, known: &[String]) -> Result<String, String> {
        let shown = crate::sanitize::sanitize(given, false);
        let list = if known.is_empty() {
            "none mounted".to_string()
        } else {
            known.join(", ")
        };
        if sysfs::is_uuid(given) {
            let lower = given.to_ascii_lowercase();
            return known
                .iter()
                .find(|k| **k == lower)
                .cloned()
                .ok_or_else(|| {
                    format!("`--array {shown}`: no mounted btrfs file system has this UUID (file systems here: {list})")
                });
        }
        if !given.starts_with('/') {
            return Err(format!(
                "`--array {shown}`: give a btrfs file system's UUID or the absolute path of its mount point"
            ));
        }
        let path = Path::new(given);
        let real = std::fs::canonicalize(path)
            .map_err(|e| format!("`--array {shown}`: cannot resolve the mount point: {e}"))?;
        let trimmed = if given.len() > 1 {
            given.trim_end_matches('/')
        } else {
            given
        };
        if real != Path::new(trimmed) {
            return Err(format!(
                "`--array {shown}`: the path goes through a symbolic link or `..` (it is `{}`); give the mount point itself",
                crate::sanitize::sanitize(&real.to_string_lossy(), false)
            ));
        }
        if !real.is_dir() {
            return Err(format!("`--array {shown}`: not a directory"));
        }
        let mounts = self
            .mounts()
            .map_err(|e| format!("`--array {shown}`: {e}"))?;
        let mount = mounts
            .iter()
            .rev()
            .find(|m| Path::new(&m.point) == real)
            .ok_or_else(|| {
                format!("`--array {shown}`: not a btrfs mount point (file systems here: {list})")
            })?;
        self.uuid_of_mount(mount, known).ok_or_else(|| {
            format!(
                "`--array {shown}`: mounted from `{}`, which no mounted btrfs file system lists as a device",
                crate::sanitize::sanitize(&mount.source, false)
            )
        })
    }

    fn snapshot(&mut self, array: &str, depth: Depth) -> Result<Snapshot> {
        if !sysfs::is_uuid(array) {
            bail!("`{array}` is not a btrfs file-system UUID");
        }
        let uuid = array;
        // What `wait` compares against is read before the look: a change
        // between the look's reads and the end of the look then still
        // wakes the next wait (read after, it hid a counter rise that came
        // mid-look until the wait timed out).
        let signature = self.signature(uuid);
        let mut problems = Vec::new();
        let look = sysfs::read_fs(&self.root, uuid, &mut problems)
            .map_err(|e| anyhow::anyhow!("btrfs file system {uuid}: {e}"))?;
        let mnt = match self.mount_point(uuid) {
            Ok(mnt) => Some(mnt),
            Err(why) => {
                problems.push(problem(uuid, why));
                None
            }
        };
        let (devmap, sizes, allocations, sync, tool_stats) = match &mnt {
            Some(mnt) => {
                let devmap = self.devmap(uuid, mnt, &look, &mut problems);
                let sizes = self.missing_sizes(uuid, mnt, &look, &devmap, &mut problems);
                let allocations = self.allocations(uuid, mnt, &look, &mut problems);
                let fs_bytes: u64 = allocations.iter().map(|a| a.used_bytes).sum();
                let sync = self.progress(uuid, mnt, &look, fs_bytes, depth, &mut problems);
                let tool_stats = if look
                    .devices
                    .iter()
                    .any(|d| d.errors.is_none() && !d.missing)
                {
                    self.device_stats(uuid, mnt, &devmap, &mut problems)
                } else {
                    BTreeMap::new()
                };
                (devmap, sizes, allocations, sync, tool_stats)
            }
            None => (
                BTreeMap::new(),
                BTreeMap::new(),
                look.allocations.clone(),
                None,
                BTreeMap::new(),
            ),
        };
        let (members, missing_drives) =
            self.members(uuid, &look, &devmap, &sizes, &tool_stats, &mut problems);
        let mut drives = self.drives(uuid, members, depth, &mut problems);
        drives.extend(missing_drives);
        let profiles: Vec<(ChunkKind, Profile)> = allocations
            .iter()
            .filter(|a| a.total_bytes > 0)
            .map(|a| (a.kind, a.profile))
            .collect();
        let level = profiles
            .iter()
            .filter(|(k, _)| *k == ChunkKind::Data)
            .map(|(_, p)| *p)
            .max_by_key(|p| p.tolerance())
            .map_or_else(|| "unknown".to_string(), |p| p.name().to_string());
        let raid_disks = look.devices.iter().filter(|d| d.devid != 0).count();
        let mut snap = Snapshot {
            at_ms: self.clock.now_ms(),
            array: ArrayHealth {
                name: uuid.to_string(),
                level,
                state: facts::state_words(&profiles),
                running: false,
                raid_disks: u32::try_from(raid_disks).unwrap_or(u32::MAX),
                degraded: 0,
                sync,
                redundancy_left: 0,
            },
            drives,
            problems,
        };
        facts::annotate(&mut snap);
        self.watched = Some(signature);
        if self.uevents.is_none() && self.kmsg_path.is_some() {
            // A guarded run listens from its first look on, so a survivor
            // pulled during any later wait ends that wait at once.
            self.uevents = Some(uevent::open().map_err(|err| format!("{err:#}")));
            if let Some(Err(err)) = &self.uevents {
                self.notices.push(uevent::unavailable_notice(err));
            }
        }
        Ok(snap)
    }

    /// btrfs has no event file: look at sysfs (devinfo, allocation,
    /// exclusive operation) and the kernel log every `POLL` until something
    /// changed or `timeout` passes; between those reads, listen to the
    /// kernel's device events, so a disk removed or added ends the wait at
    /// once.
    fn wait(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let Some((uuid, before)) = self.watched.clone() else {
            std::thread::sleep(timeout);
            return Ok(());
        };
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            let slice = POLL.min(deadline - now);
            match &mut self.uevents {
                Some(Ok(source)) => {
                    // A disk removed or added (a pulled survivor: btrfs
                    // itself notices only at its next I/O) ends the wait
                    // at once; the look that follows says what it was.
                    let heard = uevent::wait_on(source.as_mut(), slice)?;
                    if heard.wakes_a_watch() {
                        uevent::settle_removals(
                            &heard,
                            &self.root.join("sys/block"),
                            REMOVAL_SETTLE,
                        );
                        return Ok(());
                    }
                }
                _ => std::thread::sleep(slice),
            }
            if self.signature(&uuid).1 != before {
                return Ok(());
            }
            if let Some(log) = &mut self.kernel_log
                && log.pending()
            {
                return Ok(());
            }
        }
    }

    fn notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    fn execute(&mut self, argv: &[String], timeout: Duration) -> Result<CommandOutput> {
        self.runner.run(argv, timeout)
    }

    fn start(&mut self, argv: &[String], timeout: Duration) -> Result<Box<dyn Running>> {
        match &self.processes {
            Some(p) => Ok(Box::new(p.start(argv, timeout)?)),
            None => Ok(Box::new(crate::backend::Finished(
                self.runner.run(argv, timeout)?,
            ))),
        }
    }

    fn locate(&mut self, drive: &Identity, on: bool) -> Result<LocateOutcome> {
        Ok(led::locate(&self.root, &mut *self.runner, drive, on))
    }

    fn resolve_arg(&mut self, arg: &str) -> Option<crate::backend::ArgDevice> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        Some(devpath::resolve(&self.root, &cwd, arg))
    }
}

impl BtrfsBackend {
    /// What `wait` compares: every devinfo file, the allocation tree and
    /// the exclusive operation, read as text.
    fn signature(&self, uuid: &str) -> (String, String) {
        let mut text = String::new();
        if let Ok(dir) = sysfs::fs_dir(&self.root, uuid) {
            collect_tree(&dir.join("devinfo"), 2, &mut text);
            collect_tree(&dir.join("devices"), 0, &mut text);
            collect_tree(&dir.join("allocation"), 3, &mut text);
            if let Ok(Some(op)) = read_attr(&dir.join("exclusive_operation")) {
                text.push_str(&op);
            }
        }
        (uuid.to_string(), text)
    }

    /// The file system's devices as members, keyed by whole disk, and a
    /// Drive for each missing device.
    fn members(
        &self,
        uuid: &str,
        look: &sysfs::FsLook,
        devmap: &DevMap,
        sizes: &BTreeMap<u64, u64>,
        tool_stats: &BTreeMap<u64, ErrorStats>,
        problems: &mut Vec<Problem>,
    ) -> (Members, Vec<Drive>) {
        let mut members = BTreeMap::new();
        let mut missing = Vec::new();
        let devices_dir = sysfs::fs_dir(&self.root, uuid)
            .map(|d| d.join("devices"))
            .unwrap_or_default();
        for dev in &look.devices {
            // sysfs says `missing` only for a device absent at mount time;
            // one pulled since is `MISSING` in `filesystem show` alone.
            let gone = dev.missing || devmap.get(&dev.devid).is_some_and(|d| d.missing);
            let mut flags = Vec::new();
            for (on, flag) in [
                (gone, "missing"),
                (dev.replace_target, "replace_target"),
                (dev.in_fs_metadata, "in_fs_metadata"),
                (dev.writeable == Some(true), "writeable"),
            ] {
                if on {
                    flags.push(flag.to_string());
                }
            }
            let membership = Membership {
                state: MemberState::InSync,
                role: u32::try_from(dev.devid).ok(),
                flags,
                name: Some(dev.devid.to_string()),
            };
            let stats = dev.errors.or_else(|| tool_stats.get(&dev.devid).copied());
            let mut counters = BTreeMap::new();
            match stats {
                Some(stats) => {
                    for (name, value) in stats.named() {
                        counters.insert(name.to_string(), value);
                    }
                }
                // Missing: nothing to ask. The replace target: btrfs keeps
                // no counters for it (it is not a device of the file
                // system until the replace finishes).
                None if gone || dev.devid == 0 => {}
                None => problems.push(problem(
                    &format!("devid {}", dev.devid),
                    "no error counters: sysfs has no `error_stats` and `btrfs device stats` did not list the device".into(),
                )),
            }
            if gone {
                missing.push(Drive {
                    id: missing_identity(sizes.get(&dev.devid).copied()),
                    member: Some(membership),
                    counters,
                    smart: None,
                    blank: None,
                    faults: Vec::new(),
                });
                continue;
            }
            let Some(path) = devmap.get(&dev.devid).and_then(|d| d.path.as_ref()) else {
                if !devmap.is_empty() {
                    problems.push(problem(
                        &format!("devid {}", dev.devid),
                        "`btrfs filesystem show` gives no block device for it".into(),
                    ));
                }
                continue;
            };
            let Some(kname) = mount_kname(&self.root, path) else {
                problems.push(problem(
                    &format!("devid {}", dev.devid),
                    format!("`{path}` is not a block device path"),
                ));
                continue;
            };
            // `devices/<kname>` is the kernel's own link to the device
            // btrfs holds. When it no longer leads where `<kname>` does
            // now, that device is gone and another took its name (a new
            // drive in the bay): that one is no member.
            let link = devices_dir.join(&kname);
            if std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()) {
                let held = std::fs::canonicalize(&link).ok();
                let named =
                    std::fs::canonicalize(self.root.join("sys/class/block").join(&kname)).ok();
                if held.is_none() || held != named {
                    continue;
                }
            }
            let Some(disk) = identity::member_disk(&self.root, &link, &kname) else {
                // Its block device is gone (pulled): no Drive, as for md.
                continue;
            };
            if members
                .insert(disk.clone(), (membership, counters))
                .is_some()
            {
                problems.push(problem(
                    uuid,
                    format!("two devices of the file system are on the same disk `{disk}`"),
                ));
            }
        }
        (members, missing)
    }
}

/// Append every regular file under `dir` (to `depth` levels) as
/// `path=content` lines, sorted.
fn collect_tree(dir: &Path, depth: u32, out: &mut String) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        out.push_str(&format!("{}: unreadable\n", dir.display()));
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() && depth > 0 {
            collect_tree(&path, depth - 1, out);
        } else if meta.is_file() {
            if let Ok(Some(text)) = read_attr(&path) {
                out.push_str(&format!("{}={text}\n", path.display()));
            }
        } else {
            out.push_str(&format!("{}\n", path.display()));
        }
    }
}
