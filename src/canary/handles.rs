//! Descriptors the canary holds instead of names: its own directory, the
//! file it creates there, and reads given up at a deadline.

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{FileStat, Mode, fstat, mkdirat};

use crate::canary::CANARY_DIR;

/// Run `f` on a thread of its own and wait for it until `deadline`; after
/// that, give up waiting and return the channel its result will come on.
/// A read stuck in the kernel cannot be cancelled, but it no longer holds
/// the caller.
pub(super) fn with_deadline<T: Send + 'static>(
    deadline: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::result::Result<T, Receiver<T>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(deadline) {
        Ok(v) => Ok(v),
        Err(_) => Err(rx),
    }
}

/// Why the name no longer stands for the planted inode, if it does not.
pub(super) fn replaced(now: nix::Result<FileStat>, planted: (u64, u64)) -> Option<String> {
    match now {
        Ok(st) if (st.st_dev, st.st_ino) == planted => None,
        Ok(st) => Some(format!(
            "was replaced behind swapguard's back (a {} stands in its place now)",
            file_kind(st.st_mode)
        )),
        Err(nix::errno::Errno::ENOENT) => Some("was removed behind swapguard's back".into()),
        Err(e) => Some(format!("cannot be looked up ({e})")),
    }
}

fn file_kind(mode: u32) -> &'static str {
    match mode & nix::libc::S_IFMT {
        nix::libc::S_IFREG => "different file",
        nix::libc::S_IFIFO => "FIFO",
        nix::libc::S_IFLNK => "symlink",
        nix::libc::S_IFDIR => "directory",
        nix::libc::S_IFSOCK => "socket",
        nix::libc::S_IFBLK | nix::libc::S_IFCHR => "device node",
        _ => "something else",
    }
}

/// Create `.swapguard` in `parent` (mode 0700) or open the one there, and
/// check it is a real directory owned by this user that no one else may
/// enter. Returns it held open.
pub(super) fn own_dir(parent: &OwnedFd, dir: &Path) -> Result<OwnedFd> {
    let shown = dir.join(CANARY_DIR);
    match mkdirat(parent, CANARY_DIR, Mode::S_IRWXU) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => {
            return Err(std::io::Error::from(e))
                .with_context(|| format!("cannot create `{}`", shown.display()));
        }
    }
    let fd = openat(
        parent,
        CANARY_DIR,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(std::io::Error::from)
    .with_context(|| {
        format!(
            "cannot open `{}` (it must be a directory, not a symlink)",
            shown.display()
        )
    })?;
    let st = fstat(&fd).with_context(|| format!("cannot stat `{}`", shown.display()))?;
    let me = nix::unistd::geteuid().as_raw();
    if st.st_uid != me || st.st_mode & 0o077 != 0 {
        bail!(
            "`{}` must be owned by uid {me} with mode 0700 (it is owned by uid {} with mode {:o}); someone else may have made it: remove it and run again",
            shown.display(),
            st.st_uid,
            st.st_mode & 0o7777
        );
    }
    Ok(fd)
}

/// Create `name` in `dir` (never through a link, never an existing file),
/// write `content` and sync the file and the directory.
pub(super) fn write_synced(dir: &OwnedFd, name: &str, path: &Path, content: &[u8]) -> Result<()> {
    let fd = openat(
        dir,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::S_IRUSR | Mode::S_IWUSR,
    )
    .map_err(std::io::Error::from)
    .with_context(|| format!("cannot create the canary `{}`", path.display()))?;
    let mut file = File::from(fd);
    file.write_all(content)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write the canary `{}`", path.display()))?;
    nix::unistd::fsync(dir)
        .map_err(std::io::Error::from)
        .with_context(|| format!("cannot sync the directory of `{}`", path.display()))?;
    Ok(())
}
