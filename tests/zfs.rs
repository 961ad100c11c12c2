//! Whole-process tests of the zfs backend: the real binary, a sysroot tree
//! built here (NVMe, SATA or SCSI disks, each with partition 1 in a mirror),
//! and a fake `zpool` found through the state directory's `config.toml`,
//! answering from the lab captures (tests/fixtures/zfs/).
//!
//! - `status` and `status --json` show the pool beside md;
//! - a guarded run halts, naming the survivor's serial, when the survivor
//!   leaf goes FAULTED (ZFS says so; the pool stays ONLINE) or is pulled
//!   mid-step;
//! - a pool name that could be an option never reaches `zpool`.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::Duration;

mod common;
use common::{Test, root};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Bus {
    Nvme,
    Sata,
    Scsi,
}

impl Bus {
    /// The two disks and their first partitions.
    fn names(self) -> [(&'static str, &'static str); 2] {
        match self {
            Bus::Nvme => [("nvme0n1", "nvme0n1p1"), ("nvme1n1", "nvme1n1p1")],
            Bus::Sata | Bus::Scsi => [("sda", "sda1"), ("sdb", "sdb1")],
        }
    }
}

const SURVIVOR: &str = "LAB-A-0001";
const TARGET: &str = "LAB-B-0002";

fn write(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// A lab capture without its `$ command` and `# rc` lines.
fn capture(name: &str) -> String {
    std::fs::read_to_string(root().join("tests/fixtures/zfs").join(name))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("$ ") && !l.starts_with("# "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A machine: the tree, the fake zpool answering from `zpool/`, the
/// config that finds it.
struct Machine {
    t: Test,
    bus: Bus,
}

impl Machine {
    fn new(bus: Bus) -> Machine {
        let t = Test::new().in_scratch();
        let tree = t.path("tree");
        // A kernel with ZFS and without md.
        std::fs::create_dir_all(tree.join("sys/module/zfs")).unwrap();
        std::fs::create_dir_all(tree.join("proc")).unwrap();
        std::fs::create_dir_all(tree.join("dev/disk/by-id")).unwrap();
        write(&tree.join("dev/kmsg"), b"");
        for ((disk, part), serial) in bus.names().into_iter().zip([SURVIVOR, TARGET]) {
            let d = tree.join("sys/block").join(disk);
            write(&d.join("size"), b"262144\n");
            write(&d.join(part).join("partition"), b"1\n");
            match bus {
                Bus::Nvme => {
                    write(&d.join("device/serial"), format!("{serial}\n").as_bytes());
                    write(&d.join("device/model"), b"QEMU NVMe Ctrl\n");
                    write(&d.join("wwid"), format!("nvme.{serial}\n").as_bytes());
                }
                Bus::Sata | Bus::Scsi => {
                    let vendor: &[u8] = if bus == Bus::Sata {
                        b"ATA\n"
                    } else {
                        b"SEAGATE\n"
                    };
                    write(&d.join("device/vendor"), vendor);
                    write(&d.join("device/model"), b"LAB DISK\n");
                    let mut vpd = vec![0, 0x80, 0, serial.len() as u8];
                    vpd.extend_from_slice(serial.as_bytes());
                    write(&d.join("device/vpd_pg80"), &vpd);
                    write(
                        &d.join("device/wwid"),
                        format!("naa.5000{serial}\n").as_bytes(),
                    );
                }
            }
            write(&tree.join("dev").join(disk), b"");
            write(&tree.join("dev").join(part), b"");
            // SATA leaves are named by-id, as on a host with udev.
            if bus == Bus::Sata {
                symlink(
                    format!("../../{part}"),
                    tree.join(format!("dev/disk/by-id/ata-LAB_DISK_{serial}-part1")),
                )
                .unwrap();
            }
        }
        let bin = t.path("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let answers = t.path("zpool");
        std::fs::create_dir_all(&answers).unwrap();
        let script = format!(
            "#!/bin/sh\nD='{}'\necho \"$*\" >> \"$D/calls\"\ncase \"$*\" in\n\
             'list -H -o name') cat \"$D/list\" ;;\n\
             'status -j --json-int -P '*) cat \"$D/status.json\" ;;\n\
             'events -f -H') exec sleep 600 ;;\n\
             *) echo \"fake zpool: unexpected $*\" >&2; exit 2 ;;\n\
             esac\n",
            answers.display()
        );
        let zpool = bin.join("zpool");
        std::fs::write(&zpool, script).unwrap();
        std::fs::set_permissions(&zpool, std::fs::Permissions::from_mode(0o755)).unwrap();
        t.config(&format!("path = \"{}:/usr/bin:/bin\"\n", bin.display()));
        let m = Machine { t, bus };
        m.answer("list", "tank\n");
        m.status(&m.json("lab-status-j-healthy.json.txt"));
        m
    }

    /// A capture with this machine's leaf paths.
    fn json(&self, capture_name: &str) -> String {
        let mut text = capture(capture_name);
        for ((_, part), (lab, serial)) in self
            .bus
            .names()
            .into_iter()
            .zip([("nvme0n1p1", SURVIVOR), ("nvme1n1p1", TARGET)])
        {
            let path = if self.bus == Bus::Sata {
                format!("/dev/disk/by-id/ata-LAB_DISK_{serial}-part1")
            } else {
                format!("/dev/{part}")
            };
            text = text
                .replace(&format!("\"/dev/{lab}\""), &format!("\"{path}\""))
                .replace(lab, part);
        }
        text
    }

    fn answer(&self, name: &str, text: &str) {
        std::fs::write(self.t.path("zpool").join(name), text).unwrap();
    }

    fn status(&self, json: &str) {
        // Written whole, then renamed: the fake never serves half a file.
        let tmp = self.t.path("zpool/status.json.tmp");
        std::fs::write(&tmp, json).unwrap();
        std::fs::rename(tmp, self.t.path("zpool/status.json")).unwrap();
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.t.path("zpool/calls")).unwrap_or_default()
    }

    fn swapguard(&self, args: &[&str]) -> common::Run {
        let tree = self.t.path("tree");
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.push("--sysroot".into());
        all.push(tree.display().to_string());
        self.t.swapguard(&all)
    }
}

#[test]
fn status_shows_the_pool_beside_md_on_every_bus() {
    for bus in [Bus::Nvme, Bus::Sata, Bus::Scsi] {
        let m = Machine::new(bus);
        let [(a, _), (b, _)] = bus.names();
        let done = m.swapguard(&["status"]).run().code(0);
        let out = &done.stdout;
        assert!(
            out.contains("md is not available"),
            "{bus:?}\n{}",
            done.both()
        );
        assert!(
            out.contains("tank  mirror  ONLINE  2 slots, 0 missing"),
            "{bus:?}\n{}",
            done.both()
        );
        for (disk, serial) in [(a, SURVIVOR), (b, TARGET)] {
            let line = out
                .lines()
                .find(|l| l.trim_start().starts_with(disk))
                .unwrap_or_else(|| panic!("{bus:?}: no line for {disk}\n{out}"));
            assert!(line.contains(serial) && line.contains("in-sync"), "{line}");
        }
        let transport = match bus {
            Bus::Nvme => "nvme",
            Bus::Sata => "sata",
            Bus::Scsi => "scsi",
        };
        assert!(out.contains(transport), "{out}");
    }
}

#[test]
fn status_json_has_the_pool_its_leaves_and_their_guids() {
    let m = Machine::new(Bus::Nvme);
    let done = m.swapguard(&["status", "--json"]).run().code(0);
    let v: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    let pool = v["arrays"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["array"]["name"] == "tank")
        .unwrap_or_else(|| panic!("{}", done.both()));
    assert_eq!(pool["array"]["level"], "mirror");
    assert_eq!(pool["array"]["state"], "ONLINE");
    assert_eq!(pool["array"]["redundancy_left"], 1);
    let drives = pool["drives"].as_array().unwrap();
    assert_eq!(drives.len(), 2);
    assert_eq!(drives[0]["id"]["serial"], SURVIVOR);
    assert_eq!(drives[0]["member"]["name"], "12296363858440934939");
    assert_eq!(drives[0]["member"]["flags"], serde_json::json!(["online"]));
    assert_eq!(drives[1]["member"]["name"], "4687426919967184029");
    assert!(
        v["unavailable"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u.as_str().unwrap().contains("md is not available")),
        "{v}"
    );

    // `status tank`: the one pool, by name.
    let done = m.swapguard(&["status", "tank", "--json"]).run().code(0);
    let v: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(v["arrays"].as_array().unwrap().len(), 1);
}

/// A FAULTED leaf under an ONLINE mirror and pool is still a failing
/// drive in `status`.
#[test]
fn status_judges_a_faulted_leaf_under_an_online_pool() {
    let m = Machine::new(Bus::Scsi);
    m.status(&m.json("lab-status-j-healthy.json.txt").replacen(
        "\"path\":\"/dev/sda1\",\"class\":\"normal\",\"state\":\"ONLINE\"",
        "\"path\":\"/dev/sda1\",\"class\":\"normal\",\"state\":\"FAULTED\"",
        1,
    ));
    let done = m.swapguard(&["status"]).run().code(0);
    assert!(
        done.stdout.contains("tank  mirror  ONLINE"),
        "{}",
        done.both()
    );
    let line = done
        .stdout
        .lines()
        .find(|l| l.contains(SURVIVOR))
        .unwrap()
        .to_string();
    assert!(
        line.contains("faulty") && line.contains("[faulted]"),
        "{line}"
    );
}

/// A zpool that fails is an error, not an empty or healthy pool.
#[test]
fn status_fails_closed_when_zpool_fails() {
    let m = Machine::new(Bus::Nvme);
    m.status("{\"output_version\": ");
    let done = m.swapguard(&["status"]).run().code(1);
    assert!(
        done.both()
            .contains("cannot parse the output of `zpool status"),
        "{}",
        done.both()
    );
}

/// A pool name that could be an option or a path is refused before it
/// reaches `zpool status`.
#[test]
fn a_pool_name_that_is_an_option_never_reaches_zpool() {
    let m = Machine::new(Bus::Nvme);
    m.answer("list", "-x\n");
    let done = m.swapguard(&["status"]).run();
    assert!(
        done.both().contains("is not a ZFS pool name"),
        "{}",
        done.both()
    );
    assert!(
        !m.calls().contains("status -j --json-int -P -x"),
        "{}",
        m.calls()
    );
}

fn runbook() -> String {
    r#"[runbook]
name = "one command on a pool (test)"
backend = "zfs"

[params]
array = { kind = "array", help = "pool" }
target = { kind = "member", help = "member" }

[guard]
smart = "optional"
watch_poll = "100ms"

[preflight]
require = ["redundant-without-target", "survivors-healthy", "no-rebuild-running", "target-identified"]

[on_halt]
say = "STOP."

[[step]]
id = "long"
kind = "command"
run = ["sleep", "30"]
timeout = "60s"
"#
    .to_string()
}

/// Run the one-command runbook on `m` with target drive `target`; when the
/// command runs, `change` breaks the survivor.
fn guarded_run(m: &Machine, target: &str, change: impl Fn(&Machine)) -> common::Done {
    m.t.write("runbook.toml", &runbook());
    m.t.write("answers.toml", "");
    let mut changed = false;
    let run = m.swapguard(&[
        "run",
        "runbook.toml",
        "--array",
        "tank",
        "--target",
        target,
        "--answers",
        "answers.toml",
    ]);
    run.run_watching(|line, _| {
        if !changed && line.contains("is running; watching every drive meanwhile") {
            changed = true;
            change(m);
        }
    })
}

#[test]
fn a_survivor_leaf_faulted_mid_step_halts_naming_its_serial() {
    for bus in [Bus::Nvme, Bus::Sata, Bus::Scsi] {
        let m = Machine::new(bus);
        let [_, (target, _)] = bus.names();
        let [(_, survivor_part), _] = bus.names();
        let done = guarded_run(&m, target, |m| {
            let path = if m.bus == Bus::Sata {
                format!("/dev/disk/by-id/ata-LAB_DISK_{SURVIVOR}-part1")
            } else {
                format!("/dev/{survivor_part}")
            };
            let json = m.json("lab-status-j-healthy.json.txt").replacen(
                &format!("\"path\":\"{path}\",\"class\":\"normal\",\"state\":\"ONLINE\""),
                &format!("\"path\":\"{path}\",\"class\":\"normal\",\"state\":\"FAULTED\""),
                1,
            );
            assert!(json.contains("FAULTED"));
            m.status(&json);
        });
        let done = done.code(3).has(SURVIVOR).has("zfs flag `faulted`");
        assert!(
            done.took < Duration::from_secs(20),
            "{bus:?} took {:?}",
            done.took
        );
        let halted = done.journal().into_iter().find(|e| e["event"] == "halted");
        assert_eq!(halted.unwrap()["step"], "long", "{bus:?}");
    }
}

/// The wrong drive pulled: the survivor's device is gone and ZFS says
/// REMOVED. The run halts at once naming the survivor's serial.
#[test]
fn a_survivor_pulled_mid_step_halts_naming_its_serial() {
    for bus in [Bus::Nvme, Bus::Sata, Bus::Scsi] {
        let m = Machine::new(bus);
        let [(survivor, survivor_part), (target, _)] = bus.names();
        let done = guarded_run(&m, target, |m| {
            let tree = m.t.path("tree");
            std::fs::remove_dir_all(tree.join("sys/block").join(survivor)).unwrap();
            std::fs::remove_file(tree.join("dev").join(survivor_part)).unwrap();
            let json = m.json("lab-status-j-healthy.json.txt").replacen(
                "\"state\":\"ONLINE\",\"rep_dev_size\"",
                "\"state\":\"REMOVED\",\"rep_dev_size\"",
                1,
            );
            m.status(&json.replace(
                "\"state\":\"ONLINE\",\"alloc_space\"",
                "\"state\":\"DEGRADED\",\"alloc_space\"",
            ));
        });
        let done = done.code(3).has(SURVIVOR).has("vanished");
        if std::env::var_os("SHOW").is_some() {
            eprintln!("{}", done.both());
        }
        assert!(
            done.took < Duration::from_secs(20),
            "{bus:?} took {:?}",
            done.took
        );
    }
}

/// The restore target check knows pool members: a `drive` target that is
/// a leaf of the pool is refused before anything runs.
#[test]
fn a_restore_target_that_is_a_pool_member_is_refused() {
    let m = Machine::new(Bus::Sata);
    let runbook = runbook().replace(
        "target = { kind = \"member\", help = \"member\" }",
        "target = { kind = \"drive\", help = \"the drive to restore onto\" }",
    );
    m.t.write("runbook.toml", &runbook);
    m.t.write("answers.toml", "");
    let done = m
        .swapguard(&[
            "run",
            "runbook.toml",
            "--array",
            "tank",
            "--target",
            SURVIVOR,
            "--answers",
            "answers.toml",
        ])
        .run();
    let both = done.both();
    assert!(
        both.contains("is a member of `tank`") && both.contains(SURVIVOR),
        "{both}"
    );
    assert!(!both.contains("is running"), "{both}");
}
