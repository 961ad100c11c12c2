//! How the simulated btrfs file system looks to a reader: a [`Snapshot`]
//! built the way the btrfs backend builds one from sysfs and btrfs-progs
//! (src/backend/btrfs/), so the guard cannot tell the two apart.
//!
//! - every device is a member named by its devid (`Membership.name`), with
//!   the sysfs `devinfo` flags (`in_fs_metadata`, `writeable`, `missing`,
//!   `replace_target`) and the five `btrfs.*` error counters;
//! - a device btrfs lists as `missing` has no block device, so nothing can
//!   be read about the drive: it is a member with an empty kernel name, no
//!   serial and no SMART, never healthy, only the size btrfs keeps for it;
//! - `array.level` is the profile and `array.state` the chunk profiles
//!   present (`data:raid1 ... data:single`), which the backend's own
//!   `annotate` judges (a `single` chunk leaves no redundancy);
//! - a running replace or balance is the sync progress (`replace`,
//!   `balance`), in 512-byte units.

use anyhow::{Result, bail};

use crate::backend::Depth;
use crate::backend::btrfs::facts;
use crate::backend::btrfs::profile::{ChunkKind, Profile};
use crate::backend::sim::btrfs::{BtrfsFs, CHUNK_BYTES};
use crate::backend::sim::pool::Pool;
use crate::health::model::{
    ArrayHealth, Drive, Identity, MemberState, Membership, Problem, Snapshot, SyncProgress,
};

impl BtrfsFs {
    /// One look, as the btrfs backend would take it.
    pub fn snapshot(
        &self,
        pool: &Pool,
        array: &str,
        depth: Depth,
        now_ms: u64,
    ) -> Result<Snapshot> {
        if array != self.uuid {
            bail!(
                "no btrfs file system `{array}` in the simulation (it has `{}`, mounted on `{}`)",
                self.uuid,
                self.mount
            );
        }
        if self.unreadable {
            bail!("cannot read btrfs file system `{array}`: the scenario made it unreadable");
        }
        let sync = self.sync(now_ms);
        let mut problems = Vec::new();
        let mut order: Vec<usize> = (0..self.devices.len())
            .filter(|&i| {
                let d = &self.devices[i];
                !d.removed && (d.missing || (!d.detached && pool.drives[d.drive].present))
            })
            .collect();
        order.sort_by_key(|&i| (self.devices[i].devid == 0, self.devices[i].devid));
        let mut drives: Vec<Drive> = order
            .iter()
            .map(|&i| self.device_view(pool, i, depth, &mut problems))
            .collect();
        for (i, d) in pool.drives.iter().enumerate() {
            if d.present && self.attached(i).is_none() {
                drives.push(pool.drive_view(i, depth, &mut problems));
            }
        }
        // The btrfs backend's convention (src/backend/btrfs/facts.rs): the
        // chunk profiles present are the state; annotate judges them.
        let mut snap = Snapshot {
            at_ms: now_ms,
            array: ArrayHealth {
                name: self.uuid.clone(),
                level: self.profile.name().to_string(),
                state: self.chunk_words(),
                running: false,
                raid_disks: self.slots(),
                degraded: 0,
                sync,
                redundancy_left: 0,
            },
            drives,
            problems,
        };
        facts::annotate(&mut snap);
        Ok(snap)
    }

    /// `data:raid1 metadata:raid1 system:raid1`, with `data:single` and
    /// `metadata:single` while such chunks exist.
    fn chunk_words(&self) -> String {
        let profile = Profile::parse(self.profile.name()).unwrap_or(Profile::Single);
        let mut present = vec![
            (ChunkKind::Data, profile),
            (ChunkKind::Metadata, profile),
            (ChunkKind::System, profile),
        ];
        for kind in &self.single {
            if let Some(k) = ChunkKind::parse(&kind.to_lowercase()) {
                present.push((k, Profile::Single));
            }
        }
        facts::state_words(&present)
    }

    fn sync(&self, now_ms: u64) -> Option<SyncProgress> {
        if let Some(r) = &self.replace {
            let total = self.devices[r.source].size_bytes / SyncProgress::UNIT_BYTES;
            let permille = self.replace_permille(r, now_ms);
            return Some(SyncProgress {
                action: "replace".into(),
                done: total.saturating_mul(permille) / 1000,
                total,
                speed_kib: Some(
                    (self.devices[r.source].size_bytes / 1024).saturating_mul(1000)
                        / self.copy_ms.max(1),
                ),
            });
        }
        self.balance.as_ref().map(|b| {
            let unit = CHUNK_BYTES / SyncProgress::UNIT_BYTES;
            SyncProgress {
                action: "balance".into(),
                done: self.balance_done(b, now_ms).saturating_mul(unit),
                total: b.chunks.saturating_mul(unit),
                speed_kib: None,
            }
        })
    }

    fn device_view(
        &self,
        pool: &Pool,
        device: usize,
        depth: Depth,
        problems: &mut Vec<Problem>,
    ) -> Drive {
        let d = &self.devices[device];
        let target = self.is_replace_target(device);
        let (state, flags): (MemberState, &[&str]) = if d.missing {
            (MemberState::Faulty, &["missing"])
        } else if target {
            (
                MemberState::Rebuilding,
                &["in_fs_metadata", "replace_target", "writeable"],
            )
        } else {
            (MemberState::InSync, &["in_fs_metadata", "writeable"])
        };
        let mut view = if d.missing {
            // btrfs still knows the device's size (its dev item; `btrfs
            // filesystem usage` sums it as "Device missing").
            Drive {
                id: Identity {
                    size_bytes: Some(d.size_bytes),
                    ..Identity::default()
                },
                member: None,
                counters: Default::default(),
                smart: None,
                blank: None,
                faults: Vec::new(),
            }
        } else {
            pool.drive_view(d.drive, depth, problems)
        };
        if d.missing || !pool.drives[d.drive].counters_unreadable {
            view.counters.extend(d.counters.clone());
        }
        view.member = Some(Membership {
            state,
            role: Some(u32::try_from(d.devid).unwrap_or(u32::MAX)),
            flags: flags.iter().map(|f| f.to_string()).collect(),
            name: Some(d.devid.to_string()),
        });
        view
    }
}
