//! Tests of the btrfs personality, driven the way the engine drives a
//! backend: step phases, `wait` in watch-poll slices, commands, snapshots.

use std::path::Path;
use std::time::Duration;

use crate::backend::sim::SimBackend;
use crate::backend::{Backend, CommandOutput, Depth, StepPhase};
use crate::clock::{Clock, SimClock};
use crate::health::model::{Drive, Identity, MemberState, Snapshot};
use crate::runbook::model::{Confirm, DriveExpect, Expectation, OnHalt, Span, Step, StepKind};
use crate::scenario::parse;

const UUID: &str = "f6662368-5c58-464e-ac6a-b5cae38b91ab";

/// A two-device btrfs RAID1 of SATA SSDs in bays 0 and 1, a larger spare on
/// the cart and an NVMe boot disk; `extra` adds tables (events, commands).
fn scenario_text(level: &str, extra: &str) -> String {
    format!(
        r#"
[scenario]
name = "test"
runbook = "../../btrfs-replace-hot.toml"
params = {{ array = "{UUID}", mount = "/mnt/data", target = "sdb" }}

[array]
name = "{UUID}"
mount = "/mnt/data"
level = "{level}"
rebuild_time = "2m"
members = [
  {{ dev = "sda", serial = "S3Z1NB0K100001", model = "SAMSUNG MZ7LH960HAJR-00005", slot = 0, size = "960G" }},
  {{ dev = "sdb", serial = "S3Z1NB0K100002", model = "SAMSUNG MZ7LH960HAJR-00005", slot = 1, size = "960G" }},
]
spares = [
  {{ serial = "S3Z1NB0K900003", model = "SAMSUNG MZ7LH1T9HMLT-00005", slot = 2, size = "1.92T" }},
  {{ serial = "S3Z1NB0K900004", model = "SAMSUNG MZ7LH480HAHQ-00005", size = "480G" }},
]
others = [
  {{ dev = "nvme0n1", serial = "PHBT7410012X128D", size = "128G" }},
]

[expect]
outcome = "completed"
{extra}
"#
    )
}

fn machine(extra: &str) -> (SimBackend, SimClock) {
    machine_at("raid1", extra)
}

fn machine_at(level: &str, extra: &str) -> (SimBackend, SimClock) {
    let text = scenario_text(level, extra);
    let scenario = match parse(Path::new("/s/runbooks/scenarios/x/test.toml"), &text) {
        Ok(s) => s,
        Err(e) => panic!("test scenario does not parse:\n{e}"),
    };
    let clock = SimClock::new();
    let sim = SimBackend::new(scenario.machine("btrfs"), clock.clone()).expect("simulator builds");
    (sim, clock)
}

fn step(id: &str, target: Option<DriveExpect>, new: Option<DriveExpect>) -> Step {
    Step {
        id: id.to_string(),
        kind: StepKind::Physical,
        say: None,
        expect: Expectation {
            target,
            new,
            degraded: None,
        },
        new_drive: None,
        confirm: Confirm::None,
        quarantine: None,
        optional: false,
        timeout: None,
        sign_off: false,
        on_halt: OnHalt::Kill,
        span: Span::default(),
    }
}

fn btrfs(sim: &mut SimBackend, line: &str) -> CommandOutput {
    let argv: Vec<String> = line.split_whitespace().map(String::from).collect();
    sim.execute(&argv, Duration::from_secs(10))
        .expect("btrfs is simulated")
}

fn look(sim: &mut SimBackend) -> Snapshot {
    sim.snapshot(UUID, Depth::Full).expect("snapshot")
}

fn by_name<'a>(snap: &'a Snapshot, devid: &str) -> Option<&'a Drive> {
    snap.drives
        .iter()
        .find(|d| d.member.as_ref().and_then(|m| m.name.as_deref()) == Some(devid))
}

fn dev<'a>(snap: &'a Snapshot, dev: &str) -> Option<&'a Drive> {
    snap.drives.iter().find(|d| d.id.dev == dev)
}

fn run_to(sim: &mut SimBackend, clock: &SimClock, ms: u64) {
    while clock.now_ms() < ms {
        let left = ms - clock.now_ms();
        sim.wait(Duration::from_millis(left.min(250)))
            .expect("wait");
    }
}

fn begin(sim: &mut SimBackend, s: &Step) {
    let target = Identity {
        serial: Some("S3Z1NB0K100002".into()),
        ..Identity::default()
    };
    sim.step_phase(&s.facts(), StepPhase::Began, &target);
}

/// Insert the first spare (sdc, bay 2) the way a physical step does.
fn insert_spare(sim: &mut SimBackend, clock: &SimClock) {
    begin(sim, &step("insert", None, Some(DriveExpect::Present)));
    run_to(sim, clock, clock.now_ms() + 5_000);
}

#[test]
fn devices_are_members_named_by_devid_in_scenario_order() {
    let (mut sim, _) = machine("");
    let snap = look(&mut sim);
    assert_eq!(snap.array.name, UUID);
    assert_eq!(snap.array.level, "raid1");
    assert_eq!(snap.array.state, "data:raid1 metadata:raid1 system:raid1");
    assert_eq!((snap.array.raid_disks, snap.array.degraded), (2, 0));
    assert_eq!(snap.array.redundancy_left, 1);
    assert!(snap.array.running);
    let sda = dev(&snap, "sda").expect("sda");
    let m = sda.member.as_ref().expect("a member");
    assert_eq!(m.name.as_deref(), Some("1"));
    assert_eq!(m.flags, ["in_fs_metadata", "writeable"]);
    assert_eq!(sda.counters.get("btrfs.write_io_errs"), Some(&0));
    assert_eq!(
        by_name(&snap, "2").map(|d| d.id.dev.as_str()),
        Some("sdb"),
        "devid 2 is the second member"
    );
    assert!(dev(&snap, "nvme0n1").is_some_and(|d| d.member.is_none()));
}

#[test]
fn a_pulled_device_is_missing_only_after_btrfs_notices() {
    let (mut sim, clock) =
        machine("[[event]]\nduring = \"pull\"\nafter = \"1s\"\nvanish = \"sdb\"\n");
    begin(&mut sim, &step("pull", None, None));
    run_to(&mut sim, &clock, 1_500);
    let snap = look(&mut sim);
    assert!(
        by_name(&snap, "2").is_none(),
        "gone from the bus, not yet noticed"
    );
    assert_eq!(snap.array.degraded, 0);
    run_to(&mut sim, &clock, 3_100);
    let snap = look(&mut sim);
    let missing = by_name(&snap, "2").expect("btrfs lists devid 2");
    assert!(missing.device_gone(), "no device left to read");
    assert_eq!(missing.state(), Some(MemberState::Faulty));
    assert_eq!(missing.member.as_ref().unwrap().flags, ["missing"]);
    assert_eq!(missing.faults[0].condition, "btrfs.missing");
    assert_eq!(missing.id.size_bytes, Some(960_000_000_000));
    assert_eq!((snap.array.degraded, snap.array.redundancy_left), (1, 0));
}

#[test]
fn degraded_writes_make_single_chunks_that_take_the_redundancy() {
    let (mut sim, clock) = machine("[[event]]\nduring = \"baseline\"\nvanish = \"sdb\"\n");
    let snap = look(&mut sim);
    assert_eq!(snap.array.degraded, 1, "noticed before the baseline");
    assert!(!snap.array.state.contains("single"));
    run_to(&mut sim, &clock, 10_000);
    let snap = look(&mut sim);
    assert_eq!(
        snap.array.state,
        "data:single data:raid1 metadata:single metadata:raid1 system:raid1"
    );
    let df = btrfs(&mut sim, "btrfs filesystem df --raw /mnt/data");
    assert!(df.stdout.contains("Data, single: total="), "{}", df.stdout);
    assert!(
        df.stdout.contains("Metadata, single: total="),
        "{}",
        df.stdout
    );
    // A balance cannot restore raid1 while a device is still missing.
    let out = btrfs(
        &mut sim,
        "btrfs balance start --bg -dconvert=raid1,soft -mconvert=raid1,soft /mnt/data",
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("error during balancing"),
        "{}",
        out.stderr
    );
}

#[test]
fn hot_replace_keeps_every_copy_then_takes_the_devid() {
    let (mut sim, clock) = machine("");
    insert_spare(&mut sim, &clock);
    let snap = look(&mut sim);
    assert!(dev(&snap, "sdc").is_some_and(|d| d.member.is_none()));
    let out = btrfs(&mut sim, "btrfs replace start -r 2 /dev/sdc /mnt/data");
    assert_eq!(out.code, Some(0), "{out:?}");
    let snap = look(&mut sim);
    let new = dev(&snap, "sdc").expect("sdc");
    assert_eq!(new.state(), Some(MemberState::Rebuilding));
    assert_eq!(new.member.as_ref().unwrap().name.as_deref(), Some("0"));
    assert!(
        new.member
            .as_ref()
            .unwrap()
            .flags
            .contains(&"replace_target".to_string())
    );
    assert_eq!(
        dev(&snap, "sdb").and_then(Drive::state),
        Some(MemberState::InSync)
    );
    assert_eq!((snap.array.raid_disks, snap.array.degraded), (2, 0));
    assert_eq!(
        snap.array.sync.as_ref().map(|s| s.action.as_str()),
        Some("replace")
    );
    // Busy: a second replace or a balance is refused.
    let again = btrfs(&mut sim, "btrfs replace start -r 1 /dev/sdc /mnt/data");
    assert_eq!(again.code, Some(1));
    run_to(&mut sim, &clock, clock.now_ms() + 60_000);
    let half = btrfs(&mut sim, "btrfs replace status -1 /mnt/data");
    assert_eq!(
        half.stdout,
        "50.0% done, 0 write errs, 0 uncorr. read errs\n"
    );
    run_to(&mut sim, &clock, clock.now_ms() + 60_000);
    let snap = look(&mut sim);
    assert_eq!(snap.array.sync, None);
    assert_eq!(by_name(&snap, "2").map(|d| d.id.dev.as_str()), Some("sdc"));
    assert!(
        dev(&snap, "sdb").is_some_and(|d| d.member.is_none()),
        "left the file system"
    );
    assert_eq!(snap.array.redundancy_left, 1);
    let done = btrfs(&mut sim, "btrfs replace status -1 /mnt/data");
    assert_eq!(
        done.stdout,
        "Started on  1.Jan 00:00:05, finished on  1.Jan 00:02:05, 0 write errs, 0 uncorr. read errs\n"
    );
    let parsed = crate::backend::btrfs::progs::parse_replace_status(&done.stdout);
    assert!(
        matches!(
            parsed,
            Ok(crate::backend::btrfs::progs::ReplaceStatus::Finished { .. })
        ),
        "{parsed:?}"
    );
    let grow = btrfs(&mut sim, "btrfs filesystem resize 2:max /mnt/data");
    assert_eq!(
        grow.stdout,
        "Resize device id 2 (/dev/sdc) from 894.07GiB to max\n"
    );
}

#[test]
fn replace_refuses_a_small_used_or_unknown_target() {
    let (mut sim, clock) = machine("");
    insert_spare(&mut sim, &clock);
    let cases = [
        ("btrfs replace start 2 /dev/sda /mnt/data", "is mounted"),
        (
            "btrfs replace start 7 /dev/sdc /mnt/data",
            "not a valid devid",
        ),
        (
            "btrfs replace start 2 /dev/sdz /mnt/data",
            "cannot open /dev/sdz",
        ),
        (
            "btrfs replace start 2 /dev/sdc /mnt/other",
            "not a btrfs filesystem",
        ),
    ];
    for (line, want) in cases {
        let out = btrfs(&mut sim, line);
        assert_eq!(out.code, Some(1), "{line}");
        assert!(out.stderr.contains(want), "{line}: {}", out.stderr);
    }
    // The 480G drive is too small for a 960G device.
    begin(&mut sim, &step("insert2", None, Some(DriveExpect::Present)));
    run_to(&mut sim, &clock, clock.now_ms() + 5_000);
    let out = btrfs(&mut sim, "btrfs replace start 2 /dev/sdd /mnt/data");
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("target device smaller than source device"),
        "{}",
        out.stderr
    );
    assert_eq!(look(&mut sim).array.sync, None, "nothing started");
}

#[test]
fn missing_devid_is_rebuilt_then_balance_converts_single_chunks() {
    let (mut sim, clock) = machine("[[event]]\nduring = \"baseline\"\nvanish = \"sdb\"\n");
    insert_spare(&mut sim, &clock);
    let out = btrfs(&mut sim, "btrfs replace start 2 /dev/sdb /mnt/data");
    assert_eq!(out.code, Some(0), "{out:?}");
    // Ten seconds after the loss, short of devices: single chunks.
    run_to(&mut sim, &clock, 130_000);
    let snap = look(&mut sim);
    assert_eq!(snap.array.degraded, 0, "devid 2 is back");
    assert!(
        snap.array.state.contains("data:single"),
        "{}",
        snap.array.state
    );
    assert_eq!(
        snap.array.redundancy_left, 0,
        "the single data has one copy"
    );
    let out = btrfs(
        &mut sim,
        "btrfs balance start --bg -dconvert=raid1,soft -mconvert=raid1,soft /mnt/data",
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let status = btrfs(&mut sim, "btrfs balance status /mnt/data");
    assert_eq!(status.code, Some(1));
    assert!(
        matches!(
            crate::backend::btrfs::progs::parse_balance_status(&status.stdout, 1),
            Ok(crate::backend::btrfs::progs::BalanceStatus::Running { .. })
        ),
        "{}",
        status.stdout
    );
    assert_eq!(
        look(&mut sim).array.sync.map(|s| s.action),
        Some("balance".into())
    );
    run_to(&mut sim, &clock, clock.now_ms() + 40_000);
    let snap = look(&mut sim);
    assert_eq!(snap.array.state, "data:raid1 metadata:raid1 system:raid1");
    assert_eq!(
        (snap.array.redundancy_left, snap.array.sync.is_none()),
        (1, true)
    );
    let status = btrfs(&mut sim, "btrfs balance status /mnt/data");
    assert_eq!(
        (status.code, status.stdout.as_str()),
        (Some(0), "No balance found on '/mnt/data'\n")
    );
}

#[test]
fn foreground_commands_run_until_the_work_ends() {
    let (mut sim, clock) = machine("[[event]]\nduring = \"baseline\"\nvanish = \"sdb\"\n");
    insert_spare(&mut sim, &clock);
    let argv: Vec<String> = "btrfs replace start -B 2 /dev/sdb /mnt/data"
        .split_whitespace()
        .map(String::from)
        .collect();
    let mut running = sim
        .start(&argv, Duration::from_secs(86_400))
        .expect("starts");
    assert!(
        running.try_finish().expect("poll").is_none(),
        "runs while the copy runs"
    );
    run_to(&mut sim, &clock, clock.now_ms() + 120_000);
    let out = running
        .try_finish()
        .expect("poll")
        .expect("ended with the copy");
    assert_eq!(out.code, Some(0));
}

#[test]
fn survivor_counters_belong_to_its_device_and_show_as_faults() {
    let (mut sim, clock) = machine(
        "[[event]]\nduring = \"copy\"\nafter = \"2s\"\nset = { \"sda.btrfs.corruption_errs\" = 4 }\n",
    );
    begin(&mut sim, &step("copy", None, None));
    run_to(&mut sim, &clock, 2_000);
    let snap = look(&mut sim);
    let sda = dev(&snap, "sda").expect("sda");
    assert_eq!(sda.counters.get("btrfs.corruption_errs"), Some(&4));
    assert_eq!(sda.faults[0].condition, "btrfs.corruption_errs");
    let stats = btrfs(&mut sim, "btrfs device stats -c /mnt/data");
    assert_eq!(stats.code, Some(64), "-c: a counter above zero");
    assert!(
        stats.stdout.contains("[/dev/sda].corruption_errs  4"),
        "{}",
        stats.stdout
    );
}

#[test]
fn unmodelled_btrfs_commands_are_errors_not_successes() {
    let (mut sim, _) = machine("");
    for line in [
        "btrfs scrub start /mnt/data",
        "btrfs device add /dev/sdc /mnt/data",
        "btrfs balance start -dconvert=raid1,soft /mnt/data --full-balance",
        "btrfs balance start -dconvert=single /mnt/data",
        "btrfs filesystem resize 2:+10G /mnt/data",
        "btrfs",
    ] {
        let argv: Vec<String> = line.split_whitespace().map(String::from).collect();
        let err = sim.execute(&argv, Duration::from_secs(10)).unwrap_err();
        assert!(
            format!("{err:#}").contains("[[command]]") || format!("{err:#}").contains("models"),
            "{line}: {err:#}"
        );
    }
}

#[test]
fn the_scenario_must_name_the_file_system_by_uuid_with_a_mount_point() {
    for (text, want) in [
        (
            scenario_text("raid1", "").replace(&format!("name = \"{UUID}\""), "name = \"data\""),
            "UUID",
        ),
        (
            scenario_text("raid1", "").replace("mount = \"/mnt/data\"\n", ""),
            "needs `mount`",
        ),
        (scenario_text("raid5", ""), "not `raid5`"),
    ] {
        let scenario = parse(Path::new("/s/runbooks/scenarios/x/t.toml"), &text).expect("parses");
        let err = SimBackend::new(scenario.machine("btrfs"), SimClock::new())
            .err()
            .expect("refused");
        assert!(format!("{err:#}").contains(want), "{err:#}");
    }
    let md = parse(
        Path::new("/s/runbooks/scenarios/x/t.toml"),
        &scenario_text("raid1c3", ""),
    )
    .expect("parses");
    let err = SimBackend::new(md.machine("md"), SimClock::new())
        .err()
        .expect("md refuses");
    assert!(format!("{err:#}").contains("raid1c3"), "{err:#}");
}

#[test]
fn a_target_can_be_named_by_devid_even_when_its_device_is_gone() {
    let (mut sim, _) = machine("[[event]]\nduring = \"baseline\"\nvanish = \"sdb\"\n");
    let snap = look(&mut sim);
    let found = snap.find("2");
    assert_eq!(found.len(), 1, "devid 2 names one member");
    assert!(found[0].device_gone());
    assert!(
        found[0].key().is_weak(),
        "nothing identifies a missing device"
    );
    assert_eq!(
        found[0].id.describe(),
        "a missing device (serial unknown, bay unknown)"
    );
    assert_eq!(snap.find("1")[0].id.dev, "sda");
    assert!(snap.find("3").is_empty());
}
