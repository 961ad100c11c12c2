//! The megaraid backend: one look is a few storcli calls, each argv with a
//! trailing `J`, through the bounded runner:
//!
//! - `/cN show J`: the drive groups (TOPOLOGY), the VDs and every PD;
//! - `/cN/eall/sall show all J` (and `/cN/sall show all J` when a drive
//!   sits on no enclosure): each drive's identity and counters;
//! - `/cN/fall show J`: a foreign configuration anywhere on the controller;
//! - `/cN/eE/sS show rebuild J` for each drive that rebuilds.
//!
//! A call that cannot run, times out, exits non-zero, prints no JSON or
//! whose status is not `Success` fails the look (fail closed). There is no
//! event source: the watch polls. SMART, in a full look only, goes through
//! the controller: `smartctl -d megaraid,DID` on the VD's block device.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::backend::disk::devpath;
use crate::backend::megaraid::facts::{self, PROGRAMS, parse_drive_address, parse_vd_address};
use crate::backend::megaraid::json::{self, Rebuild};
use crate::backend::megaraid::look;
use crate::backend::process::ProcessRunner;
use crate::backend::{
    ArgDevice, Backend, CommandOutput, CommandRunner, Depth, LocateOutcome, Running, smart,
};
use crate::clock::{Clock, SystemClock};
use crate::health::model::{Identity, Problem, Smart, Snapshot};
use crate::sanitize::sanitize;

/// How long one storcli call may take (a controller busy with a rebuild
/// answers slowly; storcli's own timeouts are longer still).
pub const STORCLI_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one `smartctl` run through the controller may take.
const SMART_TIMEOUT: Duration = Duration::from_secs(30);

pub struct MegaraidBackend {
    /// `/` on a real host; where `/dev` paths given as arguments resolve.
    root: PathBuf,
    runner: Box<dyn CommandRunner>,
    /// Real processes for command steps; `None` in tests.
    processes: Option<ProcessRunner>,
    clock: Box<dyn Clock>,
    /// The controller's tool, or why there is none.
    program: Result<String, String>,
    /// VD block device (`sda`) → VD (`/c0/v0`), from the last `arrays`.
    os_drives: BTreeMap<String, String>,
    /// VD → its block device (`/dev/sda`).
    vd_devices: BTreeMap<String, String>,
    /// Why the VDs' block devices could not be read, if they could not.
    os_drives_unread: Option<String>,
    /// The drives each controller had at the last look (`c0/e252/s1`):
    /// what `/cN/eall/sall` in a command reaches.
    last_drives: BTreeMap<u32, Vec<String>>,
    /// Whether the technician was told the watch polls.
    told: bool,
}

impl MegaraidBackend {
    /// A backend that runs `program` through `runner` (tests: a canned
    /// runner).
    pub fn new(root: PathBuf, runner: Box<dyn CommandRunner>, program: &str) -> Self {
        MegaraidBackend {
            root,
            runner,
            processes: None,
            clock: Box::new(SystemClock::new()),
            program: Ok(program.to_string()),
            os_drives: BTreeMap::new(),
            vd_devices: BTreeMap::new(),
            os_drives_unread: None,
            last_drives: BTreeMap::new(),
            told: false,
        }
    }

    /// The backend of a real host: the first of `storcli64`, `storcli`,
    /// `perccli64`, `perccli` found where swapguard looks for programs.
    pub fn real(root: PathBuf, processes: ProcessRunner) -> Self {
        let program = PROGRAMS
            .iter()
            .find(|p| processes.resolve(p).is_ok())
            .map(|p| p.to_string())
            .ok_or_else(|| {
                format!(
                    "MegaRAID is not available: none of `storcli64`, `storcli`, `perccli64`, `perccli` is installed (searched {})",
                    processes.path()
                )
            });
        let mut backend = MegaraidBackend::new(root, Box::new(processes.clone()), "storcli64");
        backend.program = program;
        backend.processes = Some(processes);
        backend
    }

    pub fn with_clock(mut self, clock: Box<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn program(&self) -> Result<String> {
        self.program.clone().map_err(anyhow::Error::msg)
    }

    /// Run `<tool> <args> J`; the reply's text once the process ended
    /// well. Whether storcli itself says `Success` is the parser's to
    /// judge.
    fn call(&mut self, args: &[&str]) -> Result<(String, String)> {
        let mut argv = vec![self.program()?];
        argv.extend(args.iter().map(|a| a.to_string()));
        argv.push("J".into());
        let shown = argv.join(" ");
        let out = self
            .runner
            .run(&argv, STORCLI_TIMEOUT)
            .with_context(|| format!("cannot run `{shown}`"))?;
        if out.timed_out {
            bail!(
                "`{shown}` did not finish within {} s",
                STORCLI_TIMEOUT.as_secs()
            );
        }
        if !out.success() {
            // storcli prints its JSON status on a failure too: say what it
            // said, else the first line of its output.
            let said = json::replies(&out.stdout, &shown)
                .ok()
                .and_then(|r| r.into_iter().find(|r| !r.status.ok()))
                .map(|r| r.status.describe())
                .unwrap_or_else(|| {
                    sanitize(
                        [&out.stderr, &out.stdout]
                            .into_iter()
                            .flat_map(|s| s.lines())
                            .map(str::trim)
                            .find(|l| !l.is_empty())
                            .unwrap_or("no output"),
                        false,
                    )
                });
            bail!(
                "`{shown}` failed (exit {}): {said}",
                out.code.map_or("by a signal".into(), |c| c.to_string())
            );
        }
        Ok((out.stdout, shown))
    }

    /// The controllers `<tool> show J` lists.
    fn controllers(&mut self) -> Result<Vec<u32>> {
        let (text, shown) = self.call(&["show"])?;
        let data = json::success(&text, &shown)?;
        if let Some(rows) = data.get("System Overview") {
            let rows = rows
                .as_array()
                .ok_or_else(|| anyhow!("`{shown}`: `System Overview` is not a list"))?;
            return rows
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    r.get("Ctl")
                        .and_then(serde_json::Value::as_u64)
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| anyhow!("`{shown}`: `System Overview[{i}]` has no `Ctl`"))
                })
                .collect();
        }
        match data
            .get("Number of Controllers")
            .and_then(serde_json::Value::as_u64)
        {
            Some(0) => Ok(Vec::new()),
            // Host bus adapters in IT mode only: no RAID, no virtual drives.
            Some(_) if data.get("IT System Overview").is_some() => Ok(Vec::new()),
            _ => bail!("`{shown}`: the reply lists no controllers (no `System Overview`)"),
        }
    }

    /// The drives of controller `c` in detail.
    fn details(&mut self, c: u32, ctl: &json::Controller) -> Result<Vec<json::PdDetail>> {
        let mut out = Vec::new();
        if ctl.pds.iter().any(|p| p.enclosure.is_some()) {
            let (text, shown) = self.call(&[&format!("/c{c}/eall/sall"), "show", "all"])?;
            out.extend(json::drives(&text, &shown)?);
        }
        if ctl.pds.iter().any(|p| p.enclosure.is_none()) {
            let (text, shown) = self.call(&[&format!("/c{c}/sall"), "show", "all"])?;
            out.extend(json::drives(&text, &shown)?);
        }
        if let Some(other) = out.iter().find(|d| d.controller != c) {
            bail!(
                "`/c{c}/eall/sall show all J` lists a drive of controller {}",
                other.controller
            );
        }
        Ok(out)
    }

    /// SMART of one drive through the controller.
    fn smart(&mut self, vd: &str, did: Option<u32>) -> Smart {
        let Some(device) = self.vd_devices.get(vd).cloned() else {
            return Smart::Unreadable {
                reason: format!(
                    "SMART through the controller needs the block device of `{vd}`, which storcli does not name"
                ),
            };
        };
        let Some(did) = did else {
            return Smart::Unreadable {
                reason: "storcli gives the drive no device id (`DID`) for `smartctl -d megaraid,N`"
                    .into(),
            };
        };
        let argv: Vec<String> = [
            smart::TOOL,
            "--json",
            "-a",
            "-d",
            &format!("megaraid,{did}"),
            &device,
        ]
        .map(str::to_string)
        .to_vec();
        match self.runner.run(&argv, SMART_TIMEOUT) {
            Ok(out) if out.timed_out => Smart::Unreadable {
                reason: format!(
                    "`{}` did not finish within {} s",
                    argv.join(" "),
                    SMART_TIMEOUT.as_secs()
                ),
            },
            Ok(out) => smart::parse(&out.stdout, out.code),
            Err(e) => Smart::Unreadable {
                reason: format!("cannot run `{}`: {e:#}", argv.join(" ")),
            },
        }
    }

    /// Read the VDs of every controller and their block devices.
    fn read_arrays(&mut self) -> Result<Vec<String>> {
        let mut arrays = Vec::new();
        self.os_drives.clear();
        self.vd_devices.clear();
        self.os_drives_unread = None;
        for c in self.controllers()? {
            let (text, shown) = self.call(&[&format!("/c{c}"), "show"])?;
            let ctl = json::controller(&text, &shown)?;
            for vd in &ctl.vds {
                arrays.push(format!("/c{c}/v{}", vd.vd));
            }
            if ctl.vds.is_empty() {
                continue;
            }
            let vds = self
                .call(&[&format!("/c{c}/vall"), "show", "all"])
                .and_then(|(text, shown)| json::virtual_drives(&text, &shown));
            match vds {
                Ok(vds) => {
                    for vd in vds {
                        let name = format!("/c{c}/v{}", vd.row.vd);
                        if let Some(dev) = vd.os_drive.filter(|d| d.starts_with("/dev/")) {
                            let bare = dev.trim_start_matches("/dev/").to_string();
                            if !bare.is_empty() && bare.bytes().all(|b| b.is_ascii_alphanumeric()) {
                                self.os_drives.insert(bare, name.clone());
                                self.vd_devices.insert(name, dev);
                            }
                        }
                    }
                }
                Err(e) => self.os_drives_unread = Some(format!("{e:#}")),
            }
        }
        Ok(arrays)
    }
}

/// The VD a `--array` names, canonical (`/c0/v0`): the address itself,
/// without its leading `/`, or the VD's block device (`/dev/sda`, `sda`)
/// as storcli names it.
pub fn canonical(
    given: &str,
    known: &[String],
    os_drives: &BTreeMap<String, String>,
    unread: Option<&str>,
) -> Result<String, String> {
    let shown = sanitize(given, false);
    let listed = if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    };
    let address = if given.starts_with('/') && !given.starts_with("/dev/") {
        given.to_string()
    } else {
        format!("/{given}")
    };
    if let Some((c, v)) = parse_vd_address(&address) {
        let name = format!("/c{c}/v{v}");
        return if known.contains(&name) {
            Ok(name)
        } else {
            Err(format!(
                "`--array {shown}`: no such MegaRAID virtual drive (virtual drives here: {listed})"
            ))
        };
    }
    let bare = given.strip_prefix("/dev/").unwrap_or(given);
    if let Some(vd) = os_drives.get(bare) {
        return Ok(vd.clone());
    }
    let why = match unread {
        Some(e) => format!("; the virtual drives' block devices could not be read: {e}"),
        None => String::new(),
    };
    Err(format!(
        "`--array {shown}`: no such MegaRAID virtual drive; name one as `/cN/vM` or by its block device (virtual drives here: {listed}){why}"
    ))
}

fn problem(probe: &str, subject: &str, message: String) -> Problem {
    Problem {
        probe: probe.to_string(),
        subject: subject.to_string(),
        message,
    }
}

impl Backend for MegaraidBackend {
    fn name(&self) -> &'static str {
        "megaraid"
    }

    /// Every virtual drive of every controller, `/cN/vM`.
    fn arrays(&mut self) -> Result<Vec<String>> {
        self.read_arrays()
    }

    /// No storcli or perccli where swapguard looks for programs.
    fn unavailable(&self) -> Option<String> {
        self.program.as_ref().err().cloned()
    }

    fn canonical_array(&self, given: &str, known: &[String]) -> Result<String, String> {
        canonical(
            given,
            known,
            &self.os_drives,
            self.os_drives_unread.as_deref(),
        )
    }

    fn snapshot(&mut self, array: &str, depth: Depth) -> Result<Snapshot> {
        let (c, v) = parse_vd_address(array).ok_or_else(|| {
            anyhow!(
                "`{}` is not a MegaRAID virtual drive: name it `/cN/vM` (`/c0/v0`)",
                sanitize(array, false)
            )
        })?;
        // A rebuild can end between the drive list (`Rbld`) and its progress
        // call ("Not in progress"): the look is read again, up to twice,
        // rather than reported unreadable at the end of a healthy rebuild.
        // A drive still listed as rebuilding with no progress after that is
        // unreadable (look::snapshot says so).
        let mut attempt = 0;
        let (ctl, vd, details, rebuilds) = loop {
            attempt += 1;
            let (text, shown) = self.call(&[&format!("/c{c}"), "show"])?;
            let ctl = json::controller(&text, &shown)?;
            let Some(vd) = ctl.vds.iter().find(|r| r.vd == v).cloned() else {
                let listed: Vec<String> =
                    ctl.vds.iter().map(|r| format!("/c{c}/v{}", r.vd)).collect();
                bail!(
                    "controller {c} has no virtual drive `/c{c}/v{v}` (it has: {})",
                    if listed.is_empty() {
                        "none".to_string()
                    } else {
                        listed.join(", ")
                    }
                );
            };
            let details = self.details(c, &ctl)?;
            let mut rebuilds: BTreeMap<String, Rebuild> = BTreeMap::new();
            let copying = look::rebuilding(&details);
            for (address, what) in &copying {
                let (text, shown) = self.call(&[address, "show", what])?;
                for r in json::rebuilds(&text, &shown)? {
                    rebuilds.insert(r.drive.clone(), r);
                }
            }
            let settled = copying
                .iter()
                .all(|(address, _)| rebuilds.get(address).is_some_and(|r| r.percent.is_some()));
            if settled || attempt == 3 {
                break (ctl, vd, details, rebuilds);
            }
        };
        let (text, shown) = self.call(&[&format!("/c{c}/fall"), "show"])?;
        let foreign = json::foreign(&text, &shown)?;
        let at_ms = self.clock.now_ms();
        let mut snap = look::snapshot(c, &vd, &ctl, &details, &rebuilds, at_ms);
        if foreign > 0 {
            snap.problems.push(problem(
                "megaraid.foreign",
                &format!("/c{c}"),
                format!(
                    "controller {c} holds a foreign configuration ({foreign} foreign drive group(s) or drive(s)): nothing goes on while it exists; never import it (it can bring an old array back over the live one); find the drive that carries it, clear it with `/c{c}/fall delete`, then resume"
                ),
            ));
        }
        self.last_drives
            .insert(c, snap.drives.iter().map(|d| d.id.dev.clone()).collect());
        if depth == Depth::Full {
            let dids: BTreeMap<String, Option<u32>> = details
                .iter()
                .map(|d| (facts::drive_dev(c, d.row.enclosure, d.row.slot), d.row.did))
                .collect();
            let mut unlearned = None;
            if !self.vd_devices.contains_key(array) && self.os_drives_unread.is_none() {
                // Learn the block device (status and run ask `arrays` first;
                // a direct snapshot may not have).
                // A failure here leaves SMART unreadable (fail closed); its
                // reason is kept so the technician sees why.
                if let Err(e) = self.read_arrays() {
                    unlearned = Some(format!("{e:#}"));
                }
            }
            for i in 0..snap.drives.len() {
                let did = dids.get(&snap.drives[i].id.dev).copied().flatten();
                let smart = match &unlearned {
                    Some(why) if !self.vd_devices.contains_key(array) => Smart::Unreadable {
                        reason: format!(
                            "SMART through the controller needs the block device of `{array}`, and reading it failed: {why}"
                        ),
                    },
                    _ => self.smart(array, did),
                };
                snap.drives[i].smart = Some(smart);
            }
        }
        Ok(snap)
    }

    /// No event source: the watch polls.
    fn wait(&mut self, timeout: Duration) -> Result<()> {
        std::thread::sleep(timeout);
        Ok(())
    }

    /// Once: there is no event source.
    fn notices(&mut self) -> Vec<String> {
        if std::mem::replace(&mut self.told, true) {
            return Vec::new();
        }
        vec!["MegaRAID reports no events to swapguard: the watch asks storcli on every poll".into()]
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

    /// `<tool> /cN/eE/sS start|stop locate J`.
    fn locate(&mut self, drive: &Identity, on: bool) -> Result<LocateOutcome> {
        if parse_drive_address(&drive.dev).is_none() {
            return Ok(LocateOutcome::Unavailable {
                reason: format!("`{}` is no controller slot", sanitize(&drive.dev, false)),
            });
        }
        let address = format!("/{}", drive.dev);
        let verb = if on { "start" } else { "stop" };
        let result = self
            .call(&[&address, verb, "locate"])
            .and_then(|(text, shown)| json::command_result(&text, &shown).map(|_| shown));
        Ok(match result {
            Ok(shown) => LocateOutcome::Switched {
                how: format!("`{shown}`"),
            },
            Err(e) => LocateOutcome::Unavailable {
                reason: format!("{e:#}"),
            },
        })
    }

    /// A controller address names the drive in that slot now (a new drive
    /// takes the pulled one's address, so the quarantine check goes by the
    /// serial of whatever sits there); `/cN/eall/sall` every drive of the
    /// controller; a controller, VD or foreign-config address no drive; a
    /// path under `/dev` what the kernel says.
    fn resolve_arg(&mut self, arg: &str) -> Option<ArgDevice> {
        Some(resolve(arg, &self.last_drives, || {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
            devpath::resolve(&self.root, &cwd, arg)
        }))
    }
}

/// What a command argument names (see [`Backend::resolve_arg`]). Pure but
/// for `path`, which resolves a filesystem path.
pub fn resolve(
    arg: &str,
    last_drives: &BTreeMap<u32, Vec<String>>,
    path: impl FnOnce() -> ArgDevice,
) -> ArgDevice {
    if let Some((c, e, s)) = parse_drive_address(arg).filter(|_| arg.starts_with('/')) {
        let dev = facts::drive_dev(c, e, s);
        return ArgDevice::Block {
            what: format!("{dev} (controller slot {})", facts::drive_slot(e, s)),
            disks: vec![dev],
        };
    }
    let Some(rest) = arg.strip_prefix("/c") else {
        return path();
    };
    if arg.starts_with("/dev/") {
        return path();
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let controller = parts[0];
    let all_controllers = controller == "all";
    let c: Option<u32> = controller.parse().ok();
    if c.is_none() && !all_controllers {
        return path();
    }
    let tail = &parts[1..];
    let many = |enclosure: Option<&str>| {
        let drives: Vec<String> = last_drives
            .iter()
            .filter(|(n, _)| all_controllers || Some(**n) == c)
            .flat_map(|(_, d)| d.iter())
            .filter(|d| enclosure.is_none_or(|e| d.split('/').nth(1) == Some(e)))
            .cloned()
            .collect();
        if drives.is_empty() {
            ArgDevice::Unresolved(format!(
                "`{}` reaches every drive it names, and swapguard has not seen the drives of that controller",
                sanitize(arg, false)
            ))
        } else {
            ArgDevice::Block {
                what: format!("{} drives of the controller", drives.len()),
                disks: drives,
            }
        }
    };
    match tail {
        [] => ArgDevice::NotABlockDevice,
        [v] if v.starts_with('v') || *v == "fall" || v.starts_with('f') => {
            ArgDevice::NotABlockDevice
        }
        [e] if e.starts_with('e') => ArgDevice::NotABlockDevice,
        ["sall"] => many(None),
        [e, s] if e.starts_with('e') && (*s == "sall" || s.starts_with('s')) => {
            if *e == "eall" {
                many(None)
            } else {
                many(Some(e))
            }
        }
        _ => ArgDevice::Unresolved(format!(
            "`{}` looks like a controller address swapguard cannot read",
            sanitize(arg, false)
        )),
    }
}
