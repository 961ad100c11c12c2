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
//! A captured tree's mdstat is a plain file, which never signals: there the
//! wait is a plain sleep for the timeout, so it cannot spin.

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
        };
        watch.rearm()?;
        Ok(watch)
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
        let revents = {
            let mut fds = [PollFd::new(
                self.file.as_fd(),
                PollFlags::POLLPRI | PollFlags::POLLERR,
            )];
            let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, timeout) {
                Ok(_) => fds[0].revents().unwrap_or(PollFlags::empty()),
                Err(Errno::EINTR) => return Ok(false),
                Err(err) => bail!("cannot poll `{}`: {err}", self.path.display()),
            }
        };
        if revents.contains(PollFlags::POLLNVAL) {
            bail!(
                "cannot poll `{}`: file descriptor is not open",
                self.path.display()
            );
        }
        if revents.intersects(PollFlags::POLLPRI | PollFlags::POLLERR) {
            self.rearm()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Read the whole file from offset 0: the kernel latches the event count
    /// when it generates the header, which re-arms the next poll.
    fn rearm(&mut self) -> Result<()> {
        let mut sink = Vec::with_capacity(4096);
        self.file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.read_to_end(&mut sink))
            .with_context(|| format!("cannot read `{}`", self.path.display()))?;
        Ok(())
    }
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
    fn procfs_is_pollable() {
        // /proc/mdstat needs the md module; any procfs file shows the mode.
        let watch = MdstatWatch::open(Path::new("/proc/self/stat")).unwrap();
        assert!(watch.is_pollable());
    }
}
