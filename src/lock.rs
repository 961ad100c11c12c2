//! One run per array at a time.
//!
//! Two technicians (or a technician and a forgotten tmux session) driving
//! the same array at once would each see the other's actions as a survivor
//! degrading, or worse, not see them at all. The lock is an `flock` on a
//! file per array; the kernel releases it when the process dies, so a crash
//! never leaves a stale lock behind.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// The lock is held by another run.
#[derive(Debug)]
pub struct LockHeld {
    pub array: String,
    pub path: PathBuf,
    /// What the holder wrote: its pid and start time.
    pub holder: String,
}

impl std::fmt::Display for LockHeld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "another swapguard run holds the lock for `{}` ({}); wait for it to finish or stop it first (lock file `{}`)",
            self.array,
            self.holder.trim(),
            self.path.display()
        )
    }
}

impl std::error::Error for LockHeld {}

/// Held for the life of a run; dropping it releases the lock.
pub struct ArrayLock {
    _flock: Flock<std::fs::File>,
}

impl std::fmt::Debug for ArrayLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArrayLock")
    }
}

/// Take the lock for `array` under `<state_dir>/locks/`. `holder` is written
/// into the file for whoever finds it held (pid and start time).
pub fn acquire(state_dir: &Path, array: &str, holder: &str) -> Result<ArrayLock> {
    // The array name becomes a file name: it must be one plain component
    // (callers canonicalise and validate it first; this is the last line).
    crate::state::component("array name", array).map_err(crate::state::Unsafe)?;
    let state = crate::state::StateDir::init(state_dir)?;
    let (file, path) = state.lock_file(Some(crate::state::LOCKS), &format!("{array}.lock"))?;
    let mut flock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(flock) => flock,
        Err((mut file, Errno::EWOULDBLOCK)) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(LockHeld {
                array: array.to_string(),
                path,
                holder: if holder.trim().is_empty() {
                    "holder unknown".into()
                } else {
                    holder
                },
            }
            .into());
        }
        Err((_, errno)) => {
            return Err(errno).with_context(|| format!("cannot lock `{}`", path.display()));
        }
    };
    flock
        .set_len(0)
        .and_then(|()| flock.seek(SeekFrom::Start(0)).map(|_| ()))
        .and_then(|()| flock.write_all(holder.as_bytes()))
        .and_then(|()| flock.sync_data())
        .with_context(|| format!("cannot write lock file `{}`", path.display()))?;
    Ok(ArrayLock { _flock: flock })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn second_lock_is_refused_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path(), "md0", "pid 4242 started 2026-01-01T00:00:00Z").unwrap();
        let err = acquire(dir.path(), "md0", "pid 1").unwrap_err();
        let held = err.downcast_ref::<LockHeld>().expect("typed lock error");
        assert!(
            held.to_string()
                .contains("pid 4242 started 2026-01-01T00:00:00Z"),
            "{held}"
        );
        let mode = std::fs::metadata(dir.path().join("locks/md0.lock"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Other arrays are independent.
        let _other = acquire(dir.path(), "md1", "pid 2").unwrap();
        drop(first);
        acquire(dir.path(), "md0", "pid 3").unwrap();
    }
}
