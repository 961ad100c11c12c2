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
//! The canary runs as root in a directory other users may write to, so it
//! trusts no name there. The file lives in `<dir>/.swapguard/`, a directory
//! owned by root with mode 0700, opened with `O_DIRECTORY|O_NOFOLLOW` and
//! held open; the file is created in it with `O_EXCL|O_NOFOLLOW` and read
//! through a descriptor opened once (`O_DIRECT|O_NOFOLLOW|O_NONBLOCK`) and
//! kept, so a FIFO or symlink put in its place is never opened. Before each
//! read the name is checked to still be the planted inode (anything else is
//! a fault: someone is tampering with the guard's evidence). Reads run on a
//! worker thread with a deadline ([`READ_DEADLINE`]): a read that does not
//! return (a drive hanging in its error handling) is itself a fault, never a
//! hang of the watch. Removal unlinks the name only while it is still the
//! planted inode.
//!
//! `unsafe` is forbidden in this crate: buffers are aligned for `O_DIRECT`
//! by slicing an over-sized `Vec` at its first 4 KiB boundary, and FIEMAP
//! comes from the `fiemap` crate.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, fstat, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod handles;
mod map;
pub use map::MemberCopies;

use handles::{own_dir, replaced, with_deadline, write_synced};

/// Alignment for `O_DIRECT` buffers, offsets and lengths.
pub const ALIGN: u64 = 4096;

/// The directory, inside the runbook's canary directory, that holds the
/// canary file.
pub const CANARY_DIR: &str = ".swapguard";

/// How long one read-back of the canary (the file and every member's copy)
/// may take before it counts as a fault.
pub const READ_DEADLINE: Duration = Duration::from_secs(10);

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
    /// The kernel name of the mirror member whose own copy this is (`None`
    /// for the file read through the filesystem); the engine names the
    /// drive by serial and bay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
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
    /// The member's kernel name.
    member: String,
    device: PathBuf,
    /// (offset in the file, offset on the device, length).
    ranges: Vec<(u64, u64, u64)>,
}

/// What a read-back needs, shared with the reading thread.
struct Reads {
    /// The planted file, opened once with `O_DIRECT`.
    file: File,
    expected: Vec<u8>,
    copies: Vec<Copy>,
}

struct State {
    /// `<dir>/.swapguard`, held open.
    dir: OwnedFd,
    /// `<dir>`, held open (to remove `.swapguard` only if it is still ours).
    parent: OwnedFd,
    /// The file's name in `dir`.
    name: String,
    /// For messages.
    path: PathBuf,
    /// The planted inode: (device, inode).
    inode: (u64, u64),
    reads: Arc<Reads>,
}

/// Canaries on real files. `root` is where `/sys` and `/dev` are looked up
/// for md members (`/` on a real host; a prepared tree in tests).
pub struct FileCanary {
    root: PathBuf,
    state: Option<State>,
    deadline: Duration,
    /// A read-back that has not returned yet.
    stuck: Option<Receiver<Vec<Fault>>>,
    /// Where each member holds its copy, as the backend tells it.
    member_copies: map::MemberCopies,
}

impl FileCanary {
    pub fn new(root: impl Into<PathBuf>) -> FileCanary {
        FileCanary {
            root: root.into(),
            state: None,
            deadline: READ_DEADLINE,
            stuck: None,
            member_copies: |_, _| Ok(None),
        }
    }

    /// Read each mirror member's copy too, found through `copies` (the
    /// backend's answer, `registry::member_copies`); without it only the
    /// file itself is re-read.
    pub fn with_member_copies(mut self, copies: map::MemberCopies) -> FileCanary {
        self.member_copies = copies;
        self
    }

    /// How long a read-back may take before it is a fault.
    pub fn with_deadline(mut self, deadline: Duration) -> FileCanary {
        self.deadline = deadline;
        self
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
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            bail!("`{name}` cannot name a canary file");
        }
        let parent = nix::fcntl::open(
            dir,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| {
            format!(
                "cannot use canary directory `{}` (it must be a directory, not a symlink)",
                dir.display()
            )
        })?;
        let sg = own_dir(&parent, dir)?;
        let file_name = format!("canary-{name}");
        let path = dir.join(CANARY_DIR).join(&file_name);
        let expected = random_bytes(size as usize)?;
        write_synced(&sg, &file_name, &path, &expected)?;
        // The descriptor every read uses. O_DIRECT proves the filesystem
        // supports it; without it the canary would be read from the page
        // cache and see nothing.
        let file = match openat(
            &sg,
            file_name.as_str(),
            OFlag::O_RDONLY
                | OFlag::O_DIRECT
                | OFlag::O_NOFOLLOW
                | OFlag::O_NONBLOCK
                | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => File::from(fd),
            Err(e) => {
                let _ = unlinkat(&sg, file_name.as_str(), UnlinkatFlags::NoRemoveDir);
                return Err(anyhow::Error::from(std::io::Error::from(e)).context(format!(
                    "cannot read the canary `{}` with O_DIRECT (tmpfs and some network filesystems cannot): without it the canary would be read from the page cache and would not notice a drive returning zeros",
                    path.display()
                )));
            }
        };
        let stat = fstat(&file).context("cannot stat the canary just written")?;
        let mut planted = Planted {
            path: path.display().to_string(),
            bytes: size,
            sha256: hex(&Sha256::digest(&expected)),
            device: None,
            extents: Vec::new(),
            copies: Vec::new(),
            not_checked: None,
        };
        let copies = match self.map(&file, device) {
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
                    "member {} ({}) at byte {}",
                    c.member,
                    c.device.display(),
                    c.ranges.first().map_or(0, |r| r.1)
                )
            })
            .collect();
        self.state = Some(State {
            dir: sg,
            parent,
            name: file_name,
            path,
            inode: (stat.st_dev, stat.st_ino),
            reads: Arc::new(Reads {
                file,
                expected,
                copies,
            }),
        });
        // Each copy must match right now, or the mapping is wrong (or the
        // storage is already returning wrong data).
        let faults = self.verify()?;
        if let Some(fault) = faults.first() {
            let _ = self.remove();
            bail!("the canary did not read back as written right after planting: {fault}");
        }
        Ok(planted)
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
        // The name must still be the planted inode: a FIFO, a symlink or
        // another file in its place is tampering with the guard's evidence.
        let now = fstatat(
            &state.dir,
            state.name.as_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        );
        if let Some(detail) = replaced(now, state.inode) {
            return Ok(vec![Fault {
                what: "the file".into(),
                detail,
                zeros: false,
                member: None,
            }]);
        }
        if let Some(stuck) = &self.stuck {
            match stuck.try_recv() {
                Err(mpsc::TryRecvError::Empty) => {
                    return Ok(vec![Fault {
                        what: "the file".into(),
                        detail: "an earlier read of it has still not returned: the storage under it hangs".into(),
                        zeros: false,
                        member: None,
                    }]);
                }
                _ => self.stuck = None,
            }
        }
        let reads = Arc::clone(&state.reads);
        match with_deadline(self.deadline, move || read_back(&reads)) {
            Ok(faults) => Ok(faults),
            Err(rx) => {
                self.stuck = Some(rx);
                Ok(vec![Fault {
                    what: "the file".into(),
                    detail: format!(
                        "did not read back within {}: the storage under it hangs",
                        humantime::format_duration(self.deadline)
                    ),
                    zeros: false,
                    member: None,
                }])
            }
        }
    }

    fn remove(&mut self) -> Result<Option<String>> {
        let Some(state) = self.state.take() else {
            return Ok(None);
        };
        let path = state.path.display().to_string();
        // Unlink the name only while it is still the inode planted here;
        // whatever else stands there now is left alone.
        let now = fstatat(
            &state.dir,
            state.name.as_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        );
        if let Some(detail) = replaced(now, state.inode) {
            bail!("the canary `{path}` was not removed: it {detail}");
        }
        unlinkat(&state.dir, state.name.as_str(), UnlinkatFlags::NoRemoveDir)
            .map_err(std::io::Error::from)
            .with_context(|| format!("cannot remove the canary `{path}`"))?;
        // `.swapguard` goes too when it is empty and still the one planted in.
        if let (Ok(held), Ok(named)) = (
            fstat(&state.dir),
            fstatat(
                &state.parent,
                CANARY_DIR,
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            ),
        ) && (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)
        {
            let _ = unlinkat(&state.parent, CANARY_DIR, UnlinkatFlags::RemoveDir);
        }
        Ok(Some(path))
    }
}

/// Read the file and every member's copy back and compare.
fn read_back(reads: &Reads) -> Vec<Fault> {
    let mut faults = Vec::new();
    match read_direct_from(&reads.file, 0, reads.expected.len()) {
        Ok(back) => faults.extend(compare("the file", &reads.expected, &back)),
        Err(e) => faults.push(Fault {
            what: "the file".into(),
            detail: format!("cannot be read back ({e}): the storage returns errors for it"),
            zeros: false,
            member: None,
        }),
    }
    for copy in &reads.copies {
        let mut back = vec![0u8; reads.expected.len()];
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
        let what = format!("member {}'s copy", copy.member);
        let fault = match error {
            Some(e) => Some(Fault {
                what,
                detail: format!("cannot be read from `{}` ({e})", copy.device.display()),
                zeros: false,
                member: None,
            }),
            None => compare(&what, &reads.expected, &back),
        };
        faults.extend(fault.map(|f| Fault {
            member: Some(copy.member.clone()),
            ..f
        }));
    }
    faults
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
            member: None,
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
        member: None,
    })
}

/// Read `len` bytes at `offset` with `O_DIRECT`, whatever their alignment.
pub fn read_direct(path: &Path, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECT | nix::libc::O_NONBLOCK)
        .open(path)?;
    read_direct_from(&file, offset, len)
}

/// Read `len` bytes at `offset` from a file opened with `O_DIRECT`.
fn read_direct_from(file: &File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
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

fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("cannot read /dev/urandom for the canary's content")?;
    Ok(buf)
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
    fn a_read_that_does_not_return_is_given_up_at_the_deadline() {
        let started = std::time::Instant::now();
        let (go, wait) = mpsc::channel::<()>();
        let stuck = with_deadline(Duration::from_millis(50), move || wait.recv().is_ok());
        let rx = stuck.expect_err("the read is stuck");
        assert!(started.elapsed() < Duration::from_secs(5));
        // It still delivers when it finally returns.
        go.send(()).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(true));
        assert!(matches!(with_deadline(Duration::from_secs(5), || 7), Ok(7)));
    }

    #[test]
    fn a_hostile_swapguard_directory_refuses_to_plant() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join(CANARY_DIR)).unwrap();
        let err = FileCanary::new("/")
            .plant(dir.path(), 4096, "t")
            .unwrap_err();
        assert!(format!("{err:#}").contains("not a symlink"), "{err:#}");
        assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);

        std::fs::remove_file(dir.path().join(CANARY_DIR)).unwrap();
        std::fs::create_dir(dir.path().join(CANARY_DIR)).unwrap();
        std::fs::set_permissions(
            dir.path().join(CANARY_DIR),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let err = FileCanary::new("/")
            .plant(dir.path(), 4096, "t")
            .unwrap_err();
        assert!(format!("{err:#}").contains("with mode 0700"), "{err:#}");
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
        assert!(!dir.path().join(CANARY_DIR).exists());
    }

    #[test]
    fn a_fifo_in_place_of_the_canary_is_a_fault_not_a_hang_and_is_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut canary = FileCanary::new("/");
        let planted = match canary.plant(dir.path(), 8192, "t") {
            Ok(p) => p,
            Err(e) if format!("{e:#}").contains("O_DIRECT") => {
                eprintln!("skipped: the temporary directory does not support O_DIRECT: {e:#}");
                return;
            }
            Err(e) => panic!("{e:#}"),
        };
        let path = PathBuf::from(&planted.path);
        let meta = std::fs::metadata(dir.path().join(CANARY_DIR)).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::mode(&meta) & 0o7777, 0o700);
        std::fs::rename(&path, path.with_extension("moved")).unwrap();
        nix::unistd::mkfifo(&path, Mode::S_IRWXU).unwrap();
        let faults = canary.verify().unwrap();
        assert_eq!(faults.len(), 1, "{faults:?}");
        assert_eq!(
            faults[0].to_string(),
            "the file: was replaced behind swapguard's back (a FIFO stands in its place now)"
        );
        let err = canary.remove().unwrap_err();
        assert!(format!("{err:#}").contains("was not removed"), "{err:#}");
        assert!(path.exists(), "the FIFO is left alone");
    }
}
