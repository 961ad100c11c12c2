//! The QEMU lab as cargo tests: each scenario of tests/lab/lab.py boots a
//! guest from Debian's own kernel, builds a real md RAID1 (or a btrfs RAID1
//! file system, the `btrfs_*` tests) over emulated NVMe, virtio-scsi or SATA
//! drives and runs this crate's swapguard binary
//! in it, interactively, while the harness pulls, inserts and breaks drives
//! through QMP (docs/lab.md).
//!
//! One guest at a time: the tests take a lock, since two TCG guests on two
//! cores would only slow each other down. When QEMU or the kernel is missing
//! the lab fails under `CI=true` and otherwise says on stderr, past the test
//! harness's capture, exactly what it skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

static ONE_GUEST_AT_A_TIME: Mutex<()> = Mutex::new(());

/// lab.py's exit status when it skipped (outside CI, prerequisites missing).
const SKIPPED: i32 = 77;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn say(line: &str) {
    // Straight to fd 2: `eprintln!` would be captured and hidden when the
    // test passes, and a skip must never be silent.
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn lab(scenario: &str, extra: &[&str]) {
    let _guard = ONE_GUEST_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let work = repo().join("target/lab");
    let binary = Path::new(env!("CARGO_BIN_EXE_swapguard"));
    let mut command = Command::new("python3");
    command
        .arg(repo().join("tests/lab/lab.py"))
        .arg(scenario)
        .args(extra)
        .arg("--swapguard")
        .arg(binary)
        .arg("--work")
        .arg(&work)
        .arg("--skip-status")
        .arg(SKIPPED.to_string());
    let output = match command.output() {
        Ok(output) => output,
        Err(err) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("lab `{scenario}`: cannot start `python3`: {err}");
            }
            say(&format!(
                "lab `{scenario}` SKIPPED: cannot start `python3`: {err}"
            ));
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(SKIPPED) {
        say(&format!("lab `{scenario}` {}", stdout.trim()));
        return;
    }
    // Shown with `--nocapture`, and always when the test fails.
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "lab `{scenario}` failed ({}); logs under `{}`\n{stdout}\n{stderr}",
        output.status,
        work.display()
    );
}

#[test]
fn member_healthy() {
    lab("member-healthy", &[]);
}

#[test]
fn hot_healthy() {
    lab("hot-healthy", &[]);
}

#[test]
fn write_errors_during_pull() {
    lab("write-errors-during-pull", &[]);
}

#[test]
fn smart_warning_during_rebuild() {
    lab("smart-warning-during-rebuild", &[]);
}

#[test]
fn nvme_health_event() {
    lab("nvme-health-event", &[]);
}

#[test]
fn wrong_drive_pulled() {
    lab("wrong-drive-pulled", &[]);
}

#[test]
fn broken_drive_back() {
    lab("broken-drive-back", &[]);
}

#[test]
fn pull_before_md_notices() {
    lab("pull-before-md-notices", &[]);
}

#[test]
fn overwrite_under_one_mirror() {
    lab("overwrite-under-one-mirror", &[]);
}

#[test]
fn detection_latency() {
    lab("latency", &["--latency", "3"]);
}

#[test]
fn scsi_healthy() {
    lab("scsi-healthy", &[]);
}

#[test]
fn scsi_wrong_drive_pulled() {
    lab("scsi-wrong-drive-pulled", &[]);
}

#[test]
fn scsi_survivor_errors() {
    lab("scsi-survivor-errors", &[]);
}

#[test]
fn sata_first_steps() {
    lab("sata-first-steps", &[]);
}

// btrfs (tests/lab/btrfs_scenarios.py): a RAID1 file system over the two
// drives, swapguard run with `--array /mnt/data` on runbooks/btrfs-*.toml.
// Not cargo tests (lab.py runs them by name; docs/lab.md says why):
// btrfs-guest and zfs-guest (the lab's own powers, no swapguard), and
// btrfs-latency and zfs-latency (measurements, not checks).

#[test]
fn btrfs_replace_hot() {
    lab("btrfs-replace-hot", &[]);
}

#[test]
fn btrfs_survivor_write_errors() {
    lab("btrfs-survivor-write-errors", &[]);
}

#[test]
fn btrfs_wrong_drive_pulled() {
    lab("btrfs-wrong-drive-pulled", &[]);
}

#[test]
fn btrfs_corruption() {
    lab("btrfs-corruption", &[]);
}

#[test]
fn btrfs_sata_corruption() {
    lab("btrfs-sata-corruption", &[]);
}

#[test]
fn btrfs_scsi_replace_hot() {
    lab("btrfs-scsi-replace-hot", &[]);
}

#[test]
fn btrfs_scsi_wrong_drive_pulled() {
    lab("btrfs-scsi-wrong-drive-pulled", &[]);
}

#[test]
fn btrfs_replace_missing() {
    lab("btrfs-replace-missing", &[]);
}

#[test]
fn btrfs_scsi_mount_check() {
    lab("btrfs-scsi-mount-check", &[]);
}

#[test]
fn btrfs_resume() {
    lab("btrfs-resume", &[]);
}

// ZFS (tests/lab/zfs_lab.py): the guest gets OpenZFS 2.3 from the build
// cache that tests/lab/zfs_build.py fills (built on first use).

#[test]
fn zfs_replace_member() {
    lab("zfs-replace-member", &[]);
}

#[test]
fn zfs_scsi_replace_member() {
    lab("zfs-scsi-replace-member", &[]);
}

#[test]
fn zfs_replace_hot() {
    lab("zfs-replace-hot", &[]);
}

#[test]
fn zfs_write_errors_during_pull() {
    lab("zfs-write-errors-during-pull", &[]);
}

#[test]
fn zfs_wrong_drive_pulled() {
    lab("zfs-wrong-drive-pulled", &[]);
}

#[test]
fn zfs_scsi_wrong_drive_pulled() {
    lab("zfs-scsi-wrong-drive-pulled", &[]);
}

#[test]
fn zfs_broken_drive_back() {
    lab("zfs-broken-drive-back", &[]);
}

#[test]
fn zfs_overwrite_survivor() {
    lab("zfs-overwrite-survivor", &[]);
}
