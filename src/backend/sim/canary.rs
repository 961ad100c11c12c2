//! The simulator's data canary: the same [`Canaries`] the engine uses on a
//! real filesystem, played in memory, so a scenario can make the array (or
//! one member of a mirror) return zeros and the dry run shows the halt.
//!
//! A scenario event `zero_canary = "all"` makes every read of the canary
//! return zeros; `zero_canary = "sda"` zeros only that member's copy, which
//! only the per-member check of a RAID1 sees (reads through the array may
//! be served by the healthy twin).

use std::path::Path;

use anyhow::{Result, bail};

use crate::canary::{Canaries, Fault, Planted};
use crate::health::model::DriveKey;

/// Simulated canary state.
#[derive(Clone, Debug, Default)]
pub(crate) struct SimCanary {
    planted: Option<Planted>,
    /// Reads through the array return zeros.
    pub array_zeros: bool,
    /// Members whose copy reads as zeros.
    pub zeroed: Vec<DriveKey>,
    /// The array's level and its in-sync members (`(key, kernel name)`),
    /// refreshed by the simulator before every use.
    pub level: String,
    pub members: Vec<(DriveKey, String)>,
    pub array: String,
}

impl SimCanary {
    fn copies(&self) -> Vec<(DriveKey, String)> {
        if self.level == "raid1" {
            self.members.clone()
        } else {
            Vec::new()
        }
    }
}

impl Canaries for SimCanary {
    fn plant(&mut self, dir: &Path, size: u64, name: &str) -> Result<Planted> {
        if self.planted.is_some() {
            bail!("a canary is planted already");
        }
        let copies: Vec<String> = self
            .copies()
            .iter()
            .map(|(_, dev)| format!("member {dev} (simulated)"))
            .collect();
        let not_checked = if copies.is_empty() {
            Some(format!(
                "`{}` is {}: its members hold stripes and parity, not copies, so a member cannot be checked on its own; the file itself is re-read with O_DIRECT",
                self.array, self.level
            ))
        } else {
            None
        };
        let planted = Planted {
            path: dir
                .join(crate::canary::CANARY_DIR)
                .join(format!("canary-{name}"))
                .display()
                .to_string(),
            bytes: size,
            sha256: "simulated".into(),
            device: Some(self.array.clone()),
            extents: Vec::new(),
            copies,
            not_checked,
        };
        self.planted = Some(planted.clone());
        Ok(planted)
    }

    fn verify(&mut self) -> Result<Vec<Fault>> {
        let Some(planted) = &self.planted else {
            bail!("no canary is planted");
        };
        let zeros = |what: String, member: Option<String>| Fault {
            what,
            detail: format!(
                "{0} of {0} bytes differ, from byte 0 to {1}, all zeros",
                planted.bytes,
                planted.bytes.saturating_sub(1)
            ),
            zeros: true,
            member,
        };
        let mut faults = Vec::new();
        if self.array_zeros {
            faults.push(zeros("the file".into(), None));
        }
        for (key, dev) in self.copies() {
            if self.array_zeros || self.zeroed.contains(&key) {
                faults.push(zeros(format!("member {dev}'s copy"), Some(dev.clone())));
            }
        }
        Ok(faults)
    }

    fn remove(&mut self) -> Result<Option<String>> {
        Ok(self.planted.take().map(|p| p.path))
    }
}
