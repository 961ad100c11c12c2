//! Running suites: lint each runbook, dry-run each of its scenarios on the
//! same engine as `swapguard dry-run` (`simulate::simulate`), and
//! judge each outcome against the scenario's `[expect]` with the same
//! `judge`. With mutations, every healthy scenario's bad-hardware variants
//! (`ci::mutate`) run too.
//!
//! Dry-run journals are throwaway here: each run gets a fresh folder under
//! one scratch directory, in `/dev/shm` where the host has it. A journal
//! syncs every line to disk, which on a real disk costs milliseconds a
//! line; in memory the same code path costs nothing, and a whole suite
//! stays well under a second.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::ci::discover::{Discovered, Found, Suite};
use crate::ci::mutate::{self, Mutation, StepTimes};
use crate::ci::proof::proves_it_halts;
use crate::engine::Outcome;
use crate::exit;
use crate::runbook::diag::{Diagnostic, Severity};
use crate::runbook::lint::FileReport;
use crate::runbook::load::{decode, load_str};
use crate::runbook::model::Runbook;
use crate::scenario::Scenario;
use crate::simulate::{judge, simulate};

/// What to run besides the scenarios.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Derive and run bad-hardware variants of every healthy scenario.
    pub mutate: bool,
}

/// The result of a whole `swapguard test`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub runbooks: Vec<RunbookReport>,
    /// Scenarios that could not be tied to any runbook (always errors).
    pub orphans: Vec<Case>,
    #[serde(skip)]
    pub elapsed: Duration,
}

/// One runbook: its lint, its scenarios, its mutations.
#[derive(Debug, Serialize)]
pub struct RunbookReport {
    pub path: PathBuf,
    /// `[runbook] name`, when the runbook loads.
    pub name: Option<String>,
    pub lint: FileReport,
    /// Findings about the runbook's scenarios as a whole (no scenario in
    /// which a survivor fails).
    pub warnings: Vec<String>,
    pub scenarios: Vec<Case>,
    /// Bad-hardware variants (with `--mutate`).
    pub mutations: Vec<MutationCase>,
    /// Mutations that do not apply to this runbook, and why.
    pub mutation_notes: Vec<String>,
    pub seconds: f64,
}

/// How one case ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The expectation was met (a variant halted or was refused).
    Pass,
    /// It was not.
    Fail,
    /// The case could not run: a broken scenario, an engine error.
    Error,
    /// Not run, because its runbook does not load.
    Skipped,
}

/// One scenario's run.
#[derive(Debug, Serialize)]
pub struct Case {
    pub scenario: PathBuf,
    /// `[scenario] name`, or the file name when the file does not load.
    pub name: String,
    pub expected: Option<Expect>,
    pub got: Option<Got>,
    pub verdict: Verdict,
    /// What differed from the expectation, or why the case could not run.
    pub problems: Vec<String>,
    /// Everything the dry run printed; JSON carries its last lines.
    #[serde(rename = "transcript_tail", serialize_with = "tail_lines")]
    pub transcript: String,
    pub seconds: f64,
    /// Step times of a healthy run, for mutations.
    #[serde(skip)]
    pub times: Option<StepTimes>,
}

/// One bad-hardware variant's run.
#[derive(Debug, Serialize)]
pub struct MutationCase {
    /// The healthy scenario it was derived from.
    pub from: PathBuf,
    pub step: String,
    pub mutation: Mutation,
    pub description: String,
    pub got: Option<Got>,
    pub verdict: Verdict,
    /// Why it failed: the step lets bad hardware through, or an error.
    pub problems: Vec<String>,
    #[serde(rename = "transcript_tail", serialize_with = "tail_lines")]
    pub transcript: String,
    pub seconds: f64,
}

/// A scenario's `[expect]`, as reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Expect {
    pub outcome: String,
    pub step: Option<String>,
    pub reasons: Vec<String>,
}

impl Expect {
    /// `halted at `pull` naming `sda``.
    pub fn describe(&self) -> String {
        let mut s = self.outcome.clone();
        if let Some(step) = &self.step {
            s.push_str(&format!(" at `{step}`"));
        }
        if !self.reasons.is_empty() {
            let names: Vec<String> = self.reasons.iter().map(|r| format!("`{r}`")).collect();
            s.push_str(&format!(" naming {}", names.join(", ")));
        }
        s
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Got {
    pub outcome: String,
    pub step: Option<String>,
    /// The halt, refusal or abort text.
    pub text: String,
}

impl Got {
    fn of(outcome: &Outcome) -> Got {
        Got {
            outcome: outcome.kind().to_string(),
            step: outcome.step().map(str::to_string),
            text: outcome.text(),
        }
    }

    /// `halted at `pull``.
    pub fn describe(&self) -> String {
        match &self.step {
            Some(step) => format!("{} at `{step}`", self.outcome),
            None => self.outcome.clone(),
        }
    }
}

impl Report {
    pub fn cases(&self) -> impl Iterator<Item = &Case> {
        self.runbooks
            .iter()
            .flat_map(|r| &r.scenarios)
            .chain(&self.orphans)
    }

    pub fn mutations(&self) -> impl Iterator<Item = &MutationCase> {
        self.runbooks.iter().flat_map(|r| &r.mutations)
    }

    pub fn lint_errors(&self) -> usize {
        self.runbooks.iter().map(|r| r.lint.errors()).sum()
    }

    pub fn lint_warnings(&self) -> usize {
        self.runbooks.iter().map(|r| r.lint.warnings()).sum()
    }

    /// Lint warnings and suite warnings together.
    pub fn warnings(&self) -> usize {
        self.lint_warnings()
            + self
                .runbooks
                .iter()
                .map(|r| r.warnings.len())
                .sum::<usize>()
    }

    /// The exit code: 2 when a file has errors (a runbook fails lint, a
    /// scenario does not load or cannot run), else 7 when an expectation
    /// failed or a variant was let through, else 0. With `deny_warnings`,
    /// warnings count as errors.
    pub fn exit_code(&self, deny_warnings: bool) -> exit::Code {
        let errored = self.lint_errors() > 0
            || self.cases().any(|c| c.verdict == Verdict::Error)
            || self.mutations().any(|m| m.verdict == Verdict::Error)
            || (deny_warnings && self.warnings() > 0);
        let failed = self.cases().any(|c| c.verdict == Verdict::Fail)
            || self.mutations().any(|m| m.verdict == Verdict::Fail);
        if errored {
            exit::Code::Usage
        } else if failed {
            exit::Code::ExpectationFailed
        } else {
            exit::Code::Success
        }
    }
}

/// Run everything discovered.
pub fn run(found: Discovered, options: Options) -> Result<Report> {
    let started = Instant::now();
    let mut scratch = Scratch::new()?;
    let mut runbooks = Vec::new();
    for suite in found.suites {
        runbooks.push(run_suite(suite, options, &mut scratch));
    }
    let orphans = found
        .orphans
        .into_iter()
        .map(|f| {
            let mut case = error_case(&f, "cannot tell which runbook this scenario is for");
            if let Err(e) = &f.scenario {
                case.problems.push(e.clone());
            }
            case
        })
        .collect();
    Ok(Report {
        runbooks,
        orphans,
        elapsed: started.elapsed(),
    })
}

fn run_suite(suite: Suite, options: Options, scratch: &mut Scratch) -> RunbookReport {
    let started = Instant::now();
    let (lint, runbook) = load_runbook(&suite.runbook);
    let mut scenarios = Vec::new();
    for found in &suite.scenarios {
        scenarios.push(run_case(runbook.as_ref(), found, scratch, options.mutate));
    }
    let mut warnings = Vec::new();
    if suite.scenarios.is_empty() {
        warnings.push(format!(
            "runbook `{}` has no scenarios: add them as `scenarios/{}/*.toml` beside it (see docs/ci.md)",
            suite.runbook.display(),
            suite
                .runbook
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
        ));
    } else if runbook.is_some() && !proves_it_halts(&suite.scenarios, &scenarios) {
        warnings.push(format!(
            "runbook `{}` has no scenario in which a survivor fails: add one that degrades a survivor during a step and expects `halted` naming it (see docs/ci.md)",
            suite.runbook.display()
        ));
    }
    let mut mutations = Vec::new();
    let mut mutation_notes = Vec::new();
    if let (true, Some(runbook)) = (options.mutate, &runbook) {
        for (found, case) in suite.scenarios.iter().zip(&scenarios) {
            let (Ok(healthy), Some(times)) = (&found.scenario, &case.times) else {
                continue;
            };
            let derived = mutate::derive(runbook, healthy, times);
            mutation_notes.extend(derived.notes);
            for variant in derived.variants {
                mutations.push(run_variant(runbook, variant, scratch));
            }
        }
        mutation_notes.dedup();
        if mutations.is_empty() {
            warnings.push(format!(
                "no scenario of `{}` completes, so there is nothing to mutate: add a healthy one that expects `completed`",
                suite.runbook.display()
            ));
        }
    }
    RunbookReport {
        path: suite.runbook,
        name: runbook.as_ref().map(|r| r.name.clone()),
        lint,
        warnings,
        scenarios,
        mutations,
        mutation_notes,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Lint and load a runbook in one pass: the diagnostics are exactly those
/// `swapguard lint` prints.
fn load_runbook(path: &Path) -> (FileReport, Option<Runbook>) {
    let (diagnostics, runbook) = match std::fs::read(path).map(|b| decode(path, b)) {
        Ok(Ok(source)) => {
            let loaded = load_str(path, &source);
            let ok = loaded.errors() == 0;
            (loaded.diagnostics, loaded.runbook.filter(|_| ok))
        }
        Ok(Err(not_utf8)) => (vec![*not_utf8], None),
        Err(e) => (
            vec![Diagnostic::whole_file(
                Severity::Error,
                path,
                format!("cannot read `{}`: {e}", path.display()),
                None,
            )],
            None,
        ),
    };
    (
        FileReport {
            path: path.to_path_buf(),
            diagnostics,
        },
        runbook,
    )
}

fn error_case(found: &Found, problem: &str) -> Case {
    Case {
        scenario: found.path.clone(),
        name: found.scenario.as_ref().map_or_else(
            |_| {
                found
                    .path
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            },
            |s| s.name.clone(),
        ),
        expected: found.scenario.as_ref().ok().map(expect_of),
        got: None,
        verdict: Verdict::Error,
        problems: vec![problem.to_string()],
        transcript: String::new(),
        seconds: 0.0,
        times: None,
    }
}

fn expect_of(s: &Scenario) -> Expect {
    Expect {
        outcome: s.expect.outcome.name().to_string(),
        step: s.expect.step.clone(),
        reasons: s.expect.reasons.clone(),
    }
}

fn run_case(
    runbook: Option<&Runbook>,
    found: &Found,
    scratch: &mut Scratch,
    keep_times: bool,
) -> Case {
    let started = Instant::now();
    let scenario = match &found.scenario {
        Ok(s) => s,
        Err(e) => {
            let mut case = error_case(found, "the scenario file has errors");
            case.problems.push(e.clone());
            return case;
        }
    };
    let Some(runbook) = runbook else {
        let mut case = error_case(
            found,
            "not run: the runbook has errors (see its lint above)",
        );
        case.verdict = Verdict::Skipped;
        return case;
    };
    let problems: Vec<String> = scenario
        .check_against(runbook)
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.to_string())
        .collect();
    if !problems.is_empty() {
        let mut case = error_case(found, "the scenario does not fit its runbook");
        case.problems.extend(problems);
        return case;
    }
    let dir = scratch.next();
    let mut transcript = Vec::new();
    let result = simulate(runbook, scenario, Some(&dir), &mut transcript);
    let mut case = Case {
        scenario: found.path.clone(),
        name: scenario.name.clone(),
        expected: Some(expect_of(scenario)),
        got: None,
        verdict: Verdict::Error,
        problems: Vec::new(),
        transcript: String::from_utf8_lossy(&transcript).into_owned(),
        seconds: 0.0,
        times: None,
    };
    match result {
        Ok((outcome, _)) => {
            let mut verdict = Vec::new();
            let code = judge(&outcome, &scenario.expect, &mut verdict);
            case.got = Some(Got::of(&outcome));
            case.verdict = if code == exit::Code::Success {
                Verdict::Pass
            } else {
                Verdict::Fail
            };
            case.problems = String::from_utf8_lossy(&verdict)
                .lines()
                .filter_map(|l| l.strip_prefix("  - "))
                .map(str::to_string)
                .collect();
            if keep_times && case.verdict == Verdict::Pass && matches!(outcome, Outcome::Completed)
            {
                match journal_times(&dir) {
                    Ok(t) => case.times = Some(t),
                    Err(e) => {
                        // Fail closed: --mutate was asked for and cannot run.
                        case.verdict = Verdict::Error;
                        case.problems
                            .push(format!("cannot time the steps for --mutate: {e:#}"));
                    }
                }
            }
        }
        Err(e) => case
            .problems
            .push(format!("the dry run stopped with an error: {e:#}")),
    }
    scratch.done(&dir);
    case.seconds = started.elapsed().as_secs_f64();
    case
}

fn run_variant(runbook: &Runbook, variant: mutate::Variant, scratch: &mut Scratch) -> MutationCase {
    let started = Instant::now();
    let dir = scratch.next();
    let mut transcript = Vec::new();
    let result = simulate(runbook, &variant.scenario, Some(&dir), &mut transcript);
    scratch.done(&dir);
    let mut case = MutationCase {
        from: variant.from,
        description: variant.mutation.to_string(),
        got: None,
        verdict: Verdict::Error,
        problems: Vec::new(),
        transcript: String::from_utf8_lossy(&transcript).into_owned(),
        seconds: 0.0,
        step: variant.step,
        mutation: variant.mutation,
    };
    match result {
        Ok((outcome, _)) => {
            let got = Got::of(&outcome);
            let stopped = matches!(outcome, Outcome::Halted(_) | Outcome::Refused(_));
            // A survivor that degrades, or a wrong pull, must stop the very
            // step it happens in: hands are in the chassis. A bad new drive
            // only has to be stopped before the run ends.
            let in_step = match case.mutation {
                Mutation::CounterRises { .. } | Mutation::WrongDrivePulled { .. } => {
                    matches!(outcome, Outcome::Refused(_))
                        || outcome.step() == Some(case.step.as_str())
                }
                _ => true,
            };
            if stopped && in_step {
                case.verdict = Verdict::Pass;
            } else {
                case.verdict = Verdict::Fail;
                let ended = if stopped {
                    format!("the run went on and was only {}", got.describe())
                } else {
                    format!("the run ended {}", got.describe())
                };
                case.problems
                    .push(format!("{}; {ended}", case.mutation.escape(&case.step)));
            }
            case.got = Some(got);
        }
        Err(e) => case
            .problems
            .push(format!("the dry run stopped with an error: {e:#}")),
    }
    case.seconds = started.elapsed().as_secs_f64();
    case
}

fn journal_times(dir: &Path) -> Result<StepTimes> {
    let sessions = dir.join("sessions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&sessions)
        .with_context(|| format!("cannot list `{}`", sessions.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let path = files
        .first()
        .with_context(|| format!("no journal in `{}`", sessions.display()))?;
    Ok(mutate::step_times(&crate::journal::read(path)?))
}

fn tail_lines<S: serde::Serializer>(
    transcript: &str,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(crate::ci::report::tail(
        transcript,
        crate::ci::report::TAIL_LINES,
    ))
}

/// Fresh state folders for dry runs, under one temporary directory.
struct Scratch {
    root: tempfile::TempDir,
    next: usize,
}

impl Scratch {
    fn new() -> Result<Scratch> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("swapguard-test-");
        let root = match builder.tempdir_in("/dev/shm") {
            Ok(dir) => dir,
            Err(_) => builder
                .tempdir()
                .context("cannot create a scratch directory for dry-run journals")?,
        };
        Ok(Scratch { root, next: 0 })
    }

    fn next(&mut self) -> PathBuf {
        self.next += 1;
        self.root.path().join(self.next.to_string())
    }

    fn done(&self, dir: &Path) {
        // Best effort: the whole scratch directory goes when the run ends.
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(verdict: Verdict) -> Case {
        Case {
            scenario: "s.toml".into(),
            name: "s".into(),
            expected: None,
            got: None,
            verdict,
            problems: vec![],
            transcript: String::new(),
            seconds: 0.0,
            times: None,
        }
    }

    #[test]
    fn exit_codes() {
        let report = |verdicts: &[Verdict], warnings: usize| Report {
            runbooks: vec![RunbookReport {
                path: "r.toml".into(),
                name: None,
                lint: FileReport {
                    path: "r.toml".into(),
                    diagnostics: vec![],
                },
                warnings: vec!["w".to_string(); warnings],
                scenarios: verdicts.iter().map(|v| case(*v)).collect(),
                mutations: vec![],
                mutation_notes: vec![],
                seconds: 0.0,
            }],
            orphans: vec![],
            elapsed: Duration::ZERO,
        };
        let table: [(&[Verdict], usize, bool, exit::Code); 7] = [
            (&[Verdict::Pass], 0, false, exit::Code::Success),
            (
                &[Verdict::Pass, Verdict::Fail],
                0,
                false,
                exit::Code::ExpectationFailed,
            ),
            (
                &[Verdict::Fail, Verdict::Error],
                0,
                false,
                exit::Code::Usage,
            ),
            (&[Verdict::Skipped], 0, false, exit::Code::Success),
            (&[Verdict::Pass], 1, false, exit::Code::Success),
            (&[Verdict::Pass], 1, true, exit::Code::Usage),
            (&[], 0, true, exit::Code::Success),
        ];
        for (verdicts, warnings, deny, want) in table {
            assert_eq!(
                report(verdicts, warnings).exit_code(deny),
                want,
                "{verdicts:?} {warnings} {deny}"
            );
        }
    }

    #[test]
    fn runs_the_shipped_suites_in_process() {
        let found =
            crate::ci::discover::discover(
                &[Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks")],
            )
            .unwrap();
        let report = run(found, Options { mutate: false }).unwrap();
        assert_eq!(report.exit_code(true), exit::Code::Success);
        assert!(report.cases().all(|c| c.verdict == Verdict::Pass));
        assert!(report.runbooks.iter().all(|r| r.warnings.is_empty()));
    }
}
