//! The terminal operator, proven through a real pseudo-terminal: the binary
//! runs against a copy of a captured md tree, a person's keystrokes answer
//! its prompts, and the "pull" is removing the drive from the copied tree.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use expectrl::{Eof, Session, WaitStatus};

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
