//! SMART health through `smartctl --json` (smartmontools 7 or later).
//!
//! [`probe`] runs `smartctl --json -a <dev>` and [`parse`] turns its output
//! and exit status into [`Smart`]: the drive's verdict and its error counters
//! (`smart.*` for ATA, `nvme.*`, `scsi.*`). `-a` is the standard set and
//! carries every counter used: the verdict (`-H`), the ATA attributes, NVMe
//! health log or SCSI grown defects (`-A`), and the ATA or SCSI error log
//! (`-l error`). `-x` would add slow extended logs that no counter needs.
//! The device type is left to smartctl's detection (no `-d`), and sleeping
//! drives are woken (no `-n standby`): a verdict matters more during a swap.
//!
//! Fail closed: whenever the verdict cannot be read (tool missing or killed,
//! timeout, device not opened, output empty, not JSON, not smartctl's, no
//! `smart_status`) the answer is `Smart::Unreadable` with a reason naming the
//! tool and the device, never a healthy reading. And a failing verdict is
//! never lost: a drive smartctl calls failing (`smart_status.passed` false
//! or exit status bit 3) is read as failing even when its counters are
//! missing, so that an optional SMART probe cannot pass it.

mod counters;
mod json;
pub mod poller;
mod status;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::backend::CommandRunner;
use crate::backend::smart::json::Report;
use crate::backend::smart::status::ExitBits;
use crate::health::model::Smart;
use crate::sanitize::sanitize;

pub use crate::backend::smart::counters::NAMES as COUNTER_NAMES;
pub use crate::backend::smart::status::describe_exit_status;

/// The program run.
pub const TOOL: &str = "smartctl";

/// The device path for a kernel name: `sda` becomes `/dev/sda`; a path is
/// kept as it is.
pub fn device_path(dev: &str) -> String {
    if dev.starts_with('/') {
        dev.to_owned()
    } else {
        format!("/dev/{dev}")
    }
}

/// The argv [`probe`] runs for `dev` (a kernel name or a path).
pub fn command(dev: &str) -> Vec<String> {
    [TOOL, "--json", "-a", &device_path(dev)]
        .map(str::to_owned)
        .to_vec()
}

/// Read SMART for `dev` (`/dev/sda`, or the kernel name `sda`) through
/// `smartctl --json -a`. Never fails: anything that prevents a verdict is
/// `Smart::Unreadable` with the reason.
pub fn probe(runner: &mut dyn CommandRunner, dev: &str, timeout: Duration) -> Smart {
    let argv = command(dev);
    let path = sanitize(&device_path(dev), false);
    let output = match runner.run(&argv, timeout) {
        Ok(output) => output,
        Err(err) => {
            return unreadable(format!(
                "cannot run `{TOOL}` for `{path}`: {err:#}; install smartmontools 7 or later"
            ));
        }
    };
    if output.timed_out {
        return unreadable(format!(
            "`{TOOL}` did not finish within {} for `{path}`",
            humantime::format_duration(timeout)
        ));
    }
    let Some(code) = output.code else {
        return unreadable(format!(
            "`{TOOL}` was killed by a signal while reading `{path}`"
        ));
    };
    match read(&output.stdout, Some(code), Some(&path)) {
        Smart::Unreadable { reason } if output.stdout.trim().is_empty() => {
            match output.stderr.lines().map(str::trim).find(|l| !l.is_empty()) {
                Some(line) => unreadable(format!("{reason}; it said: {}", sanitize(line, false))),
                None => Smart::Unreadable { reason },
            }
        }
        smart => smart,
    }
}

/// Turn `smartctl --json` output into a verdict and counters. `exit_code`
/// is the process's exit status, `None` when not known (a captured file);
/// the document's own `smartctl.exit_status` is consulted too and a bit set
/// in either counts. Pure: no I/O.
pub fn parse(stdout: &str, exit_code: Option<i32>) -> Smart {
    read(stdout, exit_code, None)
}

fn unreadable(reason: String) -> Smart {
    Smart::Unreadable { reason }
}

/// [`parse`], with the device named by the caller when it knows it.
fn read(stdout: &str, exit_code: Option<i32>, dev: Option<&str>) -> Smart {
    match interpret(stdout, exit_code, dev) {
        Ok((passed, counters)) => Smart::Read { passed, counters },
        Err(reason) => unreadable(reason),
    }
}

/// The protocol families smartctl reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Ata,
    Nvme,
    Scsi,
}

impl Protocol {
    /// `device.protocol`, else whichever family's data is present.
    fn of(report: &Report) -> Option<Protocol> {
        let named = report.device.as_ref().and_then(|d| d.protocol.as_deref());
        match named.map(str::to_ascii_lowercase).as_deref() {
            Some("ata") => return Some(Protocol::Ata),
            Some("nvme") => return Some(Protocol::Nvme),
            Some("scsi") => return Some(Protocol::Scsi),
            _ => {}
        }
        if report.ata_smart_attributes.is_some() {
            Some(Protocol::Ata)
        } else if report.nvme_smart_health_information_log.is_some() {
            Some(Protocol::Nvme)
        } else if report.scsi_grown_defect_list.is_some() || report.scsi_error_counter_log.is_some()
        {
            Some(Protocol::Scsi)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Protocol::Ata => "ATA",
            Protocol::Nvme => "NVMe",
            Protocol::Scsi => "SCSI",
        }
    }
}

type Reading = (bool, BTreeMap<String, u64>);

fn interpret(stdout: &str, exit_code: Option<i32>, dev: Option<&str>) -> Result<Reading, String> {
    let parsed = if stdout.trim().is_empty() {
        None
    } else {
        Some(serde_json::from_str::<Report>(stdout))
    };
    let report = parsed.as_ref().and_then(|p| p.as_ref().ok());
    let named = match dev {
        Some(dev) => Some(dev.to_owned()),
        None => match report {
            Some(report) => report.device_name().map(str::to_owned),
            None => device_name_from_any_json(stdout),
        },
    };
    // `dev` is what messages call the device: its name in backticks, or a
    // plain phrase when neither the caller nor the output names it.
    let dev = match &named {
        Some(name) => format!("`{}`", sanitize(name, false)),
        None => "the device".to_owned(),
    };
    let said = report
        .and_then(Report::first_message)
        .map(|m| format!("; it said: {}", sanitize(m, false)))
        .unwrap_or_default();

    let bits = exit_bits(exit_code, report.and_then(Report::exit_status), &dev)?;
    if let Some(bits) = bits.filter(|b| b.nothing_read()) {
        let hint = if bits.open_failed() {
            "; check that the device exists and that swapguard runs as root"
        } else {
            ""
        };
        return Err(format!(
            "`{TOOL}` could not read {dev} ({}){said}{hint}",
            bits.describe()
        ));
    }
    let status_note = bits
        .filter(|b| !b.is_clean())
        .map(|b| format!(" ({})", b.describe()))
        .unwrap_or_default();

    let report = match parsed {
        None => return Err(format!("`{TOOL}` printed nothing for {dev}{status_note}")),
        Some(Err(err)) => {
            let hint = if stdout.trim_start().starts_with(['{', '[']) {
                ""
            } else {
                "; `--json` needs smartmontools 7 or later"
            };
            return Err(format!(
                "`{TOOL}` output for {dev} is not usable JSON: {err}{hint}"
            ));
        }
        Some(Ok(report)) => report,
    };
    if report.smartctl.is_none() {
        return Err(format!(
            "output for {dev} is not `{TOOL} --json` output: it has no `smartctl` section"
        ));
    }

    let failing = bits.is_some_and(ExitBits::disk_failing);
    let protocol = Protocol::of(&report);
    let verdict = report.smart_status.as_ref().and_then(|s| s.passed);
    let passed = match verdict {
        // smartctl sets bit 3 exactly when the drive reports failing; if the
        // two ever disagree, the failing one wins.
        Some(passed) => passed && !failing,
        None if failing => false,
        None => {
            let mut why = Vec::new();
            if let Some(protocol) = protocol {
                why.push(format!("{} device", protocol.name()));
            }
            why.extend(support_note(&report, named.as_deref()));
            why.extend(bits.filter(|b| !b.is_clean()).map(ExitBits::describe));
            let why = if why.is_empty() {
                String::new()
            } else {
                format!(" ({})", why.join("; "))
            };
            return Err(format!(
                "`{TOOL}` gave no SMART health verdict for {dev}{why}{said}"
            ));
        }
    };

    let self_test_bit = bits.is_some_and(ExitBits::self_test_errors);
    match collect(&report, protocol, stdout, self_test_bit) {
        Ok(counters) => Ok((passed, counters)),
        // A failing verdict stands even without counters: reporting it
        // unreadable would let an optional SMART probe pass a failing drive.
        Err(_) if !passed => Ok((false, BTreeMap::new())),
        Err(what) => Err(format!(
            "`{TOOL}` output for {dev} has {what}{status_note}{said}"
        )),
    }
}

/// The counters of the drive's protocol family. `Err` names the section
/// that must be there and is not.
fn collect(
    report: &Report,
    protocol: Option<Protocol>,
    stdout: &str,
    self_test_bit: bool,
) -> Result<BTreeMap<String, u64>, &'static str> {
    let mut found = BTreeMap::new();
    match protocol {
        Some(Protocol::Ata) => {
            let attributes = report
                .ata_smart_attributes
                .as_ref()
                .ok_or("no ATA SMART attribute table")?;
            counters::ata(attributes, report.ata_smart_error_log.as_ref(), &mut found);
            if let Some(log) = &report.ata_smart_self_test_log {
                counters::ata_self_tests(log, &mut found);
            }
        }
        Some(Protocol::Nvme) => {
            let log = report
                .nvme_smart_health_information_log
                .as_ref()
                .ok_or("no NVMe SMART/health information log")?;
            counters::nvme(log, &mut found);
            if let Some(log) = &report.nvme_self_test_log {
                counters::nvme_self_tests(log, &mut found);
            }
        }
        // SCSI log pages are optional; a drive without them still has a
        // verdict, and whatever counters it has are read.
        Some(Protocol::Scsi) => {
            counters::scsi(
                report.scsi_grown_defect_list,
                report.scsi_error_counter_log.as_ref(),
                &mut found,
            );
            if let Ok(document) = serde_json::from_str::<serde_json::Value>(stdout) {
                counters::scsi_self_tests(&document, &mut found);
            }
        }
        None => return Err("no device protocol and no SMART counters"),
    }
    // Exit status bit 7 says the self-test log holds errors; if the log
    // itself was not printed or not understood, the bit still counts.
    if self_test_bit
        && found
            .get(counters::SELF_TEST_FAILED)
            .is_none_or(|n| *n == 0)
    {
        found.insert(counters::SELF_TEST_FAILED.to_owned(), 1);
    }
    Ok(found)
}

/// The exit status bits from the process and the document together. `Err`
/// when either value cannot be a smartctl exit status; `None` when neither
/// is known.
fn exit_bits(
    process: Option<i32>,
    document: Option<i64>,
    dev: &str,
) -> Result<Option<ExitBits>, String> {
    let decode = |code: i64| {
        ExitBits::from_code(code).ok_or_else(|| {
            format!("`{TOOL}` for {dev} ended with exit status {code}, which smartctl never uses")
        })
    };
    let process = process.map(|c| decode(i64::from(c))).transpose()?;
    let document = document.map(decode).transpose()?;
    Ok(match (process, document) {
        (Some(a), Some(b)) => Some(a.union(b)),
        (a, b) => a.or(b),
    })
}

/// Why a drive may have no verdict: SMART unsupported or switched off.
fn support_note(report: &Report, dev: Option<&str>) -> Option<String> {
    let support = report.smart_support.as_ref()?;
    if support.available == Some(false) {
        Some("the drive does not report SMART support".to_owned())
    } else if support.enabled == Some(false) {
        let dev = sanitize(dev.unwrap_or("<device>"), false);
        Some(format!(
            "SMART is disabled on the drive; enable it with `{TOOL} -s on {dev}`"
        ))
    } else {
        None
    }
}

/// The device name in output that is JSON but not the shape expected (a
/// counter of the wrong type), so the reason can still name the device.
fn device_name_from_any_json(stdout: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(stdout).ok()?;
    let name = value.pointer("/device/name")?.as_str()?;
    Some(name.to_owned()).filter(|n| !n.trim().is_empty())
}

#[cfg(test)]
mod tests;
