//! Snapshots of trees rebuilt from the QEMU lab's sysfs captures
//! (tests/fixtures/md/lab-captures/, written by tests/lab/capture.sh):
//! real symlinks as the kernel has them, so the `block` links of md members,
//! the `/sys/block` links into `/sys/devices` and PCIe hot-plug slots are
//! read exactly as on a real host.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use tempfile::TempDir;

use super::MdBackend;
use crate::backend::disk::identity::PciSlots;
use crate::backend::md::sysfs::{member_state, parse_flags};
use crate::backend::{Backend, CommandOutput, CommandRunner, Depth};
use crate::health::model::{MemberState, Snapshot};

struct NoCommands;

impl CommandRunner for NoCommands {
    fn run(&mut self, argv: &[String], _timeout: Duration) -> Result<CommandOutput> {
        anyhow::bail!("no command may run in a fast look: {argv:?}")
    }
}

fn capture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/md/lab-captures")
        .join(name)
}

/// Where an `E` record points: a file whose read fails with EINVAL, as a
/// SCSI disk's `device/wwid` does when the disk has no WWN. (Reading it
/// needs root, as swapguard itself and CI run; a user gets EACCES.)
const FAILS_WITH_EINVAL: &str = "/proc/self/clear_refs";

/// Rebuild a capture's records under `root`: `L <path> -> <target>` is a
/// symbolic link, `F <path>` a file whose lines follow after `| `, `X
/// <path>` a binary file whose bytes follow in hex after `| `, `E <path>
/// <message>` a file whose read fails (rebuilt as a link to a file that
/// fails with EINVAL, the only such failure captured).
fn rebuild(root: &Path, text: &str) {
    let mut file: Option<(PathBuf, Vec<u8>, bool)> = None;
    let flush = |file: &mut Option<(PathBuf, Vec<u8>, bool)>| {
        if let Some((path, contents, _)) = file.take() {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, contents).unwrap();
        }
    };
    for line in text.lines() {
        if let Some(content) = line.strip_prefix("|") {
            let (_, contents, hex) = file.as_mut().expect("a `|` line outside a file record");
            if *hex {
                contents.extend(
                    content
                        .split_whitespace()
                        .map(|b| u8::from_str_radix(b, 16).unwrap()),
                );
            } else {
                contents.extend_from_slice(content.strip_prefix(' ').unwrap_or(content).as_bytes());
                contents.push(b'\n');
            }
            continue;
        }
        flush(&mut file);
        if let Some(rest) = line.strip_prefix("E /") {
            let path = root.join(rest.split_once(' ').map_or(rest, |(p, _)| p));
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            symlink(FAILS_WITH_EINVAL, path).unwrap();
        } else if let Some(path) = line.strip_prefix("X /") {
            file = Some((root.join(path), Vec::new(), true));
        } else if let Some(rest) = line.strip_prefix("L /") {
            let (path, target) = rest.split_once(" -> ").unwrap();
            let path = root.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            symlink(target, path).unwrap();
        } else if let Some(path) = line.strip_prefix("F /") {
            file = Some((root.join(path), Vec::new(), false));
        }
    }
    flush(&mut file);
}

fn tree(names: &[&str]) -> TempDir {
    let dir = TempDir::new().unwrap();
    for name in names {
        rebuild(dir.path(), &fs::read_to_string(capture(name)).unwrap());
    }
    dir
}

fn snap(root: &Path) -> Snapshot {
    MdBackend::new(root.to_path_buf(), Box::new(NoCommands))
        .snapshot("md0", Depth::Fast)
        .unwrap_or_else(|e| panic!("{}: {e:#}", root.display()))
}

/// `dev serial bay state` per drive; `-` for none.
fn drives(snapshot: &Snapshot) -> Vec<String> {
    snapshot
        .drives
        .iter()
        .map(|d| {
            format!(
                "{} {} bay={} {}",
                d.id.dev,
                d.id.serial.as_deref().unwrap_or("-"),
                d.id.slot.as_deref().unwrap_or("-"),
                d.state().map_or("-".to_string(), |s| format!("{s:?}"))
            )
        })
        .collect()
}

#[test]
fn clean_mirror_with_bays_from_pcie_slots() {
    let dir = tree(&["capture-clean.txt"]);
    let snapshot = snap(dir.path());
    assert_eq!(
        drives(&snapshot),
        [
            "nvme0n1 LAB-A-0001 bay=1 InSync",
            "nvme1n1 LAB-B-0002 bay=2 InSync"
        ]
    );
    assert_eq!(snapshot.problems, []);
}

/// The target was pulled and md has not noticed: it still counts both
/// members in sync, but the member's `block` link dangles. The pulled drive
/// is simply gone; the survivor is still in its bay.
#[test]
fn pulled_before_md_notices() {
    let dir = tree(&["capture-pulled-before-io.txt"]);
    let snapshot = snap(dir.path());
    assert_eq!(drives(&snapshot), ["nvme0n1 LAB-A-0001 bay=1 InSync"]);
    assert_eq!(snapshot.array.degraded, 0);
    assert_eq!(snapshot.problems, []);
}

/// The new drive came up under the pulled drive's name after md dropped
/// the detached member: a different serial, in the same bay, no member.
#[test]
fn new_drive_under_the_old_name() {
    let dir = tree(&["capture-new-drive-inserted.txt"]);
    let snapshot = snap(dir.path());
    assert_eq!(
        drives(&snapshot),
        [
            "nvme0n1 LAB-A-0001 bay=1 InSync",
            "nvme1n1 LAB-C-0003 bay=2 -"
        ]
    );
}

/// SYNTHETIC on top of the capture: md still lists the pulled `nvme1n1`
/// (its `block` link dangling, as captured) while a disk of the same name
/// sits elsewhere. md's link says it is another drive, so it is no member.
/// (In the lab the kernel kept the pulled drive's NVMe instance while md
/// held it and named the new one `nvme2n1`; other drivers may reuse names.)
#[test]
fn a_reused_name_is_not_the_pulled_member() {
    let dir = tree(&["capture-pulled-before-io.txt"]);
    let root = dir.path();
    let other = "sys/devices/pci0000:00/0000:00:03.0/0000:03:00.0/nvme/nvme2";
    for (file, text) in [
        ("nvme1n1/size", "131072\n"),
        ("nvme1n1/wwid", "nvme.1b36-4c41422d432d30303033\n"),
        ("serial", "LAB-C-0003          \n"),
    ] {
        let path = root.join(other).join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    symlink("../../nvme2", root.join(other).join("nvme1n1/device")).unwrap();
    symlink(
        "../devices/pci0000:00/0000:00:03.0/0000:03:00.0/nvme/nvme2/nvme1n1",
        root.join("sys/block/nvme1n1"),
    )
    .unwrap();
    let snapshot = snap(root);
    assert_eq!(
        drives(&snapshot),
        [
            "nvme0n1 LAB-A-0001 bay=1 InSync",
            "nvme1n1 LAB-C-0003 bay=3 -"
        ]
    );
    // Without the link check the new drive would have shown as the member.
    assert!(
        snapshot
            .drives
            .iter()
            .all(|d| d.id.serial.as_deref() != Some("LAB-C-0003")
                || d.state() != Some(MemberState::InSync))
    );
}

/// Under QEMU's default ACPI hot-plug the kernel named all three slots `0`
/// and made them unique as `0`, `0-2`, `0-3`: no bays from those.
#[test]
fn clashing_slot_names_give_no_bay() {
    let dir = tree(&["capture-clean.txt"]);
    let root = dir.path();
    fs::remove_dir_all(root.join("sys/bus/pci/slots")).unwrap();
    let listing = fs::read_to_string(capture("acpi-hotplug-slots.txt")).unwrap();
    for line in listing.lines() {
        let (dir, address) = line.split_once(' ').unwrap();
        let path = root.join(dir.trim_start_matches('/')).join("address");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, format!("{address}\n")).unwrap();
    }
    let slots = PciSlots::scan(root);
    assert_eq!(slots.nvme_bay(&root.join("sys/block"), "nvme0n1"), None);
    assert_eq!(slots.nvme_bay(&root.join("sys/block"), "nvme1n1"), None);
    assert_eq!(
        drives(&snap(root)),
        [
            "nvme0n1 LAB-A-0001 bay=- InSync",
            "nvme1n1 LAB-B-0002 bay=- InSync"
        ]
    );
}

/// A SATA disk behind a controller in a hot-plug slot gets no bay from it:
/// only an NVMe drive is its own PCI function.
#[test]
fn only_nvme_drives_get_a_bay_from_a_slot() {
    let dir = TempDir::new().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("sys/bus/pci/slots/4")).unwrap();
    fs::write(root.join("sys/bus/pci/slots/4/address"), "0000:04:00\n").unwrap();
    fs::create_dir_all(root.join("sys/block")).unwrap();
    symlink(
        "../devices/pci0000:00/0000:00:04.0/0000:04:00.0/ata1/host0/target0:0:0/0:0:0:0/block/sda",
        root.join("sys/block/sda"),
    )
    .unwrap();
    symlink(
        "../devices/pci0000:00/0000:00:04.0/0000:04:00.0/nvme/nvme0/nvme0n1",
        root.join("sys/block/nvme0n1"),
    )
    .unwrap();
    let slots = PciSlots::scan(root);
    assert_eq!(slots.nvme_bay(&root.join("sys/block"), "sda"), None);
    assert_eq!(
        slots
            .nvme_bay(&root.join("sys/block"), "nvme0n1")
            .as_deref(),
        Some("4")
    );
}

/// Write errors on a survivor: md either failed it (`faulty`, `blocked`) or
/// kept it `in_sync` with `write_error,want_replacement`. Either way a flag
/// the guard halts on is there, whatever the member's state.
#[test]
fn write_error_member_states() {
    let text = fs::read_to_string(capture("write-error-member-states.txt")).unwrap();
    let states: Vec<(MemberState, bool)> = text
        .lines()
        .map(|line| {
            let flags = parse_flags(line);
            let bad = flags
                .iter()
                .any(|f| super::facts::BAD_FLAGS.contains(&f.as_str()));
            (member_state(&flags, Some(0)), bad)
        })
        .collect();
    assert_eq!(
        states,
        [(MemberState::Faulty, true), (MemberState::InSync, true)]
    );
}

/// smartctl as it behaves on the lab's SATA drives: every run raises the
/// drive's `device/ioerr_cnt` by one (the SCSI layer counts the SMART
/// pass-through commands, which complete with sense data by design), and
/// the drive reports healthy.
struct SataSmartctl {
    sys_block: PathBuf,
}

impl CommandRunner for SataSmartctl {
    fn run(&mut self, argv: &[String], _timeout: Duration) -> Result<CommandOutput> {
        let disk = argv.last().unwrap().trim_start_matches("/dev/");
        bump_ioerr_cnt(&self.sys_block, disk, 1);
        Ok(CommandOutput {
            argv: argv.to_vec(),
            code: Some(0),
            stdout: fs::read_to_string(
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures/smart/lab-smartctl-sdc.json"),
            )
            .unwrap(),
            stderr: String::new(),
            timed_out: false,
        })
    }
}

/// Raise a disk's `ioerr_cnt` as the kernel would (`0x%x`).
fn bump_ioerr_cnt(sys_block: &Path, disk: &str, by: u64) -> u64 {
    let path = sys_block.join(disk).join("device/ioerr_cnt");
    let now =
        crate::backend::disk::identity::parse_hex(&fs::read_to_string(&path).unwrap()).unwrap();
    let new = now + by;
    let tmp = path.with_file_name(".ioerr_cnt.new");
    fs::write(&tmp, format!("0x{new:x}\n")).unwrap();
    fs::rename(tmp, &path).unwrap();
    new
}

fn counter(snapshot: &Snapshot, dev: &str, name: &str) -> Option<u64> {
    let drive = snapshot.drives.iter().find(|d| d.id.dev == dev)?;
    drive.counters.get(name).copied()
}

/// Regression: on SATA and SCSI drives swapguard halted at the first step
/// of a healthy run, on `io.ioerr_cnt` raised by its own SMART probes.
/// Baseline, step-boundary looks and the watch loop's background SMART
/// rounds all probe the drives; the guard must see no change, and must
/// still see a real error and a kernel log I/O error record.
#[test]
fn sata_own_smart_probes_are_no_halt() {
    use crate::backend::smart::poller::RunnerFactory;
    use crate::health::guard::{Allowed, NewAllowance, compare};
    use crate::runbook::model::{DriveExpect, GuardPolicy};

    let dir = tree(&["capture-sata-clean.txt"]);
    let root = dir.path();
    fs::create_dir_all(root.join("dev")).unwrap();
    fs::write(root.join("dev/kmsg"), "").unwrap();
    let sys_block = root.join("sys/block");
    let worker_sys = sys_block.clone();
    let factory: RunnerFactory = std::sync::Arc::new(move || {
        Box::new(SataSmartctl {
            sys_block: worker_sys.clone(),
        }) as Box<dyn CommandRunner + Send>
    });
    let mut md = MdBackend::new(
        root.to_path_buf(),
        Box::new(SataSmartctl {
            sys_block: sys_block.clone(),
        }),
    )
    .with_smart_runner(factory)
    .watching(root.join("dev/kmsg"));

    let baseline = md.snapshot("md0", Depth::Full).unwrap();
    assert_eq!(baseline.problems, []);
    assert_eq!(
        drives(&baseline),
        ["sda LAB-A-0001 bay=- InSync", "sdb LAB-B-0002 bay=- InSync"]
    );
    for dev in ["sda", "sdb"] {
        assert_eq!(counter(&baseline, dev, "io.ioerr_cnt"), Some(0), "{dev}");
        assert_eq!(
            counter(&baseline, dev, "kernel.io_errors"),
            Some(0),
            "{dev}"
        );
    }
    let target = baseline.drives[1].key();
    let allowed = Allowed {
        target,
        target_states: vec![DriveExpect::InSync],
        new: NewAllowance::NotYet,
        max_degraded: 0,
    };
    let policy = GuardPolicy::default();

    // A step: its opening look, the watch loop with SMART in the background
    // (until a round has come back for both drives), its closing look.
    let _ = md.snapshot("md0", Depth::Full).unwrap();
    let mut smart_seen = 0;
    let mut due = true;
    while smart_seen < 2 {
        let look = md.snapshot("md0", Depth::Watch { smart_due: due }).unwrap();
        due = false;
        assert_eq!(
            compare(&baseline, &look, &allowed, &policy),
            [],
            "watch look"
        );
        smart_seen += look.drives.iter().filter(|d| d.smart.is_some()).count();
        std::thread::yield_now();
    }
    let after = md.snapshot("md0", Depth::Full).unwrap();
    assert_eq!(compare(&baseline, &after, &allowed, &policy), []);
    // Four probes of sda so far: the raw counter moved with each.
    assert_eq!(bump_ioerr_cnt(&sys_block, "sda", 0), 0x1 + 4);

    // A command that really failed on the survivor: the guard sees it.
    bump_ioerr_cnt(&sys_block, "sda", 1);
    let now = md.snapshot("md0", Depth::Fast).unwrap();
    let found: Vec<String> = compare(&baseline, &now, &allowed, &policy)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        found,
        ["survivor sda (serial LAB-A-0001, bay unknown): io.ioerr_cnt 0 → 1"]
    );

    // And the kernel's own report of a failed write on it.
    let mut log = fs::OpenOptions::new()
        .append(true)
        .open(root.join("dev/kmsg"))
        .unwrap();
    std::io::Write::write_all(
        &mut log,
        b"3,1207,52714590,-;I/O error, dev sda, sector 34816 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2\n",
    )
    .unwrap();
    let now = md.snapshot("md0", Depth::Fast).unwrap();
    assert_eq!(counter(&now, "sda", "kernel.io_errors"), Some(1));
    assert_eq!(counter(&now, "sdb", "kernel.io_errors"), Some(0));
    let found: Vec<String> = compare(&baseline, &now, &allowed, &policy)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        found.contains(
            &"survivor sda (serial LAB-A-0001, bay unknown): kernel.io_errors 0 → 1".to_string()
        ),
        "{found:?}"
    );
}

/// Without `/dev/kmsg` a guarded run cannot see the kernel's I/O error
/// reports: that is a problem in every look, never "no errors".
#[test]
fn a_guarded_run_without_a_kernel_log_has_a_problem() {
    let dir = tree(&["capture-sata-clean.txt"]);
    let mut md = MdBackend::new(dir.path().to_path_buf(), Box::new(NoCommands))
        .watching(dir.path().join("dev/kmsg"));
    let look = md.snapshot("md0", Depth::Fast).unwrap();
    assert_eq!(look.problems.len(), 1, "{:?}", look.problems);
    assert_eq!(look.problems[0].probe, "kernel-log");
    assert!(
        look.problems[0]
            .message
            .contains("cannot open the kernel log"),
        "{}",
        look.problems[0].message
    );
    assert!(
        look.drives
            .iter()
            .all(|d| !d.counters.contains_key("kernel.io_errors"))
    );
}

/// Regression: a SCSI disk without a WWN made preflight refuse ("cannot
/// read identity of sda ... Invalid argument (os error 22)"): QEMU's
/// scsi-hd without `wwn`, whose `device/wwid` read fails with EINVAL. Its
/// serial (VPD page 0x80) was read fine, so it is a drive with no WWN.
#[test]
fn scsi_disk_without_a_wwn_is_identified_by_serial() {
    let dir = tree(&["capture-scsi-clean.txt"]);
    let wwid = dir.path().join("sys/block/sda/device/wwid");
    match fs::read(&wwid) {
        Err(err) if err.raw_os_error() == Some(nix::libc::EINVAL) => {}
        // EINVAL on read is what the kernel gives; the tree's stand-in
        // gives it only to root (a user gets EACCES on open).
        other => {
            eprintln!(
                "SKIPPED: `{}` does not fail with EINVAL here: {other:?}",
                wwid.display()
            );
            return;
        }
    }
    let snapshot = snap(dir.path());
    assert_eq!(snapshot.problems, []);
    assert_eq!(
        drives(&snapshot),
        ["sda LAB-A-0001 bay=- InSync", "sdb LAB-B-0002 bay=- InSync"]
    );
    for drive in &snapshot.drives {
        assert_eq!(drive.id.wwn, None, "{}", drive.id.dev);
        assert_eq!(drive.id.transport.as_deref(), Some("scsi"));
        assert!(!drive.key().is_weak(), "{}", drive.id.dev);
    }
    // Without a serial the same failure is a problem: nothing identifies
    // the drive then.
    fs::write(dir.path().join("sys/block/sdb/device/vpd_pg80"), b"").unwrap();
    let snapshot = snap(dir.path());
    let problems: Vec<String> = snapshot
        .problems
        .iter()
        .map(|p| p.message.clone())
        .collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("device/wwid") && problems[0].contains("os error 22"),
        "{problems:?}"
    );
}

/// A resumed run is a new process with no discount of its own, while the
/// baseline it compares with comes from the journal: the counter is read
/// from the resumed process's first look, so the dead run's own SMART
/// probes are not taken for errors, and a later real error still is.
#[test]
fn a_resumed_run_does_not_take_the_dead_runs_probes_for_errors() {
    let dir = tree(&["capture-sata-clean.txt"]);
    let root = dir.path();
    fs::create_dir_all(root.join("dev")).unwrap();
    fs::write(root.join("dev/kmsg"), "").unwrap();
    let sys_block = root.join("sys/block");
    let run = |root: &Path| {
        MdBackend::new(
            root.to_path_buf(),
            Box::new(SataSmartctl {
                sys_block: root.join("sys/block"),
            }),
        )
        .watching(root.join("dev/kmsg"))
    };
    let mut first = run(root);
    let baseline = first.snapshot("md0", Depth::Full).unwrap();
    for _ in 0..3 {
        let _ = first.snapshot("md0", Depth::Full).unwrap();
    }
    drop(first); // the process dies
    assert_eq!(bump_ioerr_cnt(&sys_block, "sda", 0), 0x1 + 4);
    let mut resumed = run(root);
    let look = resumed.snapshot("md0", Depth::Full).unwrap();
    assert_eq!(counter(&baseline, "sda", "io.ioerr_cnt"), Some(0));
    assert_eq!(counter(&look, "sda", "io.ioerr_cnt"), Some(0));
    bump_ioerr_cnt(&sys_block, "sda", 2);
    let look = resumed.snapshot("md0", Depth::Fast).unwrap();
    assert_eq!(counter(&look, "sda", "io.ioerr_cnt"), Some(2));
}
