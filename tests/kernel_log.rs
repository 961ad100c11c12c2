//! Whole-process tests of the kernel log as a guard signal: a real `run`
//! against a captured md tree (`--sysroot`), whose `dev/kmsg` stands for
//! /dev/kmsg. The test appends a block-layer I/O error record to it while
//! the run watches a physical step, as the kernel would.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

/// `swapguard run` of the pull-only runbook on a copy of the clean NVMe
/// tree, the technician's one answer given.
fn pull_run(dir: &Path, tree: &Path) -> Command {
    let answers = dir.join("answers.toml");
    std::fs::write(&answers, "antistatic = \"yes\"\n").unwrap();
    let mut cmd = Command::new(BIN);
    cmd.current_dir(root())
        .args(["run", "tests/fixtures/runbooks-e2e/pull-only.toml"])
        .args(["--array", "md0", "--target", "nvme1n1"])
        .arg("--sysroot")
        .arg(tree)
        .arg("--answers")
        .arg(&answers)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

#[test]
fn a_kernel_io_error_record_on_a_survivor_halts_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    copy_tree(&root().join("tests/fixtures/md/clean"), &tree);
    // Records already in the log when the run starts are not counted.
    std::fs::write(
        tree.join("dev/kmsg"),
        "3,900,1000,-;I/O error, dev nvme0n1, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2\n",
    )
    .unwrap();
    let mut child = pull_run(dir.path(), &tree)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("watching every drive") {
            // The survivor LAB-A-0001 (nvme0n1) fails a write while the
            // technician's hands are in the chassis: md marks nothing yet.
            let mut log = std::fs::OpenOptions::new()
                .append(true)
                .open(tree.join("dev/kmsg"))
                .unwrap();
            log.write_all(
                b"3,1207,52714590,-;critical medium error, dev nvme0n1, sector 34816 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2\n",
            )
            .unwrap();
            // Should the record go unseen, the technician pulls the target
            // after a while and the run ends (exit 0) instead of waiting
            // for ever; a passing run has halted long before.
            let target = tree.join("sys/block/nvme1n1");
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_secs(10));
                let _ = std::fs::remove_dir_all(target);
            });
        }
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{seen}\n{stderr}");
    let all = format!("{seen}{stderr}");
    assert!(
        all.contains("nvme0n1 (serial LAB-A-0001, bay unknown): kernel.io_errors 0 → 1"),
        "{all}"
    );
}

#[test]
fn a_run_without_a_kernel_log_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    copy_tree(&root().join("tests/fixtures/md/clean"), &tree);
    std::fs::remove_file(tree.join("dev/kmsg")).unwrap();
    let output = pull_run(dir.path(), &tree).output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(4), "{all}");
    assert!(
        all.contains("cannot open the kernel log") && all.contains("dev/kmsg"),
        "{all}"
    );
}
