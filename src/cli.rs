//! The command line. clap stops here: everything below sees a plain
//! [`Config`].

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use crate::exit;
use crate::output::ColorChoice;

const TOP_EXAMPLES: &str = "\
Examples:
  swapguard demo
  swapguard lint runbooks/
  swapguard test runbooks/
  swapguard run runbooks/md-replace-member.toml --array md0 --target sdb
  swapguard resume";

const RUN_EXAMPLES: &str = "\
Examples:
  swapguard run runbooks/md-replace-member.toml --array md0 --target sdb
  swapguard run runbooks/md-replace-member.toml --array md0 --target S3Z1NB0K100002
  swapguard run runbooks/md-replace-member.toml --array md0 --target sdb --answers answers.toml";

const TEST_EXAMPLES: &str = "\
Examples:
  swapguard test                                   everything under runbooks/
  swapguard test runbooks/md-replace-member.toml   one runbook and its scenarios
  swapguard test --mutate --junit report.xml       also the bad-hardware variants
  swapguard test --json | jq '.summary'

Layout: runbooks/NAME.toml, its scenarios in runbooks/scenarios/NAME/*.toml;
a scenario's `runbook =` key says which runbook it proves. Rules and CI
snippets: docs/ci.md.";

const PLAN_EXAMPLES: &str = "\
Examples:
  swapguard plan runbooks/md-replace-member.toml > checklist.md
  swapguard plan runbooks/md-replace-hot.toml | pandoc -o checklist.pdf";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  swapguard completions bash > /etc/bash_completion.d/swapguard
  swapguard completions zsh > \"${fpath[1]}/_swapguard\"
  swapguard completions fish > ~/.config/fish/completions/swapguard.fish";

const MAN_EXAMPLES: &str = "\
Examples:
  swapguard man | man -l -
  swapguard man --dir /usr/local/share/man/man1";

/// Where journals and locks live unless `--state-dir` says otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/swapguard";

/// `0.1.0 (commit 1a2b3c4)`: the commit is set by build.rs.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SWAPGUARD_COMMIT"),
    ")"
);

#[derive(Parser, Debug)]
#[command(
    name = "swapguard",
    version = VERSION,
    about = "A guarded drive swap for RAID arrays: one step at a time, halting the moment a surviving drive degrades",
    after_help = format!("{TOP_EXAMPLES}\n\n{}", exit::TABLE)
)]
struct Cli {
    /// Where journals and locks live.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = DEFAULT_STATE_DIR
    )]
    state_dir: PathBuf,
    /// Root under which /proc, /sys and /dev are read (a captured tree in tests).
    #[arg(long, global = true, value_name = "DIR", default_value = "/")]
    sysroot: PathBuf,
    /// When to colour output: `auto` (at a terminal, unless `NO_COLOR` is
    /// set or `TERM` is `dumb`), `always` (even into a pipe) or `never`.
    #[arg(
        long,
        global = true,
        value_name = "WHEN",
        value_enum,
        default_value_t = ColorWhen::Auto
    )]
    color: ColorWhen,
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
        /// The array: `md0`, `/dev/md0` or `/dev/md/NAME` (one array, one
        /// lock: it is resolved to the kernel's name first).
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
        /// Start a new session although the array has an unfinished one
        /// (crashed, killed, interrupted); the old one is journaled as
        /// abandoned and can no longer be resumed. Without it, `run`
        /// refuses and shows the `swapguard resume` command instead.
        #[arg(long)]
        new_session: bool,
    },
    /// Check runbook files and report every problem with its line and column.
    #[command(
        after_help = "Examples:\n  swapguard lint runbooks/md-replace-member.toml\n  swapguard lint runbooks/\n  swapguard lint runbooks/*.toml"
    )]
    Lint {
        /// Runbook files, or folders: every runbook (`*.toml` without a
        /// `[scenario]` table) directly in a folder is linted.
        #[arg(required = true, value_name = "PATH")]
        files: Vec<PathBuf>,
    },
    /// Walk a runbook against a simulated array described by a scenario file,
    /// on the same engine as a real run, and check the scenario's expectation.
    #[command(
        name = "dry-run",
        after_help = format!("Examples:\n  swapguard dry-run --scenario runbooks/scenarios/md-replace-member/healthy.toml\n  swapguard dry-run runbooks/md-replace-member.toml --scenario runbooks/scenarios/md-replace-member/healthy.toml\n  swapguard dry-run --scenario runbooks/scenarios/md-replace-member/survivor-write-errors-during-pull.toml --exit-with-outcome\n\n{}", exit::TABLE)
    )]
    DryRun {
        /// The runbook to walk [default: the one the scenario names in
        /// `[scenario] runbook`]; given, it must be that same file.
        runbook: Option<PathBuf>,
        /// Scenario file: the simulated array, what happens during the run,
        /// the technician's answers and the outcome expected.
        #[arg(long, value_name = "FILE")]
        scenario: PathBuf,
        /// Exit with the run's own code (3 halted, 4 refused, ...) instead of
        /// checking the scenario's [expect].
        #[arg(long)]
        exit_with_outcome: bool,
    },
    /// Show every md array and its drives, or one array.
    #[command(
        after_help = "Examples:\n  swapguard status\n  swapguard status md0\n  swapguard status --json | jq '.arrays[0].drives'\n  swapguard status --color always | less -R"
    )]
    Status {
        /// Show only this array: `md0`, `/dev/md0` or `/dev/md/NAME`.
        array: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Skip SMART (faster; no smartctl needed).
        #[arg(long)]
        no_smart: bool,
        /// Print metrics in the Prometheus text exposition format.
        #[arg(long, conflicts_with = "json")]
        prometheus: bool,
        /// Write the metrics into DIR/swapguard.prom (atomically, for
        /// node_exporter's textfile collector) instead of printing them.
        #[arg(long, value_name = "DIR", conflicts_with = "json")]
        textfile: Option<PathBuf>,
    },
    /// Follow a session's journal read-only, as the technician sees it
    /// (for a lead on another terminal); ends with the run's exit code.
    #[command(
        after_help = "Examples:\n  swapguard watch\n  swapguard watch --array md0\n  swapguard watch md0-20260101T000000000Z-4242 --json | jq -c '.event'"
    )]
    Watch {
        /// The session (journal name) [default: the newest, of `--array`
        /// when given].
        session: Option<String>,
        /// Follow the newest session of this array.
        #[arg(long, conflicts_with = "session")]
        array: Option<String>,
        /// Print each journal entry as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Run every preflight check of a runbook against the real array and
    /// touch nothing: exit 0 when the swap is safe to start, 4 when it
    /// would be refused (with the reasons).
    #[command(
        after_help = format!("Examples:\n  swapguard preflight runbooks/md-replace-member.toml --array md0 --target sdb\n  swapguard preflight runbooks/md-replace-member.toml --array md0 --target sdb --json\n\n{}", exit::TABLE)
    )]
    Preflight {
        /// The runbook file.
        runbook: PathBuf,
        /// The array: `md0`, `/dev/md0` or `/dev/md/NAME`.
        #[arg(long)]
        array: Option<String>,
        /// The member to replace: kernel name, serial, WWN or bay.
        #[arg(long)]
        target: Option<String>,
        /// Other runbook parameters as NAME=VALUE.
        #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Machine-readable verdict.
        #[arg(long)]
        json: bool,
    },
    /// A guided swap of a simulated mirror, including a halt, for newcomers.
    #[command(after_help = "Examples:\n  swapguard demo")]
    Demo,
    /// Continue a run that stopped without finishing (crash, closed
    /// terminal, Ctrl-C): look at the array first, then go on from the first
    /// step not completed.
    #[command(after_help = format!("{RESUME_EXAMPLES}\n\n{}", exit::TABLE))]
    Resume {
        /// The session (journal name); default: the one unfinished session,
        /// for `--array` when given.
        session: Option<String>,
        /// Pick the unfinished session of this array.
        #[arg(long)]
        array: Option<String>,
        /// Use this runbook file instead of the path journaled at the start.
        #[arg(long, value_name = "FILE")]
        runbook: Option<PathBuf>,
        /// Go on although the runbook file changed since the run started;
        /// the reason is recorded in the journal.
        #[arg(long, value_name = "REASON")]
        runbook_changed: Option<String>,
        /// Answer questions from this file instead of a terminal.
        #[arg(long, value_name = "FILE")]
        answers: Option<PathBuf>,
    },
    /// Read session journals.
    #[command(
        subcommand,
        after_help = "Examples:\n  swapguard journal list\n  swapguard journal verify md0-20260101T000000000Z-4242"
    )]
    Journal(JournalCmd),
    /// A Markdown summary of a session for the maintenance ticket.
    #[command(
        after_help = "Examples:\n  swapguard report md0-20260101T000000000Z-4242 > ticket.md\n  swapguard report --file /backup/md0-20260101T000000000Z-4242.jsonl > ticket.md"
    )]
    Report {
        /// The session's name, as `journal list` shows it (a journal under
        /// the state directory's `sessions/`).
        session: String,
        /// SESSION is the path of a journal file kept anywhere (a copy
        /// attached to a ticket, a backup), not a session name.
        #[arg(long)]
        file: bool,
    },
    /// Lint every runbook and dry-run it against every one of its scenarios;
    /// with --mutate, also against bad-hardware variants it must halt on.
    #[command(after_help = format!("{TEST_EXAMPLES}\n\n{}", exit::TABLE))]
    Test {
        /// Runbook files, scenario files or folders of runbooks [default: runbooks]
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Also derive bad-hardware variants of every scenario that completes
        /// (a survivor's counter rises during each step, the wrong drive is
        /// pulled, the new drive is too small, not blank or quarantined) and
        /// require every one to halt or be refused.
        #[arg(long)]
        mutate: bool,
        /// Also write a JUnit XML report to FILE (for GitLab, Jenkins,
        /// GitHub Actions).
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Print the report as JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Fail (exit 2) on warnings too: lint warnings, and a runbook with no
        /// scenario in which a survivor fails.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Print a runbook as a Markdown checklist: numbered steps with boxes,
    /// what to check, what the LEDs show, the halt guidance, the preflight.
    #[command(after_help = PLAN_EXAMPLES)]
    Plan {
        /// The runbook file.
        runbook: PathBuf,
    },
    /// Print a shell completion script.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        /// The shell to write completions for.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff), or write one page per command to a folder.
    #[command(after_help = MAN_EXAMPLES)]
    Man {
        /// Write swapguard.1, swapguard-run.1, ... into DIR instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
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
    #[command(
        after_help = "Examples:\n  swapguard quarantine list\n  swapguard quarantine list --all\n  swapguard quarantine list --json | jq '.drives[].serial'"
    )]
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Include released drives.
        #[arg(long)]
        all: bool,
    },
    /// Quarantine a drive by hand, by its serial.
    #[command(
        after_help = "Examples:\n  swapguard quarantine add S3Z1NB0K100002 --reason \"dropped on the floor\"\n  swapguard quarantine add S3Z1NB0K100002 --wwn 0x5002538e40a10002 --reason \"clicking\""
    )]
    Add {
        /// The drive's serial, as `smartctl -i` shows it.
        serial: String,
        /// Why it must not be used (recorded).
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Its WWN too, when known.
        #[arg(long)]
        wwn: Option<String>,
    },
    /// Allow a quarantined drive to be used again (journaled).
    #[command(
        after_help = "Examples:\n  swapguard quarantine release S3Z1NB0K100002 --reason \"vendor tested it: RMA 4711\""
    )]
    Release {
        /// Its serial or WWN.
        serial: String,
        /// Why it may be used again (required, recorded).
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
}

/// What `swapguard test` was asked to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestArgs {
    /// Runbook files, scenario files or folders; empty means `runbooks`.
    pub paths: Vec<PathBuf>,
    pub mutate: bool,
    pub junit: Option<PathBuf>,
    pub json: bool,
    pub deny_warnings: bool,
}

/// `--color WHEN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ColorWhen {
    Auto,
    Always,
    Never,
}

/// A shell `swapguard completions` writes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// The whole command-line definition, for completions and man pages.
pub fn command() -> clap::Command {
    Cli::command()
}

#[derive(Subcommand, Debug)]
enum JournalCmd {
    /// Check a journal's hash chain and, with the state directory's key,
    /// every line's MAC: any entry edited, removed or inserted after it was
    /// written is found. Exit 0 only when intact and every MAC checked.
    #[command(
        after_help = "Examples:\n  swapguard journal verify md0-20260101T000000000Z-4242\n  swapguard journal verify --file /backup/md0-20260101T000000000Z-4242.jsonl"
    )]
    Verify {
        /// The session's name, as `journal list` shows it (a journal under
        /// the state directory's `sessions/`).
        session: String,
        /// SESSION is the path of a journal file kept anywhere (a copy
        /// attached to a ticket, a backup), not a session name.
        #[arg(long)]
        file: bool,
    },
    /// List sessions: array, start, how each ended.
    #[command(after_help = "Examples:\n  swapguard journal list")]
    List,
}

const RESUME_EXAMPLES: &str = "\
Examples:
  swapguard resume
  swapguard resume --array md0
  swapguard resume md0-20260101T000000000Z-4242
  swapguard resume md0-20260101T000000000Z-4242 --runbook-changed \"fixed a typo in the pull text\"";

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
    pub color: ColorChoice,
    pub command: Command,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Run {
        runbook: PathBuf,
        params: BTreeMap<String, String>,
        answers: Option<PathBuf>,
        /// Abandon an unfinished session of the array instead of refusing.
        new_session: bool,
    },
    Lint {
        files: Vec<PathBuf>,
    },
    DryRun {
        runbook: Option<PathBuf>,
        scenario: PathBuf,
        exit_with_outcome: bool,
    },
    Status {
        /// One array, as given on the command line.
        array: Option<String>,
        json: bool,
        smart: bool,
        /// Prometheus text format, to stdout or (`textfile`) a directory.
        prometheus: bool,
        textfile: Option<PathBuf>,
    },
    Watch {
        session: Option<String>,
        array: Option<String>,
        json: bool,
    },
    Preflight {
        runbook: PathBuf,
        params: BTreeMap<String, String>,
        json: bool,
    },
    Demo,
    Resume {
        session: Option<String>,
        array: Option<String>,
        runbook: Option<PathBuf>,
        runbook_changed: Option<String>,
        answers: Option<PathBuf>,
    },
    JournalVerify {
        session: String,
        /// `session` is a file path, not a session name.
        file: bool,
    },
    JournalList,
    Report {
        session: String,
        /// `session` is a file path, not a session name.
        file: bool,
    },
    Test(TestArgs),
    Plan {
        runbook: PathBuf,
    },
    Completions {
        shell: Shell,
    },
    Man {
        dir: Option<PathBuf>,
    },
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
            new_session,
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
                new_session,
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
        Cmd::Status {
            array,
            json,
            no_smart,
            prometheus,
            textfile,
        } => Command::Status {
            array,
            json,
            smart: !no_smart,
            prometheus,
            textfile,
        },
        Cmd::Watch {
            session,
            array,
            json,
        } => Command::Watch {
            session,
            array,
            json,
        },
        Cmd::Preflight {
            runbook,
            array,
            target,
            params,
            json,
        } => {
            let mut map: BTreeMap<String, String> = params.into_iter().collect();
            if let Some(a) = array {
                map.insert("array".into(), a);
            }
            if let Some(t) = target {
                map.insert("target".into(), t);
            }
            Command::Preflight {
                runbook,
                params: map,
                json,
            }
        }
        Cmd::Demo => Command::Demo,
        Cmd::Resume {
            session,
            array,
            runbook,
            runbook_changed,
            answers,
        } => Command::Resume {
            session,
            array,
            runbook,
            runbook_changed,
            answers,
        },
        Cmd::Journal(JournalCmd::Verify { session, file }) => {
            Command::JournalVerify { session, file }
        }
        Cmd::Journal(JournalCmd::List) => Command::JournalList,
        Cmd::Report { session, file } => Command::Report { session, file },
        Cmd::Test {
            paths,
            mutate,
            junit,
            json,
            deny_warnings,
        } => Command::Test(TestArgs {
            paths,
            mutate,
            junit,
            json,
            deny_warnings,
        }),
        Cmd::Plan { runbook } => Command::Plan { runbook },
        Cmd::Completions { shell } => Command::Completions { shell },
        Cmd::Man { dir } => Command::Man { dir },
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
        color: match cli.color {
            ColorWhen::Auto => ColorChoice::Auto,
            ColorWhen::Always => ColorChoice::Always,
            ColorWhen::Never => ColorChoice::Never,
        },
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
                new_session: false,
            }
        );
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/swapguard"));
    }

    #[test]
    fn test_takes_paths_and_report_options() {
        let c = parse([
            "swapguard",
            "test",
            "--mutate",
            "--junit",
            "r.xml",
            "runbooks/a.toml",
            "more/",
        ])
        .unwrap();
        assert_eq!(
            c.command,
            Command::Test(TestArgs {
                paths: vec!["runbooks/a.toml".into(), "more/".into()],
                mutate: true,
                junit: Some("r.xml".into()),
                json: false,
                deny_warnings: false,
            })
        );
        let c = parse(["swapguard", "test"]).unwrap();
        assert_eq!(c.command, Command::Test(TestArgs::default()));
    }

    #[test]
    fn completions_know_three_shells() {
        for (name, shell) in [
            ("bash", Shell::Bash),
            ("zsh", Shell::Zsh),
            ("fish", Shell::Fish),
        ] {
            let c = parse(["swapguard", "completions", name]).unwrap();
            assert_eq!(c.command, Command::Completions { shell });
        }
        assert!(parse(["swapguard", "completions", "tcsh"]).is_err());
    }

    #[test]
    fn every_command_help_has_examples() {
        let cmd = command();
        for sub in cmd.get_subcommands() {
            let after = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                after.contains("Examples:"),
                "`swapguard {} --help` has no examples",
                sub.get_name()
            );
        }
    }

    #[test]
    fn bad_param_is_a_usage_error() {
        let err = parse(["swapguard", "run", "rb.toml", "--param", "novalue"]).unwrap_err();
        assert!(err.to_string().contains("`novalue` is not NAME=VALUE"));
    }
}
