//! Exit codes: a small table, documented in `--help` and the README.

/// How swapguard ends. The numbers are part of the interface (scripts and
/// CI branch on them, journals record them): never renumber one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Code {
    Success = 0,
    /// An error that is not one of the others (I/O, a tool could not start).
    Failure = 1,
    /// Bad command line, or a runbook/scenario/answers file with errors.
    Usage = 2,
    /// The guard stopped the run: a survivor degraded, the wrong drive
    /// moved, health could not be read.
    Halted = 3,
    /// Preflight refused to start; nothing was touched.
    Refused = 4,
    /// The technician said no or typed a wrong confirmation.
    Aborted = 5,
    /// Another run holds the array's lock.
    Locked = 6,
    /// A dry-run's outcome differed from the scenario's `[expect]`; for
    /// `swapguard test`, also a bad-hardware variant (`--mutate`) that was
    /// not halted in time.
    ExpectationFailed = 7,
    /// A physical step's timeout came without the expected change and no
    /// one at a terminal chose to keep waiting; `swapguard resume`
    /// continues.
    TimedOut = 8,
    /// Ctrl-C, SIGTERM or SIGHUP.
    Interrupted = 130,
}

impl Code {
    /// Every code, in the order of the tables.
    pub const ALL: [Code; 10] = [
        Code::Success,
        Code::Failure,
        Code::Usage,
        Code::Halted,
        Code::Refused,
        Code::Aborted,
        Code::Locked,
        Code::ExpectationFailed,
        Code::TimedOut,
        Code::Interrupted,
    ];

    /// The process exit status.
    pub const fn number(self) -> i32 {
        self as i32
    }
}

impl From<Code> for i32 {
    fn from(code: Code) -> i32 {
        code.number()
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_keeps_its_number_and_is_in_the_help_table() {
        let numbers: Vec<i32> = Code::ALL.iter().map(|c| c.number()).collect();
        assert_eq!(numbers, [0, 1, 2, 3, 4, 5, 6, 7, 8, 130]);
        for n in numbers {
            assert!(
                TABLE
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("{n} "))),
                "{n}"
            );
        }
    }
}
