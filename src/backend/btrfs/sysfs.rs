//! `/sys/fs/btrfs/<uuid>/`: a mounted btrfs file system as the kernel
//! sees it, read without running a tool.
//!
//! - `devinfo/<devid>/`: `missing`, `in_fs_metadata`, `replace_target`,
//!   `writeable` (0/1 each) and, on kernels since 5.14, `error_stats`
//!   (`write_errs N read_errs N flush_errs N corruption_errs N
//!   generation_errs N`). During `btrfs replace` the target shows as devid
//!   0 with fewer files (no `replace_target` nor `writeable`).
//! - `allocation/{data,metadata,system}/<profile>/total_bytes`: one
//!   directory per profile that has block groups; a `single` directory
//!   beside `raid1` is the degraded-write trap. The directory goes away
//!   when a balance converts its last chunk (seen on 6.18).
//! - `devices/<kname>`: links to the member block devices (no devid: the
//!   devid-to-device map comes from `btrfs filesystem show`).
//!
//! The file system's UUID becomes a path: it is checked to be a UUID
//! first. A file that should be there and cannot be read or parsed is a
//! `Problem`, never a healthy default.

use std::fs;
use std::path::{Path, PathBuf};

use crate::backend::btrfs::profile::{Allocation, ChunkKind, Profile};
use crate::backend::btrfs::{ErrorStats, collect_stats};
use crate::backend::disk;
use crate::health::model::Problem;

/// One `devinfo/<devid>/` directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevInfo {
    pub devid: u64,
    pub missing: bool,
    pub in_fs_metadata: bool,
    /// The target of a running `btrfs replace` (devid 0 always is).
    pub replace_target: bool,
    /// `None` where the kernel does not show it (the replace target).
    pub writeable: Option<bool>,
    /// `None` on kernels without `error_stats` (before 5.14): the caller
    /// reads `btrfs device stats` instead.
    pub errors: Option<ErrorStats>,
}

/// What sysfs says about one file system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsLook {
    pub uuid: String,
    pub label: Option<String>,
    /// Sorted by devid.
    pub devices: Vec<DevInfo>,
    pub allocations: Vec<Allocation>,
    /// Kernel names under `devices/`, sorted.
    pub members: Vec<String>,
}

/// `true` for a UUID in its canonical text form (what sysfs names the
/// directory), so it can become a path component safely.
pub fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The file system directory under `root` (`/` on a host, a captured tree
/// in tests).
pub fn fs_dir(root: &Path, uuid: &str) -> Result<PathBuf, String> {
    if !is_uuid(uuid) {
        return Err(format!(
            "`{uuid}` is not a btrfs file-system UUID (want the form 684eee49-ed32-4b3b-87c9-44b880800856)"
        ));
    }
    Ok(root.join("sys/fs/btrfs").join(uuid))
}

/// How many times a read torn by the kernel removing a directory mid-read
/// is taken again before its problems stand.
const READ_ATTEMPTS: usize = 3;

/// Read `/sys/fs/btrfs/<uuid>/`. Err when the directory or its `devinfo/`
/// cannot be listed: then the file system cannot be read at all.
///
/// The kernel removes directories while a look reads them: a profile's
/// `allocation/<kind>/<profile>/` when a balance converts its last chunk,
/// a `devinfo/<devid>/` when a replace ends. A file missing under such a
/// directory is then no fault of the file system, only a torn read: when a
/// directory the read listed is gone by its end, the whole read is taken
/// again (up to [`READ_ATTEMPTS`] times) so the look is one consistent
/// state. A file missing under a directory that is still there stays a
/// problem, and so does a read still torn on its last attempt.
pub fn read_fs(root: &Path, uuid: &str, problems: &mut Vec<Problem>) -> Result<FsLook, String> {
    read_fs_observed(root, uuid, problems, &mut |_| {})
}

/// [`read_fs`], calling `listed` with every directory whose entries it has
/// just listed (tests use it to remove a directory mid-read, as the kernel
/// does).
pub(super) fn read_fs_observed(
    root: &Path,
    uuid: &str,
    problems: &mut Vec<Problem>,
    listed: &mut dyn FnMut(&Path),
) -> Result<FsLook, String> {
    let mut attempt = 1;
    loop {
        let mut attempt_problems = Vec::new();
        let mut read_dirs = Vec::new();
        let look = read_fs_once(root, uuid, &mut attempt_problems, &mut read_dirs, listed)?;
        let torn = read_dirs
            .iter()
            .any(|dir| fs::symlink_metadata(dir).is_err());
        if !torn || attempt == READ_ATTEMPTS {
            problems.extend(attempt_problems);
            return Ok(look);
        }
        attempt += 1;
    }
}

/// One pass over the tree; `read_dirs` gets every per-device and
/// per-profile directory the pass read files from.
fn read_fs_once(
    root: &Path,
    uuid: &str,
    problems: &mut Vec<Problem>,
    read_dirs: &mut Vec<PathBuf>,
    listed: &mut dyn FnMut(&Path),
) -> Result<FsLook, String> {
    let dir = fs_dir(root, uuid)?;
    let devinfo = dir.join("devinfo");
    let mut devids = Vec::new();
    let names = list(&devinfo)?;
    listed(&devinfo);
    for name in names {
        match name.parse::<u64>() {
            Ok(devid) => devids.push(devid),
            Err(_) => problems.push(problem(
                uuid,
                format!(
                    "`{}` holds `{name}`, which is not a devid",
                    devinfo.display()
                ),
            )),
        }
    }
    devids.sort_unstable();
    if devids.is_empty() {
        return Err(format!("`{}` lists no device", devinfo.display()));
    }
    let devices = devids
        .into_iter()
        .map(|devid| {
            let devid_dir = devinfo.join(devid.to_string());
            let info = read_devinfo(&devid_dir, devid, problems);
            read_dirs.push(devid_dir);
            info
        })
        .collect();
    let label = match read_attr(&dir.join("label")) {
        Ok(Some(label)) if label.is_empty() => None,
        Ok(label) => label,
        Err(err) => {
            problems.push(problem(uuid, err));
            None
        }
    };
    let allocations = read_allocations(&dir.join("allocation"), uuid, problems, read_dirs, listed);
    let mut members = match list(&dir.join("devices")) {
        Ok(members) => members,
        Err(err) => {
            problems.push(problem(uuid, err));
            Vec::new()
        }
    };
    members.sort();
    Ok(FsLook {
        uuid: uuid.to_string(),
        label,
        devices,
        allocations,
        members,
    })
}

fn read_devinfo(dir: &Path, devid: u64, problems: &mut Vec<Problem>) -> DevInfo {
    let subject = format!("devid {devid}");
    let flag = |file: &str, required: bool, problems: &mut Vec<Problem>| -> Option<bool> {
        let path = dir.join(file);
        match read_attr(&path) {
            Ok(Some(text)) => match text.as_str() {
                "0" => Some(false),
                "1" => Some(true),
                other => {
                    problems.push(problem(
                        &subject,
                        format!("cannot parse `{}`: `{other}` is not 0 or 1", path.display()),
                    ));
                    None
                }
            },
            Ok(None) if required => {
                problems.push(problem(
                    &subject,
                    format!("`{}` is missing", path.display()),
                ));
                None
            }
            Ok(None) => None,
            Err(err) => {
                problems.push(problem(&subject, err));
                None
            }
        }
    };
    // Fail closed: a device whose `missing` cannot be read counts as missing.
    let missing = flag("missing", true, problems).unwrap_or(true);
    let in_fs_metadata = flag("in_fs_metadata", true, problems).unwrap_or(false);
    let replace_target = devid == 0 || flag("replace_target", false, problems).unwrap_or(false);
    let writeable = flag("writeable", false, problems);
    let errors_path = dir.join("error_stats");
    let errors = match read_attr(&errors_path) {
        Ok(Some(text)) => {
            let words: Vec<&str> = text.split_whitespace().collect();
            let parsed = if words.len() % 2 == 0 {
                collect_stats(words.chunks(2).map(|p| (p[0], p[1])))
            } else {
                Err(format!("{} words, not name-value pairs", words.len()))
            };
            match parsed {
                Ok(stats) => Some(stats),
                Err(why) => {
                    problems.push(problem(
                        &format!("devid {devid}"),
                        format!("cannot parse `{}`: {why}", errors_path.display()),
                    ));
                    None
                }
            }
        }
        Ok(None) => None,
        Err(err) => {
            problems.push(problem(&format!("devid {devid}"), err));
            None
        }
    };
    DevInfo {
        devid,
        missing,
        in_fs_metadata,
        replace_target,
        writeable,
        errors,
    }
}

fn read_allocations(
    dir: &Path,
    uuid: &str,
    problems: &mut Vec<Problem>,
    read_dirs: &mut Vec<PathBuf>,
    listed: &mut dyn FnMut(&Path),
) -> Vec<Allocation> {
    let mut found = Vec::new();
    for kind_name in ["data", "metadata", "system"] {
        let Some(kind) = ChunkKind::parse(kind_name) else {
            continue;
        };
        let kind_dir = dir.join(kind_name);
        let entries = match list(&kind_dir) {
            Ok(entries) => entries,
            Err(err) => {
                problems.push(problem(uuid, err));
                continue;
            }
        };
        listed(&kind_dir);
        for entry in entries {
            // Beside the profile directories sit the space-info files
            // (`total_bytes`, `flags`, `bg_reclaim_threshold`, ...).
            let Some(profile) = Profile::parse(&entry) else {
                continue;
            };
            let profile_dir = kind_dir.join(&entry);
            let total = read_number(&profile_dir.join("total_bytes"), uuid, problems);
            let used = read_number(&profile_dir.join("used_bytes"), uuid, problems);
            read_dirs.push(profile_dir);
            found.push(Allocation {
                kind,
                profile,
                // Fail closed: an unreadable size counts as holding bytes.
                total_bytes: total.unwrap_or(u64::MAX),
                used_bytes: used.unwrap_or(0),
            });
        }
    }
    found.sort_by_key(|a| (a.kind, a.profile));
    if found.is_empty() {
        problems.push(problem(
            uuid,
            format!("`{}` shows no chunk profile", dir.display()),
        ));
    }
    found
}

fn read_number(path: &Path, subject: &str, problems: &mut Vec<Problem>) -> Option<u64> {
    match read_attr(path) {
        Ok(Some(text)) => match text.trim().parse() {
            Ok(n) => Some(n),
            Err(_) => {
                problems.push(problem(
                    subject,
                    format!(
                        "cannot parse `{}`: `{text}` is not a number",
                        path.display()
                    ),
                ));
                None
            }
        },
        Ok(None) => {
            problems.push(problem(subject, format!("`{}` is missing", path.display())));
            None
        }
        Err(err) => {
            problems.push(problem(subject, err));
            None
        }
    }
}

/// Entry names of a directory (not following a symlink at `dir` itself).
fn list(dir: &Path) -> Result<Vec<String>, String> {
    let entries =
        fs::read_dir(dir).map_err(|err| format!("cannot list `{}`: {err}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| format!("cannot list `{}`: {err}", dir.display()))?;
        match entry.file_name().into_string() {
            Ok(name) => names.push(name),
            Err(name) => {
                return Err(format!(
                    "`{}` holds an entry whose name is not UTF-8: {name:?}",
                    dir.display()
                ));
            }
        }
    }
    Ok(names)
}

/// [`disk::read_attr`] with the error as a message naming the file.
fn read_attr(path: &Path) -> Result<Option<String>, String> {
    disk::read_attr(path).map_err(|err| format!("cannot read `{}`: {err}", path.display()))
}

fn problem(subject: &str, message: String) -> Problem {
    Problem {
        probe: "btrfs".to_string(),
        subject: subject.to_string(),
        message,
    }
}
