//! The md personality: one md array over drives of the pool.
//!
//! This is the state the simulator's clock, technician and mdadm
//! (`mdadm.rs`) act on.
//! It follows what real md does (lab-notes.md), because a dry run is only
//! worth something if the guard sees what it would see on a real host:
//!
//! - a pulled member stays listed until md notices at the next write (the
//!   caller schedules that), while the pool releases the kernel name at
//!   once, so the next inserted drive usually takes it;
//! - md never fails the last working mirror: it marks the array broken and
//!   keeps the member in sync;
//! - a recovering member reads `spare` in sysfs until it is in sync, and a
//!   replacement copy keeps the array whole.
//!
//! md's view of a drive (a [`Member`]) is kept apart from the drive itself:
//! when a member is pulled its entry is *detached* (md still holds it), and
//! if the same drive is put back it is a new block device that md does not
//! know.

use std::collections::BTreeMap;

use crate::backend::sim::machine::{ArraySpec, DriveGroup, DriveSpec, Level};
use crate::backend::sim::names::Family;
use crate::backend::sim::pool::Pool;
use crate::health::model::MemberState;

/// md's state: the array and its members. Drives are indexes into the
/// [`Pool`].
#[derive(Clone, Debug)]
pub(crate) struct MdArray {
    pub array: ArrayState,
    /// md's list of members, in the order they joined. Entries are never
    /// deleted (a removal sets `removed`), so indexes stay valid.
    pub members: Vec<Member>,
    pub recovery: Option<Recovery>,
}

#[derive(Clone, Debug)]
pub(crate) struct ArrayState {
    pub name: String,
    pub level: Level,
    pub raid_disks: u32,
    pub rebuild_ms: u64,
    /// Size of one member's data area in 512-byte sectors.
    pub component_sectors: u64,
    /// md gave up on a failure it could not absorb (`array_state` `broken`).
    pub broken: bool,
    /// The array itself can no longer be read (a scenario event).
    pub unreadable: bool,
}

/// md's record of one member (a `dev-*` directory in sysfs).
#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub drive: usize,
    pub state: MemberState,
    pub role: Option<u32>,
    /// Flags beyond the state itself: `write_error`, `want_replacement`, ...
    pub flags: Vec<String>,
    /// Being copied to as the replacement of another member.
    pub replacement: bool,
    /// The block device is gone; md has not dropped the member yet.
    pub detached: bool,
    pub removed: bool,
    /// The `major:minor` md prints once the device node is gone.
    pub devnum: String,
    /// `md.errors`, `md.bad_blocks`, ...
    pub counters: BTreeMap<String, u64>,
}

impl Member {
    fn live(&self) -> bool {
        !self.removed
    }

    fn holds_slot(&self) -> bool {
        self.live() && self.role.is_some() && !self.replacement
    }
}

/// A running recovery or replacement copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Recovery {
    /// The member being written.
    pub member: usize,
    /// For a replacement: the member being replaced.
    pub replacing: Option<usize>,
    pub started_ms: u64,
}

/// What md did with a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The member is now faulty.
    Failed,
    /// It was faulty already.
    AlreadyFaulty,
    /// md cannot lose it (the last working mirror): it stays in sync and the
    /// array is marked broken.
    Refused,
}

fn md_counters() -> BTreeMap<String, u64> {
    [
        ("md.errors".to_string(), 0),
        ("md.bad_blocks".to_string(), 0),
    ]
    .into_iter()
    .collect()
}

impl MdArray {
    pub fn new(array: &ArraySpec, specs: &[DriveSpec]) -> MdArray {
        let mut members = Vec::new();
        let mut next_role = 0u32;
        for (index, spec) in specs.iter().enumerate() {
            if spec.group != DriveGroup::Member {
                continue;
            }
            let role = match spec.state {
                MemberState::InSync | MemberState::Rebuilding => {
                    next_role += 1;
                    Some(next_role - 1)
                }
                MemberState::Spare | MemberState::Faulty => None,
            };
            let mut counters = md_counters();
            for (k, v) in &spec.counters {
                if k.starts_with("md.") {
                    counters.insert(k.clone(), *v);
                }
            }
            members.push(Member {
                drive: index,
                state: spec.state,
                role,
                flags: Vec::new(),
                replacement: false,
                detached: false,
                removed: false,
                devnum: Family::devnum(spec.dev.as_deref().unwrap_or("")),
                counters,
            });
        }
        let component_bytes = specs
            .iter()
            .filter(|d| d.group == DriveGroup::Member)
            .map(|d| d.size_bytes)
            .min()
            .unwrap_or(0);
        let recovery = members
            .iter()
            .position(|m| m.state == MemberState::Rebuilding)
            .map(|member| Recovery {
                member,
                replacing: None,
                started_ms: 0,
            });
        MdArray {
            array: ArrayState {
                name: array.name.clone(),
                level: array.level,
                raid_disks: array.raid_disks,
                rebuild_ms: u64::try_from(array.rebuild_time.as_millis()).unwrap_or(u64::MAX),
                component_sectors: component_bytes / 512,
                broken: false,
                unreadable: false,
            },
            members,
            recovery,
        }
    }

    /// The member entry md holds for `drive` through its current block
    /// device (not a detached one).
    pub fn attached_member(&self, drive: usize) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.drive == drive && m.live() && !m.detached)
    }

    /// The member entry for `drive`, attached or detached.
    pub fn any_member(&self, drive: usize) -> Option<usize> {
        self.members
            .iter()
            .rposition(|m| m.drive == drive && m.live())
    }

    /// Slots without an in-sync member.
    pub fn degraded(&self) -> u32 {
        let in_sync = self
            .members
            .iter()
            .filter(|m| m.holds_slot() && m.state == MemberState::InSync)
            .count() as u32;
        self.array.raid_disks.saturating_sub(in_sync)
    }

    /// How md names a member in messages: `/dev/sdb`, or `8:16` once the
    /// device node is gone.
    pub fn member_name(&self, pool: &Pool, member: usize) -> String {
        let m = &self.members[member];
        if m.detached {
            m.devnum.clone()
        } else {
            format!("/dev/{}", pool.drives[m.drive].dev)
        }
    }

    /// md's error path: a member failed (mdadm `--fail`, an I/O error, a
    /// device that vanished).
    pub fn md_error(&mut self, pool: &Pool, member: usize, log: &mut Vec<String>) -> Failure {
        let m = &self.members[member];
        if m.state == MemberState::Faulty || m.removed {
            return Failure::AlreadyFaulty;
        }
        let name = self.describe_member(pool, member);
        if m.holds_slot()
            && m.state == MemberState::InSync
            && self.degraded() + 1 > self.array.level.tolerates(self.array.raid_disks)
        {
            // raid1 keeps the last working mirror in sync and marks the array
            // broken (kernel 5.19 and later: MD_BROKEN).
            self.array.broken = true;
            log.push(format!(
                "md cannot fail {name}: it is the last working member; {} is broken",
                self.array.name
            ));
            if let Some(r) = self.recovery.take() {
                self.abort_recovery(pool, r, log);
            }
            return Failure::Refused;
        }
        if let Some(r) = self.recovery {
            if r.member == member {
                self.recovery = None;
                log.push(format!("md stopped the recovery onto {name}"));
            } else if r.replacing == Some(member) {
                // The replaced member failed mid-copy: the copy carries on as
                // an ordinary recovery of that slot.
                let new = &mut self.members[r.member];
                new.replacement = false;
                new.flags.retain(|f| f != "replacement");
                self.recovery = Some(Recovery {
                    replacing: None,
                    ..r
                });
            }
        }
        let m = &mut self.members[member];
        m.state = MemberState::Faulty;
        m.role = None;
        m.replacement = false;
        m.flags.retain(|f| f != "want_replacement");
        log.push(format!("md marked {name} faulty in {}", self.array.name));
        Failure::Failed
    }

    /// The recovery cannot go on (no source left): the member it was
    /// writing goes back to being a spare.
    fn abort_recovery(&mut self, pool: &Pool, r: Recovery, log: &mut Vec<String>) {
        let name = self.describe_member(pool, r.member);
        let m = &mut self.members[r.member];
        m.state = MemberState::Spare;
        m.role = None;
        m.replacement = false;
        log.push(format!("md aborted the recovery onto {name}"));
    }

    /// The pool took a drive off the bus. Returns the member md still holds
    /// for it, if md has yet to notice.
    pub fn unplugged(&mut self, drive: usize) -> Option<usize> {
        let member = self.attached_member(drive)?;
        let m = &mut self.members[member];
        m.detached = true;
        (m.state != MemberState::Faulty).then_some(member)
    }

    /// md `--add`: the drive joins as a spare (recovery starts in
    /// [`MdArray::start_recovery`]).
    pub fn add(&mut self, pool: &mut Pool, drive: usize) -> usize {
        let d = &mut pool.drives[drive];
        d.blank = false;
        d.superblock = Some(self.array.name.clone());
        let devnum = Family::devnum(&d.dev);
        self.members.push(Member {
            drive,
            state: MemberState::Spare,
            role: None,
            flags: Vec::new(),
            replacement: false,
            detached: false,
            removed: false,
            devnum,
            counters: md_counters(),
        });
        self.members.len() - 1
    }

    /// md `--remove`, after the caller checked the member may go.
    pub fn remove(&mut self, member: usize) {
        self.members[member].removed = true;
    }

    /// Begin copying `old` onto the spare `new`; the array stays whole.
    pub fn start_replace(
        &mut self,
        pool: &Pool,
        old: usize,
        new: usize,
        now_ms: u64,
        log: &mut Vec<String>,
    ) {
        let role = self.members[old].role;
        if !self.members[old]
            .flags
            .iter()
            .any(|f| f == "want_replacement")
        {
            self.members[old].flags.push("want_replacement".to_string());
        }
        let n = &mut self.members[new];
        n.state = MemberState::Rebuilding;
        n.role = role;
        n.replacement = true;
        self.recovery = Some(Recovery {
            member: new,
            replacing: Some(old),
            started_ms: now_ms,
        });
        log.push(format!(
            "md started copying {} onto {} (replacement)",
            self.describe_member(pool, old),
            self.describe_member(pool, new)
        ));
    }

    /// What md does after any change: with a slot missing and a spare at
    /// hand it recovers onto the spare; with a member marked
    /// `want_replacement` and a spare at hand it starts the copy.
    pub fn start_recovery(&mut self, pool: &Pool, now_ms: u64, log: &mut Vec<String>) {
        if self.recovery.is_some() || self.array.broken {
            return;
        }
        let Some(spare) = self.members.iter().position(|m| {
            m.live() && !m.detached && m.state == MemberState::Spare && pool.drives[m.drive].present
        }) else {
            return;
        };
        if self.degraded() > 0 {
            let role = (0..self.array.raid_disks).find(|r| {
                !self
                    .members
                    .iter()
                    .any(|m| m.holds_slot() && m.role == Some(*r))
            });
            let m = &mut self.members[spare];
            m.state = MemberState::Rebuilding;
            m.role = role;
            self.recovery = Some(Recovery {
                member: spare,
                replacing: None,
                started_ms: now_ms,
            });
            log.push(format!(
                "md started recovery of {} onto {}",
                self.array.name,
                self.describe_member(pool, spare)
            ));
        } else if let Some(old) = self.members.iter().position(|m| {
            m.holds_slot()
                && m.state == MemberState::InSync
                && m.flags.iter().any(|f| f == "want_replacement")
        }) {
            self.start_replace(pool, old, spare, now_ms, log);
        }
    }

    /// When the running recovery finishes, if one runs.
    pub fn recovery_done_at(&self) -> Option<u64> {
        self.recovery
            .map(|r| r.started_ms.saturating_add(self.array.rebuild_ms))
    }

    /// Finish the running recovery (its time has come).
    pub fn finish_recovery(&mut self, pool: &Pool, now_ms: u64, log: &mut Vec<String>) {
        let Some(r) = self.recovery.take() else {
            return;
        };
        let name = self.describe_member(pool, r.member);
        match r.replacing {
            Some(old) => {
                let old_name = self.describe_member(pool, old);
                let role = self.members[old].role;
                let n = &mut self.members[r.member];
                n.state = MemberState::InSync;
                n.role = role;
                n.replacement = false;
                let o = &mut self.members[old];
                o.state = MemberState::Faulty;
                o.role = None;
                o.flags.retain(|f| f != "want_replacement");
                log.push(format!(
                    "md finished the replacement: {name} in sync, {old_name} marked faulty"
                ));
            }
            None => {
                self.members[r.member].state = MemberState::InSync;
                log.push(format!("md finished recovery: {name} in sync"));
            }
        }
        self.start_recovery(pool, now_ms, log);
    }

    pub fn describe_member(&self, pool: &Pool, member: usize) -> String {
        pool.describe(self.members[member].drive)
    }
}
