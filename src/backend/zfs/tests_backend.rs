//! The zfs backend on small sysfs trees (NVMe, SATA, SCSI) with `zpool`
//! answering from the lab captures (tests/fixtures/zfs/).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use anyhow::Result;
use tempfile::TempDir;

use super::backend::{ZfsBackend, check_pool_name};
use crate::backend::{Backend, CommandOutput, CommandRunner, Depth};
use crate::health::model::{MemberState, Snapshot};

/// Answers `zpool` by its argv after the program; records every call.
#[derive(Clone, Default)]
struct Zpool {
    answers: Rc<RefCell<BTreeMap<String, CommandOutput>>>,
    calls: Rc<RefCell<Vec<String>>>,
}

impl Zpool {
    fn answer(&self, args: &str, code: i32, stdout: &str, stderr: &str) {
        self.answers.borrow_mut().insert(
            args.to_string(),
            CommandOutput {
                argv: Vec::new(),
                code: Some(code),
                stdout: stdout.into(),
                stderr: stderr.into(),
                timed_out: false,
            },
        );
    }

    fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }
}

impl CommandRunner for Zpool {
    fn run(&mut self, argv: &[String], _timeout: Duration) -> Result<CommandOutput> {
        let args = argv[1..].join(" ");
        self.calls.borrow_mut().push(argv.join(" "));
        let mut out = self
            .answers
            .borrow()
            .get(&args)
            .cloned()
            .unwrap_or(CommandOutput {
                code: Some(127),
                stderr: format!("no answer for `{args}`"),
                ..CommandOutput::default()
            });
        out.argv = argv.to_vec();
        Ok(out)
    }
}

/// The tool's output in a capture (its `$ command` and `# rc` lines gone).
fn capture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/zfs")
        .join(name);
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("$ ") && !l.starts_with("# "))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Bus {
    Nvme,
    Sata,
    Scsi,
}

/// A sysroot with the zfs module and whole disks, each with partition 1.
struct Tree {
    dir: TempDir,
}

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("sys/module/zfs")).unwrap();
        fs::create_dir_all(dir.path().join("dev/disk/by-id")).unwrap();
        Tree { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn write(&self, rel: &str, content: &[u8]) {
        let p = self.dir.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    /// Disk `name` with partition `part` and a by-id link `by_id` (to
    /// the partition) when given.
    fn disk(&self, name: &str, part: &str, bus: Bus, serial: &str, by_id: Option<&str>) {
        let d = format!("sys/block/{name}");
        self.write(&format!("{d}/size"), b"262144\n");
        self.write(&format!("{d}/{part}/partition"), b"1\n");
        self.write(&format!("{d}/{part}/size"), b"260000\n");
        match bus {
            Bus::Nvme => {
                self.write(
                    &format!("{d}/device/serial"),
                    format!("{serial}\n").as_bytes(),
                );
                self.write(&format!("{d}/device/model"), b"QEMU NVMe Ctrl\n");
                self.write(&format!("{d}/wwid"), format!("nvme.{serial}\n").as_bytes());
            }
            Bus::Sata | Bus::Scsi => {
                let vendor: &[u8] = if bus == Bus::Sata {
                    b"ATA     \n"
                } else {
                    b"SEAGATE \n"
                };
                self.write(&format!("{d}/device/vendor"), vendor);
                self.write(&format!("{d}/device/model"), b"LAB DISK\n");
                let mut vpd = vec![0, 0x80, 0, serial.len() as u8];
                vpd.extend_from_slice(serial.as_bytes());
                self.write(&format!("{d}/device/vpd_pg80"), &vpd);
                self.write(
                    &format!("{d}/device/wwid"),
                    format!("naa.5000{serial}\n").as_bytes(),
                );
            }
        }
        self.write(&format!("dev/{name}"), b"");
        self.write(&format!("dev/{part}"), b"");
        if let Some(link) = by_id {
            symlink(
                format!("../../{part}"),
                self.dir.path().join("dev/disk/by-id").join(link),
            )
            .unwrap();
        }
    }

    fn pull(&self, name: &str, part: &str) {
        fs::remove_dir_all(self.dir.path().join("sys/block").join(name)).unwrap();
        fs::remove_file(self.dir.path().join("dev").join(name)).unwrap();
        fs::remove_file(self.dir.path().join("dev").join(part)).unwrap();
    }
}

fn backend(tree: &Tree, zpool: &Zpool) -> ZfsBackend {
    ZfsBackend::new(tree.root(), Box::new(zpool.clone()))
}

const JSON_ARGS: &str = "status -j --json-int -P tank";

/// The lab's two NVMe drives in a mirror of their first partitions.
fn nvme_pair() -> Tree {
    let t = Tree::new();
    t.disk("nvme0n1", "nvme0n1p1", Bus::Nvme, "LAB-A-0001", None);
    t.disk("nvme1n1", "nvme1n1p1", Bus::Nvme, "LAB-B-0002", None);
    t
}

/// One line per drive: what the guard compares.
fn lines(s: &Snapshot) -> Vec<String> {
    s.drives
        .iter()
        .map(|d| {
            let m = d.member.as_ref().map_or("not-member".to_string(), |m| {
                format!(
                    "{} role={:?} flags={} guid={}",
                    m.state,
                    m.role,
                    m.flags.join(","),
                    m.name.as_deref().unwrap_or("-")
                )
            });
            let faults: Vec<String> = d.faults.iter().map(|f| f.condition.clone()).collect();
            format!(
                "{} {} {} | {m} | faults={}",
                d.id.dev,
                d.id.serial.as_deref().unwrap_or("?"),
                d.id.transport.as_deref().unwrap_or("?"),
                faults.join(",")
            )
        })
        .collect()
}

fn array(s: &Snapshot) -> String {
    let a = &s.array;
    format!(
        "{} {} {} running={} width={} degraded={} left={} sync={}",
        a.name,
        a.level,
        a.state,
        a.running,
        a.raid_disks,
        a.degraded,
        a.redundancy_left,
        a.sync.as_ref().map_or("-".into(), |p| format!(
            "{} {}/{}",
            p.action, p.done, p.total
        ))
    )
}

const A_GUID: &str = "12296363858440934939";
const B_GUID: &str = "4687426919967184029";

#[test]
fn healthy_nvme_mirror_from_json() {
    let t = nvme_pair();
    let z = Zpool::default();
    z.answer(JSON_ARGS, 0, &capture("lab-status-j-healthy.json.txt"), "");
    let s = backend(&t, &z).snapshot("tank", Depth::Fast).unwrap();
    assert_eq!(
        lines(&s),
        [
            format!(
                "nvme0n1 LAB-A-0001 nvme | in-sync role=Some(0) flags=online guid={A_GUID} | faults="
            ),
            format!(
                "nvme1n1 LAB-B-0002 nvme | in-sync role=Some(1) flags=online guid={B_GUID} | faults="
            ),
        ]
    );
    assert_eq!(
        array(&s),
        "tank mirror ONLINE running=true width=2 degraded=0 left=1 sync=-"
    );
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert!(
        s.drives
            .iter()
            .all(|d| d.counters["zfs.checksum_errors"] == 0)
    );
}

/// The same pool on SATA and SCSI disks named through by-id links: the
/// leaf path is followed through the checked resolution to the partition,
/// then to its disk.
#[test]
fn sata_and_scsi_leaves_by_id_resolve_to_their_disks() {
    let t = Tree::new();
    t.disk(
        "sda",
        "sda1",
        Bus::Sata,
        "WD-SATA0001",
        Some("ata-LAB_DISK_WD-SATA0001-part1"),
    );
    t.disk(
        "sdb",
        "sdb1",
        Bus::Scsi,
        "SCSI0002",
        Some("scsi-35000SCSI0002-part1"),
    );
    t.disk("sdc", "sdc1", Bus::Sata, "WD-OTHER0003", None);
    let json = capture("lab-status-j-healthy.json.txt")
        .replace(
            "\"/dev/nvme0n1p1\"",
            "\"/dev/disk/by-id/ata-LAB_DISK_WD-SATA0001-part1\"",
        )
        .replace(
            "\"/dev/nvme1n1p1\"",
            "\"/dev/disk/by-id/scsi-35000SCSI0002-part1\"",
        );
    let z = Zpool::default();
    z.answer(JSON_ARGS, 0, &json, "");
    let s = backend(&t, &z).snapshot("tank", Depth::Fast).unwrap();
    assert_eq!(
        lines(&s),
        [
            format!(
                "sda WD-SATA0001 sata | in-sync role=Some(0) flags=online guid={A_GUID} | faults="
            ),
            format!(
                "sdb SCSI0002 scsi | in-sync role=Some(1) flags=online guid={B_GUID} | faults="
            ),
            "sdc WD-OTHER0003 sata | not-member | faults=".to_string(),
        ]
    );
    assert!(s.problems.is_empty(), "{:?}", s.problems);
}

/// Right after a pull ZFS may still say ONLINE: the drive is gone, so its
/// slot serves nothing and no drive stands in for it.
#[test]
fn a_pulled_leaf_zfs_still_calls_online_serves_nothing() {
    for (bus, a, ap, b, bp) in [
        (Bus::Nvme, "nvme0n1", "nvme0n1p1", "nvme1n1", "nvme1n1p1"),
        (Bus::Sata, "sda", "sda1", "sdb", "sdb1"),
        (Bus::Scsi, "sda", "sda1", "sdb", "sdb1"),
    ] {
        let t = Tree::new();
        t.disk(a, ap, bus, "SURVIVOR1", None);
        t.disk(b, bp, bus, "PULLED2", None);
        let json = capture("lab-status-j-after-pull-before-io.json.txt")
            .replace("nvme0n1p1", ap)
            .replace("nvme1n1p1", bp);
        let z = Zpool::default();
        z.answer(JSON_ARGS, 0, &json, "");
        let mut zfs = backend(&t, &z);
        let before = zfs.snapshot("tank", Depth::Fast).unwrap();
        assert_eq!(before.array.degraded, 0);
        t.pull(b, bp);
        let s = zfs.snapshot("tank", Depth::Fast).unwrap();
        assert_eq!(s.drives.len(), 1, "{:?}", lines(&s));
        assert_eq!(s.drives[0].id.serial.as_deref(), Some("SURVIVOR1"));
        assert_eq!(
            array(&s),
            "tank mirror ONLINE running=true width=2 degraded=1 left=0 sync=-"
        );
    }
}

/// Never the pool's word alone: a FAULTED leaf under an ONLINE mirror and
/// pool is a fault on that drive.
#[test]
fn a_faulted_leaf_under_an_online_mirror_and_pool_is_a_fault() {
    let t = nvme_pair();
    let json = capture("lab-status-j-healthy.json.txt").replacen(
        "\"path\":\"/dev/nvme1n1p1\",\"class\":\"normal\",\"state\":\"ONLINE\"",
        "\"path\":\"/dev/nvme1n1p1\",\"class\":\"normal\",\"state\":\"FAULTED\",\"aux\":\"too many errors\"",
        1,
    );
    assert!(json.contains("FAULTED"));
    let z = Zpool::default();
    z.answer(JSON_ARGS, 0, &json, "");
    let s = backend(&t, &z).snapshot("tank", Depth::Fast).unwrap();
    assert_eq!(s.array.state, "ONLINE");
    assert_eq!(
        lines(&s)[1],
        format!(
            "nvme1n1 LAB-B-0002 nvme | faulty role=Some(1) flags=faulted guid={B_GUID} | faults=zfs.faulted"
        )
    );
    assert_eq!(s.array.degraded, 1);
}

#[test]
fn replacing_resilvering_and_resilvered() {
    let t = nvme_pair();
    let done = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/zfs/lab-status-j-resilvered.json.txt"),
    )
    .unwrap()
    .lines()
    .filter(|l| !l.starts_with("$ ") && !l.starts_with("# "))
    .collect::<String>();
    let z = Zpool::default();
    z.answer(JSON_ARGS, 0, &done, "");
    let s = backend(&t, &z).snapshot("tank", Depth::Fast).unwrap();
    // The `/old` leaf names no device: the drive at its path is the new one.
    assert_eq!(
        lines(&s)[1],
        "nvme1n1 LAB-B-0002 nvme | in-sync role=Some(1) flags=online,replacing guid=4479703803585373638 | faults="
    );
    assert_eq!(
        array(&s),
        "tank mirror DEGRADED running=true width=2 degraded=0 left=1 sync=-"
    );

    let running = done.replace("\"state\":\"FINISHED\"", "\"state\":\"SCANNING\"");
    z.answer(JSON_ARGS, 0, &running, "");
    let s = backend(&t, &z).snapshot("tank", Depth::Fast).unwrap();
    assert_eq!(
        lines(&s)[1],
        "nvme1n1 LAB-B-0002 nvme | rebuilding role=Some(1) flags=online,resilvering,replacing guid=4479703803585373638 | faults="
    );
    assert_eq!(
        array(&s),
        "tank mirror DEGRADED running=true width=2 degraded=1 left=0 sync=resilver 49992/50360"
    );
}

/// OpenZFS 2.1/2.2 refuse `-j` (exit 2): the text form is read instead,
/// with GUIDs from `-g`, and the choice is kept.
#[test]
fn text_fallback_when_zpool_refuses_json() {
    let t = nvme_pair();
    let z = Zpool::default();
    z.answer(JSON_ARGS, 2, "", "invalid option 'j'\nusage:\n");
    let text = capture("lab-status-healthy.txt")
        .replace("nvme0n1p1 ", "/dev/nvme0n1p1 ")
        .replace("nvme1n1p1 ", "/dev/nvme1n1p1 ");
    z.answer("status -pP tank", 0, &text, "");
    let guids = capture("lab-status-healthy.txt")
        .replace("nvme0n1p1", A_GUID)
        .replace("nvme1n1p1", B_GUID);
    z.answer("status -gp tank", 0, &guids, "");
    let mut zfs = backend(&t, &z);
    let s = zfs.snapshot("tank", Depth::Fast).unwrap();
    assert_eq!(
        lines(&s),
        [
            format!(
                "nvme0n1 LAB-A-0001 nvme | in-sync role=Some(0) flags=online guid={A_GUID} | faults="
            ),
            format!(
                "nvme1n1 LAB-B-0002 nvme | in-sync role=Some(1) flags=online guid={B_GUID} | faults="
            ),
        ]
    );
    zfs.snapshot("tank", Depth::Fast).unwrap();
    assert_eq!(
        z.calls(),
        [
            "zpool status -j --json-int -P tank",
            "zpool status -pP tank",
            "zpool status -gp tank",
            "zpool status -pP tank",
            "zpool status -gp tank",
        ]
    );

    // A pull seen by ZFS: REMOVED, in text.
    let after = capture("lab-status-after-pull.txt");
    z.answer(
        "status -pP tank",
        0,
        &after
            .replace("nvme0n1p1 ", "/dev/nvme0n1p1 ")
            .replace("nvme1n1p1 ", "/dev/nvme1n1p1 "),
        "",
    );
    z.answer(
        "status -gp tank",
        0,
        &after
            .replace("nvme0n1p1", A_GUID)
            .replace("nvme1n1p1", B_GUID),
        "",
    );
    t.pull("nvme1n1", "nvme1n1p1");
    let s = zfs.snapshot("tank", Depth::Fast).unwrap();
    assert_eq!(s.drives.len(), 1);
    assert_eq!(
        array(&s),
        "tank mirror DEGRADED running=true width=2 degraded=1 left=0 sync=-"
    );
}

/// A REMOVED leaf whose path now leads to another drive (the new one
/// took the pulled one's name) is not bound to it.
#[test]
fn regression_a_removed_leaf_is_not_taken_for_the_drive_that_took_its_name() {
    let t = nvme_pair();
    let z = Zpool::default();
    z.answer(JSON_ARGS, 0, &capture("lab-status-j-healthy.json.txt"), "");
    let mut zfs = backend(&t, &z);
    zfs.snapshot("tank", Depth::Fast).unwrap();
    t.pull("nvme1n1", "nvme1n1p1");
    t.disk("nvme1n1", "nvme1n1p1", Bus::Nvme, "NEW-C-0003", None);
    let removed = capture("lab-status-j-healthy.json.txt").replacen(
        "\"path\":\"/dev/nvme1n1p1\",\"class\":\"normal\",\"state\":\"ONLINE\"",
        "\"path\":\"/dev/nvme1n1p1\",\"class\":\"normal\",\"state\":\"REMOVED\"",
        1,
    );
    z.answer(JSON_ARGS, 0, &removed, "");
    let s = zfs.snapshot("tank", Depth::Fast).unwrap();
    assert_eq!(
        lines(&s)[1],
        "nvme1n1 NEW-C-0003 nvme | not-member | faults="
    );
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    // Even without an earlier look.
    let s = backend(&t, &z).snapshot("tank", Depth::Fast).unwrap();
    assert_eq!(
        lines(&s)[1],
        "nvme1n1 NEW-C-0003 nvme | not-member | faults="
    );
    // ZFS claiming it still has it open on another drive is a problem.
    z.answer(JSON_ARGS, 0, &capture("lab-status-j-healthy.json.txt"), "");
    let s = zfs.snapshot("tank", Depth::Fast).unwrap();
    assert!(
        s.problems
            .iter()
            .any(|p| p.message.contains("now leads to nvme1n1")),
        "{:?}",
        s.problems
    );
}

/// The cold swap's order: `zpool offline`, pull, insert. The OFFLINE
/// leaf's path then leads to the new drive, which took the old one's name
/// and got the same partitions: it is not that leaf, and no problem (the
/// lab's zfs-replace-member halted here).
#[test]
fn regression_an_offline_leaf_is_not_taken_for_the_drive_that_took_its_name() {
    let t = nvme_pair();
    let z = Zpool::default();
    z.answer(JSON_ARGS, 0, &capture("lab-status-j-healthy.json.txt"), "");
    let mut zfs = backend(&t, &z);
    zfs.snapshot("tank", Depth::Fast).unwrap();
    t.pull("nvme1n1", "nvme1n1p1");
    t.disk("nvme1n1", "nvme1n1p1", Bus::Nvme, "NEW-C-0003", None);
    let offline = capture("lab-status-j-healthy.json.txt").replacen(
        "\"path\":\"/dev/nvme1n1p1\",\"class\":\"normal\",\"state\":\"ONLINE\"",
        "\"path\":\"/dev/nvme1n1p1\",\"class\":\"normal\",\"state\":\"OFFLINE\"",
        1,
    );
    assert_ne!(offline, capture("lab-status-j-healthy.json.txt"));
    z.answer(JSON_ARGS, 0, &offline, "");
    let s = zfs.snapshot("tank", Depth::Fast).unwrap();
    assert_eq!(
        lines(&s)[1],
        "nvme1n1 NEW-C-0003 nvme | not-member | faults="
    );
    assert!(s.problems.is_empty(), "{:?}", s.problems);
}

#[test]
fn data_errors_are_a_problem() {
    let t = nvme_pair();
    let z = Zpool::default();
    let json =
        capture("lab-status-j-healthy.json.txt").replace("\"error_count\":0", "\"error_count\":3");
    assert!(json.contains("\"error_count\":3"));
    z.answer(JSON_ARGS, 0, &json, "");
    let s = backend(&t, &z).snapshot("tank", Depth::Fast).unwrap();
    assert_eq!(s.problems.len(), 1);
    assert!(
        s.problems[0].message.contains("3 data error(s)"),
        "{:?}",
        s.problems
    );
}

/// A zpool that fails, times out, prints garbage or another pool: the
/// look fails with a clear error, never a healthy snapshot.
#[test]
fn zpool_failures_fail_the_look() {
    let t = nvme_pair();
    let healthy = capture("lab-status-j-healthy.json.txt");
    let cases: [(i32, String, &str, &str); 6] = [
        (
            1,
            String::new(),
            "cannot open 'tank': no such pool",
            "failed (exit 1): cannot open 'tank': no such pool",
        ),
        (0, "{\"pools\":".into(), "", "cannot parse the output"),
        (0, "not json at all\n".into(), "", "cannot parse the output"),
        (
            0,
            healthy[..healthy.len() / 2].to_string(),
            "",
            "cannot parse the output",
        ),
        (
            0,
            healthy.replace("\"tank\"", "\"other\""),
            "",
            "printed no pool `tank`",
        ),
        (
            0,
            healthy.replace("\"read_errors\":0", "\"read_errors\":\"x\""),
            "",
            "not a count",
        ),
    ];
    for (code, stdout, stderr, want) in cases {
        let z = Zpool::default();
        z.answer(JSON_ARGS, code, &stdout, stderr);
        let err = backend(&t, &z).snapshot("tank", Depth::Fast).unwrap_err();
        assert!(format!("{err:#}").contains(want), "{err:#} / {want}");
    }
    // Exit 2 after JSON worked once is a failure, not a fallback.
    let z = Zpool::default();
    z.answer(JSON_ARGS, 0, &healthy, "");
    let mut zfs = backend(&t, &z);
    zfs.snapshot("tank", Depth::Fast).unwrap();
    z.answer(JSON_ARGS, 2, "", "invalid option 'j'");
    assert!(zfs.snapshot("tank", Depth::Fast).is_err());
    // Timed out.
    let z = Zpool::default();
    z.answer(JSON_ARGS, 0, &healthy, "");
    z.answers.borrow_mut().get_mut(JSON_ARGS).unwrap().timed_out = true;
    let err = backend(&t, &z).snapshot("tank", Depth::Fast).unwrap_err();
    assert!(format!("{err:#}").contains("did not finish"), "{err:#}");
}

#[test]
fn pool_names_are_checked_before_any_argv() {
    for bad in [
        "",
        "-x",
        "--help",
        "a/b",
        "a b",
        "tank\u{1b}[2J",
        "1tank",
        "mirror",
        "raidz2x",
        "c0t0",
        "log",
        "tank\n",
    ] {
        let t = nvme_pair();
        let z = Zpool::default();
        let err = backend(&t, &z).snapshot(bad, Depth::Fast).unwrap_err();
        let text = format!("{err:#}");
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(z.calls().is_empty(), "{bad:?}: {:?}", z.calls());
        assert!(check_pool_name(bad).is_err());
    }
    for good in ["tank", "rpool", "b-pool_1.x:y", "Data"] {
        assert_eq!(check_pool_name(good), Ok(()), "{good}");
    }
}

#[test]
fn pools_and_availability() {
    let t = nvme_pair();
    let z = Zpool::default();
    z.answer("list -H -o name", 0, "rpool\ntank\n", "");
    let mut zfs = backend(&t, &z);
    assert_eq!(zfs.unavailable(), None);
    assert_eq!(zfs.arrays().unwrap(), ["rpool", "tank"]);
    z.answer("list -H -o name", 1, "", "failed to initialize");
    assert!(zfs.arrays().is_err());
    fs::remove_dir(t.root().join("sys/module/zfs")).unwrap();
    let why = zfs.unavailable().unwrap();
    assert!(why.contains("ZFS is not available"), "{why}");
}

/// A hot spare is a spare, not a member holding data.
#[test]
fn spares_are_spares() {
    let t = nvme_pair();
    t.disk("nvme2n1", "nvme2n1p1", Bus::Nvme, "LAB-S-0003", None);
    let json = capture("lab-status-j-healthy.json.txt").replace(
        ",\"error_count\":0",
        ",\"spares\":{\"nvme2n1p1\":{\"name\":\"nvme2n1p1\",\"vdev_type\":\"disk\",\"guid\":777,\"path\":\"/dev/nvme2n1p1\",\"class\":\"spare\",\"state\":\"AVAIL\",\"read_errors\":0,\"write_errors\":0,\"checksum_errors\":0}},\"error_count\":0",
    );
    let z = Zpool::default();
    z.answer(JSON_ARGS, 0, &json, "");
    let s = backend(&t, &z).snapshot("tank", Depth::Fast).unwrap();
    assert_eq!(
        lines(&s)[2],
        "nvme2n1 LAB-S-0003 nvme | spare role=None flags=avail guid=777 | faults="
    );
    assert_eq!(s.array.raid_disks, 2);
    assert_eq!(s.drives[2].state(), Some(MemberState::Spare));
}
