//! How the simulated hardware looks to a reader: a [`Snapshot`] built the
//! way the md backend builds one from sysfs and smartctl, so the guard cannot
//! tell the two apart. A drive's own part (identity, counters, SMART,
//! blankness) is the pool's, whatever storage it carries; md adds the array
//! and each member's state and counters.
//!
//! A fast look carries md state and the cheap counters only; a full look
//! adds SMART and blankness. A probe a scenario made unreadable shows up as
//! an unreadable value or a problem, never as a healthy reading.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use crate::backend::Depth;
use crate::backend::sim::md::MdArray;
use crate::backend::sim::names::Family;
use crate::backend::sim::pool::Pool;
use crate::health::model::{
    ArrayHealth, Drive, MemberState, Membership, Problem, Smart, Snapshot, SyncProgress,
};

/// The kernel's order of `dev-*/state` flags.
const FLAG_ORDER: [&str; 11] = [
    "faulty",
    "in_sync",
    "journal",
    "write_mostly",
    "blocked",
    "spare",
    "write_error",
    "want_replacement",
    "replacement",
    "external_bbl",
    "failfast",
];

impl MdArray {
    /// One look, as the md backend would take it.
    pub fn snapshot(
        &self,
        pool: &Pool,
        array: &str,
        depth: Depth,
        now_ms: u64,
    ) -> Result<Snapshot> {
        if array != self.array.name {
            bail!(
                "no array `{array}` in the simulation (it has `{}`)",
                self.array.name
            );
        }
        if self.array.unreadable {
            bail!("cannot read md array `{array}`: the scenario made it unreadable");
        }
        let sync = self.recovery.map(|r| {
            let total = self.array.component_sectors;
            let rebuild = self.array.rebuild_ms.max(1);
            let elapsed = now_ms.saturating_sub(r.started_ms).min(rebuild);
            let done = u64::try_from(u128::from(total) * u128::from(elapsed) / u128::from(rebuild))
                .unwrap_or(total);
            SyncProgress {
                action: "recover".to_string(),
                done,
                total,
                speed_kib: Some(
                    u64::try_from(u128::from(total / 2) * 1000 / u128::from(rebuild))
                        .unwrap_or(u64::MAX),
                ),
            }
        });
        let mut members: Vec<(usize, usize)> = pool
            .drives
            .iter()
            .enumerate()
            .filter(|(_, d)| d.present)
            .filter_map(|(i, _)| self.attached_member(i).map(|m| (i, m)))
            .collect();
        members.sort_by_key(|&(i, m)| (self.members[m].role.unwrap_or(u32::MAX), i));
        let mut drives = Vec::new();
        let mut problems = Vec::new();
        for &(i, m) in &members {
            drives.push(self.drive_view(pool, i, Some(m), depth, &mut problems));
        }
        for (i, d) in pool.drives.iter().enumerate() {
            if d.present && self.attached_member(i).is_none() {
                drives.push(self.drive_view(pool, i, None, depth, &mut problems));
            }
        }
        // The simulator plays md: md's words mean what they mean to md.
        let mut snap = Snapshot {
            at_ms: now_ms,
            array: ArrayHealth {
                name: self.array.name.clone(),
                level: self.array.level.name().to_string(),
                state: if self.array.broken { "broken" } else { "clean" }.to_string(),
                raid_disks: self.array.raid_disks,
                degraded: self.degraded(),
                sync,
                running: false,
                redundancy_left: 0,
            },
            drives,
            problems,
        };
        crate::backend::md::facts::annotate(&mut snap);
        Ok(snap)
    }

    fn drive_view(
        &self,
        pool: &Pool,
        drive: usize,
        member: Option<usize>,
        depth: Depth,
        problems: &mut Vec<Problem>,
    ) -> Drive {
        let mut view = pool.drive_view(drive, depth, problems);
        let Some(m) = member else {
            return view;
        };
        if !pool.drives[drive].counters_unreadable {
            view.counters.extend(self.members[m].counters.clone());
        }
        let m = &self.members[m];
        let mut flags: Vec<&str> = vec![match m.state {
            MemberState::InSync => "in_sync",
            MemberState::Faulty => "faulty",
            MemberState::Spare | MemberState::Rebuilding => "spare",
        }];
        if m.replacement {
            flags.push("replacement");
        }
        flags.extend(m.flags.iter().map(String::as_str));
        flags.sort_by_key(|f| FLAG_ORDER.iter().position(|o| o == f).unwrap_or(usize::MAX));
        flags.dedup();
        view.member = Some(Membership {
            state: m.state,
            role: m.role,
            flags: flags.into_iter().map(String::from).collect(),
            name: Some(view.id.dev.clone()),
        });
        view
    }
}

impl Pool {
    /// A drive's own part of a look, as no member of anything: identity,
    /// the cheap counters and, in a full look, SMART and blankness.
    pub(crate) fn drive_view(
        &self,
        drive: usize,
        depth: Depth,
        problems: &mut Vec<Problem>,
    ) -> Drive {
        let d = &self.drives[drive];
        let mut counters = BTreeMap::new();
        if d.counters_unreadable {
            problems.push(Problem {
                probe: "counters".to_string(),
                subject: d.dev.clone(),
                message: format!(
                    "cannot read the error counters of `{}`: the scenario made them unreadable",
                    d.dev
                ),
            });
        } else {
            counters.extend(
                d.counters
                    .iter()
                    .filter(|(k, _)| !is_smart(k))
                    .map(|(k, v)| (k.clone(), *v)),
            );
        }
        let (smart, blank) = match depth {
            // The simulator's smartctl answers at once, so a due background
            // round is simply a full look's SMART.
            Depth::Fast | Depth::Watch { smart_due: false } => (None, None),
            Depth::Full | Depth::Watch { smart_due: true } => {
                let smart = if d.smart_unreadable {
                    Smart::Unreadable {
                        reason: format!(
                            "smartctl could not read `/dev/{}`: the scenario made SMART unreadable",
                            d.dev
                        ),
                    }
                } else if d.family == Family::Vd {
                    Smart::Unreadable {
                        reason: format!("smartctl: `/dev/{}`: unable to detect device type", d.dev),
                    }
                } else {
                    Smart::Read {
                        passed: d.smart_passed,
                        counters: d
                            .counters
                            .iter()
                            .filter(|(k, _)| is_smart(k))
                            .map(|(k, v)| (k.clone(), *v))
                            .collect(),
                    }
                };
                (Some(smart), Some(d.blank))
            }
        };
        Drive {
            id: d.identity(),
            member: None,
            counters,
            smart,
            blank,
            faults: Vec::new(),
        }
    }
}

/// Counters that come from SMART (read only in a full look): `smart.*`
/// (ATA), `nvme.*` and `scsi.*` (SAS/SCSI error counter log, grown defects).
pub(crate) fn is_smart(counter: &str) -> bool {
    counter.starts_with("smart.") || counter.starts_with("nvme.") || counter.starts_with("scsi.")
}
