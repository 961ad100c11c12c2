//! Whole-process tests for the guard's smaller holes (issue 10, items 6, 7,
//! 8 and 11): a physical step's confirmation, padded serials, a vanished
//! member in `status`, and consistent exit codes and diagnostics.

use super::{Test, root};

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
