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
