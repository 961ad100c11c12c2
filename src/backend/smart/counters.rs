//! SMART error counters per protocol, under the names the guard compares.
//!
//! Only counters the drive reports are included: a missing key means "not
//! reported", never zero. ATA attributes are keyed on their id because their
//! names differ between drive database entries (id 5 is
//! `Reallocated_Sector_Ct` on one drive and `Reallocate_NAND_Blk_Cnt` on
//! another).

use std::collections::BTreeMap;

use crate::backend::smart::json::{
    AtaAttribute, AtaAttributes, AtaErrorLog, AtaSelfTestLog, Count, NvmeHealth, NvmeSelfTestLog,
    Raw, ScsiErrorCounterLog, ScsiErrorCounters, SelfTestStatus,
};
use crate::health::verdict::{WEAR_LEVELING_THRESHOLD, WEAR_LEVELING_VALUE};

/// Counter name for the number of failed self-tests in the drive's log.
pub(super) const SELF_TEST_FAILED: &str = "smart.self_test_failed";

/// Attribute names (smartctl's drive database) that count remaining
/// endurance in their normalized value: Samsung's and Micron's
/// `Wear_Leveling_Count` (177/173), Intel's `Media_Wearout_Indicator` (233),
/// SandForce's `SSD_Life_Left` (231), Crucial's `Percent_Lifetime_Remain`
/// (202). Matched by name, because id 231 is the temperature on other drives.
const WEAR_NAMES: [&str; 5] = [
    "Wear_Leveling_Count",
    "Media_Wearout_Indicator",
    "SSD_Life_Left",
    "Percent_Lifetime_Remain",
    "Remaining_Lifetime_Perc",
];

/// Counter name for each ATA attribute id that is watched.
const ATA_ATTRIBUTES: [(u32, &str); 6] = [
    (5, "smart.reallocated_sector_ct"),
    (187, "smart.reported_uncorrect"),
    (188, "smart.command_timeout"),
    (197, "smart.current_pending_sector"),
    (198, "smart.offline_uncorrectable"),
    (199, "smart.udma_crc_error_count"),
];

/// Every counter name this module can produce, for lint to check runbooks'
/// `[guard]` lists against (a misspelt name would silently never match).
pub const NAMES: [&str; 18] = [
    "smart.reallocated_sector_ct",
    "smart.reported_uncorrect",
    "smart.command_timeout",
    "smart.current_pending_sector",
    "smart.offline_uncorrectable",
    "smart.udma_crc_error_count",
    "smart.attribute_failing_now",
    "smart.error_log_count",
    "smart.self_test_failed",
    "nvme.critical_warning",
    "nvme.media_errors",
    "nvme.num_err_log_entries",
    "nvme.percentage_used",
    "nvme.spare_below_threshold",
    "scsi.grown_defect_list",
    "scsi.read_uncorrected",
    "scsi.write_uncorrected",
    "scsi.verify_uncorrected",
];

/// ATA: the watched attributes, the error log count and how many attributes
/// are failing now.
pub(super) fn ata(
    attributes: &AtaAttributes,
    error_log: Option<&AtaErrorLog>,
    counters: &mut BTreeMap<String, u64>,
) {
    for attribute in &attributes.table {
        let Some((_, name)) = ATA_ATTRIBUTES.iter().find(|(id, _)| *id == attribute.id) else {
            continue;
        };
        let Some(count) = attribute
            .raw
            .as_ref()
            .and_then(|raw| raw_count(attribute.id, raw))
        else {
            continue;
        };
        // A table listing an id twice keeps the larger count, so neither
        // entry can hide an increase in the other.
        let slot = counters.entry((*name).to_owned()).or_insert(count);
        *slot = (*slot).max(count);
    }
    let failing_now = attributes
        .table
        .iter()
        .filter(|a| a.when_failed.as_deref() == Some("now"))
        .count();
    counters.insert(
        "smart.attribute_failing_now".to_owned(),
        u64::try_from(failing_now).unwrap_or(u64::MAX),
    );
    // `-a` gives the summary SMART error log; a captured `-x` run only the
    // extended one. Either count is the number of errors the drive logged.
    let logged = error_log.and_then(|log| {
        let summary = log.summary.as_ref().and_then(|s| s.count);
        summary.or_else(|| log.extended.as_ref().and_then(|e| e.count))
    });
    if let Some(Count(n)) = logged {
        counters.insert("smart.error_log_count".to_owned(), n);
    }
    wear_leveling(&attributes.table, counters);
}

/// The most worn wear-levelling attribute: its normalized value and failure
/// threshold (the verdict compares them; a value at or below the threshold
/// is worn out).
fn wear_leveling(table: &[AtaAttribute], counters: &mut BTreeMap<String, u64>) {
    let worn = table
        .iter()
        .filter(|a| {
            a.name
                .as_deref()
                .is_some_and(|n| WEAR_NAMES.iter().any(|w| n.eq_ignore_ascii_case(w)))
        })
        .filter_map(|a| match (a.value, a.thresh) {
            (Some(Count(value)), Some(Count(thresh))) => Some((value, thresh)),
            _ => None,
        })
        .min_by_key(|(value, thresh)| value.saturating_sub(*thresh));
    if let Some((value, thresh)) = worn {
        counters.insert(WEAR_LEVELING_VALUE.to_owned(), value);
        counters.insert(WEAR_LEVELING_THRESHOLD.to_owned(), thresh);
    }
}

/// Failed self-tests in the ATA self-test log (standard or extended).
/// Status codes 3 to 8 are failures (fatal error, unknown, electrical,
/// servo, read, handling damage); smartctl's own `passed: false` counts too.
pub(super) fn ata_self_tests(log: &AtaSelfTestLog, counters: &mut BTreeMap<String, u64>) {
    let tables = [&log.standard, &log.extended];
    let failed = tables
        .iter()
        .filter_map(|part| part.as_ref())
        .flat_map(|part| part.table.iter())
        .filter(|test| {
            test.status
                .as_ref()
                .is_some_and(|s| failed_status(s, 3..=8))
        })
        .count();
    counters.insert(
        SELF_TEST_FAILED.to_owned(),
        u64::try_from(failed).unwrap_or(u64::MAX),
    );
}

/// Failed self-tests in the NVMe self-test log: results 5 (fatal or unknown
/// error), 6 (a segment failed, which one unknown) and 7 (segments failed).
pub(super) fn nvme_self_tests(log: &NvmeSelfTestLog, counters: &mut BTreeMap<String, u64>) {
    let failed = log
        .table
        .iter()
        .filter(|test| {
            test.self_test_result
                .as_ref()
                .is_some_and(|s| failed_status(s, 5..=7))
        })
        .count();
    counters.insert(
        SELF_TEST_FAILED.to_owned(),
        u64::try_from(failed).unwrap_or(u64::MAX),
    );
}

/// Failed self-tests among SCSI's `scsi_self_test_N` entries: results 3
/// (unknown error) to 7 (failed in a segment). smartctl prints one key per
/// entry, so they are read from the document as a whole.
pub(super) fn scsi_self_tests(document: &serde_json::Value, counters: &mut BTreeMap<String, u64>) {
    let Some(object) = document.as_object() else {
        return;
    };
    let mut seen = false;
    let mut failed = 0u64;
    for (key, entry) in object {
        if !key.starts_with("scsi_self_test_") {
            continue;
        }
        seen = true;
        let result = entry
            .pointer("/result/value")
            .and_then(serde_json::Value::as_u64);
        if result.is_some_and(|r| (3..=7).contains(&r)) {
            failed += 1;
        }
    }
    if seen {
        counters.insert(SELF_TEST_FAILED.to_owned(), failed);
    }
}

/// Whether a self-test's status code is in `failing`. ATA's code is the
/// high nibble of the execution status byte, which smartctl may print whole
/// (`0x74` is "read failure, 40% remaining"). Without a code, smartctl's own
/// `passed: false` decides.
fn failed_status(status: &SelfTestStatus, failing: std::ops::RangeInclusive<u64>) -> bool {
    match status.value {
        Some(Count(v)) => failing.contains(&if v > 0x0F { v >> 4 } else { v }),
        None => status.passed == Some(false),
    }
}

/// The count held in an attribute's raw field.
///
/// The raw field is 48 bits and vendor-packed on some drives: Seagate's
/// attribute 188 holds three 16-bit counters (raw 17180131332 is 4, 4, 4),
/// attribute 194 packs the temperature with its minimum and maximum. So the
/// count is smartctl's own decoding, the leading integer of `raw.string`
/// (`"22 (0 18 0 0 0)"` is 22), else `raw.value`; and then only the low 16
/// bits for 188 and the low 32 bits for the others are kept, because when
/// smartctl prints the raw field undecoded (Seagate 188 has no decoding in
/// the drive database) the high bits are the packed neighbours, not count.
pub(super) fn raw_count(id: u32, raw: &Raw) -> Option<u64> {
    let mask = if id == 188 { 0xFFFF } else { 0xFFFF_FFFF };
    let decoded = raw.string.as_deref().and_then(leading_integer);
    decoded.or(raw.value.map(|Count(v)| v)).map(|v| v & mask)
}

/// The integer a raw string starts with: decimal digits, or `0x` and hex
/// digits (smartctl's `hex48` format). `None` when it starts otherwise or
/// does not fit 64 bits.
fn leading_integer(text: &str) -> Option<u64> {
    let text = text.trim_start();
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        let end = hex
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(hex.len());
        return u64::from_str_radix(&hex[..end], 16).ok();
    }
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text[..end].parse().ok()
}

/// NVMe: the SMART / Health Information log page.
pub(super) fn nvme(log: &NvmeHealth, counters: &mut BTreeMap<String, u64>) {
    for (name, value) in [
        ("nvme.critical_warning", log.critical_warning),
        ("nvme.media_errors", log.media_errors),
        ("nvme.num_err_log_entries", log.num_err_log_entries),
        ("nvme.percentage_used", log.percentage_used),
    ] {
        if let Some(Count(n)) = value {
            counters.insert(name.to_owned(), n);
        }
    }
    if let (Some(Count(spare)), Some(Count(threshold))) =
        (log.available_spare, log.available_spare_threshold)
    {
        counters.insert(
            "nvme.spare_below_threshold".to_owned(),
            u64::from(spare < threshold),
        );
    }
}

/// SCSI / SAS: grown defects and uncorrected errors per direction.
pub(super) fn scsi(
    grown_defects: Option<Count>,
    error_log: Option<&ScsiErrorCounterLog>,
    counters: &mut BTreeMap<String, u64>,
) {
    if let Some(Count(n)) = grown_defects {
        counters.insert("scsi.grown_defect_list".to_owned(), n);
    }
    let Some(log) = error_log else {
        return;
    };
    let uncorrected = |part: &Option<ScsiErrorCounters>| {
        part.as_ref()
            .and_then(|p| p.total_uncorrected_errors)
            .map(|Count(n)| n)
    };
    for (name, value) in [
        ("scsi.read_uncorrected", uncorrected(&log.read)),
        ("scsi.write_uncorrected", uncorrected(&log.write)),
        ("scsi.verify_uncorrected", uncorrected(&log.verify)),
    ] {
        if let Some(n) = value {
            counters.insert(name.to_owned(), n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{NAMES, leading_integer, raw_count};

    /// Every counter name written in this file's code is in `NAMES`, so a
    /// counter added here cannot be refused by lint.
    #[test]
    fn names_lists_every_counter_this_file_produces() {
        let source = include_str!("counters.rs");
        let code = &source[..source.find("#[cfg(test)]").unwrap()];
        let mut found = 0;
        for piece in code.split('"').skip(1).step_by(2) {
            if ["smart.", "nvme.", "scsi."]
                .iter()
                .any(|p| piece.starts_with(p))
            {
                assert!(NAMES.contains(&piece), "{piece} is missing from NAMES");
                found += 1;
            }
        }
        assert!(found >= 2 * NAMES.len(), "{found}");
    }
    use crate::backend::smart::json::{Count, Raw};

    #[test]
    fn raw_counts() {
        for (id, value, string, want) in [
            (5, Some(304), Some("304"), Some(304)),
            // Seagate 188: three 16-bit counters, printed undecoded.
            (188, Some(17_180_131_332), Some("17180131332"), Some(4)),
            (188, Some(0x0004_0004_0004), None, Some(4)),
            // smartctl's raw16(raw16) decoding puts the low word first.
            (188, Some(0x0002_0001_0007), Some("7 (2 1)"), Some(7)),
            // Temperature packs min/max in the high bytes.
            (194, Some(77_309_411_350), Some("22 (0 18 0 0 0)"), Some(22)),
            (
                194,
                Some(176_094_511_130),
                Some("26 (Min/Max 13/41)"),
                Some(26),
            ),
            (197, Some(0x1_0000_0008), None, Some(8)),
            (199, Some(12), Some("12"), Some(12)),
            (5, Some(7), Some("0x000000000007"), Some(7)),
            (9, Some(14551), Some("12h+34m"), Some(12)),
            // Strings that do not start with an integer fall back to the value.
            (5, Some(12), Some(""), Some(12)),
            (5, Some(12), Some("-"), Some(12)),
            (5, Some(12), Some("  n/a"), Some(12)),
            (199, Some(3), Some("99999999999999999999999"), Some(3)),
            (5, Some(u64::MAX), None, Some(0xFFFF_FFFF)),
            (5, None, Some("9"), Some(9)),
            (5, None, None, None),
            (5, None, Some("?"), None),
        ] {
            let raw = Raw {
                value: value.map(Count),
                string: string.map(str::to_owned),
            };
            assert_eq!(raw_count(id, &raw), want, "{id} {value:?} {string:?}");
        }
    }

    #[test]
    fn leading_integers() {
        for (text, want) in [
            ("0", Some(0)),
            (" 42 (Min/Max 1/2)", Some(42)),
            ("0x1F", Some(31)),
            ("0x", None),
            ("x1", None),
            ("", None),
            ("18446744073709551616", None),
        ] {
            assert_eq!(leading_integer(text), want, "{text:?}");
        }
    }
}
