//! The megaraid backend with storcli answering from the captures
//! (tests/fixtures/megaraid/), edited where a case needs a state no
//! capture shows (an offline, rebuilding or pulled member, a foreign
//! drive, N/A counters, SAS and NVMe drives).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::Value;

use super::backend::{MegaraidBackend, canonical, resolve};
use super::tests_captures::fixture;
use crate::backend::{ArgDevice, Backend, CommandOutput, CommandRunner, Depth, LocateOutcome};
use crate::health::model::{MemberState, Smart, Snapshot};

/// Answers storcli by its argv after the program; records every call.
#[derive(Clone, Default)]
struct Storcli {
    answers: Rc<RefCell<BTreeMap<String, CommandOutput>>>,
    calls: Rc<RefCell<Vec<String>>>,
    /// A call that cannot even start (the tool vanished).
    broken: Rc<RefCell<Option<String>>>,
}

impl Storcli {
    fn answer(&self, args: &str, stdout: &str) {
        self.answer_with(args, 0, stdout, false);
    }

    fn answer_with(&self, args: &str, code: i32, stdout: &str, timed_out: bool) {
        self.answers.borrow_mut().insert(
            args.to_string(),
            CommandOutput {
                argv: Vec::new(),
                code: (!timed_out).then_some(code),
                stdout: stdout.into(),
                stderr: String::new(),
                timed_out,
            },
        );
    }

    fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }
}

impl CommandRunner for Storcli {
    fn run(&mut self, argv: &[String], _timeout: Duration) -> Result<CommandOutput> {
        let args = argv[1..].join(" ");
        self.calls.borrow_mut().push(argv.join(" "));
        if self.broken.borrow().as_deref() == Some(args.as_str()) {
            bail!("No such file or directory (os error 2)");
        }
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

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn data(v: &mut Value) -> &mut Value {
    &mut v["Controllers"][0]["Response Data"]
}

/// The healthy controller of the captures: a RAID6 of four SATA SSDs
/// (252:0, 252:1, 252:5, 252:4 in rows 0..3), VD `/c0/v0` on `/dev/sda`.
struct Controller {
    show: Value,
    drives: Value,
    foreign: String,
}

impl Controller {
    fn healthy() -> Self {
        Controller {
            show: json(&fixture("textfile-call-show-all-J.json.txt")),
            drives: json(&fixture("textfile-call-eall-sall-show-all-J.json.txt")),
            foreign: fixture("derived-c0_fall_show_J-none.json.txt"),
        }
    }

    /// Drive `slot` of enclosure 252: its PD row in `show all` and in the
    /// PD LIST, and its TOPOLOGY row.
    fn set_state(&mut self, slot: u32, state: &str) {
        let key = format!("Drive /c0/e252/s{slot}");
        data(&mut self.drives)[&key][0]["State"] = state.into();
        let eid = format!("252:{slot}");
        for row in data(&mut self.show)["PD LIST"].as_array_mut().unwrap() {
            if row["EID:Slt"] == eid.as_str() {
                row["State"] = state.into();
            }
        }
        for row in data(&mut self.show)["TOPOLOGY"].as_array_mut().unwrap() {
            if row["EID:Slot"] == eid.as_str() {
                row["State"] = state.into();
            }
        }
    }

    fn set_vd_state(&mut self, state: &str) {
        data(&mut self.show)["VD LIST"][0]["State"] = state.into();
    }

    fn state_field(&mut self, slot: u32, field: &str, value: Value) {
        let key = format!("Drive /c0/e252/s{slot} - Detailed Information");
        let state = format!("Drive /c0/e252/s{slot} State");
        data(&mut self.drives)[&key][&state][field] = value;
    }

    fn attribute(&mut self, slot: u32, field: &str, value: &str) {
        let key = format!("Drive /c0/e252/s{slot} - Detailed Information");
        let attrs = format!("Drive /c0/e252/s{slot} Device attributes");
        data(&mut self.drives)[&key][&attrs][field] = value.into();
    }

    /// Pull drive `slot`: gone from the PD lists; its TOPOLOGY row
    /// missing.
    fn pull(&mut self, slot: u32) {
        let d = data(&mut self.drives).as_object_mut().unwrap();
        d.remove(&format!("Drive /c0/e252/s{slot}"));
        d.remove(&format!("Drive /c0/e252/s{slot} - Detailed Information"));
        let eid = format!("252:{slot}");
        data(&mut self.show)["PD LIST"]
            .as_array_mut()
            .unwrap()
            .retain(|r| r["EID:Slt"] != eid.as_str());
        for row in data(&mut self.show)["TOPOLOGY"].as_array_mut().unwrap() {
            if row["EID:Slot"] == eid.as_str() {
                row["EID:Slot"] = "-".into();
                row["DID"] = "-".into();
                row["State"] = "Msng".into();
            }
        }
    }

    fn storcli(&self) -> Storcli {
        let s = Storcli::default();
        s.answer("/c0 show J", &self.show.to_string());
        s.answer("/c0/eall/sall show all J", &self.drives.to_string());
        s.answer("/c0/fall show J", &self.foreign);
        s.answer(
            "show J",
            &fixture("pystorcli2-set_state_offline_00-show_J.json.txt"),
        );
        s.answer(
            "/c0/vall show all J",
            &fixture("derived-c0_vall_show_all_J.json.txt"),
        );
        s
    }
}

fn backend(s: &Storcli) -> MegaraidBackend {
    MegaraidBackend::new(
        PathBuf::from("/nonexistent"),
        Box::new(s.clone()),
        "storcli64",
    )
}

fn look(c: &Controller) -> (Snapshot, Vec<String>) {
    let s = c.storcli();
    let snap = backend(&s).snapshot("/c0/v0", Depth::Fast).unwrap();
    (snap, s.calls())
}

/// `dev role state flags` of every drive.
fn rows(snap: &Snapshot) -> Vec<String> {
    snap.drives
        .iter()
        .map(|d| match &d.member {
            Some(m) => format!(
                "{} {:?} {} {} {}",
                d.id.dev,
                m.role,
                m.state,
                m.flags.join(","),
                d.faults
                    .iter()
                    .map(|f| f.condition.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            None => format!(
                "{} - {}",
                d.id.dev,
                d.faults
                    .iter()
                    .map(|f| f.condition.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        })
        .collect()
}

#[test]
fn a_healthy_raid6_of_sata_drives_in_three_calls() {
    let (snap, calls) = look(&Controller::healthy());
    assert_eq!(
        calls,
        [
            "storcli64 /c0 show J",
            "storcli64 /c0/eall/sall show all J",
            "storcli64 /c0/fall show J"
        ]
    );
    assert_eq!(
        rows(&snap),
        [
            "c0/e252/s0 Some(0) in-sync onln ",
            "c0/e252/s1 Some(1) in-sync onln ",
            "c0/e252/s4 Some(3) in-sync onln ",
            "c0/e252/s5 Some(2) in-sync onln ",
        ]
    );
    let a = &snap.array;
    assert_eq!(
        (
            a.name.as_str(),
            a.level.as_str(),
            a.state.as_str(),
            a.running,
            a.raid_disks,
            a.degraded,
            a.redundancy_left
        ),
        ("/c0/v0", "raid6", "Optl", true, 4, 0, 2)
    );
    assert!(snap.problems.is_empty(), "{:?}", snap.problems);
    let d = &snap.drives[1];
    assert_eq!(d.id.slot.as_deref(), Some("252:1"));
    assert_eq!(d.id.transport.as_deref(), Some("sata"));
    assert_eq!(d.id.serial.as_deref(), Some("20032656D63C"));
    assert!(d.id.wwn.is_some() && d.id.firmware.as_deref() == Some("D1MU004"));
    assert_eq!(
        d.member.as_ref().unwrap().name.as_deref(),
        Some("/c0/e252/s1")
    );
    assert_eq!(
        d.counters.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "megaraid.media_errors",
            "megaraid.other_errors",
            "megaraid.predictive_failures"
        ]
    );
    assert!(
        snap.drives
            .iter()
            .all(|d| d.smart.is_none() && d.blank.is_none())
    );
}

#[test]
fn an_offline_member_is_faulty_and_the_vd_degraded() {
    let mut c = Controller::healthy();
    c.set_state(1, "Offln");
    c.set_vd_state("Pdgd");
    let (snap, _) = look(&c);
    assert_eq!(
        rows(&snap)[1],
        "c0/e252/s1 Some(1) faulty offln megaraid.offline"
    );
    let a = &snap.array;
    assert_eq!(
        (a.state.as_str(), a.running, a.degraded, a.redundancy_left),
        ("Pdgd", true, 1, 1)
    );
}

#[test]
fn a_pulled_member_has_no_drive_and_its_row_counts_as_lost() {
    let mut c = Controller::healthy();
    c.pull(1);
    c.set_vd_state("Pdgd");
    let (snap, _) = look(&c);
    assert_eq!(snap.drives.len(), 3);
    assert!(snap.drives.iter().all(|d| d.id.dev != "c0/e252/s1"));
    assert_eq!(
        (
            snap.array.raid_disks,
            snap.array.degraded,
            snap.array.redundancy_left
        ),
        (4, 1, 1)
    );
}

#[test]
fn a_rebuild_shows_its_progress_from_show_rebuild() {
    let mut c = Controller::healthy();
    c.set_state(1, "Rbld");
    c.set_vd_state("Pdgd");
    let s = c.storcli();
    let progress = fixture("show-initialization-J-inprogress.json.txt")
        .replace("/c0/e4/s14", "/c0/e252/s1")
        .replace("\"Progress%\" : 4", "\"Progress%\" : 11");
    s.answer("/c0/e252/s1 show rebuild J", &progress);
    let snap = backend(&s).snapshot("/c0/v0", Depth::Fast).unwrap();
    assert_eq!(s.calls()[2], "storcli64 /c0/e252/s1 show rebuild J");
    assert_eq!(rows(&snap)[1], "c0/e252/s1 Some(1) rebuilding rbld ");
    let sync = snap.array.sync.clone().unwrap();
    assert_eq!(sync.action, "rebuild");
    assert_eq!(sync.total, 960197124096 / 512);
    assert_eq!(sync.done, sync.total / 100 * 11);
    assert_eq!(snap.array.degraded, 1);

    // No progress for a drive that rebuilds: a problem, not silence.
    let idle = progress.replace("\"Progress%\" : 11", "\"Progress%\" : \"-\"");
    s.answer("/c0/e252/s1 show rebuild J", &idle);
    let snap = backend(&s).snapshot("/c0/v0", Depth::Fast).unwrap();
    assert!(snap.array.sync.is_none());
    assert!(
        snap.problems[0].message.contains("gives no progress"),
        "{:?}",
        snap.problems
    );

    // A copyback onto a drive: its progress from `show copyback`.
    let mut c = Controller::healthy();
    c.set_state(4, "Cpybck");
    let s = c.storcli();
    s.answer(
        "/c0/e252/s4 show copyback J",
        &progress.replace("/c0/e252/s1", "/c0/e252/s4"),
    );
    let snap = backend(&s).snapshot("/c0/v0", Depth::Fast).unwrap();
    assert_eq!(s.calls()[2], "storcli64 /c0/e252/s4 show copyback J");
    assert!(snap.problems.is_empty(), "{:?}", snap.problems);
    assert_eq!(snap.array.sync.unwrap().done, 960197124096 / 512 / 100 * 11);
}

#[test]
fn a_foreign_configuration_is_a_problem_and_marks_its_drive() {
    let mut c = Controller::healthy();
    // 252:4 left the group and came back carrying another configuration.
    c.pull(4);
    let c2 = Controller::healthy();
    let key = "Drive /c0/e252/s4";
    let detail = "Drive /c0/e252/s4 - Detailed Information";
    let mut row = c2.drives["Controllers"][0]["Response Data"][key].clone();
    row[0]["DG"] = "F".into();
    row[0]["State"] = "UGood".into();
    data(&mut c.drives)[key] = row;
    data(&mut c.drives)[detail] = c2.drives["Controllers"][0]["Response Data"][detail].clone();
    c.foreign = fixture("pystorcli2-show_foreign_config_00-c0_fall_show_J.json.txt");
    let (snap, _) = look(&c);
    assert_eq!(rows(&snap)[2], "c0/e252/s4 - megaraid.foreign");
    assert_eq!(snap.problems.len(), 1);
    assert_eq!(snap.problems[0].probe, "megaraid.foreign");
    assert!(snap.problems[0].message.contains("never import it"));
}

#[test]
fn hot_spares_and_unconfigured_drives_are_not_members() {
    let mut c = Controller::healthy();
    c.pull(5);
    let healthy = Controller::healthy();
    let key = "Drive /c0/e252/s5";
    let detail = format!("{key} - Detailed Information");
    let mut row = healthy.drives["Controllers"][0]["Response Data"][key].clone();
    row[0]["State"] = "GHS".into();
    row[0]["DG"] = "-".into();
    data(&mut c.drives)[key] = row;
    data(&mut c.drives)[&detail] =
        healthy.drives["Controllers"][0]["Response Data"][&detail].clone();
    c.set_state(0, "UBad");
    let (snap, _) = look(&c);
    let r = rows(&snap);
    assert_eq!(r[0], "c0/e252/s0 Some(0) faulty ubad megaraid.failed");
    assert_eq!(r[3], "c0/e252/s5 None spare ghs ");
}

#[test]
fn smart_alert_and_counters_per_drive_na_on_a_member_is_unreadable() {
    let mut c = Controller::healthy();
    c.state_field(0, "S.M.A.R.T alert flagged by drive", "Yes".into());
    c.state_field(4, "Media Error Count", 7.into());
    c.state_field(5, "Other Error Count", "N/A".into());
    let (snap, _) = look(&c);
    assert_eq!(
        rows(&snap)[0],
        "c0/e252/s0 Some(0) in-sync onln,smart_alert megaraid.smart_alert"
    );
    assert_eq!(snap.drives[2].counters["megaraid.media_errors"], 7);
    assert!(
        !snap.drives[3]
            .counters
            .contains_key("megaraid.other_errors")
    );
    assert_eq!(snap.problems.len(), 1);
    assert_eq!(snap.problems[0].subject, "c0/e252/s5");
    assert!(snap.problems[0].message.contains("`Other Error Count`"));
}

/// SATA, SAS and NVMe drives behind the controller: the transport from
/// `Intf`, the same membership and counters.
#[test]
fn sata_sas_and_nvme_drives() {
    for (intf, transport) in [("SATA", "sata"), ("SAS", "sas"), ("NVMe", "nvme")] {
        let mut c = Controller::healthy();
        for slot in [0, 1, 4, 5] {
            data(&mut c.drives)[&format!("Drive /c0/e252/s{slot}")][0]["Intf"] = intf.into();
        }
        c.attribute(1, "SN", "SER-1");
        let (snap, _) = look(&c);
        assert!(
            snap.drives
                .iter()
                .all(|d| d.id.transport.as_deref() == Some(transport)),
            "{intf}"
        );
        assert_eq!(snap.drives[1].id.serial.as_deref(), Some("SER-1"), "{intf}");
        assert_eq!(
            snap.drives
                .iter()
                .filter(|d| d.state() == Some(MemberState::InSync))
                .count(),
            4
        );
    }
}

/// Every way a call can fail stops the look, naming the call.
#[test]
fn a_failing_call_fails_closed() {
    let c = Controller::healthy();
    let failed = fixture("pystorcli2-error_codes_00-c0_show_J.json.txt");
    for (args, code, stdout, timed_out, want) in [
        (
            "/c0 show J",
            0,
            failed.as_str(),
            false,
            "`storcli64 /c0 show J` failed: Failure: None (Ctrl 0: Failed, ErrCd 59: Incomplete foreign configuration)",
        ),
        (
            "/c0 show J",
            1,
            failed.as_str(),
            false,
            "`storcli64 /c0 show J` failed (exit 1): Failure: None (Ctrl 0: Failed, ErrCd 59: Incomplete foreign configuration)",
        ),
        (
            "/c0/eall/sall show all J",
            0,
            "{\"Controllers\":[{\"Command Status\":",
            false,
            "`storcli64 /c0/eall/sall show all J` printed no valid JSON",
        ),
        (
            "/c0/fall show J",
            0,
            "",
            true,
            "`storcli64 /c0/fall show J` did not finish within 60 s",
        ),
        (
            "/c0/fall show J",
            255,
            "Segmentation fault",
            false,
            "`storcli64 /c0/fall show J` failed (exit 255): Segmentation fault",
        ),
    ] {
        let s = c.storcli();
        s.answer_with(args, code, stdout, timed_out);
        let err = backend(&s).snapshot("/c0/v0", Depth::Fast).unwrap_err();
        assert!(
            format!("{err:#}").starts_with(want),
            "{err:#}\nwant: {want}"
        );
    }
    let s = c.storcli();
    *s.broken.borrow_mut() = Some("/c0 show J".into());
    let err = backend(&s).snapshot("/c0/v0", Depth::Fast).unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "cannot run `storcli64 /c0 show J`: No such file or directory (os error 2)"
    );
    let err = backend(&c.storcli())
        .snapshot("/c0/v7", Depth::Fast)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "controller 0 has no virtual drive `/c0/v7` (it has: /c0/v0)"
    );
    let err = backend(&c.storcli())
        .snapshot("md0", Depth::Fast)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`md0` is not a MegaRAID virtual drive: name it `/cN/vM` (`/c0/v0`)"
    );
}

#[test]
fn arrays_and_their_block_devices() {
    let c = Controller::healthy();
    let s = c.storcli();
    let mut b = backend(&s);
    let known = b.arrays().unwrap();
    assert_eq!(known, ["/c0/v0"]);
    for (given, want) in [
        ("/c0/v0", Ok("/c0/v0")),
        ("c0/v0", Ok("/c0/v0")),
        ("/dev/sda", Ok("/c0/v0")),
        ("sda", Ok("/c0/v0")),
        (
            "/c0/v1",
            Err("`--array /c0/v1`: no such MegaRAID virtual drive (virtual drives here: /c0/v0)"),
        ),
        (
            "/dev/sdb",
            Err(
                "`--array /dev/sdb`: no such MegaRAID virtual drive; name one as `/cN/vM` or by its block device (virtual drives here: /c0/v0)",
            ),
        ),
    ] {
        assert_eq!(
            b.canonical_array(given, &known),
            want.map(str::to_string).map_err(str::to_string),
            "{given}"
        );
    }
    assert_eq!(
        canonical("/dev/sda", &known, &BTreeMap::new(), Some("`x` failed")),
        Err("`--array /dev/sda`: no such MegaRAID virtual drive; name one as `/cN/vM` or by its block device (virtual drives here: /c0/v0); the virtual drives' block devices could not be read: `x` failed".into())
    );
    // No controller, or host bus adapters only: no arrays, no further
    // calls. A controller that answers `Failure`: an error.
    for name in [
        "pystorcli2-test00-show_J.json.txt",
        "pystorcli2-test02-show_J.json.txt",
    ] {
        let s = Storcli::default();
        s.answer("show J", &fixture(name));
        assert_eq!(
            backend(&s).arrays().unwrap(),
            Vec::<String>::new(),
            "{name}"
        );
        assert_eq!(s.calls(), ["storcli64 show J"]);
    }
    let s = Storcli::default();
    s.answer("show J", &fixture("pystorcli2-test03-show_J.json.txt"));
    assert!(
        backend(&s)
            .arrays()
            .unwrap_err()
            .to_string()
            .contains("ErrCd 59")
    );
}

/// A full look reads SMART through the controller, by each drive's DID,
/// on the VD's block device; what cannot be read says why.
#[test]
fn a_full_look_reads_smart_through_the_controller() {
    let c = Controller::healthy();
    let s = c.storcli();
    let mut b = backend(&s);
    b.arrays().unwrap();
    let snap = b.snapshot("/c0/v0", Depth::Full).unwrap();
    let calls = s.calls();
    assert!(
        calls.contains(&"smartctl --json -a -d megaraid,2 /dev/sda".to_string()),
        "{calls:?}"
    );
    assert!(calls.contains(&"smartctl --json -a -d megaraid,6 /dev/sda".to_string()));
    assert!(
        snap.drives
            .iter()
            .all(|d| matches!(d.smart, Some(Smart::Unreadable { .. })))
    );
}

/// Regression: the pulled drive's address is the new drive's once it sits
/// in the same bay, so an address resolves to whatever drive is there now
/// and the quarantine check goes by that drive's serial.
#[test]
fn an_address_names_the_drive_in_that_slot_now() {
    let mut last = BTreeMap::new();
    assert!(matches!(
        resolve("/c0/eall/sall", &last, || ArgDevice::Nothing),
        ArgDevice::Unresolved(_)
    ));
    last.insert(
        0,
        vec![
            "c0/e252/s0".to_string(),
            "c0/e252/s1".to_string(),
            "c0/e8/s2".to_string(),
        ],
    );
    let disks = |arg: &str| match resolve(arg, &last, || ArgDevice::Nothing) {
        ArgDevice::Block { disks, .. } => disks.join(" "),
        other => format!("{other:?}"),
    };
    assert_eq!(disks("/c0/e252/s1"), "c0/e252/s1");
    assert_eq!(disks("/c0/s3"), "c0/s3");
    assert_eq!(disks("/c0/eall/sall"), "c0/e252/s0 c0/e252/s1 c0/e8/s2");
    assert_eq!(disks("/call/eall/sall"), "c0/e252/s0 c0/e252/s1 c0/e8/s2");
    assert_eq!(disks("/c0/e252/sall"), "c0/e252/s0 c0/e252/s1");
    assert_eq!(disks("/c0/fall"), "NotABlockDevice");
    assert_eq!(disks("/c0/v0"), "NotABlockDevice");
    assert_eq!(disks("/c0"), "NotABlockDevice");
    assert_eq!(disks("/dev/sda"), "Nothing");
    assert_eq!(disks("dg=0"), "Nothing");

    // In a look, the new drive in the pulled drive's bay holds its address.
    let mut c = Controller::healthy();
    c.attribute(1, "SN", "NEW-DRIVE-1");
    c.attribute(1, "WWN", "5000C500AAAAAAAA");
    c.set_state(1, "UGood");
    let (snap, _) = look(&c);
    let now = snap.find("c0/e252/s1");
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].id.serial.as_deref(), Some("NEW-DRIVE-1"));
    assert_eq!(now[0].key().0, "serial:NEW-DRIVE-1");
}

#[test]
fn locate_switches_the_bay_led_through_storcli() {
    let c = Controller::healthy();
    let s = c.storcli();
    s.answer(
        "/c0/e252/s1 start locate J",
        &fixture("pystorcli2-spindown_disk_00-c0_e35_s12_spindown_J.json.txt"),
    );
    s.answer(
        "/c0/e252/s1 stop locate J",
        &fixture("pystorcli2-error_codes_01-c0_e252_s7_set_good_J.json.txt"),
    );
    let mut b = backend(&s);
    let snap = b.snapshot("/c0/v0", Depth::Fast).unwrap();
    let id = snap.drives[1].id.clone();
    assert_eq!(
        b.locate(&id, true).unwrap(),
        LocateOutcome::Switched {
            how: "`storcli64 /c0/e252/s1 start locate J`".into()
        }
    );
    match b.locate(&id, false).unwrap() {
        LocateOutcome::Unavailable { reason } => assert!(reason.contains("ErrCd 255"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_tool_on_the_path_is_unavailable_not_an_error() {
    let dir = tempfile::TempDir::new().unwrap();
    let runner =
        crate::backend::process::ProcessRunner::with_path(dir.path().to_str().unwrap()).unwrap();
    let b = MegaraidBackend::real(PathBuf::from("/"), runner);
    let why = b.unavailable().unwrap();
    assert!(
        why.starts_with("MegaRAID is not available: none of `storcli64`, `storcli`, `perccli64`, `perccli` is installed"),
        "{why}"
    );
    let s = Storcli::default();
    assert_eq!(backend(&s).unavailable(), None);
}

/// Regression: the notice that the watch polls was repeated at every
/// turn of the watch.
#[test]
fn the_polling_notice_is_given_once() {
    let s = Storcli::default();
    let mut b = backend(&s);
    assert_eq!(b.notices().len(), 1);
    assert!(b.notices().is_empty());
    assert!(b.notices().is_empty());
}
