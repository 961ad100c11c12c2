//! The MegaRAID personality: one controller (`/cN`) with drive groups of
//! rows, one virtual drive (`/cN/vM`) guarded, and physical drives known by
//! enclosure and slot, as `storcli64`/`perccli64` shows them.
//!
//! What it plays (formats.md section 5, the captured JSON in
//! reference/samples/storcli-pystorcli2/):
//!
//! - a drive group is rows (`DG/Arr/Row`); a row holds a physical drive
//!   (`Onln`, `Offln`, `Rbld`, `Msng` after `set missing`, `UBad` when it
//!   failed) or nothing (its drive was pulled: the row is missing);
//! - the VD state follows the rows: `Optl` with every row `Onln`, `Pdgd`
//!   for a RAID6 one row short, `Dgrd` otherwise while the data is whole,
//!   `OfLn` beyond what the level survives;
//! - a drive pulled out of a row leaves it missing, and the drive carries
//!   the configuration: put back, it shows as foreign;
//! - a good drive put into the bay of a missing row is rebuilt into that
//!   row at once when auto-rebuild is on (the default); with it off the
//!   drive stays `UGood` until `insert dg= array= row=` and `start
//!   rebuild`; a drive that carries a foreign configuration (or is `UBad`)
//!   is never rebuilt onto;
//! - a hot spare (`GHS`, or `DHS` of the group) takes the row of a member
//!   that fails or is pulled while `Onln`, and is rebuilt;
//! - rebuilds run on the simulated clock; `show rebuild` reports progress.
//!
//! The snapshot follows the contract of the megaraid backend: `dev` is
//! the controller address (`c0/e252/s1`), `slot` is `EID:Slt`, the member
//! name the storcli address, the role the row's index in its group, the
//! flags the PD state lowercased, counters `megaraid.*`.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use crate::backend::Depth;
use crate::backend::sim::machine::{ArraySpec, DriveGroup, DriveSpec, Level};
use crate::backend::sim::names::Family;
use crate::backend::sim::pool::Pool;
use crate::health::model::{
    ArrayHealth, Drive, MemberState, Membership, Problem, Snapshot, SyncProgress,
};

use crate::backend::megaraid::facts::COUNTER_NAMES as COUNTERS;

/// A physical drive's state, as storcli's PD LIST spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PdState {
    Onln,
    Offln,
    Rbld,
    Msng,
    UGood,
    UBad,
    Ghs,
    Dhs,
    Jbod,
}

impl PdState {
    pub fn word(self) -> &'static str {
        match self {
            PdState::Onln => "Onln",
            PdState::Offln => "Offln",
            PdState::Rbld => "Rbld",
            PdState::Msng => "Msng",
            PdState::UGood => "UGood",
            PdState::UBad => "UBad",
            PdState::Ghs => "GHS",
            PdState::Dhs => "DHS",
            PdState::Jbod => "JBOD",
        }
    }

    fn parse(word: &str) -> Option<PdState> {
        [
            PdState::Onln,
            PdState::Offln,
            PdState::Rbld,
            PdState::Msng,
            PdState::UGood,
            PdState::UBad,
            PdState::Ghs,
            PdState::Dhs,
            PdState::Jbod,
        ]
        .into_iter()
        .find(|s| s.word() == word)
    }
}

/// What the controller knows of one drive of the pool.
#[derive(Clone, Debug)]
pub(crate) struct Pd {
    pub state: PdState,
    /// `SATA`, `SAS`, `NVMe`.
    pub intf: String,
    /// Carries a configuration this controller did not make (DG `F`).
    pub foreign: bool,
    pub smart_alert: bool,
    /// Spun down (`Sp` `D`).
    pub spun_down: bool,
    /// The drive group a dedicated hot spare serves, or an `Onln` drive of
    /// another group belongs to.
    pub dg: Option<u32>,
}

/// One row of a drive group.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub dg: u32,
    pub arr: u32,
    pub row: u32,
    /// The drive in the row; `None` when it is missing (pulled).
    pub drive: Option<usize>,
    /// The bay of the drive that left the row, where the controller
    /// expects its replacement.
    pub last_slot: Option<String>,
}

/// A rebuild onto `drive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rebuild {
    pub drive: usize,
    pub started_ms: u64,
}

/// The controller and the drive groups on it.
#[derive(Clone, Debug)]
pub(crate) struct MegaRaid {
    /// `/c0/v0`.
    pub name: String,
    pub controller: u32,
    pub vd: u32,
    /// The drive group of the guarded VD.
    pub dg: u32,
    pub level: Level,
    pub auto_rebuild: bool,
    pub rebuild_ms: u64,
    /// Bytes of one row's share.
    pub row_bytes: u64,
    pub rows: Vec<Row>,
    /// One per drive of the pool.
    pub pds: Vec<Pd>,
    pub rebuilds: Vec<Rebuild>,
    /// Every storcli call fails (a scenario event).
    pub unreadable: bool,
}

/// `/c0/v0` → `(0, 0)`.
pub(crate) fn parse_vd(name: &str) -> Option<(u32, u32)> {
    crate::backend::megaraid::facts::parse_vd_address(name)
}

fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) || text.len() > 6 {
        return None;
    }
    text.parse().ok()
}

/// `252:1` → `(Some(252), 1)`; `3` → `(None, 3)`.
pub(crate) fn parse_slot(slot: &str) -> Option<(Option<u32>, u32)> {
    match slot.split_once(':') {
        Some((e, s)) => Some((Some(number(e)?), number(s)?)),
        None => Some((None, number(slot)?)),
    }
}

impl MegaRaid {
    pub fn new(array: &ArraySpec, specs: &[DriveSpec]) -> Result<MegaRaid> {
        let Some((controller, vd)) = parse_vd(&array.name) else {
            bail!(
                "a MegaRAID scenario's `[array] name` is the virtual drive's address, `/c0/v0`, not `{}`",
                crate::sanitize::sanitize(&array.name, false)
            );
        };
        if !matches!(
            array.level,
            Level::Raid1 | Level::Raid5 | Level::Raid6 | Level::Raid10
        ) {
            bail!(
                "the simulated controller plays `raid1`, `raid5`, `raid6` and `raid10`, not `{}`",
                array.level.name()
            );
        }
        if array.partition.is_some() || array.mount.is_some() {
            bail!("a MegaRAID virtual drive has no `partition` or `mount` here");
        }
        let dg = array.drive_group.unwrap_or(vd);
        let mut mr = MegaRaid {
            name: array.name.clone(),
            controller,
            vd,
            dg,
            level: array.level,
            auto_rebuild: array.auto_rebuild.unwrap_or(true),
            rebuild_ms: u64::try_from(array.rebuild_time.as_millis()).unwrap_or(u64::MAX),
            row_bytes: specs
                .iter()
                .filter(|d| d.group == DriveGroup::Member)
                .map(|d| d.size_bytes)
                .min()
                .unwrap_or(0),
            rows: Vec::new(),
            pds: Vec::new(),
            rebuilds: Vec::new(),
            unreadable: false,
        };
        let mut slots = Vec::new();
        let members = specs
            .iter()
            .filter(|d| d.group == DriveGroup::Member)
            .count() as u32;
        let per_arr = if array.level == Level::Raid10 {
            if members < 4 || members % 2 != 0 {
                bail!("a simulated RAID10 has an even number of members, four or more");
            }
            2
        } else {
            members.max(1)
        };
        let mut other_rows: BTreeMap<u32, u32> = BTreeMap::new();
        for (i, spec) in specs.iter().enumerate() {
            let label = spec.label();
            // A drive on the cart goes into the bay the technician emptied.
            let slot = match spec.slot.as_deref() {
                Some(slot) => slot,
                None if spec.group == DriveGroup::Spare => "",
                None => bail!(
                    "drive `{label}` has no `slot`: every drive behind the controller sits in an enclosure slot, `slot = \"252:1\"`"
                ),
            };
            if !slot.is_empty() && parse_slot(slot).is_none() {
                bail!(
                    "drive `{label}`: `slot` is `EID:Slt` (`252:1`), or the slot alone for a drive without enclosure, not `{}`",
                    crate::sanitize::sanitize(slot, false)
                );
            }
            if spec.group != DriveGroup::Spare {
                if slots.contains(&slot) {
                    bail!("two drives sit in slot {slot}");
                }
                slots.push(slot);
            }
            let c = &spec.controller;
            let intf = c.intf.clone().unwrap_or_else(|| {
                match spec.family {
                    Family::Nvme => "NVMe",
                    _ => "SATA",
                }
                .to_string()
            });
            let state = match (spec.group, c.pd_state.as_deref()) {
                (DriveGroup::Member, _) => match spec.state {
                    MemberState::InSync => PdState::Onln,
                    MemberState::Rebuilding => PdState::Rbld,
                    MemberState::Faulty => PdState::Offln,
                    MemberState::Spare => bail!(
                        "member `{label}` cannot start as `spare`: a hot spare is a drive of `others` with `pd_state = \"GHS\"`"
                    ),
                },
                (_, Some(word)) => PdState::parse(word).unwrap_or(PdState::UGood),
                (_, None) => PdState::UGood,
            };
            let dg_of = match (state, c.dg) {
                (PdState::Dhs, None) => Some(dg),
                (_, other) => other,
            };
            if state == PdState::Onln && spec.group != DriveGroup::Member {
                let Some(other) = c.dg.filter(|g| *g != dg) else {
                    bail!(
                        "drive `{label}` is `Onln` in drive group {}: that is the array's own group; make it a member",
                        c.dg.unwrap_or(dg)
                    );
                };
                let n = other_rows.entry(other).or_insert(0);
                mr.rows.push(Row {
                    dg: other,
                    arr: 0,
                    row: *n,
                    drive: Some(i),
                    last_slot: Some(slot.to_string()),
                });
                *n += 1;
            }
            mr.pds.push(Pd {
                state,
                intf,
                foreign: c.foreign,
                smart_alert: c.smart_alert,
                spun_down: false,
                dg: dg_of,
            });
            if spec.group == DriveGroup::Member {
                let index = mr.rows.iter().filter(|r| r.dg == dg).count() as u32;
                mr.rows.push(Row {
                    dg,
                    arr: index / per_arr,
                    row: index % per_arr,
                    drive: Some(i),
                    last_slot: Some(slot.to_string()),
                });
                if state == PdState::Rbld {
                    mr.rebuilds.push(Rebuild {
                        drive: i,
                        started_ms: 0,
                    });
                }
            }
        }
        if members == 0 {
            bail!("the simulated virtual drive `{}` has no members", mr.name);
        }
        Ok(mr)
    }

    /// The `/c0/e252/s1` address of a drive in `slot` (`/c0/s3` without
    /// an enclosure).
    pub fn address(&self, slot: &str) -> String {
        match parse_slot(slot) {
            Some((Some(e), s)) => format!("/c{}/e{e}/s{s}", self.controller),
            Some((None, s)) => format!("/c{}/s{s}", self.controller),
            None => format!("/c{}/{slot}", self.controller),
        }
    }

    /// The present drive a storcli address names.
    pub fn drive_at(&self, pool: &Pool, address: &str) -> Option<usize> {
        pool.drives.iter().position(|d| {
            d.present
                && d.slot
                    .as_deref()
                    .is_some_and(|s| self.address(s) == address)
        })
    }

    /// The row `drive` is configured in.
    pub fn row_of(&self, drive: usize) -> Option<usize> {
        self.rows.iter().position(|r| r.drive == Some(drive))
    }

    /// Rows of the guarded VD's group.
    fn own_rows(&self) -> impl Iterator<Item = (usize, &Row)> {
        self.rows
            .iter()
            .enumerate()
            .filter(move |(_, r)| r.dg == self.dg)
    }

    /// Whether a row serves its data: its drive is present and `Onln`.
    fn serves(&self, pool: &Pool, row: &Row) -> bool {
        row.drive
            .is_some_and(|d| pool.drives[d].present && self.pds[d].state == PdState::Onln)
    }

    /// Rows of the guarded group that do not serve.
    pub fn degraded(&self, pool: &Pool) -> u32 {
        self.own_rows()
            .filter(|(_, r)| !self.serves(pool, r))
            .count() as u32
    }

    pub fn width(&self) -> u32 {
        self.own_rows().count() as u32
    }

    /// The VD's state word.
    pub fn vd_state(&self, pool: &Pool) -> &'static str {
        let missing = self.degraded(pool);
        if missing == 0 {
            "Optl"
        } else if missing > self.level.tolerates(self.width()) {
            "OfLn"
        } else if self.level == Level::Raid6 && missing == 1 {
            "Pdgd"
        } else {
            "Dgrd"
        }
    }

    /// `DG` column of the PD LIST: the group, `F` for foreign, `-`.
    pub fn dg_word(&self, drive: usize) -> String {
        let pd = &self.pds[drive];
        if pd.foreign {
            return "F".to_string();
        }
        match self.row_of(drive) {
            Some(r) => self.rows[r].dg.to_string(),
            None => match (pd.state, pd.dg) {
                (PdState::Dhs, Some(g)) => g.to_string(),
                _ => "-".to_string(),
            },
        }
    }

    pub fn describe(&self, pool: &Pool, drive: usize) -> String {
        let d = &pool.drives[drive];
        let serial = d.serial.as_deref().unwrap_or("unknown");
        match &d.slot {
            Some(slot) => format!("{} (serial {serial}, {slot})", self.address(slot)),
            None => format!("drive with serial {serial} (not in the machine)"),
        }
    }

    /// A drive left the bus.
    pub fn unplugged(&mut self, pool: &Pool, drive: usize, now_ms: u64, log: &mut Vec<String>) {
        let Some(r) = self.row_of(drive) else {
            return;
        };
        let was = self.pds[drive].state;
        let row = &mut self.rows[r];
        row.drive = None;
        row.last_slot = pool.drives[drive].slot.clone();
        let (dg, arr, rw) = (row.dg, row.arr, row.row);
        // The drive keeps the group's configuration on its disk: put back,
        // the controller sees it as foreign.
        let pd = &mut self.pds[drive];
        pd.foreign = true;
        pd.state = PdState::UGood;
        pd.spun_down = false;
        log.push(format!(
            "controller lost the {} drive of row {dg}/{arr}/{rw}: the row is missing; {} is {}",
            was.word(),
            self.name,
            self.vd_state(pool)
        ));
        self.rebuilds.retain(|b| {
            if b.drive == drive {
                log.push("controller stopped the rebuild: its drive is gone".to_string());
                false
            } else {
                true
            }
        });
        if was == PdState::Onln && self.auto_rebuild {
            self.take_spare(pool, r, now_ms, log);
        }
        self.check_rebuilds(pool, log);
    }

    /// A drive came onto the bus: a good one in the bay of a missing row
    /// is rebuilt into it (auto-rebuild); a used one shows as foreign.
    pub fn plugged(&mut self, pool: &Pool, drive: usize, now_ms: u64, log: &mut Vec<String>) {
        let Some(slot) = pool.drives[drive].slot.clone() else {
            return;
        };
        let who = self.describe(pool, drive);
        let pd = &self.pds[drive];
        if pd.foreign {
            log.push(format!(
                "controller found a foreign configuration on {who}: it rebuilds nothing onto it"
            ));
            return;
        }
        if pd.state != PdState::UGood {
            log.push(format!("controller sees {who} as {}", pd.state.word()));
            return;
        }
        if !self.auto_rebuild {
            log.push(format!(
                "controller sees {who} as UGood; auto-rebuild is off"
            ));
            return;
        }
        let row = self
            .rows
            .iter()
            .position(|r| r.drive.is_none() && r.last_slot.as_deref() == Some(slot.as_str()));
        let Some(r) = row else {
            log.push(format!("controller sees {who} as UGood"));
            return;
        };
        if pool.drives[drive].size_bytes < self.row_bytes {
            log.push(format!(
                "controller does not rebuild onto {who}: it is smaller than the row"
            ));
            return;
        }
        self.put_in_row(drive, r);
        self.start_rebuild(pool, drive, now_ms, log);
    }

    /// A drive is configured into row `r`, offline until rebuilt.
    pub fn put_in_row(&mut self, drive: usize, r: usize) {
        self.rows[r].drive = Some(drive);
        let pd = &mut self.pds[drive];
        pd.state = PdState::Offln;
        pd.dg = Some(self.rows[r].dg);
    }

    pub fn start_rebuild(&mut self, pool: &Pool, drive: usize, now_ms: u64, log: &mut Vec<String>) {
        self.pds[drive].state = PdState::Rbld;
        self.rebuilds.push(Rebuild {
            drive,
            started_ms: now_ms,
        });
        let row = self.row_of(drive).map(|r| &self.rows[r]);
        let place = row.map_or(String::new(), |r| {
            format!(" in row {}/{}/{}", r.dg, r.arr, r.row)
        });
        log.push(format!(
            "controller started rebuilding {}{place}",
            self.describe(pool, drive)
        ));
    }

    /// A hot spare takes over row `r`.
    fn take_spare(&mut self, pool: &Pool, r: usize, now_ms: u64, log: &mut Vec<String>) {
        let dg = self.rows[r].dg;
        let spare = (0..self.pds.len()).find(|&i| {
            pool.drives[i].present
                && !self.pds[i].foreign
                && pool.drives[i].size_bytes >= self.row_bytes
                && match self.pds[i].state {
                    PdState::Ghs => true,
                    PdState::Dhs => self.pds[i].dg == Some(dg),
                    _ => false,
                }
        });
        if let Some(s) = spare {
            log.push(format!(
                "hot spare {} takes over the row",
                self.describe(pool, s)
            ));
            self.put_in_row(s, r);
            self.start_rebuild(pool, s, now_ms, log);
        }
    }

    /// A member fails: the controller marks it bad; a hot spare takes its
    /// row.
    pub fn fail(&mut self, pool: &Pool, drive: usize, now_ms: u64, log: &mut Vec<String>) {
        let who = self.describe(pool, drive);
        let Some(r) = self.row_of(drive) else {
            log.push(format!(
                "{who} is in no drive group; the controller fails nothing"
            ));
            return;
        };
        let was = self.pds[drive].state;
        if was == PdState::UBad {
            log.push(format!("{who} was UBad already"));
            return;
        }
        self.pds[drive].state = PdState::UBad;
        self.rebuilds.retain(|b| b.drive != drive);
        log.push(format!(
            "controller failed {who} ({} → UBad); {} is {}",
            was.word(),
            self.name,
            self.vd_state(pool)
        ));
        if self.auto_rebuild && self.spare_available(pool, self.rows[r].dg) {
            // The spare takes the row; the failed drive leaves it.
            self.rows[r].drive = None;
            self.rows[r].last_slot = pool.drives[drive].slot.clone();
            self.pds[drive].dg = None;
            self.take_spare(pool, r, now_ms, log);
        }
        self.check_rebuilds(pool, log);
    }

    fn spare_available(&self, pool: &Pool, dg: u32) -> bool {
        (0..self.pds.len()).any(|i| {
            pool.drives[i].present
                && match self.pds[i].state {
                    PdState::Ghs => true,
                    PdState::Dhs => self.pds[i].dg == Some(dg),
                    _ => false,
                }
        })
    }

    /// Stop rebuilds of a group that lost its data.
    fn check_rebuilds(&mut self, pool: &Pool, log: &mut Vec<String>) {
        if self.vd_state(pool) != "OfLn" {
            return;
        }
        let own: Vec<usize> = self
            .rebuilds
            .iter()
            .filter(|b| {
                self.row_of(b.drive)
                    .is_some_and(|r| self.rows[r].dg == self.dg)
            })
            .map(|b| b.drive)
            .collect();
        for d in own {
            self.rebuilds.retain(|b| b.drive != d);
            log.push(format!(
                "controller stopped the rebuild onto {}: {} is offline",
                self.describe(pool, d),
                self.name
            ));
        }
    }

    pub fn due_at(&self) -> Option<u64> {
        self.rebuilds
            .iter()
            .map(|b| b.started_ms.saturating_add(self.rebuild_ms))
            .min()
    }

    pub fn on_due(&mut self, pool: &Pool, now_ms: u64, log: &mut Vec<String>) {
        let (done, running): (Vec<Rebuild>, Vec<Rebuild>) = self
            .rebuilds
            .iter()
            .partition(|b| b.started_ms.saturating_add(self.rebuild_ms) <= now_ms);
        self.rebuilds = running;
        for b in done {
            self.pds[b.drive].state = PdState::Onln;
            log.push(format!(
                "controller finished rebuilding {}; {} is {}",
                self.describe(pool, b.drive),
                self.name,
                self.vd_state(pool)
            ));
        }
    }

    /// Progress of the rebuild onto `drive`, in percent, and the time left.
    pub fn progress(&self, drive: usize, now_ms: u64) -> Option<(u64, u64)> {
        let b = self.rebuilds.iter().find(|b| b.drive == drive)?;
        let span = self.rebuild_ms.max(1);
        let elapsed = now_ms.saturating_sub(b.started_ms).min(span);
        let percent = u64::try_from(u128::from(elapsed) * 100 / u128::from(span)).unwrap_or(100);
        Some((percent.min(99), span - elapsed))
    }

    /// The drives with a foreign configuration, present now.
    pub fn foreign(&self, pool: &Pool) -> Vec<usize> {
        (0..self.pds.len())
            .filter(|&i| pool.drives[i].present && self.pds[i].foreign)
            .collect()
    }

    /// One look, as the megaraid backend takes it from storcli.
    pub fn snapshot(&self, pool: &Pool, name: &str, depth: Depth, now_ms: u64) -> Result<Snapshot> {
        if name != self.name {
            bail!(
                "no virtual drive `{}` in the simulation (it has `{}`)",
                crate::sanitize::sanitize(name, false),
                self.name
            );
        }
        if self.unreadable {
            bail!(
                "`storcli64 /c{}/vall show all J` failed: Status Failure (the scenario made the controller unreadable)",
                self.controller
            );
        }
        let mut problems = Vec::new();
        let mut drives = Vec::new();
        let mut own: Vec<(usize, u32)> = self
            .own_rows()
            .enumerate()
            .filter_map(|(index, (_, r))| r.drive.map(|d| (d, index as u32)))
            .filter(|(d, _)| pool.drives[*d].present)
            .collect();
        own.sort_by_key(|&(_, role)| role);
        for &(d, role) in &own {
            drives.push(self.drive_view(pool, d, Some(role), depth, &mut problems));
        }
        for (i, d) in pool.drives.iter().enumerate() {
            if d.present && !own.iter().any(|(o, _)| *o == i) {
                drives.push(self.drive_view(pool, i, None, depth, &mut problems));
            }
        }
        for f in self.foreign(pool) {
            let address = pool.drives[f]
                .slot
                .as_deref()
                .map(|s| self.address(s))
                .unwrap_or_default();
            problems.push(Problem {
                probe: "megaraid.foreign".to_string(),
                subject: address.clone(),
                message: format!(
                    "`storcli64 /c{}/fall show J` lists a foreign configuration on {} (serial {}): nothing goes on while it exists; it is never imported",
                    self.controller,
                    address,
                    pool.drives[f].serial.as_deref().unwrap_or("unknown")
                ),
            });
        }
        let sync = self
            .rebuilds
            .iter()
            .filter(|b| {
                self.row_of(b.drive)
                    .is_some_and(|r| self.rows[r].dg == self.dg)
            })
            .filter_map(|b| self.progress(b.drive, now_ms))
            .map(|(percent, left_ms)| {
                let total = self.row_bytes / SyncProgress::UNIT_BYTES;
                let span = self.rebuild_ms.max(1);
                let done = total * percent / 100;
                let _ = left_ms;
                SyncProgress {
                    action: "rebuild".to_string(),
                    done,
                    total,
                    speed_kib: Some(
                        u64::try_from(u128::from(total / 2) * 1000 / u128::from(span))
                            .unwrap_or(u64::MAX),
                    ),
                }
            })
            .next();
        let degraded = self.degraded(pool);
        let width = self.width();
        let state = self.vd_state(pool);
        let mut snap = Snapshot {
            at_ms: now_ms,
            array: ArrayHealth {
                name: self.name.clone(),
                level: self.level.name().to_string(),
                state: state.to_string(),
                raid_disks: width,
                degraded,
                sync,
                running: false,
                redundancy_left: 0,
            },
            drives,
            problems,
        };
        // The simulator plays a controller: its words mean what they mean
        // to the megaraid backend.
        crate::backend::megaraid::facts::annotate(&mut snap);
        Ok(snap)
    }

    fn drive_view(
        &self,
        pool: &Pool,
        drive: usize,
        role: Option<u32>,
        depth: Depth,
        problems: &mut Vec<Problem>,
    ) -> Drive {
        let d = &pool.drives[drive];
        let pd = &self.pds[drive];
        let slot = d.slot.clone().unwrap_or_default();
        let address = self.address(&slot);
        let mut own = Vec::new();
        let mut view = pool.drive_view(drive, depth, &mut own);
        for mut p in own {
            p.subject = address.clone();
            p.message = p
                .message
                .replace(&format!("`{}`", d.dev), &format!("`{address}`"));
            problems.push(p);
        }
        view.id.dev = address.trim_start_matches('/').to_string();
        // Nothing reads a drive behind the controller but the controller:
        // blankness is unknown (the megaraid backend's convention); the
        // foreign flag is what tells a used drive.
        view.blank = None;
        view.id.by_id = None;
        view.id.transport = Some(pd.intf.to_ascii_lowercase());
        if !d.counters_unreadable {
            let mut counters: BTreeMap<String, u64> =
                COUNTERS.iter().map(|c| (c.to_string(), 0)).collect();
            for (k, v) in &d.counters {
                if k.starts_with("megaraid.") {
                    counters.insert(k.clone(), *v);
                }
            }
            view.counters = counters;
        }
        let mut flags = vec![pd.state.word().to_ascii_lowercase()];
        if pd.foreign {
            flags.push("foreign".to_string());
        }
        if pd.smart_alert {
            flags.push("smart_alert".to_string());
        }
        let membership = |state: MemberState, role: Option<u32>| Membership {
            state,
            role,
            flags: flags.clone(),
            name: Some(address.clone()),
        };
        view.member = match (role, pd.state) {
            (Some(role), state) => Some(membership(
                match state {
                    PdState::Onln => MemberState::InSync,
                    PdState::Rbld => MemberState::Rebuilding,
                    _ => MemberState::Faulty,
                },
                Some(role),
            )),
            (None, PdState::Ghs) => Some(membership(MemberState::Spare, None)),
            (None, PdState::Dhs) if pd.dg == Some(self.dg) => {
                Some(membership(MemberState::Spare, None))
            }
            _ => None,
        };
        // A member's counters that cannot be read are a problem; a
        // non-member's are left out (the megaraid backend's convention).
        if d.counters_unreadable {
            for p in problems.iter_mut().filter(|p| p.subject == address) {
                p.probe = "megaraid".to_string();
            }
            if view.member.is_none() {
                problems.retain(|p| !(p.subject == address && p.probe == "megaraid"));
            }
        }
        // annotate() fills a member's faults; a non-member's come from the
        // same flags here.
        view.faults = if view.member.is_none() {
            crate::backend::megaraid::facts::drive_faults(&flags)
        } else {
            Vec::new()
        };
        view
    }
}
