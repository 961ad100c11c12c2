//! Which whole disks are present, who each one is, and its kernel I/O error
//! counter.
//!
//! Drives are identified by serial and WWN read from sysfs, never by their
//! /dev name: the kernel reuses a pulled drive's name for the next drive
//! inserted (seen in the lab: `nvme1n1` came back as a different drive).
//! Hardware strings are kept raw; they are sanitised when printed.

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use anyhow::{Context, Result};

use crate::backend::disk::read_attr;
use crate::health::model::{Identity, Problem};

/// Kernel name prefixes that are never drives worth watching (unless an
/// array uses one as a member, which is handled by the caller). Arrays
/// themselves are the backends' to name (`registry::is_array_device`).
const NOT_DRIVES: [&str; 5] = ["loop", "ram", "zram", "dm-", "sr"];

/// Whole disks under `<root>/sys/block`, sorted. Partitions are never listed
/// there; arrays (md), loop, RAM, device-mapper and optical devices are
/// skipped, and so is an `nbd` device with no size (not connected).
pub fn whole_disks(sys_block: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let entries = fs::read_dir(sys_block)
        .with_context(|| format!("cannot list `{}`", sys_block.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list `{}`", sys_block.display()))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if NOT_DRIVES.iter().any(|p| name.starts_with(p))
            || crate::backend::registry::is_array_device(&name)
        {
            continue;
        }
        if name.starts_with("nbd") {
            let size = read_attr(&sys_block.join(&name).join("size"))
                .ok()
                .flatten();
            if size.as_deref().map(str::trim).is_none_or(|s| s == "0") {
                continue;
            }
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// The whole disk holding md member `kname` (`sda1` → `sda`, `nvme0n1p2` →
/// `nvme0n1`, `nvme1n1` → itself), or `None` when its block device is gone.
///
/// `member_dir` is the member's `dev-<kname>` directory. Its `block` link is
/// the kernel's own pointer to the member's block device: in the lab it
/// dangled as soon as the drive was pulled, while md still listed the member
/// `in_sync` (md notices only at its next I/O). A dangling link means the
/// member's disk is gone even if a disk of the same name is present, since
/// that one is another drive. Trees without the link fall back to the name.
pub fn member_disk(root: &Path, member_dir: &Path, kname: &str) -> Option<String> {
    let sys_block = root.join("sys/block");
    let link = member_dir.join("block");
    if fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()) {
        let device = fs::canonicalize(&link).ok()?;
        return [Some(device.as_path()), device.parent()]
            .into_iter()
            .flatten()
            .find_map(|dir| {
                let name = dir.file_name()?.to_str()?;
                let disk = fs::canonicalize(sys_block.join(name)).ok()?;
                (disk == dir).then(|| name.to_string())
            });
    }
    disk_of(root, kname)
}

/// The whole disk holding block device `kname` (itself for a whole disk,
/// its parent for a partition), by sysfs; `None` when sysfs has no such
/// device.
pub fn disk_of(root: &Path, kname: &str) -> Option<String> {
    let sys_block = root.join("sys/block");
    if kname.is_empty() || kname.contains('/') || kname.starts_with('.') {
        return None;
    }
    if sys_block.join(kname).exists() {
        return Some(kname.to_string());
    }
    let is_partition_of = |disk: &str| sys_block.join(disk).join(kname).join("partition").exists();
    let base = kname.trim_end_matches(|c: char| c.is_ascii_digit());
    if base.len() < kname.len() {
        // nvme0n1p1, mmcblk0p1: the disk name ends in a digit, then `p`.
        let parent = match base.strip_suffix('p') {
            Some(disk) if disk.ends_with(|c: char| c.is_ascii_digit()) => disk,
            _ => base,
        };
        if is_partition_of(parent) {
            return Some(parent.to_string());
        }
    }
    // Any other naming: /sys/class/block/<part> links to .../<disk>/<part>.
    let link = fs::read_link(root.join("sys/class/block").join(kname)).ok()?;
    let parent = link.parent()?.file_name()?.to_str()?;
    is_partition_of(parent).then(|| parent.to_string())
}

/// PCIe hot-plug slots (`/sys/bus/pci/slots/<name>/address`), by the
/// address of the device in them (`0000:02:00`).
///
/// An NVMe drive is its own PCI function, so the slot it sits in is its
/// bay: with native PCIe hot-plug the kernel names each slot by its physical
/// slot number (in the lab, slots `1`, `2`, `3` for bays 1 to 3). A SATA or
/// SAS disk's PCI function is its controller, whose slot is no bay, so only
/// NVMe drives get one from here.
#[derive(Clone, Debug, Default)]
pub struct PciSlots {
    by_address: HashMap<String, String>,
}

impl PciSlots {
    /// Scan `<root>/sys/bus/pci/slots` once. No directory (no hot-plug
    /// slots) is an empty index; a bay is extra information, never health.
    pub fn scan(root: &Path) -> Self {
        let mut names: HashMap<String, String> = HashMap::new();
        let Ok(entries) = fs::read_dir(root.join("sys/bus/pci/slots")) else {
            return PciSlots::default();
        };
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if let Ok(Some(address)) = read_attr(&entry.path().join("address")) {
                let address = address.trim().to_string();
                if !address.is_empty() {
                    names.insert(name, address);
                }
            }
        }
        // The kernel makes clashing slot names unique with `-2`, `-3`, ...
        // (the lab's ACPI hot-plug named all three slots `0`: `0`, `0-2`,
        // `0-3`). Such names say nothing about bays: leave them out.
        let clashing: Vec<String> = names
            .keys()
            .filter_map(|n| n.rsplit_once('-'))
            .filter(|(base, n)| n.parse::<u32>().is_ok() && names.contains_key(*base))
            .map(|(base, _)| base.to_string())
            .collect();
        let by_address = names
            .into_iter()
            .filter(|(name, _)| {
                let base = name
                    .rsplit_once('-')
                    .filter(|(_, n)| n.parse::<u32>().is_ok())
                    .map_or(name.as_str(), |(base, _)| base);
                !clashing.iter().any(|c| c == base)
            })
            .map(|(name, address)| (address, name))
            .collect();
        PciSlots { by_address }
    }

    /// The slot of NVMe disk `name`, from its `/sys/block/<name>` link
    /// (`../devices/pci0000:00/0000:00:02.0/0000:02:00.0/nvme/nvme1/nvme1n1`:
    /// the function before `nvme/` is the drive, in slot `0000:02:00`).
    pub fn nvme_bay(&self, sys_block: &Path, name: &str) -> Option<String> {
        if self.by_address.is_empty() {
            return None;
        }
        let link = fs::read_link(sys_block.join(name)).ok()?;
        let parts: Vec<&str> = link.iter().filter_map(|p| p.to_str()).collect();
        let at = parts.iter().position(|p| *p == "nvme")?;
        let function = parts.get(at.checked_sub(1)?)?;
        let (address, _function) = function.rsplit_once('.')?;
        self.by_address.get(address).cloned()
    }
}

/// `/dev/disk/by-id` names, best first per kernel name.
#[derive(Clone, Debug, Default)]
pub struct ByIdIndex {
    best: HashMap<String, (u8, String)>,
}

impl ByIdIndex {
    /// Scan `<root>/dev/disk/by-id` once. A missing directory (no udev, as in
    /// the lab guest) is an empty index.
    pub fn scan(dir: &Path, problems: &mut Vec<Problem>) -> Self {
        let mut index = ByIdIndex::default();
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == ErrorKind::NotFound => return index,
            Err(err) => {
                problems.push(Problem {
                    probe: "identity".into(),
                    subject: "by-id".into(),
                    message: format!("cannot list `{}`: {err}", dir.display()),
                });
                return index;
            }
        };
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if is_partition_link(&name) {
                continue;
            }
            let Ok(target) = fs::read_link(entry.path()) else {
                continue;
            };
            let Some(kname) = target.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let rank = if name.starts_with("wwn-") {
                0
            } else if ["nvme-", "ata-", "scsi-"]
                .iter()
                .any(|p| name.starts_with(p))
            {
                1
            } else {
                2
            };
            let candidate = (rank, name);
            match index.best.get(kname) {
                Some(best) if *best <= candidate => {}
                _ => {
                    index.best.insert(kname.to_string(), candidate);
                }
            }
        }
        index
    }

    pub fn get(&self, kname: &str) -> Option<&str> {
        self.best.get(kname).map(|(_, name)| name.as_str())
    }
}

/// `...-part3`
fn is_partition_link(name: &str) -> bool {
    name.rsplit_once("-part")
        .is_some_and(|(_, n)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// Whether any enclosure (SES) is known at all; without one, no disk has an
/// `enclosure_device:*` link and the per-disk directory listing is skipped.
pub fn enclosures_present(root: &Path) -> bool {
    fs::read_dir(root.join("sys/class/enclosure")).is_ok_and(|mut e| e.next().is_some())
}

/// How often, and how far apart, a disk read half-way through its hot
/// removal (or addition) is read again.
const SETTLE_RETRIES: u32 = 3;
const SETTLE_PAUSE: std::time::Duration = std::time::Duration::from_millis(30);

/// [`read_disk`], for a disk that may be leaving or arriving: a disk being
/// hot-removed loses its sysfs files over a few milliseconds, so a read in
/// that window finds a directory without `size` or `serial`. Once its
/// directory is gone it is simply absent (`None`: its serial vanishing is
/// what the guard sees); while it is half there it is read again briefly,
/// and reported unreadable only if it stays that way.
pub fn read_disk_settled(
    sys_block: &Path,
    name: &str,
    by_id: &ByIdIndex,
    enclosures: bool,
    slots: &PciSlots,
    problems: &mut Vec<Problem>,
) -> Option<Identity> {
    let mut attempt = 0;
    loop {
        let mut found = Vec::new();
        let id = read_disk(sys_block, name, by_id, enclosures, slots, &mut found);
        if found.is_empty() {
            return Some(id);
        }
        if !sys_block.join(name).exists() {
            return None;
        }
        if attempt == SETTLE_RETRIES {
            problems.extend(found);
            return Some(id);
        }
        attempt += 1;
        std::thread::sleep(SETTLE_PAUSE);
    }
}

/// Who disk `name` is. (Its error counter is read through
/// `ioerr::IoerrLedger`, which keeps our own SMART probes out of it.)
pub fn read_disk(
    sys_block: &Path,
    name: &str,
    by_id: &ByIdIndex,
    enclosures: bool,
    slots: &PciSlots,
    problems: &mut Vec<Problem>,
) -> Identity {
    let dir = sys_block.join(name);
    let mut reader = Reader {
        dir: &dir,
        name,
        problems,
    };
    let serial = reader
        .text("device/serial")
        .or_else(|| reader.text("serial"))
        .or_else(|| reader.vpd_serial());
    let wwn = reader.wwn(serial.is_some());
    let model = reader.text("device/model");
    let firmware = reader
        .text("device/firmware_rev")
        .or_else(|| reader.text("device/rev"));
    let size_bytes = match reader.text("size") {
        Some(text) => match text.parse::<u64>() {
            Ok(sectors) => Some(sectors.saturating_mul(512)),
            Err(_) => {
                reader.problem(
                    "identity",
                    format!(
                        "cannot parse `{}`: `{text}` is not a number",
                        dir.join("size").display()
                    ),
                );
                None
            }
        },
        None => {
            reader.problem(
                "identity",
                format!("`{}` is missing", dir.join("size").display()),
            );
            None
        }
    };
    let slot = if enclosures {
        reader.enclosure_slot()
    } else {
        None
    }
    .or_else(|| slots.nvme_bay(sys_block, name));
    Identity {
        dev: name.to_string(),
        serial,
        wwn,
        model,
        firmware,
        size_bytes,
        slot,
        by_id: by_id.get(name).map(str::to_string),
        transport: transport(name, reader.text("device/vendor").as_deref()),
    }
}

/// How a disk is attached, from its kernel name and (for SCSI disks) the
/// vendor the SCSI layer reports: libata presents SATA drives as vendor `ATA`.
pub fn transport(name: &str, vendor: Option<&str>) -> Option<String> {
    let t = if name.starts_with("nvme") {
        "nvme"
    } else if name.starts_with("vd") {
        "virtio"
    } else if name.starts_with("sd") {
        match vendor.map(str::trim) {
            Some("ATA") => "sata",
            Some(_) => "scsi",
            None => return None,
        }
    } else {
        return None;
    };
    Some(t.to_string())
}

/// `0x1a` → 26 (the SCSI layer prints these counters as `0x%x`).
pub fn parse_hex(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))?;
    u64::from_str_radix(digits, 16).ok()
}

/// VPD page 0x80 (unit serial number): a 4-byte header whose bytes 2..4 are
/// the big-endian length, then ASCII padded with spaces.
pub fn vpd_serial(bytes: &[u8]) -> Option<String> {
    let header = bytes.get(..4)?;
    if header[1] != 0x80 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let body = bytes.get(4..)?;
    let body = &body[..len.min(body.len())];
    trimmed(&String::from_utf8_lossy(body))
}

/// Padding spaces and NULs removed; empty is `None`. Every backend reads
/// drive identity strings (serial, WWN, model, firmware) through this one
/// function, so a padded serial (NVMe and QEMU pad to 20 characters) is the
/// same drive, with the same last four characters, in md and the simulator.
pub fn trimmed(text: &str) -> Option<String> {
    let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    (!text.is_empty()).then(|| text.to_string())
}

struct Reader<'a> {
    dir: &'a Path,
    name: &'a str,
    problems: &'a mut Vec<Problem>,
}

impl Reader<'_> {
    /// A trimmed identity string; absent or empty is `None`, unreadable is a
    /// problem and `None`.
    fn text(&mut self, file: &str) -> Option<String> {
        let path = self.dir.join(file);
        match read_attr(&path) {
            Ok(text) => trimmed(&text?),
            Err(err) => {
                self.problem(
                    "identity",
                    format!("cannot read `{}`: {err}", path.display()),
                );
                None
            }
        }
    }

    /// The WWN: `wwid` (NVMe namespaces), else `device/wwid` (SCSI).
    ///
    /// A SCSI disk that reports no designator in VPD page 0x83 has a
    /// `device/wwid` file whose read fails with EINVAL (seen in the lab on a
    /// virtio-scsi disk without a `wwn`): that is a drive without a WWN, not
    /// an unreadable drive, as long as its serial was read. Without a serial
    /// it stays a problem: the drive could not be identified at all.
    fn wwn(&mut self, serial_known: bool) -> Option<String> {
        if let Some(wwn) = self.text("wwid") {
            return Some(wwn);
        }
        let path = self.dir.join("device/wwid");
        match read_attr(&path) {
            Ok(text) => trimmed(&text?),
            Err(err) if serial_known && err.raw_os_error() == Some(nix::libc::EINVAL) => None,
            Err(err) => {
                self.problem(
                    "identity",
                    format!("cannot read `{}`: {err}", path.display()),
                );
                None
            }
        }
    }

    fn vpd_serial(&mut self) -> Option<String> {
        let path = self.dir.join("device/vpd_pg80");
        match fs::read(&path) {
            Ok(bytes) => vpd_serial(&bytes),
            Err(err) if err.kind() == ErrorKind::NotFound => None,
            Err(err) => {
                self.problem(
                    "identity",
                    format!("cannot read `{}`: {err}", path.display()),
                );
                None
            }
        }
    }

    /// The slot name from a `device/enclosure_device:<slot>` link.
    fn enclosure_slot(&mut self) -> Option<String> {
        let entries = fs::read_dir(self.dir.join("device")).ok()?;
        let mut slots: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix("enclosure_device:"))
                    .map(str::to_string)
            })
            .collect();
        slots.sort();
        slots.into_iter().next()
    }

    fn problem(&mut self, probe: &str, message: String) {
        self.problems.push(Problem {
            probe: probe.to_string(),
            subject: self.name.to_string(),
            message,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_from_name_and_vendor() {
        for (name, vendor, want) in [
            ("nvme0n1", None, Some("nvme")),
            ("vda", None, Some("virtio")),
            ("sdc", Some("ATA     "), Some("sata")),
            ("sda", Some("QEMU    "), Some("scsi")),
            ("sda", None, None),
            ("xvdb", None, None),
        ] {
            assert_eq!(transport(name, vendor).as_deref(), want, "{name}");
        }
    }

    #[test]
    fn vpd_pg80_as_captured() {
        // other-buses-sysfs.txt: sda (virtio-scsi) and sdc (SATA via libata).
        let mut sda = vec![0x00, 0x80, 0x00, 0x0b];
        sda.extend_from_slice(b"LAB-SCSI-01");
        assert_eq!(vpd_serial(&sda).as_deref(), Some("LAB-SCSI-01"));
        let mut sdc = vec![0x00, 0x80, 0x00, 0x14];
        sdc.extend_from_slice(b"LAB-SATA-01         ");
        assert_eq!(vpd_serial(&sdc).as_deref(), Some("LAB-SATA-01"));
        // Length longer than the data, wrong page, too short, all padding.
        assert_eq!(
            vpd_serial(&[0, 0x80, 0, 0x40, b'A', b'B']).as_deref(),
            Some("AB")
        );
        assert_eq!(vpd_serial(&[0, 0x83, 0, 2, b'A', b'B']), None);
        assert_eq!(vpd_serial(&[0, 0x80]), None);
        assert_eq!(vpd_serial(&[0, 0x80, 0, 2, b' ', 0]), None);
    }

    #[test]
    fn hex_counters() {
        for (text, want) in [
            ("0x1a", Some(26)),
            ("0x0\n", Some(0)),
            ("0XFF", Some(255)),
            ("26", None),
            ("0x", None),
            ("0xzz", None),
        ] {
            assert_eq!(parse_hex(text), want, "{text:?}");
        }
    }

    #[test]
    fn partition_links() {
        for (name, want) in [
            ("wwn-0x5000c500a1b2c3d4-part1", true),
            ("nvme-QEMU_NVMe_Ctrl_LAB-A-0001-part12", true),
            ("wwn-0x5000c500a1b2c3d4", false),
            ("ata-disk-partx", false),
            ("ata-disk-part", false),
        ] {
            assert_eq!(is_partition_link(name), want, "{name}");
        }
    }

    #[test]
    fn padding_is_trimmed() {
        assert_eq!(
            trimmed("LAB-A-0001          ").as_deref(),
            Some("LAB-A-0001")
        );
        assert_eq!(trimmed("  \0").as_deref(), None);
        assert_eq!(
            trimmed("t10.ATA     LAB SATA DISK      LAB-SATA-01         ").as_deref(),
            Some("t10.ATA     LAB SATA DISK      LAB-SATA-01")
        );
    }
}
