//! The verdict over captured smartctl output (tests/fixtures/smart/, copies
//! of ../shared/reference/samples/) and hand edits of it, plus md facts.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use super::{CONDITIONS, Level, judge};
use crate::backend::smart::parse;
use crate::health::model::{ArrayHealth, Drive, Identity, MemberState, Membership, Smart};

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/smart")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// A member of an md array, its faults filled as md fills them.
fn drive(smart: Option<Smart>, flags: &[&str], md: &[(&str, u64)]) -> Drive {
    let mut d = Drive {
        id: Identity {
            dev: "sda".into(),
            serial: Some("A1".into()),
            slot: Some("0".into()),
            ..Identity::default()
        },
        member: Some(Membership {
            state: MemberState::InSync,
            role: Some(0),
            flags: flags.iter().map(|f| (*f).to_string()).collect(),
            name: None,
        }),
        counters: md.iter().map(|(k, v)| ((*k).to_string(), *v)).collect(),
        smart,
        blank: None,
        faults: Vec::new(),
    };
    crate::backend::md::facts::annotate_drive(&mut d);
    d
}

/// The fixture, edited, read as smartctl's JSON with its own exit status.
fn smart_of(name: &str, edit: impl FnOnce(&mut Value)) -> Smart {
    let mut value = fixture(name);
    edit(&mut value);
    let code = value
        .pointer("/smartctl/exit_status")
        .and_then(Value::as_i64)
        .and_then(|c| i32::try_from(c).ok());
    parse(&value.to_string(), code)
}

fn unchanged(_: &mut Value) {}

/// `(level, ["condition=value", ...])` for a drive.
fn seen(d: &Drive, last: bool, accepted: &[&str]) -> (Level, Vec<String>) {
    let accepted: Vec<String> = accepted.iter().map(|a| (*a).to_string()).collect();
    let v = judge(d, last, &accepted);
    let found = v
        .findings
        .iter()
        .map(|f| {
            format!(
                "{}={}{}",
                f.condition,
                f.value,
                if f.accepted { " accepted" } else { "" }
            )
        })
        .collect();
    (v.level, found)
}

type Edit = fn(&mut Value);
/// Label, fixture, edit, last copy, level, findings.
type FixtureCase = (
    &'static str,
    &'static str,
    Edit,
    bool,
    Level,
    &'static [&'static str],
);
/// Label, drive, accepted, level, findings.
type DriveCase = (
    &'static str,
    Drive,
    &'static [&'static str],
    Level,
    &'static [&'static str],
);

#[test]
fn verdicts_from_captured_and_edited_smartctl_output() {
    let table: &[FixtureCase] = &[
        (
            "healthy NVMe",
            "smartctl-nvme-healthy-intel.json",
            unchanged,
            true,
            Level::Healthy,
            &[],
        ),
        (
            "NVMe survivor with media errors (issue 10 item 2)",
            "smartctl-nvme-healthy-intel.json",
            |v| v["nvme_smart_health_information_log"]["media_errors"] = json!(7),
            true,
            Level::Failing,
            &["nvme.media_errors=7"],
        ),
        (
            "NVMe spare below its threshold",
            "smartctl-nvme-healthy-intel.json",
            |v| v["nvme_smart_health_information_log"]["available_spare"] = json!(9),
            true,
            Level::Failing,
            &["nvme.spare_below_threshold=1"],
        ),
        (
            "NVMe worn to 93%",
            "smartctl-nvme-healthy-intel.json",
            |v| v["nvme_smart_health_information_log"]["percentage_used"] = json!(93),
            true,
            Level::AtRisk,
            &["nvme.percentage_used=93 (threshold 90)"],
        ),
        (
            "NVMe worn to 89% is not at risk yet",
            "smartctl-nvme-healthy-intel.json",
            |v| v["nvme_smart_health_information_log"]["percentage_used"] = json!(89),
            true,
            Level::Healthy,
            &[],
        ),
        (
            "NVMe error-log entries alone are not judged (they count harmless entries)",
            "smartctl-nvme-healthy-intel.json",
            |v| v["nvme_smart_health_information_log"]["num_err_log_entries"] = json!(4),
            true,
            Level::Healthy,
            &[],
        ),
        (
            "NVMe failed self-test in the log",
            "smartctl-nvme-healthy-intel.json",
            |v| {
                v["nvme_self_test_log"] = json!({"table": [
                    {"self_test_code": {"value": 1}, "self_test_result": {"value": 0}},
                    {"self_test_code": {"value": 2}, "self_test_result": {"value": 7}},
                ]})
            },
            true,
            Level::AtRisk,
            &["smart.self_test_failed=1"],
        ),
        (
            "NVMe critical warning, SMART failed",
            "smartctl-nvme-critical-warning-failing.json",
            unchanged,
            true,
            Level::Failing,
            &["smart.overall_health=FAILED", "nvme.critical_warning=16"],
        ),
        (
            "healthy SAS",
            "smartctl-sas-healthy-hitachi.json",
            unchanged,
            true,
            Level::Healthy,
            &[],
        ),
        (
            "SAS survivor with 260 grown defects and uncorrected writes (issue 10 item 2)",
            "smartctl-sas-healthy-hitachi.json",
            |v| {
                v["scsi_grown_defect_list"] = json!(260);
                v["scsi_error_counter_log"]["write"]["total_uncorrected_errors"] = json!(312);
            },
            true,
            Level::Failing,
            &["scsi.grown_defect_list=260", "scsi.write_uncorrected=312"],
        ),
        (
            "SAS failed self-test",
            "smartctl-sas-healthy-hitachi.json",
            |v| {
                v["scsi_self_test_0"] = json!({"code": {"value": 2}, "result": {"value": 0}});
                v["scsi_self_test_1"] = json!({"code": {"value": 1}, "result": {"value": 7}});
            },
            true,
            Level::AtRisk,
            &["smart.self_test_failed=1"],
        ),
        (
            "ATA with 304 reallocated sectors, last copy",
            "smartctl-ata-reallocated-304.json",
            unchanged,
            true,
            Level::Failing,
            &["smart.reallocated_sector_ct=304"],
        ),
        (
            "ATA with 304 reallocated sectors, another copy remains",
            "smartctl-ata-reallocated-304.json",
            unchanged,
            false,
            Level::AtRisk,
            &["smart.reallocated_sector_ct=304 (another copy remains)"],
        ),
        (
            "ATA pending and offline uncorrectable",
            "smartctl-ata-reallocated-304.json",
            |v| {
                for row in v["ata_smart_attributes"]["table"]
                    .as_array_mut()
                    .expect("table")
                {
                    if row["id"] == json!(197) || row["id"] == json!(198) {
                        row["raw"] = json!({"value": 8, "string": "8"});
                    }
                    if row["id"] == json!(5) {
                        row["raw"] = json!({"value": 0, "string": "0"});
                    }
                }
            },
            true,
            Level::Failing,
            &[
                "smart.current_pending_sector=8",
                "smart.offline_uncorrectable=8",
            ],
        ),
        (
            "ATA CRC errors fill the error log: at risk, not failing",
            "smartctl-ata-crc-errors-exit64.json",
            unchanged,
            true,
            Level::AtRisk,
            &["smart.error_log_count=12"],
        ),
        (
            "ATA SSD with wear-levelling left",
            "smartctl-ata-full-scrutiny.json",
            unchanged,
            true,
            Level::Healthy,
            &[],
        ),
        (
            "ATA SSD worn out: wear-levelling at its threshold",
            "smartctl-ata-full-scrutiny.json",
            |v| {
                for row in v["ata_smart_attributes"]["table"]
                    .as_array_mut()
                    .expect("table")
                {
                    if row["id"] == json!(177) {
                        row["value"] = json!(5);
                        row["thresh"] = json!(5);
                    }
                }
            },
            true,
            Level::AtRisk,
            &["smart.wear_leveling=5 (threshold 5)"],
        ),
        (
            "ATA read failure in the self-test log (whole status byte 0x74)",
            "smartctl-ata-full-scrutiny.json",
            |v| {
                v["ata_smart_self_test_log"]["extended"]["table"][0]["status"] =
                    json!({"value": 116, "string": "Completed: read failure", "passed": false});
            },
            true,
            Level::AtRisk,
            &["smart.self_test_failed=1"],
        ),
        (
            "ATA self-test aborted by the host is no failure",
            "smartctl-ata-full-scrutiny.json",
            |v| {
                v["ata_smart_self_test_log"]["extended"]["table"][0]["status"] =
                    json!({"value": 1, "string": "Aborted by host", "passed": false});
            },
            true,
            Level::Healthy,
            &[],
        ),
        (
            "exit status bit 7 without a readable self-test log",
            "smartctl-ata-reallocated-304.json",
            |v| {
                v["smartctl"]["exit_status"] = json!(128);
                for row in v["ata_smart_attributes"]["table"]
                    .as_array_mut()
                    .expect("table")
                {
                    if row["id"] == json!(5) {
                        row["raw"] = json!({"value": 0, "string": "0"});
                    }
                }
            },
            true,
            Level::AtRisk,
            &["smart.self_test_failed=1"],
        ),
    ];
    for (label, name, edit, last, level, want) in table {
        let smart = smart_of(name, edit);
        assert!(
            matches!(smart, Smart::Read { .. }),
            "{label}: not read: {smart:?}"
        );
        let d = drive(
            Some(smart),
            &["in_sync"],
            &[("md.errors", 0), ("md.bad_blocks", 0)],
        );
        let (got_level, found) = seen(&d, *last, &[]);
        assert_eq!(
            found,
            want.iter().map(|s| (*s).to_string()).collect::<Vec<_>>(),
            "{label}"
        );
        assert_eq!(got_level, *level, "{label}");
    }
}

#[test]
fn verdicts_from_md_facts_and_acceptance() {
    let passed = || {
        Some(Smart::Read {
            passed: true,
            counters: BTreeMap::new(),
        })
    };
    let table: &[DriveCase] = &[
        (
            "md write error and want_replacement flags",
            drive(
                passed(),
                &["in_sync", "write_error", "want_replacement"],
                &[],
            ),
            &[],
            Level::Failing,
            &["md.write_error=set", "md.want_replacement=set"],
        ),
        (
            "md bad blocks recorded",
            drive(passed(), &["in_sync"], &[("md.bad_blocks", 3)]),
            &[],
            Level::Failing,
            &["md.bad_blocks=3"],
        ),
        (
            "accepted condition does not count",
            drive(passed(), &["in_sync"], &[("md.bad_blocks", 3)]),
            &["md.bad_blocks"],
            Level::Healthy,
            &["md.bad_blocks=3 accepted"],
        ),
        (
            "accepting one condition leaves the others",
            drive(passed(), &["in_sync", "blocked"], &[("md.bad_blocks", 3)]),
            &["md.bad_blocks"],
            Level::Failing,
            &["md.blocked=set", "md.bad_blocks=3 accepted"],
        ),
        (
            "SMART unreadable is unknown, never healthy",
            drive(
                Some(Smart::Unreadable {
                    reason: "timeout".into(),
                }),
                &["in_sync"],
                &[],
            ),
            &[],
            Level::Unknown,
            &[],
        ),
        (
            "SMART not read is unknown",
            drive(None, &["in_sync"], &[]),
            &[],
            Level::Unknown,
            &[],
        ),
        (
            "failing beats unknown",
            drive(None, &["in_sync", "write_error"], &[]),
            &[],
            Level::Failing,
            &["md.write_error=set"],
        ),
    ];
    for (label, d, accepted, level, want) in table {
        let (got_level, found) = seen(d, true, accepted);
        assert_eq!(
            found,
            want.iter().map(|s| (*s).to_string()).collect::<Vec<_>>(),
            "{label}"
        );
        assert_eq!(got_level, *level, "{label}");
    }
}

#[test]
fn last_copy_by_level() {
    for (level, disks, degraded, leaving, want) in [
        ("raid1", 2, 0, 1, true),
        ("raid1", 3, 0, 1, false),
        ("raid1", 3, 1, 1, true),
        ("raid1", 2, 0, 0, false),
        ("raid5", 4, 0, 1, true),
        ("raid6", 5, 0, 1, false),
        ("raid6", 5, 1, 1, true),
        ("raid10", 4, 0, 1, true),
        ("linear", 2, 0, 0, true),
    ] {
        let mut array = ArrayHealth {
            level: level.into(),
            raid_disks: disks,
            degraded,
            ..ArrayHealth::default()
        };
        crate::backend::md::facts::annotate_array(&mut array);
        assert_eq!(
            array.last_copy(leaving),
            want,
            "{level} {disks} {degraded} {leaving}"
        );
    }
}

#[test]
fn condition_names_are_unique_and_namespaced() {
    let all = crate::backend::registry::condition_names();
    let mut names: Vec<&str> = all.clone();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len());
    assert!(all.len() > CONDITIONS.len());
    for name in names {
        assert!(
            name.split_once('.')
                .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty()),
            "{name}"
        );
    }
}

#[test]
fn summary_lists_reasons() {
    let d = drive(
        Some(Smart::Read {
            passed: true,
            counters: BTreeMap::from([("nvme.media_errors".into(), 7)]),
        }),
        &["in_sync"],
        &[],
    );
    assert_eq!(
        judge(&d, true, &[]).summary(),
        "failing: nvme.media_errors = 7 (NVMe unrecovered media and data integrity errors)"
    );
    let healthy = drive(
        Some(Smart::Read {
            passed: true,
            counters: BTreeMap::new(),
        }),
        &["in_sync"],
        &[],
    );
    assert_eq!(judge(&healthy, true, &[]).summary(), "healthy");
}
