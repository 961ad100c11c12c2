//! Tests of the simulated ZFS pool, `zpool` and `sgdisk`, driven the way
//! the engine drives a backend: step phases, `wait` in watch-poll slices,
//! and snapshots.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::health::model::{Drive, MemberState};
use crate::runbook::model::{Confirm, Expectation, Span};
use crate::runbook::model::{Step, StepKind};
use crate::scenario::parse;

/// A two-way mirror over partition 1 of two drives of `family` (`sd` or
/// `nvme`) in bays 0 and 1, a spare on the cart (bay 2 when `hot`) and a
/// small spare; `extra` adds tables.
fn text(level: &str, members: &[(&str, &str)], extra: &str) -> String {
    let members: Vec<String> = members
        .iter()
        .enumerate()
        .map(|(i, (dev, serial))| {
            format!(
                r#"  {{ dev = "{dev}", serial = "{serial}", model = "SAMSUNG MZ7LH960HAJR-00005", slot = {i}, size = "960G" }},"#
            )
        })
        .collect();
    format!(
        r#"
[scenario]
name = "test"
runbook = "../../zfs-replace-member.toml"
params = {{ array = "tank", target = "sdb" }}

[array]
name = "tank"
level = "{level}"
partition = 1
rebuild_time = "2m"
members = [
{}
]
spares = [
  {{ serial = "S3Z1NB0K900003", model = "SAMSUNG MZ7LH960HAJR-00005", size = "960G", slot = 5 }},
  {{ serial = "S3Z1NB0K900004", model = "SAMSUNG MZ7LH480HAHQ-00005", size = "480G" }},
]

[expect]
outcome = "completed"
{extra}
"#,
        members.join("\n")
    )
}

const MIRROR: [(&str, &str); 2] = [("sda", "S3Z1NB0K100001"), ("sdb", "S3Z1NB0K100002")];

fn build(text: &str, backend: &str) -> Result<(SimBackend, SimClock)> {
    let scenario = match parse(Path::new("/s/runbooks/scenarios/x/test.toml"), text) {
        Ok(s) => s,
        Err(e) => panic!("test scenario does not parse:\n{e}"),
    };
    let clock = SimClock::new();
    let sim = SimBackend::new(scenario.machine(backend), clock.clone())?;
    Ok((sim, clock))
}

fn pool(extra: &str) -> (SimBackend, SimClock) {
    build(&text("mirror", &MIRROR, extra), "zfs").expect("simulator builds")
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
        on_halt: crate::runbook::model::OnHalt::Kill,
        span: Span::default(),
    }
}

fn run(sim: &mut SimBackend, line: &str) -> CommandOutput {
    let argv: Vec<String> = line.split_whitespace().map(String::from).collect();
    sim.execute(&argv, Duration::from_secs(10))
        .expect("the command is simulated")
}

fn look(sim: &mut SimBackend) -> Snapshot {
    sim.snapshot("tank", Depth::Full).expect("snapshot")
}

fn drive<'a>(snap: &'a Snapshot, dev: &str) -> Option<&'a Drive> {
    snap.drives.iter().find(|d| d.id.dev == dev)
}

fn flags(snap: &Snapshot, dev: &str) -> Vec<String> {
    drive(snap, dev)
        .and_then(|d| d.member.as_ref())
        .map(|m| m.flags.clone())
        .unwrap_or_default()
}

fn guid(snap: &Snapshot, dev: &str) -> String {
    drive(snap, dev)
        .and_then(|d| d.member.as_ref())
        .and_then(|m| m.name.clone())
        .expect("a leaf with a GUID")
}

fn run_to(sim: &mut SimBackend, clock: &SimClock, ms: u64) {
    while clock.now_ms() < ms {
        let left = ms - clock.now_ms();
        sim.wait(Duration::from_millis(left.min(250)))
            .expect("wait");
    }
}

fn identity(sim: &mut SimBackend, dev: &str) -> Identity {
    let snap = look(sim);
    drive(&snap, dev).expect("present").id.clone()
}

/// Let the technician pull `target` (a pull step) and insert the next spare
/// (an insert step), 5 s each.
fn pull_and_insert(sim: &mut SimBackend, clock: &SimClock, target: &Identity) {
    let pull = step("pull", Some(DriveExpect::Absent), None);
    let insert = step("insert", None, Some(DriveExpect::Present));
    let start = clock.now_ms();
    sim.step_phase(&pull.facts(), StepPhase::Began, target);
    run_to(sim, clock, start + 5_000);
    sim.step_phase(&pull.facts(), StepPhase::Ended, target);
    sim.step_phase(&insert.facts(), StepPhase::Began, target);
    run_to(sim, clock, start + 10_000);
    sim.step_phase(&insert.facts(), StepPhase::Ended, target);
}

#[test]
fn baseline_looks_like_a_healthy_pool() {
    let (mut sim, _) = pool("");
    let snap = look(&mut sim);
    assert_eq!(
        (
            snap.array.name.as_str(),
            snap.array.level.as_str(),
            snap.array.state.as_str()
        ),
        ("tank", "mirror", "ONLINE")
    );
    assert_eq!((snap.array.raid_disks, snap.array.degraded), (2, 0));
    assert!(snap.array.running);
    assert_eq!(snap.array.redundancy_left, 1);
    let sda = drive(&snap, "sda").expect("sda");
    let m = sda.member.as_ref().expect("a leaf");
    assert_eq!(
        (m.state, m.role, m.flags.clone()),
        (MemberState::InSync, Some(0), vec!["online".to_string()])
    );
    for c in [
        "zfs.read_errors",
        "zfs.write_errors",
        "zfs.checksum_errors",
        "zfs.slow_ios",
    ] {
        assert_eq!(sda.counters.get(c), Some(&0), "{c}");
    }
    assert!(sda.faults.is_empty());
    assert_eq!(sim.arrays().expect("arrays"), ["tank"]);
}

#[test]
fn guids_are_decimal_distinct_and_the_same_on_every_run() {
    let (mut a, _) = pool("");
    let (mut b, _) = pool("");
    let (sa, sb) = (look(&mut a), look(&mut b));
    let (ga, gb) = (guid(&sa, "sda"), guid(&sa, "sdb"));
    assert_ne!(ga, gb);
    assert!(ga.parse::<u64>().is_ok() && ga.len() >= 19, "{ga}");
    assert_eq!((ga, gb), (guid(&sb, "sda"), guid(&sb, "sdb")));
}

#[test]
fn a_pulled_leaf_is_removed_at_once_and_the_pool_degraded() {
    let (mut sim, clock) = pool(
        r#"
[[event]]
during = "pull"
after = "2s"
pull = "sda"
"#,
    );
    let sdb = identity(&mut sim, "sdb");
    let pull = step("pull", Some(DriveExpect::Absent), None);
    sim.step_phase(&pull.facts(), StepPhase::Began, &sdb);
    run_to(&mut sim, &clock, 2_000);
    // No I/O and no delay: the very next look sees it.
    let snap = look(&mut sim);
    assert!(drive(&snap, "sda").is_none());
    assert_eq!(snap.array.state, "DEGRADED");
    assert_eq!(snap.array.degraded, 1);
    assert_eq!(snap.array.redundancy_left, 0);
    let log = sim.take_log().join("\n");
    assert!(log.contains("[sim 00:00:02] ZFS saw leaf "), "{log}");
    assert!(
        log.contains("(/dev/sda1) REMOVED: pool tank DEGRADED"),
        "{log}"
    );
    let status = run(&mut sim, "zpool status tank").stdout;
    assert!(status.contains("sda1/old"), "{status}");
    assert!(status.contains("REMOVED"), "{status}");
}

#[test]
fn offline_by_guid_then_pull_stays_offline() {
    let (mut sim, clock) = pool("");
    let snap = look(&mut sim);
    let g = guid(&snap, "sdb");
    let out = run(&mut sim, &format!("zpool offline tank {g}"));
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""));
    let snap = look(&mut sim);
    assert_eq!(
        drive(&snap, "sdb").and_then(Drive::state),
        Some(MemberState::Faulty)
    );
    assert_eq!(flags(&snap, "sdb"), ["offline"]);
    let sdb = drive(&snap, "sdb").expect("sdb");
    assert!(
        sdb.faults
            .iter()
            .any(|f| f.condition == "zfs.offline" && f.flag)
    );
    assert_eq!(
        (snap.array.state.as_str(), snap.array.degraded),
        ("DEGRADED", 1)
    );
    let id = sdb.id.clone();
    let pull = step("pull", Some(DriveExpect::Absent), None);
    sim.step_phase(&pull.facts(), StepPhase::Began, &id);
    run_to(&mut sim, &clock, 6_000);
    let status = run(&mut sim, "zpool status -g tank").stdout;
    assert!(status.contains(&format!("{g:<24} OFFLINE")), "{status}");
    // Taking the last copy away is refused.
    let a = guid(&look(&mut sim), "sda");
    let out = run(&mut sim, &format!("zpool offline tank {a}"));
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        format!("cannot offline {a}: no valid replicas\n")
    );
    let out = run(&mut sim, "zpool offline tank 12345");
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (Some(1), "cannot offline 12345: no such device in pool\n")
    );
    let out = run(&mut sim, "zpool offline rpool 12345");
    assert_eq!(out.stderr, "cannot open 'rpool': no such pool\n");
}

#[test]
fn cold_replace_resilvers_on_the_clock_and_detaches_the_old_leaf() {
    let (mut sim, clock) = pool("");
    let g = guid(&look(&mut sim), "sdb");
    let sdb = identity(&mut sim, "sdb");
    assert_eq!(
        run(&mut sim, &format!("zpool offline tank {g}")).code,
        Some(0)
    );
    pull_and_insert(&mut sim, &clock, &sdb);
    let snap = look(&mut sim);
    let new = drive(&snap, "sdb").expect("the new drive came up as sdb");
    assert_eq!(new.id.serial.as_deref(), Some("S3Z1NB0K900003"));
    assert_eq!((new.member.clone(), new.blank), (None, Some(true)));
    // Whole disk without a table: ZFS has no partition 1 to take.
    let out = run(&mut sim, &format!("zpool replace tank {g} /dev/sdb1"));
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("no such device"), "{}", out.stderr);
    assert_eq!(run(&mut sim, "sgdisk /dev/sda -R /dev/sdb").code, Some(0));
    assert_eq!(run(&mut sim, "sgdisk -G /dev/sdb").code, Some(0));
    assert_eq!(
        look(&mut sim).drives[1].blank,
        Some(false),
        "partitioned now"
    );
    let started = clock.now_ms();
    let out = run(&mut sim, &format!("zpool replace tank {g} /dev/sdb1"));
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""));
    let snap = look(&mut sim);
    let new = drive(&snap, "sdb").expect("sdb");
    let m = new.member.as_ref().expect("a leaf now");
    assert_eq!((m.state, m.role), (MemberState::Rebuilding, Some(1)));
    assert_eq!(m.flags, ["online", "resilvering", "replacing"]);
    assert_ne!(
        m.name.as_deref(),
        Some(g.as_str()),
        "a new leaf, a new GUID"
    );
    let sync = snap.array.sync.clone().expect("a resilver runs");
    assert_eq!((sync.action.as_str(), sync.done), ("resilver", 0));
    assert_eq!(
        snap.array.degraded, 1,
        "the new leaf holds no full copy yet"
    );
    let status = run(&mut sim, "zpool status tank").stdout;
    assert!(status.contains("replacing-1"), "{status}");
    assert!(status.contains("(resilvering)"), "{status}");
    run_to(&mut sim, &clock, started + 60_000);
    let half = look(&mut sim).array.sync.expect("still running");
    assert_eq!(half.done * 2, half.total);
    run_to(&mut sim, &clock, started + 120_000);
    let snap = look(&mut sim);
    assert_eq!(snap.array.sync, None);
    assert_eq!(
        (snap.array.state.as_str(), snap.array.degraded),
        ("ONLINE", 0)
    );
    assert_eq!(flags(&snap, "sdb"), ["online"]);
    let status = run(&mut sim, "zpool status -g tank").stdout;
    assert!(!status.contains(&g), "the old leaf is detached:\n{status}");
    let healthy = run(&mut sim, "zpool status -x tank");
    assert_eq!(healthy.stdout, "pool 'tank' is healthy\n");
}

#[test]
fn hot_replace_never_lowers_redundancy() {
    let (mut sim, clock) = pool("");
    let g = guid(&look(&mut sim), "sdb");
    let sdb = identity(&mut sim, "sdb");
    let insert = step("insert", None, Some(DriveExpect::Present));
    sim.step_phase(&insert.facts(), StepPhase::Began, &sdb);
    run_to(&mut sim, &clock, 5_000);
    sim.step_phase(&insert.facts(), StepPhase::Ended, &sdb);
    let snap = look(&mut sim);
    let new = drive(&snap, "sdc").expect("the new drive came up as sdc");
    assert_eq!(new.id.slot.as_deref(), Some("5"));
    assert_eq!(run(&mut sim, "sgdisk /dev/sda -R /dev/sdc").code, Some(0));
    assert_eq!(
        run(&mut sim, &format!("zpool replace tank {g} /dev/sdc1")).code,
        Some(0)
    );
    let mut detached_at = None;
    while clock.now_ms() < 200_000 {
        let snap = look(&mut sim);
        assert_eq!(snap.array.degraded, 0, "at {} ms", clock.now_ms());
        assert_eq!(snap.array.state, "ONLINE");
        match drive(&snap, "sdb").and_then(Drive::state) {
            Some(MemberState::InSync) => {
                assert_eq!(flags(&snap, "sdb"), ["online", "replacing"]);
            }
            None => {
                detached_at.get_or_insert(clock.now_ms());
            }
            other => panic!("the old leaf went {other:?}"),
        }
        sim.wait(Duration::from_millis(250)).expect("wait");
    }
    assert_eq!(
        detached_at,
        Some(125_000),
        "detached when the resilver ended"
    );
    let snap = look(&mut sim);
    assert_eq!(
        drive(&snap, "sdc").and_then(Drive::state),
        Some(MemberState::InSync)
    );
}

#[test]
fn errors_fault_a_survivor_while_the_pool_says_online() {
    let (mut sim, clock) = pool(
        r#"
[[event]]
during = "insert"
after = "1s"
set = { "sda.zfs.write_errors" = 212 }
fail = "sda"
"#,
    );
    let sdb = identity(&mut sim, "sdb");
    let insert = step("insert", None, Some(DriveExpect::Present));
    sim.step_phase(&insert.facts(), StepPhase::Began, &sdb);
    run_to(&mut sim, &clock, 1_000);
    let snap = look(&mut sim);
    assert_eq!(snap.array.state, "ONLINE", "ZFS's word for the pool");
    let sda = drive(&snap, "sda").expect("sda");
    assert_eq!(sda.state(), Some(MemberState::Faulty));
    assert_eq!(flags(&snap, "sda"), ["faulted"]);
    assert_eq!(sda.counters.get("zfs.write_errors"), Some(&212));
    assert!(
        sda.faults
            .iter()
            .any(|f| f.condition == "zfs.faulted" && f.flag)
    );
    assert_eq!(
        snap.array.degraded, 1,
        "judged by leaf, not by the pool's word"
    );
}

#[test]
fn the_last_replica_is_degraded_not_faulted() {
    let (mut sim, clock) = pool(
        r#"
[[event]]
during = "pull"
after = "7s"
fail = "sda"
"#,
    );
    let sdb = identity(&mut sim, "sdb");
    let pull = step("pull", Some(DriveExpect::Absent), None);
    sim.step_phase(&pull.facts(), StepPhase::Began, &sdb);
    run_to(&mut sim, &clock, 8_000);
    let snap = look(&mut sim);
    assert_eq!(flags(&snap, "sda"), ["degraded"]);
    assert_eq!(snap.array.redundancy_left, -1, "no full copy is served");
    assert_eq!(snap.array.state, "DEGRADED", "ZFS still serves what it can");
}

#[test]
fn replace_refusals() {
    let (mut sim, clock) = pool("");
    let snap = look(&mut sim);
    let (ga, gb) = (guid(&snap, "sda"), guid(&snap, "sdb"));
    let out = run(&mut sim, &format!("zpool replace tank {gb} /dev/sda1"));
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("/dev/sda1 is part of active pool 'tank'"),
        "{}",
        out.stderr
    );
    let out = run(&mut sim, "zpool replace tank 99 /dev/sda1");
    assert_eq!(out.stderr, "cannot replace 99: no such device in pool\n");
    let out = run(&mut sim, &format!("zpool replace tank {gb} /dev/sdz"));
    assert!(
        out.stderr.contains("cannot open '/dev/sdz'"),
        "{}",
        out.stderr
    );
    let out = run(&mut sim, "zpool replace tank");
    assert_eq!(out.code, Some(2));
    // The pulled drive put back carries the pool's label: refused without -f.
    let sdb = identity(&mut sim, "sdb");
    assert_eq!(
        run(&mut sim, &format!("zpool offline tank {gb}")).code,
        Some(0)
    );
    let pull = step("pull", Some(DriveExpect::Absent), None);
    sim.step_phase(&pull.facts(), StepPhase::Began, &sdb);
    run_to(&mut sim, &clock, 5_000);
    sim.step_phase(&pull.facts(), StepPhase::Ended, &sdb);
    sim.insert(1);
    let out = run(&mut sim, &format!("zpool replace tank {gb} /dev/sdb1"));
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("is part of potentially active pool 'tank'"),
        "{}",
        out.stderr
    );
    // A spare smaller than the leaf it would replace.
    sim.pull(1, "technician pulled");
    sim.insert(3);
    let small = look(&mut sim);
    let dev = small
        .drives
        .iter()
        .find(|d| d.id.serial.as_deref() == Some("S3Z1NB0K900004"))
        .map(|d| d.id.dev.clone())
        .expect("the small spare");
    let out = run(&mut sim, &format!("zpool replace tank {gb} /dev/{dev}"));
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("device is too small"), "{}", out.stderr);
    // A partitioned whole disk is refused without -f.
    assert_eq!(
        run(&mut sim, &format!("sgdisk /dev/sda -R /dev/{dev}")).code,
        Some(0)
    );
    let out = run(&mut sim, &format!("zpool replace tank {ga} /dev/{dev}"));
    assert!(
        out.stderr.contains("contains a partition table"),
        "{}",
        out.stderr
    );
}

#[test]
fn sgdisk_copies_only_a_table_that_exists() {
    let (mut sim, _) = pool("");
    sim.insert(2);
    let out = run(&mut sim, "sgdisk /dev/sdc -R /dev/sda");
    assert_eq!(out.code, Some(2), "sdc has no table to copy");
    let out = run(&mut sim, "sgdisk /dev/sda -R /dev/sda");
    assert_eq!(out.code, Some(1));
    let out = run(&mut sim, "sgdisk -G /dev/sdc");
    assert_eq!(out.code, Some(2));
    let out = run(&mut sim, "sgdisk --replicate=/dev/sdc /dev/sdb");
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "The operation has completed successfully.\n")
    );
    assert_eq!(
        run(&mut sim, "sgdisk --randomize-guids /dev/sdc").code,
        Some(0)
    );
    let argv: Vec<String> = ["sgdisk", "-Z", "/dev/sdc"].map(String::from).to_vec();
    let err = sim
        .execute(&argv, Duration::from_secs(1))
        .expect_err("not simulated");
    assert!(format!("{err:#}").contains("sgdisk -Z /dev/sdc"), "{err:#}");
}

#[test]
fn unmodelled_zpool_commands_are_errors_not_successes() {
    let (mut sim, _) = pool("");
    for line in ["zpool destroy tank", "zpool"] {
        let argv: Vec<String> = line.split_whitespace().map(String::from).collect();
        let err = sim.execute(&argv, Duration::from_secs(1)).expect_err(line);
        assert!(format!("{err:#}").contains("zpool"), "{err:#}");
    }
    let out = run(&mut sim, "zpool list -H tank");
    assert_eq!(out.stdout, "tank\tONLINE\n");
    let out = run(&mut sim, "zpool status -x");
    assert_eq!(out.stdout, "all pools are healthy\n");
}

#[test]
fn levels_belong_to_their_backend() {
    let raid1 = text("raid1", &MIRROR, "").replace("partition = 1\n", "");
    let err = build(&raid1, "zfs").err().expect("refused");
    assert!(format!("{err:#}").contains("not `raid1`"), "{err:#}");
    let md = text("mirror", &MIRROR, "").replace("partition = 1\n", "");
    let err = build(&md, "md").err().expect("refused");
    assert!(format!("{err:#}").contains("not `mirror`"), "{err:#}");
}

#[test]
fn raidz_tolerates_by_parity_and_nvme_partitions_take_a_p() {
    let members = [
        ("nvme0n1", "LAB-A-0001"),
        ("nvme1n1", "LAB-B-0002"),
        ("nvme2n1", "LAB-C-0003"),
    ];
    let (mut sim, _) = build(&text("raidz1", &members, ""), "zfs").expect("builds");
    let snap = sim.snapshot("tank", Depth::Fast).expect("snapshot");
    assert_eq!(
        (snap.array.level.as_str(), snap.array.redundancy_left),
        ("raidz1", 1)
    );
    let g = guid(&snap, "nvme1n1");
    assert_eq!(run(&mut sim, "zpool offline tank nvme1n1p1").code, Some(0));
    let g0 = guid(&snap, "nvme0n1");
    let out = run(&mut sim, &format!("zpool offline tank {g0}"));
    assert_eq!(out.code, Some(1), "raidz1 cannot lose a second leaf");
    assert_eq!(
        run(&mut sim, &format!("zpool online tank {g}")).code,
        Some(0)
    );
    let snap = sim.snapshot("tank", Depth::Fast).expect("snapshot");
    assert_eq!(snap.array.degraded, 0);
}

#[test]
fn unreadable_probes_on_a_pool_are_never_healthy() {
    let (mut sim, clock) = pool(
        r#"
[[event]]
during = "pull"
after = "1s"
unreadable = ["sda.counters"]

[[event]]
during = "pull"
after = "2s"
unreadable = ["array"]
"#,
    );
    let sdb = identity(&mut sim, "sdb");
    let pull = step("pull", Some(DriveExpect::Absent), None);
    sim.step_phase(&pull.facts(), StepPhase::Began, &sdb);
    run_to(&mut sim, &clock, 1_000);
    let snap = look(&mut sim);
    let sda = drive(&snap, "sda").expect("sda");
    assert!(
        !sda.counters.contains_key("zfs.checksum_errors"),
        "no leaf counters when the drive's counters cannot be read"
    );
    assert!(
        snap.problems
            .iter()
            .any(|p| p.probe == "counters" && p.subject == "sda")
    );
    run_to(&mut sim, &clock, 2_000);
    let err = sim
        .snapshot("tank", Depth::Fast)
        .expect_err("the pool cannot be read");
    assert!(
        format!("{err:#}").contains("cannot read pool `tank`"),
        "{err:#}"
    );
    let err = sim
        .snapshot("rpool", Depth::Fast)
        .expect_err("no such pool");
    assert!(format!("{err:#}").contains("no pool `rpool`"), "{err:#}");
}
