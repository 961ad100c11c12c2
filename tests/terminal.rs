//! The terminal operator, proven through a real pseudo-terminal: the binary
//! runs against a copy of a captured md tree, a person's keystrokes answer
//! its prompts, and the "pull" is removing the drive from the copied tree.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use expectrl::{Eof, Regex, Session, WaitStatus};

const BIN: &str = env!("CARGO_BIN_EXE_swapguard");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn pull_run(term: &str) {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    copy_tree(&root().join("tests/fixtures/md/clean"), &tree);
    let state = dir.path().join("state");
    let mut cmd = Command::new(BIN);
    cmd.current_dir(root())
        .args(["run", "tests/fixtures/runbooks-e2e/pull-only.toml"])
        .args(["--array", "md0", "--target", "LAB-B-0002"])
        .arg("--sysroot")
        .arg(&tree)
        .arg("--state-dir")
        .arg(&state)
        .env("TERM", term)
        .env("NO_COLOR", "1");
    let mut session = Session::spawn(cmd).unwrap();
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    session.expect("STEP 1 OF 2").unwrap();
    session.expect("anti-static wrist strap").unwrap();
    session.expect("y/n").unwrap();
    session.send_line("y").unwrap();
    session.expect("STEP 2 OF 2").unwrap();
    session.expect("LAB-B-0002").unwrap();
    // The technician pulls the drive: it leaves /sys/block, while md's own
    // files still list it (md notices only at the next I/O).
    std::fs::remove_dir_all(tree.join("sys/block/nvme1n1")).unwrap();
    session.expect("quarantined").unwrap();
    session.expect(Eof).unwrap();
    let status = session.get_process().wait().unwrap();
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "exit status {status:?}"
    );
    let journal = std::fs::read_dir(state.join("sessions"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(journal).unwrap();
    for event in [
        "\"event\":\"answer\"",
        "\"event\":\"quarantined\"",
        "\"outcome\":\"completed\"",
    ] {
        assert!(text.contains(event), "journal lacks {event}:\n{text}");
    }
}

#[test]
fn interactive_run_on_a_plain_serial_console() {
    pull_run("dumb");
}

#[test]
fn interactive_run_on_a_full_terminal() {
    pull_run("xterm-256color");
}

#[test]
fn the_demo_at_a_terminal_makes_the_person_the_technician() {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(root())
        .arg("demo")
        .env("TERM", "dumb")
        .env("NO_COLOR", "1");
    let mut session = Session::spawn(cmd).unwrap();
    session.set_expect_timeout(Some(Duration::from_secs(60)));
    // Part 1: a healthy swap, answered by the person.
    session.expect("PART 1").unwrap();
    session.expect("y/n").unwrap();
    session.send_line("y").unwrap();
    session.expect("S3Z1NB0K900003").unwrap();
    session.expect("type it here").unwrap();
    session.send_line("0003").unwrap();
    session.expect("expectation met: completed").unwrap();
    // Part 2: the incident; the guard halts at the pull.
    session.expect("PART 2").unwrap();
    session.expect("y/n").unwrap();
    session.send_line("y").unwrap();
    session.expect("STOP").unwrap();
    session.expect("S3Z1NB0K100001").unwrap();
    session
        .expect("expectation met: halted at step `pull`")
        .unwrap();
    session.expect(Eof).unwrap();
    let status = session.get_process().wait().unwrap();
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "exit status {status:?}"
    );
}

/// `pull-only.toml` with a typed-serial confirmation on its physical step.
fn confirmed_pull_runbook(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("tests/fixtures/runbooks-e2e/pull-only.toml"))
        .unwrap()
        .replace(
            "quarantine = \"target\"\n",
            "quarantine = \"target\"\nconfirm = \"type-serial\"\n",
        );
    assert!(text.contains("confirm = \"type-serial\""));
    let path = dir.join("confirmed-pull.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Start a run of the confirmed pull at a dumb terminal; returns the
/// session (at the physical step's serial prompt), the tree and the state
/// directory.
fn confirmed_pull(dir: &Path) -> (Session, PathBuf, PathBuf) {
    let tree = dir.join("tree");
    copy_tree(&root().join("tests/fixtures/md/clean"), &tree);
    let state = dir.join("state");
    let mut cmd = Command::new(BIN);
    cmd.current_dir(root())
        .arg("run")
        .arg(confirmed_pull_runbook(dir))
        .args(["--array", "md0", "--target", "LAB-B-0002"])
        .arg("--sysroot")
        .arg(&tree)
        .arg("--state-dir")
        .arg(&state)
        .env("TERM", "dumb")
        .env("NO_COLOR", "1");
    let mut session = Session::spawn(cmd).unwrap();
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    session.expect("y/n").unwrap();
    session.send_line("y").unwrap();
    session.expect("STEP 2 OF 2").unwrap();
    session.expect("last 4 characters").unwrap();
    (session, tree, state)
}

fn journal_text(state: &Path) -> String {
    let journal = std::fs::read_dir(state.join("sessions"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::read_to_string(journal).unwrap()
}

#[test]
fn physical_step_confirm_is_asked_before_the_pull() {
    let dir = tempfile::tempdir().unwrap();
    let (mut session, tree, state) = confirmed_pull(dir.path());
    session.send_line("0002").unwrap();
    session.expect("watching every drive").unwrap();
    std::fs::remove_dir_all(tree.join("sys/block/nvme1n1")).unwrap();
    session.expect("quarantined").unwrap();
    session.expect(Eof).unwrap();
    let status = session.get_process().wait().unwrap();
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "exit status {status:?}"
    );
    let text = journal_text(&state);
    let answer = text
        .lines()
        .position(|l| l.contains("\"event\":\"answer\"") && l.contains("\"answer\":\"0002\""))
        .unwrap_or_else(|| panic!("no typed answer for the pull in the journal:\n{text}"));
    let completed = text
        .lines()
        .position(|l| l.contains("\"event\":\"step-completed\"") && l.contains("\"pull\""))
        .unwrap_or_else(|| panic!("pull never completed:\n{text}"));
    assert!(answer < completed, "{text}");
}

#[test]
fn physical_step_confirm_typed_wrong_aborts_before_the_pull() {
    let dir = tempfile::tempdir().unwrap();
    let (mut session, _tree, state) = confirmed_pull(dir.path());
    // The terminal gives three tries; the engine refuses the last.
    for _ in 0..3 {
        session.send_line("0001").unwrap();
    }
    session.expect("serial ends in `0002`").unwrap();
    session.expect(Eof).unwrap();
    let status = session.get_process().wait().unwrap();
    assert!(
        matches!(status, WaitStatus::Exited(_, 5)),
        "exit status {status:?}"
    );
    let text = journal_text(&state);
    assert!(text.contains("\"answer\":\"0001\""), "{text}");
    assert!(text.contains("\"event\":\"aborted\""), "{text}");
    assert!(!text.contains("\"event\":\"quarantined\""), "{text}");
}

/// A fake `smartctl` first on PATH: `nvme0n1` (the survivor) reports 7
/// media errors, `nvme1n1` is healthy (captured Intel NVMe output).
fn failing_survivor_path(dir: &Path) -> String {
    let healthy = std::fs::read_to_string(
        root().join("tests/fixtures/smart/smartctl-nvme-healthy-intel.json"),
    )
    .unwrap();
    let mut failing: serde_json::Value = serde_json::from_str(&healthy).unwrap();
    failing["nvme_smart_health_information_log"]["media_errors"] = serde_json::json!(7);
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(dir.join("failing.json"), failing.to_string()).unwrap();
    std::fs::write(dir.join("healthy.json"), healthy).unwrap();
    let script = format!(
        "#!/bin/sh\ncase \"$3\" in\n  /dev/nvme0n1) cat '{0}/failing.json' ;;\n  *) cat '{0}/healthy.json' ;;\nesac\n",
        dir.display()
    );
    let path = bin.join("smartctl");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Programs come from the state directory's search path, never PATH.
    let search = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display());
    let state = dir.join("state");
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(&state)
        .unwrap();
    let mut config = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(state.join("config.toml"))
        .unwrap();
    use std::io::Write;
    writeln!(config, "path = {search:?}").unwrap();
    search
}

#[test]
fn a_failing_survivor_is_overridden_at_the_terminal_only_with_a_written_reason() {
    for (reason, refused) in [
        ("", true),
        ("lead approved, backup verified at 09:00", false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        copy_tree(&root().join("tests/fixtures/md/clean"), &tree);
        let state = dir.path().join("state");
        let mut cmd = Command::new(BIN);
        cmd.current_dir(root())
            .args(["run", "tests/fixtures/runbooks-e2e/pull-only.toml"])
            .args(["--array", "md0", "--target", "LAB-B-0002"])
            .arg("--sysroot")
            .arg(&tree)
            .arg("--state-dir")
            .arg(&state)
            .env("PATH", failing_survivor_path(dir.path()))
            .env("TERM", "dumb")
            .env("NO_COLOR", "1");
        let mut session = Session::spawn(cmd).unwrap();
        session.set_expect_timeout(Some(Duration::from_secs(30)));
        session.expect("nvme.media_errors = 7").unwrap();
        session.expect("type the reason").unwrap();
        session.send_line(reason).unwrap();
        if refused {
            session.expect("no written reason").unwrap();
            session.expect(Eof).unwrap();
            let status = session.get_process().wait().unwrap();
            assert!(
                matches!(status, WaitStatus::Exited(_, 4)),
                "exit status {status:?}"
            );
            continue;
        }
        session.expect("the refusal is overridden").unwrap();
        session.expect("STEP 1 OF 2").unwrap();
        session.expect("y/n").unwrap();
        session.send_line("y").unwrap();
        session.expect("STEP 2 OF 2").unwrap();
        std::fs::remove_dir_all(tree.join("sys/block/nvme1n1")).unwrap();
        session.expect("quarantined").unwrap();
        session.expect(Eof).unwrap();
        let status = session.get_process().wait().unwrap();
        assert!(
            matches!(status, WaitStatus::Exited(_, 0)),
            "exit status {status:?}"
        );
        let journal = std::fs::read_dir(state.join("sessions"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let text = std::fs::read_to_string(journal).unwrap();
        assert!(
            text.contains("\"event\":\"survivor-accepted\"") && text.contains(reason),
            "{text}"
        );
    }
}

/// Spawn `swapguard run RUNBOOK` on a copy of the clean md tree at a
/// terminal of `cols` columns; returns the session, the tree and the state
/// directory.
fn spawn_run(dir: &Path, runbook: &Path, term: &str, cols: u16) -> (Session, PathBuf, PathBuf) {
    let tree = dir.join("tree");
    copy_tree(&root().join("tests/fixtures/md/clean"), &tree);
    let state = dir.join("state");
    let mut cmd = Command::new(BIN);
    cmd.current_dir(root())
        .arg("run")
        .arg(runbook)
        .args(["--array", "md0", "--target", "LAB-B-0002"])
        .arg("--sysroot")
        .arg(&tree)
        .arg("--state-dir")
        .arg(&state)
        .env("TERM", term)
        .env("NO_COLOR", "1");
    let mut session = Session::spawn(cmd).unwrap();
    session.get_process_mut().set_window_size(cols, 24).unwrap();
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    (session, tree, state)
}

fn pull_only() -> PathBuf {
    root().join("tests/fixtures/runbooks-e2e/pull-only.toml")
}

/// The terminals every prompt test runs at.
const TERMINALS: [(&str, u16); 3] = [("xterm-256color", 80), ("xterm-256color", 60), ("dumb", 80)];

#[test]
fn yes_no_answers_read_a_whole_line_so_maybe_and_not_yet_are_not_yes() {
    // The bug: dialoguer's Confirm read single keys and the last y or n
    // won, so `maybe` + Enter answered yes and `not yet` answered yes.
    for (term, cols) in TERMINALS {
        let dir = tempfile::tempdir().unwrap();
        let (mut session, _tree, state) = spawn_run(dir.path(), &pull_only(), term, cols);
        session.expect("STEP 1 OF 2").unwrap();
        // What no does is said before it can be typed.
        session
            .expect("answering no stops the run here; nothing more is done")
            .unwrap();
        for (typed, refused) in [
            ("maybe", "`maybe` is not an answer"),
            ("not yet", "`not yet` is not an answer"),
            ("", "an empty line is not an answer"),
            ("yes please", "`yes please` is not an answer"),
        ] {
            session.expect("answer yes or no [y/n]: ").unwrap();
            session.send_line(typed).unwrap();
            // The line typed is echoed as typed.
            if !typed.is_empty() {
                session.expect(typed).unwrap();
            }
            session.expect(refused).unwrap();
            session.expect("type y or yes to go on").unwrap();
        }
        session.expect("answer yes or no [y/n]: ").unwrap();
        session.send_line("  No ").unwrap();
        session.expect("aborted at step `antistatic`").unwrap();
        session.expect(Eof).unwrap();
        let status = session.get_process().wait().unwrap();
        assert!(
            matches!(status, WaitStatus::Exited(_, 5)),
            "{term} at {cols} columns: exit status {status:?}"
        );
        let text = journal_text(&state);
        let answers: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("\"event\":\"answer\""))
            .collect();
        assert_eq!(answers.len(), 1, "{term}: {text}");
        assert!(answers[0].contains("\"answer\":\"no\""), "{term}: {text}");
        assert!(!text.contains("\"step\":\"pull\""), "{term}: {text}");
    }
}

#[test]
fn yes_is_y_or_yes_in_any_case_at_every_terminal() {
    for (term, cols) in TERMINALS {
        let dir = tempfile::tempdir().unwrap();
        let (mut session, tree, state) = spawn_run(dir.path(), &pull_only(), term, cols);
        session.expect("answer yes or no [y/n]: ").unwrap();
        session.send_line(" YES").unwrap();
        session.expect("STEP 2 OF 2").unwrap();
        session.expect("watching every drive").unwrap();
        std::fs::remove_dir_all(tree.join("sys/block/nvme1n1")).unwrap();
        session.expect(Eof).unwrap();
        let status = session.get_process().wait().unwrap();
        assert!(
            matches!(status, WaitStatus::Exited(_, 0)),
            "{term} at {cols} columns: exit status {status:?}"
        );
        assert!(journal_text(&state).contains("\"answer\":\"yes\""));
    }
}

/// The session's journal path and name.
fn session_of(state: &Path) -> String {
    let journal = std::fs::read_dir(state.join("sessions"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    journal.file_stem().unwrap().to_string_lossy().into_owned()
}

/// After an interruption: status 130 (exited, or killed by the re-raised
/// SIGINT, which a shell reports as 130), `interrupted` journaled, never
/// an error, and the exact resume command printed.
fn assert_interrupted(mut session: Session, tree: &Path, state: &Path, what: &str) {
    let name = session_of(state);
    let command = format!(
        "swapguard resume {name} --state-dir {} --sysroot {}",
        state.display(),
        tree.display()
    );
    session.expect(command.as_str()).unwrap();
    session.expect(Eof).unwrap();
    let status = session.get_process().wait().unwrap();
    assert!(
        matches!(
            status,
            WaitStatus::Exited(_, 130) | WaitStatus::Signaled(_, expectrl::Signal::SIGINT, _)
        ),
        "{what}: exit status {status:?}"
    );
    let text = journal_text(state);
    assert!(text.contains("\"event\":\"interrupted\""), "{what}: {text}");
    assert!(
        text.contains("\"outcome\":\"interrupted\""),
        "{what}: {text}"
    );
    assert!(!text.contains("\"outcome\":\"error"), "{what}: {text}");
}

#[test]
fn ctrl_c_at_a_confirm_prompt_always_ends_interrupted_with_the_resume_command() {
    // The bug: 3 of 8 Ctrl-C at a confirm prompt ended `error: … read
    // interrupted`, exit 1, journal "error".
    for round in 0..5 {
        let (term, cols) = TERMINALS[round % TERMINALS.len()];
        let dir = tempfile::tempdir().unwrap();
        let (mut session, tree, state) = spawn_run(dir.path(), &pull_only(), term, cols);
        session.expect("answer yes or no [y/n]: ").unwrap();
        if round % 2 == 1 {
            // Half-typed answers do not matter.
            session.send("ye").unwrap();
            session.expect("ye").unwrap();
        }
        session.send("\x03").unwrap();
        assert_interrupted(
            session,
            &tree,
            &state,
            &format!("round {round}, {term} at {cols}"),
        );
    }
}

#[test]
fn ctrl_c_at_a_typed_serial_prompt_always_ends_interrupted_with_the_resume_command() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let (mut session, tree, state) = confirmed_pull(dir.path());
        session.expect("type it here: ").unwrap();
        session.send("\x03").unwrap();
        assert_interrupted(session, &tree, &state, &format!("round {round}"));
    }
}

#[test]
fn ctrl_c_during_a_physical_wait_always_ends_interrupted_with_the_resume_command() {
    for round in 0..5 {
        let (term, cols) = TERMINALS[round % TERMINALS.len()];
        let dir = tempfile::tempdir().unwrap();
        let (mut session, tree, state) = spawn_run(dir.path(), &pull_only(), term, cols);
        session.expect("answer yes or no [y/n]: ").unwrap();
        session.send_line("y").unwrap();
        session.expect("watching every drive").unwrap();
        // Not at a prompt: the terminal turns Ctrl-C into SIGINT.
        session.send("\x03").unwrap();
        assert_interrupted(
            session,
            &tree,
            &state,
            &format!("round {round}, {term} at {cols}"),
        );
    }
}

#[test]
fn ctrl_c_at_a_demo_prompt_ends_130_and_says_how_to_see_it_again() {
    for term in ["dumb", "xterm-256color"] {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(root())
            .arg("demo")
            .env("TERM", term)
            .env("NO_COLOR", "1");
        let mut session = Session::spawn(cmd).unwrap();
        session.set_expect_timeout(Some(Duration::from_secs(60)));
        session.expect("PART 1").unwrap();
        session.expect("answer yes or no [y/n]: ").unwrap();
        session.send("\x03").unwrap();
        session.expect("interrupted; nothing was touched").unwrap();
        session.expect("swapguard demo").unwrap();
        session.expect(Eof).unwrap();
        let status = session.get_process().wait().unwrap();
        assert!(
            matches!(status, WaitStatus::Exited(_, 130)),
            "{term}: exit status {status:?}"
        );
    }
}

/// The banner's rows, in order, as the technician reads them.
fn banner_needles(state: &Path) -> Vec<String> {
    let name = session_of(state);
    vec![
        "swapguard run: pull one drive (test)".to_string(),
        "tests/fixtures/runbooks-e2e/pull-only.toml".to_string(),
        "md0".to_string(),
        // The target's row wraps at 60 columns: one word at a time.
        "nvme1n1,".to_string(),
        "LAB-B-0002,".to_string(),
        "QEMU".to_string(),
        "bay".to_string(),
        name.clone(),
        state
            .join("sessions")
            .join(format!("{name}.jsonl"))
            .display()
            .to_string(),
    ]
}

#[test]
fn the_start_banner_names_runbook_array_target_session_and_journal_before_step_1() {
    for (term, cols) in TERMINALS {
        let dir = tempfile::tempdir().unwrap();
        let (mut session, _tree, state) = spawn_run(dir.path(), &pull_only(), term, cols);
        session.expect("swapguard run: ").unwrap();
        // The journal exists once the banner is drawn.
        for needle in banner_needles(&state).iter().skip(1) {
            session.expect(needle.as_str()).unwrap();
        }
        session.expect("STEP 1 OF 2").unwrap();
        session.expect("answer yes or no [y/n]: ").unwrap();
        session.send_line("n").unwrap();
        session.expect(Eof).unwrap();
        let status = session.get_process().wait().unwrap();
        assert!(
            matches!(status, WaitStatus::Exited(_, 5)),
            "{term} at {cols}: exit status {status:?}"
        );
    }
}

#[test]
fn the_start_banner_is_in_a_scripted_run_transcript_before_step_1() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    copy_tree(&root().join("tests/fixtures/md/clean"), &tree);
    let state = dir.path().join("state");
    let answers = dir.path().join("answers.toml");
    std::fs::write(&answers, "antistatic = \"no\"\n").unwrap();
    let out = Command::new(BIN)
        .current_dir(root())
        .args(["run", "tests/fixtures/runbooks-e2e/pull-only.toml"])
        .args(["--array", "md0", "--target", "LAB-B-0002"])
        .arg("--answers")
        .arg(&answers)
        .arg("--sysroot")
        .arg(&tree)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{stdout}");
    let name = session_of(&state);
    let head: Vec<&str> = stdout.lines().take(7).collect();
    assert_eq!(head[0], "swapguard run: pull one drive (test)", "{stdout}");
    assert_eq!(
        head[1], "  file: tests/fixtures/runbooks-e2e/pull-only.toml",
        "{stdout}"
    );
    assert_eq!(head[2], "  array: md0", "{stdout}");
    assert!(
        head[3].starts_with("  target: nvme1n1, serial LAB-B-0002, model QEMU NVMe Ctrl, "),
        "{stdout}"
    );
    assert_eq!(head[4], format!("  session: {name}"), "{stdout}");
    assert_eq!(
        head[5],
        format!(
            "  journal: {}",
            state
                .join("sessions")
                .join(format!("{name}.jsonl"))
                .display()
        ),
        "{stdout}"
    );
    let step1 = stdout.find("step 1/2").unwrap();
    assert!(stdout.find("swapguard run:").unwrap() < step1, "{stdout}");
}

/// `pull-only.toml` with the pull's timeout cut to `timeout`.
fn short_pull_runbook(dir: &Path, timeout: &str) -> PathBuf {
    let text = std::fs::read_to_string(pull_only())
        .unwrap()
        .replace("timeout = \"60s\"", &format!("timeout = \"{timeout}\""));
    assert!(text.contains(&format!("timeout = \"{timeout}\"")));
    let path = dir.join("short-pull.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_physical_step_shows_a_live_line_and_at_its_timeout_asks_whether_to_keep_waiting() {
    for (term, cols) in TERMINALS {
        let dir = tempfile::tempdir().unwrap();
        let runbook = short_pull_runbook(dir.path(), "3s");
        let (mut session, tree, state) = spawn_run(dir.path(), &runbook, term, cols);
        session.expect("answer yes or no [y/n]: ").unwrap();
        session.send_line("y").unwrap();
        session.expect("STEP 2 OF 2").unwrap();
        // The live line: elapsed and time left, with the survivors' panel;
        // redrawn at least each second at a capable terminal, printed once
        // (then every 10 s) at a plain one. The timeout is a question, not
        // a halt.
        let waited = session
            .expect(Regex(r"has\s+not\s+been\s+seen\s+leaving"))
            .unwrap();
        let shown = String::from_utf8_lossy(waited.before()).into_owned();
        assert!(shown.contains("HEALTH"), "{term}: {shown}");
        assert!(shown.contains(" left"), "{term}: {shown}");
        let lines = shown.matches("elapsed").count();
        if term == "dumb" {
            assert_eq!(lines, 1, "{term}: {shown}");
        } else {
            assert!(
                lines >= 3,
                "{term} at {cols}: {lines} live lines in 3 s: {shown}"
            );
        }
        session.expect(Regex(r"Keep\s+waiting")).unwrap();
        session.expect("answer yes or no [y/n]: ").unwrap();
        session.send_line("yes").unwrap();
        session.expect(Regex(r"waiting\s+another\s+3s")).unwrap();
        std::fs::remove_dir_all(tree.join("sys/block/nvme1n1")).unwrap();
        session.expect("quarantined").unwrap();
        session.expect(Eof).unwrap();
        let status = session.get_process().wait().unwrap();
        assert!(
            matches!(status, WaitStatus::Exited(_, 0)),
            "{term} at {cols}: exit status {status:?}"
        );
        let text = journal_text(&state);
        let timeout = text
            .lines()
            .find(|l| l.contains("\"event\":\"step-timeout\""))
            .unwrap_or_else(|| panic!("{term}: no step-timeout journaled:\n{text}"));
        assert!(timeout.contains("\"answer\":\"keep waiting\""), "{timeout}");
        assert!(timeout.contains("Keep waiting another 3s?"), "{timeout}");
        assert!(!text.contains("\"event\":\"halted\""), "{text}");
    }
}

#[test]
fn at_a_physical_timeout_no_ends_the_run_timed_out_and_resumable() {
    let dir = tempfile::tempdir().unwrap();
    let runbook = short_pull_runbook(dir.path(), "2s");
    let (mut session, tree, state) = spawn_run(dir.path(), &runbook, "dumb", 80);
    session.expect("answer yes or no [y/n]: ").unwrap();
    session.send_line("y").unwrap();
    session.expect(Regex(r"Keep\s+waiting")).unwrap();
    session.expect("answer yes or no [y/n]: ").unwrap();
    session.send_line("no").unwrap();
    session
        .expect(Regex(r"timed\s+out\s+at\s+step\s+`pull`"))
        .unwrap();
    let name = session_of(&state);
    session
        .expect(format!("swapguard resume {name}").as_str())
        .unwrap();
    session.expect(Eof).unwrap();
    let status = session.get_process().wait().unwrap();
    assert!(
        matches!(status, WaitStatus::Exited(_, 8)),
        "exit status {status:?}"
    );
    let text = journal_text(&state);
    assert!(text.contains("\"answer\":\"stop\""), "{text}");
    assert!(text.contains("\"outcome\":\"timed-out\""), "{text}");
    let _ = tree;
}

#[test]
fn without_a_terminal_a_physical_timeout_ends_timed_out_exit_8_and_resume_continues() {
    let dir = tempfile::tempdir().unwrap();
    let runbook = short_pull_runbook(dir.path(), "2s");
    let tree = dir.path().join("tree");
    copy_tree(&root().join("tests/fixtures/md/clean"), &tree);
    let state = dir.path().join("state");
    let answers = dir.path().join("answers.toml");
    std::fs::write(&answers, "antistatic = \"yes\"\n").unwrap();
    let out = Command::new(BIN)
        .current_dir(root())
        .arg("run")
        .arg(&runbook)
        .args(["--array", "md0", "--target", "LAB-B-0002"])
        .arg("--answers")
        .arg(&answers)
        .arg("--sysroot")
        .arg(&tree)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stdout}\n{stderr}");
    assert!(stdout.contains("has not been seen leaving"), "{stdout}");
    assert!(!stdout.contains("HALT"), "{stdout}");
    let name = session_of(&state);
    assert!(
        stderr.contains(&format!("swapguard resume {name} --state-dir")),
        "{stderr}"
    );
    let text = journal_text(&state);
    assert!(text.contains("\"answer\":\"no terminal\""), "{text}");
    assert!(text.contains("\"event\":\"timed-out\""), "{text}");
    assert!(text.contains("\"outcome\":\"timed-out\""), "{text}");
    // The drive is pulled after all; resume finds the step done.
    std::fs::remove_dir_all(tree.join("sys/block/nvme1n1")).unwrap();
    let empty = dir.path().join("none.toml");
    std::fs::write(&empty, "# nothing to answer\n").unwrap();
    let again = Command::new(BIN)
        .current_dir(root())
        .args(["resume", &name])
        .arg("--answers")
        .arg(&empty)
        .arg("--sysroot")
        .arg(&tree)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&again.stdout),
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(journal_text(&state).contains("\"outcome\":\"completed\""));
}
