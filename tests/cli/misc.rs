//! Whole-process tests for the guard's smaller holes (issue 10, items 6, 7,
//! 8 and 11): a physical step's confirmation, padded serials, a vanished
//! member in `status`, and consistent exit codes and diagnostics.

use super::common::{Test, copy_tree, root};

/// The shipped runbook's path, for scenarios written into a test directory.
fn member_runbook() -> String {
    root()
        .join("runbooks/md-replace-member.toml")
        .display()
        .to_string()
}

/// A two-drive NVMe mirror as the QEMU lab reports it: every identity
/// string padded the way NVMe pads them (serial to 20, model to 40,
/// firmware to 8 characters).
fn padded_scenario(runbook: &str, extra: &str) -> String {
    format!(
        r#"[scenario]
name = "padded serials, as NVMe and QEMU report them"
runbook = "{runbook}"
params = {{ array = "md0", target = "nvme1n1" }}

[array]
name = "md0"
level = "raid1"
rebuild_time = "2m"

[[array.members]]
dev = "nvme0n1"
serial = "LAB-A-0001          "
model = "QEMU NVMe Ctrl                          "
firmware = "7.2.22  "
slot = 1
size = "64M"

[[array.members]]
dev = "nvme1n1"
serial = "LAB-B-0002          "
model = "QEMU NVMe Ctrl                          "
firmware = "7.2.22  "
slot = 2
size = "64M"

[[array.spares]]
serial = "LAB-C-0003          "
model = "QEMU NVMe Ctrl                          "
firmware = "7.2.22  "
size = "64M"
{extra}
[expect]
outcome = "completed"
"#
    )
}

#[test]
fn simulator_padded_serials_pass_the_typed_confirmation() {
    let t = Test::new();
    let scenario = t.write("padded.toml", &padded_scenario(&member_runbook(), ""));
    let done = t
        .args(&[
            "dry-run".to_string(),
            member_runbook(),
            "--scenario".into(),
            scenario.display().to_string(),
        ])
        .run()
        .code(0)
        .stdout_has("expectation met: completed")
        // The simulated technician typed the visible last four.
        .stdout_has("> 0003 (simulated technician)");
    assert!(
        !done.stdout.contains("LAB-B-0002 "),
        "padding reached the transcript:\n{}",
        done.stdout
    );
}

#[test]
fn simulator_padded_serials_still_match_the_quarantine_and_events() {
    // The pulled drive is put back as if it were new; the event names it by
    // its visible serial, the hardware reports it padded.
    let t = Test::new();
    let extra = r#"
[[event]]
during = "insert"
after = "5s"
insert = "LAB-B-0002"
"#;
    let scenario = padded_scenario(&member_runbook(), extra).replace(
        "[expect]\noutcome = \"completed\"\n",
        "[expect]\noutcome = \"halted\"\nstep = \"insert\"\nreasons = [\"quarantined\", \"LAB-B-0002\"]\n",
    );
    let scenario = t.write("padded-put-back.toml", &scenario);
    t.args(&[
        "dry-run".to_string(),
        member_runbook(),
        "--scenario".into(),
        scenario.display().to_string(),
    ])
    .run()
    .code(0)
    .stdout_has("expectation met: halted at step `insert`");
}

/// The shipped runbook with `confirm` on its `pull` step, and the healthy
/// scenario pointed at it with `answers` and `expect` in place of its own.
fn confirmed_pull(t: &Test, confirm: &str, answers: &str, expect: &str) -> (String, String) {
    let runbook = std::fs::read_to_string(root().join("runbooks/md-replace-member.toml"))
        .unwrap()
        .replacen(
            "quarantine = \"target\"  #",
            &format!("confirm = \"{confirm}\"\nquarantine = \"target\"  #"),
            1,
        );
    assert!(runbook.contains(&format!("confirm = \"{confirm}\"\nquarantine")));
    let runbook = t.write("confirmed-pull.toml", &runbook);
    let scenario =
        std::fs::read_to_string(root().join("runbooks/scenarios/md-replace-member/healthy.toml"))
            .unwrap()
            .replace(
                "../../md-replace-member.toml",
                &runbook.display().to_string(),
            );
    let at = scenario.find("[expect]").unwrap();
    let scenario = format!(
        "{}[answers]\n{answers}\n\n[expect]\n{expect}\n",
        &scenario[..at]
    );
    let scenario = t.write("confirmed-pull-scenario.toml", &scenario);
    (
        runbook.display().to_string(),
        scenario.display().to_string(),
    )
}

#[test]
fn physical_step_type_serial_confirm_is_asked_in_a_dry_run() {
    let t = Test::new();
    let (runbook, scenario) = confirmed_pull(
        &t,
        "type-serial",
        "pull = \"0002\"",
        "outcome = \"completed\"",
    );
    let done = t
        .args(&[
            "dry-run".to_string(),
            runbook,
            "--scenario".into(),
            scenario,
        ])
        .run()
        .code(0)
        .stdout_has("expectation met: completed");
    // Asked after the step is shown and before the watch starts.
    let asked = done
        .stdout
        .find("type its last 4 characters to confirm it is sdb (serial S3Z1NB0K10****, bay 1) > 0002 (scripted)")
        .unwrap_or_else(|| panic!("no confirmation at the pull:\n{}", done.stdout));
    let shown = done.stdout.find("[pull] physical").unwrap();
    let pulled = done.stdout.find("technician pulled sdb").unwrap();
    assert!(shown < asked && asked < pulled, "{}", done.stdout);
}

#[test]
fn physical_step_type_serial_confirm_typed_wrong_aborts_before_the_pull() {
    let t = Test::new();
    let (runbook, scenario) = confirmed_pull(
        &t,
        "type-serial",
        "pull = \"0001\"",
        "outcome = \"aborted\"\nstep = \"pull\"\nreasons = [\"typed `0001` but the serial ends in `0002`\"]",
    );
    let done = t
        .args(&[
            "dry-run".to_string(),
            runbook,
            "--scenario".into(),
            scenario,
        ])
        .run()
        .code(0)
        .stdout_has("expectation met: aborted at step `pull`");
    assert!(
        !done.stdout.contains("technician pulled"),
        "{}",
        done.stdout
    );
}

#[test]
fn physical_step_yes_no_confirm_is_asked_in_a_dry_run() {
    let t = Test::new();
    let (runbook, scenario) = confirmed_pull(
        &t,
        "yes-no",
        "pull = \"no\"",
        "outcome = \"aborted\"\nstep = \"pull\"",
    );
    t.args(&[
        "dry-run".to_string(),
        runbook,
        "--scenario".into(),
        scenario,
    ])
    .run()
    .code(0)
    .stdout_has("Ready to start this step now? > no (scripted)")
    .stdout_has("expectation met: aborted at step `pull`");
}

#[test]
fn type_serial_on_the_step_that_finds_the_new_drive_is_a_lint_error() {
    let t = Test::new();
    let runbook = std::fs::read_to_string(root().join("runbooks/md-replace-member.toml"))
        .unwrap()
        .replacen(
            "expect = { new = \"present\", degraded = 1 }\n",
            "expect = { new = \"present\", degraded = 1 }\nconfirm = \"type-serial\"\n",
            1,
        );
    let line = runbook
        .lines()
        .position(|l| l == "confirm = \"type-serial\"")
        .unwrap()
        + 1;
    let path = t.write("early-serial.toml", &runbook);
    let done = t
        .args(&["lint".to_string(), path.display().to_string()])
        .run()
        .code(2);
    let out = format!("{}{}", done.stdout, done.stderr);
    assert!(
        out.contains(&format!("early-serial.toml:{line}:11")),
        "{out}"
    );
    assert!(
        out.contains("would ask for the new drive's serial before the new drive is seen"),
        "{out}"
    );
}

/// A copy of the captured clean two-drive NVMe tree (md0 on nvme0n1 =
/// LAB-A-0001 and nvme1n1 = LAB-B-0002), for runs that must not touch the
/// fixture.
pub(crate) fn clean_tree(t: &Test) -> std::path::PathBuf {
    let tree = t.dir.path().join("tree");
    copy_tree(&root().join("tests/fixtures/md/clean"), &tree);
    tree
}

#[test]
fn non_utf8_runbook_exits_2_in_run_and_dry_run_as_in_lint() {
    let t = Test::new();
    let path = t.dir.path().join("latin1.toml");
    let mut bytes =
        std::fs::read(root().join("tests/fixtures/runbooks-e2e/pull-only.toml")).unwrap();
    // `say = "Put on the anti-static wrist strap."` in Latin-1, with a
    // non-breaking space (0xa0) before the full stop.
    let at = bytes.windows(6).position(|w| w == b"strap.").unwrap() + 5;
    bytes.insert(at, 0xa0);
    std::fs::write(&path, bytes).unwrap();
    let path = path.display().to_string();
    let lint = Test::new().args(&["lint", path.as_str()]).run().code(2);
    assert!(
        lint.stdout.contains("is not UTF-8 text: byte 0xa0"),
        "{}",
        lint.stdout
    );
    let dry = Test::new()
        .args(&[
            "dry-run",
            path.as_str(),
            "--scenario",
            "runbooks/scenarios/md-replace-member/healthy.toml",
        ])
        .run()
        .code(2)
        .stderr_has("is not UTF-8 text: byte 0xa0")
        .stderr_has("nothing was run");
    assert!(!dry.stderr.contains("error: error:"), "{}", dry.stderr);
    let tree = clean_tree(&t);
    t.args(&[
        "run",
        path.as_str(),
        "--array",
        "md0",
        "--target",
        "LAB-B-0002",
        "--sysroot",
        tree.to_str().unwrap(),
    ])
    .run()
    .code(2)
    .stderr_has("is not UTF-8 text: byte 0xa0")
    // Line 24, the column after `...wrist strap`.
    .stderr_has("latin1.toml:24:42")
    .stderr_has("help: save the runbook as UTF-8");
}

#[test]
fn answers_file_with_a_number_exits_2_without_a_doubled_error() {
    let t = Test::new();
    let answers = t.write("answers.toml", "antistatic = \"yes\"\npull = 2\n");
    let tree = clean_tree(&t);
    let state = t.state();
    let done = t
        .args(&[
            "run",
            "tests/fixtures/runbooks-e2e/pull-only.toml",
            "--array",
            "md0",
            "--target",
            "LAB-B-0002",
            "--sysroot",
            tree.to_str().unwrap(),
            "--answers",
            answers.to_str().unwrap(),
        ])
        .run()
        .code(2)
        .stderr_has("error: the answer for step `pull` is a number")
        .stderr_has("answers.toml:2:8");
    assert!(!done.stderr.contains("error: error:"), "{}", done.stderr);
    assert!(!state.join("sessions").exists(), "a run started");
}

#[test]
fn answers_for_steps_the_runbook_lacks_are_refused_before_step_1() {
    let t = Test::new();
    let answers = t.write("answers.toml", "antistatic = \"yes\"\npul = \"0002\"\n");
    let tree = clean_tree(&t);
    let state = t.state();
    let done = t
        .args(&[
            "run",
            "tests/fixtures/runbooks-e2e/pull-only.toml",
            "--array",
            "md0",
            "--target",
            "LAB-B-0002",
            "--sysroot",
            tree.to_str().unwrap(),
            "--answers",
            answers.to_str().unwrap(),
        ])
        .run()
        .code(2)
        .stderr_has("answers for steps the runbook does not have: `pul` (did you mean `pull`?)");
    assert!(!done.stdout.contains("step 1/2"), "{}", done.stdout);
    assert!(!state.join("sessions").exists(), "a run started");
}

#[test]
fn byte_order_mark_does_not_shift_the_diagnostic_column() {
    let t = Test::new();
    let source = format!(
        "\u{feff}nmae = \"x\"\n{}",
        std::fs::read_to_string(root().join("runbooks/md-replace-member.toml")).unwrap()
    );
    let path = t.write("bom.toml", &source);
    let done = t
        .args(&["lint".to_string(), path.display().to_string()])
        .run()
        .code(2);
    assert!(done.stdout.contains("bom.toml:1:1\n"), "{}", done.stdout);
    assert!(
        done.stdout.contains("1 | nmae = \"x\"\n  | ^^^^\n"),
        "{}",
        done.stdout
    );
}

#[test]
fn crlf_runbook_say_and_halt_guidance_show_no_stray_characters() {
    let t = Test::new();
    let crlf = std::fs::read_to_string(root().join("runbooks/md-replace-member.toml"))
        .unwrap()
        .replace('\n', "\r\n");
    let runbook = t.write("crlf.toml", &crlf);
    let scenario = std::fs::read_to_string(
        root().join("runbooks/scenarios/md-replace-member/wrong-drive-pulled.toml"),
    )
    .unwrap()
    .replace("../../md-replace-member.toml", runbook.to_str().unwrap());
    let scenario = t.write("crlf-scenario.toml", &scenario);
    let done = t
        .args(&[
            "dry-run".to_string(),
            runbook.display().to_string(),
            "--scenario".into(),
            scenario.display().to_string(),
        ])
        .run()
        .code(0)
        .stdout_has("Pull the drive in bay 1, serial S3Z1NB0K100002.\n    Check the serial")
        .stdout_has("STOP. Take your hands out of the chassis now.\n    Do not pull");
    assert!(!done.stdout.contains('\r'), "{:?}", done.stdout);
}

#[test]
fn report_health_after_includes_the_pulled_target() {
    let t = Test::new();
    let t = t.args(&[
        "dry-run",
        "runbooks/md-replace-member.toml",
        "--scenario",
        "runbooks/scenarios/md-replace-member/healthy.toml",
    ]);
    t.run().code(0);
    let session = std::fs::read_dir(t.state().join("sessions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    let name = session.file_stem().unwrap().to_string_lossy().into_owned();
    let done = t.swapguard(&["report", name.as_str()]).run().code(0);
    let after = &done.stdout[done.stdout.find("## Health after").unwrap()..];
    assert!(
        after.contains(
            "| sdb (serial S3Z1NB0K100002, bay 1) | pulled, quarantined | not read | not read |"
        ),
        "{after}"
    );
    // The new drive under the same name is a row of its own.
    assert!(after.contains("S3Z1NB0K900003"), "{after}");
}

/// Rebuild a QEMU lab capture (tests/fixtures/md/lab-captures/) under
/// `root`: `L <path> -> <target>` is a symbolic link as the kernel has it
/// (a member's `block` link dangles once its drive is pulled), `F <path>` a
/// file whose lines follow after `| `.
fn rebuild_capture(root: &std::path::Path, name: &str) {
    let text = std::fs::read_to_string(
        super::root()
            .join("tests/fixtures/md/lab-captures")
            .join(name),
    )
    .unwrap();
    let mut file: Option<(std::path::PathBuf, String)> = None;
    let flush = |file: &mut Option<(std::path::PathBuf, String)>| {
        if let Some((path, contents)) = file.take() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        }
    };
    for line in text.lines() {
        if let Some(content) = line.strip_prefix("| ") {
            let (_, contents) = file.as_mut().unwrap();
            contents.push_str(content);
            contents.push('\n');
            continue;
        }
        flush(&mut file);
        if let Some(rest) = line.strip_prefix("L /") {
            let (path, target) = rest.split_once(" -> ").unwrap();
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, path).unwrap();
        } else if let Some(path) = line.strip_prefix("F /") {
            file = Some((root.join(path), String::new()));
        }
    }
    flush(&mut file);
    // A quiet kernel log, as every md test tree has (a guarded run reads it).
    std::fs::create_dir_all(root.join("dev")).unwrap();
    std::fs::write(root.join("dev/kmsg"), "").unwrap();
}

#[test]
fn status_shows_a_vanished_member_with_its_bay_and_last_known_serial() {
    let t = Test::new();
    let clean = t.dir.path().join("clean");
    let pulled = t.dir.path().join("pulled");
    rebuild_capture(&clean, "capture-clean.txt");
    rebuild_capture(&pulled, "capture-pulled-before-io.txt");
    // An earlier run on this host looked at md0 (and stopped at step 1):
    // its journal knows which drive was nvme1n1.
    let answers = t.write("no.toml", "antistatic = \"no\"\n");
    t.swapguard(&[
        "run",
        "tests/fixtures/runbooks-e2e/pull-only.toml",
        "--array",
        "md0",
        "--target",
        "LAB-B-0002",
        "--sysroot",
        clean.to_str().unwrap(),
        "--answers",
        answers.to_str().unwrap(),
    ])
    .run()
    .code(5);
    let done = t
        .swapguard(&[
            "status",
            "--no-smart",
            "--sysroot",
            pulled.to_str().unwrap(),
        ])
        .run()
        .code(0)
        .stdout_has("md0  raid1  clean  2 slots, 0 missing, 1 VANISHED (md has not noticed yet)")
        .stdout_has("LAB-A-0001");
    let row = done
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("nvme1n1"))
        .unwrap_or_else(|| panic!("no row for nvme1n1:\n{}", done.stdout));
    for part in [
        "VANISHED",
        "bay 2 ",
        "serial LAB-B-0002 (last known, session md0-",
        "md still lists it in-sync; its device is gone",
    ] {
        assert!(row.contains(part), "{part:?} not in {row:?}");
    }
    let json = t
        .swapguard(&[
            "status",
            "--json",
            "--no-smart",
            "--sysroot",
            pulled.to_str().unwrap(),
        ])
        .run()
        .code(0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let gone = &v["vanished"][0];
    assert_eq!(gone["array"], "md0");
    assert_eq!(gone["dev"], "nvme1n1");
    assert_eq!(gone["md_state"], "in-sync");
    assert_eq!(gone["role"], 1);
    assert_eq!(gone["bay"], "2");
    assert_eq!(gone["last_known"]["serial"], "LAB-B-0002");
    assert_eq!(gone["last_known"]["bay"], "2");
    assert_eq!(v["vanished"].as_array().unwrap().len(), 1);
}

#[test]
fn status_shows_a_vanished_member_even_with_nothing_known_about_it() {
    // The checked-in tree of the same moment has no `block` links, no
    // hot-plug slots and no journal: the member is still shown.
    let done = Test::new()
        .args(&[
            "status",
            "--no-smart",
            "--sysroot",
            "tests/fixtures/md/after-pull-before-io",
        ])
        .run()
        .code(0)
        .stdout_has("2 slots, 0 missing, 1 VANISHED");
    assert!(
        done.stdout.contains(
            "nvme1n1    ?       VANISHED    bay unknown  serial unknown (no journal here saw it)"
        ),
        "{}",
        done.stdout
    );
}

#[test]
fn status_of_a_clean_array_shows_nothing_vanished() {
    let t = Test::new();
    let clean = t.dir.path().join("clean");
    rebuild_capture(&clean, "capture-clean.txt");
    let done = t
        .args(&[
            "status",
            "--json",
            "--no-smart",
            "--sysroot",
            clean.to_str().unwrap(),
        ])
        .run()
        .code(0);
    let v: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(v["vanished"], serde_json::json!([]));
}

#[test]
fn status_says_md_has_failed_a_vanished_member_it_marked_faulty() {
    // LAB-B pulled, and md failed it at the next write: still listed,
    // `faulty`, its device gone.
    let done = Test::new()
        .args(&[
            "status",
            "--no-smart",
            "--sysroot",
            "tests/fixtures/md/degraded",
        ])
        .run()
        .code(0)
        .stdout_has("2 slots, 1 missing, 1 VANISHED (md has failed it)")
        .stdout_has("md has marked it faulty; its device is gone");
    assert!(!done.stdout.contains("not noticed"), "{}", done.stdout);
}
