//! From what storcli says to a snapshot of one virtual drive: its drive
//! group's rows, every physical drive on the controller with its
//! membership, counters and faults, the rebuild's progress. Pure: the
//! backend runs the calls, this reads their parsed replies, so the
//! captures test it directly.
//!
//! The convention this follows is written down in `facts.rs`.

use std::collections::BTreeMap;

use crate::backend::megaraid::facts::{self, drive_dev, drive_slot};
use crate::backend::megaraid::json::{Controller, Group, PdDetail, Rebuild, VdRow};
use crate::health::model::{
    ArrayHealth, Drive, Identity, MemberState, Membership, Problem, Snapshot, SyncProgress,
};

/// One row of the VD's drive group: the drive in it (`None`: missing)
/// and the row's state as TOPOLOGY gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRow {
    pub drive: Option<(Option<u32>, u32)>,
    pub state: String,
}

/// The rows of drive group `group`, in order: from TOPOLOGY (whose
/// drive rows carry the group's rows, missing ones included), or, where
/// TOPOLOGY lists none, from the drives that say they are in the group
/// (`Drive position`'s row, else the order storcli lists them).
pub fn group_rows(ctl: &Controller, group: u32, details: &[PdDetail]) -> Vec<GroupRow> {
    let rows: Vec<GroupRow> = ctl
        .topology
        .iter()
        .filter(|t| t.group == Some(group) && t.kind.eq_ignore_ascii_case("DRIVE"))
        .map(|t| GroupRow {
            drive: t.drive,
            state: t.state.clone(),
        })
        .collect();
    if !rows.is_empty() {
        return rows;
    }
    let mut found: Vec<(u32, GroupRow)> = details
        .iter()
        .filter(|d| d.row.group == Group::Group(group))
        .enumerate()
        .map(|(i, d)| {
            (
                d.position.map_or(i as u32, |(_, _, row)| row),
                GroupRow {
                    drive: Some((d.row.enclosure, d.row.slot)),
                    state: d.row.state.clone(),
                },
            )
        })
        .collect();
    found.sort_by_key(|(row, _)| *row);
    found.into_iter().map(|(_, r)| r).collect()
}

/// A drive's flags: its PD state lowercased, then `foreign`, then
/// `smart_alert`.
pub fn flags(d: &PdDetail) -> Vec<String> {
    let mut flags = vec![d.row.state.to_ascii_lowercase()];
    if d.row.group == Group::Foreign {
        flags.push("foreign".into());
    }
    if d.smart_alert == Some(true) {
        flags.push("smart_alert".into());
    }
    flags
}

/// A drive's identity from its `show all`.
pub fn identity(d: &PdDetail) -> Identity {
    Identity {
        dev: drive_dev(d.controller, d.row.enclosure, d.row.slot),
        serial: d.serial.clone(),
        wwn: d.wwn.clone(),
        model: d.model.clone(),
        firmware: d.firmware.clone(),
        size_bytes: d.size_bytes,
        slot: Some(drive_slot(d.row.enclosure, d.row.slot)),
        by_id: None,
        transport: d.row.intf.as_deref().map(str::to_ascii_lowercase),
    }
}

/// The snapshot of VD `vd` on controller `controller` (without SMART, at
/// `at_ms`), annotated.
pub fn snapshot(
    controller: u32,
    vd: &VdRow,
    ctl: &Controller,
    details: &[PdDetail],
    rebuilds: &BTreeMap<String, Rebuild>,
    at_ms: u64,
) -> Snapshot {
    let rows = group_rows(ctl, vd.group, details);
    let mut problems = Vec::new();
    let mut drives = Vec::new();
    let mut serving = vec![false; rows.len()];
    let mut sync: Option<SyncProgress> = None;
    for d in details {
        let id = identity(d);
        let flags = flags(d);
        let lower = flags[0].as_str();
        let row = rows
            .iter()
            .position(|r| r.drive == Some((d.row.enclosure, d.row.slot)));
        let in_group = row.is_some() || d.row.group == Group::Group(vd.group);
        let member = match facts::member_state(lower) {
            MemberState::Spare => Some(Membership {
                state: MemberState::Spare,
                role: None,
                flags: flags.clone(),
                name: Some(format!("/{}", id.dev)),
            }),
            state if in_group => {
                if let Some(r) = row {
                    serving[r] = state == MemberState::InSync;
                }
                Some(Membership {
                    state,
                    role: row.map(|r| r as u32),
                    flags: flags.clone(),
                    name: Some(format!("/{}", id.dev)),
                })
            }
            _ => None,
        };
        if member
            .as_ref()
            .is_some_and(|m| m.state == MemberState::Rebuilding)
        {
            let address = format!("/{}", id.dev);
            match rebuilds.get(&address).and_then(|r| r.percent) {
                Some(percent) => {
                    let (done, total) = match d.size_bytes {
                        Some(bytes) => {
                            let total = bytes / SyncProgress::UNIT_BYTES;
                            (total / 100 * u64::from(percent), total)
                        }
                        None => (u64::from(percent), 100),
                    };
                    let slower = sync
                        .as_ref()
                        .is_none_or(|s| s.fraction() > done as f64 / total.max(1) as f64);
                    if slower {
                        sync = Some(SyncProgress {
                            action: "rebuild".into(),
                            done,
                            total,
                            speed_kib: None,
                        });
                    }
                }
                None => problems.push(Problem {
                    probe: "megaraid".into(),
                    subject: id.dev.clone(),
                    message: format!(
                        "{} is being rebuilt but storcli gives no progress for it",
                        id.describe()
                    ),
                }),
            }
        }
        let mut counters = BTreeMap::new();
        for (name, value, field) in [
            (facts::COUNTER_NAMES[0], d.media_errors, "Media Error Count"),
            (facts::COUNTER_NAMES[1], d.other_errors, "Other Error Count"),
            (
                facts::COUNTER_NAMES[2],
                d.predictive_failures,
                "Predictive Failure Count",
            ),
        ] {
            match value {
                Some(n) => {
                    counters.insert(name.to_string(), n);
                }
                None if member.is_some() => problems.push(Problem {
                    probe: "megaraid".into(),
                    subject: id.dev.clone(),
                    message: format!(
                        "`{field}` of {} is not a number (N/A or absent): unreadable, not zero",
                        id.describe()
                    ),
                }),
                None => {}
            }
        }
        let faults = if member.is_none() {
            facts::drive_faults(&flags)
        } else {
            Vec::new()
        };
        drives.push(Drive {
            id,
            member,
            counters,
            smart: None,
            blank: None,
            faults,
        });
    }
    let degraded = rows
        .iter()
        .zip(&serving)
        .filter(|(r, serves)| !**serves || !r.state.eq_ignore_ascii_case("Onln"))
        .count() as u32;
    let mut snap = Snapshot {
        at_ms,
        array: ArrayHealth {
            name: format!("/c{controller}/v{}", vd.vd),
            level: vd.level.to_ascii_lowercase(),
            state: vd.state.clone(),
            running: false,
            raid_disks: rows.len() as u32,
            degraded,
            sync,
            redundancy_left: 0,
        },
        drives,
        problems,
    };
    facts::annotate(&mut snap);
    snap
}

/// The drives that are being written to now and what a look asks storcli
/// about each: (address, `rebuild` or `copyback`).
pub fn rebuilding(details: &[PdDetail]) -> Vec<(String, &'static str)> {
    details
        .iter()
        .filter_map(|d| {
            let what = match d.row.state.to_ascii_lowercase().as_str() {
                "rbld" => "rebuild",
                "cpybck" => "copyback",
                _ => return None,
            };
            Some((
                format!("/{}", drive_dev(d.controller, d.row.enclosure, d.row.slot)),
                what,
            ))
        })
        .collect()
}
