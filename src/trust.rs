//! Whether a file may steer a run as root, and reading it without a race.
//!
//! A runbook decides which commands run, as root, against the drives that
//! hold the data; an answers file answers its questions; a scenario says
//! what the simulated hardware does. As sudo does for sudoers and sshd for
//! authorized_keys, a root run refuses such a file when someone other than
//! root (or the person logged in at this terminal) could have changed it:
//! one writable by group or others, owned by another user, or reached
//! through a directory someone else can write or through a symlink.
//!
//! The check and the read happen on **one descriptor**. Checking the path
//! and then reading the path again lets another user swap a symlink in
//! between (it won 54 times in 300 runs): root checked one file and ran
//! another. So the path is walked from `/` one component at a time with
//! `openat(O_NOFOLLOW)`, each directory checked with `fstat` on the handle
//! that the next step opens from, the file itself opened `O_NOFOLLOW |
//! O_NONBLOCK` (a FIFO cannot hang the open), checked with `fstat`, and read
//! from that same descriptor.
//!
//! The one ownership exception is the **login uid** (`/proc/self/loginuid`),
//! which the kernel sets at login and no later `sudo` or `su` changes, and
//! which an unprivileged process cannot set. `SUDO_UID` and `SUDO_USER` are
//! not used: they are plain environment variables, and `su` without `-`
//! keeps whatever they said before.

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat};

use crate::error::UsageError;

/// The largest file read this way (a runbook, an answers file, a scenario):
/// far more than any real one, small enough that a hostile one cannot
/// exhaust memory.
pub(crate) const MAX_FILE_BYTES: u64 = 4 << 20;

/// `/proc/self/loginuid` when no login set it.
const UNSET_LOGIN_UID: u32 = u32::MAX;

/// The uid the kernel recorded for the login session this process belongs
/// to, if one was recorded (`None` for daemons, containers and CI).
pub fn login_uid() -> Option<u32> {
    let text = std::fs::read_to_string("/proc/self/loginuid").ok()?;
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|&uid| uid != UNSET_LOGIN_UID)
}

/// Read a runbook that a root run will act on. See [`read_checked`].
pub(crate) fn read_runbook(path: &Path) -> Result<Vec<u8>> {
    read_checked_bytes(path, "runbook")
}

/// Read `path` (a `what`, for messages) from one descriptor. As root, the
/// file and every directory on its way must pass [`judge`] and
/// [`judge_dir`], and no component may be a symlink; a refusal is a usage
/// error naming the path and the reason. Other users read the file as it
/// is (they cannot do more harm through it than without it), still from one
/// descriptor and only when it is a regular file.
pub(crate) fn read_checked(path: &Path, what: &str) -> Result<String> {
    String::from_utf8(read_checked_bytes(path, what)?).map_err(|e| {
        UsageError(format!(
            "{what} `{}` is not UTF-8 text (byte {} is not)",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
        .into()
    })
}

/// [`read_checked`] without the UTF-8 decoding: the bytes as they are.
pub(crate) fn read_checked_bytes(path: &Path, what: &str) -> Result<Vec<u8>> {
    let euid = nix::unistd::geteuid().as_raw();
    let file = open_checked(path, what, euid, login_uid())?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {what} `{}`", path.display()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(UsageError(format!(
            "{what} `{}` is larger than {} MiB; that is no {what}",
            path.display(),
            MAX_FILE_BYTES >> 20
        ))
        .into());
    }
    Ok(bytes)
}

fn refuse(what: &str, path: &Path, why: String) -> anyhow::Error {
    UsageError(format!("refusing {what} `{}`: {why}", path.display())).into()
}

/// Open `path` for reading, checked as [`read_checked`] says.
pub(crate) fn open_checked(path: &Path, what: &str, euid: u32, login: Option<u32>) -> Result<File> {
    let cannot = || format!("cannot read {what} `{}`", path.display());
    if euid != 0 {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags_nonblock()
            .open(path)
            .with_context(cannot)?;
        let st = fstat(&file).with_context(cannot)?;
        if !is(&st, SFlag::S_IFREG) {
            return Err(refuse(what, path, "it is not a regular file".into()));
        }
        return Ok(file);
    }
    let abs = absolute(path).with_context(cannot)?;
    let mut dir: OwnedFd = openat(
        nix::fcntl::AT_FDCWD,
        "/",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(cannot)?;
    let mut walked = PathBuf::from("/");
    check_dir(&dir, &walked, what, path, euid, login)?;
    let mut parts: Vec<Component<'_>> = abs
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect();
    let Some(Component::Normal(name)) = parts.pop() else {
        return Err(refuse(what, path, "it does not name a file".into()));
    };
    for part in parts {
        walked.push(part.as_os_str());
        let next = openat(
            &dir,
            part.as_os_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        dir = match next {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR) => {
                return Err(refuse(
                    what,
                    path,
                    format!(
                        "`{}` on its way is a symlink or not a directory; as root, swapguard follows no links \
                         to the files it acts on: give the real path (`realpath` prints it)",
                        walked.display()
                    ),
                ));
            }
            Err(e) => return Err(e).with_context(cannot),
        };
        check_dir(&dir, &walked, what, path, euid, login)?;
    }
    let fd = match openat(
        &dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ELOOP) => {
            return Err(refuse(
                what,
                path,
                "it is a symlink; as root, swapguard follows no links to the files it acts on: \
                 give the real path (`realpath` prints it)"
                    .into(),
            ));
        }
        Err(e) => return Err(e).with_context(cannot),
    };
    let st = fstat(&fd).with_context(cannot)?;
    if !is(&st, SFlag::S_IFREG) {
        return Err(refuse(what, path, "it is not a regular file".into()));
    }
    if let Some(why) = judge(st.st_mode, st.st_uid, euid, login) {
        return Err(refuse(what, path, why));
    }
    Ok(File::from(fd))
}

/// `O_NONBLOCK` on a plain `OpenOptions`, so a FIFO cannot hang the open.
trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags((OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
    }
}

fn is(st: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == kind
}

/// `path` from `/`: a relative path is joined to the working directory the
/// kernel reports (which holds no symlinks).
fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Ok(std::env::current_dir()?.join(path))
    }
}

fn check_dir(
    dir: &OwnedFd,
    walked: &Path,
    what: &str,
    path: &Path,
    euid: u32,
    login: Option<u32>,
) -> Result<()> {
    let st = fstat(dir).with_context(|| format!("cannot read `{}`", walked.display()))?;
    match judge_dir(st.st_mode, st.st_uid, euid, login) {
        None => Ok(()),
        Some(why) => Err(refuse(
            what,
            path,
            format!("its directory `{}` {why}", walked.display()),
        )),
    }
}

/// Why a directory on the way to a file root acts on must not be trusted,
/// if so. Whoever can write a directory can replace the files in it, so it
/// must be owned by root (or the login user) and not writable by group or
/// others, unless it is a root-owned sticky directory such as `/tmp`: there
/// no one may rename or remove a file they do not own, and the file itself
/// is still checked.
pub(crate) fn judge_dir(mode: u32, owner: u32, euid: u32, login: Option<u32>) -> Option<String> {
    if euid != 0 {
        return None;
    }
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !(sticky && owner == 0) {
        return Some(format!(
            "is writable by {} (mode {:04o}), who could replace the file in it; run `chmod go-w` on it",
            writers(mode),
            mode & 0o7777
        ));
    }
    if owner != 0 && Some(owner) != login {
        return Some(format!(
            "is owned by user id {owner}, who could replace the file in it; `chown root` it"
        ));
    }
    None
}

fn writers(mode: u32) -> &'static str {
    match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => "its group and everyone else",
        (true, false) => "its group",
        _ => "everyone",
    }
}

/// Why a file with this mode and owner must not steer a run for `euid`, if
/// so. `login` is the login uid ([`login_uid`]): the person who logged in
/// and then became root may use their own files.
pub(crate) fn judge(mode: u32, owner: u32, euid: u32, login: Option<u32>) -> Option<String> {
    if euid != 0 {
        return None;
    }
    if mode & 0o022 != 0 {
        return Some(format!(
            "it is writable by {} (mode {:04o}), so anyone among them could change the commands root runs; \
             run `chmod go-w` on it",
            writers(mode),
            mode & 0o7777
        ));
    }
    if owner != 0 && Some(owner) != login {
        return Some(format!(
            "it is owned by user id {owner}, not root{}; someone else could change the commands root runs: \
             `chown root` it, or run swapguard after logging in as its owner \
             (the login uid counts, not `SUDO_UID`)",
            login
                .map(|u| format!(" nor the user logged in here (id {u})"))
                .unwrap_or_default()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{judge, judge_dir, open_checked};

    /// name, mode, owner, euid, login uid, expected refusal
    type Case = (
        &'static str,
        u32,
        u32,
        u32,
        Option<u32>,
        Option<&'static str>,
    );

    #[test]
    fn root_refuses_runbooks_others_could_change() {
        let cases: [Case; 8] = [
            ("root's own 0644", 0o100644, 0, 0, None, None),
            ("root's own 0600", 0o100600, 0, 0, None, None),
            (
                "group-writable",
                0o100664,
                0,
                0,
                None,
                Some("writable by its group (mode 0664)"),
            ),
            (
                "world-writable",
                0o100646,
                0,
                0,
                None,
                Some("writable by everyone"),
            ),
            (
                "both",
                0o100666,
                0,
                0,
                None,
                Some("its group and everyone else"),
            ),
            (
                "another user's",
                0o100644,
                1000,
                0,
                None,
                Some("owned by user id 1000, not root"),
            ),
            ("the login user's", 0o100644, 1000, 0, Some(1000), None),
            ("not root at all", 0o100666, 1000, 1000, None, None),
        ];
        for (name, mode, owner, euid, login, want) in cases {
            let got = judge(mode, owner, euid, login);
            match (want, &got) {
                (None, None) => {}
                (Some(w), Some(g)) if g.contains(w) => {}
                _ => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn root_refuses_directories_others_could_write() {
        let cases: [Case; 7] = [
            ("root's 0755", 0o40755, 0, 0, None, None),
            ("/tmp: root's sticky 1777", 0o41777, 0, 0, None, None),
            (
                "another user's sticky 1777",
                0o41777,
                1000,
                0,
                None,
                Some("writable by its group and everyone else"),
            ),
            (
                "group-writable",
                0o40775,
                0,
                0,
                None,
                Some("writable by its group (mode 0775)"),
            ),
            (
                "another user's 0755",
                0o40755,
                1000,
                0,
                None,
                Some("owned by user id 1000"),
            ),
            ("the login user's 0755", 0o40755, 1000, 0, Some(1000), None),
            ("not root", 0o40777, 1000, 1000, None, None),
        ];
        for (name, mode, owner, euid, login, want) in cases {
            let got = judge_dir(mode, owner, euid, login);
            match (want, &got) {
                (None, None) => {}
                (Some(w), Some(g)) if g.contains(w) => {}
                _ => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn as_root_no_symlink_is_followed_on_the_way() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: the walk's checks apply to root only");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("rb.toml"), "x").unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink(real.join("rb.toml"), real.join("alias.toml")).unwrap();
        let read = |p: &std::path::Path| {
            open_checked(p, "runbook", 0, None)
                .map(|_| ())
                .map_err(|e| format!("{e:#}"))
        };
        assert_eq!(read(&real.join("rb.toml")), Ok(()));
        let via_dir = read(&dir.path().join("link/rb.toml")).unwrap_err();
        assert!(
            via_dir.contains("is a symlink or not a directory"),
            "{via_dir}"
        );
        let via_file = read(&real.join("alias.toml")).unwrap_err();
        assert!(via_file.contains("it is a symlink"), "{via_file}");
        nix::unistd::mkfifo(&real.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let fifo = read(&real.join("fifo")).unwrap_err();
        assert!(fifo.contains("not a regular file"), "{fifo}");
    }
}
