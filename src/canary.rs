//! Data canaries: the guard's look at the data itself.
//!
//! In the incident a dying drive wrote zeros over the database for fifteen
//! minutes while nothing else looked wrong. When a runbook names a canary
//! directory on the array's filesystem, the run writes a file of random
//! content there at the start (fsync'd), and re-reads it with `O_DIRECT`,
//! bypassing the page cache, at every step boundary and during watches.
//! Content that reads back different, zeros above all, halts the run with
//! "the array returned different data". The file is removed at the end.
//!
//! A mirror serves each read from one member, so a member writing zeros can
//! hide behind its healthy twin. For md RAID1 the canary is therefore also
//! read from every member directly: FIEMAP maps the file to byte ranges of
//! the md device (plus the partition's start when the filesystem sits on a
//! partition of it), the member's `offset` in sysfs says where md's data
//! starts on that member, and each range is read from the member with
//! `O_DIRECT`. Where this is not possible the canary says so plainly in
//! [`Planted::not_checked`] and only the file itself is re-read:
//! md levels other than RAID1 (a member holds stripes and parity, not a copy),
//! filesystems whose FIEMAP does not give device offsets (btrfs gives its own
//! logical addresses; only ext2/3/4 and XFS are trusted here), extents that
//! are inline, compressed, encrypted or not yet allocated, and filesystems on
//! LVM, dm-crypt or anything else between the filesystem and md.
//!
//! `unsafe` is forbidden in this crate: buffers are aligned for `O_DIRECT`
//! by slicing an over-sized `Vec` at its first 4 KiB boundary, and FIEMAP
//! comes from the `fiemap` crate.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Alignment for `O_DIRECT` buffers, offsets and lengths.
pub const ALIGN: u64 = 4096;

/// Filesystems whose FIEMAP `fe_physical` is a byte offset on their block device.
const EXT_MAGIC: i64 = 0xEF53;
const XFS_MAGIC: i64 = 0x5846_5342;
const BTRFS_MAGIC: i64 = 0x9123_683E;

/// One extent of the canary file, as FIEMAP reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extent {
    /// Byte offset in the file.
    pub logical: u64,
    /// Byte offset on the filesystem's block device.
    pub physical: u64,
    pub length: u64,
}

/// What was planted, for the journal and for tests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planted {
    pub path: String,
    pub bytes: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// The block device the filesystem is on (`md0`, `md0p1`, `loop3`).
    pub device: Option<String>,
    pub extents: Vec<Extent>,
    /// Copies read directly besides the file, e.g. `member sda at byte 1048576`.
    pub copies: Vec<String>,
    /// Why the copies are not read directly, when they are not.
    pub not_checked: Option<String>,
}

/// A canary that did not read back as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fault {
    /// `the file` or `member sda's copy`.
    pub what: String,
    /// `65536 of 1048576 bytes differ from byte 0 to 65535, all zeros`, or
    /// why it could not be read.
    pub detail: String,
    /// True when the bytes that differ are all zeros.
    pub zeros: bool,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.detail)
    }
}

/// Where canaries are planted and read. Real runs use [`FileCanary`]; the
/// simulator plays its own.
pub trait Canaries {
    /// Write the canary file `name` in `dir` (`size` bytes, a multiple of
    /// 4 KiB), sync it, and read it back once.
    fn plant(&mut self, dir: &Path, size: u64, name: &str) -> Result<Planted>;
    /// Read everything back; an empty list means it all matched. `Err` when
    /// nothing is planted.
    fn verify(&mut self) -> Result<Vec<Fault>>;
    /// Remove the file. Nothing planted is not an error.
    fn remove(&mut self) -> Result<Option<String>>;
}

/// A copy read directly from a device.
#[derive(Clone, Debug)]
struct Copy {
    label: String,
    device: PathBuf,
    /// (offset in the file, offset on the device, length).
    ranges: Vec<(u64, u64, u64)>,
}

struct State {
    path: PathBuf,
    expected: Vec<u8>,
    copies: Vec<Copy>,
}

/// Canaries on real files. `root` is where `/sys` and `/dev` are looked up
/// for md members (`/` on a real host; a prepared tree in tests).
pub struct FileCanary {
    root: PathBuf,
    state: Option<State>,
}

impl FileCanary {
    pub fn new(root: impl Into<PathBuf>) -> FileCanary {
        FileCanary {
            root: root.into(),
            state: None,
        }
    }

    /// Plant with the filesystem's device given (tests: a filesystem on a
    /// loop device standing for an md array described by a prepared tree).
    pub fn plant_on(
        &mut self,
        dir: &Path,
        size: u64,
        name: &str,
        device: Option<&str>,
    ) -> Result<Planted> {
        if self.state.is_some() {
            bail!("a canary is planted already");
        }
        if size == 0 || size % ALIGN != 0 {
            bail!("a canary's size must be a whole number of 4 KiB blocks, not {size}");
        }
        let meta = std::fs::metadata(dir)
            .with_context(|| format!("cannot use canary directory `{}`", dir.display()))?;
        if !meta.is_dir() {
            bail!("canary path `{}` is not a directory", dir.display());
        }
        let path = dir.join(format!(".swapguard-canary-{name}"));
        let expected = random_bytes(size as usize)?;
        write_synced(&path, dir, &expected)?;
        let mut planted = Planted {
            path: path.display().to_string(),
            bytes: size,
            sha256: hex(&Sha256::digest(&expected)),
            device: None,
            extents: Vec::new(),
            copies: Vec::new(),
            not_checked: None,
        };
        // The first O_DIRECT read proves the filesystem supports it; without
        // it the canary would be read from the page cache and see nothing.
        match read_direct(&path, 0, expected.len()) {
            Ok(back) if back == expected => {}
            Ok(_) => {
                let _ = std::fs::remove_file(&path);
                bail!(
                    "the canary `{}` read back different data right after it was written: the storage under `{}` is already returning wrong data",
                    path.display(),
                    dir.display()
                );
            }
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(anyhow::Error::from(e).context(format!(
                    "cannot read the canary `{}` with O_DIRECT (tmpfs and some network filesystems cannot): without it the canary would be read from the page cache and would not notice a drive returning zeros",
                    path.display()
                )));
            }
        }
        let copies = match self.map(&path, device) {
            Ok((device, extents, copies)) => {
                planted.device = Some(device);
                planted.extents = extents;
                copies
            }
            Err(why) => {
                planted.not_checked = Some(why);
                Vec::new()
            }
        };
        if planted.not_checked.is_none() && copies.is_empty() {
            planted.not_checked = Some(format!(
                "`{}` is not an md array, so there is one copy: the file itself, re-read with O_DIRECT",
                planted.device.as_deref().unwrap_or("the device")
            ));
        }
        planted.copies = copies
            .iter()
            .map(|c| {
                format!(
                    "{} ({}) at byte {}",
                    c.label,
                    c.device.display(),
                    c.ranges.first().map_or(0, |r| r.1)
                )
            })
            .collect();
        self.state = Some(State {
            path,
            expected,
            copies,
        });
        // Each copy must match right now, or the mapping is wrong.
        let faults = self.verify()?;
        if let Some(fault) = faults.first() {
            let _ = self.remove();
            bail!("the canary did not read back as written right after planting: {fault}");
        }
        Ok(planted)
    }

    /// Find the block device under `path` and, for md RAID1, each member's
    /// copy. `Err` says why per-member copies cannot be read.
    fn map(
        &self,
        path: &Path,
        device: Option<&str>,
    ) -> std::result::Result<(String, Vec<Extent>, Vec<Copy>), String> {
        let fs_type = nix::sys::statfs::statfs(path)
            .map_err(|e| format!("cannot tell the filesystem type ({e})"))?
            .filesystem_type()
            .0 as i64;
        let device = match device {
            Some(d) => d.to_string(),
            None => self.device_of(path)?,
        };
        let extents = extents(path)?;
        if fs_type == BTRFS_MAGIC {
            return Err("on btrfs FIEMAP gives btrfs' own logical addresses, not device offsets, so each copy cannot be read directly; btrfs checksums its data and reports a wrong copy as an I/O error, and the file itself is re-read with O_DIRECT".into());
        }
        if fs_type != EXT_MAGIC && fs_type != XFS_MAGIC {
            return Err(format!(
                "FIEMAP offsets are trusted for ext2/3/4 and XFS only (this filesystem's type is {fs_type:#x}); the file itself is re-read with O_DIRECT"
            ));
        }
        let sys = self.root.join("sys/class/block").join(&device);
        let (disk, start) = if sys.join("partition").exists() {
            let start: u64 = read_number(&sys.join("start"))?;
            let parent = std::fs::canonicalize(&sys)
                .ok()
                .and_then(|p| {
                    p.parent()
                        .and_then(|p| p.file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                })
                .ok_or_else(|| {
                    format!("cannot find the disk that partition `{device}` belongs to")
                })?;
            (parent, start * 512)
        } else {
            (device.clone(), 0)
        };
        let md = self.root.join("sys/block").join(&disk).join("md");
        if !md.is_dir() {
            return Ok((device, extents, Vec::new()));
        }
        let level = std::fs::read_to_string(md.join("level"))
            .map_err(|e| format!("cannot read the level of `{disk}`: {e}"))?;
        let level = level.trim();
        if level != "raid1" {
            return Err(format!(
                "`{disk}` is {level}: its members hold stripes and parity, not copies, so a member cannot be checked on its own; the file itself is re-read with O_DIRECT"
            ));
        }
        let mut copies = Vec::new();
        let entries =
            std::fs::read_dir(&md).map_err(|e| format!("cannot list `{}`: {e}", md.display()))?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter_map(|n| n.strip_prefix("dev-").map(str::to_string))
            .collect();
        names.sort();
        for member in names {
            let dir = md.join(format!("dev-{member}"));
            let state = std::fs::read_to_string(dir.join("state")).unwrap_or_default();
            // Only members md reads from hold a current copy.
            if !state.split(',').any(|s| s.trim() == "in_sync") {
                continue;
            }
            let offset: u64 = read_number(&dir.join("offset"))?;
            let base = offset * 512 + start;
            copies.push(Copy {
                label: format!("member {member}"),
                device: self.root.join("dev").join(&member),
                ranges: extents
                    .iter()
                    .map(|e| (e.logical, base + e.physical, e.length))
                    .collect(),
            });
        }
        if copies.is_empty() {
            return Err(format!(
                "`{disk}` has no in-sync member to read a copy from"
            ));
        }
        Ok((device, extents, copies))
    }

    /// `md0` for a file on `/dev/md0`, from the file's `st_dev`.
    fn device_of(&self, path: &Path) -> std::result::Result<String, String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("cannot stat the canary: {e}"))?;
        let dev = meta.dev();
        let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
        let link = self.root.join(format!("sys/dev/block/{major}:{minor}"));
        std::fs::canonicalize(&link)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .ok_or_else(|| {
                format!("the filesystem is on device {major}:{minor}, which is no block device in sysfs (a virtual or network filesystem?)")
            })
    }
}

impl Canaries for FileCanary {
    fn plant(&mut self, dir: &Path, size: u64, name: &str) -> Result<Planted> {
        self.plant_on(dir, size, name, None)
    }

    fn verify(&mut self) -> Result<Vec<Fault>> {
        let Some(state) = &self.state else {
            bail!("no canary is planted");
        };
        let mut faults = Vec::new();
        match read_direct(&state.path, 0, state.expected.len()) {
            Ok(back) => faults.extend(compare("the file", &state.expected, &back)),
            Err(e) => faults.push(Fault {
                what: "the file".into(),
                detail: format!("cannot be read back ({e}): the storage returns errors for it"),
                zeros: false,
            }),
        }
        for copy in &state.copies {
            let mut back = vec![0u8; state.expected.len()];
            let mut error = None;
            for &(file_at, dev_at, len) in &copy.ranges {
                let (Ok(from), Ok(n)) = (usize::try_from(file_at), usize::try_from(len)) else {
                    continue;
                };
                let n = n.min(back.len().saturating_sub(from));
                match read_direct(&copy.device, dev_at, n) {
                    Ok(bytes) => back[from..from + n].copy_from_slice(&bytes),
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            let what = format!("{}'s copy", copy.label);
            match error {
                Some(e) => faults.push(Fault {
                    what,
                    detail: format!("cannot be read from `{}` ({e})", copy.device.display()),
                    zeros: false,
                }),
                None => faults.extend(compare(&what, &state.expected, &back)),
            }
        }
        Ok(faults)
    }

    fn remove(&mut self) -> Result<Option<String>> {
        let Some(state) = self.state.take() else {
            return Ok(None);
        };
        std::fs::remove_file(&state.path)
            .with_context(|| format!("cannot remove the canary `{}`", state.path.display()))?;
        Ok(Some(state.path.display().to_string()))
    }
}

/// FIEMAP extents covering the whole file, or why they cannot be used.
fn extents(path: &Path) -> std::result::Result<Vec<Extent>, String> {
    use fiemap::FiemapExtentFlags as F;
    let file = File::open(path).map_err(|e| format!("cannot open the canary: {e}"))?;
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    let mut out = Vec::new();
    for extent in fiemap::Fiemap::with_flags(&file, fiemap::FiemapFlags::SYNC) {
        let e = extent.map_err(|e| format!("FIEMAP is not available here ({e})"))?;
        let unusable = F::UNKNOWN
            | F::DELALLOC
            | F::ENCODED
            | F::DATA_ENCRYPTED
            | F::DATA_INLINE
            | F::DATA_TAIL
            | F::UNWRITTEN
            | F::NOT_ALIGNED;
        if e.fe_flags.intersects(unusable) {
            return Err(format!(
                "an extent of the canary is stored in a way that cannot be read from the device directly ({:?})",
                e.fe_flags
            ));
        }
        out.push(Extent {
            logical: e.fe_logical,
            physical: e.fe_physical,
            length: e.fe_length,
        });
    }
    out.sort_by_key(|e| e.logical);
    let mut covered = 0;
    for e in &out {
        if e.logical != covered {
            return Err(format!(
                "FIEMAP leaves a hole in the canary at byte {covered}"
            ));
        }
        covered = e.logical + e.length;
    }
    if covered < size {
        return Err(format!(
            "FIEMAP maps only {covered} of the canary's {size} bytes"
        ));
    }
    Ok(out)
}

/// Compare what came back with what was written.
pub fn compare(what: &str, expected: &[u8], back: &[u8]) -> Option<Fault> {
    if expected == back {
        return None;
    }
    if back.len() != expected.len() {
        return Some(Fault {
            what: what.into(),
            detail: format!(
                "{} bytes came back instead of {}",
                back.len(),
                expected.len()
            ),
            zeros: false,
        });
    }
    let differs: Vec<usize> = expected
        .iter()
        .zip(back)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| i)
        .collect();
    let (first, last) = (differs[0], differs[differs.len() - 1]);
    let zeros = back[first..=last].iter().all(|b| *b == 0);
    Some(Fault {
        what: what.into(),
        detail: format!(
            "{} of {} bytes differ, from byte {first} to {last}{}",
            differs.len(),
            expected.len(),
            if zeros { ", all zeros" } else { "" }
        ),
        zeros,
    })
}

/// Read `len` bytes at `offset` with `O_DIRECT`, whatever their alignment.
pub fn read_direct(path: &Path, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECT)
        .open(path)?;
    let align = ALIGN as usize;
    let start = offset - offset % ALIGN;
    let end = (offset + len as u64).div_ceil(ALIGN) * ALIGN;
    let n = (end - start) as usize;
    let mut buf = vec![0u8; n + align];
    let pad = buf.as_ptr().align_offset(align);
    if pad > align {
        return Err(std::io::Error::other("cannot align a buffer for O_DIRECT"));
    }
    let window = &mut buf[pad..pad + n];
    file.read_exact_at(window, start)?;
    let skip = (offset - start) as usize;
    Ok(window[skip..skip + len].to_vec())
}

fn write_synced(path: &Path, dir: &Path, content: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create the canary `{}`", path.display()))?;
    file.write_all(content)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write the canary `{}`", path.display()))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync directory `{}`", dir.display()))?;
    Ok(())
}

fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("cannot read /dev/urandom for the canary's content")?;
    Ok(buf)
}

fn read_number(path: &Path) -> std::result::Result<u64, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?
        .trim()
        .parse()
        .map_err(|e| format!("`{}` is not a number: {e}", path.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_differences() {
        let expected = vec![7u8; 8192];
        let mut zeroed = expected.clone();
        zeroed[4096..8192].fill(0);
        let mut flipped = expected.clone();
        flipped[10] = 8;
        let cases = [
            (expected.clone(), None),
            (
                zeroed,
                Some("4096 of 8192 bytes differ, from byte 4096 to 8191, all zeros"),
            ),
            (flipped, Some("1 of 8192 bytes differ, from byte 10 to 10")),
            (
                vec![7u8; 4096],
                Some("4096 bytes came back instead of 8192"),
            ),
        ];
        for (back, want) in cases {
            let got = compare("the file", &expected, &back).map(|f| f.detail);
            assert_eq!(got.as_deref(), want);
        }
    }

    #[test]
    fn plain_filesystem_roundtrip_and_zeros_behind_its_back() {
        // A plain temporary filesystem (no FIEMAP mapping needed): the file
        // is overwritten with zeros through the filesystem, then read again.
        let dir = tempfile::tempdir().unwrap();
        let mut canary = FileCanary::new("/");
        let planted = match canary.plant(dir.path(), 64 * 1024, "t") {
            Ok(p) => p,
            Err(e) if format!("{e:#}").contains("O_DIRECT") => {
                eprintln!("skipped: the temporary directory does not support O_DIRECT: {e:#}");
                return;
            }
            Err(e) => panic!("{e:#}"),
        };
        assert_eq!(planted.bytes, 65536);
        assert!(planted.not_checked.is_some(), "{planted:?}");
        assert!(canary.verify().unwrap().is_empty());
        let path = PathBuf::from(&planted.path);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0u8; 8192], 16384).unwrap();
        file.sync_all().unwrap();
        let faults = canary.verify().unwrap();
        assert_eq!(faults.len(), 1, "{faults:?}");
        // Random content has zeros of its own, so the count varies a little.
        let text = faults[0].to_string();
        assert!(text.starts_with("the file: "), "{text}");
        assert!(
            text.ends_with(" of 65536 bytes differ, from byte 16384 to 24575, all zeros"),
            "{text}"
        );
        assert!(faults[0].zeros);
        assert_eq!(canary.remove().unwrap(), Some(planted.path.clone()));
        assert!(!path.exists());
    }
}
