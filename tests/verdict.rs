//! Whole-process tests of the survivor verdict (issue 10 items 2 and 9): a
//! survivor already failing or at risk before the run, `[guard]
//! accept_survivor`, the written override, `status` and the report.

use std::path::{Path, PathBuf};

mod common;
use common::{Done, Run, Test, root};

/// A scratch directory with a state directory, and runs of the binary.
struct Scratch(Test);

impl std::ops::Deref for Scratch {
    type Target = Test;
    fn deref(&self) -> &Test {
        &self.0
    }
}

impl Scratch {
    fn new() -> Scratch {
        Scratch(Test::new())
    }

    fn command(&self, args: &[&str]) -> Run {
        self.0.swapguard(args)
    }

    fn run(&self, args: &[&str]) -> Done {
        self.command(args).run()
    }

    fn session_file(&self) -> PathBuf {
        self.session()
    }
}

const RUNBOOK: &str = "runbooks/md-replace-member.toml";

fn shipped(scenario: &str) -> String {
    format!("runbooks/scenarios/md-replace-member/{scenario}.toml")
}

/// A shipped scenario rewritten to use `runbook` and to expect `expect`
/// (the text of an `[expect]` section), with `answers` (an `[answers]`
/// section or nothing) in place of its own.
fn variant(t: &Scratch, scenario: &str, runbook: &Path, answers: &str, expect: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join(shipped(scenario))).unwrap();
    let text = text.replace(
        "../../md-replace-member.toml",
        &runbook.display().to_string(),
    );
    let cut = text
        .find("[answers]")
        .or_else(|| text.find("[expect]"))
        .unwrap();
    t.write(
        "scenario.toml",
        &format!("{}{answers}\n[expect]\n{expect}\n", &text[..cut]),
    )
}

fn runbook_with_guard(t: &Scratch, guard_lines: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join(RUNBOOK))
        .unwrap()
        .replacen("[guard]\n", &format!("[guard]\n{guard_lines}\n"), 1);
    t.write("runbook.toml", &text)
}

#[test]
fn failing_survivor_at_baseline_is_refused_naming_drive_serial_bay_condition_and_value() {
    let t = Scratch::new();
    let done = t
        .run(&[
            "dry-run",
            RUNBOOK,
            "--scenario",
            &shipped("survivor-failing-at-baseline"),
            "--exit-with-outcome",
        ])
        .code(4)
        .has("survivor nvme0n1 (serial LAB-A-0001, bay 0) is failing: nvme.media_errors = 7")
        .has("no written reason was given");
    // Nothing was touched: no step began.
    assert!(!done.stdout.contains("step 1/"), "{}", done.stdout);
    let journal = t.journal();
    assert!(journal.iter().any(|e| e["event"] == "refused"));
    assert!(!journal.iter().any(|e| e["event"] == "step-started"));
}

#[test]
fn accept_survivor_in_the_runbook_lets_a_failing_survivor_run() {
    let t = Scratch::new();
    let runbook = runbook_with_guard(&t, "accept_survivor = [\"nvme.media_errors\"]");
    let scenario = variant(
        &t,
        "survivor-failing-at-baseline",
        &runbook,
        "",
        "outcome = \"completed\"",
    );
    let runbook = runbook.display().to_string();
    let scenario = scenario.display().to_string();
    t.run(&["dry-run", &runbook, "--scenario", &scenario])
        .code(0)
        .has("nvme.media_errors = 7 (NVMe unrecovered media and data integrity errors), accepted by the runbook")
        .has("expectation met");
    let accepted: Vec<_> = t
        .journal()
        .into_iter()
        .filter(|e| e["event"] == "survivor-accepted")
        .collect();
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert_eq!(accepted[0]["how"], "runbook");
    // Lint shows the loosening to the reviewer.
    t.run(&["lint", &runbook])
        .code(0)
        .has("a survivor with `nvme.media_errors`");
}

#[test]
fn accept_survivor_with_an_unknown_condition_is_a_lint_error_with_a_near_miss() {
    let t = Scratch::new();
    let runbook = runbook_with_guard(&t, "accept_survivor = [\"nvme.media_error\"]");
    t.run(&["lint", &runbook.display().to_string()])
        .code(2)
        .has("`nvme.media_error` is not a survivor condition")
        .has("did you mean `nvme.media_errors`?");
}

#[test]
fn override_with_a_written_reason_runs_and_the_reason_reaches_journal_and_report() {
    let t = Scratch::new();
    t.run(&[
        "dry-run",
        RUNBOOK,
        "--scenario",
        &shipped("survivor-failing-overridden"),
    ])
    .code(0)
    .has("survivor sda (serial HIT-0001, bay 0) is failing: scsi.grown_defect_list = 260")
    .has("the refusal is overridden, for this reason: ticket OPS-4411")
    .has("expectation met");
    let journal = t.journal();
    let accepted = journal
        .iter()
        .find(|e| e["event"] == "survivor-accepted")
        .expect("survivor-accepted in the journal");
    assert_eq!(accepted["how"], "override");
    assert_eq!(
        accepted["reason"],
        "ticket OPS-4411: yesterday's backup verified, lead approved"
    );
    let session = t
        .session_file()
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    t.run(&["report", &session])
        .code(0)
        .has("**refusal overridden**")
        .has("\"ticket OPS-4411: yesterday's backup verified, lead approved\"")
        .has("failing: scsi.grown_defect_list = 260");
}

#[test]
fn override_needs_a_reason_of_substance() {
    let t = Scratch::new();
    let runbook = root().join(RUNBOOK);
    let scenario = variant(
        &t,
        "survivor-failing-overridden",
        &runbook,
        "[answers]\npreflight = \"ok\"\n",
        "outcome = \"refused\"\nstep = \"preflight\"\nreason = \"is not a reason\"",
    );
    t.run(&[
        "dry-run",
        RUNBOOK,
        "--scenario",
        &scenario.display().to_string(),
    ])
    .code(0)
    .has("`ok` is not a reason to go on with a failing survivor")
    .has("expectation met");
}

#[test]
fn at_risk_survivor_must_be_acknowledged_with_the_word() {
    let t = Scratch::new();
    t.run(&[
        "dry-run",
        RUNBOOK,
        "--scenario",
        &shipped("survivor-at-risk-acknowledged"),
    ])
    .code(0)
    .has("survivor nvme0n1 (serial LAB-A-0001, bay 0) is at risk: nvme.percentage_used = 93")
    .has("expectation met");

    let t = Scratch::new();
    let runbook = root().join(RUNBOOK);
    let scenario = variant(
        &t,
        "survivor-at-risk-acknowledged",
        &runbook,
        "[answers]\npreflight = \"yes\"\n",
        "outcome = \"aborted\"\nstep = \"preflight\"",
    );
    t.run(&[
        "dry-run",
        RUNBOOK,
        "--scenario",
        &scenario.display().to_string(),
        "--exit-with-outcome",
    ])
    .code(5)
    .has("not acknowledged");
}

#[test]
fn nvme_error_log_rise_by_one_warns_once_and_halts_only_through_halt_on() {
    let t = Scratch::new();
    let runbook = root().join(RUNBOOK);
    let text =
        std::fs::read_to_string(root().join(shipped("nvme-critical-warning-during-rebuild")))
            .unwrap()
            .replace(
                "../../md-replace-member.toml",
                &runbook.display().to_string(),
            )
            .replace(
                "set = { \"nvme0n1.nvme.critical_warning\" = 4 }",
                "set = { \"nvme0n1.nvme.num_err_log_entries\" = 1 }\n\n[[event]]\n\
                 during = \"rebuild\"\nafter = \"70s\"\n\
                 set = { \"nvme0n1.nvme.num_err_log_entries\" = 2 }",
            );
    let cut = text.find("[expect]").unwrap();
    let warns = t.write(
        "warns.toml",
        &format!("{}[expect]\noutcome = \"completed\"\n", &text[..cut]),
    );
    let done = t
        .run(&[
            "dry-run",
            RUNBOOK,
            "--scenario",
            &warns.display().to_string(),
        ])
        .code(0)
        .has("nvme.num_err_log_entries 0 → 1: the NVMe error log also records harmless entries")
        .has("expectation met");
    assert_eq!(
        done.stdout
            .lines()
            .filter(|l| l.contains("warn:") && l.contains("nvme.num_err_log_entries"))
            .count(),
        1,
        "{}",
        done.stdout
    );

    let t = Scratch::new();
    let strict = runbook_with_guard(&t, "halt_on = [\"nvme.num_err_log_entries\"]");
    let text = text.replace(
        &runbook.display().to_string(),
        &strict.display().to_string(),
    );
    let cut = text.find("[expect]").unwrap();
    let halts = t.write(
        "halts.toml",
        &format!(
            "{}[expect]\noutcome = \"halted\"\nstep = \"rebuild\"\nreasons = [\"LAB-A-0001\", \"nvme.num_err_log_entries 0 → 1\"]\n",
            &text[..cut]
        ),
    );
    t.run(&[
        "dry-run",
        &strict.display().to_string(),
        "--scenario",
        &halts.display().to_string(),
    ])
    .code(0)
    .has("expectation met");
}

/// A fake `smartctl` on PATH that prints a captured fixture per device.
fn fake_smartctl(t: &Scratch, by_device: &[(&str, serde_json::Value)]) -> String {
    let bin = t.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let mut script = String::from("#!/bin/sh\ncase \"$3\" in\n");
    for (dev, json) in by_device {
        let file = t.write(&format!("{dev}.json"), &json.to_string());
        script.push_str(&format!("  /dev/{dev}) cat '{}' ;;\n", file.display()));
    }
    script.push_str("  *) exit 2 ;;\nesac\n");
    let path = bin.join("smartctl");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Programs come from the state directory's search path, never PATH.
    let search = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display());
    t.config(&format!("path = {search:?}\n"));
    search
}

fn fixture(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("tests/fixtures/smart").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn status_shows_each_drives_verdict_in_text_and_json() {
    let t = Scratch::new();
    let mut failing = fixture("smartctl-nvme-healthy-intel.json");
    failing["nvme_smart_health_information_log"]["media_errors"] = serde_json::json!(7);
    let path = fake_smartctl(
        &t,
        &[
            ("nvme0n1", failing),
            ("nvme1n1", fixture("smartctl-nvme-healthy-intel.json")),
        ],
    );
    let args = ["status", "--sysroot", "tests/fixtures/md/clean"];
    let text = t.command(&args).env("PATH", &path).run().code(0);
    assert!(
        text.stdout
            .contains("verdict: failing: nvme.media_errors = 7 (NVMe unrecovered media and data integrity errors)"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("verdict: healthy"), "{}", text.stdout);

    let json = t
        .command(&["status", "--json", "--sysroot", "tests/fixtures/md/clean"])
        .env("PATH", &path)
        .run()
        .code(0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let drives = v["arrays"][0]["drives"].as_array().unwrap();
    let of = |dev: &str| {
        drives
            .iter()
            .find(|d| d["id"]["dev"] == dev)
            .unwrap_or_else(|| panic!("{dev} in {}", json.stdout))["verdict"]
            .clone()
    };
    assert_eq!(of("nvme0n1")["level"], "failing");
    assert_eq!(
        of("nvme0n1")["findings"][0]["condition"],
        "nvme.media_errors"
    );
    assert_eq!(of("nvme0n1")["findings"][0]["value"], "7");
    assert_eq!(of("nvme1n1")["level"], "healthy");
}

#[test]
fn status_without_smart_is_unknown_never_healthy_and_md_flags_fail() {
    let t = Scratch::new();
    let clean = t
        .run(&[
            "status",
            "--no-smart",
            "--sysroot",
            "tests/fixtures/md/clean",
        ])
        .code(0)
        .has("verdict: unknown: SMART not read");
    assert!(
        !clean.stdout.contains("verdict: healthy"),
        "{}",
        clean.stdout
    );
    t.run(&[
        "status",
        "--no-smart",
        "--sysroot",
        "tests/fixtures/md/after-read-errors",
    ])
    .code(0)
    .has("verdict: failing: md.write_error = set");
}
