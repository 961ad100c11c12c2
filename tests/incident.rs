//! Whole-process tests of the incident's later turns (issue 5): the
//! quarantine registry across runs and restarts, the restore runbook's gates,
//! command steps that would write to a quarantined drive, data canaries in
//! dry runs, and the second-person sign-off. Every run is the real binary.

use std::path::{Path, PathBuf};

mod common;
use common::{Done, root};

/// Run the binary with `--state-dir state`.
fn swapguard(state: &Path, args: &[&str]) -> Done {
    common::swapguard(state, args).run()
}

fn journal_events(state: &Path) -> Vec<serde_json::Value> {
    common::journal(state)
}

const RESTORE: &str = "runbooks/restore-from-backup.toml";
const RESTORE_HEALTHY: &str = "runbooks/scenarios/restore-from-backup/healthy.toml";
const MEMBER: &str = "runbooks/md-replace-member.toml";
const MEMBER_HEALTHY: &str = "runbooks/scenarios/md-replace-member/healthy.toml";

/// A scenario derived from a shipped one, written next to it in `dir` with
/// its runbook path made absolute.
fn derived(dir: &Path, name: &str, from: &str, edits: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(root().join(from)).unwrap();
    for (old, new) in edits {
        assert!(text.contains(old), "{from} lacks {old:?}");
        text = text.replacen(old, new, 1);
    }
    let runbook_line = text
        .lines()
        .find(|l| l.starts_with("runbook = "))
        .unwrap()
        .to_string();
    let rel = runbook_line
        .trim_start_matches("runbook = \"")
        .trim_end_matches('"');
    let abs = root().join(from).parent().unwrap().join(rel);
    text = text.replace(
        &runbook_line,
        &format!("runbook = {:?}", abs.display().to_string()),
    );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The quarantine a replacement run records outlives the process: a later
/// restore run (another process, same state directory) refuses the pulled
/// drive as its target, naming when and why.
#[test]
fn quarantine_from_a_replacement_run_refuses_a_later_restore_onto_that_drive() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    swapguard(&state, &["dry-run", MEMBER, "--scenario", MEMBER_HEALTHY])
        .code(0)
        .stdout_has("quarantined sdb (serial S3Z1NB0K100002, bay 1)");
    let registry: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("quarantine.json")).unwrap())
            .unwrap();
    let entry = &registry["drives"][0];
    assert_eq!(entry["serial"], "S3Z1NB0K100002");
    assert_eq!(entry["wwn"], "0x5002538e40a10002");
    // Quarantined when `mdadm --fail` took it out, before its pull.
    assert_eq!(entry["step"], "fail");
    assert_eq!(entry["at"], "2026-01-01T00:00:00.000Z");
    assert_eq!(entry["last_health"]["state"], "in-sync");
    assert_eq!(entry["last_health"]["smart"], "passed");
    swapguard(&state, &["quarantine", "list"])
        .code(0)
        .stdout_has("serial S3Z1NB0K100002, WWN 0x5002538e40a10002  QUARANTINED")
        .stdout_has("failed or removed from the array by step `fail` of runbook `Replace one member of a Linux md array` on array `md0`");

    // The restore scenario without its seeded registry entry: only the
    // replacement run's entry stands between the drive and the restore.
    let healthy = std::fs::read_to_string(root().join(RESTORE_HEALTHY)).unwrap();
    let seeded =
        &healthy[healthy.find("[[quarantined]]").unwrap()..healthy.find("[[command]]").unwrap()];
    let scenario = derived(
        dir.path(),
        "restore-onto-b.toml",
        RESTORE_HEALTHY,
        &[
            ("target = \"S3Z1NB0K900004\"", "target = \"S3Z1NB0K100002\""),
            (seeded, ""),
            (
                "outcome = \"completed\"",
                "outcome = \"refused\"\nstep = \"preflight\"",
            ),
        ],
    );
    let scenario = scenario.display().to_string();
    swapguard(&state, &["dry-run", RESTORE, "--scenario", &scenario])
        .code(0)
        .stdout_has("the target sdc (serial S3Z1NB0K100002, bay 2) must not be written to: it is quarantined since 2026-01-01T00:00:00.000Z by run `md0-");
    // The exit code a script sees.
    swapguard(
        &state,
        &[
            "dry-run",
            RESTORE,
            "--scenario",
            &scenario,
            "--exit-with-outcome",
        ],
    )
    .code(4);
}

#[test]
fn quarantine_add_refuses_the_new_drive_and_release_needs_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    swapguard(&state, &["quarantine", "list"])
        .code(0)
        .stdout_has("no quarantined drives");
    swapguard(
        &state,
        &[
            "quarantine",
            "add",
            "S3Z1NB0K900003",
            "--reason",
            "dropped on the floor",
        ],
    )
    .code(0)
    .stdout_has("quarantined serial S3Z1NB0K900003");
    // The spare on the cart is now refused when it is inserted.
    swapguard(
        &state,
        &[
            "dry-run",
            MEMBER,
            "--scenario",
            MEMBER_HEALTHY,
            "--exit-with-outcome",
        ],
    )
    .code(3)
    .stdout_has("refused the new drive sdb (serial S3Z1NB0K900003, bay 1)")
    .stdout_has("by hand: dropped on the floor");
    // A release needs a reason: missing (clap) or blank.
    swapguard(&state, &["quarantine", "release", "S3Z1NB0K900003"])
        .code(2)
        .stderr_has("--reason");
    swapguard(
        &state,
        &["quarantine", "release", "S3Z1NB0K900003", "--reason", "  "],
    )
    .code(2)
    .stderr_has("the reason is empty");
    swapguard(
        &state,
        &["quarantine", "release", "NO-SUCH-SERIAL", "--reason", "x"],
    )
    .code(2)
    .stderr_has("no quarantined drive has serial or WWN `NO-SUCH-SERIAL`");
    swapguard(
        &state,
        &[
            "quarantine",
            "release",
            "S3Z1NB0K900003",
            "--reason",
            "tested by the vendor, RMA 4711",
        ],
    )
    .code(0)
    .stdout_has("released serial S3Z1NB0K900003");
    swapguard(&state, &["quarantine", "list", "--all"])
        .code(0)
        .stdout_has("released ")
        .stdout_has("(tested by the vendor, RMA 4711)");
    let events = journal_events(&state);
    let names: Vec<&str> = events
        .iter()
        .filter_map(|e| e["event"].as_str())
        .filter(|e| e.starts_with("quarantine-"))
        .collect();
    assert_eq!(names, ["quarantine-added", "quarantine-released"]);
    let released = events
        .iter()
        .find(|e| e["event"] == "quarantine-released")
        .unwrap();
    assert_eq!(
        released["entry"]["released"]["reason"],
        "tested by the vendor, RMA 4711"
    );
    // Released: the same dry run completes.
    swapguard(&state, &["dry-run", MEMBER, "--scenario", MEMBER_HEALTHY]).code(0);
}

#[test]
fn a_damaged_registry_refuses_rather_than_forgets() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("quarantine.json"), "{ not json").unwrap();
    std::fs::set_permissions(
        state.join("quarantine.json"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    swapguard(&state, &["quarantine", "list"])
        .code(1)
        .stderr_has("is damaged");
    swapguard(
        &state,
        &[
            "dry-run",
            MEMBER,
            "--scenario",
            MEMBER_HEALTHY,
            "--exit-with-outcome",
        ],
    )
    .code(4)
    .stdout_has("cannot read the quarantine registry: the quarantine registry `")
    .stdout_has("is damaged; restore it from a backup or the journals, never delete it");
}

/// A scenario for the wipe fixture runbook: the blank drive `sdd` is the
/// target, `sdc` (drive B) is quarantined, `device` names what is wiped.
fn wipe_scenario(dir: &Path, device: &str, expect: &str) -> String {
    let text = format!(
        r#"[scenario]
name = "wipe {device}"
runbook = "{runbook}"
params = {{ array = "md0", target = "S3Z1NB0K900004", device = "{device}" }}

[array]
name = "md0"
level = "raid1"

[[array.members]]
dev = "sda"
serial = "S3Z1NB0K900001"
slot = 0
size = "960G"

[[array.members]]
dev = "sdb"
serial = "S3Z1NB0K900003"
slot = 1
size = "960G"

[[array.others]]
dev = "sdc"
serial = "S3Z1NB0K100002"
slot = 2
size = "960G"

[[array.others]]
dev = "sdd"
serial = "S3Z1NB0K900004"
slot = 3
size = "960G"
blank = true

[[quarantined]]
drive = "S3Z1NB0K100002"
reason = "pulled as broken"
at = "2025-12-31T22:14:05.000Z"
session = "md0-earlier"

[[command]]
argv = ["wipefs", "--all", "{device}"]

{expect}
"#,
        runbook = root()
            .join("tests/fixtures/runbooks-e2e/wipe-named-device.toml")
            .display()
    );
    let path = dir.join(format!("wipe-{}.toml", device.replace('/', "_")));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_command_naming_a_quarantined_drive_is_not_run_whatever_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let runbook = "tests/fixtures/runbooks-e2e/wipe-named-device.toml";
    let halted = "[expect]\noutcome = \"halted\"\nstep = \"wipe\"";
    // By kernel name, by partition, by by-id link with the serial: all the
    // quarantined drive.
    for device in [
        "/dev/sdc",
        "/dev/sdc1",
        "/dev/disk/by-id/ata-SAMSUNG_MZ7LH960HAJR-00005_S3Z1NB0K100002",
    ] {
        let scenario = wipe_scenario(dir.path(), device, halted);
        swapguard(
            &dir.path().join("state"),
            &["dry-run", runbook, "--scenario", &scenario],
        )
        .code(0)
        .stdout_has("step `wipe` was not run: it would write to a quarantined drive")
        .stdout_has("sdc (serial S3Z1NB0K100002, bay 2)")
        .stdout_has(
            "quarantined since 2025-12-31T22:14:05.000Z by run `md0-earlier`: pulled as broken",
        );
    }
    // A device that is no drive of this system cannot be judged: refused.
    let scenario = wipe_scenario(dir.path(), "/dev/mapper/vg0-data", halted);
    swapguard(
        &dir.path().join("state"),
        &["dry-run", runbook, "--scenario", &scenario],
    )
    .code(0)
    .stdout_has("it would write to a device swapguard cannot identify");
    // The blank drive itself is fine.
    let scenario = wipe_scenario(dir.path(), "/dev/sdd", "[expect]\noutcome = \"completed\"");
    swapguard(
        &dir.path().join("state"),
        &["dry-run", runbook, "--scenario", &scenario],
    )
    .code(0);
}

const CANARY: &str = "tests/fixtures/runbooks-e2e/replace-with-canary.toml";

fn canary_scenario(dir: &Path, name: &str, event: &str, expect: &str) -> String {
    derived(
        dir,
        name,
        MEMBER_HEALTHY,
        &[
            (
                "runbook = \"../../md-replace-member.toml\"",
                &format!("runbook = {:?}", root().join(CANARY).display().to_string()),
            ),
            (
                "[expect]\noutcome = \"completed\"",
                &format!("{event}\n\n{expect}"),
            ),
        ],
    )
    .display()
    .to_string()
}

#[test]
fn data_canary_catches_zeros_through_the_array_and_in_one_mirror_member() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // Healthy: planted, verified at every step, removed; the sign-off is asked.
    let scenario = canary_scenario(
        dir.path(),
        "ok.toml",
        "",
        "[expect]\noutcome = \"completed\"",
    );
    swapguard(&state, &["dry-run", CANARY, "--scenario", &scenario])
        .code(0)
        .stdout_has("data canary written: `/srv/db/.swapguard/canary-md0-")
        .stdout_has("each copy read directly: member sda (simulated), member sdb (simulated)")
        .stdout_has("Second person: type your name");
    let events = journal_events(&state);
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert!(kinds.contains(&"canary-planted"), "{kinds:?}");
    assert!(kinds.contains(&"canary-verified"), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "sign-off").count(), 1);
    assert_eq!(
        events
            .iter()
            .rev()
            .find(|e| e["event"] == "canary-removed")
            .unwrap()["outcome"],
        "removed"
    );

    // The survivor returns zeros while hands are in the chassis: the halt
    // comes at the next read, within the second, not fifteen minutes later.
    let scenario = canary_scenario(
        dir.path(),
        "zeros.toml",
        "[[event]]\nduring = \"pull\"\nafter = \"3s\"\nzero_canary = \"all\"",
        "[expect]\noutcome = \"halted\"\nstep = \"pull\"\nreasons = [\"the array returned different data\", \"all zeros\"]",
    );
    swapguard(&state, &["dry-run", CANARY, "--scenario", &scenario]).code(0);

    // Only sda's copy is zeroed during the rebuild; reads through md could
    // be served by the other member, the per-member check still sees it.
    let scenario = canary_scenario(
        dir.path(),
        "member.toml",
        "[[event]]\nduring = \"rebuild\"\nafter = \"30s\"\nzero_canary = \"sda\"",
        "[expect]\noutcome = \"halted\"\nstep = \"rebuild\"\nreasons = [\"the array returned different data\", \"member sda's copy\"]",
    );
    swapguard(&state, &["dry-run", CANARY, "--scenario", &scenario])
        .code(0)
        .stdout_has("[sim 00:00:");
}

#[test]
fn a_wrong_sign_off_aborts_before_the_command_runs() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let scenario = canary_scenario(
        dir.path(),
        "signoff.toml",
        "[answers]\nadd = [\"0003\", \"Kim Lee\", \"0002\"]",
        "[expect]\noutcome = \"aborted\"\nstep = \"add\"\nreason = \"Kim Lee typed `0002` but the serial ends in `0003`\"",
    );
    swapguard(&state, &["dry-run", CANARY, "--scenario", &scenario]).code(0);
    let events = journal_events(&state);
    assert!(!events.iter().any(|e| e["event"] == "sign-off"));
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "command" && e["step"] == "add"),
        "mdadm --add must not have run"
    );
}
