//! Tests for the smartctl reader: every captured fixture, hand-broken
//! variants of them, and `probe` against a fake runner.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Result, anyhow};
use serde_json::{Value, json};

use crate::backend::smart::{command, device_path, parse, probe};
use crate::backend::{CommandOutput, CommandRunner};
use crate::health::model::Smart;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/smart")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fixture with `edit` applied to its JSON.
fn edited(name: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut value: Value = serde_json::from_str(&fixture(name)).expect("fixture is JSON");
    edit(&mut value);
    value.to_string()
}

/// The JSON exit status a fixture carries.
fn fixture_code(text: &str) -> Option<i32> {
    let value: Value = serde_json::from_str(text).ok()?;
    let code = value.pointer("/smartctl/exit_status")?.as_i64()?;
    i32::try_from(code).ok()
}

enum Want {
    /// `passed` and the complete counter map.
    Read(bool, &'static [(&'static str, u64)]),
    /// Every fragment must appear in the reason.
    Unreadable(&'static [&'static str]),
}

fn check(label: &str, got: &Smart, want: &Want) {
    match (got, want) {
        (Smart::Read { passed, counters }, Want::Read(want_passed, want_counters)) => {
            assert_eq!(passed, want_passed, "{label}: passed");
            let want_counters: BTreeMap<String, u64> = want_counters
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect();
            assert_eq!(counters, &want_counters, "{label}: counters");
        }
        (Smart::Unreadable { reason }, Want::Unreadable(fragments)) => {
            for fragment in *fragments {
                assert!(
                    reason.contains(fragment),
                    "{label}: reason {reason:?} lacks {fragment:?}"
                );
            }
        }
        (got, _) => panic!("{label}: got {got:?}"),
    }
}

const NVME_ZERO_CRITICAL: &[(&str, u64)] = &[
    ("nvme.critical_warning", 0),
    ("nvme.media_errors", 0),
    ("nvme.num_err_log_entries", 0),
    ("nvme.percentage_used", 0),
    ("nvme.spare_below_threshold", 0),
];

#[test]
fn every_fixture() {
    let table: &[(&str, Want)] = &[
        (
            "smartctl-ata-reallocated-304.json",
            Want::Read(
                true,
                &[
                    ("smart.attribute_failing_now", 0),
                    ("smart.command_timeout", 0),
                    ("smart.current_pending_sector", 0),
                    ("smart.error_log_count", 0),
                    ("smart.offline_uncorrectable", 0),
                    ("smart.reallocated_sector_ct", 304),
                    ("smart.reported_uncorrect", 0),
                    ("smart.udma_crc_error_count", 0),
                ],
            ),
        ),
        (
            // Raw 188 is 17180131332: three packed 16-bit counters, 4 each.
            "smartctl-ata-seagate-188-packed-raw.json",
            Want::Read(
                true,
                &[
                    ("smart.attribute_failing_now", 0),
                    ("smart.command_timeout", 4),
                    ("smart.current_pending_sector", 0),
                    ("smart.error_log_count", 0),
                    ("smart.offline_uncorrectable", 0),
                    ("smart.reallocated_sector_ct", 1),
                    ("smart.reported_uncorrect", 0),
                    ("smart.udma_crc_error_count", 0),
                ],
            ),
        ),
        (
            // Exit 64 (error log has entries) is history, not a read failure.
            "smartctl-ata-crc-errors-exit64.json",
            Want::Read(
                true,
                &[
                    ("smart.attribute_failing_now", 0),
                    ("smart.current_pending_sector", 0),
                    ("smart.error_log_count", 12),
                    ("smart.offline_uncorrectable", 0),
                    ("smart.reallocated_sector_ct", 0),
                    ("smart.udma_crc_error_count", 12),
                ],
            ),
        ),
        (
            // `-x` capture: only the extended error log; vendor names for 187/199.
            "smartctl-ata-full-scrutiny.json",
            Want::Read(
                true,
                &[
                    ("smart.attribute_failing_now", 0),
                    ("smart.error_log_count", 0),
                    ("smart.reallocated_sector_ct", 0),
                    ("smart.reported_uncorrect", 0),
                    ("smart.self_test_failed", 0),
                    ("smart.udma_crc_error_count", 0),
                    // Wear_Leveling_Count: normalized 81, threshold 0.
                    ("smart.wear_leveling_threshold", 0),
                    ("smart.wear_leveling_value", 81),
                ],
            ),
        ),
        (
            // Exit 4 (a SMART command failed) with the data present: read it.
            "smartctl-sat-megaraid-scrutiny.json",
            Want::Read(
                true,
                &[
                    ("smart.attribute_failing_now", 0),
                    ("smart.current_pending_sector", 0),
                    ("smart.error_log_count", 0),
                    ("smart.offline_uncorrectable", 0),
                    ("smart.reallocated_sector_ct", 0),
                    ("smart.self_test_failed", 0),
                    ("smart.udma_crc_error_count", 0),
                ],
            ),
        ),
        (
            "smartctl-error-exit2-scrutiny.json",
            Want::Unreadable(&[
                "`smartctl`",
                "`/dev/sda`",
                "exit status 2",
                "device open failed",
                "Open failed, Error=5",
                "runs as root",
            ]),
        ),
        (
            "smartctl-nvme-critical-warning-failing.json",
            Want::Read(
                false,
                &[
                    ("nvme.critical_warning", 16),
                    ("nvme.media_errors", 0),
                    ("nvme.num_err_log_entries", 0),
                    ("nvme.percentage_used", 0),
                    ("nvme.spare_below_threshold", 0),
                ],
            ),
        ),
        (
            "smartctl-nvme-healthy-intel.json",
            Want::Read(true, NVME_ZERO_CRITICAL),
        ),
        (
            "smartctl-nvme-scrutiny.json",
            Want::Read(true, NVME_ZERO_CRITICAL),
        ),
        (
            // 7.3 spellings; gigabytes_processed is a string.
            "smartctl-sas-healthy-hitachi.json",
            Want::Read(
                true,
                &[
                    ("scsi.grown_defect_list", 0),
                    ("scsi.read_uncorrected", 0),
                    ("scsi.verify_uncorrected", 0),
                    ("scsi.write_uncorrected", 0),
                ],
            ),
        ),
        (
            // 6.7 spellings, no verify page.
            "smartctl-scsi-scrutiny.json",
            Want::Read(
                true,
                &[
                    ("scsi.grown_defect_list", 0),
                    ("scsi.read_uncorrected", 0),
                    ("scsi.write_uncorrected", 0),
                ],
            ),
        ),
        (
            "lab-smartctl-nvme-healthy.json",
            Want::Read(true, NVME_ZERO_CRITICAL),
        ),
        (
            "lab-smartctl-nvme-healthy-namespace.json",
            Want::Read(true, NVME_ZERO_CRITICAL),
        ),
        (
            // The same lab drive after the host set critical warning 0x04.
            "lab-smartctl-nvme-critical-warning-0x04.json",
            Want::Read(
                false,
                &[
                    ("nvme.critical_warning", 4),
                    ("nvme.media_errors", 0),
                    ("nvme.num_err_log_entries", 0),
                    ("nvme.percentage_used", 0),
                    ("nvme.spare_below_threshold", 0),
                ],
            ),
        ),
        (
            "lab-smartctl-sdc.json",
            Want::Read(
                true,
                &[
                    ("smart.attribute_failing_now", 0),
                    ("smart.error_log_count", 0),
                    ("smart.reallocated_sector_ct", 0),
                    ("smart.self_test_failed", 0),
                ],
            ),
        ),
        (
            // QEMU scsi-hd: no smart_status, exit 4.
            "lab-smartctl-sda.json",
            Want::Unreadable(&[
                "no SMART health verdict",
                "`/dev/sda`",
                "SCSI device",
                "does not report SMART support",
                "exit status 4",
            ]),
        ),
        (
            "lab-smartctl-sdb.json",
            Want::Unreadable(&["no SMART health verdict", "`/dev/sdb`", "SCSI device"]),
        ),
        (
            // virtio-blk: exit 1, device type unknown.
            "lab-smartctl-vda.json",
            Want::Unreadable(&[
                "could not read `/dev/vda`",
                "exit status 1",
                "Unable to detect device type",
            ]),
        ),
        (
            // nvme-cli output is not smartctl output, even for the same drive.
            "lab-nvme-smart-log-healthy.json",
            Want::Unreadable(&["not `smartctl --json` output", "no `smartctl` section"]),
        ),
        (
            "lab-nvme-smart-log-critical-warning-0x04.json",
            Want::Unreadable(&["not `smartctl --json` output"]),
        ),
    ];
    for (name, want) in table {
        let text = fixture(name);
        // With the process status, and as a captured file without one.
        check(name, &parse(&text, fixture_code(&text)), want);
        check(&format!("{name} (no code)"), &parse(&text, None), want);
    }
    // Every fixture in the folder has a row.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smart");
    let files = std::fs::read_dir(dir).expect("fixture dir");
    for entry in files {
        let file = entry.expect("dir entry").file_name();
        let file = file.to_string_lossy();
        if file.ends_with(".json") {
            assert!(table.iter().any(|(n, _)| *n == file), "no row for {file}");
        }
    }
}

#[test]
fn malformed_output() {
    let deep = "[".repeat(10_000);
    let truncated = {
        let text = fixture("smartctl-ata-reallocated-304.json");
        text[..text.len() / 2].to_owned()
    };
    let table: Vec<(&str, String, Option<i32>, Want)> =
        vec![
        ("empty", String::new(), Some(0), Want::Unreadable(&["printed nothing", "`smartctl`"])),
        ("blank", " \n\t".into(), None, Want::Unreadable(&["printed nothing"])),
        (
            "empty with open failure",
            String::new(),
            Some(2),
            Want::Unreadable(&["could not read", "device open failed"]),
        ),
        ("empty object", "{}".into(), Some(0), Want::Unreadable(&["no `smartctl` section"])),
        ("array", "[]".into(), Some(0), Want::Unreadable(&["not usable JSON"])),
        ("null", "null".into(), Some(0), Want::Unreadable(&["not usable JSON"])),
        ("number", "42".into(), Some(0), Want::Unreadable(&["not usable JSON"])),
        ("truncated", truncated, Some(0), Want::Unreadable(&["not usable JSON", "EOF"])),
        ("deeply nested", deep, Some(0), Want::Unreadable(&["not usable JSON"])),
        (
            "text from an old smartctl",
            "smartctl 6.6 2016-05-31\nSMART overall-health self-assessment test result: PASSED\n"
                .into(),
            Some(0),
            Want::Unreadable(&["not usable JSON", "smartmontools 7 or later"]),
        ),
        (
            "usage error",
            "=======> UNRECOGNIZED OPTION: json\n".into(),
            Some(1),
            Want::Unreadable(&["command line did not parse"]),
        ),
        (
            "negative process status",
            fixture("smartctl-nvme-healthy-intel.json"),
            Some(-1),
            Want::Unreadable(&["exit status -1", "never uses"]),
        ),
        (
            "process status above 255",
            fixture("smartctl-nvme-healthy-intel.json"),
            Some(256),
            Want::Unreadable(&["exit status 256"]),
        ),
        (
            // The document says open failed though the process said 0.
            "document status wins when worse",
            fixture("smartctl-error-exit2-scrutiny.json"),
            Some(0),
            Want::Unreadable(&["device open failed"]),
        ),
        (
            "open failure reported by the process only",
            fixture("smartctl-nvme-healthy-intel.json"),
            Some(2),
            Want::Unreadable(&["could not read `/dev/nvme0`"]),
        ),
        (
            "document status of the wrong type",
            edited("smartctl-nvme-healthy-intel.json", |v| {
                v["smartctl"]["exit_status"] = json!("0");
            }),
            Some(0),
            Want::Unreadable(&["not usable JSON"]),
        ),
        (
            "document status negative",
            edited("smartctl-nvme-healthy-intel.json", |v| {
                v["smartctl"]["exit_status"] = json!(-4);
            }),
            None,
            Want::Unreadable(&["exit status -4"]),
        ),
        (
            "passed as a string",
            edited("smartctl-nvme-healthy-intel.json", |v| {
                v["smart_status"]["passed"] = json!("true");
            }),
            Some(0),
            Want::Unreadable(&["not usable JSON", "expected a boolean"]),
        ),
        (
            "passed missing",
            edited("smartctl-nvme-healthy-intel.json", |v| {
                v["smart_status"] = json!({"nvme": {"value": 0}});
            }),
            Some(0),
            Want::Unreadable(&["no SMART health verdict", "`/dev/nvme0`", "NVMe device"]),
        ),
        (
            "passed null",
            edited("smartctl-nvme-healthy-intel.json", |v| {
                v["smart_status"]["passed"] = Value::Null;
            }),
            Some(0),
            Want::Unreadable(&["no SMART health verdict"]),
        ),
        (
            "counter as a string",
            edited("smartctl-nvme-healthy-intel.json", |v| {
                v["nvme_smart_health_information_log"]["media_errors"] = json!("0");
            }),
            Some(0),
            Want::Unreadable(&[
                "output for `/dev/nvme0` is not usable JSON",
                "non-negative integer count",
            ]),
        ),
        (
            "counter negative",
            edited("smartctl-nvme-healthy-intel.json", |v| {
                v["nvme_smart_health_information_log"]["media_errors"] = json!(-1);
            }),
            Some(0),
            Want::Unreadable(&["not usable JSON", "-1"]),
        ),
        (
            "counter fractional",
            edited("smartctl-nvme-healthy-intel.json", |v| {
                v["nvme_smart_health_information_log"]["num_err_log_entries"] = json!(2.5);
            }),
            Some(0),
            Want::Unreadable(&["not usable JSON"]),
        ),
        (
            "ATA raw value as a string",
            edited("smartctl-ata-reallocated-304.json", |v| {
                v["ata_smart_attributes"]["table"][0]["raw"]["value"] = json!("0");
            }),
            Some(0),
            Want::Unreadable(&["not usable JSON"]),
        ),
        (
            "ATA attribute id as a string",
            edited("smartctl-ata-reallocated-304.json", |v| {
                v["ata_smart_attributes"]["table"][0]["id"] = json!("5");
            }),
            Some(0),
            Want::Unreadable(&["not usable JSON"]),
        ),
        (
            "SMART disabled",
            edited("lab-smartctl-sdc.json", |v| {
                let o = v.as_object_mut().expect("object");
                o.remove("smart_status");
                o.remove("ata_smart_attributes");
                o.insert("smart_support".into(), json!({"available": true, "enabled": false}));
            }),
            Some(0),
            Want::Unreadable(&["SMART is disabled", "smartctl -s on /dev/sdc"]),
        ),
        (
            // Bit 2 and the attribute table missing, though the verdict is there.
            "ATA without attribute table",
            edited("smartctl-ata-reallocated-304.json", |v| {
                v.as_object_mut().expect("object").remove("ata_smart_attributes");
            }),
            Some(4),
            Want::Unreadable(&["no ATA SMART attribute table", "`/dev/sda`", "exit status 4"]),
        ),
        (
            "NVMe without health log",
            edited("smartctl-nvme-healthy-intel.json", |v| {
                let o = v.as_object_mut().expect("object");
                o.remove("nvme_smart_health_information_log");
            }),
            Some(0),
            Want::Unreadable(&["no NVMe SMART/health information log"]),
        ),
        (
            "no protocol and no counters",
            r#"{"smartctl": {"exit_status": 0}, "smart_status": {"passed": true}}"#.into(),
            None,
            Want::Unreadable(&["output for the device has no device protocol"]),
        ),
        (
            "unknown protocol name and no counters",
            r#"{"smartctl": {}, "device": {"name": "/dev/x", "protocol": "Fibre"},
                "smart_status": {"passed": true}}"#
                .into(),
            Some(0),
            Want::Unreadable(&["no device protocol", "`/dev/x`"]),
        ),
        (
            "device name with escape sequences is sanitised",
            r#"{"smartctl": {}, "device": {"name": "/dev/x\u001b[2J"}}"#.into(),
            Some(0),
            Want::Unreadable(&["`/dev/x?[2J`"]),
        ),
    ];
    for (label, text, code, want) in &table {
        check(label, &parse(text, *code), want);
    }
}

#[test]
fn readings_from_edited_fixtures() {
    let huge = "340282366920938463463374607431768211455";
    let table: Vec<(&str, String, Option<i32>, Want)> = vec![
        (
            // A 128-bit media error count too wide for u64 saturates.
            "huge NVMe counter",
            fixture("smartctl-nvme-healthy-intel.json")
                .replace("\"media_errors\": 0", &format!("\"media_errors\": {huge}")),
            Some(0),
            Want::Read(
                true,
                &[
                    ("nvme.critical_warning", 0),
                    ("nvme.media_errors", u64::MAX),
                    ("nvme.num_err_log_entries", 0),
                    ("nvme.percentage_used", 0),
                    ("nvme.spare_below_threshold", 0),
                ],
            ),
        ),
        (
            // smartctl 7.0 wrote wide values as an object.
            "wide counter in the 7.0 object form",
            edited("smartctl-nvme-healthy-intel.json", |v| {
                v["nvme_smart_health_information_log"]["num_err_log_entries"] = json!({"n": 18446744073709551621_f64, "s": "18446744073709551621",
                           "le": [5, 0, 0, 0, 0, 0, 0, 0, 1]});
            }),
            Some(0),
            Want::Read(
                true,
                &[
                    ("nvme.critical_warning", 0),
                    ("nvme.media_errors", 0),
                    ("nvme.num_err_log_entries", u64::MAX),
                    ("nvme.percentage_used", 0),
                    ("nvme.spare_below_threshold", 0),
                ],
            ),
        ),
        (
            "spare below threshold, wear past 100 percent",
            edited("smartctl-nvme-healthy-intel.json", |v| {
                let log = &mut v["nvme_smart_health_information_log"];
                log["available_spare"] = json!(5);
                log["percentage_used"] = json!(255);
            }),
            Some(0),
            Want::Read(
                true,
                &[
                    ("nvme.critical_warning", 0),
                    ("nvme.media_errors", 0),
                    ("nvme.num_err_log_entries", 0),
                    ("nvme.percentage_used", 255),
                    ("nvme.spare_below_threshold", 1),
                ],
            ),
        ),
        (
            "NVMe log with only some fields",
            edited("smartctl-nvme-healthy-intel.json", |v| {
                v["nvme_smart_health_information_log"] = json!({"critical_warning": 2});
            }),
            Some(0),
            Want::Read(true, &[("nvme.critical_warning", 2)]),
        ),
        (
            "attributes failing now and in the past, a duplicated id",
            edited("lab-smartctl-sdc.json", |v| {
                let table = v["ata_smart_attributes"]["table"]
                    .as_array_mut()
                    .expect("table");
                table[0]["when_failed"] = json!("now");
                table[1]["when_failed"] = json!("now");
                table[2]["when_failed"] = json!("past");
                table.push(json!({"id": 5, "when_failed": "",
                                  "raw": {"value": 9, "string": "9"}}));
                table.push(json!({"id": 197, "name": "Current_Pending_Sector"}));
            }),
            Some(16),
            Want::Read(
                true,
                &[
                    ("smart.attribute_failing_now", 2),
                    ("smart.error_log_count", 0),
                    ("smart.reallocated_sector_ct", 9),
                    ("smart.self_test_failed", 0),
                ],
            ),
        ),
        (
            // Exit bit 3 says failing though smart_status says passed.
            "disk failing bit overrides passed",
            fixture("smartctl-nvme-healthy-intel.json"),
            Some(8),
            Want::Read(false, NVME_ZERO_CRITICAL),
        ),
        (
            "disk failing bit without smart_status",
            edited("smartctl-nvme-healthy-intel.json", |v| {
                v.as_object_mut().expect("object").remove("smart_status");
            }),
            Some(8),
            Want::Read(false, NVME_ZERO_CRITICAL),
        ),
        (
            // A failing verdict stands even when the counters are missing.
            "failing ATA without attribute table",
            edited("smartctl-ata-reallocated-304.json", |v| {
                let o = v.as_object_mut().expect("object");
                o.remove("ata_smart_attributes");
                o.remove("ata_smart_error_log");
                o.insert("smart_status".into(), json!({"passed": false}));
            }),
            Some(12),
            Want::Read(false, &[]),
        ),
        (
            "SCSI with verdict and no log pages",
            edited("smartctl-sas-healthy-hitachi.json", |v| {
                let o = v.as_object_mut().expect("object");
                o.remove("scsi_grown_defect_list");
                o.remove("scsi_error_counter_log");
            }),
            Some(0),
            Want::Read(true, &[]),
        ),
        (
            "SCSI gigabytes_processed as a number, counters set",
            edited("smartctl-sas-healthy-hitachi.json", |v| {
                let log = &mut v["scsi_error_counter_log"];
                log["read"]["gigabytes_processed"] = json!(162438.759);
                log["read"]["total_uncorrected_errors"] = json!(3);
                log["write"]["total_uncorrected_errors"] = json!(1);
                v["scsi_grown_defect_list"] = json!(17);
            }),
            Some(0),
            Want::Read(
                true,
                &[
                    ("scsi.grown_defect_list", 17),
                    ("scsi.read_uncorrected", 3),
                    ("scsi.verify_uncorrected", 0),
                    ("scsi.write_uncorrected", 1),
                ],
            ),
        ),
        (
            "SCSI failing with sense data",
            edited("smartctl-sas-healthy-hitachi.json", |v| {
                v["smart_status"] = json!({"passed": false,
                    "scsi": {"asc": 93, "ascq": 16, "ie_string": "FAILURE PREDICTION THRESHOLD EXCEEDED"}});
            }),
            Some(8),
            Want::Read(
                false,
                &[
                    ("scsi.grown_defect_list", 0),
                    ("scsi.read_uncorrected", 0),
                    ("scsi.verify_uncorrected", 0),
                    ("scsi.write_uncorrected", 0),
                ],
            ),
        ),
        (
            // Without device.protocol the family is told by its data.
            "protocol inferred from the NVMe log",
            edited("smartctl-nvme-healthy-intel.json", |v| {
                v.as_object_mut().expect("object").remove("device");
            }),
            Some(0),
            Want::Read(true, NVME_ZERO_CRITICAL),
        ),
        (
            "unknown fields everywhere are ignored",
            edited("smartctl-ata-reallocated-304.json", |v| {
                v["future_section"] = json!({"x": [1, 2, {"y": null}]});
                v["smart_status"]["future"] = json!("maybe");
                v["ata_smart_attributes"]["table"][0]["future"] = json!(-7);
            }),
            Some(0),
            Want::Read(
                true,
                &[
                    ("smart.attribute_failing_now", 0),
                    ("smart.command_timeout", 0),
                    ("smart.current_pending_sector", 0),
                    ("smart.error_log_count", 0),
                    ("smart.offline_uncorrectable", 0),
                    ("smart.reallocated_sector_ct", 304),
                    ("smart.reported_uncorrect", 0),
                    ("smart.udma_crc_error_count", 0),
                ],
            ),
        ),
    ];
    for (label, text, code, want) in &table {
        check(label, &parse(text, *code), want);
    }
}

/// A runner that gives one canned answer and records what it was asked.
struct FakeRunner {
    reply: Option<Result<CommandOutput>>,
    calls: Vec<(Vec<String>, Duration)>,
}

impl FakeRunner {
    fn new(reply: Result<CommandOutput>) -> FakeRunner {
        FakeRunner {
            reply: Some(reply),
            calls: Vec::new(),
        }
    }
}

impl CommandRunner for FakeRunner {
    fn run(&mut self, argv: &[String], timeout: Duration) -> Result<CommandOutput> {
        self.calls.push((argv.to_vec(), timeout));
        self.reply
            .take()
            .unwrap_or_else(|| Err(anyhow!("fake runner asked twice")))
    }
}

fn output(code: Option<i32>, stdout: &str, stderr: &str, timed_out: bool) -> CommandOutput {
    CommandOutput {
        argv: command("/dev/sda"),
        code,
        stdout: stdout.to_owned(),
        stderr: stderr.to_owned(),
        timed_out,
    }
}

#[test]
fn probe_with_a_fake_runner() {
    let healthy = fixture("smartctl-ata-reallocated-304.json");
    let failing = fixture("lab-smartctl-nvme-critical-warning-0x04.json");
    let table: Vec<(&str, Result<CommandOutput>, Want)> = vec![
        (
            "smartctl missing",
            Err(anyhow!("No such file or directory (os error 2)")
                .context("cannot start `smartctl --json -a /dev/sda`")),
            Want::Unreadable(&[
                "cannot run `smartctl` for `/dev/sda`",
                "No such file or directory",
                "install smartmontools",
            ]),
        ),
        (
            "timed out",
            Ok(output(None, "", "", true)),
            Want::Unreadable(&["`smartctl` did not finish within 30s for `/dev/sda`"]),
        ),
        (
            // Even a complete-looking document does not count after a timeout.
            "timed out with output",
            Ok(output(None, &healthy, "", true)),
            Want::Unreadable(&["did not finish"]),
        ),
        (
            "killed by a signal",
            Ok(output(None, &healthy, "", false)),
            Want::Unreadable(&["killed by a signal", "`/dev/sda`"]),
        ),
        (
            "empty output, message on stderr",
            Ok(output(Some(0), "", "smartctl: permission denied\n", false)),
            Want::Unreadable(&[
                "printed nothing for `/dev/sda`",
                "it said: smartctl: permission denied",
            ]),
        ),
        (
            "empty output, exit 2, message on stderr",
            Ok(output(Some(2), "", "\n open failed \n", false)),
            Want::Unreadable(&["could not read `/dev/sda`", "it said: open failed"]),
        ),
        (
            "reads a healthy drive",
            Ok(output(Some(0), &healthy, "", false)),
            Want::Read(
                true,
                &[
                    ("smart.attribute_failing_now", 0),
                    ("smart.command_timeout", 0),
                    ("smart.current_pending_sector", 0),
                    ("smart.error_log_count", 0),
                    ("smart.offline_uncorrectable", 0),
                    ("smart.reallocated_sector_ct", 304),
                    ("smart.reported_uncorrect", 0),
                    ("smart.udma_crc_error_count", 0),
                ],
            ),
        ),
        (
            "reads a failing drive",
            Ok(output(Some(8), &failing, "", false)),
            Want::Read(
                false,
                &[
                    ("nvme.critical_warning", 4),
                    ("nvme.media_errors", 0),
                    ("nvme.num_err_log_entries", 0),
                    ("nvme.percentage_used", 0),
                    ("nvme.spare_below_threshold", 0),
                ],
            ),
        ),
        (
            // The reason names the device asked for, not the document's.
            "names the device it was asked about",
            Ok(output(Some(0), "{}", "", false)),
            Want::Unreadable(&["`/dev/sda`", "no `smartctl` section"]),
        ),
    ];
    let timeout = Duration::from_secs(30);
    for (label, reply, want) in table {
        let mut runner = FakeRunner::new(reply);
        let got = probe(&mut runner, "sda", timeout);
        check(label, &got, &want);
        assert_eq!(
            runner.calls,
            vec![(command("/dev/sda"), timeout)],
            "{label}: argv and timeout"
        );
    }
}

#[test]
fn argv_and_device_paths() {
    assert_eq!(command("sda"), ["smartctl", "--json", "-a", "/dev/sda"]);
    assert_eq!(
        command("/dev/disk/by-id/ata-X"),
        ["smartctl", "--json", "-a", "/dev/disk/by-id/ata-X"]
    );
    for (dev, want) in [
        ("nvme0n1", "/dev/nvme0n1"),
        ("/dev/nvme0", "/dev/nvme0"),
        ("sdb", "/dev/sdb"),
    ] {
        assert_eq!(device_path(dev), want);
    }
}
