//! `swapguard status`: every array and drive, for people and scripts.

use anyhow::Result;
use serde::Serialize;

use crate::backend::md::MdBackend;
use crate::backend::process::ProcessRunner;
use crate::backend::{Backend, Depth};
use crate::cli::Config;
use crate::exit;
use crate::health::guard::{BAD_FLAGS, Observed};
use crate::health::model::{Smart, Snapshot};
use crate::sanitize::sanitize;
use crate::units::format_size;

#[derive(Serialize)]
struct Report {
    /// [`crate::output::JSON_FORMAT`].
    format: u32,
    arrays: Vec<Snapshot>,
    /// Arrays that could not be read, with the reason.
    errors: Vec<String>,
}

pub fn status(config: &Config, json: bool, smart: bool) -> Result<i32> {
    let mut backend = MdBackend::new(config.sysroot.clone(), Box::new(ProcessRunner));
    let names = backend.arrays()?;
    let depth = if smart { Depth::Full } else { Depth::Fast };
    let mut report = Report {
        format: crate::output::JSON_FORMAT,
        arrays: Vec::new(),
        errors: Vec::new(),
    };
    for name in &names {
        match backend.snapshot(name, depth) {
            Ok(s) => report.arrays.push(s),
            Err(e) => report.errors.push(format!("{name}: {e:#}")),
        }
    }
    if json {
        crate::outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        crate::out!("{}", render(&report))?;
    }
    Ok(if report.errors.is_empty() {
        exit::SUCCESS
    } else {
        exit::FAILURE
    })
}

fn render(report: &Report) -> String {
    let mut out = String::new();
    if report.arrays.is_empty() && report.errors.is_empty() {
        out.push_str("no md arrays found\n");
    }
    for s in &report.arrays {
        let a = &s.array;
        out.push_str(&format!(
            "{}  {}  {}  {} slots, {} missing{}\n",
            a.name,
            a.level,
            a.state,
            a.raid_disks,
            a.degraded,
            a.sync.as_ref().map_or(String::new(), |p| format!(
                "  {} {:.1}%",
                p.action,
                p.fraction() * 100.0
            ))
        ));
        for d in s.members() {
            let flags = d.member.as_ref().map_or(String::new(), |m| {
                let bad: Vec<&str> = m
                    .flags
                    .iter()
                    .map(String::as_str)
                    .filter(|f| BAD_FLAGS.contains(f))
                    .collect();
                if bad.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", bad.join(","))
                }
            });
            let counters: Vec<String> = d
                .counters
                .iter()
                .filter(|(_, v)| **v > 0)
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let smart = match &d.smart {
                None => "not read".to_string(),
                Some(Smart::Read { passed: true, .. }) => "passed".into(),
                Some(Smart::Read { passed: false, .. }) => "FAILED".into(),
                Some(Smart::Unreadable { reason }) => format!("unreadable ({reason})"),
            };
            out.push_str(&sanitize(
                &format!(
                    "  {:<10} {:<7} {:<11} bay {:<8} serial {:<22} {:>10}  SMART {smart}{flags}{}\n",
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
                true,
            ));
        }
        for p in &s.problems {
            out.push_str(&sanitize(
                &format!(
                    "  cannot read {} of {}: {}\n",
                    p.probe, p.subject, p.message
                ),
                true,
            ));
        }
    }
    for e in &report.errors {
        out.push_str(&sanitize(&format!("cannot read {e}\n"), true));
    }
    out
}
