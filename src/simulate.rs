//! The dry-run core: the real engine, guard, journal and lock walking a
//! runbook against a simulated array, with the simulator's hardware log
//! narrated into the transcript, and the verdict against a scenario's
//! `[expect]`. `dry-run`, `demo` and `test` (through `crate::ci`) all walk
//! here; only the backend (the simulator) and the operator (the simulated
//! technician plus the scenario's scripted answers) differ from a real run.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Result;

use crate::backend::sim::SimBackend;
use crate::backend::{Backend, CommandOutput, Depth, LocateOutcome, StepPhase};
use crate::clock::SimClock;
use crate::engine::Outcome;
use crate::exit;
use crate::health::model::{Identity, Snapshot};
use crate::operator::Operator;
use crate::operator::scripted::{ScriptedOperator, SharedBuffer};
use crate::quarantine::{self, Entry};
use crate::runbook::model::Runbook;
use crate::sanitize::sanitize;
use crate::scenario::{Expected, Scenario};
use crate::session::{Earlier, Setup, guarded};

/// Walk `runbook` against `scenario`, writing the transcript to `out`.
/// Journals go to `state_dir`, or to a temporary directory removed after.
pub fn simulate(
    runbook: &Runbook,
    scenario: &Scenario,
    state_dir: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(Outcome, String)> {
    let buffer = SharedBuffer::new();
    let mut operator =
        ScriptedOperator::new(scenario.answers.clone(), true, Box::new(buffer.clone()));
    let _ = writeln!(
        out,
        "dry-run: {} — {}",
        sanitize(&runbook.name, false),
        sanitize(&scenario.name, false)
    );
    let result = walk(
        runbook,
        scenario,
        state_dir,
        &mut operator,
        Box::new(buffer.clone()),
        0.0,
    );
    // Whoever reads the transcript (a terminal, a CI log, a JUnit report)
    // gets it sanitised: the scenario's serials and models are as untrusted
    // as a real drive's.
    let transcript = sanitize(&buffer.contents(), true);
    let _ = out.write_all(transcript.as_bytes());
    Ok((result?, transcript))
}

/// Walk `runbook` against `scenario` with a person answering at the
/// terminal (the demo). The simulated hardware's log goes to stdout; `pace`
/// slows simulated time down to a fraction of real time so a person can
/// follow it (0.01: a two-minute rebuild shows for about a second).
pub fn simulate_with(
    runbook: &Runbook,
    scenario: &Scenario,
    operator: &mut dyn Operator,
    pace: f64,
) -> Result<Outcome> {
    walk(
        runbook,
        scenario,
        None,
        operator,
        Box::new(std::io::stdout()),
        pace,
    )
}

fn walk(
    runbook: &Runbook,
    scenario: &Scenario,
    state_dir: Option<&Path>,
    operator: &mut dyn Operator,
    log: Box<dyn Write>,
    pace: f64,
) -> Result<Outcome> {
    let clock = SimClock::new();
    let mut backend = Narrated {
        inner: SimBackend::new(scenario.machine(runbook.backend.name()), clock.clone())?,
        out: log,
        pace,
    };
    let temp;
    let dir = match state_dir {
        Some(d) => d,
        None => {
            temp = tempfile::tempdir()?;
            temp.path()
        }
    };
    seed_quarantine(scenario, dir)?;
    let interrupted = AtomicBool::new(false);
    let result = guarded(
        runbook,
        &scenario.params,
        Setup {
            backend: &mut backend,
            operator,
            clock: &clock,
            interrupted: &interrupted,
            state_dir: dir,
            earlier: Earlier::Ignore,
        },
    );
    backend.flush();
    Ok(result?.0)
}

/// Put the scenario's `[[quarantined]]` drives into the registry of the
/// dry run's state directory, as an earlier run would have left them.
pub(crate) fn seed_quarantine(scenario: &Scenario, state_dir: &Path) -> Result<()> {
    for q in &scenario.quarantined {
        let Some(d) = scenario.drives.get(q.drive) else {
            continue;
        };
        let id = Identity {
            dev: d.dev.clone().unwrap_or_default(),
            serial: d.serial.clone(),
            wwn: d.wwn.clone(),
            model: d.model.clone(),
            firmware: d.firmware.clone(),
            size_bytes: Some(d.size_bytes),
            slot: d.slot.clone(),
            by_id: None,
            transport: None,
        };
        let entry = Entry::for_drive(&id, q.at.clone(), q.session.clone(), q.reason.clone());
        quarantine::add(state_dir, entry)?;
    }
    Ok(())
}

/// Compare the outcome with the scenario's `[expect]`; print the verdict.
pub fn judge(outcome: &Outcome, expect: &Expected, out: &mut dyn Write) -> exit::Code {
    let mut misses = Vec::new();
    if outcome.kind() != expect.outcome.name() {
        misses.push(format!(
            "expected outcome `{}`, got `{}`",
            expect.outcome.name(),
            outcome.kind()
        ));
    }
    if let Some(step) = &expect.step
        && outcome.step() != Some(step.as_str())
    {
        misses.push(format!(
            "expected the run to stop at step `{step}`, it stopped at {}",
            outcome
                .step()
                .map_or("no step (it completed)".into(), |s| format!("`{s}`"))
        ));
    }
    let text = outcome.text();
    for reason in &expect.reasons {
        if !text.contains(reason.as_str()) {
            misses.push(format!("expected the stop message to mention `{reason}`"));
        }
    }
    let where_ = outcome
        .step()
        .map(|s| format!(" at step `{s}`"))
        .unwrap_or_default();
    if misses.is_empty() {
        let _ = writeln!(out, "expectation met: {}{where_}", outcome.kind());
        exit::Code::Success
    } else {
        let _ = writeln!(out, "EXPECTATION NOT MET: {}{where_}", outcome.kind());
        for m in misses {
            let _ = writeln!(out, "  - {m}");
        }
        exit::Code::ExpectationFailed
    }
}

/// The simulator, with its hardware log written into the transcript as it
/// happens (the engine itself never prints).
struct Narrated {
    inner: SimBackend,
    out: Box<dyn Write>,
    /// Real seconds slept per simulated second (0: as fast as possible).
    pace: f64,
}

impl Narrated {
    fn flush(&mut self) {
        for line in self.inner.take_log() {
            let _ = writeln!(self.out, "  {}", sanitize(&line, true));
        }
    }
}

impl Backend for Narrated {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn arrays(&mut self) -> Result<Vec<String>> {
        self.inner.arrays()
    }
    fn snapshot(&mut self, array: &str, depth: Depth) -> Result<Snapshot> {
        let s = self.inner.snapshot(array, depth);
        self.flush();
        s
    }
    fn wait(&mut self, timeout: Duration) -> Result<()> {
        if self.pace > 0.0 {
            std::thread::sleep(timeout.mul_f64(self.pace));
        }
        let r = self.inner.wait(timeout);
        self.flush();
        r
    }
    fn execute(&mut self, argv: &[String], timeout: Duration) -> Result<CommandOutput> {
        let r = self.inner.execute(argv, timeout);
        self.flush();
        r
    }
    fn start(
        &mut self,
        argv: &[String],
        timeout: Duration,
    ) -> Result<Box<dyn crate::backend::Running>> {
        let r = self.inner.start(argv, timeout);
        self.flush();
        r
    }
    fn locate(&mut self, drive: &Identity, on: bool) -> Result<LocateOutcome> {
        let r = self.inner.locate(drive, on);
        self.flush();
        r
    }
    fn step_phase(
        &mut self,
        step: &crate::backend::StepFacts<'_>,
        phase: StepPhase,
        target: &Identity,
    ) {
        self.inner.step_phase(step, phase, target);
        self.flush();
    }
    fn canaries(&mut self) -> Option<&mut dyn crate::canary::Canaries> {
        self.flush();
        self.inner.canaries()
    }
}
