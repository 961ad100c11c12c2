//! Benchmarks: how the watch's costs grow with the number of drives.
//!
//! - a fast look (what the watch does every `watch_poll` and after every
//!   event) at 2, 8, 24 and 60 members, on generated md sysfs trees read
//!   through the real md backend (as `--sysroot` does) and in the simulator;
//! - a background SMART round at the same sizes with a stand-in `smartctl`
//!   that takes 100 ms, through the real poller (up to 8 at once).
//!
//! Run: `cargo bench --bench scale -- --warm-up-time 1 --measurement-time 3`

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use swapguard::backend::md::MdBackend;
use swapguard::backend::sim::SimBackend;
use swapguard::backend::smart::poller::SmartPoller;
use swapguard::backend::{Backend, CommandOutput, CommandRunner, Depth};
use swapguard::clock::SimClock;

const SIZES: [usize; 4] = [2, 8, 24, 60];

/// A fast look runs no programs; this one fails loudly if it is asked to.
struct NoPrograms;

impl CommandRunner for NoPrograms {
    fn run(&mut self, argv: &[String], _timeout: Duration) -> Result<CommandOutput> {
        bail!("a fast look ran `{}`", argv.join(" "))
    }
}

/// A `smartctl` that takes 100 ms and finds the drive healthy.
struct SlowSmartctl;

impl CommandRunner for SlowSmartctl {
    fn run(&mut self, argv: &[String], _timeout: Duration) -> Result<CommandOutput> {
        std::thread::sleep(Duration::from_millis(100));
        Ok(CommandOutput {
            argv: argv.to_vec(),
            code: Some(0),
            stdout: r#"{"smartctl":{"exit_status":0},"device":{"protocol":"NVMe"},"smart_status":{"passed":true},"nvme_smart_health_information_log":{"critical_warning":0,"media_errors":0,"num_err_log_entries":0,"percentage_used":1,"available_spare":100,"available_spare_threshold":10}}"#.into(),
            stderr: String::new(),
            timed_out: false,
        })
    }
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// An md tree like the lab's captures, with `n` NVMe members in one
/// clean array (RAID1 for two, RAID6 above).
fn md_tree(root: &Path, n: usize) {
    let level = if n == 2 { "raid1" } else { "raid6" };
    let mut line = format!("md0 : active {level}");
    for i in (0..n).rev() {
        write!(line, " nvme{i}n1[{i}]").unwrap();
    }
    let ups = "U".repeat(n);
    write(
        root,
        "proc/mdstat",
        &format!(
            "Personalities : [{level}] \n{line}\n      64512 blocks super 1.2 [{n}/{n}] [{ups}]\n      \nunused devices: <none>\n"
        ),
    );
    write(root, "dev/kmsg", "");
    let md = "sys/block/md0/md";
    for (name, value) in [
        ("sync_speed", "none"),
        ("level", level),
        ("degraded", "0"),
        ("array_state", "clean"),
        ("mismatch_cnt", "0"),
        ("sync_action", "idle"),
        ("sync_completed", "none"),
        ("raid_disks", &n.to_string()),
    ] {
        write(root, &format!("{md}/{name}"), &format!("{value}\n"));
    }
    for i in 0..n {
        let disk = format!("nvme{i}n1");
        let member = format!("{md}/dev-{disk}");
        write(root, &format!("{member}/errors"), "0\n");
        write(root, &format!("{member}/slot"), &format!("{i}\n"));
        write(root, &format!("{member}/state"), "in_sync\n");
        write(root, &format!("{member}/bad_blocks"), "");
        let b = format!("sys/block/{disk}");
        write(root, &format!("{b}/holders/md0/.keep"), "");
        write(root, &format!("{b}/size"), "131072\n");
        write(
            root,
            &format!("{b}/wwid"),
            &format!("nvme.1b36-{i:08x}-00000001\n"),
        );
        write(root, &format!("{b}/device/model"), "QEMU NVMe Ctrl\n");
        write(root, &format!("{b}/device/firmware_rev"), "7.2.22\n");
        write(
            root,
            &format!("{b}/device/serial"),
            &format!("BENCH-{i:04}\n"),
        );
    }
}

/// The kernel's name for the `i`th SCSI disk: `sda` ... `sdz`, `sdaa` ...
fn sd_name(i: usize) -> String {
    let mut letters = Vec::new();
    let mut n = i + 1;
    while n > 0 {
        n -= 1;
        letters.push(b'a' + (n % 26) as u8);
        n /= 26;
    }
    letters.reverse();
    format!("sd{}", String::from_utf8(letters).unwrap())
}

/// A scenario with `n` members in md0.
fn scenario(n: usize) -> String {
    let level = if n == 2 { "raid1" } else { "raid6" };
    let mut s = format!(
        "[scenario]\nname = \"{n} drives\"\nrunbook = \"none.toml\"\nparams = {{ array = \"md0\", target = \"sdb\" }}\n\n[array]\nname = \"md0\"\nlevel = \"{level}\"\nrebuild_time = \"2m\"\n"
    );
    for i in 0..n {
        write!(
            s,
            "\n[[array.members]]\ndev = \"{}\"\nserial = \"BENCH{i:04}\"\nmodel = \"BENCH\"\nfirmware = \"1\"\nslot = {i}\nsize = \"960G\"\n",
            sd_name(i)
        )
        .unwrap();
    }
    s.push_str("\n[expect]\noutcome = \"completed\"\n");
    s
}

fn fast_look(c: &mut Criterion) {
    let mut group = c.benchmark_group("fast look");
    for n in SIZES {
        let dir = tempfile::TempDir::new().unwrap();
        md_tree(dir.path(), n);
        let mut md = MdBackend::new(dir.path().to_path_buf(), Box::new(NoPrograms));
        let first = md.snapshot("md0", Depth::Fast).expect("look at the tree");
        assert!(first.problems.is_empty(), "{:?}", first.problems);
        assert_eq!(first.drives.len(), n);
        group.bench_with_input(BenchmarkId::new("md sysfs tree", n), &n, |b, _| {
            b.iter(|| md.snapshot("md0", Depth::Fast).expect("look"))
        });

        let path = dir.path().join("scenario.toml");
        let parsed = swapguard::scenario::parse(&path, &scenario(n)).expect("scenario");
        let mut sim = SimBackend::new(parsed.machine("md"), SimClock::new()).expect("sim");
        let first = sim.snapshot("md0", Depth::Fast).expect("sim look");
        assert_eq!(first.drives.len(), n);
        group.bench_with_input(BenchmarkId::new("simulator", n), &n, |b, _| {
            b.iter(|| sim.snapshot("md0", Depth::Fast).expect("look"))
        });
    }
    group.finish();
}

fn smart_round(c: &mut Criterion) {
    let mut group = c.benchmark_group("SMART round, 100 ms smartctl");
    group.sample_size(10);
    for n in SIZES {
        let poller = SmartPoller::new(
            Arc::new(|| Box::new(SlowSmartctl) as Box<dyn CommandRunner + Send>),
            Duration::from_secs(30),
        );
        let disks: Vec<String> = (0..n).map(|i| format!("nvme{i}n1")).collect();
        group.bench_with_input(BenchmarkId::new("poller", n), &n, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    assert!(poller.start(disks.clone()));
                    let mut got = 0;
                    while got < n {
                        got += poller.take().len();
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    total += start.elapsed();
                    while poller.busy() {
                        std::thread::yield_now();
                    }
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fast_look, smart_round);
criterion_main!(benches);
