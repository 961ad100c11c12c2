//! Whole-process tests: the real binary, its output and its exit codes.

use std::path::{Path, PathBuf};

mod common;
use common::{Signal, Test, root};

#[path = "cli/misc.rs"]
mod misc;

fn scenarios() -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    let dir = root().join("runbooks/scenarios");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap().path();
        let runbook = root().join("runbooks").join(format!(
            "{}.toml",
            entry.file_name().unwrap().to_string_lossy()
        ));
        for s in std::fs::read_dir(&entry).unwrap() {
            let s = s.unwrap().path();
            if s.extension().is_some_and(|e| e == "toml") {
                out.push((runbook.clone(), s));
            }
        }
    }
    out.sort();
    out
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

#[test]
fn shipped_runbooks_lint_clean() {
    let files: Vec<String> = std::fs::read_dir(root().join("runbooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| rel(&p))
        .collect();
    assert!(files.len() >= 2, "{files:?}");
    let mut args = vec!["lint".to_string()];
    args.extend(files);
    Test::new().args(&args).run().code(0);
}

#[test]
fn every_shipped_scenario_meets_its_expectation() {
    let all = scenarios();
    assert!(all.len() >= 8, "{all:?}");
    for (runbook, scenario) in all {
        let t = Test::new().args(&[
            "dry-run".to_string(),
            rel(&runbook),
            "--scenario".into(),
            rel(&scenario),
        ]);
        let done = t.run();
        assert_eq!(
            done.code,
            Some(0),
            "{}\n--- stdout\n{}\n--- stderr\n{}",
            rel(&scenario),
            done.stdout,
            done.stderr
        );
        assert!(done.stdout.contains("expectation met"), "{}", done.stdout);
    }
}

#[test]
fn survivor_counter_rise_halts_naming_drive_serial_bay_and_values() {
    let t = Test::new().args(&[
        "dry-run",
        "runbooks/md-replace-member.toml",
        "--scenario",
        "runbooks/scenarios/md-replace-member/survivor-pending-sectors-during-pull.toml",
        "--exit-with-outcome",
    ]);
    let done = t.run().code(3);
    let halt = done
        .stdout
        .lines()
        .find(|l| l.contains("survivor sda") && l.contains("smart.current_pending_sector"))
        .unwrap_or_else(|| panic!("no counter line in\n{}", done.stdout))
        .to_string();
    assert!(halt.contains("survivor sda (serial "), "{halt}");
    assert!(halt.contains("bay 0"), "{halt}");
    assert!(halt.contains("0 → 8"), "{halt}");
    let journal = t.journal();
    let halted = journal
        .iter()
        .find(|e| e["event"] == "halted")
        .expect("a halted entry in the journal");
    assert_eq!(halted["step"], "pull");
    assert_eq!(
        halted["violations"][0]["what"],
        "smart.current_pending_sector"
    );
    assert_eq!(halted["violations"][0]["before"], "0");
    assert_eq!(halted["violations"][0]["after"], "8");
    let last = journal.last().unwrap();
    assert_eq!(last["event"], "run-finished");
    assert_eq!(last["exit_code"], 3);
}

#[test]
fn a_wrong_expectation_fails_with_a_clear_pointer() {
    let t = Test::new();
    let scenario = std::fs::read_to_string(
        root().join("runbooks/scenarios/md-replace-member/wrong-drive-pulled.toml"),
    )
    .unwrap()
    .replace(
        "../../md-replace-member.toml",
        &root()
            .join("runbooks/md-replace-member.toml")
            .display()
            .to_string(),
    );
    let scenario = scenario.replace("step = \"pull\"", "step = \"insert\"");
    let path = t.write("wrong.toml", &scenario);
    let done = t
        .args(&[
            "dry-run".to_string(),
            "runbooks/md-replace-member.toml".into(),
            "--scenario".into(),
            path.display().to_string(),
        ])
        .run()
        .code(7);
    assert!(
        done.stdout
            .contains("EXPECTATION NOT MET: halted at step `pull`"),
        "{}",
        done.stdout
    );
    assert!(
        done.stdout
            .contains("expected the run to stop at step `insert`, it stopped at `pull`"),
        "{}",
        done.stdout
    );
}

#[test]
fn misspelt_key_is_reported_with_line_and_column() {
    let t = Test::new();
    let source = std::fs::read_to_string(root().join("runbooks/md-replace-member.toml"))
        .unwrap()
        .replacen("smart = ", "smrt = ", 1);
    let line = source
        .lines()
        .position(|l| l.starts_with("smrt = "))
        .unwrap()
        + 1;
    let path = t.write("bad.toml", &source);
    let done = t
        .args(&["lint".to_string(), path.display().to_string()])
        .run()
        .code(2);
    let out = format!("{}{}", done.stdout, done.stderr);
    assert!(out.contains(&format!("bad.toml:{line}:1")), "{out}");
    assert!(out.contains("did you mean `smart`"), "{out}");
}

#[test]
fn usage_errors_exit_2() {
    Test::new().args(&["frobnicate"]).run().code(2);
    Test::new()
        .args(&["run", "runbooks/md-replace-member.toml", "--param", "x"])
        .run()
        .code(2)
        .stderr_has("`x` is not NAME=VALUE");
}

#[test]
fn run_without_a_terminal_names_answers() {
    Test::new()
        .args(&[
            "run",
            "runbooks/md-replace-member.toml",
            "--array",
            "md0",
            "--target",
            "nvme1n1",
            "--sysroot",
            "tests/fixtures/md/clean",
        ])
        .run()
        .code(2)
        .stderr_has("--answers");
}

#[test]
fn lock_held_exits_6_naming_the_holder() {
    let t = Test::new().args(&[
        "dry-run",
        "runbooks/md-replace-member.toml",
        "--scenario",
        "runbooks/scenarios/md-replace-member/healthy.toml",
    ]);
    let _held = swapguard::lock::acquire(&t.state(), "md0", "pid 99999 started yesterday").unwrap();
    t.run().code(6).stderr_has("pid 99999 started yesterday");
}

#[test]
fn status_reads_a_captured_tree() {
    let done = Test::new()
        .args(&[
            "status",
            "--no-smart",
            "--sysroot",
            "tests/fixtures/md/after-read-errors",
        ])
        .run()
        .code(0)
        .stdout_has("md0  raid1  clean  2 slots, 0 missing")
        .stdout_has("LAB-A-0001");
    assert!(
        done.stdout.contains("[write_error,want_replacement]"),
        "{}",
        done.stdout
    );
}

#[test]
fn status_json_is_machine_readable() {
    let done = Test::new()
        .args(&[
            "status",
            "--json",
            "--no-smart",
            "--sysroot",
            "tests/fixtures/md/clean",
        ])
        .run()
        .code(0);
    let v: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(v["arrays"][0]["array"]["name"], "md0");
    assert_eq!(v["arrays"][0]["drives"][0]["id"]["serial"], "LAB-A-0001");
}

#[test]
fn status_of_a_missing_tree_is_an_error() {
    Test::new()
        .args(&[
            "status",
            "--no-smart",
            "--sysroot",
            "/nonexistent-swapguard",
        ])
        .run()
        .code(1);
}

/// A root with `/proc` and `/sys/block` but no `/proc/mdstat`: a kernel
/// without the md driver.
fn kernel_without_md(t: &Test) -> PathBuf {
    let tree = t.dir.path().join("no-md");
    std::fs::create_dir_all(tree.join("proc")).unwrap();
    std::fs::create_dir_all(tree.join("sys/block/sda")).unwrap();
    tree
}

#[test]
fn status_without_proc_mdstat_says_md_is_not_available_not_no_arrays() {
    let t = Test::new();
    let tree = kernel_without_md(&t).display().to_string();
    let done = t
        .args(&["status", "--no-smart", "--sysroot", tree.as_str()])
        .run()
        .code(0)
        .stdout_has("md is not available on this kernel");
    assert!(
        !done.stdout.contains("no md arrays found"),
        "{}",
        done.stdout
    );
    let t = Test::new();
    let tree = kernel_without_md(&t).display().to_string();
    let done = t
        .args(&["status", "--json", "--no-smart", "--sysroot", tree.as_str()])
        .run()
        .code(0);
    let v: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(v["arrays"], serde_json::json!([]));
    assert!(
        v["unavailable"][0]
            .as_str()
            .unwrap()
            .contains("md is not available on this kernel"),
        "{v}"
    );
    // Asking for one array there is the user's mistake, and says why.
    let t = Test::new();
    let tree = kernel_without_md(&t).display().to_string();
    t.args(&["status", "md0", "--no-smart", "--sysroot", tree.as_str()])
        .run()
        .code(2)
        .stderr_has("`swapguard status md0`: md is not available on this kernel");
}

#[test]
fn status_with_md_but_no_arrays_says_no_md_arrays_found() {
    let t = Test::new();
    let tree = kernel_without_md(&t);
    std::fs::write(
        tree.join("proc/mdstat"),
        "Personalities : [raid1]\nunused devices: <none>\n",
    )
    .unwrap();
    let tree = tree.display().to_string();
    let done = t
        .args(&["status", "--no-smart", "--sysroot", tree.as_str()])
        .run()
        .code(0)
        .stdout_has("no md arrays found");
    assert!(
        !done.stdout.contains("md is not available"),
        "{}",
        done.stdout
    );
}

#[test]
fn status_array_shows_that_array_only() {
    // md1 is listed by mdstat but has no sysfs (its rows say so), so
    // whether `status md0` looked at it shows.
    let t = Test::new();
    let tree = misc::clean_tree(&t);
    let mdstat = std::fs::read_to_string(tree.join("proc/mdstat")).unwrap();
    std::fs::write(
        tree.join("proc/mdstat"),
        mdstat.replace(
            "unused devices",
            "md1 : active raid1 sdc[1] sdb[0]\n      64512 blocks super 1.2 [2/2] [UU]\n\nunused devices",
        ),
    )
    .unwrap();
    let tree = tree.display().to_string();
    Test::new()
        .args(&["status", "--no-smart", "--sysroot", tree.as_str()])
        .run()
        .stdout_has("md0  raid1")
        .stdout_has("md1  raid1");
    for given in ["md0", "/dev/md0"] {
        let one = Test::new()
            .args(&["status", given, "--no-smart", "--sysroot", tree.as_str()])
            .run()
            .code(0)
            .stdout_has("md0  raid1  clean  2 slots, 0 missing")
            .stdout_has("LAB-A-0001");
        assert!(!one.stdout.contains("md1"), "{}", one.stdout);
    }
    let json = Test::new()
        .args(&[
            "status",
            "md0",
            "--json",
            "--no-smart",
            "--sysroot",
            tree.as_str(),
        ])
        .run()
        .code(0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["arrays"].as_array().unwrap().len(), 1);
    assert_eq!(v["arrays"][0]["array"]["name"], "md0");
    Test::new()
        .args(&["status", "md9", "--no-smart", "--sysroot", tree.as_str()])
        .run()
        .code(2)
        .stderr_has("`swapguard status md9`: no such md array (arrays here: md0, md1)");
}

#[test]
fn status_color_always_colours_into_a_pipe_never_and_auto_do_not() {
    let args = |color: &str| {
        Test::new().args(&[
            "status",
            "--no-smart",
            "--color",
            color,
            "--sysroot",
            "tests/fixtures/md/after-read-errors",
        ])
    };
    // `always` wins over NO_COLOR (set by the harness) and a pipe.
    let always = args("always").run().code(0);
    assert!(always.stdout.contains("\x1b["), "{}", always.stdout);
    assert!(always.stdout.contains("LAB-A-0001"), "{}", always.stdout);
    for color in ["never", "auto"] {
        let t = args(color);
        let out = t.command().env_remove("NO_COLOR").output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{color}: {stdout}");
        assert!(!stdout.contains('\x1b'), "{color}: {stdout}");
        assert!(stdout.contains("LAB-A-0001"), "{color}: {stdout}");
    }
    Test::new()
        .args(&["status", "--color", "sometimes"])
        .run()
        .code(2)
        .stderr_has("invalid value 'sometimes' for '--color <WHEN>'");
}

#[test]
fn ctrl_c_during_a_physical_step_stops_at_a_safe_point_with_130() {
    let t = Test::new();
    let answers = t.write("answers.toml", "antistatic = \"yes\"\n");
    let done = t
        .swapguard(&[
            "run".to_string(),
            "tests/fixtures/runbooks-e2e/pull-only.toml".into(),
            "--array".into(),
            "md0".into(),
            "--target".into(),
            "nvme1n1".into(),
            "--sysroot".into(),
            "tests/fixtures/md/clean".into(),
            "--answers".into(),
            answers.display().to_string(),
        ])
        .signal_when("watching every drive", Signal::SIGINT);
    // The interrupt is passed on as SIGINT (a shell shows status 130).
    assert_eq!(done.signal, Some(2), "{}", done.both());
    let journal = t.journal();
    assert!(
        journal
            .iter()
            .any(|e| e["event"] == "interrupted" && e["step"] == "pull"),
        "{journal:?}"
    );
    assert_eq!(journal.last().unwrap()["exit_code"], 130);
}

/// RFC 3339 journal time (simulated clock) to milliseconds since the epoch.
fn at_ms(entry: &serde_json::Value) -> u64 {
    let text = entry["at"].as_str().unwrap();
    humantime::parse_rfc3339(text)
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn smart_only_degradation_halts_within_one_smart_poll() {
    // The scenario raises the survivor's NVMe critical warning 30 s into
    // the rebuild wait; SMART is polled every 10 s during waits.
    let t = Test::new().args(&[
        "dry-run",
        "runbooks/md-replace-member.toml",
        "--scenario",
        "runbooks/scenarios/md-replace-member/nvme-critical-warning-during-rebuild.toml",
    ]);
    t.run().code(0);
    let journal = t.journal();
    let started = journal
        .iter()
        .find(|e| e["event"] == "step-started" && e["step"] == "rebuild")
        .unwrap();
    let halted = journal.iter().find(|e| e["event"] == "halted").unwrap();
    assert_eq!(halted["violations"][0]["what"], "nvme.critical_warning");
    let fault_ms = at_ms(started) + 30_000;
    let latency = at_ms(halted) - fault_ms;
    assert!(
        latency <= 10_000 + 250,
        "halted {latency} ms after the fault"
    );
}

#[test]
fn each_outcome_has_its_exit_code() {
    for (scenario, code, outcome) in [
        ("healthy", 0, "completed"),
        ("wrong-drive-pulled", 3, "halted"),
        ("smart-unreadable", 4, "refused"),
        ("wrong-answer", 5, "aborted"),
    ] {
        let done = Test::new()
            .args(&[
                "dry-run".to_string(),
                "runbooks/md-replace-member.toml".into(),
                "--scenario".into(),
                format!("runbooks/scenarios/md-replace-member/{scenario}.toml"),
                "--exit-with-outcome".into(),
            ])
            .run();
        assert_eq!(done.code, Some(code), "{scenario}\n{}", done.stdout);
        assert!(
            done.stdout.contains(&format!("outcome: {outcome}")),
            "{scenario}\n{}",
            done.stdout
        );
    }
}

#[test]
fn unreadable_smart_refuses_unless_the_runbook_opts_out() {
    let t = Test::new();
    let runbook = std::fs::read_to_string(root().join("runbooks/md-replace-member.toml"))
        .unwrap()
        .replacen("smart = \"required\"", "smart = \"optional\"", 1);
    assert!(runbook.contains("smart = \"optional\""));
    let runbook_path = t.write("optional-smart.toml", &runbook);
    let scenario = std::fs::read_to_string(
        root().join("runbooks/scenarios/md-replace-member/smart-unreadable.toml"),
    )
    .unwrap()
    .replace(
        "../../md-replace-member.toml",
        &runbook_path.display().to_string(),
    );
    let expect_at = scenario.find("[expect]").unwrap();
    let scenario = format!(
        "{}[expect]\noutcome = \"completed\"\n",
        &scenario[..expect_at]
    );
    let scenario_path = t.write("smart-unreadable-opted-out.toml", &scenario);
    let done = t
        .args(&[
            "dry-run".to_string(),
            runbook_path.display().to_string(),
            "--scenario".into(),
            scenario_path.display().to_string(),
        ])
        .run();
    assert_eq!(done.code, Some(0), "{}\n{}", done.stdout, done.stderr);
    assert!(
        done.stdout.contains("expectation met: completed"),
        "{}",
        done.stdout
    );
}

#[test]
fn a_survivor_crc_rise_halts_when_the_runbook_says_halt_on() {
    let t = Test::new();
    let runbook = std::fs::read_to_string(root().join("runbooks/md-replace-member.toml"))
        .unwrap()
        .replacen(
            "[guard]\n",
            "[guard]\nhalt_on = [\"smart.udma_crc_error_count\"]\n",
            1,
        );
    let runbook_path = t.write("crc-halts.toml", &runbook);
    let scenario = std::fs::read_to_string(
        root().join("runbooks/scenarios/md-replace-member/survivor-crc-errors-during-pull.toml"),
    )
    .unwrap()
    .replace(
        "../../md-replace-member.toml",
        &runbook_path.display().to_string(),
    );
    let expect_at = scenario.find("[expect]").unwrap();
    let scenario = format!(
        "{}[expect]\noutcome = \"halted\"\nstep = \"pull\"\nreasons = [\"sda\", \"smart.udma_crc_error_count 0 → 3\"]\n",
        &scenario[..expect_at]
    );
    let scenario_path = t.write("crc-halts-scenario.toml", &scenario);
    let done = t
        .args(&[
            "dry-run".to_string(),
            runbook_path.display().to_string(),
            "--scenario".into(),
            scenario_path.display().to_string(),
        ])
        .run();
    assert_eq!(done.code, Some(0), "{}\n{}", done.stdout, done.stderr);
}
