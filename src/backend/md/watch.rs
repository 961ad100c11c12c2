//! Waiting for md events on /proc/mdstat.
//!
//! The kernel marks /proc/mdstat with POLLPRI|POLLERR when md's event counter
//! moves past what this open file last read (array start/stop, a member added,
//! removed or failed, a resync starting or ending). POLLIN is always set, so
//! polling for it would busy-loop. Recipe (formats.md 1.2, mdadm
//! `mdstat_wait()`): keep the file open, read it whole from offset 0 to arm,
//! poll for POLLPRI|POLLERR with a timeout, and after a wake seek to 0 and
//! read again to re-arm.
//!
//! md's sysfs attributes signal the same way (kernfs `sysfs_notify`): a
//! member's `state` when md sets a flag such as `write_error` or records a
//! bad block, `bad_blocks`, the array's `degraded`. None of those changes
//! moves the mdstat event counter (seen in the lab: write errors on a
//! survivor left mdstat silent, so only the 250 ms counter poll found
//! them), so the watch also polls the attribute files it is given
//! (`watch_attrs`). They only wake a wait earlier; every verdict still
//! comes from a fresh look, and a file that cannot be opened is left out.
//!
//! A captured tree's mdstat is a plain file, which never signals: there the
//! wait is a plain sleep for the timeout, so it cannot spin.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::statfs::{PROC_SUPER_MAGIC, fstatfs};

/// An armed /proc/mdstat.
#[derive(Debug)]
pub struct MdstatWatch {
    path: PathBuf,
    file: File,
    /// False for a plain file (a fixture tree): poll means nothing there.
    pollable: bool,
    /// Armed sysfs attributes, by path.
    attrs: BTreeMap<PathBuf, File>,
}

impl MdstatWatch {
    /// Open and arm `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
        let pollable = fstatfs(file.as_fd()).is_ok_and(|s| s.filesystem_type() == PROC_SUPER_MAGIC);
        let mut watch = MdstatWatch {
            path: path.to_path_buf(),
            file,
            pollable,
            attrs: BTreeMap::new(),
        };
        rearm(&mut watch.file).with_context(|| format!("cannot read `{}`", path.display()))?;
        Ok(watch)
    }

    /// Poll exactly these sysfs attribute files too from now on: new ones
    /// are opened and armed, ones no longer listed are closed. Nothing
    /// happens when the watch is not pollable (a captured tree).
    pub fn watch_attrs(&mut self, paths: &[PathBuf]) {
        if !self.pollable {
            return;
        }
        self.attrs.retain(|path, _| paths.contains(path));
        for path in paths {
            if self.attrs.contains_key(path) {
                continue;
            }
            // Best effort: a member that left between the look and here has
            // no file, and the next look reports it.
            if let Ok(mut file) = File::open(path) {
                if rearm(&mut file).is_ok() {
                    self.attrs.insert(path.clone(), file);
                }
            }
        }
    }

    /// The attribute files being polled besides mdstat.
    pub fn watched_attrs(&self) -> Vec<&Path> {
        self.attrs.keys().map(PathBuf::as_path).collect()
    }

    /// Whether waits are event-driven (true on procfs).
    pub fn is_pollable(&self) -> bool {
        self.pollable
    }

    /// Block until md reports an event or `timeout` passes. Returns whether
    /// an event woke it. An interrupted wait (a signal) returns early with
    /// `false`; callers loop and look again either way.
    pub fn wait(&mut self, timeout: Duration) -> Result<bool> {
        if !self.pollable {
            std::thread::sleep(timeout);
            return Ok(false);
        }
        let wanted = PollFlags::POLLPRI | PollFlags::POLLERR;
        let revents: Vec<PollFlags> = {
            let mut fds = vec![PollFd::new(self.file.as_fd(), wanted)];
            fds.extend(self.attrs.values().map(|f| PollFd::new(f.as_fd(), wanted)));
            let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, timeout) {
                Ok(_) => fds
                    .iter()
                    .map(|fd| fd.revents().unwrap_or(PollFlags::empty()))
                    .collect(),
                Err(Errno::EINTR) => return Ok(false),
                Err(err) => bail!("cannot poll `{}`: {err}", self.path.display()),
            }
        };
        let mdstat = revents.first().copied().unwrap_or(PollFlags::empty());
        if mdstat.contains(PollFlags::POLLNVAL) {
            bail!(
                "cannot poll `{}`: file descriptor is not open",
                self.path.display()
            );
        }
        let mut woke = false;
        if mdstat.intersects(wanted) {
            rearm(&mut self.file)
                .with_context(|| format!("cannot read `{}`", self.path.display()))?;
            woke = true;
        }
        let mut gone = Vec::new();
        for ((path, file), events) in self.attrs.iter_mut().zip(revents.iter().skip(1)) {
            if events.intersects(wanted) {
                woke = true;
                // An attribute that cannot be read again (its member left)
                // is dropped; the look that follows says what happened.
                if rearm(file).is_err() {
                    gone.push(path.clone());
                }
            } else if events.contains(PollFlags::POLLNVAL) {
                gone.push(path.clone());
            }
        }
        for path in gone {
            self.attrs.remove(&path);
        }
        Ok(woke)
    }
}

/// Read the whole file from offset 0: the kernel latches the event count
/// when it generates the text, which re-arms the next poll.
fn rearm(file: &mut File) -> std::io::Result<()> {
    let mut sink = Vec::with_capacity(4096);
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut sink))
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_file_is_not_pollable_and_waits_without_spinning() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("mdstat");
        std::fs::write(&path, "Personalities : \nunused devices: <none>\n").unwrap();
        let mut watch = MdstatWatch::open(&path).unwrap();
        assert!(!watch.is_pollable());
        assert!(!watch.wait(Duration::ZERO).unwrap());
    }

    #[test]
    fn missing_mdstat_is_an_error_naming_it() {
        let err = MdstatWatch::open(Path::new("/nonexistent/proc/mdstat")).unwrap_err();
        assert!(format!("{err:#}").contains("cannot open `/nonexistent/proc/mdstat`"));
    }

    #[test]
    fn attributes_are_not_watched_in_a_captured_tree() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("mdstat");
        let state = dir.path().join("state");
        std::fs::write(&path, "Personalities : \nunused devices: <none>\n").unwrap();
        std::fs::write(&state, "in_sync\n").unwrap();
        let mut watch = MdstatWatch::open(&path).unwrap();
        watch.watch_attrs(std::slice::from_ref(&state));
        assert!(watch.watched_attrs().is_empty());
    }

    #[test]
    fn attributes_are_opened_once_and_dropped_when_unlisted() {
        // Any procfs file is pollable; sysfs itself needs md to signal.
        let mut watch = MdstatWatch::open(Path::new("/proc/self/stat")).unwrap();
        let a = PathBuf::from("/proc/self/status");
        let missing = PathBuf::from("/nonexistent/dev-sdb/state");
        watch.watch_attrs(&[a.clone(), missing.clone()]);
        assert_eq!(watch.watched_attrs(), [a.as_path()]);
        watch.watch_attrs(&[]);
        assert!(watch.watched_attrs().is_empty());
        assert!(!watch.wait(Duration::ZERO).unwrap());
    }

    #[test]
    fn procfs_is_pollable() {
        // /proc/mdstat needs the md module; any procfs file shows the mode.
        let watch = MdstatWatch::open(Path::new("/proc/self/stat")).unwrap();
        assert!(watch.is_pollable());
    }
}
