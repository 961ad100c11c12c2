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
//! Kernel uevents (`backend/disk/uevent.rs`) wake it too, when the watch
//! is given a source: a drive that vanishes raises no md event (md notices
//! only at its next I/O), but the kernel announces its `remove`. So does a
//! finished background SMART read (the caller's `extra` descriptor), so its
//! verdict is judged at once rather than at the next timed poll.
//!
//! A captured tree's mdstat is a plain file, which never signals: there the
//! wait polls only the uevent source and `extra`, or is a plain sleep for
//! the timeout when there are none, so it cannot spin.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::statfs::{PROC_SUPER_MAGIC, fstatfs};

use crate::backend::disk::uevent::{Heard, UeventSource};

/// What ended a wait.
#[derive(Debug, Default)]
pub struct Wake {
    /// mdstat or a watched attribute signalled.
    pub md: bool,
    /// The `extra` descriptor was readable.
    pub extra: bool,
    /// Uevents read during this wait.
    pub heard: Heard,
}

/// An armed /proc/mdstat.
#[derive(Debug)]
pub struct MdstatWatch {
    path: PathBuf,
    file: File,
    /// False for a plain file (a fixture tree): poll means nothing there.
    pollable: bool,
    /// Armed sysfs attributes, by path.
    attrs: BTreeMap<PathBuf, File>,
    /// Kernel uevents, when given.
    uevents: Option<Box<dyn UeventSource>>,
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
            uevents: None,
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

    /// Wake on this source's uevents too from now on.
    pub fn set_uevents(&mut self, source: Box<dyn UeventSource>) {
        self.uevents = Some(source);
    }

    /// Whether uevents are being listened to.
    pub fn has_uevents(&self) -> bool {
        self.uevents.is_some()
    }

    /// The attribute files being polled besides mdstat.
    pub fn watched_attrs(&self) -> Vec<&Path> {
        self.attrs.keys().map(PathBuf::as_path).collect()
    }

    /// Whether waits are event-driven (true on procfs).
    pub fn is_pollable(&self) -> bool {
        self.pollable
    }

    /// Block until md reports an event, a uevent arrives, `extra` becomes
    /// readable or `timeout` passes. An interrupted wait (a signal) returns
    /// early with nothing set; callers loop and look again either way.
    /// `extra` is only polled, never read: its owner drains it.
    pub fn wait(&mut self, timeout: Duration, extra: Option<BorrowedFd<'_>>) -> Result<Wake> {
        let mut wake = Wake::default();
        if !self.pollable && self.uevents.is_none() && extra.is_none() {
            std::thread::sleep(timeout);
            return Ok(wake);
        }
        let wanted = PollFlags::POLLPRI | PollFlags::POLLERR;
        let readable = PollFlags::POLLIN;
        let md_fds = if self.pollable {
            1 + self.attrs.len()
        } else {
            0
        };
        let (revents, extra_ready, uevent_ready) = {
            let mut fds = Vec::with_capacity(md_fds + 2);
            if self.pollable {
                fds.push(PollFd::new(self.file.as_fd(), wanted));
                fds.extend(self.attrs.values().map(|f| PollFd::new(f.as_fd(), wanted)));
            }
            if let Some(fd) = extra {
                fds.push(PollFd::new(fd, readable));
            }
            if let Some(source) = &self.uevents {
                fds.push(PollFd::new(source.fd(), readable));
            }
            let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(Errno::EINTR) => return Ok(wake),
                Err(err) => bail!("cannot poll `{}`: {err}", self.path.display()),
            }
            let all: Vec<PollFlags> = fds
                .iter()
                .map(|fd| fd.revents().unwrap_or(PollFlags::empty()))
                .collect();
            let mut rest = all[md_fds..].iter();
            let extra_ready = extra.is_some() && rest.next().is_some_and(|r| !r.is_empty());
            let uevent_ready = self.uevents.is_some() && rest.next().is_some_and(|r| !r.is_empty());
            (all[..md_fds].to_vec(), extra_ready, uevent_ready)
        };
        wake.extra = extra_ready;
        if uevent_ready {
            if let Some(source) = &mut self.uevents {
                wake.heard = source.drain();
            }
        }
        if !self.pollable {
            return Ok(wake);
        }
        let mdstat = revents.first().copied().unwrap_or(PollFlags::empty());
        if mdstat.contains(PollFlags::POLLNVAL) {
            bail!(
                "cannot poll `{}`: file descriptor is not open",
                self.path.display()
            );
        }
        if mdstat.intersects(wanted) {
            rearm(&mut self.file)
                .with_context(|| format!("cannot read `{}`", self.path.display()))?;
            wake.md = true;
        }
        let mut gone = Vec::new();
        for ((path, file), events) in self.attrs.iter_mut().zip(revents.iter().skip(1)) {
            if events.intersects(wanted) {
                wake.md = true;
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
        Ok(wake)
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
        assert!(!watch.wait(Duration::ZERO, None).unwrap().md);
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
        assert!(!watch.wait(Duration::ZERO, None).unwrap().md);
    }

    #[test]
    fn a_uevent_ends_the_wait_in_a_captured_tree() {
        use crate::backend::disk::uevent::DatagramUevents;
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("mdstat");
        std::fs::write(&path, "Personalities : \nunused devices: <none>\n").unwrap();
        let mut watch = MdstatWatch::open(&path).unwrap();
        let (source, sender) = DatagramUevents::pair().unwrap();
        watch.set_uevents(Box::new(source));
        sender
            .send(b"remove@/devices/virtual/block/sdb\0ACTION=remove\0DEVPATH=/devices/virtual/block/sdb\0SUBSYSTEM=block\0DEVNAME=sdb\0DEVTYPE=disk\0")
            .unwrap();
        // A day's timeout: only the event can end this wait.
        let wake = watch.wait(Duration::from_secs(86_400), None).unwrap();
        assert_eq!(wake.heard.events.len(), 1);
        assert!(wake.heard.events[0].is_removal());
    }

    #[test]
    fn a_readable_extra_descriptor_ends_the_wait() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("mdstat");
        std::fs::write(&path, "Personalities : \nunused devices: <none>\n").unwrap();
        let mut watch = MdstatWatch::open(&path).unwrap();
        let (rx, tx) = std::os::unix::net::UnixDatagram::pair().unwrap();
        tx.send(b"x").unwrap();
        let wake = watch
            .wait(Duration::from_secs(86_400), Some(rx.as_fd()))
            .unwrap();
        assert!(wake.extra && !wake.md);
    }

    #[test]
    fn procfs_is_pollable() {
        // /proc/mdstat needs the md module; any procfs file shows the mode.
        let watch = MdstatWatch::open(Path::new("/proc/self/stat")).unwrap();
        assert!(watch.is_pollable());
    }
}
