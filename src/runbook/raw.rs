//! The raw serde layer of a runbook file: one struct per TOML table, each
//! with `deny_unknown_fields`, every value wrapped in [`Spanned`] so the
//! checker can point at it.
//!
//! Every field is optional here on purpose. Whether a key is required, and
//! whether it applies to a step's kind, is decided in `sections.rs` and
//! `steps.rs`, which can say so with a line and column and keep going; serde
//! itself would stop at the first missing field. [`fields_of`] reads each
//! struct's key list straight from its `Deserialize` impl, so the key checker
//! (`keys.rs`) can never drift from these structs.

use std::collections::BTreeMap;

use serde::de::value::Error as ValueError;
use serde::de::{DeserializeOwned, Error as _, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

/// A string value with its span.
pub type Str = Spanned<String>;
/// An array of strings, spanned as a whole and per element.
pub type StrList = Spanned<Vec<Spanned<String>>>;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRunbook {
    pub runbook: Option<Spanned<RawMeta>>,
    pub params: Option<Spanned<BTreeMap<Str, Spanned<RawParam>>>>,
    pub guard: Option<Spanned<RawGuard>>,
    pub preflight: Option<Spanned<RawPreflight>>,
    pub on_halt: Option<Spanned<RawOnHalt>>,
    pub canary: Option<Spanned<RawCanary>>,
    pub notify: Option<Spanned<RawNotify>>,
    pub step: Option<Spanned<Vec<Spanned<RawStep>>>>,
}

/// `[canary]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCanary {
    pub path: Option<Str>,
    pub size: Option<Str>,
    pub every: Option<Str>,
    pub after: Option<Str>,
}

/// `[notify]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    pub url: Option<Str>,
    pub format: Option<Str>,
    pub events: Option<StrList>,
    pub timeout: Option<Str>,
    pub retries: Option<Spanned<i64>>,
    pub dry_runs: Option<Spanned<bool>>,
}

/// `[runbook]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMeta {
    pub name: Option<Str>,
    pub backend: Option<Str>,
}

/// One entry of `[params]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawParam {
    pub kind: Option<Str>,
    pub help: Option<Str>,
    /// For `text` params: a regex the whole value must match.
    pub pattern: Option<Str>,
    /// For `text` params: a value may begin with `-`.
    pub allow_dash: Option<Spanned<bool>>,
}

/// `[guard]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGuard {
    pub smart: Option<Str>,
    pub smart_poll: Option<Str>,
    pub watch_poll: Option<Str>,
    pub tolerate: Option<StrList>,
    pub halt_on: Option<StrList>,
    pub max_degraded: Option<Spanned<u32>>,
    pub accept_survivor: Option<StrList>,
}

/// `[preflight]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPreflight {
    pub require: Option<StrList>,
    pub check: Option<Spanned<Vec<Spanned<RawCheck>>>>,
}

/// One `[[preflight.check]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    pub name: Option<Str>,
    pub run: Option<StrList>,
    pub timeout: Option<Str>,
    pub exit: Option<Spanned<toml::Value>>,
    pub json: Option<Spanned<RawJson>>,
    pub matches: Option<Str>,
    pub not_matches: Option<Str>,
    pub stdout_is: Option<Str>,
}

/// `json = { pointer = "...", max_age = "24h" }`, or with `equals`,
/// `not_equals`, `at_least` or `at_most` instead of `max_age`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJson {
    pub pointer: Option<Str>,
    pub max_age: Option<Str>,
    pub equals: Option<Spanned<toml::Value>>,
    pub not_equals: Option<Spanned<toml::Value>>,
    pub at_least: Option<Spanned<toml::Value>>,
    pub at_most: Option<Spanned<toml::Value>>,
}

/// `[on_halt]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOnHalt {
    pub say: Option<Str>,
    /// `[on_halt.kind]`: step kind -> guidance.
    pub kind: Option<Spanned<BTreeMap<Str, Str>>>,
    /// `[on_halt.step]`: step id -> guidance.
    pub step: Option<Spanned<BTreeMap<Str, Str>>>,
}

/// One `[[step]]`. Which keys apply depends on `kind` (see `steps.rs`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub id: Option<Str>,
    pub kind: Option<Str>,
    pub say: Option<Str>,
    pub run: Option<StrList>,
    pub until: Option<Str>,
    pub on: Option<Str>,
    pub expect: Option<Spanned<RawExpect>>,
    pub new: Option<Spanned<RawNewDrive>>,
    pub confirm: Option<Str>,
    pub confirm_drive: Option<Str>,
    pub quarantine: Option<Str>,
    pub optional: Option<Spanned<bool>>,
    pub timeout: Option<Str>,
    pub exit: Option<Spanned<toml::Value>>,
    pub json: Option<Spanned<RawJson>>,
    pub matches: Option<Str>,
    pub not_matches: Option<Str>,
    pub stdout_is: Option<Str>,
    pub sign_off: Option<Spanned<bool>>,
    /// The command runs a shell with a command line, on purpose.
    pub shell: Option<Spanned<bool>>,
    /// What happens to a still-running command when the run halts.
    pub on_halt: Option<Str>,
}

/// `expect = { target = "...", new = "...", degraded = N }`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    pub target: Option<Str>,
    pub new: Option<Str>,
    pub degraded: Option<Spanned<u32>>,
}

/// `new = { min_size = "...", blank = true, not_quarantined = true }`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNewDrive {
    pub min_size: Option<Str>,
    pub blank: Option<Spanned<bool>>,
    pub not_quarantined: Option<Spanned<bool>>,
}

/// The keys a serde struct accepts, read from its own `Deserialize` impl
/// (the `fields` it passes to `deserialize_struct`). Empty for a type that
/// is not a struct.
pub fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields = None;
    // The grabber always answers with an error once it has the list; the
    // list is all we want.
    let _ = T::deserialize(FieldGrab(&mut fields));
    fields.unwrap_or(&[])
}

/// A deserializer that records the field list of the struct asked of it.
struct FieldGrab<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for FieldGrab<'_> {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, ValueError> {
        Err(ValueError::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, ValueError> {
        *self.0 = Some(fields);
        Err(ValueError::custom("field list captured"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_lists_come_from_the_structs() {
        let cases: [(&[&str], &[&str]); 4] = [
            (
                fields_of::<RawGuard>(),
                &[
                    "smart",
                    "smart_poll",
                    "watch_poll",
                    "tolerate",
                    "halt_on",
                    "max_degraded",
                    "accept_survivor",
                ],
            ),
            (fields_of::<RawOnHalt>(), &["say", "kind", "step"]),
            (fields_of::<RawExpect>(), &["target", "new", "degraded"]),
            (fields_of::<String>(), &[]),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        assert!(fields_of::<RawStep>().contains(&"confirm_drive"));
        assert_eq!(fields_of::<RawRunbook>().len(), 8);
    }
}
