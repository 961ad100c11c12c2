//! Semantic checks of what an external check tests, shared by
//! `[[preflight.check]]` and steps of kind `check`: the argv (which must only
//! read), the exit statuses that pass, and at most one test of its output
//! (`json`, `matches` or `not_matches`).
//!
//! A check is a gate on a fact outside the array (the backup is fresh,
//! replication is paused). It never runs through a shell, and one that
//! cannot run, times out or prints something unexpected fails: the loader's
//! job is to make sure every test written here can be judged.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use crate::runbook::ctx::Ctx;
use crate::runbook::destructive::{Effect, classify};
use crate::runbook::model::{CheckTest, Template};
use crate::runbook::raw::{RawJson, Str, StrList};
use crate::runbook::values::duration;
use crate::runbook::vars::{Scope, template};

/// How long an external check may run when the runbook does not say.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// The keys of one check, wherever it is written.
pub(crate) struct Parts<'r> {
    /// The table the keys sit in, for messages about a missing key.
    pub table: Range<usize>,
    /// `check `name`` or `step `id``, for messages.
    pub label: String,
    pub run: Option<&'r StrList>,
    pub timeout: Option<&'r Str>,
    pub exit: Option<&'r Spanned<toml::Value>>,
    pub json: Option<&'r Spanned<RawJson>>,
    pub matches: Option<&'r Str>,
    pub not_matches: Option<&'r Str>,
    pub stdout_is: Option<&'r Str>,
}

/// What a check's keys build to; `None` fields had an error reported.
pub(crate) struct Built {
    pub run: Option<Vec<Template>>,
    pub exit: Option<Vec<i32>>,
    pub test: Option<CheckTest>,
    pub timeout: Option<Duration>,
}

pub(crate) fn build(ctx: &mut Ctx, parts: &Parts, scope: &Scope) -> Built {
    let run = argv(ctx, parts, scope);
    let timeout = match parts.timeout {
        Some(value) => duration(ctx, value, "timeout"),
        None => Some(DEFAULT_CHECK_TIMEOUT),
    };
    let exit = match parts.exit {
        Some(value) => exit_codes(ctx, value),
        None => Some(vec![0]),
    };
    let tests: Vec<(&str, Range<usize>)> = [
        ("json", parts.json.map(Spanned::span)),
        ("matches", parts.matches.map(Spanned::span)),
        ("not_matches", parts.not_matches.map(Spanned::span)),
        ("stdout_is", parts.stdout_is.map(Spanned::span)),
    ]
    .into_iter()
    .filter_map(|(k, s)| s.map(|s| (k, s)))
    .collect();
    let test = if let [_, (second, at), ..] = tests.as_slice() {
        ctx.error(
            at.clone(),
            format!("{} has both `{}` and `{second}`", parts.label, tests[0].0),
            Some("one test of the output per check; write two checks to test both".into()),
        );
        None
    } else if let Some(json) = parts.json {
        json_test(ctx, json)
    } else if let Some(pattern) = parts.matches {
        regex(ctx, pattern).map(|pattern| CheckTest::Matches { pattern })
    } else if let Some(pattern) = parts.not_matches {
        regex(ctx, pattern).map(|pattern| CheckTest::NotMatches { pattern })
    } else if let Some(text) = parts.stdout_is {
        // Variables are checked here and filled in by the engine.
        let text = template(ctx, text, scope).text;
        Some(CheckTest::StdoutIs { text })
    } else {
        Some(CheckTest::ExitZero)
    };
    Built {
        run,
        exit,
        test,
        timeout,
    }
}

fn argv(ctx: &mut Ctx, parts: &Parts, scope: &Scope) -> Option<Vec<Template>> {
    let label = &parts.label;
    match parts.run {
        Some(run) if run.get_ref().is_empty() => {
            ctx.error(
                run.span(),
                "`run` is empty",
                Some("give the program and its arguments, e.g. `run = [\"restic\", \"snapshots\", \"--json\"]`".into()),
            );
            None
        }
        Some(run) => {
            let argv: Vec<_> = run
                .get_ref()
                .iter()
                .map(|a| template(ctx, a, scope))
                .collect();
            let texts: Vec<&str> = argv.iter().map(|t| t.text.as_str()).collect();
            match classify(&texts) {
                Effect::ReadOnly => {}
                Effect::Destroys { at, what } => ctx.error(
                    run.get_ref()[at].span(),
                    format!("{label} runs a command that writes: {what}"),
                    Some("a check must only read; put changes in a command step".into()),
                ),
                Effect::Opaque { at, what } => ctx.warn(
                    run.get_ref()[at].span(),
                    format!("cannot tell whether {label} changes anything: {what}"),
                    Some("run the reading tool directly; checks should only read".into()),
                ),
            }
            Some(argv)
        }
        None => {
            if !ctx.is_broken(&parts.table, "run") {
                ctx.error(
                    &parts.table,
                    format!("{label} has no `run`"),
                    Some("add `run = [\"program\", \"arg\", ...]` (an argv, never a shell)".into()),
                );
            }
            None
        }
    }
}

/// `exit = 0` or `exit = [0, 1]`: the statuses that pass.
fn exit_codes(ctx: &mut Ctx, value: &Spanned<toml::Value>) -> Option<Vec<i32>> {
    let code = |v: &toml::Value| {
        v.as_integer()
            .and_then(|i| i32::try_from(i).ok())
            .filter(|i| (0..=255).contains(i))
    };
    let codes: Option<Vec<i32>> = match value.get_ref() {
        toml::Value::Array(items) if !items.is_empty() => items.iter().map(code).collect(),
        toml::Value::Array(_) => None,
        single => code(single).map(|c| vec![c]),
    };
    if codes.is_none() {
        ctx.error(
            value.span(),
            "`exit` must be an exit status from 0 to 255, or a list of them",
            Some("e.g. `exit = 0` (the default) or `exit = [0, 1]`".into()),
        );
    }
    codes
}

fn regex(ctx: &mut Ctx, value: &Str) -> Option<String> {
    let text = value.get_ref();
    match regex::Regex::new(text) {
        Ok(_) => Some(text.clone()),
        Err(e) => {
            let first = e.to_string();
            let reason = first.lines().last().unwrap_or("invalid").trim().to_string();
            ctx.error(
                value.span(),
                format!("`{text}` is not a regular expression: {reason}"),
                Some("the syntax is Rust's `regex` crate; `(?m)^t$` matches a line that is exactly `t`".into()),
            );
            None
        }
    }
}

fn json_test(ctx: &mut Ctx, json: &Spanned<RawJson>) -> Option<CheckTest> {
    let table = json.span();
    let raw = json.get_ref();
    let pointer = match &raw.pointer {
        Some(p) if p.get_ref().is_empty() || p.get_ref().starts_with('/') => {
            Some(p.get_ref().clone())
        }
        Some(p) => {
            ctx.error(
                p.span(),
                format!("`{}` is not a JSON pointer", p.get_ref()),
                Some(format!(
                    "a pointer starts with `/`, e.g. `/{}` or `/0/time`",
                    p.get_ref()
                )),
            );
            None
        }
        None => {
            if !ctx.is_broken(&table, "pointer") {
                ctx.error(
                    &table,
                    "`json` has no `pointer`",
                    Some("say which value to test, e.g. `pointer = \"/0/time\"`".into()),
                );
            }
            None
        }
    };
    let given: Vec<(&str, Range<usize>)> = [
        ("max_age", raw.max_age.as_ref().map(Spanned::span)),
        ("equals", raw.equals.as_ref().map(Spanned::span)),
        ("not_equals", raw.not_equals.as_ref().map(Spanned::span)),
        ("at_least", raw.at_least.as_ref().map(Spanned::span)),
        ("at_most", raw.at_most.as_ref().map(Spanned::span)),
    ]
    .into_iter()
    .filter_map(|(k, s)| s.map(|s| (k, s)))
    .collect();
    match given.as_slice() {
        [] => {
            let broken = ["max_age", "equals", "not_equals", "at_least", "at_most"]
                .iter()
                .any(|k| ctx.is_broken(&table, k));
            if !broken {
                ctx.error(
                    &table,
                    "`json` has no test",
                    Some("add one of `max_age = \"24h\"` (a timestamp no older than that), `equals = <value>`, `not_equals = <value>`, `at_least = <number>` or `at_most = <number>`; without `json` the check only tests the exit status".into()),
                );
            }
            None
        }
        [(first, _), (second, at), ..] => {
            ctx.error(
                at.clone(),
                format!("`json` has both `{first}` and `{second}`"),
                Some("one test per check; write two checks to test both".into()),
            );
            None
        }
        [(key, _)] => {
            let test = match *key {
                "max_age" => {
                    let age = raw.max_age.as_ref()?;
                    let max_age = duration(ctx, age, "max_age")?;
                    CheckTest::JsonMaxAge {
                        pointer: pointer?,
                        max_age,
                    }
                }
                "equals" | "not_equals" => {
                    let value = if *key == "equals" {
                        raw.equals.as_ref()?
                    } else {
                        raw.not_equals.as_ref()?
                    };
                    let json = toml_to_json(value.get_ref());
                    if json.is_none() {
                        ctx.error(value.span(), "this value cannot be compared as JSON", None);
                    }
                    let (pointer, value) = (pointer?, json?);
                    if *key == "equals" {
                        CheckTest::JsonEquals { pointer, value }
                    } else {
                        CheckTest::JsonNotEquals { pointer, value }
                    }
                }
                _ => {
                    let value = if *key == "at_least" {
                        raw.at_least.as_ref()?
                    } else {
                        raw.at_most.as_ref()?
                    };
                    let bound = match toml_to_json(value.get_ref()) {
                        Some(serde_json::Value::Number(n)) => Some(n),
                        _ => {
                            ctx.error(
                                value.span(),
                                format!("`{key}` must be a number"),
                                Some(format!("e.g. `{key} = 0`")),
                            );
                            None
                        }
                    };
                    let (pointer, bound) = (pointer?, bound?);
                    if *key == "at_least" {
                        CheckTest::JsonAtLeast { pointer, bound }
                    } else {
                        CheckTest::JsonAtMost { pointer, bound }
                    }
                }
            };
            Some(test)
        }
    }
}

/// A TOML value as JSON; dates become their TOML text. `None` for floats
/// JSON cannot hold (NaN, infinity).
fn toml_to_json(value: &toml::Value) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    Some(match value {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => J::Number(serde_json::Number::from_f64(*f)?),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(items) => {
            J::Array(items.iter().map(toml_to_json).collect::<Option<_>>()?)
        }
        toml::Value::Table(table) => J::Object(
            table
                .iter()
                .map(|(k, v)| Some((k.clone(), toml_to_json(v)?)))
                .collect::<Option<_>>()?,
        ),
    })
}
