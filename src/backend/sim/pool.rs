//! The simulated drives: a pool of disks in bays, each with its identity,
//! kernel name, counters, SMART and signature, whatever storage sits on
//! them.
//!
//! The storage on top (md today) is the personality's business
//! (`personality.rs`); the pool only knows which drives are on the bus,
//! under which kernel name and in which bay. A pulled drive's name is
//! released at once, so the next inserted drive usually takes it
//! (lab-notes.md), and the technician puts a new drive in the bay last
//! emptied.

use std::collections::BTreeMap;

use crate::backend::sim::machine::{DriveGroup, DriveSpec};
use crate::backend::sim::names::Family;
use crate::health::model::Identity;

/// Every drive of the simulated machine, present or not.
#[derive(Clone, Debug)]
pub(crate) struct Pool {
    pub drives: Vec<DriveState>,
    /// Bays emptied by a pull, most recent last: where the technician puts
    /// the next drive.
    vacated: Vec<String>,
    /// Whether the scenario gives bays at all.
    has_bays: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct DriveState {
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub size_bytes: u64,
    pub family: Family,
    /// Kernel name while present; the last name it had while absent.
    pub dev: String,
    /// The bay it sits in while present.
    pub slot: Option<String>,
    /// The bay the scenario gives it.
    pub home_slot: Option<String>,
    pub present: bool,
    /// Counters the drive itself keeps (not those the storage keeps per
    /// member, such as md's).
    pub counters: BTreeMap<String, u64>,
    pub smart_passed: bool,
    pub smart_unreadable: bool,
    pub counters_unreadable: bool,
    pub blank: bool,
    /// The array whose signature (md superblock, ZFS label) the drive
    /// carries.
    pub superblock: Option<String>,
    /// GPT partitions 1 to this one (0: no partition table).
    pub partitions: u32,
}

impl DriveState {
    pub fn identity(&self) -> Identity {
        let by_id = match (&self.model, &self.serial) {
            (Some(model), Some(serial)) => {
                let model = model.replace(' ', "_");
                match self.family {
                    Family::Sd => Some(format!("ata-{model}_{serial}")),
                    Family::Nvme => Some(format!("nvme-{model}_{serial}")),
                    Family::Vd => Some(format!("virtio-{serial}")),
                }
            }
            _ => None,
        };
        Identity {
            dev: self.dev.clone(),
            serial: self.serial.clone(),
            wwn: self.wwn.clone(),
            model: self.model.clone(),
            firmware: self.firmware.clone(),
            size_bytes: Some(self.size_bytes),
            slot: self.slot.clone(),
            by_id,
            transport: Some(
                match self.family {
                    Family::Sd => "sata",
                    Family::Nvme => "nvme",
                    Family::Vd => "virtio",
                }
                .to_string(),
            ),
        }
    }

    /// `sdb (serial S3Z1..., bay 1)`.
    pub fn describe(&self) -> String {
        self.identity().describe()
    }

    /// The device path of the drive, or of its partition `n`: `/dev/sdb`,
    /// `/dev/sdb3`, `/dev/nvme1n1p3`.
    pub fn path(&self, partition: Option<u32>) -> String {
        match (partition, self.family) {
            (None, _) => format!("/dev/{}", self.dev),
            (Some(n), Family::Nvme) => format!("/dev/{}p{n}", self.dev),
            (Some(n), _) => format!("/dev/{}{n}", self.dev),
        }
    }
}

impl Pool {
    /// The drives as given; members carry `array`'s signature (and
    /// partitions 1 to `partition` when the storage uses one of them), and
    /// counters the storage keeps per member (`storage_counter`) are left
    /// to it.
    pub fn new(
        specs: &[DriveSpec],
        array: &str,
        partition: Option<u32>,
        storage_counter: impl Fn(&str) -> bool,
    ) -> Pool {
        Pool {
            drives: specs
                .iter()
                .map(|spec| {
                    let mut d = drive_state(spec, array, &storage_counter);
                    if spec.group == DriveGroup::Member {
                        d.partitions = partition.unwrap_or(0);
                    }
                    d
                })
                .collect(),
            vacated: Vec::new(),
            has_bays: specs.iter().any(|d| d.slot.is_some()),
        }
    }

    /// A present drive by kernel name.
    pub fn present(&self, dev: &str) -> Option<usize> {
        self.drives.iter().position(|d| d.present && d.dev == dev)
    }

    /// Take a drive off the bus; its bay is the one the technician fills
    /// next.
    pub fn unplug(&mut self, drive: usize) {
        let d = &mut self.drives[drive];
        d.present = false;
        if let Some(slot) = d.slot.clone() {
            self.vacated.retain(|s| s != &slot);
            self.vacated.push(slot);
        }
    }

    /// Put a drive on the bus: it takes the lowest free name of its family
    /// and the bay the technician last emptied (else its own bay, else the
    /// lowest free one).
    pub fn plug(&mut self, drive: usize) {
        let family = self.drives[drive].family;
        let taken: Vec<String> = self
            .drives
            .iter()
            .filter(|d| d.present)
            .map(|d| d.dev.clone())
            .collect();
        let dev = family.lowest_free(taken.iter().map(String::as_str));
        let occupied: Vec<String> = self
            .drives
            .iter()
            .filter(|d| d.present)
            .filter_map(|d| d.slot.clone())
            .collect();
        let free = |s: &String| !occupied.contains(s);
        let slot = self
            .vacated
            .iter()
            .rev()
            .find(|s| free(s))
            .cloned()
            .or_else(|| self.drives[drive].home_slot.clone().filter(free))
            .or_else(|| {
                self.has_bays.then(|| {
                    (0..)
                        .map(|i: u32| i.to_string())
                        .find(free)
                        .unwrap_or_default()
                })
            });
        if let Some(slot) = &slot {
            self.vacated.retain(|s| s != slot);
        }
        let d = &mut self.drives[drive];
        d.dev = dev;
        d.slot = slot;
        d.present = true;
    }

    /// A present drive and partition by a device path: `/dev/sdb` is
    /// `(drive, None)`, `/dev/sdb3` and `/dev/nvme1n1p3` are `(drive,
    /// Some(3))` when the drive has that partition. `None` when no such
    /// device node exists now.
    pub fn device(&self, path: &str) -> Option<(usize, Option<u32>)> {
        let name = path.strip_prefix("/dev/")?;
        if let Some(d) = self.present(name) {
            return Some((d, None));
        }
        self.drives.iter().enumerate().find_map(|(i, d)| {
            if !d.present {
                return None;
            }
            let rest = name.strip_prefix(d.dev.as_str())?;
            let rest = if d.family == Family::Nvme {
                rest.strip_prefix('p')?
            } else {
                rest
            };
            let n: u32 = rest.parse().ok().filter(|_| !rest.starts_with('0'))?;
            (1..=d.partitions).contains(&n).then_some((i, Some(n)))
        })
    }

    /// `sdb (serial S3Z1..., bay 1)`.
    pub fn describe(&self, drive: usize) -> String {
        self.drives[drive].describe()
    }
}

fn drive_state(
    spec: &DriveSpec,
    array: &str,
    storage_counter: &dyn Fn(&str) -> bool,
) -> DriveState {
    let present = spec.group != DriveGroup::Spare;
    DriveState {
        serial: spec.serial.clone(),
        wwn: spec.wwn.clone(),
        model: spec.model.clone(),
        firmware: spec.firmware.clone(),
        size_bytes: spec.size_bytes,
        family: spec.family,
        dev: if present {
            spec.dev.clone().unwrap_or_default()
        } else {
            String::new()
        },
        slot: if present { spec.slot.clone() } else { None },
        home_slot: spec.slot.clone(),
        present,
        counters: spec
            .counters
            .iter()
            .filter(|(k, _)| !storage_counter(k))
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
        smart_passed: spec.smart_passed,
        smart_unreadable: false,
        counters_unreadable: false,
        blank: spec.blank && spec.group != DriveGroup::Member,
        superblock: (spec.group == DriveGroup::Member).then(|| array.to_string()),
        partitions: 0,
    }
}
