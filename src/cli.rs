//! The command line. clap stops here: everything below sees a plain
//! [`Config`].

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::exit;

const RUN_EXAMPLES: &str = "\
Examples:
  swapguard run runbooks/md-replace-member.toml --array md0 --target sdb
  swapguard run runbooks/md-replace-member.toml --array md0 --target S3Z1NB0K100002
  swapguard run runbooks/md-replace-member.toml --array md0 --target sdb --answers answers.toml";

#[derive(Parser, Debug)]
#[command(
    name = "swapguard",
    version,
    about = "A guarded drive swap for RAID arrays: one step at a time, halting the moment a surviving drive degrades",
    after_help = exit::TABLE
)]
struct Cli {
    /// Where journals and locks live.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "/var/lib/swapguard"
    )]
    state_dir: PathBuf,
    /// Root under which /proc, /sys and /dev are read (a captured tree in tests).
    #[arg(long, global = true, value_name = "DIR", default_value = "/")]
    sysroot: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Walk a technician through a runbook on a real array.
    #[command(after_help = format!("{RUN_EXAMPLES}\n\n{}", exit::TABLE))]
    Run {
        /// The runbook file.
        runbook: PathBuf,
        /// The array, e.g. `md0`.
        #[arg(long)]
        array: Option<String>,
        /// The member to replace: kernel name, serial, WWN or bay.
        #[arg(long)]
        target: Option<String>,
        /// Other runbook parameters as NAME=VALUE.
        #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Answer questions from this file instead of a terminal (TOML:
        /// `step-id = "yes"`, `add = "0003"`).
        #[arg(long, value_name = "FILE")]
        answers: Option<PathBuf>,
    },
    /// Check runbook files and report every problem with its line and column.
    #[command(after_help = "Examples:\n  swapguard lint runbooks/*.toml")]
    Lint {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Walk a runbook against a simulated array described by a scenario file,
    /// on the same engine as a real run, and check the scenario's expectation.
    #[command(
        name = "dry-run",
        after_help = format!("Examples:\n  swapguard dry-run runbooks/md-replace-member.toml --scenario runbooks/scenarios/md-replace-member/healthy.toml\n\n{}", exit::TABLE)
    )]
    DryRun {
        runbook: PathBuf,
        #[arg(long, value_name = "FILE")]
        scenario: PathBuf,
        /// Exit with the run's own code (3 halted, 4 refused, ...) instead of
        /// checking the scenario's [expect].
        #[arg(long)]
        exit_with_outcome: bool,
    },
    /// Show every md array and its drives.
    #[command(
        after_help = "Examples:\n  swapguard status\n  swapguard status --json | jq '.arrays[0].drives'"
    )]
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Skip SMART (faster; no smartctl needed).
        #[arg(long)]
        no_smart: bool,
    },
    /// A guided swap of a simulated mirror, including a halt, for newcomers.
    Demo,
    /// List, add or release quarantined drives (drives nothing may write to).
    #[command(
        subcommand,
        after_help = "Examples:\n  swapguard quarantine list\n  swapguard quarantine add S3Z1NB0K100002 --reason \"dropped on the floor\"\n  swapguard quarantine release S3Z1NB0K100002 --reason \"vendor tested it: RMA 4711\""
    )]
    Quarantine(QuarantineCmd),
}

#[derive(Subcommand, Debug)]
enum QuarantineCmd {
    /// Show the quarantined drives: serial, WWN, when, by which run, why.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Include released drives.
        #[arg(long)]
        all: bool,
    },
    /// Quarantine a drive by hand, by its serial.
    Add {
        serial: String,
        /// Why it must not be used (recorded).
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Its WWN too, when known.
        #[arg(long)]
        wwn: Option<String>,
    },
    /// Allow a quarantined drive to be used again (journaled).
    Release {
        /// Its serial or WWN.
        serial: String,
        /// Why it may be used again (required, recorded).
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{text}` is not NAME=VALUE")),
    }
}

/// What to do, free of clap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub state_dir: PathBuf,
    pub sysroot: PathBuf,
    pub command: Command,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Run {
        runbook: PathBuf,
        params: BTreeMap<String, String>,
        answers: Option<PathBuf>,
    },
    Lint {
        files: Vec<PathBuf>,
    },
    DryRun {
        runbook: PathBuf,
        scenario: PathBuf,
        exit_with_outcome: bool,
    },
    Status {
        json: bool,
        smart: bool,
    },
    Demo,
    Quarantine(QuarantineAction),
}

/// `swapguard quarantine ...`
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuarantineAction {
    List {
        json: bool,
        all: bool,
    },
    Add {
        serial: String,
        wwn: Option<String>,
        reason: String,
    },
    Release {
        serial: String,
        reason: String,
    },
}

/// Parse arguments. `Err` carries clap's own rendering (help and version
/// included) and whether it is an error.
pub fn parse<I, T>(args: I) -> Result<Config, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::try_parse_from(args)?;
    let command = match cli.command {
        Cmd::Run {
            runbook,
            array,
            target,
            params,
            answers,
        } => {
            let mut map: BTreeMap<String, String> = params.into_iter().collect();
            if let Some(a) = array {
                map.insert("array".into(), a);
            }
            if let Some(t) = target {
                map.insert("target".into(), t);
            }
            Command::Run {
                runbook,
                params: map,
                answers,
            }
        }
        Cmd::Lint { files } => Command::Lint { files },
        Cmd::DryRun {
            runbook,
            scenario,
            exit_with_outcome,
        } => Command::DryRun {
            runbook,
            scenario,
            exit_with_outcome,
        },
        Cmd::Status { json, no_smart } => Command::Status {
            json,
            smart: !no_smart,
        },
        Cmd::Demo => Command::Demo,
        Cmd::Quarantine(q) => Command::Quarantine(match q {
            QuarantineCmd::List { json, all } => QuarantineAction::List { json, all },
            QuarantineCmd::Add {
                serial,
                reason,
                wwn,
            } => QuarantineAction::Add {
                serial,
                wwn,
                reason,
            },
            QuarantineCmd::Release { serial, reason } => {
                QuarantineAction::Release { serial, reason }
            }
        }),
    };
    Ok(Config {
        state_dir: cli.state_dir,
        sysroot: cli.sysroot,
        command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_collects_params() {
        let c = parse([
            "swapguard",
            "run",
            "rb.toml",
            "--array",
            "md0",
            "--target",
            "sdb",
            "--param",
            "ticket=CHG-1",
        ])
        .unwrap();
        assert_eq!(
            c.command,
            Command::Run {
                runbook: "rb.toml".into(),
                params: BTreeMap::from([
                    ("array".into(), "md0".into()),
                    ("target".into(), "sdb".into()),
                    ("ticket".into(), "CHG-1".into()),
                ]),
                answers: None,
            }
        );
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/swapguard"));
    }

    #[test]
    fn bad_param_is_a_usage_error() {
        let err = parse(["swapguard", "run", "rb.toml", "--param", "novalue"]).unwrap_err();
        assert!(err.to_string().contains("`novalue` is not NAME=VALUE"));
    }
}
