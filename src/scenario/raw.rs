//! The raw serde layer of a scenario file.
//!
//! These structs mirror the TOML exactly, with `deny_unknown_fields` so a
//! typo is an error and not a silently ignored key. Values whose checks need
//! the rest of the file (drive names in events, step ids) keep their spans;
//! values that can be checked alone (sizes, durations, enums) are parsed
//! here, so serde reports them at the right line.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;

use std::path::Path;

use crate::health::model::MemberState;
use crate::runbook::diag::{Diagnostic, Severity};
use crate::runbook::model::Span;
use crate::scenario::{Level, Outcome, ScenarioError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub scenario: Spanned<RawHeader>,
    pub array: RawArray,
    pub technician: Option<RawTechnician>,
    #[serde(default, rename = "event")]
    pub events: Vec<Spanned<RawEvent>>,
    #[serde(default, rename = "command")]
    pub commands: Vec<Spanned<RawCommand>>,
    #[serde(default)]
    pub quarantined: Vec<Spanned<RawQuarantined>>,
    #[serde(default)]
    pub answers: BTreeMap<Spanned<String>, Answers>,
    pub expect: Spanned<RawExpect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeader {
    pub name: String,
    pub runbook: Spanned<String>,
    pub params: Option<Spanned<BTreeMap<Spanned<String>, String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawArray {
    pub name: Spanned<String>,
    pub level: Level,
    pub raid_disks: Option<Spanned<u32>>,
    pub rebuild_time: Option<HumanDuration>,
    pub partition: Option<Spanned<u32>>,
    pub mount: Option<Spanned<String>>,
    pub auto_rebuild: Option<bool>,
    pub drive_group: Option<u32>,
    pub members: Vec<Spanned<RawDrive>>,
    #[serde(default)]
    pub spares: Vec<Spanned<RawDrive>>,
    #[serde(default)]
    pub others: Vec<Spanned<RawDrive>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDrive {
    pub dev: Option<Spanned<String>>,
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub slot: Option<Slot>,
    pub size: ByteSize,
    pub state: Option<Spanned<MemberState>>,
    pub smart_passed: Option<bool>,
    #[serde(default)]
    pub counters: BTreeMap<Spanned<String>, u64>,
    pub blank: Option<bool>,
    pub intf: Option<Spanned<String>>,
    pub pd_state: Option<Spanned<String>>,
    pub dg: Option<u32>,
    #[serde(default)]
    pub foreign: bool,
    #[serde(default)]
    pub smart_alert: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTechnician {
    pub pull_after: Option<HumanDuration>,
    pub insert_after: Option<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEvent {
    pub during: Spanned<String>,
    pub after: Option<Spanned<HumanDuration>>,
    #[serde(default)]
    pub set: BTreeMap<Spanned<String>, u64>,
    #[serde(default)]
    pub flags: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    pub smart_failed: Option<Spanned<String>>,
    #[serde(default)]
    pub unreadable: Vec<Spanned<String>>,
    pub fail: Option<Spanned<String>>,
    pub pull: Option<Spanned<String>>,
    pub vanish: Option<Spanned<String>>,
    pub insert: Option<Spanned<String>>,
    pub zero_canary: Option<Spanned<String>>,
}

/// `[[quarantined]]`: a drive in the quarantine registry before the run.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQuarantined {
    pub drive: Spanned<String>,
    pub reason: Option<String>,
    pub at: Option<String>,
    pub session: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCommand {
    pub argv: Vec<String>,
    pub code: Option<i32>,
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
    #[serde(default)]
    pub timed_out: bool,
    pub duration: Option<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExpect {
    pub outcome: Outcome,
    pub step: Option<Spanned<String>>,
    pub reason: Option<String>,
    pub reasons: Option<Vec<String>>,
}

/// Scripted answers for one step: a string or a list of strings.
pub(crate) struct Answers(pub Vec<String>);

impl<'de> Deserialize<'de> for Answers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Answers;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an answer string or a list of answer strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Answers, E> {
                Ok(Answers(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Answers, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(Answers(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A bay or slot: an integer or a string in the file, a string in the model.
pub(crate) struct Slot(pub String);

impl<'de> Deserialize<'de> for Slot {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Slot;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a bay number or name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Slot, E> {
                Ok(Slot(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Slot, E> {
                Ok(Slot(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Slot, E> {
                Ok(Slot(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A size in bytes: `"960G"`, `"1.92T"`, `"512Gi"` or a plain integer.
pub(crate) struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as \"960G\", \"1.92T\", \"512Gi\" or a number of bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_size(v).map(ByteSize).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("size `{v}` is negative")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration in humantime form: `"250ms"`, `"10s"`, `"2m"`, `"1h 30m"`.
pub(crate) struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as \"5s\", \"250ms\" or \"2m\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                humantime::parse_duration(v)
                    .map(HumanDuration)
                    .map_err(|e| {
                        E::custom(format!(
                            "`{v}` is not a duration ({e}); write e.g. \"5s\", \"250ms\", \"2m\""
                        ))
                    })
            }
        }
        d.deserialize_str(V)
    }
}

/// Parse a size (see `units::parse_size`), with the message as a string
/// for serde.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    crate::units::parse_size(text).map_err(|e| e.to_string())
}

pub(crate) fn span_of(range: std::ops::Range<usize>) -> Span {
    Span {
        start: range.start,
        end: range.end,
    }
}

pub(crate) fn error_at(
    path: &Path,
    source: &str,
    span: Span,
    message: String,
    help: Option<String>,
) -> ScenarioError {
    ScenarioError {
        diagnostics: vec![Diagnostic::at(
            Severity::Error,
            path,
            source,
            span,
            message,
            help,
        )],
    }
}

/// Turn a TOML or serde error into a diagnostic, with "did you mean" for an
/// unknown key or value.
pub(crate) fn from_toml_error(path: &Path, source: &str, e: &toml::de::Error) -> ScenarioError {
    let span = e.span().map_or(Span::default(), span_of);
    let message = e.message().trim_end().trim_end_matches('.');
    let (message, help) = explain(message);
    error_at(path, source, span, message, help)
}

/// Reword serde's "unknown field `x`, expected one of `a`, `b`" into our
/// message and a "did you mean" help line.
fn explain(message: &str) -> (String, Option<String>) {
    for (prefix, noun) in [("unknown field `", "key"), ("unknown variant `", "value")] {
        let Some(rest) = message.strip_prefix(prefix) else {
            continue;
        };
        let Some((word, tail)) = rest.split_once('`') else {
            continue;
        };
        let expected: Vec<&str> = tail
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|s| !s.is_empty())
            .collect();
        let help = match did_you_mean(word, expected.iter().copied()) {
            Some(near) => Some(format!("did you mean `{near}`?")),
            None if expected.is_empty() => None,
            None => Some(format!("expected one of {}", backticked(&expected))),
        };
        return (format!("unknown {noun} `{word}`"), help);
    }
    (message.to_string(), None)
}

/// The closest candidate to `word`, when one is close enough to be a typo.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

pub(crate) fn backticked(names: &[&str]) -> String {
    if names.is_empty() {
        return "none".to_string();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
