//! Crash tests: every shipped scenario is run and killed right after its
//! Nth journal write, for every N, then resumed; the run must end as it
//! would have without the crash, no command may run twice, and the journal
//! must be whole.
//!
//! How a crash is modelled. A dry-run's hardware is the simulator, which
//! lives in the process; a real crash would take it along. So the run and
//! its resume happen in one test process: the journal's test kill switch
//! ([`TestCrash`]) stops all journal writes after write N, and the
//! [`Crashable`] backend wrapped around the simulator refuses every call
//! from then on, so the dead run can do nothing more. The resume then opens
//! the same journal file again and drives the *same* simulator instance,
//! whose state (drives pulled, rebuild progress, the simulated clock) is
//! what real hardware would still have after the tool died. Two crash
//! points are tried for each N: right after write N, and just before write
//! N+1 (everything between the writes, such as running a command, has
//! happened but is not journaled). The simulator's time stands still while
//! no one is running; the real world's would not, which the
//! `rebuild_finished_while_no_one_watched` test covers.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Result, bail};

use crate::backend::StepFacts;
use crate::backend::sim::SimBackend;
use crate::backend::{Backend, CommandOutput, Depth, LocateOutcome, StepPhase};
use crate::clock::{Clock, SimClock};
use crate::engine::{self, Journaled, Outcome, Resume, Run};
use crate::health::model::{Identity, Snapshot};
use crate::journal::{self, Journal, TestCrash};
use crate::operator::Operator;
use crate::operator::scripted::ScriptedOperator;
use crate::runbook::load;
use crate::runbook::model::Runbook;
use crate::scenario::{self, Scenario};

/// The simulator behind a switch that the journal's kill switch throws.
struct Crashable {
    inner: SimBackend,
    dead: Arc<AtomicBool>,
    /// Every argv executed, over the crashed run and its resume.
    executed: Rc<RefCell<Vec<Vec<String>>>>,
}

impl Crashable {
    fn alive(&self) -> Result<()> {
        if self.dead.load(Ordering::SeqCst) {
            bail!("the process is dead");
        }
        Ok(())
    }
}

impl Backend for Crashable {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn arrays(&mut self) -> Result<Vec<String>> {
        self.alive()?;
        self.inner.arrays()
    }
    fn snapshot(&mut self, array: &str, depth: Depth) -> Result<Snapshot> {
        self.alive()?;
        self.inner.snapshot(array, depth)
    }
    fn wait(&mut self, timeout: Duration) -> Result<()> {
        self.alive()?;
        self.inner.wait(timeout)
    }
    fn execute(&mut self, argv: &[String], timeout: Duration) -> Result<CommandOutput> {
        self.alive()?;
        self.executed.borrow_mut().push(argv.to_vec());
        self.inner.execute(argv, timeout)
    }
    fn start(
        &mut self,
        argv: &[String],
        timeout: Duration,
    ) -> Result<Box<dyn crate::backend::Running>> {
        self.alive()?;
        self.executed.borrow_mut().push(argv.to_vec());
        self.inner.start(argv, timeout)
    }
    fn locate(&mut self, drive: &Identity, on: bool) -> Result<LocateOutcome> {
        self.alive()?;
        self.inner.locate(drive, on)
    }
    fn step_phase(&mut self, step: &StepFacts<'_>, phase: StepPhase, target: &Identity) {
        if !self.dead.load(Ordering::SeqCst) {
            self.inner.step_phase(step, phase, target);
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn runbook(path: &Path) -> Runbook {
    load::load(path)
        .unwrap()
        .runbook
        .expect("shipped runbook loads")
}

/// Every shipped scenario of a runbook for one of `backends`.
fn scenarios_of(backends: &[&str]) -> Vec<(Runbook, Scenario)> {
    let mut out = Vec::new();
    let dir = root().join("runbooks/scenarios");
    let mut runbook_dirs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    runbook_dirs.sort();
    for d in runbook_dirs {
        let name = d.file_name().unwrap().to_string_lossy().to_string();
        let rb = runbook(&root().join(format!("runbooks/{name}.toml")));
        if !backends.contains(&rb.backend.name()) {
            continue;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            out.push((rb.clone(), scenario::load(&f).unwrap()));
        }
    }
    assert!(out.len() >= 10, "found {} scenarios", out.len());
    out
}

/// The md runbooks' scenarios. The ZFS and btrfs runbooks are not yet in
/// the crash-and-resume sweep: killed after its 29th journal write, the
/// healthy NVMe boot-mirror scenario resumes to a halt at `new-guids`
/// (`sgdisk -G` finds no GPT), an end the unbroken run does not reach.
fn scenarios() -> Vec<(Runbook, Scenario)> {
    scenarios_of(&["md", "zfs", "btrfs", "megaraid"])
}

/// The commands of the steps the technician agreed to start again after a
/// crash, when the journal could not tell whether they had run.
fn asked_to_run_again(journal: &[serde_json::Value]) -> Vec<String> {
    let agreed: Vec<&str> = journal
        .iter()
        .filter(|e| e["event"] == "answer" && e["answer"] == "yes")
        .filter_map(|e| e["step"].as_str()?.strip_prefix("resume-"))
        .collect();
    journal
        .iter()
        .filter(|e| e["event"] == "command")
        .filter(|e| e["step"].as_str().is_some_and(|s| agreed.contains(&s)))
        .filter_map(|e| e["output"]["argv"].as_array())
        .map(|argv| {
            let words: Vec<&str> = argv.iter().filter_map(|w| w.as_str()).collect();
            words.join(" ")
        })
        .collect()
}

/// Whether running `argv` changes the array or a drive: the backend's own
/// tool (`mdadm`, `zpool`, `btrfs`) with anything but a read, or any
/// command the runbook lint holds as destructive. Such a command must
/// never run twice across a crash and its resume.
fn changes_something(argv: &[String]) -> bool {
    let words: Vec<&str> = argv.iter().map(String::as_str).collect();
    let program = words.first().map(|p| p.rsplit('/').next().unwrap_or(p));
    let read = |w: &[&str]| {
        matches!(
            w,
            [_, "status", ..]
                | [_, "list", ..]
                | [_, "--detail", ..]
                | [_, "--examine", ..]
                | [_, "filesystem", "show" | "df" | "usage", ..]
                | [_, "device", "stats" | "usage", ..]
                | [_, "replace" | "balance" | "scrub", "status", ..]
        )
    };
    if program.is_some_and(|p| matches!(p, "mdadm" | "zpool" | "btrfs")) {
        return !read(&words);
    }
    // storcli: `/c0/e252/s1 show ...` reads; `start locate`/`stop locate`
    // only blink.
    if program.is_some_and(|p| p.starts_with("storcli") || p.starts_with("perccli")) {
        return !matches!(
            &words[1..],
            [_, "show", ..] | [_, "start" | "stop", "locate", ..] | ["show", ..]
        );
    }
    crate::runbook::destructive::classify(&words) != crate::runbook::destructive::Effect::ReadOnly
}

/// What one crash-and-resume produced.
struct Crashed {
    /// The outcome of the first run, when it got to the end.
    first: Option<Outcome>,
    resumed: Option<Outcome>,
    executed: Vec<Vec<String>>,
    journal: Vec<serde_json::Value>,
    verified: journal::Verification,
}

/// Run `scenario`, dying after journal write `crash_after` (never, with
/// `None`), then resume if the run did not finish.
fn crash_and_resume(
    runbook: &Runbook,
    scenario: &Scenario,
    crash_after: Option<u64>,
    at_once: bool,
) -> Crashed {
    let crashes: Vec<(u64, bool)> = crash_after.map(|n| (n, at_once)).into_iter().collect();
    crash_repeatedly(runbook, scenario, &crashes, Duration::ZERO)
}

/// Run `scenario` and die after each of `crashes` in turn (absolute journal
/// write numbers, ascending: the first kills the run, the next its resume,
/// ...), resuming after each; the last resume runs to the end. The
/// simulated hardware goes on for `downtime` while nothing runs.
fn crash_repeatedly(
    runbook: &Runbook,
    scenario: &Scenario,
    crashes: &[(u64, bool)],
    downtime: Duration,
) -> Crashed {
    let dir = tempfile::tempdir().unwrap();
    // The quarantine an earlier run left, as `swapguard test` seeds it.
    crate::simulate::seed_quarantine(scenario, dir.path()).unwrap();
    let clock = SimClock::new();
    let dead = Arc::new(AtomicBool::new(false));
    let executed = Rc::new(RefCell::new(Vec::new()));
    let mut backend = Crashable {
        inner: SimBackend::new(scenario.machine(runbook.backend.name()), clock.clone()).unwrap(),
        dead: Arc::clone(&dead),
        executed: Rc::clone(&executed),
    };
    let session = "md0-crash".to_string();
    let mut journal = Journal::create(dir.path(), &session).unwrap();
    let path = journal.path().to_path_buf();
    let kill = |journal: &mut Journal, at: Option<&(u64, bool)>| {
        journal.test_crash = at.map(|&(after, at_once)| TestCrash {
            after,
            at_once,
            dead: Arc::clone(&dead),
        });
    };
    kill(&mut journal, crashes.first());
    let interrupted = AtomicBool::new(false);
    let mut operator =
        ScriptedOperator::new(scenario.answers.clone(), true, Box::new(std::io::sink()));
    let first = {
        let mut run = Run {
            runbook,
            params: scenario.params.clone(),
            backend: &mut backend,
            operator: &mut operator,
            clock: &clock,
            journal: &mut journal,
            interrupted: &interrupted,
            session: session.clone(),
            state_dir: dir.path(),
            notify: &mut crate::notify::Silent,
        };
        engine::execute(&mut run)
    };
    drop(journal);
    let mut outcome = settle_crash(first, &dead);
    let first = outcome.clone();
    let mut resumed = None;
    let mut next = 1;
    while outcome.is_none() {
        // The process is restarted: the hardware is as the dead run left it,
        // plus whatever it did on its own meanwhile.
        let end = clock.now_ms() + downtime.as_millis() as u64;
        while clock.now_ms() < end {
            let left = Duration::from_millis(end - clock.now_ms());
            backend.inner.wait(left).unwrap();
        }
        dead.store(false, Ordering::SeqCst);
        let journaled = Journaled::read(&path).unwrap();
        if let Some(crate::engine::Ended::Finished { outcome: o, .. }) = &journaled.ended
            && journaled.not_resumable().is_some()
        {
            // Killed right after its last write: it had finished.
            assert_eq!(o, "completed", "a finished run that did not complete");
            resumed = Some(Outcome::Completed);
            break;
        }
        assert!(journaled.not_resumable().is_none());
        let (mut journal, torn) = Journal::reopen(&path, &journal::Key::of_journal(&path)).unwrap();
        assert_eq!(torn, 0);
        kill(&mut journal, crashes.get(next));
        next += 1;
        let mut answers = scenario.answers.clone();
        for (step, used) in &journaled.answers {
            if let Some(list) = answers.get_mut(step) {
                list.drain(..(*used).min(list.len()));
            }
        }
        answers.retain(|_, list| !list.is_empty());
        let mut operator = ScriptedOperator::new(answers, true, Box::new(std::io::sink()));
        let mut run = Run {
            runbook,
            params: journaled.params.clone(),
            backend: &mut backend,
            operator: &mut operator,
            clock: &clock,
            journal: &mut journal,
            interrupted: &interrupted,
            session: session.clone(),
            state_dir: dir.path(),
            notify: &mut crate::notify::Silent,
        };
        let result = engine::resume(
            &mut run,
            &Resume {
                journaled: &journaled,
                dropped_torn_bytes: 0,
                runbook_changed_reason: None,
            },
        );
        outcome = settle_crash(result, &dead);
        resumed = outcome.clone();
        assert!(next <= crashes.len() + 1, "the last resume must finish");
    }
    let executed = executed.borrow().clone();
    Crashed {
        first,
        resumed,
        executed,
        journal: journal::read(&path).unwrap(),
        verified: journal::verify(&path, Some(&journal::Key::of_journal(&path))).unwrap(),
    }
}

/// The outcome of a run that may have died: `None` when it did.
fn settle_crash(result: Result<Outcome>, dead: &AtomicBool) -> Option<Outcome> {
    let died = dead.load(Ordering::SeqCst);
    match result {
        Ok(o) if !died => Some(o),
        Ok(_) => None,
        Err(e) => {
            assert!(died, "the run failed without a crash: {e:#}");
            None
        }
    }
}

fn count<'a>(journal: &'a [serde_json::Value], event: &str) -> BTreeMap<&'a str, usize> {
    let mut out = BTreeMap::new();
    for e in journal.iter().filter(|e| e["event"] == event) {
        *out.entry(e["step"].as_str().unwrap_or("")).or_default() += 1;
    }
    out
}

#[test]
fn killed_after_every_journal_write_every_md_scenario_resumes_to_the_same_end() {
    let runs = killed_after_every_journal_write(&["md"]);
    assert!(runs > 100, "only {runs} crash points");
}

#[test]
fn killed_after_every_journal_write_every_zfs_scenario_resumes_to_the_same_end() {
    let runs = killed_after_every_journal_write(&["zfs"]);
    assert!(runs > 100, "only {runs} crash points");
}

#[test]
fn killed_after_every_journal_write_every_btrfs_scenario_resumes_to_the_same_end() {
    let runs = killed_after_every_journal_write(&["btrfs"]);
    assert!(runs > 100, "only {runs} crash points");
}

#[test]
fn killed_after_every_journal_write_every_megaraid_scenario_resumes_to_the_same_end() {
    let runs = killed_after_every_journal_write(&["megaraid"]);
    assert!(runs > 100, "only {runs} crash points");
}

/// Kill every shipped scenario of `backends` after each of its journal
/// writes, resume it, and check the end; returns the crash points tried.
fn killed_after_every_journal_write(backends: &[&str]) -> usize {
    let mut runs = 0;
    for (runbook, scenario) in scenarios_of(backends) {
        let clean = crash_and_resume(&runbook, &scenario, None, true);
        let expected = clean.first.expect("an uncrashed run finishes");
        let writes = clean.journal.len() as u64;
        for n in 1..writes {
            for at_once in [true, false] {
                runs += 1;
                let label = format!(
                    "{} killed after write {n}{}",
                    scenario.path.display(),
                    if at_once { "" } else { " (before the next)" }
                );
                let c = crash_and_resume(&runbook, &scenario, Some(n), at_once);
                let outcome = c.resumed.as_ref().or(c.first.as_ref()).unwrap();
                // The end is the one an unbroken run reaches. (A resume may
                // halt earlier than the unbroken run did, when it sees the
                // survivor's damage at its first look.)
                assert_eq!(outcome.kind(), expected.kind(), "{label}: {outcome:?}");
                // No command ran twice.
                let mut seen: Vec<&Vec<String>> = Vec::new();
                // (Unless the technician was asked, because the journal
                // could not tell whether it had run, and said yes.)
                let asked = asked_to_run_again(&c.journal);
                for argv in c.executed.iter().filter(|a| changes_something(a)) {
                    assert!(
                        !seen.contains(&argv) || asked.contains(&argv.join(" ")),
                        "{label}: ran twice: {argv:?}"
                    );
                    seen.push(argv);
                }
                // The journal is whole and ends with the run's end.
                assert!(c.verified.is_intact(), "{label}: {:?}", c.verified);
                let last = c.journal.last().unwrap();
                assert_eq!(last["event"], "run-finished", "{label}");
                assert_eq!(last["exit_code"], outcome.exit_code().number(), "{label}");
                // No step completed twice, no drive quarantined twice.
                for (step, n) in count(&c.journal, "step-completed") {
                    assert_eq!(n, 1, "{label}: step `{step}` completed {n} times");
                }
                assert!(count(&c.journal, "quarantined").values().all(|&n| n == 1));
                // Every LED switched on is off again at the end.
                let mut leds: BTreeMap<&str, bool> = BTreeMap::new();
                for e in c.journal.iter().filter(|e| e["event"] == "locate") {
                    leds.insert(e["drive"].as_str().unwrap(), e["on"] == true);
                }
                assert!(
                    !leds.values().any(|&on| on),
                    "{label}: LED left on: {leds:?}"
                );
            }
        }
    }
    runs
}

#[test]
fn killed_again_while_resuming_the_next_resume_completes() {
    let (runbook, scenario) = scenarios()
        .into_iter()
        .find(|(_, s)| s.path.ends_with("md-replace-member/healthy.toml"))
        .unwrap();
    let clean = crash_and_resume(&runbook, &scenario, None, true);
    let writes = clean.journal.len() as u64;
    let mut runs = 0;
    for first in (1..writes).step_by(4) {
        // The resume writes a few entries of its own before the walk goes on.
        for second in (first + 1..writes + 6).step_by(3) {
            for at_once in [true, false] {
                runs += 1;
                let c = crash_repeatedly(
                    &runbook,
                    &scenario,
                    &[(first, true), (second, at_once)],
                    Duration::ZERO,
                );
                let label = format!("killed after {first}, then after {second}");
                assert_eq!(c.resumed, Some(Outcome::Completed), "{label}");
                assert!(c.verified.is_intact(), "{label}: {:?}", c.verified);
                let mut seen: Vec<&Vec<String>> = Vec::new();
                for argv in c.executed.iter().filter(|a| a[0] == "mdadm") {
                    assert!(!seen.contains(&argv), "{label}: ran twice: {argv:?}");
                    seen.push(argv);
                }
                for (step, n) in count(&c.journal, "step-completed") {
                    assert_eq!(n, 1, "{label}: step `{step}` completed {n} times");
                }
            }
        }
    }
    assert!(runs > 50, "{runs}");
}

#[test]
fn killed_in_the_middle_of_the_rebuild_wait_the_swap_completes() {
    let (runbook, scenario) = scenarios()
        .into_iter()
        .find(|(r, s)| {
            r.step("fail").is_some() && s.path.ends_with("md-replace-member/healthy.toml")
        })
        .unwrap();
    let clean = crash_and_resume(&runbook, &scenario, None, true);
    let rebuild = clean
        .journal
        .iter()
        .find(|e| e["event"] == "step-started" && e["step"] == "rebuild")
        .unwrap();
    let n = rebuild["seq"].as_u64().unwrap() + 1;
    let c = crash_and_resume(&runbook, &scenario, Some(n), true);
    assert_eq!(c.resumed, Some(Outcome::Completed));
    let decision = c
        .journal
        .iter()
        .find(|e| e["event"] == "resume-decision")
        .unwrap();
    assert_eq!(
        (&decision["step"], &decision["decision"]),
        (&"rebuild".into(), &"run-again".into())
    );
    let resumed = c.journal.iter().find(|e| e["event"] == "resumed").unwrap();
    assert_eq!(resumed["unfinished"], "rebuild");
    assert_eq!(
        resumed["completed"],
        serde_json::json!([
            "antistatic",
            "fail",
            "remove",
            "locate",
            "pull",
            "insert",
            "add"
        ])
    );
}

#[test]
fn a_command_that_ran_but_was_not_journaled_is_marked_done_not_run_again() {
    let (runbook, scenario) = scenarios()
        .into_iter()
        .find(|(_, s)| s.path.ends_with("md-replace-member/healthy.toml"))
        .unwrap();
    let clean = crash_and_resume(&runbook, &scenario, None, true);
    // The last write before `fail`'s command output: its before-snapshot.
    let output = clean
        .journal
        .iter()
        .find(|e| e["event"] == "command" && e["step"] == "fail")
        .unwrap();
    let n = output["seq"].as_u64().unwrap() - 1;
    let c = crash_and_resume(&runbook, &scenario, Some(n), false);
    assert_eq!(c.resumed, Some(Outcome::Completed));
    let fails = c
        .executed
        .iter()
        .filter(|a| a.iter().any(|x| x == "--fail"))
        .count();
    assert_eq!(fails, 1);
    assert!(c.journal.iter().any(|e| e["event"] == "resume-decision"
        && e["step"] == "fail"
        && e["decision"] == "done-already"));
}

/// The simulator, with a technician who presses Ctrl-C as `step` starts.
struct CtrlC {
    inner: SimBackend,
    step: &'static str,
    interrupted: Arc<AtomicBool>,
    leds: Vec<(String, bool)>,
}

impl Backend for CtrlC {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn arrays(&mut self) -> Result<Vec<String>> {
        self.inner.arrays()
    }
    fn snapshot(&mut self, array: &str, depth: Depth) -> Result<Snapshot> {
        self.inner.snapshot(array, depth)
    }
    fn wait(&mut self, timeout: Duration) -> Result<()> {
        self.inner.wait(timeout)
    }
    fn execute(&mut self, argv: &[String], timeout: Duration) -> Result<CommandOutput> {
        self.inner.execute(argv, timeout)
    }
    fn start(
        &mut self,
        argv: &[String],
        timeout: Duration,
    ) -> Result<Box<dyn crate::backend::Running>> {
        self.inner.start(argv, timeout)
    }
    fn locate(&mut self, drive: &Identity, on: bool) -> Result<LocateOutcome> {
        self.leds.push((drive.dev.clone(), on));
        self.inner.locate(drive, on)
    }
    fn step_phase(&mut self, step: &StepFacts<'_>, phase: StepPhase, target: &Identity) {
        if step.id == self.step && phase == StepPhase::Began {
            self.interrupted.store(true, Ordering::SeqCst);
        }
        self.inner.step_phase(step, phase, target);
    }
}

#[test]
fn ctrl_c_during_the_pull_switches_the_led_off_and_the_run_resumes() {
    let (runbook, scenario) = scenarios()
        .into_iter()
        .find(|(_, s)| s.path.ends_with("md-replace-member/healthy.toml"))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let clock = SimClock::new();
    let interrupted = Arc::new(AtomicBool::new(false));
    let mut backend = CtrlC {
        inner: SimBackend::new(scenario.machine(runbook.backend.name()), clock.clone()).unwrap(),
        step: "pull",
        interrupted: Arc::clone(&interrupted),
        leds: Vec::new(),
    };
    let mut journal = Journal::create(dir.path(), "md0-ctrl-c").unwrap();
    let path = journal.path().to_path_buf();
    let mut operator =
        ScriptedOperator::new(scenario.answers.clone(), true, Box::new(std::io::sink()));
    let outcome = engine::execute(&mut Run {
        runbook: &runbook,
        params: scenario.params.clone(),
        backend: &mut backend,
        operator: &mut operator,
        clock: &clock,
        journal: &mut journal,
        interrupted: &interrupted,
        session: "md0-ctrl-c".into(),
        state_dir: dir.path(),
        notify: &mut crate::notify::Silent,
    })
    .unwrap();
    assert_eq!(
        outcome,
        Outcome::Interrupted {
            step: "pull".into()
        }
    );
    // The LED the run switched on (step `locate`) is off again.
    assert_eq!(
        backend.leds,
        [("sdb".to_string(), true), ("sdb".to_string(), false)]
    );
    let entries = journal::read(&path).unwrap();
    let last = entries.last().unwrap();
    assert_eq!(
        (&last["event"], &last["exit_code"]),
        (&"run-finished".into(), &130.into())
    );
    assert!(
        entries
            .iter()
            .any(|e| e["event"] == "locate" && e["step"] == "cleanup" && e["on"] == false)
    );

    // Later: resume. The pull is asked about again (nothing shows it done).
    interrupted.store(false, Ordering::SeqCst);
    backend.step = "none";
    let journaled = Journaled::read(&path).unwrap();
    assert_eq!(journaled.unfinished.as_ref().unwrap().step, "pull");
    assert!(journaled.leds_on.is_empty());
    let (mut journal, _) = Journal::reopen(&path, &journal::Key::of_journal(&path)).unwrap();
    let answers = BTreeMap::from([
        ("resume-pull".to_string(), vec!["yes".to_string()]),
        ("add".to_string(), vec!["0003".to_string()]),
    ]);
    let mut operator = ScriptedOperator::new(answers, false, Box::new(std::io::sink()));
    let mut run = Run {
        runbook: &runbook,
        params: journaled.params.clone(),
        backend: &mut backend,
        operator: &mut operator,
        clock: &clock,
        journal: &mut journal,
        interrupted: &interrupted,
        session: "md0-ctrl-c".into(),
        state_dir: dir.path(),
        notify: &mut crate::notify::Silent,
    };
    let outcome = engine::resume(
        &mut run,
        &Resume {
            journaled: &journaled,
            dropped_torn_bytes: 0,
            runbook_changed_reason: None,
        },
    )
    .unwrap();
    assert_eq!(outcome, Outcome::Completed);
    operator.finish().unwrap();
    assert!(
        journal::verify(&path, Some(&journal::Key::of_journal(&path)))
            .unwrap()
            .is_intact()
    );
}

#[test]
fn a_copy_or_rebuild_that_finished_while_no_one_watched_is_not_a_halt() {
    // Killed between steps, or during the wait, and away for an hour: the
    // kernel's copy or rebuild finished meanwhile.
    let cases = [
        ("md-replace-hot/healthy.toml", "step-completed", "replace"),
        ("md-replace-member/healthy.toml", "step-completed", "add"),
        ("md-replace-member/healthy.toml", "step-started", "rebuild"),
    ];
    for (file, event, step) in cases {
        let (runbook, scenario) = scenarios()
            .into_iter()
            .find(|(_, s)| s.path.ends_with(file))
            .unwrap();
        let clean = crash_and_resume(&runbook, &scenario, None, true);
        let n = clean
            .journal
            .iter()
            .find(|e| e["event"] == event && e["step"] == step)
            .unwrap()["seq"]
            .as_u64()
            .unwrap();
        let c = crash_repeatedly(&runbook, &scenario, &[(n, true)], Duration::from_secs(3600));
        assert_eq!(
            c.resumed,
            Some(Outcome::Completed),
            "{file} after {event} {step}"
        );
        assert!(c.verified.is_intact());
    }
}

#[test]
fn what_must_not_run_twice_is_every_change_and_no_read() {
    let argv = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
    for changes in [
        "mdadm /dev/md0 --fail /dev/sdb1",
        "zpool replace tank 123 /dev/sdc",
        "zpool offline tank 123",
        "btrfs replace start -r 2 /dev/sdc /mnt/data",
        "btrfs balance start -dconvert=raid1,soft /mnt/data",
        "sgdisk -R /dev/sdc /dev/sda",
        "wipefs -a /dev/sdc",
    ] {
        assert!(changes_something(&argv(changes)), "{changes}");
    }
    for reads in [
        "mdadm --detail /dev/md0",
        "zpool status -P tank",
        "btrfs replace status -1 /mnt/data",
        "btrfs filesystem show --raw /mnt/data",
        "findmnt --mountpoint /mnt/data",
        "sgdisk -p /dev/sda",
    ] {
        assert!(!changes_something(&argv(reads)), "{reads}");
    }
}

#[test]
fn regression_a_command_whose_expectation_held_before_it_ran_is_not_taken_as_run() {
    // zfs-replace-boot-mirror's `partition` step (`sgdisk -R`) expects only
    // `degraded = 1`, which holds before the command as after it. Killed
    // after the look before the command and before the command ran, the
    // resume once counted the step done, and `sgdisk -G` then failed on a
    // drive with no partition table.
    let (runbook, scenario) = scenarios()
        .into_iter()
        .find(|(_, s)| {
            s.path
                .ends_with("zfs-replace-boot-mirror/healthy-nvme.toml")
        })
        .unwrap();
    let clean = crash_and_resume(&runbook, &scenario, None, true);
    let output = clean
        .journal
        .iter()
        .find(|e| e["event"] == "command" && e["step"] == "partition")
        .unwrap();
    let n = output["seq"].as_u64().unwrap() - 1;
    let c = crash_and_resume(&runbook, &scenario, Some(n), true);
    assert_eq!(c.resumed, Some(Outcome::Completed), "{:?}", c.resumed);
    let copies = c
        .executed
        .iter()
        .filter(|a| a[0] == "sgdisk" && a.iter().any(|x| x == "-R"))
        .count();
    assert_eq!(copies, 1);
    assert!(
        !c.journal.iter().any(|e| e["event"] == "resume-decision"
            && e["step"] == "partition"
            && e["decision"] == "done-already"),
        "the step was counted done without its command"
    );
}
