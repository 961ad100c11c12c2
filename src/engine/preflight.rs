//! Preflight: everything that must hold before the first step touches
//! anything. A refusal here leaves the array exactly as it was.

use crate::engine::{Run, Stop, Walk};
use crate::health::guard::{BAD_FLAGS, Observed};
use crate::health::model::{Drive, MemberState, Smart, Snapshot};
use crate::runbook::model::{ParamKind, Precondition, Requirement};

/// Find the drive the technician named as the target (kernel name, serial,
/// WWN or bay), in the baseline. It must name exactly one array member.
pub(crate) fn resolve_target(run: &Run<'_>, baseline: &Snapshot) -> Result<Drive, Stop> {
    let param = run
        .runbook
        .params
        .iter()
        .find(|p| p.kind == ParamKind::Member)
        .map_or("target", |p| p.name.as_str());
    if run
        .runbook
        .params
        .iter()
        .any(|p| p.name == "target" && p.kind == ParamKind::Drive)
    {
        return resolve_drive(run, baseline);
    }
    let Some(name) = run.params.get(param) else {
        return Err(Stop::Refuse {
            reasons: vec![format!(
                "no target given: pass `--{param} DEVICE|SERIAL|BAY`"
            )],
        });
    };
    let found = baseline.find(name);
    let members: Vec<&Drive> = found
        .iter()
        .copied()
        .filter(|d| d.member.is_some())
        .collect();
    match (members.as_slice(), found.as_slice()) {
        ([one], _) => Ok((*one).clone()),
        ([], []) => Err(Stop::Refuse {
            reasons: vec![format!(
                "target `{name}` is not present: no drive has that name, serial, WWN or bay{}",
                list_members(baseline)
            )],
        }),
        ([], [other, ..]) => Err(Stop::Refuse {
            reasons: vec![format!(
                "target `{name}` is {}, which is not a member of `{}`{}",
                other.id.describe(),
                baseline.array.name,
                list_members(baseline)
            )],
        }),
        (many, _) => Err(Stop::Refuse {
            reasons: vec![format!(
                "target `{name}` matches {} members ({}); name it by serial",
                many.len(),
                many.iter()
                    .map(|d| d.id.describe())
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
        }),
    }
}

/// A `drive` target (a restore target): any one drive of the system. That
/// it is outside the array and not quarantined is checked in preflight, so
/// the refusal names the drive.
fn resolve_drive(run: &Run<'_>, baseline: &Snapshot) -> Result<Drive, Stop> {
    let Some(name) = run.params.get("target").filter(|n| !n.is_empty()) else {
        return Err(Stop::Refuse {
            reasons: vec!["no target given: pass `--target SERIAL` (the drive to write to)".into()],
        });
    };
    match baseline.find(name).as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Stop::Refuse {
            reasons: vec![format!(
                "target `{name}` is not present: no drive has that name, serial, WWN or bay"
            )],
        }),
        many => Err(Stop::Refuse {
            reasons: vec![format!(
                "target `{name}` matches {} drives ({}); name it by serial",
                many.len(),
                many.iter()
                    .map(|d| d.id.describe())
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
        }),
    }
}

fn list_members(s: &Snapshot) -> String {
    let names: Vec<String> = s.members().map(|d| d.id.describe()).collect();
    if names.is_empty() {
        String::new()
    } else {
        format!("; members are: {}", names.join(", "))
    }
}

/// Redundancy the array keeps with one member gone.
fn tolerated_failures(level: &str, raid_disks: u32) -> u32 {
    match level {
        "raid1" => raid_disks.saturating_sub(1),
        "raid4" | "raid5" | "raid10" => 1,
        "raid6" => 2,
        _ => 0,
    }
}

pub(crate) fn check(walk: &mut Walk<'_, '_>) -> Result<(), Stop> {
    let mut reasons = Vec::new();
    let base = &walk.baseline;
    let smart_required = walk.run.runbook.guard.smart == Requirement::Required;
    let target_key = walk.target.key();

    // Fail closed: anything the baseline could not read refuses the run.
    for p in &base.problems {
        if p.probe == "smart" && !smart_required {
            continue;
        }
        reasons.push(format!(
            "cannot read {} of {}: {}",
            p.probe, p.subject, p.message
        ));
    }
    for d in base.members() {
        match &d.smart {
            Some(Smart::Unreadable { reason }) if smart_required => reasons.push(format!(
                "cannot read SMART of {}: {reason} (mark `smart = \"optional\"` in [guard] only if this array has no SMART)",
                d.id.describe()
            )),
            None if smart_required => reasons.push(format!(
                "SMART of {} was not read",
                d.id.describe()
            )),
            _ => {}
        }
        if d.key().is_weak() {
            let who = if d.key() == target_key {
                "the target"
            } else {
                "a survivor"
            };
            reasons.push(format!(
                "{who} {} has no readable serial or WWN: a pulled or swapped drive could not be told apart",
                d.id.describe()
            ));
        }
    }

    for pre in &walk.run.runbook.preflight.require {
        match pre {
            Precondition::SurvivorsHealthy => {
                for d in base.members().filter(|d| d.key() != target_key) {
                    let observed = Observed::of(Some(d));
                    if d.state() != Some(MemberState::InSync) {
                        reasons.push(format!(
                            "survivor {} is {observed}, not in sync",
                            d.id.describe()
                        ));
                    }
                    if let Some(m) = &d.member {
                        for f in m.flags.iter().filter(|f| BAD_FLAGS.contains(&f.as_str())) {
                            reasons.push(format!("survivor {} has md flag `{f}`", d.id.describe()));
                        }
                    }
                    if let Some(Smart::Read { passed: false, .. }) = &d.smart {
                        reasons.push(format!("survivor {} fails SMART", d.id.describe()));
                    }
                    for name in ["md.errors", "md.bad_blocks"] {
                        if let Some(&n) = d.counters.get(name)
                            && n > 0
                        {
                            reasons.push(format!("survivor {} has {name} = {n}", d.id.describe()));
                        }
                    }
                }
            }
            Precondition::RedundantWithoutTarget => {
                let target_in_sync = walk.target.state() == Some(MemberState::InSync);
                let after = base.array.degraded + u32::from(target_in_sync);
                let tolerated = tolerated_failures(&base.array.level, base.array.raid_disks);
                if after > tolerated {
                    reasons.push(format!(
                        "`{}` ({}, {} slots, {} missing) would lose data without the target: it tolerates {tolerated} missing",
                        base.array.name, base.array.level, base.array.raid_disks, base.array.degraded
                    ));
                }
            }
            Precondition::NoRebuildRunning => {
                if let Some(sync) = &base.array.sync {
                    reasons.push(format!(
                        "a {} is running on `{}` ({:.1}% done); wait until it finishes",
                        sync.action,
                        base.array.name,
                        sync.fraction() * 100.0
                    ));
                }
            }
            Precondition::TargetIdentified => {
                if walk.target.key().is_weak() {
                    reasons.push(format!(
                        "the target {} has no readable serial or WWN",
                        walk.target.id.describe()
                    ));
                }
            }
        }
    }
    // The registry is consulted before every write; one that cannot be
    // read now would fail in the middle of the run.
    if let Err(e) = walk.registry() {
        reasons.push(format!("cannot read the quarantine registry: {e:#}"));
    }
    reasons.extend(walk.drive_target_refusals());
    if !base.array.state_is_running() {
        reasons.push(format!(
            "`{}` is {}, not running",
            base.array.name, base.array.state
        ));
    }

    let checks = walk.run.runbook.preflight.checks.clone();
    for c in &checks {
        match walk.run_check(c) {
            Ok(seen) => walk.run.operator.note(
                crate::operator::NoteLevel::Good,
                &crate::sanitize::sanitize(&format!("check `{}` passed: {seen}", c.name), false),
            ),
            Err(reason) => reasons.push(format!("check `{}` failed: {reason}", c.name)),
        }
    }
    reasons.dedup();
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Stop::Refuse { reasons })
    }
}
