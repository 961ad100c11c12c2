//! What a command's argument names on this system: the quarantine check
//! (src/engine/quarantine.rs) judges devices, not spellings. `//dev/sdb`,
//! `/dev/./sdb`, `../dev/sdb`, `sdb` run from `/dev`, a `/dev/disk/by-path`
//! or `by-id` link, a partition and a device-mapper volume on top of the
//! drive all write to the same disk; all of them are resolved here to the
//! whole disks they reach.
//!
//! The path is resolved as the kernel would (symlinks followed, `..` and
//! `.` applied), but under `root` (`--sysroot`) so tests can use a tree:
//! an absolute link target starts again at `root`, never at the host's
//! `/`. A block device's `major:minor` (from `stat`) leads through
//! `/sys/dev/block/MAJ:MIN` to its sysfs directory: a partition's parent is
//! its disk, and a stacked device (dm, md) is followed through `slaves/`
//! down to the disks under it.

use std::ffi::OsString;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;

use crate::backend::ArgDevice;

/// Symlinks followed in one resolution before giving up (the kernel's
/// limit is 40).
const MAX_LINKS: u32 = 40;
/// Stacked devices followed down (dm on md on partitions ...).
const MAX_DEPTH: u32 = 8;

/// Kernel names of block devices (and their partitions).
static DEVICE_NAME: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r"^(sd[a-z]+|hd[a-z]+|vd[a-z]+|xvd[a-z]+|nvme[0-9]+n[0-9]+|mmcblk[0-9]+|md[0-9]+|dm-[0-9]+|loop[0-9]+|nbd[0-9]+)(p?[0-9]+)?$",
    )
    .expect("a valid pattern")
});

/// Devices that are never a drive, by their absolute spelling once `.`,
/// `..` and repeated slashes are folded away.
pub(crate) const NOT_DRIVES: [&str; 8] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/stdin",
    "/dev/stdout",
    "/dev/stderr",
];

/// Resolve one argument (or the value after its `=`) of a command that runs
/// in `cwd` (a path of the system under `root`).
pub fn resolve(root: &Path, cwd: &Path, arg: &str) -> ArgDevice {
    if arg.is_empty() || arg.contains('\0') {
        return ArgDevice::Nothing;
    }
    let path = Path::new(arg);
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    };
    let folded = fold(&absolute);
    let folded_text = folded.to_string_lossy();
    if NOT_DRIVES.contains(&folded_text.as_ref()) || folded.starts_with("/dev/fd") {
        return ArgDevice::NotABlockDevice;
    }
    let device_like = arg.contains('/') && looks_like_device(&folded);
    let unresolved = |why: String| {
        if device_like {
            ArgDevice::Unresolved(format!("`{arg}` cannot be resolved: {why}"))
        } else {
            ArgDevice::Nothing
        }
    };
    let system = match locate(root, &absolute) {
        Ok(p) => p,
        Err(e) => return unresolved(e.to_string()),
    };
    let meta = match std::fs::metadata(host(root, &system)) {
        Ok(m) => m,
        Err(e) => return unresolved(e.to_string()),
    };
    if !meta.file_type().is_block_device() {
        return ArgDevice::NotABlockDevice;
    }
    let rdev = meta.rdev();
    let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    match disks_of(root, major, minor) {
        Ok((name, disks)) => ArgDevice::Block {
            what: format!("{name} {major}:{minor}"),
            disks,
        },
        Err(e) => ArgDevice::Unresolved(format!(
            "`{arg}` is block device {major}:{minor}, which `/sys/dev/block/{major}:{minor}` does not explain: {e}"
        )),
    }
}

/// The kernel name of the device node `path` (absolute, a path of the
/// system under `root`) leads to, through the same checked resolution as
/// [`resolve`] (symlinks such as `/dev/disk/by-id/...` followed, absolute
/// targets starting again at `root`): `Ok(None)` when it leads nowhere
/// (the device is gone), an error when it leads out of `/dev`.
pub fn device_name(root: &Path, path: &str) -> Result<Option<String>, String> {
    let p = Path::new(path);
    if !p.is_absolute() || path.contains('\0') {
        return Err(format!("`{path}` is not an absolute path"));
    }
    let system = match locate(root, p) {
        Ok(system) => system,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("`{path}` cannot be resolved: {e}")),
    };
    let Ok(rest) = system.strip_prefix("/dev") else {
        return Err(format!(
            "`{path}` leads to `{}`, which is not under /dev",
            system.display()
        ));
    };
    match rest.file_name().and_then(|n| n.to_str()) {
        Some(name) if rest.components().count() == 1 => Ok(Some(name.to_string())),
        _ => Err(format!(
            "`{path}` leads to `{}`, which is no kernel device name",
            system.display()
        )),
    }
}

/// `.`, `..` and repeated slashes folded away, without looking at the
/// filesystem (for recognising names only; `locate` is what resolves).
pub(crate) fn fold(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// A path under `/dev`, or one whose last name is a block device's kernel
/// name (`sdb`, `nvme0n1p2`, `dm-3`): a missing one must not pass as "no
/// drive".
pub(crate) fn looks_like_device(folded: &Path) -> bool {
    if folded.starts_with("/dev") {
        return true;
    }
    let Some(name) = folded.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    DEVICE_NAME.is_match(name)
}

/// The host path of system path `p` (absolute) under `root`.
fn host(root: &Path, p: &Path) -> PathBuf {
    root.join(p.strip_prefix("/").unwrap_or(p))
}

/// Resolve `path` (absolute, a path of the system under `root`) to the
/// system path of what it finally names: every symlink followed, with
/// absolute link targets starting again at `root`. The last component
/// must exist.
fn locate(root: &Path, path: &Path) -> io::Result<PathBuf> {
    let mut todo: Vec<OsString> = Vec::new();
    push_components(&mut todo, path);
    let mut cur = PathBuf::from("/");
    let mut links = 0u32;
    while let Some(name) = todo.pop() {
        if name == "/" {
            cur = PathBuf::from("/");
            continue;
        }
        if name == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&name);
        let meta = std::fs::symlink_metadata(host(root, &next))?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(io::Error::other("too many levels of symbolic links"));
            }
            let target = std::fs::read_link(host(root, &next))?;
            push_components(&mut todo, &target);
        } else {
            if !todo.is_empty() && !meta.is_dir() {
                return Err(io::Error::other(format!(
                    "`{}` is not a directory",
                    next.display()
                )));
            }
            cur = next;
        }
    }
    Ok(cur)
}

/// Push `path`'s components onto `todo` so that they pop in order; an
/// absolute path starts with `/` (back to the root).
fn push_components(todo: &mut Vec<OsString>, path: &Path) {
    let mut parts: Vec<OsString> = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir => parts.push("/".into()),
            Component::ParentDir => parts.push("..".into()),
            Component::Normal(n) => parts.push(n.to_os_string()),
            Component::CurDir | Component::Prefix(_) => {}
        }
    }
    todo.extend(parts.into_iter().rev());
}

/// The kernel name of block device `major:minor` and the whole disks it
/// writes to.
fn disks_of(root: &Path, major: u64, minor: u64) -> io::Result<(String, Vec<String>)> {
    let dir = locate(root, Path::new(&format!("/sys/dev/block/{major}:{minor}")))?;
    let name = file_name(&dir)?;
    let mut disks = Vec::new();
    leaves(root, &dir, 0, &mut disks)?;
    Ok((name, disks))
}

/// The whole disks under sysfs block directory `dir` (system path): its
/// disk when it is a partition; for a stacked device, the disks of
/// everything in `slaves/`.
fn leaves(root: &Path, dir: &Path, depth: u32, out: &mut Vec<String>) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(io::Error::other("devices stacked too deep"));
    }
    let whole = if host(root, &dir.join("partition")).exists() {
        dir.parent()
            .ok_or_else(|| io::Error::other("a partition without a disk"))?
            .to_path_buf()
    } else {
        dir.to_path_buf()
    };
    let slaves = whole.join("slaves");
    let entries = match std::fs::read_dir(host(root, &slaves)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            push_unique(out, file_name(&whole)?);
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let mut under = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        match locate(root, &slaves.join(name)) {
            Ok(dev) => under.push(dev),
            // A member pulled before md noticed: its link in `slaves/`
            // dangles. A device that is gone takes no writes; the ones
            // still there are judged.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if under.is_empty() {
        push_unique(out, file_name(&whole)?);
    }
    under.sort();
    for dev in under {
        leaves(root, &dev, depth + 1, out)?;
    }
    Ok(())
}

fn push_unique(out: &mut Vec<String>, name: String) {
    if !out.contains(&name) {
        out.push(name);
    }
}

fn file_name(p: &Path) -> io::Result<String> {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| io::Error::other(format!("`{}` names no device", p.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree with `sys/block/nvme0n1` (partition nvme0n1p1), `dm-0` on top
    /// of that partition, md0 with two members, and links in `dev/`
    /// (regular files stand in for device nodes: only `stat` on a real
    /// node, tested whole-process in tests/quarantine.rs, needs root).
    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let mk = |p: &str| std::fs::create_dir_all(r.join(p)).unwrap();
        let file = |p: &str| std::fs::write(r.join(p), "").unwrap();
        let link = |to: &str, at: &str| std::os::unix::fs::symlink(to, r.join(at)).unwrap();
        mk("sys/block/nvme0n1/nvme0n1p1");
        file("sys/block/nvme0n1/nvme0n1p1/partition");
        mk("sys/block/nvme1n1");
        mk("sys/block/dm-0/slaves");
        link("../../nvme0n1/nvme0n1p1", "sys/block/dm-0/slaves/nvme0n1p1");
        mk("sys/block/md0/slaves");
        link("../../nvme0n1", "sys/block/md0/slaves/nvme0n1");
        link("../../nvme1n1", "sys/block/md0/slaves/nvme1n1");
        mk("sys/dev/block");
        link("../../block/nvme0n1", "sys/dev/block/259:0");
        link("../../block/nvme0n1/nvme0n1p1", "sys/dev/block/259:1");
        link("../../block/dm-0", "sys/dev/block/253:0");
        link("../../block/md0", "sys/dev/block/9:0");
        // An absolute link target starts again at the tree's root.
        link("/sys/block/nvme1n1", "sys/dev/block/259:2");
        mk("dev/disk/by-id");
        file("dev/nvme0n1");
        link("../../nvme0n1", "dev/disk/by-id/nvme-LAB-A-0001");
        link("/dev/nvme0n1", "dev/disk/by-id/abs-link");
        link("loop", "dev/loop");
        t
    }

    #[test]
    fn sysfs_leads_partitions_and_stacked_devices_to_their_disks() {
        let t = tree();
        let r = t.path();
        let disks = |maj, min| disks_of(r, maj, min).unwrap();
        assert_eq!(disks(259, 0), ("nvme0n1".into(), vec!["nvme0n1".into()]));
        assert_eq!(disks(259, 1), ("nvme0n1p1".into(), vec!["nvme0n1".into()]));
        assert_eq!(disks(253, 0), ("dm-0".into(), vec!["nvme0n1".into()]));
        assert_eq!(
            disks(9, 0),
            ("md0".into(), vec!["nvme0n1".into(), "nvme1n1".into()])
        );
        assert_eq!(disks(259, 2), ("nvme1n1".into(), vec!["nvme1n1".into()]));
        assert!(disks_of(r, 8, 0).is_err(), "no such device in sysfs");
    }

    /// Found by the lab (pull-before-md-notices): right after a pull md
    /// still lists the member, whose `slaves/` link now dangles; a command
    /// on the array (`mdadm /dev/md0 --fail detached`) was refused as "a
    /// device swapguard cannot identify".
    #[test]
    fn regression_a_pulled_member_dangling_in_slaves_is_no_unknown_device() {
        let t = tree();
        let r = t.path();
        std::fs::remove_dir_all(r.join("sys/block/nvme1n1")).unwrap();
        assert_eq!(
            disks_of(r, 9, 0).unwrap(),
            ("md0".into(), vec!["nvme0n1".into()])
        );
    }

    #[test]
    fn spellings_of_one_path_resolve_alike_and_stay_under_the_root() {
        let t = tree();
        let r = t.path();
        let want = PathBuf::from("/dev/nvme0n1");
        for spelling in [
            "/dev/nvme0n1",
            "//dev/nvme0n1",
            "/dev/./nvme0n1",
            "/dev/../dev/nvme0n1",
            "/../../dev/nvme0n1",
            "/dev/disk/by-id/nvme-LAB-A-0001",
            "/dev/disk/by-id/abs-link",
        ] {
            assert_eq!(locate(r, Path::new(spelling)).unwrap(), want, "{spelling}");
        }
        assert!(locate(r, Path::new("/dev/loop")).is_err(), "a link loop");
        assert!(locate(r, Path::new("/dev/nvme0n1/x")).is_err());
    }

    #[test]
    fn missing_device_paths_fail_closed_and_other_paths_pass() {
        let t = tree();
        let r = t.path();
        let cwd = Path::new("/");
        for arg in [
            "/dev/sdq",
            "//dev/sdq",
            "dev/sdq",
            "/mnt/../dev/sdq",
            "/tmp/sdq1",
        ] {
            assert!(
                matches!(resolve(r, cwd, arg), ArgDevice::Unresolved(_)),
                "{arg}"
            );
        }
        // A bare word that is no file is an option or a name, not a path.
        for arg in ["sdq", "--all", "latest", "/srv/backup/restic", ""] {
            assert_eq!(resolve(r, cwd, arg), ArgDevice::Nothing, "{arg}");
        }
        // Files, directories and the character devices.
        for arg in [
            "/dev/nvme0n1",
            "/sys",
            "/dev/null",
            "//dev/zero",
            "/dev/fd/3",
        ] {
            assert_eq!(resolve(r, cwd, arg), ArgDevice::NotABlockDevice, "{arg}");
        }
    }
}
