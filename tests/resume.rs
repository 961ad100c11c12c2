//! Whole-process tests of crash safety: the real binary is killed right
//! after its Nth journal write (the debug-only `SWAPGUARD_CRASH_AFTER_WRITE`
//! switch aborts the process), the "hardware" (a copy of a captured md tree)
//! keeps its state, and `swapguard resume` finishes the job. Also
//! `journal verify`, `report` and the root-only runbook ownership check.

mod common;
use common::{Done, Signal, Test, root};

/// A scratch machine: a copied md tree, a state directory, a runbook copy.
struct Machine(Test);

impl std::ops::Deref for Machine {
    type Target = Test;
    fn deref(&self) -> &Test {
        &self.0
    }
}

impl Machine {
    fn new() -> Machine {
        Machine(Test::machine())
    }

    fn swapguard(&self, args: &[&str], crash_after: Option<u64>) -> Done {
        let run = self.0.swapguard(args);
        match crash_after {
            Some(n) => run.crash_after(n),
            None => run,
        }
        .run()
    }

    fn run(&self, crash_after: Option<u64>) -> Done {
        self.swapguard(&RUN, crash_after)
    }

    /// The technician pulls the target while swapguard is not running.
    fn pull(&self) {
        std::fs::remove_dir_all(self.path("tree/sys/block/nvme1n1")).unwrap();
    }
}

/// Kill the run right after it journals the start of the `pull` step.
const RUN: [&str; 8] = [
    "run",
    "pull-only.toml",
    "--array",
    "md0",
    "--target",
    "nvme1n1",
    "--answers",
    "answers.toml",
];

fn killed_during_the_pull() -> Machine {
    for n in 1..40 {
        let m = Machine::new();
        let done = m.run(Some(n));
        assert_eq!(done.code, None, "the kill switch aborts: {}", done.stderr);
        let last = m.journal().pop().unwrap();
        if last["event"] == "step-started" && last["step"] == "pull" {
            return m;
        }
    }
    panic!("the run never journaled the start of `pull`");
}

#[test]
fn killed_during_a_physical_step_resume_sees_the_pull_and_completes() {
    let m = killed_during_the_pull();
    m.pull();
    // An empty answers file: the resume must not need to ask anything.
    std::fs::write(m.path("answers-resume.toml"), "").unwrap();
    let done = m.swapguard(&["resume", "--answers", "answers-resume.toml"], None);
    assert_eq!(
        done.code,
        Some(0),
        "--- stdout\n{}\n--- stderr\n{}",
        done.stdout,
        done.stderr
    );
    assert!(done.stdout.contains("counts as done"), "{}", done.stdout);
    let journal = m.journal();
    let events: Vec<&str> = journal
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    let resumed = events.iter().position(|e| *e == "resumed").unwrap();
    assert_eq!(
        &events[resumed..],
        [
            "resumed",
            // The first look sees the pull: quarantined before anything
            // judges that look.
            "quarantined",
            "snapshot",
            "resume-decision",
            "snapshot",
            "step-completed",
            "run-finished"
        ]
    );
    assert_eq!(journal[resumed]["unfinished"], "pull");
    assert_eq!(journal.last().unwrap()["exit_code"], 0);
    // The chain runs through the crash and the resume.
    let session = m.session();
    let name = session.file_stem().unwrap().to_str().unwrap();
    let verify = m.swapguard(&["journal", "verify", name], None);
    assert_eq!(verify.code, Some(0), "{}", verify.stdout);
    assert!(
        verify.stdout.contains("hash chain intact"),
        "{}",
        verify.stdout
    );
}

#[test]
fn run_on_an_array_with_an_unfinished_session_offers_resume_and_refuses_a_second() {
    let m = killed_during_the_pull();
    let old = m.session();
    let name = old.file_stem().unwrap().to_str().unwrap().to_string();
    let state = m.path("state").display().to_string();
    let tree = m.path("tree").display().to_string();
    let done = m.run(None);
    assert_eq!(
        done.code,
        Some(2),
        "--- stdout\n{}\n--- stderr\n{}",
        done.stdout,
        done.stderr
    );
    for want in [
        "array `md0` has an unfinished session; not starting a second one".to_string(),
        format!("session `{name}` (runbook `pull-only.toml`"),
        "it stopped during step `pull`".to_string(),
        format!("to go on with it: swapguard resume {name} --state-dir {state} --sysroot {tree}\n"),
        "run again with `--new-session`".to_string(),
    ] {
        assert!(done.stderr.contains(&want), "{want:?}\n{}", done.stderr);
    }
    // Nothing was started: still the one journal, ending where it crashed.
    assert_eq!(m.session(), old);
    assert_eq!(m.journal().last().unwrap()["event"], "step-started");
    // The command it printed is the one that works: resume finds it.
    let resumable = m.swapguard(&["journal", "list"], None);
    assert!(
        resumable.stdout.contains("resumable"),
        "{}",
        resumable.stdout
    );

    // --new-session gives the old session up (journaled) and starts anew.
    m.pull();
    let done = m.swapguard(
        &[
            "run",
            "pull-only.toml",
            "--array",
            "md0",
            "--target",
            "nvme1n1",
            "--answers",
            "answers.toml",
            "--new-session",
        ],
        None,
    );
    // The target is gone before the new run starts: preflight refuses it.
    assert_eq!(done.code, Some(4), "{}\n{}", done.stdout, done.stderr);
    assert!(
        done.stderr
            .contains(&format!("session `{name}` abandoned (journaled)")),
        "{}",
        done.stderr
    );
    let journal: Vec<serde_json::Value> = std::fs::read_to_string(&old)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let tail: Vec<&str> = journal[journal.len() - 2..]
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(tail, ["abandoned", "run-finished"]);
    assert_eq!(journal.last().unwrap()["outcome"], "abandoned");
    let sessions: Vec<String> = std::fs::read_dir(m.path("state/sessions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().to_string())
        .filter(|n| *n != format!("{name}.jsonl"))
        .collect();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let new = sessions[0].trim_end_matches(".jsonl");
    assert_eq!(journal[journal.len() - 2]["by"], new);
    // The chain still verifies, and the abandoned session is not resumed.
    let verify = m.swapguard(&["journal", "verify", &name], None);
    assert_eq!(verify.code, Some(0), "{}", verify.stdout);
    let resume = m.swapguard(&["resume", &name], None);
    assert_eq!(resume.code, Some(2));
    assert!(
        resume.stderr.contains("already finished (abandoned)"),
        "{}",
        resume.stderr
    );
    let list = m.swapguard(&["journal", "list"], None);
    assert!(
        list.stdout.contains("abandoned for a new session"),
        "{}",
        list.stdout
    );
}

#[test]
fn a_survivor_that_degraded_while_no_one_watched_halts_the_resume() {
    let m = killed_during_the_pull();
    // Hands in the chassis, no one watching: the survivor collects errors.
    let errors = m.path("tree/sys/block/md0/md/dev-nvme0n1/errors");
    assert!(errors.exists(), "fixture has {}", errors.display());
    std::fs::write(&errors, "7\n").unwrap();
    m.pull();
    std::fs::write(m.path("answers-resume.toml"), "").unwrap();
    let done = m.swapguard(&["resume", "--answers", "answers-resume.toml"], None);
    assert_eq!(done.code, Some(3), "{}\n{}", done.stdout, done.stderr);
    assert!(
        done.stdout.contains("while swapguard was not running"),
        "{}",
        done.stdout
    );
    let halted = m
        .journal()
        .into_iter()
        .find(|e| e["event"] == "halted")
        .unwrap();
    assert_eq!(halted["violations"][0]["what"], "md.errors");
    assert_eq!(halted["violations"][0]["after"], "7");
}

#[test]
fn a_changed_runbook_is_refused_unless_a_reason_is_recorded() {
    let m = killed_during_the_pull();
    m.pull();
    let mut text = std::fs::read_to_string(m.path("pull-only.toml")).unwrap();
    text.push_str("# edited while the run was stopped\n");
    std::fs::write(m.path("pull-only.toml"), text).unwrap();
    std::fs::write(m.path("answers-resume.toml"), "").unwrap();
    let done = m.swapguard(&["resume", "--answers", "answers-resume.toml"], None);
    assert_eq!(done.code, Some(2));
    assert!(
        done.stderr.contains("changed since session") && done.stderr.contains("--runbook-changed"),
        "{}",
        done.stderr
    );
    let done = m.swapguard(
        &[
            "resume",
            "--array",
            "md0",
            "--answers",
            "answers-resume.toml",
            "--runbook-changed",
            "comment added, steps unchanged",
        ],
        None,
    );
    assert_eq!(done.code, Some(0), "{}\n{}", done.stdout, done.stderr);
    let resumed = m
        .journal()
        .into_iter()
        .find(|e| e["event"] == "resumed")
        .unwrap();
    assert_eq!(
        resumed["runbook_changed_reason"],
        "comment added, steps unchanged"
    );
}

#[test]
fn resume_without_an_unfinished_session_says_so() {
    let m = Machine::new();
    let done = m.swapguard(&["resume"], None);
    assert_eq!(done.code, Some(2));
    assert!(
        done.stderr.contains("no unfinished session"),
        "{}",
        done.stderr
    );
}

#[test]
fn a_finished_session_is_not_resumed() {
    let m = Machine::new();
    let m = {
        // Interrupt-free finished run: pull before it starts watching is a
        // halt, which ends the session.
        m.pull();
        let done = m.run(None);
        assert_eq!(done.code, Some(4), "{}", done.stdout);
        m
    };
    let name = m
        .session()
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let done = m.swapguard(&["resume", &name], None);
    assert_eq!(done.code, Some(2));
    assert!(done.stderr.contains("already finished"), "{}", done.stderr);
}

/// A dry-run session of the shipped healthy scenario, in `m`'s state dir.
fn dry_run(m: &Machine) -> String {
    m.0.swapguard(&[
        "dry-run",
        "runbooks/md-replace-member.toml",
        "--scenario",
        "runbooks/scenarios/md-replace-member/healthy.toml",
    ])
    .cwd(root())
    .no_sysroot()
    .run()
    .code(0);
    m.session_name()
}

#[test]
fn journal_verify_detects_an_edited_entry() {
    let m = Machine::new();
    let name = dry_run(&m);
    let done = m.swapguard(&["journal", "verify", &name], None);
    assert_eq!(done.code, Some(0), "{}", done.stdout);
    // Someone changes the typed confirmation after the fact.
    let path = m.session();
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen("\"answer\":\"0003\"", "\"answer\":\"0004\"", 1);
    assert_ne!(text, edited);
    std::fs::write(&path, edited).unwrap();
    let done = m.swapguard(&["journal", "verify", &name], None);
    assert_eq!(done.code, Some(1), "{}", done.stdout);
    assert!(done.stdout.contains("BROKEN"), "{}", done.stdout);
    assert!(done.stdout.contains("was edited"), "{}", done.stdout);
}

#[test]
fn a_dry_run_session_cannot_be_resumed_from_another_process() {
    let m = Machine::new();
    let name = dry_run(&m);
    // Make it look interrupted: drop the run-finished line.
    let path = m.session();
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = text.lines().collect();
    std::fs::write(&path, format!("{}\n", kept[..kept.len() - 1].join("\n"))).unwrap();
    let done = m.swapguard(&["resume", &name], None);
    assert_eq!(done.code, Some(2));
    assert!(done.stderr.contains("was a dry-run"), "{}", done.stderr);
}

#[test]
fn report_renders_the_session_for_the_ticket() {
    let m = Machine::new();
    let name = dry_run(&m);
    let done = m.swapguard(&["report", &name], None);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    for want in [
        "# swapguard session `md0-",
        "| runbook | Replace one member of a Linux md array (`runbooks/md-replace-member.toml`) |",
        "| parameter `target` | `sdb` |",
        "| ended | **completed** (exit 0)",
        "hash chain intact, every line's MAC checked with the key; head `",
        "## Health before (baseline)",
        "| sda (serial S3Z1NB0K100001, bay 0) | in-sync |",
        "### 2. `fail` (command): completed at",
        "- command `mdadm /dev/md0 --fail /dev/sdb`: exit 0",
        "- answer: \"This cannot be undone.",
        "→ **0003**",
        "- quarantined: sdb (serial S3Z1NB0K100002, bay 1)",
        "## Drives quarantined",
        "## Health after (last look: after rebuild)",
    ] {
        assert!(
            done.stdout.contains(want),
            "report lacks {want:?}:\n{}",
            done.stdout
        );
    }
}

#[test]
fn report_of_a_halt_has_the_before_and_after_values() {
    let m = Machine::new();
    m.0.swapguard(&[
        "dry-run",
        "runbooks/md-replace-member.toml",
        "--scenario",
        "runbooks/scenarios/md-replace-member/incident-2019.toml",
    ])
    .cwd(root())
    .no_sysroot()
    .run()
    .code(0);
    let name = m.session_name();
    let done = m.swapguard(&["report", &name], None);
    assert!(done.stdout.contains("## Halts"), "{}", done.stdout);
    assert!(
        done.stdout.contains("| who | what | before | after |"),
        "{}",
        done.stdout
    );
    assert!(done.stdout.contains("**halted**"), "{}", done.stdout);
}

#[test]
fn as_root_a_runbook_others_can_write_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("not root: the ownership check only applies to root");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let m = Machine::new();
    let rb = m.path("pull-only.toml");
    std::fs::set_permissions(&rb, std::fs::Permissions::from_mode(0o664)).unwrap();
    let done = m.run(None);
    assert_eq!(done.code, Some(2));
    assert!(
        done.stderr.contains("refusing runbook")
            && done.stderr.contains("writable by its group (mode 0664)"),
        "{}",
        done.stderr
    );
    assert!(!m.path("state/sessions").exists(), "nothing was journaled");
    // Not writable by others, but owned by another user: refused too.
    std::fs::set_permissions(&rb, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(&rb, Some(65534), None).unwrap();
    let done = m.run(None);
    assert_eq!(done.code, Some(2));
    assert!(
        done.stderr.contains("owned by user id 65534, not root"),
        "{}",
        done.stderr
    );
}

#[test]
fn sigterm_during_the_pull_stops_with_130_and_resume_finishes_the_job() {
    let m = Machine::new();
    let done =
        m.0.swapguard(&RUN)
            .signal_when("watching every drive", Signal::SIGTERM);
    assert_eq!(done.code, Some(130), "{}", done.both());
    let journal = m.journal();
    assert!(
        journal
            .iter()
            .any(|e| e["event"] == "interrupted" && e["step"] == "pull"),
        "{journal:?}"
    );
    // The technician pulls the drive after all, then resumes.
    m.pull();
    std::fs::write(m.path("answers-resume.toml"), "").unwrap();
    let list = m.swapguard(&["journal", "list"], None);
    assert!(
        list.stdout.contains("interrupted (exit 130); resumable"),
        "{}",
        list.stdout
    );
    let done = m.swapguard(&["resume", "--answers", "answers-resume.toml"], None);
    assert_eq!(done.code, Some(0), "{}\n{}", done.stdout, done.stderr);
    let journal = m.journal();
    assert_eq!(journal.last().unwrap()["outcome"], "completed");
    assert!(
        journal
            .iter()
            .any(|e| e["event"] == "resume-decision" && e["decision"] == "done-already")
    );
}

#[test]
fn at_a_terminal_the_technician_chooses_to_start_the_unfinished_step_again() {
    use expectrl::{Eof, Session, WaitStatus};
    let m = killed_during_the_pull();
    // The drive was not pulled: nothing shows the step done, so the
    // technician is shown the step and the state, and asked.
    let cmd = m.0.swapguard(&["resume"]).env("TERM", "dumb").pty_command();
    let mut session = Session::spawn(cmd).unwrap();
    session.set_expect_timeout(Some(std::time::Duration::from_secs(30)));
    session.expect("was started at").unwrap();
    session.expect("Start step `pull` again").unwrap();
    session.expect("y/n").unwrap();
    session.send_line("y").unwrap();
    session.expect("watching every drive").unwrap();
    m.pull();
    session.expect("quarantined").unwrap();
    session.expect(Eof).unwrap();
    let status = session.get_process().wait().unwrap();
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "exit status {status:?}"
    );
    let journal = m.journal();
    let decision = journal
        .iter()
        .find(|e| e["event"] == "resume-decision")
        .unwrap();
    assert_eq!(decision["decision"], "run-again");
    assert_eq!(journal.last().unwrap()["outcome"], "completed");
}
