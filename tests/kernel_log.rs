//! Whole-process tests of the kernel log as a guard signal: a real `run`
//! against a captured md tree (`--sysroot`), whose `dev/kmsg` stands for
//! /dev/kmsg. The test appends a block-layer I/O error record to it while
//! the run watches a physical step, as the kernel would.

use std::io::Write;

mod common;
use common::{Run, Test};

/// `swapguard run` of the pull-only runbook on a copy of the clean NVMe
/// tree (`t`'s `tree/`), the technician's one answer given.
fn pull_run(t: &Test) -> Run {
    let answers = t.write("answers.toml", "antistatic = \"yes\"\n");
    t.swapguard(&[
        "run".as_ref(),
        "tests/fixtures/runbooks-e2e/pull-only.toml".as_ref(),
        "--array".as_ref(),
        "md0".as_ref(),
        "--target".as_ref(),
        "nvme1n1".as_ref(),
        "--answers".as_ref(),
        answers.as_os_str(),
    ])
}

#[test]
fn a_kernel_io_error_record_on_a_survivor_halts_the_run() {
    let t = Test::new().tree("tests/fixtures/md/clean");
    let tree = t.path("tree");
    // Records already in the log when the run starts are not counted.
    std::fs::write(
        tree.join("dev/kmsg"),
        "3,900,1000,-;I/O error, dev nvme0n1, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2\n",
    )
    .unwrap();
    let mut appended = false;
    let done = pull_run(&t).run_watching(|line, _| {
        if !appended && line.contains("watching every drive") {
            appended = true;
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
    });
    let (seen, stderr) = (&done.stdout, &done.stderr);
    assert_eq!(done.code, Some(3), "{seen}\n{stderr}");
    let all = format!("{seen}{stderr}");
    assert!(
        all.contains("nvme0n1 (serial LAB-A-0001, bay unknown): kernel.io_errors 0 → 1"),
        "{all}"
    );
}

#[test]
fn a_run_without_a_kernel_log_is_refused_naming_it() {
    let t = Test::new().tree("tests/fixtures/md/clean");
    let tree = t.path("tree");
    std::fs::remove_file(tree.join("dev/kmsg")).unwrap();
    let done = pull_run(&t).run();
    let all = format!("{}{}", done.stdout, done.stderr);
    assert_eq!(done.code, Some(4), "{all}");
    assert!(
        all.contains("cannot open the kernel log") && all.contains("dev/kmsg"),
        "{all}"
    );
}
