//! New-drive acceptance: before anything writes to a freshly inserted drive,
//! it must prove it is the right one.
//!
//! In the incident a backup was restored onto the drive that had just been
//! pulled as broken. A new drive must therefore not be any drive this run has
//! seen, nor any drive in the quarantine registry (above all not the target
//! just pulled), must be large enough, blank and healthy. Anything that
//! cannot be established is a refusal.

use crate::engine::{Stop, Walk};
use crate::health::guard::{Subject, Violation};
use crate::health::model::{Drive, Smart};
use crate::runbook::model::{Requirement, Step};
use crate::units::{format_size, parse_size};

pub(crate) fn check(walk: &Walk<'_, '_>, step: &Step, drive: &Drive) -> Result<(), Stop> {
    let mut refusals: Vec<(String, String, String)> = Vec::new();
    let key = drive.key();
    if key.is_weak() {
        refusals.push((
            "serial or WWN".into(),
            "readable".into(),
            "none readable: the drive cannot be told apart from others".into(),
        ));
    }
    match walk.quarantine_of(&drive.id) {
        Ok(Some(why)) => refusals.push(("quarantine".into(), "not quarantined".into(), why)),
        Ok(None) => {}
        Err(e) => refusals.push((
            "quarantine".into(),
            "not quarantined".into(),
            format!("unknown: the quarantine registry cannot be read ({e:#})"),
        )),
    }
    if let Some(rule) = &step.new_drive {
        if let Some(min) = &rule.min_size {
            match walk.render(&min.text).and_then(|t| parse_size(&t)) {
                Ok(min) => match drive.id.size_bytes {
                    Some(size) if size >= min => {}
                    Some(size) => refusals.push((
                        "size".into(),
                        format!("at least {} ({min} bytes)", format_size(min)),
                        format!("smaller: {} ({size} bytes)", format_size(size)),
                    )),
                    None => refusals.push((
                        "size".into(),
                        format!("at least {}", format_size(min)),
                        "unknown (size could not be read)".into(),
                    )),
                },
                Err(e) => refusals.push((
                    "size".into(),
                    format!("at least `{}`", min.text),
                    format!("cannot work out the minimum: {e:#}"),
                )),
            }
        }
        if rule.blank {
            match drive.blank {
                Some(true) => {}
                Some(false) => refusals.push((
                    "blankness".into(),
                    "blank".into(),
                    "not blank: it has a partition table, RAID superblock or filesystem \
                     signature; wipe it only through a runbook step behind a typed confirmation"
                        .into(),
                )),
                None => refusals.push((
                    "blankness".into(),
                    "blank".into(),
                    "unknown: its first and last sectors could not be read".into(),
                )),
            }
        }
    }
    // A flag the backend set on the drive itself (MegaRAID: `UBad`, a
    // foreign configuration, a S.M.A.R.T alert).
    for fault in drive.faults.iter().filter(|f| f.flag) {
        refusals.push((
            fault.condition.clone(),
            "clear".into(),
            format!("set: {}", fault.meaning),
        ));
    }
    let smart_required = walk.run.runbook.guard.smart == Requirement::Required;
    match &drive.smart {
        Some(Smart::Read { passed: true, .. }) => {}
        Some(Smart::Read { passed: false, .. }) => refusals.push((
            "SMART overall health".into(),
            "passed".into(),
            "FAILED: the new drive is itself failing".into(),
        )),
        Some(Smart::Unreadable { reason }) if smart_required => refusals.push((
            "SMART readable".into(),
            "yes".into(),
            format!("no ({reason})"),
        )),
        None if smart_required => {
            refusals.push(("SMART".into(), "readable".into(), "not read".into()))
        }
        _ => {}
    }
    if refusals.is_empty() {
        return Ok(());
    }
    let who = drive.id.describe();
    Err(Stop::Halt {
        step: step.id.clone(),
        headline: format!("refused the new drive {who}: nothing will be written to it"),
        violations: refusals
            .into_iter()
            .map(|(what, before, after)| Violation {
                subject: Subject::NewDrive,
                who: who.clone(),
                what,
                before,
                after,
            })
            .collect(),
    })
}
