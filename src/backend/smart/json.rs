//! The slice of `smartctl --json` output that swapguard reads, as typed serde
//! structs. Only the fields used are declared; everything else is ignored, so
//! new smartctl versions adding keys do not break parsing. Key order never
//! matters (smartctl_exporter fixtures are re-serialised with sorted keys).
//!
//! Counters go through [`Count`], which accepts every spelling smartctl has
//! used for a non-negative integer and refuses anything else: a counter that
//! does not read as a count makes the whole output unusable, never zero.

use std::fmt;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Unexpected, Visitor};

/// One `smartctl --json` document.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Report {
    /// Present in every smartctl JSON document, errors included. Its absence
    /// means the text came from some other tool (nvme-cli, say).
    pub smartctl: Option<Tool>,
    pub device: Option<Device>,
    pub smart_support: Option<Support>,
    pub smart_status: Option<Status>,
    pub ata_smart_attributes: Option<AtaAttributes>,
    pub ata_smart_error_log: Option<AtaErrorLog>,
    pub nvme_smart_health_information_log: Option<NvmeHealth>,
    pub scsi_grown_defect_list: Option<Count>,
    pub scsi_error_counter_log: Option<ScsiErrorCounterLog>,
    pub ata_smart_self_test_log: Option<AtaSelfTestLog>,
    pub nvme_self_test_log: Option<NvmeSelfTestLog>,
}

impl Report {
    /// The device as smartctl names it, falling back to the last argument
    /// it was given.
    pub fn device_name(&self) -> Option<&str> {
        let named = self.device.as_ref().and_then(|d| d.name.as_deref());
        let from_argv = || {
            self.smartctl
                .as_ref()
                .and_then(|t| t.argv.last())
                .map(String::as_str)
        };
        named.or_else(from_argv).filter(|n| !n.trim().is_empty())
    }

    /// smartctl's own `exit_status`, which duplicates the process status.
    pub fn exit_status(&self) -> Option<i64> {
        self.smartctl.as_ref().and_then(|t| t.exit_status)
    }

    /// The first message smartctl marked as an error, else the first one.
    pub fn first_message(&self) -> Option<&str> {
        let messages = &self.smartctl.as_ref()?.messages;
        let is_error = |m: &&Message| m.severity.as_deref() == Some("error");
        messages
            .iter()
            .find(is_error)
            .or_else(|| messages.first())
            .and_then(|m| m.string.as_deref())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Tool {
    pub exit_status: Option<i64>,
    #[serde(default)]
    pub argv: Vec<String>,
    #[serde(default)]
    pub messages: Vec<Message>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Message {
    pub string: Option<String>,
    pub severity: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Device {
    pub name: Option<String>,
    /// `ATA`, `NVMe` or `SCSI`.
    pub protocol: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Support {
    pub available: Option<bool>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Status {
    pub passed: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct AtaAttributes {
    #[serde(default)]
    pub table: Vec<AtaAttribute>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct AtaAttribute {
    pub id: u32,
    /// The drive database's name, e.g. `Wear_Leveling_Count`.
    pub name: Option<String>,
    /// The normalized value and its failure threshold.
    pub value: Option<Count>,
    pub thresh: Option<Count>,
    /// `""`, `"now"` or `"past"`.
    pub when_failed: Option<String>,
    pub raw: Option<Raw>,
}

/// An attribute's raw field: `value` is the whole 48-bit field as an integer
/// (vendor-packed on some drives), `string` is smartctl's decoding of it.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Raw {
    pub value: Option<Count>,
    pub string: Option<String>,
}

/// `-a` prints the `summary` (SMART error log), `-x` the `extended` one.
#[derive(Debug, Default, Deserialize)]
pub(super) struct AtaErrorLog {
    pub summary: Option<AtaErrorLogPart>,
    pub extended: Option<AtaErrorLogPart>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct AtaErrorLogPart {
    pub count: Option<Count>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct NvmeHealth {
    pub critical_warning: Option<Count>,
    pub available_spare: Option<Count>,
    pub available_spare_threshold: Option<Count>,
    pub percentage_used: Option<Count>,
    pub media_errors: Option<Count>,
    pub num_err_log_entries: Option<Count>,
}

/// The ATA self-test log: `-a` prints the `standard` one, `-x` the
/// `extended` one.
#[derive(Debug, Default, Deserialize)]
pub(super) struct AtaSelfTestLog {
    pub standard: Option<AtaSelfTestLogPart>,
    pub extended: Option<AtaSelfTestLogPart>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct AtaSelfTestLogPart {
    #[serde(default)]
    pub table: Vec<AtaSelfTest>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct AtaSelfTest {
    pub status: Option<SelfTestStatus>,
}

/// A self-test's outcome: the code the drive reported and, for ATA,
/// smartctl's own judgement.
#[derive(Debug, Default, Deserialize)]
pub(super) struct SelfTestStatus {
    pub value: Option<Count>,
    pub passed: Option<bool>,
}

/// The NVMe self-test log (smartctl 7.3 and later print it with `-a`).
#[derive(Debug, Default, Deserialize)]
pub(super) struct NvmeSelfTestLog {
    #[serde(default)]
    pub table: Vec<NvmeSelfTest>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct NvmeSelfTest {
    pub self_test_result: Option<SelfTestStatus>,
}

/// `gigabytes_processed` is a string in this log; it is not declared, so
/// whatever type it has is ignored.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ScsiErrorCounterLog {
    pub read: Option<ScsiErrorCounters>,
    pub write: Option<ScsiErrorCounters>,
    pub verify: Option<ScsiErrorCounters>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ScsiErrorCounters {
    pub total_uncorrected_errors: Option<Count>,
}

/// A non-negative integer counter, as any smartctl version prints one:
/// a plain JSON integer; an integer wider than 64 bits (NVMe counters are
/// 128-bit; serde_json reads those as floats) saturated to `u64::MAX`; or
/// smartctl 7.0's object form for such values, `{"n": .., "s": "..", "le": [..]}`.
/// Negative numbers, fractions, strings and booleans are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Count(pub u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CountVisitor)
    }
}

/// smartctl 7.0 wrote a 128-bit value that does not fit 64 bits as an
/// object: the number, its decimal string and its little-endian bytes.
#[derive(Deserialize)]
struct WideCount {
    n: Option<Count>,
    s: Option<String>,
}

struct CountVisitor;

impl<'de> Visitor<'de> for CountVisitor {
    type Value = Count;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative integer count")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
        Ok(Count(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
        u64::try_from(v)
            .map(Count)
            .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Count, E> {
        Ok(Count(u64::try_from(v).unwrap_or(u64::MAX)))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Count, E> {
        if v < 0 {
            return Err(E::invalid_value(
                Unexpected::Other("a negative integer"),
                &self,
            ));
        }
        Ok(Count(u64::try_from(v).unwrap_or(u64::MAX)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Count, E> {
        // Integers too wide for u64 arrive here; `as` saturates them.
        if v.is_finite() && v >= 0.0 && v.fract() == 0.0 {
            Ok(Count(v as u64))
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Count, A::Error> {
        let wide = WideCount::deserialize(MapAccessDeserializer::new(map))?;
        match (wide.s, wide.n) {
            (Some(s), _) => match s.trim().parse::<u128>() {
                Ok(v) => Ok(Count(u64::try_from(v).unwrap_or(u64::MAX))),
                Err(_) => Err(de::Error::invalid_value(Unexpected::Str(&s), &self)),
            },
            (None, Some(n)) => Ok(n),
            (None, None) => Err(de::Error::missing_field("n")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Count, Report};

    #[derive(serde::Deserialize)]
    struct Holder {
        c: Count,
    }

    fn count(json_value: &str) -> Result<u64, String> {
        serde_json::from_str::<Holder>(&format!("{{\"c\": {json_value}}}"))
            .map(|h| h.c.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn counts_in_every_spelling() {
        for (input, want) in [
            ("0", Some(0)),
            ("304", Some(304)),
            ("18446744073709551615", Some(u64::MAX)),
            // 2^64 + 5 and 2^128 - 1: wider than u64, saturated.
            ("18446744073709551621", Some(u64::MAX)),
            ("340282366920938463463374607431768211455", Some(u64::MAX)),
            ("1e30", Some(u64::MAX)),
            ("12.0", Some(12)),
            // smartctl 7.0 object form for wide values.
            (
                r#"{"n": 18446744073709551621, "s": "18446744073709551621", "le": [5,0,0,0,0,0,0,0,1]}"#,
                Some(u64::MAX),
            ),
            (r#"{"s": "42"}"#, Some(42)),
            (r#"{"n": 7}"#, Some(7)),
            (r#"{"s": "lots"}"#, None),
            (r#"{"le": [1]}"#, None),
            ("-1", None),
            ("-9223372036854775808", None),
            ("1.5", None),
            ("-0.5", None),
            ("\"12\"", None),
            ("true", None),
            ("null", None),
            ("[1]", None),
        ] {
            assert_eq!(count(input).ok(), want, "{input}");
        }
    }

    #[test]
    fn refusals_say_what_was_expected() {
        let err = count("\"12\"").unwrap_err();
        assert!(err.contains("non-negative integer count"), "{err}");
        let err = count("-3").unwrap_err();
        assert!(err.contains("-3"), "{err}");
    }

    #[test]
    fn device_name_and_messages() {
        let report: Report = serde_json::from_str(
            r#"{"smartctl": {"argv": ["smartctl", "-j", "-a", "/dev/sdz"],
                "messages": [{"string": "note", "severity": "information"},
                             {"string": " open failed ", "severity": "error"}]}}"#,
        )
        .expect("valid test json");
        assert_eq!(report.device_name(), Some("/dev/sdz"));
        assert_eq!(report.first_message(), Some("open failed"));

        let report: Report =
            serde_json::from_str(r#"{"device": {"name": "/dev/nvme0"}, "smartctl": {"argv": []}}"#)
                .expect("valid test json");
        assert_eq!(report.device_name(), Some("/dev/nvme0"));
        assert_eq!(report.first_message(), None);
    }
}
