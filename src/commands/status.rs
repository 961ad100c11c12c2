//! `swapguard status`: every array and drive, for people and scripts.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Result;
use console::Style;
use serde::Serialize;

use crate::backend::disk::identity::{self, PciSlots};
use crate::backend::md::sysfs;
use crate::backend::process::ProcessRunner;
use crate::backend::{Backend, Depth};
use crate::cli::Config;
use crate::error::UsageError;
use crate::exit;
use crate::health::guard::Observed;
use crate::health::model::{Drive, Smart, Snapshot};
use crate::health::verdict::{self, Level, Verdict};
use crate::journal;
use crate::sanitize::sanitize;
use crate::units::format_size;

#[derive(Serialize)]
pub(crate) struct Report {
    /// [`crate::output::JSON_FORMAT`].
    format: u32,
    pub(crate) arrays: Vec<Snapshot>,
    /// Members md still lists whose device is gone (see [`Vanished`]).
    vanished: Vec<Vanished>,
    /// Arrays that could not be read, with the reason.
    pub(crate) errors: Vec<String>,
    /// Storage this kernel does not offer at all, with the reason (`md:
    /// not available on this kernel (no /proc/mdstat)`): not an error,
    /// and not the same as "no arrays".
    unavailable: Vec<String>,
}

/// The one array `swapguard status ARRAY` asks for, as the backend that
/// has it names it; an array no backend has is a usage error naming those
/// there are.
fn one_array(
    backends: &[Box<dyn Backend>],
    known: &[(usize, String)],
    given: &str,
    unavailable: &[String],
) -> Result<(usize, String)> {
    let mut why = Vec::new();
    for (i, backend) in backends.iter().enumerate() {
        let mine: Vec<String> = known
            .iter()
            .filter(|(b, _)| *b == i)
            .map(|(_, a)| a.clone())
            .collect();
        if backend.unavailable().is_some() {
            continue;
        }
        match backend.canonical_array(given, &mine) {
            Ok(name) => return Ok((i, name)),
            Err(e) => why.push(e.replacen("`--array ", "`swapguard status ", 1)),
        }
    }
    if why.is_empty() {
        let reasons = if unavailable.is_empty() {
            "no storage backend is available".to_string()
        } else {
            unavailable.join("; ")
        };
        return Err(UsageError(format!(
            "`swapguard status {}`: {reasons}",
            sanitize(given, false)
        ))
        .into());
    }
    Err(UsageError(why.join("; ")).into())
}

/// A member md still lists although its block device has left the system:
/// the state right after a pull, before md's next I/O to it. md calls it in
/// sync and the array not degraded, so without this row `status` would show
/// one drive fewer and no problem at all.
///
/// What is knowable: md's own member directory (its kernel name, md state
/// and slot) and its `block` link, which still names the device's PCI path,
/// so an NVMe drive's hot-plug slot (its bay) can be read off it. The serial
/// is not: the device is gone, and md's sysfs and superblock summary carry
/// none. The last known serial comes from the newest swapguard journal
/// under the state directory whose look at this array had a member of that
/// kernel name, and says which session it is from.
#[derive(Serialize)]
struct Vanished {
    array: String,
    /// The member's kernel name as md lists it (`dev-<kname>`).
    dev: String,
    /// md's state for it (`in-sync`, ...): what md believes, not the drive.
    md_state: Option<String>,
    /// md's slot (role) for it.
    role: Option<u32>,
    /// The bay, from the dangling link (NVMe in a hot-plug slot), else from
    /// the journal.
    bay: Option<String>,
    /// The drive last seen under this name, from a journal; `None` when no
    /// journal has one.
    last_known: Option<LastKnown>,
}

#[derive(Serialize)]
struct LastKnown {
    serial: Option<String>,
    wwn: Option<String>,
    model: Option<String>,
    bay: Option<String>,
    /// The session (journal) it was seen in, and when.
    session: String,
    at: String,
}

/// Every array (or the one asked for) as `status` reads it; also what
/// `status --prometheus` exports.
pub(crate) fn gather(config: &Config, array: Option<&str>, smart: bool) -> Result<Report> {
    // `status` is read-only and often run by other users, who cannot read
    // root's state directory: the default search path is the safe fallback.
    let processes = ProcessRunner::from_state_dir(&config.state_dir).unwrap_or_else(|e| {
        eprintln!(
            "warning: {}; using the default search path",
            crate::sanitize::sanitize(&format!("{e:#}"), false)
        );
        ProcessRunner::default()
    });
    let host = || crate::backend::registry::Host {
        sysroot: config.sysroot.clone(),
        processes: processes.clone(),
        watch_kernel_log: false,
        clock: None,
    };
    let mut backends = crate::backend::registry::available(host)?;
    let mut unavailable = Vec::new();
    let mut known: Vec<(usize, String)> = Vec::new();
    for (i, backend) in backends.iter_mut().enumerate() {
        match backend.unavailable() {
            Some(why) => unavailable.push(why),
            None => known.extend(backend.arrays()?.into_iter().map(|a| (i, a))),
        }
    }
    let names = match array {
        None => known,
        Some(given) => vec![one_array(&backends, &known, given, &unavailable)?],
    };
    let depth = if smart { Depth::Full } else { Depth::Fast };
    let mut report = Report {
        format: crate::output::JSON_FORMAT,
        arrays: Vec::new(),
        vanished: Vec::new(),
        errors: Vec::new(),
        unavailable,
    };
    for (i, name) in &names {
        match backends[*i].snapshot(name, depth) {
            Ok(s) => {
                report
                    .vanished
                    .extend(vanished(&config.sysroot, &config.state_dir, &s));
                report.arrays.push(s);
            }
            Err(e) => report.errors.push(format!("{name}: {e:#}")),
        }
    }
    Ok(report)
}

pub fn status(config: &Config, array: Option<&str>, json: bool, smart: bool) -> Result<exit::Code> {
    let report = gather(config, array, smart)?;
    if json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&with_verdicts(&report)?)?
        )?;
    } else {
        let colors = config.color.wanted(std::io::stdout().is_terminal());
        crate::out!("{}", render(&report, colors))?;
    }
    Ok(if report.errors.is_empty() {
        exit::Code::Success
    } else {
        exit::Code::Failure
    })
}

/// A drive's verdict as `status` judges it: no runbook accepts anything,
/// and the drive counts as the last copy when one more member leaving (the
/// swap `status` is usually run before) would leave no redundancy.
pub(crate) fn verdict_of(s: &Snapshot, d: &Drive) -> Verdict {
    let last_copy = d.member.is_some() && s.array.last_copy(1);
    verdict::judge(d, last_copy, &[])
}

/// The report as JSON, each drive with its `verdict` (docs/status-json.md).
fn with_verdicts(report: &Report) -> Result<serde_json::Value> {
    let mut value = serde_json::to_value(report)?;
    for (s, array) in report.arrays.iter().zip(
        value["arrays"]
            .as_array_mut()
            .map(|a| a.iter_mut())
            .into_iter()
            .flatten(),
    ) {
        let Some(drives) = array["drives"].as_array_mut() else {
            continue;
        };
        for (d, drive) in s.drives.iter().zip(drives.iter_mut()) {
            if let Some(object) = drive.as_object_mut() {
                object.insert("verdict".into(), serde_json::to_value(verdict_of(s, d))?);
            }
        }
    }
    Ok(value)
}

/// The text report. Every line is sanitised first (array names, states,
/// serials and reasons come from the kernel, drives and tools), then
/// coloured when `colors`: problems red, warnings yellow, healthy green.
fn render(report: &Report, colors: bool) -> String {
    let mut out = Lines {
        text: String::new(),
        colors,
    };
    for why in &report.unavailable {
        out.line(why, None);
    }
    // Other backends being unavailable (no ZFS here) does not hide that md
    // has no arrays.
    let md_unavailable = report
        .unavailable
        .iter()
        .any(|u| u.starts_with("md is not available"));
    if !md_unavailable && report.arrays.is_empty() && report.errors.is_empty() {
        out.line("no md arrays found", None);
    }
    for s in &report.arrays {
        let a = &s.array;
        let gone: Vec<&Vanished> = report
            .vanished
            .iter()
            .filter(|v| v.array == a.name)
            .collect();
        let header = Style::new().bold();
        out.line(
            &format!(
                "{}  {}  {}  {} slots, {} missing{}{}",
                a.name,
                a.level,
                a.state,
                a.raid_disks,
                a.degraded,
                vanished_summary(&gone),
                a.sync.as_ref().map_or(String::new(), |p| format!(
                    "  {} {:.1}%",
                    p.action,
                    p.fraction() * 100.0
                ))
            ),
            Some(if a.degraded > 0 || !gone.is_empty() {
                header.yellow()
            } else {
                header
            }),
        );
        for d in s.members() {
            let bad: Vec<&str> = d.member.as_ref().map_or(Vec::new(), |m| {
                m.flags
                    .iter()
                    .map(String::as_str)
                    .filter(|f| {
                        d.faults
                            .iter()
                            .any(|x| x.flag_name().is_some_and(|(_, name)| name == *f))
                    })
                    .collect()
            });
            let flags = if bad.is_empty() {
                String::new()
            } else {
                format!(" [{}]", bad.join(","))
            };
            let counters: Vec<String> = d
                .counters
                .iter()
                .filter(|(_, v)| **v > 0)
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let smart_failed = matches!(&d.smart, Some(Smart::Read { passed: false, .. }));
            let smart = match &d.smart {
                None => "not read".to_string(),
                Some(Smart::Read { passed: true, .. }) => "passed".into(),
                Some(Smart::Read { passed: false, .. }) => "FAILED".into(),
                Some(Smart::Unreadable { reason }) => format!("unreadable ({reason})"),
            };
            out.line(
                &format!(
                    "  {:<10} {:<7} {:<11} bay {:<8} serial {:<22} {:>10}  SMART {smart}{flags}{}",
                    d.id.dev,
                    d.id.transport.as_deref().unwrap_or("?"),
                    Observed::of(Some(d)).name(),
                    d.id.slot.as_deref().unwrap_or("unknown"),
                    d.id.serial.as_deref().unwrap_or("unknown"),
                    d.id.size_bytes.map_or("?".into(), format_size),
                    if counters.is_empty() {
                        String::new()
                    } else {
                        format!("  {}", counters.join(" "))
                    }
                ),
                (smart_failed || !bad.is_empty()).then(|| Style::new().red()),
            );
            let verdict = verdict_of(s, d);
            out.line(
                &format!("    verdict: {}", verdict.summary()),
                Some(match verdict.level {
                    Level::Healthy => Style::new().green(),
                    Level::AtRisk | Level::Unknown => Style::new().yellow(),
                    Level::Failing => Style::new().red().bold(),
                }),
            );
        }
        for v in gone {
            out.line(&vanished_line(v), Some(Style::new().red().bold()));
        }
        for p in &s.problems {
            out.line(
                &format!("  cannot read {} of {}: {}", p.probe, p.subject, p.message),
                Some(Style::new().red()),
            );
        }
    }
    for e in &report.errors {
        out.line(&format!("cannot read {e}"), Some(Style::new().red()));
    }
    out.text
}

/// Report lines, sanitised, then coloured.
struct Lines {
    text: String,
    colors: bool,
}

impl Lines {
    fn line(&mut self, line: &str, style: Option<Style>) {
        let clean = sanitize(line.trim_end_matches('\n'), true);
        match style {
            Some(style) if self.colors => {
                for l in clean.lines() {
                    self.text
                        .push_str(&style.clone().force_styling(true).apply_to(l).to_string());
                    self.text.push('\n');
                }
            }
            _ => {
                self.text.push_str(&clean);
                self.text.push('\n');
            }
        }
    }
}

/// `  nvme1n1    ?       VANISHED    bay 2        serial LAB-B-0002 (last
/// known, session ...)  md still lists it in-sync; its device is gone`.
fn vanished_line(v: &Vanished) -> String {
    let serial = match &v.last_known {
        Some(k) => format!(
            "{} (last known, session {} at {})",
            k.serial
                .as_deref()
                .or(k.wwn.as_deref())
                .unwrap_or("unknown"),
            k.session,
            k.at
        ),
        None => "unknown (no journal here saw it)".into(),
    };
    let md = match v.md_state.as_deref() {
        Some("faulty") => "md has marked it faulty".to_string(),
        Some(state) => format!("md still lists it {state}"),
        None => "md still lists it (its state cannot be read)".to_string(),
    };
    format!(
        "  {:<10} {:<7} {:<11} bay {:<8} serial {serial}  {md}; its device is gone (pulled or dead)\n",
        v.dev,
        "?",
        "VANISHED",
        v.bay.as_deref().unwrap_or("unknown"),
    )
}

/// `, 1 VANISHED (md has not noticed yet)` for the array's line; empty when
/// nothing vanished. md has noticed a member once it marked it faulty.
fn vanished_summary(gone: &[&Vanished]) -> String {
    let unnoticed = gone
        .iter()
        .filter(|v| v.md_state.as_deref() != Some("faulty"))
        .count();
    match (gone.len(), unnoticed) {
        (0, _) => String::new(),
        (n, 0) => format!(", {n} VANISHED (md has failed it)"),
        (n, u) if u == n => format!(", {n} VANISHED (md has not noticed yet)"),
        (n, u) => format!(", {n} VANISHED (md has not noticed {u} of them yet)"),
    }
}

/// Members md lists for `snap`'s array whose device is gone: exactly those
/// the md backend leaves out of the snapshot (`identity::member_disk` finds
/// no disk for them).
fn vanished(root: &Path, state_dir: &Path, snap: &Snapshot) -> Vec<Vanished> {
    let array = &snap.array.name;
    let md_dir = root.join("sys/block").join(array).join("md");
    let mut problems = Vec::new();
    let Ok(look) = sysfs::read_array(&md_dir, array, &mut problems) else {
        return Vec::new();
    };
    let slots = PciSlots::scan(root);
    let mut out = Vec::new();
    for member in look.members {
        let member_dir = md_dir.join(format!("dev-{}", member.kname));
        if identity::member_disk(root, &member_dir, &member.kname).is_some() {
            continue;
        }
        let last_known = last_known(state_dir, array, &member.kname);
        let bay = slots
            .nvme_bay(&member_dir, "block")
            .or_else(|| last_known.as_ref().and_then(|k| k.bay.clone()));
        out.push(Vanished {
            array: array.clone(),
            dev: member.kname,
            md_state: member.membership.as_ref().map(|m| m.state.to_string()),
            role: member.membership.as_ref().and_then(|m| m.role),
            bay,
            last_known,
        });
    }
    out
}

/// The drive the newest journal of `array` saw as member `dev`. Journals
/// that cannot be read are passed over: this is a hint for the technician,
/// never a health verdict.
fn last_known(state_dir: &Path, array: &str, dev: &str) -> Option<LastKnown> {
    let prefix = format!("{array}-");
    let mut paths = journal::sessions(state_dir).ok()?;
    paths.retain(|p| journal::session_name(p).starts_with(&prefix));
    for path in paths.iter().rev() {
        let Ok(entries) = journal::read(path) else {
            continue;
        };
        for e in entries.iter().rev().filter(|e| e["event"] == "snapshot") {
            let Ok(snap) = serde_json::from_value::<Snapshot>(e["snapshot"].clone()) else {
                continue;
            };
            if snap.array.name != array {
                continue;
            }
            if let Some(d) = snap.members().find(|d| d.id.dev == dev) {
                return Some(LastKnown {
                    serial: d.id.serial.clone(),
                    wwn: d.id.wwn.clone(),
                    model: d.id.model.clone(),
                    bay: d.id.slot.clone(),
                    session: journal::session_name(path),
                    at: e["at"].as_str().unwrap_or_default().to_string(),
                });
            }
        }
    }
    None
}
