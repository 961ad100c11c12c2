//! The btrfs backend's looks on trees rebuilt from captures
//! (tests/fixtures/btrfs/) with canned `btrfs` outputs: members by devid on
//! NVMe, SATA and SCSI disks, a missing device, and every way a `btrfs`
//! call can fail turning into a problem, never a healthy default.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use super::backend::BtrfsBackend;
use super::tests_captures::{devinfo_tree, fixture};
use crate::backend::{Backend, CommandOutput, CommandRunner, Depth};
use crate::health::model::{MemberState, Snapshot};

/// Canned answers by the argv after `btrfs` (joined by spaces): exit code,
/// stdout, timed out. Anything else fails with exit 1.
#[derive(Clone, Default)]
struct Canned(BTreeMap<String, (i32, String, bool)>);

impl Canned {
    fn with(mut self, args: &str, code: i32, stdout: &str) -> Self {
        self.0.insert(args.into(), (code, stdout.into(), false));
        self
    }
    fn hung(mut self, args: &str) -> Self {
        self.0.insert(args.into(), (0, String::new(), true));
        self
    }
}

impl CommandRunner for Canned {
    fn run(&mut self, argv: &[String], _timeout: Duration) -> Result<CommandOutput> {
        let key = argv[1..].join(" ");
        let (code, stdout, timed_out) = match (argv[0].as_str(), self.0.get(&key)) {
            ("btrfs", Some(answer)) => answer.clone(),
            _ => (1, String::new(), false),
        };
        Ok(CommandOutput {
            argv: argv.to_vec(),
            code: (!timed_out).then_some(code),
            stdout,
            stderr: "canned failure".into(),
            timed_out,
        })
    }
}

/// A whole disk in `sys/block`: NVMe, SATA (vendor `ATA`) or SCSI.
fn disk(root: &Path, name: &str, vendor: &str, serial: &str) {
    let dir = root.join("sys/block").join(name);
    fs::create_dir_all(dir.join("device")).unwrap();
    fs::write(dir.join("size"), "524288\n").unwrap();
    fs::write(dir.join("device/serial"), format!("{serial}\n")).unwrap();
    if !vendor.is_empty() {
        fs::write(dir.join("device/vendor"), format!("{vendor}\n")).unwrap();
    }
}

/// The tree of a capture, its members' disks, a mountinfo line for
/// `/mnt/data` mounted from the first disk.
fn host(capture: &str, disks: &[(&str, &str)]) -> (tempfile::TempDir, String) {
    let (tree, uuid) = devinfo_tree(capture);
    let root = tree.path();
    for (i, (name, vendor)) in disks.iter().enumerate() {
        disk(root, name, vendor, &format!("SER{i}"));
        fs::create_dir_all(
            root.join("sys/fs/btrfs")
                .join(&uuid)
                .join("devices")
                .join(name),
        )
        .unwrap();
    }
    fs::create_dir_all(root.join("proc/self")).unwrap();
    fs::write(
        root.join("proc/self/mountinfo"),
        format!(
            "22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
             95 22 0:48 / /mnt/data rw,relatime shared:50 - btrfs /dev/{} rw,space_cache=v2,subvolid=5,subvol=/\n",
            disks[0].0
        ),
    )
    .unwrap();
    (tree, uuid)
}

/// `lab-fi-show-healthy.txt` with the members' device names swapped in.
fn show_healthy(disks: &[(&str, &str)]) -> String {
    fixture("lab-fi-show-healthy.txt")
        .replace("/dev/nvme0n1", &format!("/dev/{}", disks[0].0))
        .replace("/dev/nvme1n1", &format!("/dev/{}", disks[1].0))
}

/// The btrfs tool of a healthy file system over `disks`, no balance
/// running.
fn healthy_runner(disks: &[(&str, &str)]) -> Canned {
    Canned::default()
        .with("filesystem show --raw /mnt/data", 0, &show_healthy(disks))
        .with(
            "balance status /mnt/data",
            0,
            "No balance found on '/mnt/data'\n",
        )
}

fn look(root: &Path, uuid: &str, runner: Canned) -> Snapshot {
    let mut b = BtrfsBackend::new(root.to_path_buf(), Box::new(runner));
    b.snapshot(uuid, Depth::Fast).unwrap()
}

const KINDS: [[(&str, &str); 2]; 3] = [
    [("nvme0n1", ""), ("nvme1n1", "")],
    [("sda", "ATA"), ("sdb", "ATA")],
    [("sda", "SEAGATE"), ("sdb", "SEAGATE")],
];

#[test]
fn healthy_raid1_members_by_devid_on_nvme_sata_and_scsi() {
    for disks in KINDS {
        let (tree, uuid) = host("lab-sysfs-devinfo-healthy.txt", &disks);
        let runner = healthy_runner(&disks);
        let snap = look(tree.path(), &uuid, runner);
        assert!(snap.problems.is_empty(), "{disks:?}: {:#?}", snap.problems);
        assert_eq!(snap.array.name, uuid);
        assert_eq!(snap.array.level, "raid1");
        assert_eq!(snap.array.state, "data:raid1 metadata:raid1 system:raid1");
        assert_eq!((snap.array.redundancy_left, snap.array.degraded), (1, 0));
        assert!(snap.array.running && snap.array.sync.is_none());
        for (i, (name, _)) in disks.iter().enumerate() {
            let d = snap.drives.iter().find(|d| d.id.dev == *name).unwrap();
            let m = d.member.as_ref().unwrap();
            assert_eq!(m.name, Some((i + 1).to_string()), "{name}");
            assert_eq!(m.state, MemberState::InSync);
            assert_eq!(d.id.serial, Some(format!("SER{i}")));
            assert_eq!(d.counters.get("btrfs.write_io_errs"), Some(&0));
            assert!(d.faults.is_empty());
        }
        let transport = snap.drives[0].id.transport.clone();
        assert!(transport.is_some(), "{disks:?}: no transport");
    }
}

#[test]
fn a_missing_device_is_a_faulty_member_and_the_array_degraded() {
    for disks in KINDS {
        let (tree, uuid) = host("host-sysfs-devinfo-missing.txt", &disks[..1]);
        let show = fixture("host-fi-show-degraded-missing.txt")
            .replace("/dev/loop0", &format!("/dev/{}", disks[0].0));
        let runner = Canned::default()
            .with("filesystem show --raw /mnt/data", 0, &show)
            .with(
                "device usage --raw /mnt/data",
                0,
                &fixture("host-device-usage-missing.txt"),
            )
            .with(
                "balance status /mnt/data",
                0,
                "No balance found on '/mnt/data'\n",
            );
        let snap = look(tree.path(), &uuid, runner);
        assert!(snap.problems.is_empty(), "{:#?}", snap.problems);
        assert_eq!((snap.array.redundancy_left, snap.array.degraded), (0, 1));
        let missing = snap.drives.iter().find(|d| d.device_gone()).unwrap();
        assert_eq!(missing.state(), Some(MemberState::Faulty));
        assert!(missing.key().is_weak());
        let faults: Vec<&str> = missing
            .faults
            .iter()
            .map(|f| f.condition.as_str())
            .collect();
        assert_eq!(faults, ["btrfs.missing", "btrfs.corruption_errs"]);
        let present = snap.drives.iter().find(|d| d.id.dev == disks[0].0).unwrap();
        assert_eq!(present.state(), Some(MemberState::InSync));
    }
}

#[test]
fn replace_progress_from_replace_status() {
    let disks = KINDS[0];
    let (tree, uuid) = host("lab-sysfs-devinfo-replacing.txt", &disks);
    disk(tree.path(), "nvme2n1", "", "NEW");
    let show = format!(
        "{}\n\tdevid    0 size 268435456 used 109051904 path /dev/nvme2n1\n",
        show_healthy(&disks).trim_end()
    );
    let runner = Canned::default()
        .with("filesystem show --raw /mnt/data", 0, &show)
        .with(
            "replace status -1 /mnt/data",
            0,
            "41.1% done, 0 write errs, 0 uncorr. read errs\n",
        );
    let snap = look(tree.path(), &uuid, runner);
    assert!(snap.problems.is_empty(), "{:#?}", snap.problems);
    let sync = snap.array.sync.as_ref().unwrap();
    assert_eq!(sync.action, "replace");
    assert!((sync.fraction() - 0.411).abs() < 0.01, "{sync:?}");
    let target = snap.drives.iter().find(|d| d.id.dev == "nvme2n1").unwrap();
    assert_eq!(target.state(), Some(MemberState::Rebuilding));
    assert_eq!(target.member.as_ref().unwrap().name.as_deref(), Some("0"));
    assert_eq!(snap.array.raid_disks, 2);
    assert_eq!(snap.array.redundancy_left, 1);
}

#[test]
fn every_failing_btrfs_call_is_a_problem_naming_it() {
    let disks = KINDS[1];
    let ok_balance = "No balance found on '/mnt/data'\n";
    let cases: Vec<(Canned, &str)> = vec![
        (
            Canned::default().with("balance status /mnt/data", 0, ok_balance),
            "`btrfs filesystem show --raw /mnt/data` failed (exit 1)",
        ),
        (
            Canned::default()
                .hung("filesystem show --raw /mnt/data")
                .with("balance status /mnt/data", 0, ok_balance),
            "did not answer within",
        ),
        (
            Canned::default()
                .with("filesystem show --raw /mnt/data", 0, "garbage\n")
                .with("balance status /mnt/data", 0, ok_balance),
            "garbage",
        ),
        (
            Canned::default()
                .with(
                    "filesystem show --raw /mnt/data",
                    0,
                    &show_healthy(&disks).replace("f6662368", "00000000"),
                )
                .with("balance status /mnt/data", 0, ok_balance),
            "not f6662368",
        ),
        (
            Canned::default()
                .with("filesystem show --raw /mnt/data", 0, &show_healthy(&disks))
                .with("balance status /mnt/data", 2, "ERROR: cannot access\n"),
            "`btrfs balance status /mnt/data` failed (exit 2)",
        ),
        (
            Canned::default()
                .with("filesystem show --raw /mnt/data", 0, &show_healthy(&disks))
                .with(
                    "balance status /mnt/data",
                    1,
                    "Balance on '/mnt/data' is running\n",
                ),
            "no `N out of about M chunks balanced` line",
        ),
    ];
    for (runner, want) in cases {
        let (tree, uuid) = host("lab-sysfs-devinfo-healthy.txt", &disks);
        let snap = look(tree.path(), &uuid, runner);
        let all: Vec<&str> = snap.problems.iter().map(|p| p.message.as_str()).collect();
        assert!(
            all.iter().any(|m| m.contains(want)),
            "want {want:?} in {all:#?}"
        );
    }
}

#[test]
fn device_stats_are_asked_where_sysfs_has_no_error_stats() {
    let disks = KINDS[2];
    let (tree, uuid) = host("lab-sysfs-devinfo-healthy.txt", &disks);
    for devid in ["1", "2"] {
        let file = tree
            .path()
            .join("sys/fs/btrfs")
            .join(&uuid)
            .join("devinfo")
            .join(devid)
            .join("error_stats");
        fs::remove_file(file).unwrap();
    }
    let stats: String = ["sda", "sdb"]
        .iter()
        .map(|d| {
            format!(
                "[/dev/{d}].write_io_errs    0\n[/dev/{d}].read_io_errs     0\n[/dev/{d}].flush_io_errs    0\n[/dev/{d}].corruption_errs  {}\n[/dev/{d}].generation_errs  0\n",
                if *d == "sdb" { 7 } else { 0 }
            )
        })
        .collect();
    let runner = healthy_runner(&disks).with("device stats /mnt/data", 0, &stats);
    let snap = look(tree.path(), &uuid, runner.clone());
    assert!(snap.problems.is_empty(), "{:#?}", snap.problems);
    let sdb = snap.drives.iter().find(|d| d.id.dev == "sdb").unwrap();
    assert_eq!(sdb.counters.get("btrfs.corruption_errs"), Some(&7));
    assert_eq!(sdb.faults[0].condition, "btrfs.corruption_errs");
    // Without the tool's answer the counters are a problem, not zeros.
    let mut silent = runner;
    silent.0.remove("device stats /mnt/data");
    let snap = look(tree.path(), &uuid, silent);
    assert!(
        snap.problems
            .iter()
            .any(|p| p.message.contains("no error counters")),
        "{:#?}",
        snap.problems
    );
}

#[test]
fn not_a_uuid_or_not_mounted_is_refused() {
    let disks = KINDS[0];
    let (tree, uuid) = host("lab-sysfs-devinfo-healthy.txt", &disks);
    let mut b = BtrfsBackend::new(tree.path().to_path_buf(), Box::new(Canned::default()));
    for bad in ["../etc", "md0", "f6662368-5c58-464e-ac6a-b5cae38b91ab/../x"] {
        let err = b.snapshot(bad, Depth::Fast).unwrap_err();
        assert!(
            format!("{err:#}").contains("not a btrfs file-system UUID"),
            "{bad}: {err:#}"
        );
    }
    let known = std::slice::from_ref(&uuid);
    assert_eq!(b.arrays().unwrap(), known);
    assert_eq!(
        b.canonical_array(&uuid.to_uppercase(), known),
        Ok(uuid.clone())
    );
    for bad in ["relative/path", "0000-1111", "/nonexistent/mount"] {
        let err = b.canonical_array(bad, known).unwrap_err();
        assert!(err.starts_with("`--array "), "{bad}: {err}");
    }
    // Not in mountinfo: a problem, and nothing is run against a guess.
    fs::write(tree.path().join("proc/self/mountinfo"), "").unwrap();
    let snap = b.snapshot(&uuid, Depth::Fast).unwrap();
    assert!(
        snap.problems
            .iter()
            .any(|p| p.message.contains("is not mounted")),
        "{:#?}",
        snap.problems
    );
}

#[test]
fn mountinfo_lines_with_escapes_and_cut_short() {
    let mounts = super::backend::btrfs_mounts(
        "95 22 0:48 /sub /mnt/my\\040data rw shared:5 - btrfs /dev/sdb1 rw\n36 1 0:5 / /proc rw - proc proc rw\n",
    )
    .unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].point, "/mnt/my data");
    assert_eq!(mounts[0].root, "/sub");
    assert_eq!(mounts[0].source, "/dev/sdb1");
    let err = super::backend::btrfs_mounts("95 22 - btrfs\n").unwrap_err();
    assert!(err.contains("line 1 is cut short"), "{err}");
}

#[test]
fn unavailable_without_sys_fs_btrfs() {
    let tree = tempfile::TempDir::new().unwrap();
    fs::create_dir_all(tree.path().join("sys/fs")).unwrap();
    let b = BtrfsBackend::new(tree.path().to_path_buf(), Box::new(Canned::default()));
    assert!(b.unavailable().unwrap().contains("btrfs is not available"));
    fs::create_dir_all(tree.path().join("sys/fs/btrfs")).unwrap();
    assert_eq!(b.unavailable(), None);
}

/// Regression: a new drive that takes a pulled member's kernel name must
/// not read as that member. btrfs's `devices/<kname>` link still leads to
/// the old device; `sys/class/block/<kname>` leads to the new one.
#[test]
fn a_new_drive_under_a_pulled_members_name_is_no_member() {
    let disks = KINDS[1];
    let (tree, uuid) = host("lab-sysfs-devinfo-healthy.txt", &disks);
    let root = tree.path();
    let devices = root.join("sys/fs/btrfs").join(&uuid).join("devices");
    let class = root.join("sys/class/block");
    fs::create_dir_all(&class).unwrap();
    for name in ["sda", "sdb"] {
        fs::remove_dir(devices.join(name)).unwrap();
        std::os::unix::fs::symlink(root.join("sys/block").join(name), class.join(name)).unwrap();
    }
    std::os::unix::fs::symlink(root.join("sys/block/sda"), devices.join("sda")).unwrap();
    // The old sdb's device directory is gone: the link dangles.
    std::os::unix::fs::symlink(root.join("sys/devices/old/sdb"), devices.join("sdb")).unwrap();
    let runner = healthy_runner(&disks);
    let snap = look(root, &uuid, runner);
    let sda = snap.drives.iter().find(|d| d.id.dev == "sda").unwrap();
    assert_eq!(sda.member.as_ref().unwrap().name.as_deref(), Some("1"));
    let sdb = snap.drives.iter().find(|d| d.id.dev == "sdb").unwrap();
    assert!(sdb.member.is_none(), "{sdb:#?}");
}

/// The lab's btrfs-replace-missing was refused on the real kernel: the
/// missing device was `btrfs-missing-devid-2` (a kernel name the engine
/// took for a readable drive: "SMART ... was not read", "no readable
/// serial") with no size, where the simulator's has none and the size
/// btrfs keeps. Both now have the one shape `Drive::device_gone` expects.
#[test]
fn missing_device_has_the_simulators_gone_shape_and_the_kept_size() {
    for disks in KINDS {
        let (tree, uuid) = host("host-sysfs-devinfo-missing.txt", &disks[..1]);
        let show = fixture("host-fi-show-missing-empty-path.txt")
            .replace("/dev/loop0", &format!("/dev/{}", disks[0].0))
            .replace("8cb12a54-70c3-438f-9d1c-08833f46cbe7", &uuid);
        let runner = Canned::default()
            .with("filesystem show --raw /mnt/data", 0, &show)
            .with(
                "device usage --raw /mnt/data",
                0,
                &fixture("host-device-usage-missing.txt")
                    .replace("/dev/loop0", &format!("/dev/{}", disks[0].0)),
            )
            .with(
                "balance status /mnt/data",
                0,
                "No balance found on '/mnt/data'\n",
            );
        let snap = look(tree.path(), &uuid, runner);
        assert!(snap.problems.is_empty(), "{disks:?}: {:#?}", snap.problems);
        let gone: Vec<_> = snap.drives.iter().filter(|d| d.device_gone()).collect();
        assert_eq!(gone.len(), 1, "{disks:?}");
        let d = gone[0];
        assert_eq!(d.id.dev, "");
        assert_eq!(d.id.serial, None);
        assert_eq!(d.id.size_bytes, Some(314572800));
        assert_eq!(d.smart, None);
        assert_eq!(d.member.as_ref().unwrap().name.as_deref(), Some("2"));
        // The simulator's missing device: the same fields, field by field.
        let sim = crate::health::model::Identity {
            size_bytes: Some(314572800),
            ..Default::default()
        };
        assert_eq!(d.id, sim);
    }
}

#[test]
fn a_missing_device_whose_size_cannot_be_read_is_a_problem() {
    let disks = KINDS[0];
    let (tree, uuid) = host("host-sysfs-devinfo-missing.txt", &disks[..1]);
    let show = fixture("host-fi-show-degraded-missing.txt")
        .replace("/dev/loop0", &format!("/dev/{}", disks[0].0));
    for usage in [
        None,
        Some("garbage\n".to_string()),
        Some("/dev/nvme0n1, ID: 1\n   Unallocated: 5\n".to_string()),
    ] {
        let mut runner = Canned::default()
            .with("filesystem show --raw /mnt/data", 0, &show)
            .with(
                "balance status /mnt/data",
                0,
                "No balance found on '/mnt/data'\n",
            );
        if let Some(text) = &usage {
            runner = runner.with("device usage --raw /mnt/data", 0, text);
        }
        let snap = look(tree.path(), &uuid, runner);
        assert!(
            snap.problems
                .iter()
                .any(|p| p.message.contains("device usage")),
            "{usage:?}: {:#?}",
            snap.problems
        );
        let d = snap.drives.iter().find(|d| d.device_gone()).unwrap();
        assert_eq!(d.id.size_bytes, None);
    }
}

/// The lab: a member pulled while mounted keeps `missing 0` in sysfs; only
/// `btrfs filesystem show` says `size 0 used 0 path /dev/nvme1n1 MISSING`.
/// The backend counts it missing (the array degraded), on every bus.
#[test]
fn a_pulled_member_sysfs_still_lists_is_missing_from_filesystem_show() {
    for disks in KINDS {
        let (tree, uuid) = host("lab-sysfs-devinfo-healthy.txt", &disks[..1]);
        let show = fixture("lab-mount-degraded.txt")
            .replace("/dev/nvme0n1", &format!("/dev/{}", disks[0].0))
            .replace("/dev/nvme1n1", &format!("/dev/{}", disks[1].0))
            .replace("414085a5-5b1a-4ebd-8d1f-b995853e9c30", &uuid);
        let usage = fixture("host-device-usage-missing.txt")
            .replace("314572800", "268435456")
            .replace("205520896", "159383552");
        let runner = Canned::default()
            .with("filesystem show --raw /mnt/data", 0, &show)
            .with("device usage --raw /mnt/data", 0, &usage)
            .with(
                "balance status /mnt/data",
                0,
                "No balance found on '/mnt/data'\n",
            );
        let snap = look(tree.path(), &uuid, runner);
        assert!(snap.problems.is_empty(), "{disks:?}: {:#?}", snap.problems);
        assert_eq!(snap.array.degraded, 1, "{disks:?}");
        assert_eq!(snap.array.redundancy_left, 0);
        let d = snap.drives.iter().find(|d| d.device_gone()).unwrap();
        assert_eq!(d.member.as_ref().unwrap().name.as_deref(), Some("2"));
        assert_eq!(d.state(), Some(MemberState::Faulty));
        assert_eq!(d.id.size_bytes, Some(268435456));
        assert!(snap.drives.iter().all(|d| d.id.dev != disks[1].0));
    }
}

/// btrfs notices a pulled member only at its next I/O; the kernel's
/// `remove` of the disk ends the watch's wait at once, on every bus.
#[test]
fn a_disk_removed_ends_the_wait_at_its_uevent() {
    use crate::backend::disk::uevent::DatagramUevents;
    for disks in KINDS {
        let (tree, uuid) = host("lab-sysfs-devinfo-healthy.txt", &disks);
        let runner = healthy_runner(&disks);
        let (source, sender) = DatagramUevents::pair().unwrap();
        let mut b = BtrfsBackend::new(tree.path().to_path_buf(), Box::new(runner))
            .with_uevents(Box::new(source));
        b.snapshot(&uuid, Depth::Fast).unwrap();
        let disk = disks[1].0;
        let devpath = format!("/devices/pci0000:00/0000:00:05.0/block/{disk}");
        sender
            .send(
                format!(
                    "remove@{devpath}\0ACTION=remove\0DEVPATH={devpath}\0SUBSYSTEM=block\0\
                     DEVNAME={disk}\0DEVTYPE=disk\0"
                )
                .as_bytes(),
            )
            .unwrap();
        // A day's timeout, and nothing in the tree changes: only the event
        // can end this wait.
        b.wait(Duration::from_secs(86_400)).unwrap();
    }
}
