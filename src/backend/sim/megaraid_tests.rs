//! Tests of the simulated MegaRAID controller and its storcli, driven the
//! way the engine drives a backend: commands, step phases, `wait` and
//! snapshots; on SATA, SAS and NVMe drives.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::*;
use crate::health::model::{Drive, MemberState};
use crate::scenario::parse;

/// Drives of one interface: kernel name family and `intf`.
#[derive(Clone, Copy)]
struct Kind {
    devs: [&'static str; 5],
    intf: &'static str,
}

const SATA: Kind = Kind {
    devs: ["sda", "sdb", "sdc", "sdd", "sde"],
    intf: "SATA",
};
const SAS: Kind = Kind {
    devs: ["sda", "sdb", "sdc", "sdd", "sde"],
    intf: "SAS",
};
const NVME: Kind = Kind {
    devs: ["nvme0n1", "nvme1n1", "nvme2n1", "nvme3n1", "nvme4n1"],
    intf: "NVMe",
};

/// A VD of `level` over `n` members in slots 252:0.., a blank spare and a
/// used one on the cart; `array` and `extra` add keys and tables.
fn text(kind: Kind, level: &str, n: usize, array: &str, others: &str, extra: &str) -> String {
    let members: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"  {{ dev = "{}", serial = "MR00{i}", model = "MZ7LH960", slot = "252:{i}", size = "960G", intf = "{}" }},"#,
                kind.devs[i], kind.intf
            )
        })
        .collect();
    format!(
        r#"
[scenario]
name = "test"
runbook = "../../megaraid-replace-drive.toml"
params = {{ array = "/c0/v0", target = "/c0/e252/s1" }}

[array]
name = "/c0/v0"
level = "{level}"
rebuild_time = "10m"
{array}
members = [
{}
]
spares = [
  {{ serial = "NEW001", model = "MZ7LH960", size = "960G", intf = "{intf}" }},
  {{ serial = "USED01", model = "MZ7LH960", size = "960G", intf = "{intf}", foreign = true, blank = false }},
]
others = [
{others}
]

[expect]
outcome = "completed"
{extra}
"#,
        members.join("\n"),
        intf = kind.intf,
    )
}

fn build(text: &str, backend: &str) -> Result<(SimBackend, SimClock)> {
    let scenario = match parse(Path::new("/s/runbooks/scenarios/x/test.toml"), text) {
        Ok(s) => s,
        Err(e) => panic!("test scenario does not parse:\n{e}"),
    };
    let clock = SimClock::new();
    let sim = SimBackend::new(scenario.machine(backend), clock.clone())?;
    Ok((sim, clock))
}

fn controller(kind: Kind, level: &str, n: usize, array: &str, others: &str) -> SimBackend {
    build(&text(kind, level, n, array, others, ""), "megaraid")
        .expect("simulator builds")
        .0
}

fn run(sim: &mut SimBackend, line: &str) -> (CommandOutput, Value) {
    let argv: Vec<String> = line.split_whitespace().map(String::from).collect();
    let out = sim
        .execute(&argv, Duration::from_secs(10))
        .expect("the command is simulated");
    let json: Value = serde_json::from_str(&out.stdout).expect("storcli prints JSON");
    (out, json)
}

fn status(json: &Value) -> &Value {
    &json["Controllers"][0]["Command Status"]
}

fn ok(sim: &mut SimBackend, line: &str) -> Value {
    let (out, json) = run(sim, line);
    assert!(out.success(), "`{line}` failed: {}", out.stdout);
    assert_eq!(status(&json)["Status"], "Success", "{line}");
    json
}

fn refused(sim: &mut SimBackend, line: &str) -> Value {
    let (out, json) = run(sim, line);
    assert!(!out.success(), "`{line}` should be refused");
    assert_eq!(status(&json)["Status"], "Failure", "{line}");
    json
}

fn look(sim: &mut SimBackend) -> Snapshot {
    sim.snapshot("/c0/v0", Depth::Full).expect("snapshot")
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

fn state(snap: &Snapshot, dev: &str) -> Option<MemberState> {
    drive(snap, dev).and_then(Drive::state)
}

fn has_fault(snap: &Snapshot, dev: &str, condition: &str) -> bool {
    drive(snap, dev).is_some_and(|d| d.faults.iter().any(|f| f.condition == condition))
}

/// Pull the drive at `slot` (by its serial) and insert the next spare.
fn pull(sim: &mut SimBackend, serial: &str) {
    let drive = sim
        .pool
        .drives
        .iter()
        .position(|d| d.serial.as_deref() == Some(serial))
        .expect("drive");
    sim.pull(drive, "technician pulled");
}

fn insert_spare(sim: &mut SimBackend, serial: &str) {
    let drive = sim
        .pool
        .drives
        .iter()
        .position(|d| d.serial.as_deref() == Some(serial))
        .expect("drive");
    sim.insert(drive);
}

fn wait(sim: &mut SimBackend, clock: &SimClock, secs: u64) {
    let until = clock.now_ms() + secs * 1000;
    while clock.now_ms() < until {
        sim.wait(Duration::from_secs(secs)).expect("wait");
    }
}

#[test]
fn a_healthy_vd_reads_as_the_contract_says_on_sata_sas_and_nvme() {
    for kind in [SATA, SAS, NVME] {
        let mut sim = controller(kind, "raid1", 2, "", "");
        let snap = look(&mut sim);
        assert_eq!(snap.array.name, "/c0/v0");
        assert_eq!(snap.array.state, "Optl");
        assert!(snap.array.running);
        assert_eq!(snap.array.redundancy_left, 1);
        let d = drive(&snap, "c0/e252/s1").expect("member at c0/e252/s1");
        assert_eq!(d.id.slot.as_deref(), Some("252:1"));
        assert_eq!(d.id.serial.as_deref(), Some("MR001"));
        assert_eq!(
            d.id.transport.as_deref(),
            Some(kind.intf.to_ascii_lowercase().as_str())
        );
        let m = d.member.as_ref().expect("member");
        assert_eq!(m.state, MemberState::InSync);
        assert_eq!(m.role, Some(1));
        assert_eq!(m.flags, ["onln"]);
        assert_eq!(m.name.as_deref(), Some("/c0/e252/s1"));
        assert_eq!(d.counters.get("megaraid.media_errors"), Some(&0));
        assert_eq!(d.counters.get("megaraid.other_errors"), Some(&0));
        assert_eq!(d.counters.get("megaraid.predictive_failures"), Some(&0));
        assert!(d.faults.is_empty());
        assert!(snap.problems.is_empty());
    }
}

#[test]
fn set_missing_on_an_online_drive_is_refused_as_storcli_refuses_it() {
    let mut sim = controller(SAS, "raid1", 2, "", "");
    let json = refused(&mut sim, "storcli64 /c0/e252/s1 set missing J");
    assert_eq!(status(&json)["Description"], "Set Drive Missing Failed.");
    assert_eq!(status(&json)["Detailed Status"][0]["ErrCd"], 255);
    assert_eq!(
        status(&json)["Detailed Status"][0]["ErrMsg"],
        "Operation not allowed."
    );
    assert_eq!(flags(&look(&mut sim), "c0/e252/s1"), ["onln"]);
}

#[test]
fn the_cold_replacement_walks_through_the_controller_states() {
    for kind in [SATA, SAS, NVME] {
        let (mut sim, clock) =
            build(&text(kind, "raid1", 2, "", "", ""), "megaraid").expect("builds");
        let json = ok(&mut sim, "storcli64 /c0/e252/s1 set offline J");
        assert_eq!(status(&json)["Description"], "Set Drive Offline Succeeded.");
        let snap = look(&mut sim);
        assert_eq!(snap.array.state, "Dgrd");
        assert_eq!(state(&snap, "c0/e252/s1"), Some(MemberState::Faulty));
        assert!(has_fault(&snap, "c0/e252/s1", "megaraid.offline"));
        ok(&mut sim, "storcli64 /c0/e252/s1 set missing J");
        let snap = look(&mut sim);
        assert_eq!(flags(&snap, "c0/e252/s1"), ["msng"]);
        assert!(has_fault(&snap, "c0/e252/s1", "megaraid.missing"));
        ok(&mut sim, "storcli64 /c0/e252/s1 spindown J");
        ok(&mut sim, "storcli64 /c0/e252/s1 start locate J");
        pull(&mut sim, "MR001");
        let snap = look(&mut sim);
        assert!(drive(&snap, "c0/e252/s1").is_none());
        assert_eq!(snap.array.degraded, 1);
        // A blank drive in the same bay: the controller rebuilds at once.
        insert_spare(&mut sim, "NEW001");
        let snap = look(&mut sim);
        let new = drive(&snap, "c0/e252/s1").expect("new drive in bay 252:1");
        assert_eq!(new.id.serial.as_deref(), Some("NEW001"));
        assert_eq!(new.state(), Some(MemberState::Rebuilding));
        assert_eq!(
            snap.array.sync.as_ref().map(|s| s.action.as_str()),
            Some("rebuild")
        );
        wait(&mut sim, &clock, 300);
        let json = ok(&mut sim, "storcli64 /c0/e252/s1 show rebuild J");
        let row = &json["Controllers"][0]["Response Data"][0];
        assert_eq!(row["Status"], "In progress");
        assert_eq!(row["Progress%"], 50);
        assert_eq!(row["Estimated Time Left"], "5 Minutes");
        wait(&mut sim, &clock, 301);
        let snap = look(&mut sim);
        assert_eq!(snap.array.state, "Optl");
        assert_eq!(state(&snap, "c0/e252/s1"), Some(MemberState::InSync));
        assert!(snap.array.sync.is_none());
        let json = ok(&mut sim, "storcli64 /c0/e252/s1 show rebuild J");
        let row = &json["Controllers"][0]["Response Data"][0];
        assert_eq!(row["Progress%"], "-", "idle progress is the string \"-\"");
        assert_eq!(row["Status"], "Not in progress");
    }
}

#[test]
fn with_auto_rebuild_off_the_drive_waits_for_insert_and_start_rebuild() {
    let mut sim = controller(SATA, "raid5", 3, "auto_rebuild = false", "");
    ok(&mut sim, "storcli64 /c0/e252/s1 set offline J");
    ok(&mut sim, "storcli64 /c0/e252/s1 set missing J");
    pull(&mut sim, "MR001");
    insert_spare(&mut sim, "NEW001");
    let snap = look(&mut sim);
    let new = drive(&snap, "c0/e252/s1").expect("new drive");
    assert!(new.member.is_none(), "UGood, in no group");
    assert_eq!(snap.array.state, "Dgrd");
    // Row 0 is not missing: refused.
    let json = refused(
        &mut sim,
        "storcli64 /c0/e252/s1 insert dg=0 array=0 row=0 J",
    );
    assert_eq!(status(&json)["Description"], "Insert Drive Failed.");
    // A rebuild needs the drive in a row first.
    refused(&mut sim, "storcli64 /c0/e252/s1 start rebuild J");
    ok(
        &mut sim,
        "storcli64 /c0/e252/s1 insert dg=0 array=0 row=1 J",
    );
    // insert starts the rebuild itself; `start rebuild` is then refused.
    let snap = look(&mut sim);
    assert_eq!(state(&snap, "c0/e252/s1"), Some(MemberState::Rebuilding));
    assert_eq!(flags(&snap, "c0/e252/s1"), ["rbld"]);
    refused(&mut sim, "storcli64 /c0/e252/s1 start rebuild J");
}

#[test]
fn a_used_drive_shows_a_foreign_configuration_and_is_not_rebuilt_onto() {
    for kind in [SATA, SAS, NVME] {
        let mut sim = controller(kind, "raid1", 2, "", "");
        ok(&mut sim, "storcli64 /c0/e252/s1 set offline J");
        ok(&mut sim, "storcli64 /c0/e252/s1 set missing J");
        pull(&mut sim, "MR001");
        insert_spare(&mut sim, "USED01");
        let snap = look(&mut sim);
        let used = drive(&snap, "c0/e252/s1").expect("used drive in bay");
        assert!(used.member.is_none());
        assert_eq!(
            used.blank, None,
            "nothing reads a drive behind the controller"
        );
        assert!(has_fault(&snap, "c0/e252/s1", "megaraid.foreign"));
        assert!(
            snap.problems
                .iter()
                .any(|p| p.probe == "megaraid.foreign" && p.message.contains("USED01"))
        );
        assert!(snap.array.sync.is_none(), "no rebuild onto a foreign drive");
        let json = ok(&mut sim, "storcli64 /c0/fall show J");
        let data = &json["Controllers"][0]["Response Data"];
        assert_eq!(data["Total foreign Drive Groups"], 1);
        assert_eq!(data["FOREIGN CONFIGURATION"][0]["State"], "Frgn");
        // Insert refuses a foreign drive too.
        refused(
            &mut sim,
            "storcli64 /c0/e252/s1 insert dg=0 array=0 row=1 J",
        );
        ok(&mut sim, "storcli64 /c0/fall delete J");
        let snap = look(&mut sim);
        assert!(snap.problems.is_empty());
        assert_eq!(
            state(&snap, "c0/e252/s1"),
            Some(MemberState::Rebuilding),
            "cleared, the drive in the missing row's bay is rebuilt"
        );
        let json = ok(&mut sim, "storcli64 /c0/fall show J");
        assert_eq!(
            json["Controllers"][0]["Response Data"]["Total foreign Drive Groups"],
            0
        );
        refused(&mut sim, "storcli64 /c0/fall delete J");
    }
}

#[test]
fn the_pulled_drive_put_back_is_foreign() {
    let mut sim = controller(SATA, "raid1", 2, "", "");
    ok(&mut sim, "storcli64 /c0/e252/s1 set offline J");
    ok(&mut sim, "storcli64 /c0/e252/s1 set missing J");
    pull(&mut sim, "MR001");
    insert_spare(&mut sim, "MR001");
    let snap = look(&mut sim);
    assert!(has_fault(&snap, "c0/e252/s1", "megaraid.foreign"));
    assert!(snap.array.sync.is_none());
}

#[test]
fn a_hot_spare_takes_the_row_of_a_failed_member() {
    let others = r#"  { dev = "sdf", serial = "SPARE1", size = "960G", slot = "252:4", intf = "SAS", pd_state = "GHS" },"#;
    let (mut sim, clock) =
        build(&text(SAS, "raid1", 2, "", others, ""), "megaraid").expect("builds");
    let snap = look(&mut sim);
    let spare = drive(&snap, "c0/e252/s4").expect("spare");
    assert_eq!(spare.state(), Some(MemberState::Spare));
    assert_eq!(spare.member.as_ref().and_then(|m| m.role), None);
    let mut log = Vec::new();
    let now = clock.now_ms();
    sim.storage.fail(&sim.pool, 1, "MR001", now, &mut log);
    let snap = look(&mut sim);
    let failed = drive(&snap, "c0/e252/s1").expect("failed drive still present");
    assert!(failed.member.is_none(), "the spare took its row");
    assert_eq!(state(&snap, "c0/e252/s4"), Some(MemberState::Rebuilding));
    wait(&mut sim, &clock, 601);
    let snap = look(&mut sim);
    assert_eq!(snap.array.state, "Optl");
    assert_eq!(state(&snap, "c0/e252/s4"), Some(MemberState::InSync));
    // The new drive becomes the hot spare.
    let json = ok(&mut sim, "storcli64 /c0/e252/s1 show J");
    let data = &json["Controllers"][0]["Response Data"];
    assert_eq!(data["Drive /c0/e252/s1"][0]["State"], "UBad");
    refused(&mut sim, "storcli64 /c0/e252/s1 add hotsparedrive J");
}

#[test]
fn a_new_drive_becomes_the_global_hot_spare() {
    let others =
        r#"  { dev = "nvme9n1", serial = "UG1", size = "960G", slot = "252:5", intf = "NVMe" },"#;
    let mut sim = controller(NVME, "raid1", 2, "", others);
    ok(&mut sim, "storcli64 /c0/e252/s5 add hotsparedrive J");
    let snap = look(&mut sim);
    assert_eq!(state(&snap, "c0/e252/s5"), Some(MemberState::Spare));
    assert_eq!(flags(&snap, "c0/e252/s5"), ["ghs"]);
}

#[test]
fn vd_states_follow_the_level() {
    let mut sim = controller(SAS, "raid6", 4, "", "");
    ok(&mut sim, "storcli64 /c0/e252/s1 set offline J");
    assert_eq!(look(&mut sim).array.state, "Pdgd");
    ok(&mut sim, "storcli64 /c0/e252/s2 set offline J");
    let snap = look(&mut sim);
    assert_eq!(snap.array.state, "Dgrd");
    assert_eq!(snap.array.redundancy_left, 0);
    ok(&mut sim, "storcli64 /c0/e252/s3 set offline J");
    let snap = look(&mut sim);
    assert_eq!(snap.array.state, "OfLn");
    assert!(!snap.array.running);

    let mut sim = controller(SATA, "raid10", 4, "", "");
    let snap = look(&mut sim);
    let roles: Vec<Option<u32>> = snap
        .members()
        .map(|d| d.member.as_ref().and_then(|m| m.role))
        .collect();
    assert_eq!(roles, [Some(0), Some(1), Some(2), Some(3)]);
    let json = ok(&mut sim, "storcli64 /c0 show J");
    let topology = &json["Controllers"][0]["Response Data"]["TOPOLOGY"];
    assert_eq!(topology[3]["Arr"], 1);
    assert_eq!(topology[3]["Row"], 1);
    let json = ok(&mut sim, "storcli64 /c0/v0 show J");
    assert_eq!(
        json["Controllers"][0]["Response Data"]["/c0/v0"][0]["TYPE"],
        "RAID10"
    );
}

#[test]
fn counters_come_from_the_drive_and_n_a_is_unreadable() {
    let mut sim = controller(SATA, "raid1", 2, "", "");
    sim.pool.drives[0]
        .counters
        .insert("megaraid.media_errors".into(), 3);
    let snap = look(&mut sim);
    assert_eq!(
        drive(&snap, "c0/e252/s0").and_then(|d| d.counters.get("megaraid.media_errors")),
        Some(&3)
    );
    let json = ok(&mut sim, "storcli64 /c0/e252/s0 show all J");
    let state = &json["Controllers"][0]["Response Data"]["Drive /c0/e252/s0 - Detailed Information"]
        ["Drive /c0/e252/s0 State"];
    assert_eq!(state["Media Error Count"], 3);
    sim.pool.drives[0].counters_unreadable = true;
    let snap = look(&mut sim);
    assert!(
        snap.problems
            .iter()
            .any(|p| p.probe == "megaraid" && p.subject == "/c0/e252/s0")
    );
    let json = ok(&mut sim, "storcli64 /c0/e252/s0 show all J");
    let state = &json["Controllers"][0]["Response Data"]["Drive /c0/e252/s0 - Detailed Information"]
        ["Drive /c0/e252/s0 State"];
    assert_eq!(state["Media Error Count"], "N/A");
}

#[test]
fn smart_alert_is_a_fault_on_the_drive() {
    let others = r#"  { dev = "sdf", serial = "ALERT1", size = "960G", slot = "252:4", smart_alert = true },"#;
    let mut sim = controller(SATA, "raid1", 2, "", others);
    assert!(has_fault(
        &look(&mut sim),
        "c0/e252/s4",
        "megaraid.smart_alert"
    ));
}

#[test]
fn perccli_is_the_same_tool() {
    let mut sim = controller(SAS, "raid1", 2, "", "");
    ok(&mut sim, "perccli64 /c0/e252/s1 set offline J");
    assert_eq!(look(&mut sim).array.state, "Dgrd");
}

#[test]
fn what_is_not_modelled_is_an_error_and_absent_drives_are_refused() {
    let mut sim = controller(SATA, "raid1", 2, "", "");
    let argv = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    let err = sim
        .execute(&argv("storcli64 /c0/fall import J"), Duration::from_secs(1))
        .expect_err("import is not simulated");
    assert!(err.to_string().contains("/c0/fall import"), "{err}");
    let err = sim
        .execute(
            &argv("storcli64 /c0/e252/s1 set offline"),
            Duration::from_secs(1),
        )
        .expect_err("text output is not simulated");
    assert!(err.to_string().contains("only in JSON"), "{err}");
    let json = refused(&mut sim, "storcli64 /c0/e252/s9 set offline J");
    assert_eq!(
        status(&json)["Detailed Status"][0]["ErrMsg"],
        "Drive not found."
    );
    refused(&mut sim, "storcli64 /c1/e252/s1 set offline J");
}

#[test]
fn an_unreadable_controller_fails_every_call_and_the_look() {
    let extra = r#"
[[event]]
during = "baseline"
unreadable = ["array"]
"#;
    let (mut sim, _) = build(&text(SATA, "raid1", 2, "", "", extra), "megaraid").expect("builds");
    assert!(sim.snapshot("/c0/v0", Depth::Fast).is_err());
    refused(&mut sim, "storcli64 /c0/e252/s1 show J");
}

#[test]
fn a_drive_behind_no_enclosure_is_addressed_by_slot_alone() {
    let others = r#"  { dev = "sdf", serial = "NOENC", size = "960G", slot = "3" },"#;
    let mut sim = controller(SATA, "raid1", 2, "", others);
    let snap = look(&mut sim);
    assert!(drive(&snap, "c0/s3").is_some());
    ok(&mut sim, "storcli64 /c0/s3 show J");
}

#[test]
fn controller_keys_belong_to_megaraid_scenarios_only() {
    let md = r#"
[scenario]
name = "test"
runbook = "../../md-replace-member.toml"
params = { array = "md0", target = "sdb" }
[array]
name = "md0"
level = "raid1"
members = [
  { dev = "sda", serial = "A", size = "960G", intf = "SAS" },
  { dev = "sdb", serial = "B", size = "960G" },
]
[expect]
outcome = "completed"
"#;
    let err = build(md, "md").err().expect("refused");
    assert!(err.to_string().contains("MegaRAID"), "{err}");
    let bad = text(
        SATA,
        "raid1",
        2,
        "",
        r#"  { dev = "sdf", serial = "X", size = "1T", slot = "252:6", pd_state = "Hotspare" },"#,
        "",
    );
    let err = parse(Path::new("/s/x.toml"), &bad).expect_err("bad pd_state");
    assert!(err.to_string().contains("pd_state"), "{err}");
    let no_slot = text(
        SATA,
        "raid1",
        2,
        "",
        r#"  { dev = "sdf", serial = "X", size = "1T" },"#,
        "",
    );
    let err = build(&no_slot, "megaraid")
        .err()
        .expect("a drive without slot");
    assert!(err.to_string().contains("252:1"), "{err}");
}
