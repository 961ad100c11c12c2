//! Whole-process tests of a watch over 60 drives: the real binary against a
//! generated md sysfs tree (one RAID6 of 60 members: 20 NVMe, 20 SATA, 20
//! SCSI) with a stand-in `smartctl` that takes 100 ms per drive.
//!
//! - the halt is journaled at once: the entry naming the violation is in
//!   the journal before the halt's full look (SMART of all 60 drives, about
//!   0.8 s at 8 at once) finishes, proven by the journal itself as each
//!   stand-in `smartctl` of that look ends, not by timing;
//! - a quiet 60-drive watch journals no routine lines, however often it
//!   looks (the figure in docs/performance.md "The journal at speed").

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

mod common;
use common::{Test, root};

const DRIVES: usize = 60;

fn runbook(watch_poll: &str, seconds: u32) -> String {
    format!(
        r#"[runbook]
name = "60 drives (test)"
backend = "md"

[params]
array = {{ kind = "array", help = "md array" }}
target = {{ kind = "member", help = "member" }}

[guard]
watch_poll = "{watch_poll}"
smart_poll = "10m"

[preflight]
require = ["redundant-without-target", "survivors-healthy", "no-rebuild-running", "target-identified"]

[on_halt]
say = "STOP."

[[step]]
id = "long"
kind = "command"
run = ["sleep", "{seconds}"]
timeout = "120s"
"#
    )
}

/// The kernel's name of the `i`th disk of a kind.
fn disk(i: usize) -> String {
    match i % 3 {
        0 => format!("nvme{}n1", i / 3),
        kind => {
            // sda, sdb, ... sdz, sdaa, ...: SATA even, SCSI odd.
            let mut n = (i / 3) * 2 + (kind - 1) + 1;
            let mut letters = Vec::new();
            while n > 0 {
                n -= 1;
                letters.push(b'a' + (n % 26) as u8);
                n /= 26;
            }
            letters.reverse();
            format!("sd{}", String::from_utf8(letters).unwrap())
        }
    }
}

fn put(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// One clean md RAID6 of `DRIVES` members under `root`, as the kernel
/// shows it (the files the md backend reads; the shapes of the captured
/// trees in tests/fixtures/md/ and the lab's SATA and SCSI captures).
fn tree(root: &Path) {
    let mut line = "md0 : active raid6".to_string();
    for i in (0..DRIVES).rev() {
        write!(line, " {}[{i}]", disk(i)).unwrap();
    }
    let ups = "U".repeat(DRIVES);
    put(
        root,
        "proc/mdstat",
        format!(
            "Personalities : [raid6] \n{line}\n      3932160 blocks super 1.2 level 6, 512k chunk, algorithm 2 [{DRIVES}/{DRIVES}] [{ups}]\n      \nunused devices: <none>\n"
        )
        .as_bytes(),
    );
    put(root, "dev/kmsg", b"");
    let md = "sys/block/md0/md";
    for (name, value) in [
        ("sync_speed", "none".to_string()),
        ("level", "raid6".into()),
        ("degraded", "0".into()),
        ("array_state", "clean".into()),
        ("mismatch_cnt", "0".into()),
        ("sync_action", "idle".into()),
        ("sync_completed", "none".into()),
        ("raid_disks", DRIVES.to_string()),
    ] {
        put(
            root,
            &format!("{md}/{name}"),
            format!("{value}\n").as_bytes(),
        );
    }
    for i in 0..DRIVES {
        let d = disk(i);
        let member = format!("{md}/dev-{d}");
        put(root, &format!("{member}/errors"), b"0\n");
        put(root, &format!("{member}/slot"), format!("{i}\n").as_bytes());
        put(root, &format!("{member}/state"), b"in_sync\n");
        put(root, &format!("{member}/bad_blocks"), b"");
        let b = format!("sys/block/{d}");
        put(root, &format!("{b}/holders/md0/.keep"), b"");
        put(root, &format!("{b}/size"), b"131072\n");
        let serial = format!("SCALE-{i:04}");
        if d.starts_with("nvme") {
            put(
                root,
                &format!("{b}/wwid"),
                format!("nvme.1b36-{i:08x}-00000001\n").as_bytes(),
            );
            put(root, &format!("{b}/device/model"), b"QEMU NVMe Ctrl\n");
            put(root, &format!("{b}/device/firmware_rev"), b"7.2.22\n");
            put(
                root,
                &format!("{b}/device/serial"),
                format!("{serial}\n").as_bytes(),
            );
        } else {
            let vendor: &[u8] = if i % 3 == 1 {
                b"ATA     \n"
            } else {
                b"QEMU    \n"
            };
            put(root, &format!("{b}/device/vendor"), vendor);
            put(root, &format!("{b}/device/model"), b"QEMU HARDDISK   \n");
            put(root, &format!("{b}/device/rev"), b"2.5+\n");
            put(root, &format!("{b}/device/ioerr_cnt"), b"0x0\n");
            put(
                root,
                &format!("{b}/device/wwid"),
                format!("naa.5000c500{i:08x}\n").as_bytes(),
            );
            let mut page = vec![0x00, 0x80, 0x00, serial.len() as u8];
            page.extend_from_slice(serial.as_bytes());
            put(root, &format!("{b}/device/vpd_pg80"), &page);
        }
    }
}

/// A scratch machine with the 60-drive tree and a stand-in `smartctl`
/// (100 ms, then a captured healthy answer of the drive's kind). Each
/// stand-in run that started after `tripped` exists appends one line to
/// `halt-look.log` as it ends: `named` when the journal already names a
/// violation (`halting` or `halted`), `not-yet` otherwise.
fn machine(watch_poll: &str, seconds: u32) -> Test {
    // Generated, then given to the run as its `--sysroot` (a copy).
    let generated = tempfile::tempdir().unwrap();
    tree(generated.path());
    let t = Test::new()
        .in_scratch()
        .tree(generated.path().to_str().unwrap());
    t.write("runbook.toml", &runbook(watch_poll, seconds));
    t.write("answers.toml", "");
    std::fs::create_dir_all(t.state()).unwrap();
    let fixtures = root().join("tests/fixtures/smart");
    let bin = t.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let smartctl = bin.join("smartctl");
    std::fs::write(
        &smartctl,
        format!(
            r#"#!/bin/sh
after=no
[ -e '{tripped}' ] && after=yes
sleep 0.1
if [ "$after" = yes ]; then
  if grep -qs -e '"event":"halting"' -e '"event":"halted"' '{state}'/sessions/*.jsonl; then
    echo named >> '{log}'
  else
    echo not-yet >> '{log}'
  fi
fi
for dev in "$@"; do :; done
case "$dev" in
  /dev/nvme*) cat '{nvme}' ;;
  *) case "$(cat '{tree}'/sys/block/"${{dev#/dev/}}"/device/vendor)" in
       ATA*) cat '{sata}' ;;
       *) cat '{scsi}' ;;
     esac ;;
esac
"#,
            tripped = t.path("tripped").display(),
            state = t.state().display(),
            log = t.path("halt-look.log").display(),
            tree = t.path("tree").display(),
            nvme = fixtures.join("lab-smartctl-nvme-healthy.json").display(),
            sata = fixtures.join("lab-smartctl-sdc.json").display(),
            scsi = fixtures.join("smartctl-sas-healthy-hitachi.json").display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&smartctl, std::fs::Permissions::from_mode(0o755)).unwrap();
    t.config(&format!(
        "path = \"{}:/usr/sbin:/usr/bin:/sbin:/bin\"\n",
        bin.display()
    ));
    t
}

fn run_args() -> [&'static str; 8] {
    [
        "run",
        "runbook.toml",
        "--array",
        "md0",
        "--target",
        "nvme1n1",
        "--answers",
        "answers.toml",
    ]
}

/// Found measuring the halt at 60 drives: the guard's violation was
/// journaled only with `halted`, after the halt's full look had read SMART
/// of every drive (about 0.8 s here, longer with slower drives), so the
/// journal said nothing of the halt while that look ran. Now a `halting`
/// entry names it first.
#[test]
fn regression_at_60_drives_the_violation_is_journaled_before_the_halt_looks_smart() {
    let m = machine("100ms", 50);
    let tree = m.path("tree");
    let tripped = m.path("tripped");
    let mut flipped = false;
    let done = m
        .swapguard(&run_args())
        .run_watching(|line, _| {
            if !flipped && line.contains("$ sleep 50") {
                flipped = true;
                // A SATA survivor's md error counter rises.
                std::fs::write(&tripped, "").unwrap();
                std::fs::write(tree.join("sys/block/md0/md/dev-sda/errors"), "5\n").unwrap();
            }
        })
        .code(3)
        .has("sda");
    assert!(flipped, "the command never ran:\n{}", done.both());

    // The halt look read SMART of every drive; each of those reads ended
    // with the violation already in the journal.
    let asked = std::fs::read_to_string(m.path("halt-look.log")).unwrap_or_default();
    let lines: Vec<&str> = asked.lines().collect();
    assert!(
        lines.len() >= DRIVES,
        "the halt's full look read SMART of {} drives, not all {DRIVES}",
        lines.len()
    );
    assert!(
        lines.iter().all(|l| *l == "named"),
        "SMART of the halt look ended before the journal named the violation: {asked:?}"
    );
    let journal = done.journal();
    let index = |event: &str, label: Option<&str>| {
        journal
            .iter()
            .position(|e| {
                e["event"] == event
                    && label.is_none_or(|l| e["label"].as_str().is_some_and(|s| s.starts_with(l)))
            })
            .unwrap_or_else(|| panic!("no `{event}` entry in the journal:\n{}", done.both()))
    };
    let halting = index("halting", None);
    let look = index("snapshot", Some("halt at"));
    let halted = index("halted", None);
    assert!(
        halting < look && look < halted,
        "journal order: halting {halting}, halt look {look}, halted {halted}"
    );
    let named = &journal[halting];
    assert!(
        named["violations"].to_string().contains("errors"),
        "`halting` does not name the violation: {named}"
    );
    assert!(named["at"].as_str() <= journal[look]["at"].as_str());
    // The look found every drive: its snapshot has them all.
    let drives = journal[look]["snapshot"]["drives"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(drives, DRIVES, "{}", journal[look]);
}

/// A quiet watch over 60 drives looking every 50 ms for 3 s (60 looks)
/// journals what the step's boundaries write and nothing per look.
#[test]
fn a_quiet_60_drive_watch_journals_no_lines_per_look() {
    let m = machine("50ms", 3);
    let done = m.swapguard(&run_args()).run().code(0);
    let journal = done.journal();
    let start = journal
        .iter()
        .position(|e| e["event"] == "step-started")
        .expect("the step started");
    let end = journal
        .iter()
        .position(|e| e["event"] == "step-completed")
        .expect("the step completed");
    let during: Vec<&str> = journal[start + 1..end]
        .iter()
        .map(|e| e["event"].as_str().unwrap_or("?"))
        .collect();
    // The figure for docs/performance.md ("The journal at speed").
    println!(
        "a quiet 3 s step over {DRIVES} drives (about 60 looks) journaled {} lines: {during:?}",
        during.len()
    );
    // The command's output and the step's closing look, nothing per look.
    assert!(
        during.len() <= 3,
        "a quiet watch journaled {} lines: {during:?}",
        during.len()
    );
    assert!(
        !during.contains(&"warning"),
        "a quiet watch warned: {during:?}"
    );
}
