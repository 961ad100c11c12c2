//! Tests of the simulated hardware, mdadm and technician, driven the way the
//! engine drives a backend: step phases, `wait` in watch-poll slices, and
//! snapshots.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::health::model::{Drive, MemberState, Smart};
use crate::runbook::model::{Confirm, Expectation, Span};
use crate::runbook::model::{Step, StepKind};
use crate::scenario::parse;

/// A two-drive raid1 of 960G SSDs in bays 0 and 1, a spare on the cart and
/// an NVMe boot disk; `extra` adds tables (events, commands).
fn scenario_text(extra: &str) -> String {
    format!(
        r#"
[scenario]
name = "test"
runbook = "../../md-replace-member.toml"
params = {{ array = "md0", target = "sdb" }}

[array]
name = "md0"
level = "raid1"
rebuild_time = "2m"
members = [
  {{ dev = "sda", serial = "S3Z1NB0K100001", model = "SAMSUNG MZ7LH960HAJR-00005", slot = 0, size = "960G" }},
  {{ dev = "sdb", serial = "S3Z1NB0K100002", model = "SAMSUNG MZ7LH960HAJR-00005", slot = 1, size = "960G" }},
]
spares = [
  {{ serial = "S3Z1NB0K900003", model = "SAMSUNG MZ7LH960HAJR-00005", size = "960G" }},
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
    let text = scenario_text(extra);
    let scenario = match parse(Path::new("/s/runbooks/scenarios/x/test.toml"), &text) {
        Ok(s) => s,
        Err(e) => panic!("test scenario does not parse:\n{e}"),
    };
    let clock = SimClock::new();
    let sim = SimBackend::new(scenario.machine("md"), clock.clone()).expect("simulator builds");
    (sim, clock)
}

fn step(id: &str, kind: StepKind, target: Option<DriveExpect>, new: Option<DriveExpect>) -> Step {
    Step {
        id: id.to_string(),
        kind,
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
        on_halt: crate::runbook::model::OnHalt::Kill,
        span: Span::default(),
    }
}

fn pull_step() -> Step {
    step("pull", StepKind::Physical, Some(DriveExpect::Absent), None)
}

fn insert_step() -> Step {
    step(
        "insert",
        StepKind::Physical,
        None,
        Some(DriveExpect::Present),
    )
}

fn mdadm(sim: &mut SimBackend, line: &str) -> CommandOutput {
    let argv: Vec<String> = line.split_whitespace().map(String::from).collect();
    sim.execute(&argv, Duration::from_secs(10))
        .expect("mdadm is simulated")
}

fn look(sim: &mut SimBackend) -> Snapshot {
    sim.snapshot("md0", Depth::Full).expect("snapshot")
}

fn drive<'a>(snap: &'a Snapshot, dev: &str) -> Option<&'a Drive> {
    snap.drives.iter().find(|d| d.id.dev == dev)
}

fn state(snap: &Snapshot, dev: &str) -> Option<MemberState> {
    drive(snap, dev).and_then(Drive::state)
}

/// Poll like the engine's watch loop until the clock reaches `ms`.
fn run_to(sim: &mut SimBackend, clock: &SimClock, ms: u64) {
    while clock.now_ms() < ms {
        let left = ms - clock.now_ms();
        sim.wait(Duration::from_millis(left.min(250)))
            .expect("wait");
    }
}

fn target(sim: &mut SimBackend) -> Identity {
    let snap = look(sim);
    drive(&snap, "sdb").expect("sdb present").id.clone()
}

#[test]
fn baseline_looks_like_a_healthy_mirror() {
    let (mut sim, _) = machine("");
    let snap = look(&mut sim);
    assert_eq!(snap.array.name, "md0");
    assert_eq!(snap.array.level, "raid1");
    assert_eq!(snap.array.state, "clean");
    assert_eq!((snap.array.raid_disks, snap.array.degraded), (2, 0));
    assert_eq!(snap.array.sync, None);
    let devs: Vec<&str> = snap.drives.iter().map(|d| d.id.dev.as_str()).collect();
    assert_eq!(
        devs,
        ["sda", "sdb", "nvme0n1"],
        "members by role, then the rest"
    );
    let sda = drive(&snap, "sda").expect("sda");
    let m = sda.member.as_ref().expect("member");
    assert_eq!(
        (m.state, m.role, m.flags.clone()),
        (MemberState::InSync, Some(0), vec!["in_sync".to_string()])
    );
    assert_eq!(sda.counters.get("md.errors"), Some(&0));
    assert_eq!(sda.counters.get("md.bad_blocks"), Some(&0));
    assert_eq!(sda.id.slot.as_deref(), Some("0"));
    assert_eq!(sda.id.size_bytes, Some(960_000_000_000));
    assert_eq!(
        sda.id.by_id.as_deref(),
        Some("ata-SAMSUNG_MZ7LH960HAJR-00005_S3Z1NB0K100001")
    );
    assert_eq!(sda.blank, Some(false));
    match &sda.smart {
        Some(Smart::Read { passed, counters }) => {
            assert!(passed);
            assert_eq!(counters.get("smart.current_pending_sector"), Some(&0));
            assert!(!counters.contains_key("md.errors"));
        }
        other => panic!("expected SMART read, got {other:?}"),
    }
    let boot = drive(&snap, "nvme0n1").expect("boot disk");
    assert_eq!(boot.member, None);
    assert!(!boot.counters.contains_key("md.errors"));
    assert_eq!(sim.arrays().expect("arrays"), ["md0"]);
    assert_eq!(sim.name(), "sim");
}

#[test]
fn fast_looks_leave_out_smart_and_blankness() {
    let (mut sim, _) = machine("");
    let snap = sim.snapshot("md0", Depth::Fast).expect("snapshot");
    for d in &snap.drives {
        assert_eq!((&d.smart, d.blank), (&None, None), "{}", d.id.dev);
        assert!(
            d.counters
                .keys()
                .all(|k| !k.starts_with("smart.") && !k.starts_with("nvme."))
        );
    }
    assert!(sim.snapshot("md1", Depth::Fast).is_err(), "unknown array");
}

#[test]
fn mdadm_ops_and_their_refusals() {
    // (commands run first, the command under test, exit code, stderr)
    let cases: &[(&[&str], &str, i32, &str)] = &[
        (
            &[],
            "mdadm /dev/md0 --fail /dev/sdb",
            0,
            "mdadm: set /dev/sdb faulty in /dev/md0\n",
        ),
        (
            &[],
            "mdadm --manage /dev/md0 -f /dev/sdb",
            0,
            "mdadm: set /dev/sdb faulty in /dev/md0\n",
        ),
        (
            &[],
            "mdadm /dev/md0 --fail /dev/nvme0n1",
            1,
            "mdadm: set device faulty failed for /dev/nvme0n1:  No such device\n",
        ),
        (
            &["mdadm /dev/md0 --fail /dev/sdb"],
            "mdadm /dev/md0 --fail /dev/sda",
            1,
            "mdadm: set device faulty failed for /dev/sda:  Device or resource busy\n",
        ),
        (
            &[],
            "mdadm /dev/md0 --remove /dev/sdb",
            1,
            "mdadm: hot remove failed for /dev/sdb: Device or resource busy\n",
        ),
        (
            &["mdadm /dev/md0 --fail /dev/sdb"],
            "mdadm /dev/md0 --remove /dev/sdb",
            0,
            "mdadm: hot removed /dev/sdb from /dev/md0\n",
        ),
        (
            &[],
            "mdadm /dev/md0 --fail /dev/sdb --remove /dev/sdb",
            0,
            "mdadm: set /dev/sdb faulty in /dev/md0\nmdadm: hot removed /dev/sdb from /dev/md0\n",
        ),
        (
            &["mdadm /dev/md0 --fail /dev/sdb"],
            "mdadm /dev/md0 --remove failed",
            0,
            "mdadm: hot removed /dev/sdb from /dev/md0\n",
        ),
        (
            &[],
            "mdadm /dev/md0 --remove /dev/nvme0n1",
            1,
            "mdadm: hot remove failed for /dev/nvme0n1: No such device or address\n",
        ),
        (
            &[],
            "mdadm /dev/md0 --fail /dev/sdz",
            1,
            "mdadm: Cannot find /dev/sdz: No such file or directory\n",
        ),
        (
            &[],
            "mdadm /dev/md0 --fail sdb",
            1,
            "mdadm: Cannot find sdb: No such file or directory\n",
        ),
        (
            &[],
            "mdadm /dev/md1 --fail /dev/sdb",
            1,
            "mdadm: error opening /dev/md1: No such file or directory\n",
        ),
        (
            &[],
            "mdadm /dev/md0 --add /dev/sda",
            1,
            "mdadm: Cannot open /dev/sda: Device or resource busy\n",
        ),
        (
            &[],
            "mdadm /dev/md0 --add /dev/sdz",
            1,
            "mdadm: Cannot find /dev/sdz: No such file or directory\n",
        ),
        (
            &["mdadm /dev/md0 --fail /dev/sdb --remove /dev/sdb"],
            "mdadm /dev/md0 --add /dev/sdb",
            1,
            "mdadm: /dev/sdb reports being an active member for /dev/md0, but a --re-add fails.\n",
        ),
        (
            &["mdadm /dev/md0 --fail /dev/sdb --remove /dev/sdb"],
            "mdadm /dev/md0 --re-add /dev/sdb",
            0,
            "mdadm: re-added /dev/sdb\n",
        ),
        (
            &[],
            "mdadm /dev/md0 --re-add /dev/nvme0n1",
            1,
            "mdadm: --re-add for /dev/nvme0n1 to /dev/md0 is not possible\n",
        ),
        (
            &[],
            "mdadm /dev/md0 --fail /dev/sdb --bogus /dev/sdb",
            2,
            "mdadm: set /dev/sdb faulty in /dev/md0\nmdadm: unrecognized option '--bogus'\n",
        ),
        (&[], "mdadm /dev/md0 /dev/sdb", 1, "no operation given"),
        (
            &[],
            "mdadm /dev/md0 --replace /dev/nvme0n1",
            1,
            "mdadm: /dev/nvme0n1 is not a member of /dev/md0\n",
        ),
        (
            &[],
            "mdadm /dev/md0 --with /dev/nvme0n1",
            1,
            "mdadm: --with must follow --replace\n",
        ),
        (
            &[],
            "mdadm /dev/md0 --replace /dev/sdb --with /dev/nvme0n1",
            1,
            "is not a spare in /dev/md0",
        ),
        (
            &[],
            "mdadm /dev/md0 --replace /dev/sdb",
            0,
            "mdadm: Marked /dev/sdb (device 1 in /dev/md0) for replacement\n",
        ),
    ];
    for (before, line, code, stderr) in cases {
        let (mut sim, _) = machine("");
        for b in *before {
            assert_eq!(mdadm(&mut sim, b).code, Some(0), "setup `{b}`");
        }
        let out = mdadm(&mut sim, line);
        assert_eq!(out.code, Some(*code), "`{line}`: {}", out.stderr);
        assert!(
            out.stderr.starts_with(stderr) || out.stderr.contains(stderr),
            "`{line}`: got {:?}",
            out.stderr
        );
        assert_eq!(out.stdout, "", "`{line}`");
        assert_eq!(out.argv.join(" "), *line);
    }
}

#[test]
fn fail_and_remove_change_the_array_like_md() {
    let (mut sim, _) = machine("");
    mdadm(&mut sim, "mdadm /dev/md0 --fail /dev/sdb");
    let snap = look(&mut sim);
    assert_eq!(snap.array.degraded, 1);
    let sdb = drive(&snap, "sdb")
        .and_then(|d| d.member.clone())
        .expect("still a member");
    assert_eq!(
        (sdb.state, sdb.role, sdb.flags),
        (MemberState::Faulty, None, vec!["faulty".to_string()])
    );
    mdadm(&mut sim, "mdadm /dev/md0 --remove /dev/sdb");
    let snap = look(&mut sim);
    let sdb = drive(&snap, "sdb").expect("still present");
    assert_eq!(sdb.member, None);
    assert!(
        !sdb.counters.contains_key("md.errors"),
        "no dev-sdb in sysfs any more"
    );
    assert_eq!(snap.array.degraded, 1);
}

#[test]
fn failing_the_last_mirror_breaks_the_array_but_keeps_the_member() {
    let (mut sim, _) = machine("");
    mdadm(&mut sim, "mdadm /dev/md0 --fail /dev/sdb --remove /dev/sdb");
    let out = mdadm(&mut sim, "mdadm /dev/md0 --fail /dev/sda");
    assert_eq!(out.code, Some(1));
    let snap = look(&mut sim);
    assert_eq!(snap.array.state, "broken");
    assert_eq!(state(&snap, "sda"), Some(MemberState::InSync));
}

#[test]
fn a_pulled_member_turns_faulty_two_seconds_later() {
    let (mut sim, clock) = machine("");
    let sdb = target(&mut sim);
    sim.step_phase(&pull_step().facts(), StepPhase::Began, &sdb);
    run_to(&mut sim, &clock, 4_750);
    assert!(drive(&look(&mut sim), "sdb").is_some(), "not pulled yet");
    run_to(&mut sim, &clock, 5_000);
    let snap = look(&mut sim);
    assert!(
        drive(&snap, "sdb").is_none(),
        "an absent drive is not in the snapshot"
    );
    assert_eq!(snap.array.degraded, 0, "md has not noticed yet: [UU]");
    run_to(&mut sim, &clock, 6_750);
    assert_eq!(look(&mut sim).array.degraded, 0);
    run_to(&mut sim, &clock, 7_000);
    assert_eq!(
        look(&mut sim).array.degraded,
        1,
        "md noticed at the next write"
    );
    sim.step_phase(&pull_step().facts(), StepPhase::Ended, &sdb);
    let log = sim.take_log();
    assert_eq!(
        log,
        [
            "[sim 00:00:05] technician pulled sdb (serial S3Z1NB0K100002, bay 1)",
            "[sim 00:00:07] md noticed at the next write that sdb (serial S3Z1NB0K100002, bay 1) is gone",
            "[sim 00:00:07] md marked sdb (serial S3Z1NB0K100002, bay 1) faulty in md0",
        ]
    );
    assert!(sim.take_log().is_empty(), "the log is taken once");
    let out = mdadm(&mut sim, "mdadm /dev/md0 --fail detached --remove detached");
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            Some(0),
            "mdadm: set 8:16 faulty in /dev/md0\nmdadm: hot removed 8:16 from /dev/md0\n"
        )
    );
}

#[test]
fn a_detached_member_that_is_still_in_sync_cannot_be_removed() {
    let (mut sim, clock) = machine("");
    let sdb = target(&mut sim);
    sim.step_phase(&pull_step().facts(), StepPhase::Began, &sdb);
    run_to(&mut sim, &clock, 5_000);
    let out = mdadm(&mut sim, "mdadm /dev/md0 --remove detached");
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        "mdadm: hot remove failed for 8:16: Device or resource busy\n"
    );
    let out = mdadm(&mut sim, "mdadm /dev/md0 --fail /dev/sdb");
    assert_eq!(
        out.stderr,
        "mdadm: Cannot find /dev/sdb: No such file or directory\n"
    );
}

/// The member runbook up to `add`: fail, remove, pull, insert.
fn swap_to_insert(sim: &mut SimBackend, clock: &SimClock) -> Identity {
    let sdb = target(sim);
    assert_eq!(mdadm(sim, "mdadm /dev/md0 --fail /dev/sdb").code, Some(0));
    assert_eq!(mdadm(sim, "mdadm /dev/md0 --remove /dev/sdb").code, Some(0));
    sim.step_phase(&pull_step().facts(), StepPhase::Began, &sdb);
    run_to(sim, clock, 5_000);
    sim.step_phase(&pull_step().facts(), StepPhase::Ended, &sdb);
    sim.step_phase(&insert_step().facts(), StepPhase::Began, &sdb);
    run_to(sim, clock, 10_000);
    sim.step_phase(&insert_step().facts(), StepPhase::Ended, &sdb);
    sdb
}

#[test]
fn an_inserted_drive_takes_the_pulled_drives_name_and_bay() {
    let (mut sim, clock) = machine("");
    swap_to_insert(&mut sim, &clock);
    let snap = look(&mut sim);
    let new = drive(&snap, "sdb").expect("the new drive came up as sdb");
    assert_eq!(new.id.serial.as_deref(), Some("S3Z1NB0K900003"));
    assert_eq!(new.id.slot.as_deref(), Some("1"));
    assert_eq!((new.member.clone(), new.blank), (None, Some(true)));
    assert_eq!(
        sim.take_log().last().map(String::as_str),
        Some("[sim 00:00:10] technician inserted sdb (serial S3Z1NB0K900003, bay 1)")
    );
}

#[test]
fn recovery_advances_with_the_clock_and_completes() {
    let (mut sim, clock) = machine("");
    swap_to_insert(&mut sim, &clock);
    let out = mdadm(&mut sim, "mdadm /dev/md0 --add /dev/sdb");
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (Some(0), "mdadm: added /dev/sdb\n")
    );
    let total = 960_000_000_000 / 512;
    // (seconds after the add, sectors done, member state, degraded)
    let cases = [
        (0, 0, MemberState::Rebuilding, 1),
        (30, total / 4, MemberState::Rebuilding, 1),
        (60, total / 2, MemberState::Rebuilding, 1),
        (119, total * 119 / 120, MemberState::Rebuilding, 1),
    ];
    for (secs, done, member, degraded) in cases {
        run_to(&mut sim, &clock, 10_000 + secs * 1000);
        let snap = look(&mut sim);
        let sync = snap.array.sync.clone().expect("recovery running");
        assert_eq!(
            (sync.action.as_str(), sync.done, sync.total),
            ("recover", done, total),
            "{secs}s"
        );
        assert_eq!(sync.speed_kib, Some(total / 2 / 120));
        let m = drive(&snap, "sdb")
            .and_then(|d| d.member.clone())
            .expect("member");
        assert_eq!(
            (m.state, m.role, m.flags),
            (member, Some(1), vec!["spare".to_string()])
        );
        assert_eq!(snap.array.degraded, degraded);
        assert!(drive(&snap, "sdb").expect("sdb").blank == Some(false));
    }
    run_to(&mut sim, &clock, 130_000);
    let snap = look(&mut sim);
    assert_eq!((snap.array.sync.clone(), snap.array.degraded), (None, 0));
    assert_eq!(state(&snap, "sdb"), Some(MemberState::InSync));
    assert!(
        sim.take_log().iter().any(|l| l
            == "[sim 00:02:10] md finished recovery: sdb (serial S3Z1NB0K900003, bay 1) in sync")
    );
}

#[test]
fn a_drive_too_small_is_refused_by_mdadm() {
    let (mut sim, clock) = machine(
        r#"
[[event]]
during = "insert"
after = "5s"
insert = "S3Z1NB0K900004"
"#,
    );
    swap_to_insert(&mut sim, &clock);
    let snap = look(&mut sim);
    let new = drive(&snap, "sdb").expect("sdb");
    assert_eq!(new.id.size_bytes, Some(480_000_000_000));
    let out = mdadm(&mut sim, "mdadm /dev/md0 --add /dev/sdb");
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (Some(1), "mdadm: /dev/sdb not large enough to join array\n")
    );
}

#[test]
fn a_replacement_copy_never_degrades_the_array() {
    let (mut sim, clock) = machine("");
    let sdb = target(&mut sim);
    sim.step_phase(&insert_step().facts(), StepPhase::Began, &sdb);
    run_to(&mut sim, &clock, 5_000);
    sim.step_phase(&insert_step().facts(), StepPhase::Ended, &sdb);
    let snap = look(&mut sim);
    let new = drive(&snap, "sdc").expect("no bay was emptied: the new drive is sdc");
    assert_eq!(new.id.slot.as_deref(), Some("2"), "the lowest free bay");
    let out = mdadm(
        &mut sim,
        "mdadm /dev/md0 --add /dev/sdc --replace /dev/sdb --with /dev/sdc",
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "mdadm: added /dev/sdc\nmdadm: Marked /dev/sdb (device 1 in /dev/md0) for replacement\nmdadm: Marked /dev/sdc in /dev/md0 as replacement for device 1\n"
    );
    let snap = look(&mut sim);
    let m = drive(&snap, "sdc")
        .and_then(|d| d.member.clone())
        .expect("member");
    assert_eq!((m.state, m.role), (MemberState::Rebuilding, Some(1)));
    assert_eq!(m.flags, ["spare", "replacement"]);
    let old = drive(&snap, "sdb")
        .and_then(|d| d.member.clone())
        .expect("member");
    assert_eq!(old.flags, ["in_sync", "want_replacement"]);
    while clock.now_ms() < 130_000 {
        sim.wait(Duration::from_millis(250)).expect("wait");
        let snap = sim.snapshot("md0", Depth::Fast).expect("snapshot");
        assert_eq!(snap.array.degraded, 0, "at {} ms", clock.now_ms());
    }
    let snap = look(&mut sim);
    assert_eq!(snap.array.sync, None);
    assert_eq!(state(&snap, "sdc"), Some(MemberState::InSync));
    assert_eq!(
        drive(&snap, "sdc")
            .and_then(|d| d.member.as_ref())
            .and_then(|m| m.role),
        Some(1)
    );
    assert_eq!(state(&snap, "sdb"), Some(MemberState::Faulty));
    let out = mdadm(&mut sim, "mdadm /dev/md0 --remove /dev/sdb");
    assert_eq!(out.code, Some(0));
    assert_eq!(look(&mut sim).array.degraded, 0);
}

#[test]
fn replace_without_with_uses_a_spare() {
    let (mut sim, clock) = machine("");
    let sdb = target(&mut sim);
    sim.step_phase(&insert_step().facts(), StepPhase::Began, &sdb);
    run_to(&mut sim, &clock, 5_000);
    mdadm(&mut sim, "mdadm /dev/md0 --add /dev/sdc");
    assert_eq!(
        state(&look(&mut sim), "sdc"),
        Some(MemberState::Spare),
        "a whole array takes a spare"
    );
    mdadm(&mut sim, "mdadm /dev/md0 --replace /dev/sdb");
    assert_eq!(state(&look(&mut sim), "sdc"), Some(MemberState::Rebuilding));
}

#[test]
fn events_fire_at_their_simulated_time() {
    let (mut sim, clock) = machine(
        r#"
[[event]]
during = "pull"
after = "3s"
set = { "sda.smart.current_pending_sector" = 8, "sda.md.errors" = 3 }
"#,
    );
    let sdb = target(&mut sim);
    run_to(&mut sim, &clock, 1_000);
    sim.step_phase(&pull_step().facts(), StepPhase::Began, &sdb);
    sim.wait(Duration::from_secs(10)).expect("wait");
    assert_eq!(clock.now_ms(), 4_000, "wait returns when something happens");
    let snap = look(&mut sim);
    let sda = drive(&snap, "sda").expect("sda");
    assert_eq!(sda.counters.get("md.errors"), Some(&3));
    match &sda.smart {
        Some(Smart::Read { counters, .. }) => {
            assert_eq!(counters.get("smart.current_pending_sector"), Some(&8));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        sim.take_log(),
        [
            "[sim 00:00:04] event 1: sda (serial S3Z1NB0K100001, bay 0): md.errors 0 → 3",
            "[sim 00:00:04] event 1: sda (serial S3Z1NB0K100001, bay 0): smart.current_pending_sector 0 → 8",
        ]
    );
}

#[test]
fn an_event_that_pulls_replaces_the_technicians_pull() {
    let (mut sim, clock) = machine(
        r#"
[[event]]
during = "pull"
after = "5s"
pull = "sda"
"#,
    );
    let sdb = target(&mut sim);
    sim.step_phase(&pull_step().facts(), StepPhase::Began, &sdb);
    run_to(&mut sim, &clock, 20_000);
    let snap = look(&mut sim);
    assert!(drive(&snap, "sda").is_none(), "the survivor was pulled");
    assert_eq!(
        state(&snap, "sdb"),
        Some(MemberState::InSync),
        "the target stayed in"
    );
    assert_eq!(snap.array.degraded, 1, "md noticed sda gone");
}

#[test]
fn a_survivor_failing_during_recovery_breaks_the_array() {
    let (mut sim, clock) = machine(
        r#"
[[event]]
during = "rebuild"
after = "20s"
fail = "sda"
"#,
    );
    swap_to_insert(&mut sim, &clock);
    mdadm(&mut sim, "mdadm /dev/md0 --add /dev/sdb");
    let rebuild = step(
        "rebuild",
        StepKind::Wait {
            until: crate::runbook::model::WaitUntil::InSync,
        },
        None,
        None,
    );
    let id = target(&mut sim);
    sim.step_phase(&rebuild.facts(), StepPhase::Began, &id);
    run_to(&mut sim, &clock, 30_000);
    let snap = look(&mut sim);
    assert_eq!(snap.array.state, "broken");
    assert_eq!(snap.array.sync, None, "recovery aborted");
    assert_eq!(
        state(&snap, "sda"),
        Some(MemberState::InSync),
        "md keeps the last mirror"
    );
    assert_eq!(state(&snap, "sdb"), Some(MemberState::Spare));
}

#[test]
fn flags_smart_failure_and_vanishing() {
    let (mut sim, clock) = machine(
        r#"
[[event]]
during = "pull"
flags = { sda = ["write_error", "want_replacement"] }
smart_failed = "sda"
vanish = "nvme0n1"
"#,
    );
    let sdb = target(&mut sim);
    sim.step_phase(&pull_step().facts(), StepPhase::Began, &sdb);
    run_to(&mut sim, &clock, 1_000);
    let snap = look(&mut sim);
    let sda = drive(&snap, "sda").expect("sda");
    let m = sda.member.clone().expect("member");
    assert_eq!(
        m.state,
        MemberState::InSync,
        "write errors do not make md call it faulty"
    );
    assert_eq!(m.flags, ["in_sync", "write_error", "want_replacement"]);
    assert!(matches!(sda.smart, Some(Smart::Read { passed: false, .. })));
    assert!(drive(&snap, "nvme0n1").is_none());
}

#[test]
fn unreadable_probes_are_never_healthy() {
    let (mut sim, _) = machine(
        r#"
[[event]]
during = "baseline"
unreadable = ["sda.smart", "sdb.counters"]
"#,
    );
    let snap = look(&mut sim);
    assert!(matches!(
        drive(&snap, "sda").and_then(|d| d.smart.clone()),
        Some(Smart::Unreadable { .. })
    ));
    let sdb = drive(&snap, "sdb").expect("sdb");
    assert!(sdb.counters.is_empty());
    assert_eq!(snap.problems.len(), 1);
    assert_eq!(
        (
            snap.problems[0].probe.as_str(),
            snap.problems[0].subject.as_str()
        ),
        ("counters", "sdb")
    );

    let (mut sim, _) = machine(
        r#"
[[event]]
during = "baseline"
unreadable = ["array"]
"#,
    );
    let err = sim
        .snapshot("md0", Depth::Fast)
        .expect_err("array unreadable");
    assert!(
        err.to_string().contains("cannot read md array `md0`"),
        "{err}"
    );
}

#[test]
fn canned_commands_and_missing_programs() {
    let (mut sim, _) = machine(
        r#"
[[command]]
argv = ["restic", "snapshots", "--latest", "1", "--json"]
stdout = '[{"time": "2025-12-31T23:00:00Z"}]'

[[command]]
argv = ["ledctl", "locate=/dev/sdb"]
code = 1
stderr = "ledctl: no enclosure"

[[command]]
argv = ["check-replication"]
timed_out = true
"#,
    );
    let argv = |s: &str| -> Vec<String> { s.split_whitespace().map(String::from).collect() };
    let out = sim
        .execute(
            &argv("restic snapshots --latest 1 --json"),
            Duration::from_secs(5),
        )
        .expect("canned");
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), r#"[{"time": "2025-12-31T23:00:00Z"}]"#)
    );
    assert!(out.success());
    let out = sim
        .execute(&argv("ledctl locate=/dev/sdb"), Duration::from_secs(5))
        .expect("canned");
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (Some(1), "ledctl: no enclosure")
    );
    let out = sim
        .execute(&argv("check-replication"), Duration::from_secs(5))
        .expect("canned");
    assert_eq!((out.code, out.timed_out), (None, true));
    let err = sim
        .execute(&argv("restic snapshots"), Duration::from_secs(5))
        .expect_err("not canned");
    assert!(
        err.to_string().starts_with(
            "no simulated program `restic` in scenario `/s/runbooks/scenarios/x/test.toml`"
        ),
        "{err}"
    );
    let err = sim
        .execute(&argv("mdadm --detail /dev/md0"), Duration::from_secs(5))
        .expect_err("not modelled");
    assert!(err.to_string().contains("manage mode only"), "{err}");
    assert!(sim.execute(&[], Duration::from_secs(5)).is_err());
}

#[test]
fn locate_switches_a_bay_led_or_says_why_not() {
    let (mut sim, _) = machine("");
    let snap = look(&mut sim);
    let sdb = drive(&snap, "sdb").expect("sdb").id.clone();
    let boot = drive(&snap, "nvme0n1").expect("boot").id.clone();
    assert_eq!(
        sim.locate(&sdb, true).expect("locate"),
        LocateOutcome::Switched {
            how: "simulated enclosure LED".to_string()
        }
    );
    assert!(
        matches!(sim.locate(&boot, true).expect("locate"), LocateOutcome::Unavailable { reason } if reason.contains("no known bay"))
    );
    let ghost = Identity {
        serial: Some("NOPE".into()),
        ..Identity::default()
    };
    assert!(matches!(
        sim.locate(&ghost, true).expect("locate"),
        LocateOutcome::Unavailable { .. }
    ));
    assert_eq!(
        sim.take_log(),
        ["[sim 00:00:00] locate LED of bay 1 (sdb) on"]
    );
}

#[test]
fn the_broken_drive_put_back_comes_back_with_its_old_superblock() {
    let (mut sim, clock) = machine(
        r#"
[[event]]
during = "insert"
after = "5s"
insert = "S3Z1NB0K100002"
"#,
    );
    swap_to_insert(&mut sim, &clock);
    let snap = look(&mut sim);
    let back = drive(&snap, "sdb").expect("sdb");
    assert_eq!(back.id.serial.as_deref(), Some("S3Z1NB0K100002"));
    assert_eq!((back.member.clone(), back.blank), (None, Some(false)));
    let out = mdadm(&mut sim, "mdadm /dev/md0 --add /dev/sdb");
    assert_eq!(out.code, Some(1));
}

#[test]
fn non_physical_steps_move_no_drive() {
    let (mut sim, clock) = machine("");
    let sdb = target(&mut sim);
    let confirm = step(
        "antistatic",
        StepKind::Confirm,
        Some(DriveExpect::Absent),
        None,
    );
    sim.step_phase(&confirm.facts(), StepPhase::Began, &sdb);
    run_to(&mut sim, &clock, 60_000);
    assert_eq!(look(&mut sim).drives.len(), 3);
    assert!(sim.take_log().is_empty());
}

#[test]
fn stamps() {
    let cases = [
        (0, "00:00:00"),
        (5_000, "00:00:05"),
        (5_250, "00:00:05.250"),
        (3_725_000, "01:02:05"),
    ];
    for (ms, text) in cases {
        assert_eq!(stamp(ms), text);
    }
}
