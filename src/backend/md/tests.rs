//! Whole-backend tests: snapshots of captured trees (tests/fixtures/md/) and
//! of small synthetic trees built in a temporary directory.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileExt, symlink};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use anyhow::Result;
use tempfile::TempDir;

use super::MdBackend;
use crate::backend::{Backend, CommandOutput, CommandRunner, Depth, LocateOutcome};
use crate::health::model::{
    Drive, Identity, MemberState, Membership, Problem, Snapshot, SyncProgress,
};

/// Records every argv and answers with a failed run.
#[derive(Clone, Default)]
struct FakeRunner {
    calls: Rc<RefCell<Vec<Vec<String>>>>,
}

impl CommandRunner for FakeRunner {
    fn run(&mut self, argv: &[String], _timeout: Duration) -> Result<CommandOutput> {
        self.calls.borrow_mut().push(argv.to_vec());
        Ok(CommandOutput {
            argv: argv.to_vec(),
            code: Some(1),
            stdout: String::new(),
            stderr: "fake".into(),
            timed_out: false,
        })
    }
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/md")
        .join(name)
}

fn backend(root: &Path) -> MdBackend {
    MdBackend::new(root.to_path_buf(), Box::new(FakeRunner::default()))
}

fn snap(root: &Path, depth: Depth) -> Snapshot {
    backend(root)
        .snapshot("md0", depth)
        .unwrap_or_else(|e| panic!("{}: {e:#}", root.display()))
}

/// One line per drive with every field the guard compares.
fn lines(snapshot: &Snapshot) -> Vec<String> {
    snapshot
        .drives
        .iter()
        .map(|d| {
            let member = match &d.member {
                Some(m) => format!("{:?} role={:?} flags={}", m.state, m.role, m.flags.join(",")),
                None => "not-member".into(),
            };
            let counters: Vec<String> = d.counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "{} serial={:?} wwn={:?} model={:?} fw={:?} size={:?} slot={:?} by_id={:?} | {member} | {}",
                d.id.dev,
                d.id.serial,
                d.id.wwn,
                d.id.model,
                d.id.firmware,
                d.id.size_bytes,
                d.id.slot,
                d.id.by_id,
                counters.join(" "),
            )
        })
        .collect()
}

fn problems(snapshot: &Snapshot) -> Vec<String> {
    snapshot
        .problems
        .iter()
        .map(|p| format!("{} {}: {}", p.probe, p.subject, p.message))
        .collect()
}

const A_WWID: &str = "nvme.1b36-4c41422d412d30303031-51454d55204e564d65204374726c-00000001";
const B_WWID: &str = "nvme.1b36-4c41422d422d30303032-51454d55204e564d65204374726c-00000001";
const C_WWID: &str = "nvme.1b36-4c41422d432d30303033-51454d55204e564d65204374726c-00000001";

fn nvme_line(dev: &str, serial: &str, wwid: &str, member: &str, counters: &str) -> String {
    format!(
        "{dev} serial=Some({serial:?}) wwn=Some({wwid:?}) model=Some(\"QEMU NVMe Ctrl\") fw=Some(\"7.2.22\") \
         size=Some(67108864) slot=None by_id=None | {member} | {counters}"
    )
}

#[test]
fn clean_two_drive_mirror() {
    let snapshot = snap(&fixture("clean"), Depth::Fast);
    let drive = |dev: &str, serial: &str, wwid: &str, role: u32| Drive {
        id: Identity {
            dev: dev.into(),
            serial: Some(serial.into()),
            wwn: Some(wwid.into()),
            model: Some("QEMU NVMe Ctrl".into()),
            firmware: Some("7.2.22".into()),
            size_bytes: Some(64 << 20),
            slot: None,
            by_id: None,
            transport: Some("nvme".into()),
        },
        member: Some(Membership {
            state: MemberState::InSync,
            role: Some(role),
            flags: vec!["in_sync".into()],
            name: Some(dev.into()),
        }),
        counters: BTreeMap::from([("md.bad_blocks".into(), 0), ("md.errors".into(), 0)]),
        smart: None,
        blank: None,
        faults: Vec::new(),
    };
    assert_eq!(
        snapshot.drives,
        [
            drive("nvme0n1", "LAB-A-0001", A_WWID, 0),
            drive("nvme1n1", "LAB-B-0002", B_WWID, 1)
        ]
    );
    assert_eq!(snapshot.array.name, "md0");
    assert_eq!(snapshot.array.level, "raid1");
    assert_eq!(snapshot.array.state, "clean");
    assert_eq!((snapshot.array.raid_disks, snapshot.array.degraded), (2, 0));
    assert_eq!(snapshot.array.sync, None);
    assert!(snapshot.array.running);
    assert_eq!(problems(&snapshot), Vec::<String>::new());
}

/// Tree, (array state, degraded), sync, drive lines.
type TreeCase = (
    &'static str,
    (&'static str, u32),
    Option<SyncProgress>,
    Vec<String>,
);

#[test]
fn captured_trees() {
    let in_sync = |role: u32| format!("InSync role=Some({role}) flags=in_sync");
    let md0 = "md.bad_blocks=0 md.errors=0";
    let table: Vec<TreeCase> = vec![
        (
            // nvme1n1 was pulled and md failed it at the next write: md still
            // lists `dev-nvme1n1` (faulty) but the block device is gone, so
            // there is no drive for it.
            "degraded",
            ("clean", 1),
            None,
            vec![nvme_line("nvme0n1", "LAB-A-0001", A_WWID, &in_sync(0), md0)],
        ),
        (
            // A new drive came up under the pulled drive's name.
            "recovery",
            ("clean", 1),
            Some(SyncProgress {
                action: "recover".into(),
                done: 57344,
                total: 129024,
                speed_kib: Some(3427),
            }),
            vec![
                nvme_line("nvme0n1", "LAB-A-0001", A_WWID, &in_sync(0), md0),
                nvme_line(
                    "nvme1n1",
                    "LAB-C-0003",
                    C_WWID,
                    "Rebuilding role=Some(1) flags=spare",
                    md0,
                ),
            ],
        ),
        (
            // Write errors: md keeps the member in_sync but flags it and
            // records bad blocks; `errors` stays 0.
            "after-read-errors",
            ("clean", 0),
            None,
            vec![
                nvme_line(
                    "nvme0n1",
                    "LAB-A-0001",
                    A_WWID,
                    "InSync role=Some(0) flags=in_sync,write_error,want_replacement",
                    "md.bad_blocks=2 md.errors=0",
                ),
                nvme_line("nvme1n1", "LAB-C-0003", C_WWID, &in_sync(1), md0),
            ],
        ),
        (
            // Pulled, md has not noticed: mdstat and sysfs still say [UU]; the
            // drive is simply not there.
            "after-pull-before-io",
            ("clean", 0),
            None,
            vec![nvme_line("nvme0n1", "LAB-A-0001", A_WWID, &in_sync(0), md0)],
        ),
    ];
    for (tree, (state, degraded), sync, want) in table {
        let snapshot = snap(&fixture(tree), Depth::Fast);
        assert_eq!(lines(&snapshot), want, "{tree}");
        assert_eq!(
            (
                snapshot.array.state.as_str(),
                snapshot.array.degraded,
                snapshot.array.raid_disks
            ),
            (state, degraded, 2),
            "{tree}"
        );
        assert_eq!(snapshot.array.sync, sync, "{tree}");
        assert_eq!(problems(&snapshot), Vec::<String>::new(), "{tree}");
        assert!(
            snapshot
                .drives
                .iter()
                .all(|d| d.smart.is_none() && d.blank.is_none())
        );
    }
}

#[test]
fn scsi_sata_and_virtio_identities() {
    let snapshot = snap(&fixture("scsi-after-unplug"), Depth::Fast);
    assert_eq!(
        lines(&snapshot),
        [
            "sda serial=Some(\"LAB-SCSI-01\") wwn=Some(\"naa.5000c50015ea71a1\") model=Some(\"QEMU HARDDISK\") \
             fw=Some(\"2.5+\") size=Some(67108864) slot=None by_id=None | InSync role=Some(0) flags=in_sync | \
             md.bad_blocks=0 md.errors=0",
            "sdc serial=Some(\"LAB-SATA-01\") wwn=Some(\"t10.ATA     LAB SATA DISK                           LAB-SATA-01\") \
             model=Some(\"LAB SATA DISK\") fw=Some(\"2.5+\") size=Some(67108864) slot=None by_id=None | not-member | ",
            "vda serial=Some(\"LAB-VBLK-01\") wwn=None model=None fw=None size=Some(67108864) slot=None by_id=None | \
             not-member | ",
        ]
    );
    assert_eq!(snapshot.array.degraded, 1);
    assert_eq!(problems(&snapshot), Vec::<String>::new());
}

/// A temporary tree, optionally starting from a captured one.
struct Tree {
    dir: TempDir,
}

impl Tree {
    fn new() -> Self {
        Tree {
            dir: TempDir::new().unwrap(),
        }
    }

    fn from_fixture(name: &str) -> Self {
        let tree = Tree::new();
        copy_dir(&fixture(name), tree.root());
        tree
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self, path: &str, contents: &str) -> &Self {
        self.bytes(path, contents.as_bytes())
    }

    fn bytes(&self, path: &str, contents: &[u8]) -> &Self {
        let path = self.root().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
        self
    }

    fn dir(&self, path: &str) -> &Self {
        fs::create_dir_all(self.root().join(path)).unwrap();
        self
    }

    fn link(&self, path: &str, target: &str) -> &Self {
        let path = self.root().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        symlink(target, path).unwrap();
        self
    }

    fn remove(&self, path: &str) -> &Self {
        let path = self.root().join(path);
        if path.is_dir() {
            fs::remove_dir_all(path).unwrap();
        } else {
            fs::remove_file(path).unwrap();
        }
        self
    }

    /// A sparse device node stand-in with `bytes` written at `offset`.
    fn device(&self, name: &str, size: u64, writes: &[(u64, &[u8])]) -> &Self {
        let path = self.root().join("dev").join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = fs::File::create(path).unwrap();
        file.set_len(size).unwrap();
        for (offset, bytes) in writes {
            file.write_all_at(bytes, *offset).unwrap();
        }
        self
    }

    /// A one-member raid1 `md0` on `kname`, mdstat to match.
    fn md0_on(&self, kname: &str) -> &Self {
        self.file(
            "proc/mdstat",
            &format!(
                "Personalities : [raid1] \nmd0 : active raid1 {kname}[0]\n      1024 blocks super 1.2 [1/1] [U]\n      \nunused devices: <none>\n"
            ),
        )
        .file("sys/block/md0/md/array_state", "clean\n")
        .file("sys/block/md0/md/level", "raid1\n")
        .file("sys/block/md0/md/raid_disks", "1\n")
        .file("sys/block/md0/md/degraded", "0\n")
        .file("sys/block/md0/md/sync_action", "idle\n")
        .file("sys/block/md0/md/sync_completed", "none\n")
        .file("sys/block/md0/md/sync_speed", "none\n")
        .file(&format!("sys/block/md0/md/dev-{kname}/state"), "in_sync\n")
        .file(&format!("sys/block/md0/md/dev-{kname}/slot"), "0\n")
        .file(&format!("sys/block/md0/md/dev-{kname}/errors"), "3\n")
        .file(&format!("sys/block/md0/md/dev-{kname}/bad_blocks"), "")
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn partition_member_by_id_enclosure_and_ioerr_cnt() {
    let tree = Tree::new();
    tree.md0_on("sda1")
        .file("sys/block/sda/size", "2048\n")
        .bytes("sys/block/sda/device/vpd_pg80", b"\0\x80\0\x08SER-0001")
        .file("sys/block/sda/device/wwid", "naa.5000c500a1b2c3d4\n")
        .file("sys/block/sda/device/model", "ST4000NM0035-1V4\n")
        .file("sys/block/sda/device/rev", "TN03\n")
        .file("sys/block/sda/device/ioerr_cnt", "0x1a\n")
        .file("sys/block/sda/sda1/partition", "1\n")
        .dir("sys/block/sda/device/enclosure_device:Slot 01")
        .dir("sys/class/enclosure/0:0:5:0")
        .link("dev/disk/by-id/ata-ST4000NM0035_SER-0001", "../../sda")
        .link("dev/disk/by-id/wwn-0x5000c500a1b2c3d4", "../../sda")
        .link("dev/disk/by-id/wwn-0x5000c500a1b2c3d4-part1", "../../sda1")
        .link(
            "dev/disk/by-id/ata-ST4000NM0035_SER-0001-part1",
            "../../sda1",
        )
        // A second NVMe disk with a partition, not in the array.
        .file("sys/block/nvme0n1/size", "4096\n")
        .file("sys/block/nvme0n1/device/serial", "NV-1   \n")
        .file("sys/block/nvme0n1/nvme0n1p1/partition", "1\n")
        .link("dev/disk/by-id/nvme-Vendor_Model_NV-1", "../../nvme0n1")
        .link("dev/disk/by-id/nvme-eui.0011223344556677", "../../nvme0n1");
    let snapshot = snap(tree.root(), Depth::Fast);
    assert_eq!(
        lines(&snapshot),
        [
            "nvme0n1 serial=Some(\"NV-1\") wwn=None model=None fw=None size=Some(2097152) slot=None \
             by_id=Some(\"nvme-Vendor_Model_NV-1\") | not-member | ",
            "sda serial=Some(\"SER-0001\") wwn=Some(\"naa.5000c500a1b2c3d4\") model=Some(\"ST4000NM0035-1V4\") \
             fw=Some(\"TN03\") size=Some(1048576) slot=Some(\"Slot 01\") by_id=Some(\"wwn-0x5000c500a1b2c3d4\") | \
             InSync role=Some(0) flags=in_sync | io.ioerr_cnt=26 md.bad_blocks=0 md.errors=3",
        ]
    );
    assert_eq!(problems(&snapshot), Vec::<String>::new());
}

#[test]
fn nvme_partition_member_belongs_to_its_disk() {
    let tree = Tree::new();
    tree.md0_on("nvme0n1p2")
        .file("sys/block/nvme0n1/size", "4096\n")
        .file("sys/block/nvme0n1/device/serial", "NV-2\n")
        .file("sys/block/nvme0n1/nvme0n1p2/partition", "2\n");
    let snapshot = snap(tree.root(), Depth::Fast);
    assert_eq!(snapshot.drives.len(), 1);
    assert_eq!(snapshot.drives[0].id.dev, "nvme0n1");
    assert_eq!(snapshot.drives[0].state(), Some(MemberState::InSync));
}

#[test]
fn only_whole_disks_worth_watching_are_listed() {
    let tree = Tree::new();
    tree.md0_on("sda");
    for (name, size) in [
        ("sda", "8"),
        ("md0", "8"),
        ("md127", "8"),
        ("loop0", "8"),
        ("ram0", "8"),
        ("zram0", "8"),
        ("dm-0", "8"),
        ("sr0", "8"),
        ("nbd0", "0"),
        ("nbd1", "8"),
        ("vdb", "8"),
    ] {
        tree.file(&format!("sys/block/{name}/size"), size);
    }
    let snapshot = snap(tree.root(), Depth::Fast);
    let devs: Vec<&str> = snapshot.drives.iter().map(|d| d.id.dev.as_str()).collect();
    assert_eq!(devs, ["nbd1", "sda", "vdb"]);
}

#[test]
fn loop_member_is_still_a_drive() {
    let tree = Tree::new();
    tree.md0_on("loop3").file("sys/block/loop3/size", "8");
    let snapshot = snap(tree.root(), Depth::Fast);
    assert_eq!(lines(&snapshot).len(), 1);
    assert_eq!(snapshot.drives[0].id.dev, "loop3");
    assert!(snapshot.drives[0].member.is_some());
}

#[test]
fn unreadable_member_files_fail_closed() {
    // (file removed or replaced, expected problem, expected member line)
    let table: &[(&str, Option<&str>, &str, &str)] = &[
        (
            "errors",
            None,
            "counters nvme0n1: `{md}/dev-nvme0n1/errors` is missing",
            "InSync role=Some(0) flags=in_sync | md.bad_blocks=0",
        ),
        (
            "bad_blocks",
            None,
            "counters nvme0n1: `{md}/dev-nvme0n1/bad_blocks` is missing",
            "InSync role=Some(0) flags=in_sync | md.errors=0",
        ),
        (
            "bad_blocks",
            Some("65536\n"),
            "counters nvme0n1: cannot parse `{md}/dev-nvme0n1/bad_blocks`: line `65536` is not `<sector> <length>`",
            "InSync role=Some(0) flags=in_sync | md.errors=0",
        ),
        (
            "state",
            None,
            "md nvme0n1: `{md}/dev-nvme0n1/state` is missing",
            "not-member | md.bad_blocks=0 md.errors=0",
        ),
        (
            "slot",
            Some("minus one\n"),
            "md nvme0n1: cannot parse `{md}/dev-nvme0n1/slot`: `minus one` is not a number",
            "not-member | md.bad_blocks=0 md.errors=0",
        ),
    ];
    for (file, replacement, want_problem, want_member) in table {
        let tree = Tree::from_fixture("clean");
        let path = format!("sys/block/md0/md/dev-nvme0n1/{file}");
        match replacement {
            None => tree.remove(&path),
            Some(text) => tree.file(&path, text),
        };
        let snapshot = snap(tree.root(), Depth::Fast);
        let md = tree.root().join("sys/block/md0/md");
        assert_eq!(
            problems(&snapshot),
            [want_problem.replace("{md}", &md.display().to_string())],
            "{file}"
        );
        let line = &lines(&snapshot)[0];
        assert!(line.ends_with(want_member), "{file}: {line}");
    }
}

#[test]
fn unreadable_array_files_fail_closed() {
    let tree = Tree::from_fixture("clean");
    tree.remove("sys/block/md0/md/degraded")
        .remove("sys/block/md0/md/array_state");
    let snapshot = snap(tree.root(), Depth::Fast);
    // Every slot counts as missing, and the state is not a running one.
    assert_eq!(
        (snapshot.array.degraded, snapshot.array.state.as_str()),
        (2, "unknown")
    );
    assert!(!snapshot.array.running);
    let md = tree.root().join("sys/block/md0/md").display().to_string();
    assert_eq!(
        problems(&snapshot),
        [
            format!("md md0: `{md}/array_state` is missing"),
            format!("md md0: `{md}/degraded` is missing"),
            // Still different after the second look.
            "md md0: `/proc/mdstat` shows 0 missing slot(s) but sysfs `degraded` is 2".to_string(),
        ]
    );
}

#[test]
fn raid0_has_no_redundancy_files_and_that_is_fine() {
    let tree = Tree::new();
    tree.file(
        "proc/mdstat",
        "Personalities : [raid0] \nmd0 : active raid0 sdb[1] sda[0]\n      2048 blocks super 1.2 512k chunks\n      \nunused devices: <none>\n",
    );
    for (file, text) in [
        ("array_state", "clean"),
        ("level", "raid0"),
        ("raid_disks", "2"),
    ] {
        tree.file(&format!("sys/block/md0/md/{file}"), text);
    }
    for disk in ["sda", "sdb"] {
        tree.file(&format!("sys/block/{disk}/size"), "2048")
            .file(
                &format!("sys/block/{disk}/device/wwid"),
                &format!("naa.{disk}"),
            )
            .file(&format!("sys/block/md0/md/dev-{disk}/state"), "in_sync")
            .file(
                &format!("sys/block/md0/md/dev-{disk}/slot"),
                if disk == "sda" { "0" } else { "1" },
            )
            .file(&format!("sys/block/md0/md/dev-{disk}/errors"), "0")
            .file(&format!("sys/block/md0/md/dev-{disk}/bad_blocks"), "");
    }
    let snapshot = snap(tree.root(), Depth::Fast);
    assert_eq!(problems(&snapshot), Vec::<String>::new());
    assert_eq!(
        (snapshot.array.degraded, snapshot.array.sync.clone()),
        (0, None)
    );
    assert_eq!(snapshot.members().count(), 2);
}

#[test]
fn reshape_and_delayed_sync_from_sysfs() {
    let tree = Tree::from_fixture("clean");
    tree.file("sys/block/md0/md/raid_disks", "3 (2)\n")
        .file("sys/block/md0/md/sync_action", "reshape\n")
        .file("sys/block/md0/md/sync_completed", "delayed\n");
    let snapshot = snap(tree.root(), Depth::Fast);
    assert_eq!(snapshot.array.raid_disks, 3);
    assert_eq!(
        snapshot.array.sync,
        Some(SyncProgress {
            action: "reshape".into(),
            done: 0,
            total: 0,
            speed_kib: None
        })
    );
}

#[test]
fn odd_or_missing_mdstat_is_a_problem_not_a_panic() {
    for (mdstat, want) in [
        (
            Some("Personalities : [raid1] \nmd0 : active raid1 nvme1n1[x]\n"),
            "line 2: member `nvme1n1[x]`",
        ),
        (Some(""), "mdstat has no `Personalities` line"),
        (None, "cannot read"),
    ] {
        let tree = Tree::from_fixture("clean");
        match mdstat {
            Some(text) => tree.file("proc/mdstat", text),
            None => tree.remove("proc/mdstat"),
        };
        let snapshot = snap(tree.root(), Depth::Fast);
        let found = problems(&snapshot);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("md md0: ") && found[0].contains(want),
            "{found:?}"
        );
        assert!(found[0].contains("proc/mdstat`"), "{found:?}");
        // sysfs still gives the array and both members.
        assert_eq!(snapshot.members().count(), 2);
    }
}

#[test]
fn mdstat_and_sysfs_disagreeing_on_members_is_a_problem() {
    let tree = Tree::from_fixture("clean");
    tree.file(
        "proc/mdstat",
        "Personalities : [raid1] \nmd0 : active raid1 nvme2n1[2] nvme0n1[0]\n      64512 blocks super 1.2 [2/2] [UU]\n      \nunused devices: <none>\n",
    );
    let snapshot = snap(tree.root(), Depth::Fast);
    assert_eq!(
        problems(&snapshot),
        [
            "md md0: `/proc/mdstat` lists members {\"nvme0n1\", \"nvme2n1\"} but sysfs has {\"nvme0n1\", \"nvme1n1\"}"
        ]
    );
}

#[test]
fn sysfs_missing_but_listed_in_mdstat() {
    let tree = Tree::from_fixture("recovery");
    tree.remove("sys/block/md0");
    let snapshot = snap(tree.root(), Depth::Fast);
    let found = problems(&snapshot);
    assert_eq!(found.len(), 1);
    assert!(
        found[0].contains("is missing although") && found[0].contains("state from mdstat only")
    );
    assert_eq!(snapshot.array.state, "unknown");
    assert_eq!((snapshot.array.degraded, snapshot.array.raid_disks), (1, 2));
    assert_eq!(
        snapshot.array.sync,
        Some(SyncProgress {
            action: "recover".into(),
            done: 61696,
            total: 129024,
            speed_kib: Some(3427)
        })
    );
    // Degraded: neither unflagged member is claimed in sync.
    let states: Vec<_> = snapshot.drives.iter().map(|d| d.state()).collect();
    assert_eq!(
        states,
        [Some(MemberState::Rebuilding), Some(MemberState::Rebuilding)]
    );
    assert!(
        snapshot
            .drives
            .iter()
            .all(|d| d.member.as_ref().is_some_and(|m| m.role.is_none()))
    );
}

#[test]
fn unknown_array_and_bad_names_are_errors() {
    let mut md = backend(&fixture("clean"));
    let err = format!("{:#}", md.snapshot("md9", Depth::Fast).unwrap_err());
    assert!(err.contains("array `md9` not found"), "{err}");
    for name in ["", "../md0", ".", "md0/md"] {
        let err = format!("{:#}", md.snapshot(name, Depth::Fast).unwrap_err());
        assert!(err.contains("is not an md array name"), "{name:?}: {err}");
    }
}

#[test]
fn arrays_from_mdstat_then_sysfs() {
    assert_eq!(backend(&fixture("clean")).arrays().unwrap(), ["md0"]);
    let tree = Tree::from_fixture("clean");
    tree.file("proc/mdstat", "garbage");
    assert_eq!(backend(tree.root()).arrays().unwrap(), ["md0"]);
    let empty = Tree::new();
    let err = format!("{:#}", backend(empty.root()).arrays().unwrap_err());
    assert!(
        err.contains("cannot list") && err.contains("proc/mdstat"),
        "{err}"
    );
}

#[test]
fn full_look_checks_blankness_and_asks_smart_about_real_dev_names() {
    let tree = Tree::from_fixture("scsi-after-unplug");
    let size = 64 << 20;
    tree.device("sda", size, &[(4096, &[0xfc, 0x4e, 0x2b, 0xa9])])
        .device("sdc", size, &[]);
    // vda has no device node in the tree: blankness unknown.
    let runner = FakeRunner::default();
    let calls = runner.calls.clone();
    let mut md = MdBackend::new(tree.root().to_path_buf(), Box::new(runner));
    let snapshot = md.snapshot("md0", Depth::Full).unwrap();
    let blank: Vec<(&str, Option<bool>)> = snapshot
        .drives
        .iter()
        .map(|d| (d.id.dev.as_str(), d.blank))
        .collect();
    assert_eq!(
        blank,
        [("sda", Some(false)), ("sdc", Some(true)), ("vda", None)]
    );
    assert!(snapshot.drives.iter().all(|d| d.smart.is_some()));
    // Whatever the SMART reader runs, it names real /dev nodes, never the tree.
    let root = tree.root().display().to_string();
    for argv in calls.borrow().iter() {
        assert!(argv.iter().all(|a| !a.contains(&root)), "{argv:?}");
        assert!(
            argv.iter()
                .any(|a| ["/dev/sda", "/dev/sdc", "/dev/vda"].contains(&a.as_str())),
            "{argv:?}"
        );
    }
}

#[test]
fn wait_execute_and_locate() {
    let mut md = backend(&fixture("clean"));
    // A captured mdstat is a plain file: the wait is a plain sleep.
    md.wait(Duration::ZERO).unwrap();
    md.wait(Duration::ZERO).unwrap();
    let out = md
        .execute(
            &["mdadm".into(), "--version".into()],
            Duration::from_secs(1),
        )
        .unwrap();
    assert_eq!(out.argv, ["mdadm", "--version"]);
    let drive = Identity {
        dev: "nvme1n1".into(),
        serial: Some("LAB-B-0002".into()),
        ..Identity::default()
    };
    assert_eq!(
        md.locate(&drive, true).unwrap(),
        LocateOutcome::Unavailable {
            reason: "no SES enclosure slot for `nvme1n1`; \
                     `ledctl --listed-only locate=/dev/nvme1n1` failed: fake"
                .into()
        }
    );
    let empty = Tree::new();
    let err = format!(
        "{:#}",
        backend(empty.root()).wait(Duration::ZERO).unwrap_err()
    );
    assert!(
        err.contains("cannot open") && err.contains("proc/mdstat"),
        "{err}"
    );
}

#[test]
fn problems_name_their_subject() {
    // A member disk with an unparsable size and ioerr_cnt.
    let tree = Tree::new();
    tree.md0_on("sdb")
        .file("sys/block/sdb/size", "lots\n")
        .file("sys/block/sdb/device/ioerr_cnt", "26\n");
    let snapshot = snap(tree.root(), Depth::Fast);
    let subjects: Vec<(String, String)> = snapshot
        .problems
        .iter()
        .map(|Problem { probe, subject, .. }| (probe.clone(), subject.clone()))
        .collect();
    assert_eq!(
        subjects,
        [
            ("identity".into(), "sdb".into()),
            ("counters".into(), "sdb".into())
        ]
    );
    assert!(!snapshot.drives[0].counters.contains_key("io.ioerr_cnt"));
}

/// smartctl that blocks until the test says go, like a drive stuck in
/// error recovery; then reports a healthy NVMe drive.
struct StuckSmartctl(std::sync::Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>);

impl CommandRunner for StuckSmartctl {
    fn run(&mut self, argv: &[String], _timeout: Duration) -> Result<CommandOutput> {
        let _ = self.0.lock().unwrap().recv();
        Ok(CommandOutput {
            argv: argv.to_vec(),
            code: Some(0),
            stdout: fs::read_to_string(
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures/smart/lab-smartctl-nvme-healthy.json"),
            )
            .unwrap(),
            stderr: String::new(),
            timed_out: false,
        })
    }
}

#[test]
fn a_stuck_smartctl_does_not_delay_the_watch_look() {
    let (go, wait) = std::sync::mpsc::channel();
    let wait = std::sync::Arc::new(std::sync::Mutex::new(wait));
    let mut md = backend(&fixture("clean")).with_smart_runner(std::sync::Arc::new(move || {
        Box::new(StuckSmartctl(std::sync::Arc::clone(&wait))) as Box<dyn CommandRunner + Send>
    }));
    // The round starts and hangs in smartctl; the look returns at once with
    // the md state and counters, and no SMART yet.
    let first = md
        .snapshot("md0", Depth::Watch { smart_due: true })
        .unwrap();
    assert_eq!(first.drives.len(), 2);
    assert!(first.drives.iter().all(|d| d.smart.is_none()));
    let again = md
        .snapshot("md0", Depth::Watch { smart_due: true })
        .unwrap();
    assert!(again.drives.iter().all(|d| d.smart.is_none()));
    // smartctl answers; a later look carries the results.
    go.send(()).unwrap();
    go.send(()).unwrap();
    let mut seen = 0;
    while seen < 2 {
        let look = md
            .snapshot("md0", Depth::Watch { smart_due: false })
            .unwrap();
        seen += look.drives.iter().filter(|d| d.smart.is_some()).count();
        std::thread::yield_now();
    }
}

/// Found by the lab (pull-before-md-notices, on a loaded CI host): `mdadm
/// --remove` takes a member out of mdstat at once, but md deletes its
/// `dev-<kname>/` directory later from a work queue. A look in between
/// listed the directory and then found its files gone, and the guard
/// stopped the run on "cannot read the health" of the drive being removed.
/// A member directory that is gone by the end of its read has left the
/// array; the array is judged as md now shows it.
#[test]
fn regression_a_member_removed_between_listing_and_reading_has_left() {
    let tree = Tree::from_fixture("clean");
    tree.remove("sys/block/md0/md/dev-nvme1n1")
        // Listed by read_dir, gone when its files are opened.
        .link("sys/block/md0/md/dev-nvme1n1", "removed-by-md")
        .file("sys/block/md0/md/degraded", "1\n")
        .file(
            "proc/mdstat",
            "Personalities : [raid1] \nmd0 : active raid1 nvme0n1[0]\n      64512 blocks super 1.2 [2/1] [U_]\n      \nunused devices: <none>\n",
        );
    let snapshot = snap(tree.root(), Depth::Fast);
    assert_eq!(problems(&snapshot), Vec::<String>::new());
    assert_eq!(snapshot.members().count(), 1);
    assert_eq!(snapshot.array.degraded, 1);
}

/// The other side of the rule above: a member directory that is still there
/// with its files missing is unreadable, as before.
#[test]
fn a_member_directory_still_present_without_its_files_is_unreadable() {
    let tree = Tree::from_fixture("clean");
    for file in ["state", "slot", "errors", "bad_blocks"] {
        tree.remove(&format!("sys/block/md0/md/dev-nvme1n1/{file}"));
    }
    let snapshot = snap(tree.root(), Depth::Fast);
    assert_eq!(problems(&snapshot).len(), 4, "{:?}", problems(&snapshot));
}
