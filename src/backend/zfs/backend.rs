//! The zfs backend: one look is `zpool status` of the pool (JSON on
//! OpenZFS 2.3 and later, `-pP` text before), every leaf resolved to its
//! whole disk under the sysroot, and every whole disk present read with the
//! shared disk code (identity, blankness, the kernel log, SMART) exactly as
//! md reads its members.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::backend::disk::identity::{self, ByIdIndex, PciSlots};
use crate::backend::disk::ioerr::{self, IoerrLedger};
use crate::backend::disk::kmsg::{self, KernelLog};
use crate::backend::disk::{blank, devpath};
use crate::backend::led;
use crate::backend::process::ProcessRunner;
use crate::backend::smart::poller::{ProbeFn, RunnerFactory, SmartPoller};
use crate::backend::zfs::events::Follower;
use crate::backend::zfs::look::{self, PoolLook};
use crate::backend::zfs::{Pool, VdevState, status_json, status_text};
use crate::backend::{Backend, CommandOutput, CommandRunner, Depth, LocateOutcome, Running, smart};
use crate::clock::{Clock, SystemClock};
use crate::health::model::{ArrayHealth, Drive, DriveKey, Identity, Problem, Snapshot};
use crate::sanitize::sanitize;

/// How long one `zpool status` or `zpool list` may take.
const ZPOOL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one `smartctl` run may take in a full look.
const SMART_TIMEOUT: Duration = Duration::from_secs(30);
/// Which form of `zpool status` this zpool speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Json,
    Text,
}

pub struct ZfsBackend {
    /// `/` on a real host; a captured tree in tests.
    pub root: PathBuf,
    runner: Box<dyn CommandRunner>,
    /// Real processes (the event follower, command steps); `None` in
    /// tests with canned runners.
    processes: Option<ProcessRunner>,
    clock: Box<dyn Clock>,
    /// Learned at the first look that needed it.
    form: Option<Form>,
    poller: SmartPoller,
    ioerr: Arc<IoerrLedger>,
    kmsg_path: Option<PathBuf>,
    kernel_log: Option<KernelLog>,
    follower: Option<Follower>,
    /// The drive each leaf (by GUID) was last found on: a leaf ZFS cannot
    /// open (REMOVED, UNAVAIL) is bound to a drive only when it is that
    /// one, and a leaf whose path has come to lead to another drive is a
    /// problem.
    seen: BTreeMap<u64, DriveKey>,
}

/// ZFS's rules for a pool name, and no more: a letter first, then letters,
/// digits, `_`, `-`, `.`, `:`; not a vdev keyword. Refused before the name
/// goes into any argv (so `-x` cannot become an option).
pub fn check_pool_name(name: &str) -> Result<(), String> {
    let shown = sanitize(name, false);
    if name.is_empty() {
        return Err("the pool name is empty".into());
    }
    if name.len() > 255 {
        return Err(format!("pool name `{shown}` is longer than 255 bytes"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(format!(
            "`{shown}` is not a ZFS pool name: it must begin with a letter"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
    {
        return Err(format!(
            "`{shown}` is not a ZFS pool name: {} is not allowed (letters, digits, `_`, `-`, `.`, `:` only)",
            match c {
                ' ' => "a space".to_string(),
                '/' => "`/`".to_string(),
                c if c.is_control() => "a control character".to_string(),
                c => format!("`{}`", sanitize(&c.to_string(), false)),
            }
        ));
    }
    let reserved = ["mirror", "raidz", "draid", "spare", "log"]
        .iter()
        .any(|k| name.starts_with(k))
        || (name.starts_with('c') && name[1..].starts_with(|c: char| c.is_ascii_digit()));
    if reserved {
        return Err(format!(
            "`{shown}` is not a ZFS pool name: ZFS reserves names beginning with a vdev keyword (`mirror`, `raidz`, `draid`, `spare`, `log`) or `c` and a digit"
        ));
    }
    Ok(())
}

impl ZfsBackend {
    pub fn new(root: PathBuf, runner: Box<dyn CommandRunner>) -> Self {
        let ioerr = Arc::new(IoerrLedger::new(root.join("sys/block"), false));
        ZfsBackend {
            runner,
            processes: None,
            clock: Box::new(SystemClock::new()),
            form: None,
            poller: SmartPoller::new(
                Arc::new(|| Box::new(ProcessRunner::default())),
                SMART_TIMEOUT,
            )
            .with_probe(discounted_probe(&ioerr)),
            ioerr,
            kmsg_path: None,
            kernel_log: None,
            follower: None,
            seen: BTreeMap::new(),
            root,
        }
    }

    /// The backend of a real run: `zpool`, `smartctl`, the follower and
    /// command steps all run through `processes`, with its search path.
    pub fn real(root: PathBuf, processes: ProcessRunner) -> Self {
        let factory = processes.clone();
        let mut backend = ZfsBackend::new(root, Box::new(processes.clone()))
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
    /// `kernel.io_errors`, `io.ioerr_cnt` from the first look (as md).
    pub fn watching(mut self, kmsg: PathBuf) -> Self {
        self.ioerr = Arc::new(IoerrLedger::new(self.root.join("sys/block"), true));
        self.poller.set_probe(discounted_probe(&self.ioerr));
        self.kmsg_path = Some(kmsg);
        self
    }

    pub fn with_clock(mut self, clock: Box<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn zpool(&mut self, args: &[&str]) -> Result<CommandOutput> {
        let mut argv = vec!["zpool".to_string()];
        argv.extend(args.iter().map(|a| a.to_string()));
        let out = self.runner.run(&argv, ZPOOL_TIMEOUT)?;
        if out.timed_out {
            bail!(
                "`{}` did not finish within {} s",
                argv.join(" "),
                ZPOOL_TIMEOUT.as_secs()
            );
        }
        Ok(out)
    }

    /// `zpool status` of `pool`, in the form this zpool speaks.
    fn status(&mut self, pool: &str) -> Result<Pool> {
        if self.form != Some(Form::Text) {
            let out = self.zpool(&["status", "-j", "--json-int", "-P", pool])?;
            if out.code == Some(2) && refuses_json(&out) && self.form.is_none() {
                self.form = Some(Form::Text);
            } else {
                self.form = Some(Form::Json);
                return one_pool(pool, &out, status_json::parse);
            }
        }
        // The text form names leaves by path and prints no GUIDs; `-g`
        // prints GUIDs instead of names, in the same tree order.
        let out = self.zpool(&["status", "-pP", pool])?;
        let mut found = one_pool(pool, &out, status_text::parse)?;
        let out = self.zpool(&["status", "-gp", pool])?;
        let guids = one_pool(pool, &out, status_text::parse)?;
        let mut named = Vec::new();
        for v in &mut found.vdevs {
            leaves_mut(v, &mut named);
        }
        let numbered: Vec<(&str, VdevState)> = guids
            .leaves()
            .into_iter()
            .map(|(v, _)| (v.name.as_str(), v.state.clone()))
            .collect();
        let same = named.len() == numbered.len()
            && named.iter().zip(&numbered).all(|(a, b)| a.state == b.1);
        if !same {
            bail!(
                "`zpool status -pP {pool}` and `zpool status -gp {pool}` show different leaves (the pool changed between them?)"
            );
        }
        for (leaf, (guid, _)) in named.into_iter().zip(numbered) {
            let guid = guid.parse::<u64>().map_err(|_| {
                anyhow::anyhow!(
                    "`zpool status -gp {pool}` names a leaf `{}`, not a GUID",
                    sanitize(guid, false)
                )
            })?;
            if leaf.guid.is_some_and(|g| g != guid) {
                bail!("`zpool status` gives leaf `{}` two GUIDs", leaf.name);
            }
            leaf.guid = Some(guid);
        }
        Ok(found)
    }

    /// Read the whole disks present and bind the leaves to them.
    /// The drives, and which leaves are on one.
    fn drives(
        &mut self,
        look: &PoolLook,
        depth: Depth,
        problems: &mut Vec<Problem>,
    ) -> (Vec<Drive>, BTreeSet<usize>) {
        let sys_block = self.root.join("sys/block");
        let disks: BTreeSet<String> = match identity::whole_disks(&sys_block) {
            Ok(disks) => disks.into_iter().collect(),
            Err(err) => {
                problems.push(problem("identity", "sys/block", format!("{err:#}")));
                BTreeSet::new()
            }
        };
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
        let mut ids: BTreeMap<String, Identity> = BTreeMap::new();
        for disk in &disks {
            if let Some(id) =
                identity::read_disk_settled(&sys_block, disk, &by_id, enclosures, &slots, problems)
            {
                ids.insert(disk.clone(), id);
            }
        }
        let on_disk = self.bind(look, &ids, problems);
        let present = on_disk.values().copied().collect();
        let mut drives = Vec::with_capacity(ids.len());
        for (disk, id) in ids {
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
            let member = on_disk.get(&disk).map(|&i| {
                let leaf = &look.leaves[i];
                counters.extend(leaf.counters.clone());
                leaf.membership.clone()
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
        (drives, present)
    }

    /// Which leaf (index into `look.leaves`) each disk holds.
    fn bind(
        &mut self,
        look: &PoolLook,
        ids: &BTreeMap<String, Identity>,
        problems: &mut Vec<Problem>,
    ) -> BTreeMap<String, usize> {
        let mut on_disk: BTreeMap<String, usize> = BTreeMap::new();
        for (i, leaf) in look.leaves.iter().enumerate() {
            let Some(path) = leaf.path.as_deref().filter(|_| !leaf.old) else {
                continue;
            };
            let kname = match devpath::device_name(&self.root, path) {
                Ok(Some(kname)) => kname,
                Ok(None) => continue,
                Err(why) => {
                    problems.push(problem("zfs", &leaf.name, why));
                    continue;
                }
            };
            let Some(disk) = identity::disk_of(&self.root, &kname) else {
                continue;
            };
            let Some(id) = ids.get(&disk) else {
                continue;
            };
            let key = id.key();
            let known = leaf.guid.and_then(|g| self.seen.get(&g));
            // OFFLINE too: `zpool offline` closes the device, and the drive
            // pulled after it may give its name to the new one (lab:
            // zfs-replace-member, the new drive partitioned like the old).
            let opened = !matches!(
                leaf.state,
                VdevState::Removed | VdevState::Unavail | VdevState::Offline
            );
            match known {
                Some(was) if *was != key => {
                    // ZFS still has the device open under a path that now
                    // leads to another drive: it is not that drive.
                    if opened {
                        problems.push(problem(
                            "zfs",
                            &leaf.name,
                            format!(
                                "leaf `{}` (GUID {}) was on {was}, but its path `{path}` now leads to {} ({key})",
                                leaf.name,
                                leaf.membership.name.as_deref().unwrap_or("?"),
                                disk
                            ),
                        ));
                    }
                    continue;
                }
                // ZFS cannot open it: another drive may have taken its
                // name; only the drive it was seen on is it.
                None if !opened => continue,
                _ => {}
            }
            if let Some(g) = leaf.guid {
                self.seen.insert(g, key);
            }
            if let Some(&first) = on_disk.get(&disk) {
                problems.push(problem(
                    "zfs",
                    &disk,
                    format!(
                        "leaves `{}` and `{}` are on the same disk `{disk}`",
                        look.leaves[first].name, leaf.name
                    ),
                ));
                continue;
            }
            on_disk.insert(disk, i);
        }
        on_disk
    }
}

/// Every leaf under `v`, in tree order (as `Pool::leaves`).
fn leaves_mut<'a>(
    v: &'a mut crate::backend::zfs::Vdev,
    out: &mut Vec<&'a mut crate::backend::zfs::Vdev>,
) {
    if v.kind.is_leaf() && v.children.is_empty() {
        out.push(v);
        return;
    }
    for c in &mut v.children {
        leaves_mut(c, out);
    }
}

/// Whether zpool refused `-j` as an option it does not know (2.1, 2.2).
fn refuses_json(out: &CommandOutput) -> bool {
    let said = format!("{}\n{}", out.stderr, out.stdout);
    said.contains("invalid option") || said.contains("unrecognized option")
}

/// The pool `name` from one `zpool status` run: a failed run, unparsable
/// output or another pool is an error (the look fails closed).
fn one_pool(
    name: &str,
    out: &CommandOutput,
    parse: fn(&str) -> Result<Vec<Pool>, String>,
) -> Result<Pool> {
    let shown = out.argv.join(" ");
    if !out.success() {
        bail!(
            "`{shown}` failed (exit {}): {}",
            out.code.map_or("by a signal".into(), |c| c.to_string()),
            sanitize(first_line(&out.stderr, &out.stdout), false)
        );
    }
    let pools = parse(&out.stdout)
        .map_err(|why| anyhow::anyhow!("cannot parse the output of `{shown}`: {why}"))?;
    let mut found = pools.into_iter().filter(|p| p.name == name);
    match (found.next(), found.next()) {
        (Some(pool), None) => Ok(pool),
        (None, _) => bail!("`{shown}` printed no pool `{name}`"),
        (Some(_), Some(_)) => bail!("`{shown}` printed pool `{name}` twice"),
    }
}

fn first_line<'a>(a: &'a str, b: &'a str) -> &'a str {
    [a, b]
        .into_iter()
        .flat_map(str::lines)
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no output")
}

fn discounted_probe(ledger: &Arc<IoerrLedger>) -> ProbeFn {
    let ledger = Arc::clone(ledger);
    Arc::new(move |runner, disk, timeout| {
        ledger.probe(disk, || {
            smart::probe(runner, &format!("/dev/{disk}"), timeout)
        })
    })
}

fn problem(probe: &str, subject: &str, message: String) -> Problem {
    Problem {
        probe: probe.to_string(),
        subject: subject.to_string(),
        message,
    }
}

impl Backend for ZfsBackend {
    fn name(&self) -> &'static str {
        "zfs"
    }

    /// `zpool list -H -o name`.
    fn arrays(&mut self) -> Result<Vec<String>> {
        let out = self.zpool(&["list", "-H", "-o", "name"])?;
        if !out.success() {
            bail!(
                "`zpool list -H -o name` failed (exit {}): {}",
                out.code.map_or("by a signal".into(), |c| c.to_string()),
                sanitize(first_line(&out.stderr, &out.stdout), false)
            );
        }
        Ok(out
            .stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// No ZFS module in the kernel (`/sys/module/zfs`), or no `zpool`
    /// where swapguard looks for programs.
    fn unavailable(&self) -> Option<String> {
        let module = self.root.join("sys/module/zfs");
        if !module.is_dir() {
            return Some(format!(
                "ZFS is not available on this kernel (no `{}`; is the zfs module loaded?)",
                module.display()
            ));
        }
        if let Some(p) = &self.processes
            && let Err(e) = p.resolve("zpool")
        {
            return Some(format!("ZFS is not available: {e:#}"));
        }
        None
    }

    fn snapshot(&mut self, array: &str, depth: Depth) -> Result<Snapshot> {
        check_pool_name(array).map_err(anyhow::Error::msg)?;
        if self.follower.is_none()
            && let Some(p) = &self.processes
        {
            // Follow events before the first look, so an event between the
            // look and the first wait wakes that wait.
            self.follower = Some(Follower::start(p, "zpool"));
        }
        let pool = self.status(array)?;
        let look = look::look(&pool);
        let mut problems = look.problems.clone();
        let (drives, present) = self.drives(&look, depth, &mut problems);
        let (level, width, unserving) = look::weakest(&look, |i| present.contains(&i));
        let mut snap = Snapshot {
            at_ms: self.clock.now_ms(),
            array: ArrayHealth {
                name: look.name.clone(),
                level,
                state: look.state.clone(),
                running: false,
                raid_disks: width,
                degraded: unserving,
                sync: look.sync.clone(),
                redundancy_left: 0,
            },
            drives,
            problems,
        };
        super::facts::annotate(&mut snap);
        Ok(snap)
    }

    fn wait(&mut self, timeout: Duration) -> Result<()> {
        match &mut self.follower {
            Some(follower) => {
                follower.wait(timeout);
                if let Some(news) = follower.news() {
                    eprintln!(
                        "warning: {}; watching by polling every {} ms instead",
                        sanitize(&news, false),
                        timeout.as_millis()
                    );
                }
            }
            None => std::thread::sleep(timeout),
        }
        Ok(())
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
