//! `swapguard demo`: a guided swap of a simulated mirror, then the same swap
//! going wrong the way the 2019 incident did, so a newcomer sees the whole
//! flow including a halt. Runs on the embedded simulator; touches nothing.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::engine::Outcome;
use crate::exit;
use crate::operator::terminal::TerminalOperator;
use crate::output::ColorChoice;
use crate::runbook::load;
use crate::scenario;
use crate::simulate::{judge, simulate, simulate_with};

const RUNBOOK: &str = include_str!("../../runbooks/md-replace-member.toml");
const HEALTHY: &str = include_str!("../../runbooks/scenarios/md-replace-member/healthy.toml");
const INCIDENT: &str =
    include_str!("../../runbooks/scenarios/md-replace-member/incident-2019.toml");

pub fn demo(color: ColorChoice) -> Result<exit::Code> {
    let runbook_path = Path::new("runbooks/md-replace-member.toml");
    let loaded = load::load_str(runbook_path, RUNBOOK);
    let runbook = loaded
        .runbook
        .context("the embedded demo runbook does not load; this is a bug")?;
    let mut out = crate::output::stdout();
    writeln!(
        out,
        "swapguard demo: replacing drive B of a simulated two-drive mirror.\n\
         Nothing on this machine is touched. At a terminal you are the technician\n\
         and answer the questions (the simulated hands pull and insert drives);\n\
         otherwise a simulated technician answers. The simulated hardware reacts\n\
         as a real md array does.\n"
    )?;
    // Ctrl-C ends the demo between two actions, like a real run, instead
    // of killing it mid-line.
    crate::signals::interrupt_flag()?;
    crate::signals::reset();
    let mut code = exit::Code::Success;
    for (title, source, file) in [
        ("PART 1: a healthy swap", HEALTHY, "healthy.toml"),
        (
            "PART 2: the 2019 incident: while B is pulled, A is nudged and starts failing",
            INCIDENT,
            "incident-2019.toml",
        ),
    ] {
        writeln!(out, "==== {title} ====\n")?;
        let path = Path::new("runbooks/scenarios/md-replace-member").join(file);
        let scenario = scenario::parse(&path, source).with_context(|| {
            format!("the embedded demo scenario `{file}` does not load; this is a bug")
        })?;
        let outcome = match TerminalOperator::new().map(|t| t.with_colors(color.forced())) {
            // At a terminal, the person running the demo is the technician.
            Ok(mut person) => simulate_with(&runbook, &scenario, &mut person, 0.01)?,
            Err(_) => simulate(&runbook, &scenario, None, &mut out)?.0,
        };
        if matches!(outcome, Outcome::Interrupted { .. }) || crate::signals::pending() {
            // The simulated hardware ended with this process: there is no
            // session to resume, only the demo to start again.
            writeln!(
                out,
                "\ninterrupted; nothing was touched (the demo only simulates).\n\
                 To see it again from the start: swapguard demo"
            )?;
            return Ok(exit::Code::Interrupted);
        }
        if judge(&outcome, &scenario.expect, &mut out) != exit::Code::Success {
            code = exit::Code::Failure;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "In part 2 swapguard stopped within a second of the survivor's counters moving,\n\
         named the drive, its serial and bay, and printed the runbook's halt guidance.\n\
         Try it yourself: swapguard dry-run runbooks/md-replace-member.toml \\\n  \
         --scenario runbooks/scenarios/md-replace-member/wrong-drive-pulled.toml"
    )?;
    Ok(code)
}
