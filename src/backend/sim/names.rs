//! Kernel disk names, as the simulator hands them out.
//!
//! Real kernels give a newly attached disk the lowest free name of its kind,
//! so a drive inserted after a pull usually takes the pulled drive's name
//! (lab-notes.md: the new NVMe came up as the old `nvme1n1`). The simulator
//! does the same, so runbooks and the guard are tested against name reuse
//! and must tell drives apart by serial or WWN.

use serde::Serialize;

/// A family of kernel disk names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Family {
    /// SCSI/SATA/SAS: `sda`, `sdb`, ..., `sdz`, `sdaa`.
    Sd,
    /// virtio-blk: `vda`, `vdb`, ...
    Vd,
    /// NVMe namespaces: `nvme0n1`, `nvme1n1`, ...
    Nvme,
}

impl Family {
    /// The family of a kernel name, when it is one the simulator knows.
    pub fn of(name: &str) -> Option<Family> {
        Family::parse(name).map(|(family, _)| family)
    }

    /// The family and index of a kernel name: `sdb` is `(Sd, 1)`.
    pub fn parse(name: &str) -> Option<(Family, usize)> {
        if let Some(rest) = name.strip_prefix("nvme") {
            let number = rest.strip_suffix("n1")?;
            if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            return number.parse().ok().map(|n| (Family::Nvme, n));
        }
        let (family, letters) = if let Some(rest) = name.strip_prefix("sd") {
            (Family::Sd, rest)
        } else if let Some(rest) = name.strip_prefix("vd") {
            (Family::Vd, rest)
        } else {
            return None;
        };
        if letters.is_empty()
            || letters.len() > 3
            || !letters.chars().all(|c| c.is_ascii_lowercase())
        {
            return None;
        }
        // Bijective base 26: a..z, aa..zz, aaa...
        let mut index = 0usize;
        for c in letters.bytes() {
            index = index * 26 + usize::from(c - b'a') + 1;
        }
        Some((family, index - 1))
    }

    /// The `index`th name of the family: `Sd.name(1)` is `sdb`.
    pub fn name(self, index: usize) -> String {
        match self {
            Family::Nvme => format!("nvme{index}n1"),
            Family::Sd | Family::Vd => {
                let mut letters = Vec::new();
                let mut n = index + 1;
                while n > 0 {
                    n -= 1;
                    letters.push(b'a' + (n % 26) as u8);
                    n /= 26;
                }
                letters.reverse();
                let prefix = if self == Family::Sd { "sd" } else { "vd" };
                format!("{prefix}{}", String::from_utf8_lossy(&letters))
            }
        }
    }

    /// The lowest name of the family that `taken` does not hold.
    pub fn lowest_free<'a>(self, taken: impl Iterator<Item = &'a str> + Clone) -> String {
        (0..)
            .map(|i| self.name(i))
            .find(|candidate| !taken.clone().any(|t| t == candidate))
            .unwrap_or_else(|| self.name(0))
    }

    /// The `major:minor` md prints for a member whose device node is gone
    /// (`mdadm: hot removed 8:16 from /dev/md0`).
    pub fn devnum(name: &str) -> String {
        match Family::parse(name) {
            Some((Family::Sd, i)) => format!("{}:{}", sd_major(i), (i % 16) * 16),
            Some((Family::Vd, i)) => format!("252:{}", i * 16),
            Some((Family::Nvme, i)) => format!("259:{i}"),
            None => "0:0".to_string(),
        }
    }
}

/// SCSI disks use majors 8, 65..71, 128..135, sixteen disks per major.
fn sd_major(index: usize) -> usize {
    match index / 16 {
        0 => 8,
        n @ 1..=7 => 64 + n,
        n => 128 + (n - 8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let cases = [
            ("sda", Family::Sd, 0),
            ("sdb", Family::Sd, 1),
            ("sdz", Family::Sd, 25),
            ("sdaa", Family::Sd, 26),
            ("vdc", Family::Vd, 2),
            ("nvme0n1", Family::Nvme, 0),
            ("nvme12n1", Family::Nvme, 12),
        ];
        for (name, family, index) in cases {
            assert_eq!(Family::parse(name), Some((family, index)), "{name}");
            assert_eq!(family.name(index), name);
        }
        for bad in ["sd", "sdA", "hda", "nvme0", "nvmexn1", "md0", "sda1"] {
            assert_eq!(Family::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn lowest_free_reuses_a_released_name() {
        let taken = ["sda", "sdc"];
        assert_eq!(Family::Sd.lowest_free(taken.iter().copied()), "sdb");
        let taken = ["nvme0n1"];
        assert_eq!(Family::Nvme.lowest_free(taken.iter().copied()), "nvme1n1");
    }

    #[test]
    fn device_numbers_follow_the_kernel() {
        assert_eq!(Family::devnum("sdb"), "8:16");
        assert_eq!(Family::devnum("sdq"), "65:0");
        assert_eq!(Family::devnum("nvme0n1"), "259:0");
    }
}
