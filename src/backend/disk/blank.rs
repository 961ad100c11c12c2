//! Is a disk blank? Read-only signature checks for a full look.
//!
//! A new drive may only become a rebuild target when it carries nothing: no
//! partition table, RAID superblock, filesystem, LUKS header or swap, and no
//! partitions or holders in sysfs. This is a safety check that fails closed:
//! anything unreadable is "unknown" (`None`), never "blank". The device is
//! opened read-only and only a few small ranges are read.

use std::fs::{self, File};
use std::io::{ErrorKind, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// md superblock magic 0xa92b4efc, stored little endian.
const MD_MAGIC: [u8; 4] = [0xfc, 0x4e, 0x2b, 0xa9];

/// `Some(true)` when `dev` (the device node) and `sys_disk`
/// (`/sys/block/<name>`) show nothing in use, `Some(false)` when something
/// is found, `None` when any part could not be read.
pub fn is_blank(dev: &Path, sys_disk: &Path) -> Option<bool> {
    match find_signature(dev, sys_disk) {
        Ok(found) => Some(found.is_none()),
        Err(_) => None,
    }
}

/// The first thing found that makes the disk not blank, by name.
pub fn find_signature(dev: &Path, sys_disk: &Path) -> std::io::Result<Option<&'static str>> {
    if let Some(found) = sysfs_users(sys_disk)? {
        return Ok(Some(found));
    }
    let mut file = File::open(dev)?;
    let size = file.seek(SeekFrom::End(0))?;
    let mut head = vec![0u8; 8192.min(size) as usize];
    file.read_exact_at(&mut head, 0)?;
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    let head_checks: [(&'static str, usize, &[u8]); 9] = [
        ("MBR boot signature", 510, &[0x55, 0xaa]),
        ("GPT header", 512, b"EFI PART"),
        ("md superblock 1.1", 0, &MD_MAGIC),
        ("md superblock 1.2", 4096, &MD_MAGIC),
        ("ext2/3/4 superblock", 1080, &[0x53, 0xef]),
        ("XFS superblock", 0, b"XFSB"),
        ("LUKS header", 0, b"LUKS\xba\xbe"),
        ("swap signature", 4086, b"SWAPSPACE2"),
        ("swap signature (old)", 4086, b"SWAP-SPACE"),
    ];
    for (name, offset, magic) in head_checks {
        if at(offset, magic) {
            return Ok(Some(name));
        }
    }
    let sectors = size / 512;
    let mut far_checks: Vec<(&'static str, u64, &[u8])> =
        vec![("btrfs superblock", 65600, b"_BHRfS_M")];
    if sectors >= 16 {
        // md 1.0: 8 KiB before the end, rounded down to 4 KiB.
        far_checks.push(("md superblock 1.0", ((sectors - 16) & !7) * 512, &MD_MAGIC));
    }
    if size >= 65536 {
        // md 0.90: the last 64 KiB-aligned 64 KiB block.
        far_checks.push(("md superblock 0.90", (size & !65535) - 65536, &MD_MAGIC));
    }
    for (name, offset, magic) in far_checks {
        if offset + magic.len() as u64 > size {
            continue;
        }
        let mut buf = vec![0u8; magic.len()];
        file.read_exact_at(&mut buf, offset)?;
        if buf == magic {
            return Ok(Some(name));
        }
    }
    if zfs_label(&file, size)? {
        return Ok(Some("ZFS label"));
    }
    Ok(None)
}

/// ZFS keeps four 256 KiB labels on every vdev, two at the start and two
/// at the end (the end rounded down to 256 KiB); each holds a ring of
/// uberblocks from 128 KiB into the label, one every 1 KiB or more, whose
/// magic is 0x00bab10c as a 64-bit number in the writer's byte order. A
/// ZFS member written on a bare disk (no partition table) has them.
fn zfs_label(file: &File, size: u64) -> std::io::Result<bool> {
    const LABEL: u64 = 256 << 10;
    const RING: u64 = 128 << 10;
    const SLOT: usize = 1 << 10;
    const MAGIC: u64 = 0x00ba_b10c;
    if size < 4 * LABEL {
        return Ok(false);
    }
    let end = size & !(LABEL - 1);
    let mut ring = vec![0u8; RING as usize];
    for label in [0, LABEL, end - 2 * LABEL, end - LABEL] {
        file.read_exact_at(&mut ring, label + RING)?;
        let found = ring.chunks_exact(SLOT).any(|slot| {
            let word: [u8; 8] = slot[..8].try_into().expect("8 bytes");
            u64::from_le_bytes(word) == MAGIC || u64::from_be_bytes(word) == MAGIC
        });
        if found {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Partitions (`/sys/block/X/X*/partition`) or holders (md, dm) in sysfs.
fn sysfs_users(sys_disk: &Path) -> std::io::Result<Option<&'static str>> {
    let name = sys_disk
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidInput, "disk path has no name"))?;
    // Dot entries are never kernel names; skipping them lets captured trees
    // keep empty directories in git.
    if fs::read_dir(sys_disk.join("holders"))?
        .flatten()
        .any(|e| !e.file_name().to_string_lossy().starts_with('.'))
    {
        return Ok(Some("holders in sysfs"));
    }
    for entry in fs::read_dir(sys_disk)? {
        let entry = entry?;
        let child = entry.file_name();
        if child.to_string_lossy().starts_with(name) && entry.path().join("partition").exists() {
            return Ok(Some("partitions in sysfs"));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;

    use tempfile::TempDir;

    use super::*;

    const SIZE: u64 = 64 << 20;
    /// The uberblock magic 0x00bab10c, little and big endian.
    const ZFS_LE: [u8; 8] = [0x0c, 0xb1, 0xba, 0, 0, 0, 0, 0];
    const ZFS_BE: [u8; 8] = [0, 0, 0, 0, 0, 0xba, 0xb1, 0x0c];

    /// Bytes written at offsets.
    type Writes<'a> = &'a [(u64, &'a [u8])];

    /// A sparse 64 MiB "device" with `magic` written at `offset`, and an
    /// empty sysfs directory for it.
    fn device(dir: &TempDir, writes: Writes) -> (std::path::PathBuf, std::path::PathBuf) {
        let dev = dir.path().join("dev-sdz");
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&dev)
            .unwrap();
        file.set_len(SIZE).unwrap();
        for (offset, bytes) in writes {
            file.write_all_at(bytes, *offset).unwrap();
        }
        let sys = dir.path().join("sys/block/sdz");
        fs::create_dir_all(sys.join("holders")).unwrap();
        (dev, sys)
    }

    #[test]
    fn every_signature_is_found() {
        let end_1_0 = ((SIZE / 512 - 16) & !7) * 512;
        let end_0_90 = (SIZE & !65535) - 65536;
        let table: &[(Writes, Option<&str>)] = &[
            (&[], None),
            (&[(510, &[0x55, 0xaa])], Some("MBR boot signature")),
            (&[(512, b"EFI PART")], Some("GPT header")),
            (&[(0, &MD_MAGIC)], Some("md superblock 1.1")),
            (&[(4096, &MD_MAGIC)], Some("md superblock 1.2")),
            (&[(end_1_0, &MD_MAGIC)], Some("md superblock 1.0")),
            (&[(end_0_90, &MD_MAGIC)], Some("md superblock 0.90")),
            (&[(1080, &[0x53, 0xef])], Some("ext2/3/4 superblock")),
            (&[(0, b"XFSB")], Some("XFS superblock")),
            (&[(65600, b"_BHRfS_M")], Some("btrfs superblock")),
            (&[(0, b"LUKS\xba\xbe")], Some("LUKS header")),
            (&[(4086, b"SWAPSPACE2")], Some("swap signature")),
            // A zfs_member: an uberblock in any of the four labels, either
            // byte order, in any 1 KiB slot of the ring.
            (&[(128 << 10, &ZFS_LE)], Some("ZFS label")),
            (
                &[((256 << 10) + (128 << 10) + 5120, &ZFS_BE)],
                Some("ZFS label"),
            ),
            (
                &[(SIZE - (512 << 10) + (128 << 10), &ZFS_LE)],
                Some("ZFS label"),
            ),
            (
                &[(SIZE - (256 << 10) + (255 << 10), &ZFS_LE)],
                Some("ZFS label"),
            ),
            // Near misses: the magic one byte off, big endian md magic.
            (&[(511, &[0x55, 0xaa])], None),
            (&[(4096, &[0xa9, 0x2b, 0x4e, 0xfc])], None),
            (&[(65601, b"_BHRfS_M")], None),
            (&[((128 << 10) + 8, &ZFS_LE)], None),
            (&[(64 << 10, &ZFS_LE)], None),
        ];
        for (writes, want) in table {
            let dir = TempDir::new().unwrap();
            let (dev, sys) = device(&dir, writes);
            assert_eq!(find_signature(&dev, &sys).unwrap(), *want, "{want:?}");
            assert_eq!(is_blank(&dev, &sys), Some(want.is_none()));
        }
    }

    #[test]
    fn partitions_and_holders_in_sysfs() {
        let dir = TempDir::new().unwrap();
        let (dev, sys) = device(&dir, &[]);
        fs::write(sys.join("holders/.keep"), "").unwrap();
        assert_eq!(find_signature(&dev, &sys).unwrap(), None);
        fs::create_dir_all(sys.join("sdz1")).unwrap();
        fs::write(sys.join("sdz1/partition"), "1\n").unwrap();
        assert_eq!(
            find_signature(&dev, &sys).unwrap(),
            Some("partitions in sysfs")
        );
        fs::create_dir_all(sys.join("holders/md0")).unwrap();
        assert_eq!(
            find_signature(&dev, &sys).unwrap(),
            Some("holders in sysfs")
        );
    }

    #[test]
    fn unreadable_is_unknown_never_blank() {
        let dir = TempDir::new().unwrap();
        let (dev, sys) = device(&dir, &[]);
        assert_eq!(is_blank(&dir.path().join("no-such-dev"), &sys), None);
        assert_eq!(is_blank(&dev, &dir.path().join("sys/block/nosuch")), None);
        fs::remove_dir(sys.join("holders")).unwrap();
        assert_eq!(is_blank(&dev, &sys), None);
    }

    #[test]
    fn tiny_device_is_checked_without_reading_past_its_end() {
        let dir = TempDir::new().unwrap();
        let (dev, sys) = device(&dir, &[]);
        let file = OpenOptions::new().write(true).open(&dev).unwrap();
        file.set_len(1024).unwrap();
        assert_eq!(is_blank(&dev, &sys), Some(true));
        file.write_all_at(&[0x55, 0xaa], 510).unwrap();
        assert_eq!(is_blank(&dev, &sys), Some(false));
    }
}
