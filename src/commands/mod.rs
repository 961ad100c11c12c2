//! The commands behind the CLI. Each takes a plain `Config` and returns an
//! exit code; errors are printed in one place (`crate::run`).

mod demo;
mod docs;
mod dry_run;
mod plan;
mod test;

mod journal;
mod lint;
mod preflight;
mod prometheus;
mod quarantine;
mod report;
mod resume;
mod run;
mod status;
mod watch;

use anyhow::Result;

use crate::cli::{Command, Config};
use crate::exit;

pub fn dispatch(config: &Config) -> Result<exit::Code> {
    match &config.command {
        Command::Run {
            runbook,
            params,
            answers,
            new_session,
        } => run::run(config, runbook, params, answers.as_deref(), *new_session),
        Command::Lint { files } => lint::lint(files),
        Command::DryRun {
            runbook,
            scenario,
            exit_with_outcome,
        } => dry_run::dry_run(config, runbook.as_deref(), scenario, *exit_with_outcome),
        Command::Status {
            array,
            json,
            smart,
            prometheus,
            textfile,
        } => match (prometheus, textfile) {
            (false, None) => status::status(config, array.as_deref(), *json, *smart),
            (_, textfile) => crate::commands::prometheus::status(
                config,
                array.as_deref(),
                *smart,
                textfile.as_deref(),
            ),
        },
        Command::Watch {
            session,
            array,
            json,
        } => watch::watch(config, session.as_deref(), array.as_deref(), *json),
        Command::Preflight {
            runbook,
            params,
            json,
        } => preflight::preflight(config, runbook, params, *json),
        Command::Demo => demo::demo(config.color),
        Command::Quarantine(action) => quarantine::quarantine(config, action),
        Command::Test(args) => test::test(args),
        Command::Plan { runbook } => plan::plan(runbook),
        Command::Completions { shell } => docs::completions(*shell, &mut crate::output::stdout()),
        Command::Man { dir } => docs::man(dir.as_deref(), &mut crate::output::stdout()),
        Command::Resume {
            session,
            array,
            runbook,
            runbook_changed,
            answers,
        } => resume::resume(
            config,
            &resume::Options {
                session: session.as_deref(),
                array: array.as_deref(),
                runbook: runbook.as_deref(),
                runbook_changed: runbook_changed.as_deref(),
                answers: answers.as_deref(),
            },
        ),
        Command::JournalVerify { session, file } => journal::verify(config, session, *file),
        Command::JournalList => journal::list(config),
        Command::Report { session, file } => report::report(config, session, *file),
    }
}
