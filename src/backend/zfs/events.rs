//! Waiting for ZFS events: `zpool events -f -H` followed as a long-running
//! child (started once, in its own process group, its output capped by the
//! bounded runner, killed when the backend is dropped). A wait returns as
//! soon as the follower has printed anything new: ZFS posts an event the
//! moment it sees a device removed, faulted or a resilver start or end
//! (`resource.fs.zfs.removed`, `statechange`, `sysevent.fs.zfs.resilver_*`).
//!
//! What an event says is never trusted: it only wakes the watch loop,
//! which takes a fresh `zpool status` look. The follower prints the events
//! ZFS still holds when it starts, so the first wait may return at once: an
//! early look is harmless. When the follower cannot start or ends, the
//! wait sleeps its whole timeout (the run's `watch_poll`): the poll is the
//! fallback, never silence.

use std::time::{Duration, Instant};

use crate::backend::Running;
use crate::backend::process::{ProcessRunner, Spawned};

/// How often a wait looks whether the follower printed something.
const TICK: Duration = Duration::from_millis(10);
/// The follower runs for the whole run: a timeout it never reaches.
const FOREVER: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The follower's argv after the program.
pub const ARGS: [&str; 3] = ["events", "-f", "-H"];

/// The follower, or why there is none.
pub enum Follower {
    Running {
        child: Box<Spawned>,
        seen: u64,
    },
    /// It could not start or it ended: the reason, said once.
    Gone {
        why: String,
        said: bool,
    },
}

impl Follower {
    pub fn start(processes: &ProcessRunner, zpool: &str) -> Follower {
        let mut argv = vec![zpool.to_string()];
        argv.extend(ARGS.iter().map(|a| a.to_string()));
        match processes.start(&argv, FOREVER) {
            Ok(child) => Follower::Running {
                child: Box::new(child),
                seen: 0,
            },
            Err(e) => Follower::Gone {
                why: format!("cannot follow `{}`: {e:#}", argv.join(" ")),
                said: false,
            },
        }
    }

    /// Block until the follower prints something new or `timeout` passes.
    pub fn wait(&mut self, timeout: Duration) {
        let until = Instant::now() + timeout;
        loop {
            if let Follower::Running { child, seen } = self {
                let now = child.stdout_bytes();
                if now > *seen {
                    *seen = now;
                    return;
                }
                match child.try_finish() {
                    Ok(None) => {}
                    Ok(Some(out)) => {
                        let why = format!(
                            "`zpool events -f` ended (exit {}{}): ZFS events are no longer followed",
                            out.code.map_or("by a signal".into(), |c| c.to_string()),
                            match out.stderr.trim() {
                                "" => String::new(),
                                e => format!(", {e}"),
                            }
                        );
                        *self = Follower::Gone { why, said: false };
                    }
                    Err(e) => {
                        *self = Follower::Gone {
                            why: format!("`zpool events -f` cannot be watched: {e:#}"),
                            said: false,
                        };
                    }
                }
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match self {
                Follower::Running { .. } => std::thread::sleep(TICK.min(left)),
                Follower::Gone { .. } => {
                    std::thread::sleep(left);
                    return;
                }
            }
        }
    }

    /// Why there is no follower, the first time it is asked after it was
    /// lost; `None` afterwards and while it runs.
    pub fn news(&mut self) -> Option<String> {
        match self {
            Follower::Gone { why, said } if !*said => {
                *said = true;
                Some(why.clone())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A fake `zpool` that runs `body` whatever its arguments.
    fn fake(dir: &std::path::Path, body: &str) -> String {
        let path = dir.join("zpool");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    #[test]
    fn an_event_line_wakes_the_wait_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let zpool = fake(
            dir.path(),
            "sleep 0.3; echo 'Nov 28 2026 07:37:39.732000000 resource.fs.zfs.removed'; exec sleep 600",
        );
        let mut f = Follower::start(&ProcessRunner::default(), &zpool);
        let t = Instant::now();
        f.wait(Duration::from_secs(20));
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert!(
            t.elapsed() >= Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(f.news(), None);
        // Nothing new: the next wait lasts its timeout.
        let t = Instant::now();
        f.wait(Duration::from_millis(300));
        assert!(t.elapsed() >= Duration::from_millis(300));
        let pid = match &f {
            Follower::Running { child, .. } => child.pgid(),
            Follower::Gone { why, .. } => panic!("{why}"),
        };
        drop(f);
        // Killed on drop, with its process group.
        assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err());
    }

    #[test]
    fn a_follower_that_ends_is_said_once_and_the_wait_becomes_a_poll() {
        let dir = tempfile::tempdir().unwrap();
        let zpool = fake(dir.path(), "echo 'events not supported' >&2; exit 1");
        let mut f = Follower::start(&ProcessRunner::default(), &zpool);
        std::thread::sleep(Duration::from_millis(200));
        let t = Instant::now();
        f.wait(Duration::from_millis(400));
        assert!(
            t.elapsed() >= Duration::from_millis(400),
            "{:?}",
            t.elapsed()
        );
        let news = f.news().expect("said once");
        assert!(
            news.contains("exit 1") && news.contains("events not supported"),
            "{news}"
        );
        assert_eq!(f.news(), None);
        let t = Instant::now();
        f.wait(Duration::from_millis(200));
        assert!(t.elapsed() >= Duration::from_millis(200));

        let mut f = Follower::start(&ProcessRunner::default(), "/nonexistent/zpool");
        f.wait(Duration::from_millis(50));
        assert!(f.news().unwrap().contains("cannot follow"));
    }
}
