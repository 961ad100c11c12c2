//! Exit codes: a small table, documented in `--help` and the README.

use crate::engine::Outcome;

pub const SUCCESS: i32 = 0;
/// An error that is not one of the others (I/O, a tool could not start).
pub const FAILURE: i32 = 1;
/// Bad command line, or a runbook/scenario/answers file with errors.
pub const USAGE: i32 = 2;
/// The guard stopped the run: a survivor degraded, the wrong drive moved,
/// health could not be read.
pub const HALTED: i32 = 3;
/// Preflight refused to start; nothing was touched.
pub const REFUSED: i32 = 4;
/// The technician said no or typed a wrong confirmation.
pub const ABORTED: i32 = 5;
/// Another run holds the array's lock.
pub const LOCKED: i32 = 6;
/// A dry-run's outcome differed from the scenario's `[expect]`; for
/// `swapguard test`, also a bad-hardware variant (`--mutate`) that was not
/// halted in time.
pub const EXPECTATION_FAILED: i32 = 7;
/// A physical step's timeout came without the expected change and no one
/// at a terminal chose to keep waiting; `swapguard resume` continues.
pub const TIMED_OUT: i32 = 8;
/// Ctrl-C, SIGTERM or SIGHUP.
pub const INTERRUPTED: i32 = 130;

/// The table as printed in `--help`.
pub const TABLE: &str = "\
Exit codes:
  0    success
  1    error (I/O, a tool could not start, journal not writable)
  2    usage error, or a runbook/scenario/answers file with errors
  3    halted by the guard (a survivor degraded, the wrong drive moved,
       health could not be read)
  4    refused by preflight (nothing was touched)
  5    aborted by the operator (answered no, typed a wrong confirmation)
  6    another run holds the array's lock
  7    dry-run or test: an outcome differed from the scenario's [expect];
       test --mutate: a bad-hardware variant was not halted in time
  8    timed out: a physical step's change was not seen in time (resumable)
  130  interrupted (Ctrl-C, SIGTERM, SIGHUP)";

pub fn for_outcome(outcome: &Outcome) -> i32 {
    match outcome {
        Outcome::Completed => SUCCESS,
        Outcome::Halted(_) => HALTED,
        Outcome::Refused(_) => REFUSED,
        Outcome::Aborted { .. } => ABORTED,
        Outcome::TimedOut { .. } => TIMED_OUT,
        Outcome::Interrupted { .. } => INTERRUPTED,
    }
}
