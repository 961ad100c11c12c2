//! Linux md (mdadm) arrays, read from /proc and /sys directly.
//!
//! One look combines sysfs (authoritative: `sysfs.rs`), /proc/mdstat (a
//! cross-check: `mdstat.rs`), every whole disk present with its identity
//! (`backend/disk/identity.rs`) and, for a full look, blankness
//! (`backend/disk/blank.rs`) and SMART.
//! Waiting is event-driven on /proc/mdstat (`watch.rs`). All paths hang off
//! `root`, `/` on a real host or a captured tree in tests, so tests run the
//! exact code a real swap runs.

pub mod copies;
pub mod facts;
pub mod mdstat;
pub mod name;
pub mod sysfs;
pub mod watch;

#[cfg(test)]
mod capture_tests;
#[cfg(test)]
mod tests;

/// Open md on a real host: the registry's constructor for `backend = "md"`.
pub fn open(host: crate::backend::registry::Host) -> Result<Box<dyn crate::backend::Backend>> {
    let kmsg = host.sysroot.join("dev/kmsg");
    let mut backend = MdBackend::real(host.sysroot, host.processes);
    if host.watch_kernel_log {
        backend = backend.watching(kmsg);
    }
    if let Some(clock) = host.clock {
        backend = backend.with_clock(Box::new(clock));
    }
    Ok(Box::new(backend))
}

/// Every counter name the md backend produces: md's per-member `errors` and
/// `bad_blocks` (sysfs.rs) and the block layer's `ioerr_cnt` (below).
pub const COUNTER_NAMES: [&str; 3] = ["md.errors", "md.bad_blocks", "io.ioerr_cnt"];

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::backend::disk::identity::{ByIdIndex, PciSlots};
use crate::backend::disk::ioerr::{self, IoerrLedger};
use crate::backend::disk::kmsg::{self, KernelLog};
use crate::backend::disk::{blank, devpath, identity, uevent};
use crate::backend::led;
use crate::backend::md::mdstat::{Mdstat, MdstatArray, SyncState};
use crate::backend::md::sysfs::{ArrayLook, MemberLook};
use crate::backend::md::watch::MdstatWatch;
use crate::backend::process::ProcessRunner;
use crate::backend::smart::poller::{DEFAULT_CONCURRENCY, ProbeFn, RunnerFactory, SmartPoller};
use crate::backend::{Backend, CommandOutput, CommandRunner, Depth, LocateOutcome, Running, smart};
use crate::clock::{Clock, SystemClock};
use crate::health::model::{
    ArrayHealth, Drive, Identity, MemberState, Membership, Problem, Snapshot, SyncProgress,
};

/// How often mdstat and sysfs are read again while they disagree, and the
/// pause before the first re-read (the n-th waits n times as long: at most
/// 150 ms in all), before the disagreement is reported.
const TORN_LOOK_RETRIES: u32 = 5;
const TORN_LOOK_PAUSE: Duration = Duration::from_millis(10);

/// How long one `smartctl` run may take in a full look.
const SMART_TIMEOUT: Duration = Duration::from_secs(30);

/// The md backend.
pub struct MdBackend {
    /// `/` on a real host; a captured tree in tests.
    pub root: PathBuf,
    pub runner: Box<dyn CommandRunner>,
    clock: Box<dyn Clock>,
    watch: Option<MdstatWatch>,
    /// SMART for the watch loop, read on a worker thread.
    poller: SmartPoller,
    /// Real processes for command steps, started in the background so the
    /// watch goes on while they run; `None` in tests with canned runners.
    processes: Option<ProcessRunner>,
    /// `io.ioerr_cnt` without the rises of our own SMART probes.
    ioerr: Arc<IoerrLedger>,
    /// Where the kernel log is read from in a guarded run (`None`: not
    /// read, as for `status`), and the log once the first look opened it.
    kmsg_path: Option<PathBuf>,
    kernel_log: Option<KernelLog>,
    /// Kernel uevents: `None` until the first wait tries to listen.
    uevents: Option<UeventState>,
    /// The whole disks the last look found (an NVMe health event names a
    /// controller; its namespaces among these are read at once).
    last_disks: BTreeSet<String>,
    /// SMART/health asynchronous events heard per disk while listening
    /// (`nvme.health_events`), for the life of this run.
    health_events: uevent::HealthEventCounts,
    /// Said once to the technician, then cleared.
    notices: Vec<String>,
}

/// Open the kernel's uevents for `watch`. A host without them keeps the
/// timed polls, and the technician is told once.
fn listen(watch: &mut MdstatWatch, notices: &mut Vec<String>) -> UeventState {
    match uevent::open() {
        Ok(source) => {
            watch.set_uevents(source);
            UeventState::Listening
        }
        Err(err) => {
            notices.push(uevent::unavailable_notice(&format!("{err:#}")));
            UeventState::Unavailable
        }
    }
}

/// Whether the watch listens to kernel uevents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UeventState {
    Listening,
    Unavailable,
}

impl MdBackend {
    /// `root` is `/` on a real host, or a captured tree in tests.
    pub fn new(root: PathBuf, runner: Box<dyn CommandRunner>) -> Self {
        let ioerr = Arc::new(IoerrLedger::new(root.join("sys/block"), false));
        MdBackend {
            runner,
            clock: Box::new(SystemClock::new()),
            watch: None,
            poller: SmartPoller::new(
                Arc::new(|| Box::new(ProcessRunner::default())),
                SMART_TIMEOUT,
            )
            .with_probe(discounted_probe(&ioerr)),
            processes: None,
            ioerr,
            kmsg_path: None,
            kernel_log: None,
            uevents: None,
            last_disks: BTreeSet::new(),
            health_events: uevent::HealthEventCounts::default(),
            notices: Vec::new(),
            root,
        }
    }

    /// The backend of a real run: every program (probes, the SMART worker,
    /// command steps) runs through `processes`, with its search path.
    pub fn real(root: PathBuf, processes: ProcessRunner) -> Self {
        let factory = processes.clone();
        let mut backend = MdBackend::new(root, Box::new(processes.clone()))
            .with_smart_runner(Arc::new(move || Box::new(factory.clone())));
        backend.processes = Some(processes);
        backend
    }

    /// How the background SMART worker runs programs (tests give canned
    /// outputs; production runs real processes).
    pub fn with_smart_runner(mut self, factory: RunnerFactory) -> Self {
        self.poller =
            SmartPoller::new(factory, SMART_TIMEOUT).with_probe(discounted_probe(&self.ioerr));
        self
    }

    /// For a guarded run: count the kernel's I/O error reports from `kmsg`
    /// (`/dev/kmsg` on a host, a file in a test tree) as `kernel.io_errors`,
    /// and count `io.ioerr_cnt` from the first look (src/backend/disk/ioerr.rs
    /// says why). Both start at the first snapshot.
    pub fn watching(mut self, kmsg: PathBuf) -> Self {
        self.ioerr = Arc::new(IoerrLedger::new(self.root.join("sys/block"), true));
        self.poller.set_probe(discounted_probe(&self.ioerr));
        self.kmsg_path = Some(kmsg);
        self
    }

    /// Stamp snapshots (`Snapshot::at_ms`) from the run's clock instead of
    /// a clock started when the backend was made.
    pub fn with_clock(mut self, clock: Box<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn mdstat_path(&self) -> PathBuf {
        self.root.join("proc/mdstat")
    }

    /// Read and parse /proc/mdstat.
    fn read_mdstat(&self) -> Result<Mdstat> {
        let path = self.mdstat_path();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        mdstat::parse(&text).with_context(|| format!("cannot parse `{}`", path.display()))
    }

    /// The array and its members as md sees them, cross-checked against
    /// mdstat. Disagreements are kept apart so the caller can look again.
    fn look_array(&self, array: &str) -> Result<ArrayView> {
        let mut problems = Vec::new();
        let mdstat = match self.read_mdstat() {
            Ok(mdstat) => Some(mdstat),
            Err(err) => {
                problems.push(problem("md", array, format!("{err:#}")));
                None
            }
        };
        let listed = mdstat.as_ref().and_then(|m| m.array(array));
        let md_dir = self.root.join("sys/block").join(array).join("md");
        if !md_dir.exists() {
            let Some(listed) = listed else {
                bail!(
                    "array `{array}` not found: no `{}` and not listed in `{}`",
                    md_dir.display(),
                    self.mdstat_path().display()
                );
            };
            problems.push(problem(
                "md",
                array,
                format!(
                    "`{}` is missing although `{}` lists the array: state from mdstat only",
                    md_dir.display(),
                    self.mdstat_path().display()
                ),
            ));
            return Ok(ArrayView {
                look: from_mdstat(listed),
                problems,
                disagreements: Vec::new(),
            });
        }
        let look = sysfs::read_array(&md_dir, array, &mut problems)?;
        let disagreements = match &mdstat {
            Some(mdstat) => cross_check(&look, mdstat.array(array)),
            None => Vec::new(),
        };
        Ok(ArrayView {
            look,
            problems,
            disagreements,
        })
    }

    /// Drives for `members` and every other whole disk present.
    fn drives(
        &mut self,
        array: &str,
        members: Vec<MemberLook>,
        depth: Depth,
        problems: &mut Vec<Problem>,
    ) -> Vec<Drive> {
        let sys_block = self.root.join("sys/block");
        let md_dir = sys_block.join(array).join("md");
        let mut disks: BTreeSet<String> = match identity::whole_disks(&sys_block) {
            Ok(disks) => disks.into_iter().collect(),
            Err(err) => {
                problems.push(problem("identity", "sys/block", format!("{err:#}")));
                BTreeSet::new()
            }
        };
        let mut on_disk: BTreeMap<String, MemberLook> = BTreeMap::new();
        for member in members {
            // A member md still lists whose block device has left /sys/block
            // (pulled; md only notices at its next I/O) gets no Drive here.
            // Inventing one would carry no readable identity and would be
            // keyed by a kernel name the next inserted drive may reuse. Its
            // absence is the signal: the guard sees that serial vanish. The
            // array's own view (`[UU]`, `in_sync`) is reported as md says it.
            //
            // Members are matched to disks through md's own `block` link
            // (by kernel name where a tree has no link). If a new drive
            // takes a pulled member's name before md notices, the link
            // still dangles, so the new drive shows as no member at all.
            let member_dir = md_dir.join(format!("dev-{}", member.kname));
            let Some(disk) = identity::member_disk(&self.root, &member_dir, &member.kname) else {
                continue;
            };
            disks.insert(disk.clone());
            match on_disk.get_mut(&disk) {
                None => {
                    on_disk.insert(disk, member);
                }
                Some(first) => {
                    problems.push(problem(
                        "md",
                        &disk,
                        format!(
                            "members `{}` and `{}` are on the same disk `{disk}`",
                            first.kname, member.kname
                        ),
                    ));
                    for (name, value) in member.counters {
                        *first.counters.entry(name).or_insert(0) += value;
                    }
                }
            }
        }
        if let Some(path) = &self.kmsg_path {
            let log = self.kernel_log.get_or_insert_with(|| KernelLog::open(path));
            problems.extend(log.drain(&disks));
        }
        self.ioerr.retain(&disks);
        self.health_events.retain(&disks);
        self.last_disks.clone_from(&disks);
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
        // A full look's SMART, read up to the poller's limit at once when
        // real processes run it (a halt's full look over 60 drives would
        // otherwise take 60 smartctl runs one after another).
        let mut full_smart = match (depth, &self.processes) {
            (Depth::Full, Some(processes)) => self.smart_at_once(processes, &disks),
            _ => BTreeMap::new(),
        };
        let mut drives = Vec::with_capacity(disks.len());
        for disk in disks {
            // A disk being hot-removed (or added) loses (or gains) its sysfs
            // files over a few milliseconds: read in that window, it has a
            // directory but no size or serial. Once it is gone it is simply
            // absent; while it is still half there, look again briefly, and
            // only report it unreadable if it stays that way.
            let read = identity::read_disk_settled(
                &sys_block, &disk, &by_id, enclosures, &slots, problems,
            );
            let Some(id) = read else {
                continue;
            };
            let member = on_disk.remove(&disk);
            let mut counters = BTreeMap::new();
            match self.ioerr.read(&disk) {
                Ok(Some(count)) => {
                    counters.insert(ioerr::COUNTER.to_string(), count);
                }
                Ok(None) => {}
                Err(message) => problems.push(problem("counters", &disk, message)),
            }
            if let Some(log) = self.kernel_log.as_ref().filter(|l| l.is_open()) {
                counters.insert(kmsg::COUNTER.to_string(), log.count(&disk));
            }
            // Counted only while the watch listens, so the count is never
            // a zero nobody could have raised.
            if self.uevents == Some(UeventState::Listening)
                && id.transport.as_deref() == Some("nvme")
            {
                let heard = self.health_events.count(&disk);
                counters.insert(uevent::HEALTH_EVENT_COUNTER.to_string(), heard);
            }
            let membership = member.and_then(|m| {
                counters.extend(m.counters);
                m.membership
            });
            let (smart, blank) = match depth {
                Depth::Fast => (None, None),
                Depth::Watch { .. } => (background.remove(&disk), None),
                Depth::Full => (
                    Some(full_smart.remove(&disk).unwrap_or_else(|| {
                        self.ioerr.probe(&disk, || {
                            smart::probe(&mut *self.runner, &format!("/dev/{disk}"), SMART_TIMEOUT)
                        })
                    })),
                    blank::is_blank(&self.root.join("dev").join(&disk), &sys_block.join(&disk)),
                ),
            };
            drives.push(Drive {
                id,
                member: membership,
                counters,
                smart,
                blank,
                faults: Vec::new(),
            });
        }
        drives
    }
}

impl MdBackend {
    /// SMART for `disks`, at most [`DEFAULT_CONCURRENCY`] `smartctl` at
    /// once, each disk once, each probe's `ioerr_cnt` rise discounted.
    fn smart_at_once(
        &self,
        processes: &ProcessRunner,
        disks: &BTreeSet<String>,
    ) -> BTreeMap<String, crate::health::model::Smart> {
        let queue = std::sync::Mutex::new(disks.iter().cloned().collect::<Vec<_>>());
        let done = std::sync::Mutex::new(BTreeMap::new());
        let workers = DEFAULT_CONCURRENCY.min(disks.len());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let mut runner = processes.clone();
                let (queue, done, ioerr) = (&queue, &done, &self.ioerr);
                scope.spawn(move || {
                    loop {
                        let next = queue.lock().ok().and_then(|mut q| q.pop());
                        let Some(disk) = next else { break };
                        let result = ioerr.probe(&disk, || {
                            smart::probe(&mut runner, &format!("/dev/{disk}"), SMART_TIMEOUT)
                        });
                        if let Ok(mut map) = done.lock() {
                            map.insert(disk, result);
                        }
                    }
                });
            }
        });
        done.into_inner().unwrap_or_default()
    }
}

/// A SMART probe with the `ioerr_cnt` rise it causes discounted.
fn discounted_probe(ledger: &Arc<IoerrLedger>) -> ProbeFn {
    let ledger = Arc::clone(ledger);
    Arc::new(move |runner, disk, timeout| {
        ledger.probe(disk, || {
            smart::probe(runner, &format!("/dev/{disk}"), timeout)
        })
    })
}

/// One look at the array before the drives are read.
struct ArrayView {
    look: ArrayLook,
    problems: Vec<Problem>,
    /// mdstat and sysfs disagree; may be a change between the two reads.
    disagreements: Vec<Problem>,
}

fn problem(probe: &str, subject: &str, message: String) -> Problem {
    Problem {
        probe: probe.to_string(),
        subject: subject.to_string(),
        message,
    }
}

fn valid_array_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains('/')
}

/// Compare what sysfs said with the array's mdstat entry.
fn cross_check(look: &ArrayLook, listed: Option<&MdstatArray>) -> Vec<Problem> {
    let name = &look.health.name;
    let Some(listed) = listed else {
        if look.members.is_empty() {
            return Vec::new();
        }
        return vec![problem(
            "md",
            name,
            "sysfs shows the array with members but `/proc/mdstat` does not list it".into(),
        )];
    };
    let mut found = Vec::new();
    let in_sysfs: BTreeSet<&str> = look.members.iter().map(|m| m.kname.as_str()).collect();
    let in_mdstat: BTreeSet<&str> = listed.members.iter().map(|m| m.name.as_str()).collect();
    if in_sysfs != in_mdstat {
        found.push(problem(
            "md",
            name,
            format!("`/proc/mdstat` lists members {in_mdstat:?} but sysfs has {in_sysfs:?}"),
        ));
    }
    if let Some(degraded) = listed.degraded() {
        if degraded != look.health.degraded {
            found.push(problem(
                "md",
                name,
                format!(
                    "`/proc/mdstat` shows {degraded} missing slot(s) but sysfs `degraded` is {}",
                    look.health.degraded
                ),
            ));
        }
    }
    found
}

/// The array from mdstat alone, when its sysfs directory is missing. Fail
/// closed: the state is `unknown`, and in a degraded array a member without
/// flags may be the one behind, so none is claimed in sync.
fn from_mdstat(listed: &MdstatArray) -> ArrayLook {
    let raid_disks = listed.raid_disks.unwrap_or(0);
    let degraded = listed.degraded().unwrap_or(raid_disks);
    let sync = listed.sync.as_ref().map(|sync| {
        let action = match sync.action.as_str() {
            "recovery" => "recover".to_string(),
            other => other.to_string(),
        };
        match &sync.state {
            SyncState::Running {
                done,
                total,
                speed_kib,
                ..
            } => SyncProgress {
                action,
                // mdstat counts 1 KiB blocks; the model counts sectors.
                done: done.saturating_mul(2),
                total: total.saturating_mul(2),
                speed_kib: *speed_kib,
            },
            SyncState::Delayed | SyncState::Pending | SyncState::Remote => SyncProgress {
                action,
                done: 0,
                total: 0,
                speed_kib: None,
            },
        }
    });
    let members = listed
        .members
        .iter()
        .map(|m| {
            let mut flags = Vec::new();
            for (on, flag) in [
                (m.faulty, "faulty"),
                (m.spare, "spare"),
                (m.replacement, "replacement"),
                (m.write_mostly, "writemostly"),
                (m.journal, "journal"),
            ] {
                if on {
                    flags.push(flag.to_string());
                }
            }
            let state = if m.faulty {
                MemberState::Faulty
            } else if m.spare {
                MemberState::Spare
            } else if m.replacement || degraded > 0 {
                MemberState::Rebuilding
            } else {
                MemberState::InSync
            };
            MemberLook {
                kname: m.name.clone(),
                // desc_nr is the superblock slot, not the role: no role.
                membership: Some(Membership {
                    state,
                    role: None,
                    flags,
                    name: Some(m.name.clone()),
                }),
                counters: BTreeMap::new(),
            }
        })
        .collect();
    ArrayLook {
        health: ArrayHealth {
            name: listed.name.clone(),
            level: listed.level.clone().unwrap_or_else(|| "unknown".into()),
            state: "unknown".into(),
            raid_disks,
            degraded,
            sync,
            // Filled by `facts::annotate`.
            running: false,
            redundancy_left: 0,
        },
        members,
    }
}

impl Backend for MdBackend {
    fn name(&self) -> &'static str {
        "md"
    }

    /// Arrays listed in /proc/mdstat; when it cannot be read or parsed,
    /// the `md*` entries of /sys/block that have an `md/` directory.
    fn arrays(&mut self) -> Result<Vec<String>> {
        let mdstat_err = match self.read_mdstat() {
            Ok(mdstat) => return Ok(mdstat.arrays.into_iter().map(|a| a.name).collect()),
            Err(err) => err,
        };
        let sys_block = self.root.join("sys/block");
        let entries = match std::fs::read_dir(&sys_block) {
            Ok(entries) => entries,
            Err(err) => {
                return Err(
                    mdstat_err.context(format!("and cannot list `{}`: {err}", sys_block.display()))
                );
            }
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| n.starts_with("md") && sys_block.join(n).join("md").is_dir())
            .collect();
        names.sort();
        Ok(names)
    }

    /// `/proc` is mounted but has no `mdstat`: the kernel has no md driver
    /// (built out, or the module not loaded). A missing `/proc` is not this:
    /// then nothing can be read, and `arrays` says so as an error.
    fn unavailable(&self) -> Option<String> {
        let proc = self.root.join("proc");
        let mdstat = proc.join("mdstat");
        let missing = matches!(
            std::fs::symlink_metadata(&mdstat),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound
        );
        (missing && proc.is_dir()).then(|| {
            format!(
                "md is not available on this kernel (no `{}`; is the md module loaded?)",
                mdstat.display()
            )
        })
    }

    fn canonical_array(&self, given: &str, known: &[String]) -> Result<String, String> {
        name::canonical_array(&self.root, given, known)
    }

    fn snapshot(&mut self, array: &str, depth: Depth) -> Result<Snapshot> {
        if !valid_array_name(array) {
            bail!("`{array}` is not an md array name: use a name such as `md0`");
        }
        if self.watch.is_none() {
            // Arm the event watch before the first look, so an md event
            // between this look and the first `wait` wakes that wait at
            // once. A failure here is reported by `wait` itself.
            self.watch = MdstatWatch::open(&self.mdstat_path()).ok();
        }
        if let (Some(watch), None, Some(_)) = (&mut self.watch, self.uevents, &self.kmsg_path) {
            // A guarded run listens from its first look: the look a step
            // starts from then already counts `nvme.health_events`, so its
            // first rise reads `0 → 1`.
            self.uevents = Some(listen(watch, &mut self.notices));
        }
        let mut view = self.look_array(array)?;
        let mut attempt = 0;
        while !view.disagreements.is_empty() && attempt < TORN_LOOK_RETRIES {
            // mdstat and sysfs are read a few microseconds apart; a member
            // added, failed or removed in between looks like a
            // disagreement, and md finishes a removal in sysfs later, from
            // a work queue (slower on a loaded host). Look again a few
            // times and report whatever is still inconsistent.
            attempt += 1;
            std::thread::sleep(TORN_LOOK_PAUSE * attempt);
            view = self.look_array(array)?;
        }
        if let Some(watch) = &mut self.watch {
            // md flags and bad blocks wake a wait through sysfs, not mdstat.
            let md_dir = self.root.join("sys/block").join(array).join("md");
            let mut attrs = vec![md_dir.join("degraded")];
            for member in &view.look.members {
                let dir = md_dir.join(format!("dev-{}", member.kname));
                attrs.push(dir.join("state"));
                attrs.push(dir.join("bad_blocks"));
            }
            watch.watch_attrs(&attrs);
        }
        let ArrayView {
            look,
            mut problems,
            disagreements,
        } = view;
        problems.extend(disagreements);
        let drives = self.drives(array, look.members, depth, &mut problems);
        let mut snap = Snapshot {
            at_ms: self.clock.now_ms(),
            array: look.health,
            drives,
            problems,
        };
        facts::annotate(&mut snap);
        Ok(snap)
    }

    fn wait(&mut self, timeout: Duration) -> Result<()> {
        let watch = match &mut self.watch {
            Some(watch) => watch,
            None => self
                .watch
                .insert(MdstatWatch::open(&self.root.join("proc/mdstat"))?),
        };
        if self.uevents.is_none() {
            // Listen from the first wait on (a guarded run's first look
            // already does).
            self.uevents = Some(listen(watch, &mut self.notices));
        }
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let wake = watch.wait(left, self.poller.wake_fd())?;
            if wake.extra {
                // Results stay for the next look; the signal is consumed
                // so a wait without a look (a finishing command) cannot spin.
                self.poller.clear_wake();
            }
            self.health_events.forget_removed(&wake.heard);
            let mut relevant = wake.md || wake.extra || wake.heard.lost;
            let mut urgent = Vec::new();
            for event in &wake.heard.events {
                if event.is_removal() || event.is_disk_added() {
                    relevant = true;
                }
                if let Some(controller) = event.health_event() {
                    relevant = true;
                    let sys_block = self.root.join("sys/block");
                    let served: Vec<String> = self
                        .last_disks
                        .iter()
                        .filter(|d| uevent::served_by(&sys_block, d, controller))
                        .cloned()
                        .collect();
                    if event.is_smart_health() {
                        // The controller raised a critical warning: that is
                        // a fact now, before smartctl says which one.
                        self.health_events.heard(&served);
                    }
                    urgent.extend(served);
                }
            }
            if !urgent.is_empty() {
                // The drive said its health changed: read it now; its
                // result wakes the wait through the poller.
                self.poller.read_now(&urgent);
            }
            // A uevent about some other device (a loop device, a network
            // interface) is no reason to look; keep waiting.
            let heard_only = !wake.heard.events.is_empty() && !relevant;
            if !heard_only || left.is_zero() {
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

    /// Resolved under `root` as the command will see it: relative to this
    /// process's working directory, which the command inherits.
    fn resolve_arg(&mut self, arg: &str) -> Option<crate::backend::ArgDevice> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        Some(devpath::resolve(&self.root, &cwd, arg))
    }
}
