//! Where the canary's bytes are on each mirror member: the filesystem's
//! device, FIEMAP extents, and the members' data offsets, which the
//! backend tells ([`MemberCopies`]).

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::canary::{Copy, Extent, FileCanary};

/// Where each member of the array `disk` (a kernel name such as `md0`)
/// holds its own copy of the array's data: the member's kernel name and the
/// byte offset of the array's first byte on it. `Ok(None)`: `disk` is no
/// array the backend knows (a plain disk); `Err`: its members cannot be
/// checked one by one (striped, or nothing in sync), with why.
pub type MemberCopies = fn(&Path, &str) -> Result<Option<Vec<(String, u64)>>, String>;

/// Filesystems whose FIEMAP `fe_physical` is a byte offset on their block device.
const EXT_MAGIC: i64 = 0xEF53;
const XFS_MAGIC: i64 = 0x5846_5342;
const BTRFS_MAGIC: i64 = 0x9123_683E;

impl FileCanary {
    /// Find the block device under `path` and, on a mirror, each member's
    /// copy. `Err` says why per-member copies cannot be read.
    pub(super) fn map(
        &self,
        file: &File,
        device: Option<&str>,
    ) -> std::result::Result<(String, Vec<Extent>, Vec<Copy>), String> {
        let fs_type = nix::sys::statfs::fstatfs(file)
            .map_err(|e| format!("cannot tell the filesystem type ({e})"))?
            .filesystem_type()
            .0 as i64;
        let device = match device {
            Some(d) => d.to_string(),
            None => self.device_of(file)?,
        };
        let extents = extents(file)?;
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
        let Some(members) = (self.member_copies)(&self.root, &disk)? else {
            return Ok((device, extents, Vec::new()));
        };
        let copies = members
            .into_iter()
            .map(|(member, offset)| {
                let base = offset + start;
                Copy {
                    device: self.root.join("dev").join(&member),
                    member,
                    ranges: extents
                        .iter()
                        .map(|e| (e.logical, base + e.physical, e.length))
                        .collect(),
                }
            })
            .collect();
        Ok((device, extents, copies))
    }

    /// `md0` for a file on `/dev/md0`, from the file's `st_dev`.
    fn device_of(&self, file: &File) -> std::result::Result<String, String> {
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot stat the canary: {e}"))?;
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

/// FIEMAP extents covering the whole file, or why they cannot be used.
fn extents(file: &File) -> std::result::Result<Vec<Extent>, String> {
    use fiemap::FiemapExtentFlags as F;
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    let mut out = Vec::new();
    for extent in fiemap::Fiemap::with_flags(file, fiemap::FiemapFlags::SYNC) {
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

fn read_number(path: &Path) -> std::result::Result<u64, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?
        .trim()
        .parse()
        .map_err(|e| format!("`{}` is not a number: {e}", path.display()))
}
