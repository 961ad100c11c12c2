//! Semantic checks of `[preflight]`: the built-in preconditions and the
//! external checks (`[[preflight.check]]`) that gate the run before step 1.
//!
//! Leaving out a built-in precondition is allowed but is a warning, like
//! every other loosening. An external check runs an argv and must only read:
//! one that writes is an error, one that cannot be judged a warning.

use std::time::Duration;

use toml::Spanned;

use crate::runbook::check::{Params, choice, duration, non_empty};
use crate::runbook::destructive::{Effect, classify};
use crate::runbook::keys::{quoted_list, suggest};
use crate::runbook::load::{Ctx, to_span};
use crate::runbook::model::{CheckTest, ExternalCheck, Precondition, Preflight};
use crate::runbook::raw::{RawCheck, RawJson, RawPreflight};
use crate::runbook::vars::{NewBinding, Scope, template};

/// How long an external check may run when the runbook does not say.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// Why each built-in precondition matters, for the warning when it is left out.
fn precondition_risk(p: Precondition) -> &'static str {
    match p {
        Precondition::RedundantWithoutTarget => {
            "the run may start on an array that fails outright once the target leaves"
        }
        Precondition::SurvivorsHealthy => "the run may start while a survivor is already failing",
        Precondition::NoRebuildRunning => {
            "the run may start during a resync, with less redundancy than the array shows"
        }
        Precondition::TargetIdentified => {
            "a target known only by its /dev name cannot be told apart from a wrongly pulled drive"
        }
    }
}

pub(crate) fn build(
    ctx: &mut Ctx,
    raw: Option<&Spanned<RawPreflight>>,
    params: &Params,
) -> Preflight {
    let mut out = Preflight::default();
    let Some(raw) = raw else {
        if ctx.is_broken(0..0, "preflight") {
            return out;
        }
        let names = Precondition::ALL.iter().map(|(n, _)| *n);
        ctx.warn(
            0..0,
            "no `[preflight]`: no built-in precondition is checked before step 1",
            Some(format!(
                "add `[preflight] require = [{}]`",
                quoted_list(names).replace('`', "\"")
            )),
        );
        return out;
    };
    let section = raw.span();
    let raw = raw.get_ref();
    if let Some(require) = &raw.require {
        for item in require.get_ref() {
            let Some(p) = choice(ctx, item, "precondition", &Precondition::ALL) else {
                continue;
            };
            if out.require.contains(&p) {
                ctx.warn(item.span(), format!("`{}` is listed twice", p.name()), None);
            } else {
                out.require.push(p);
            }
        }
    }
    let require_broken = ctx.is_broken(&section, "require");
    if !require_broken {
        let at = raw.require.as_ref().map_or(section.clone(), |r| r.span());
        for (name, p) in Precondition::ALL {
            let known_bad = raw.require.as_ref().is_some_and(|r| {
                r.get_ref()
                    .iter()
                    .any(|i| suggest(i.get_ref(), [name]).is_some())
            });
            if !out.require.contains(&p) && !known_bad {
                ctx.warn(
                    &at,
                    format!("preflight does not require `{name}`"),
                    Some(format!("without it {}", precondition_risk(p))),
                );
            }
        }
    }
    let scope = Scope {
        params: &params.list,
        params_known: params.known,
        new: NewBinding::BeforeSteps,
    };
    if let Some(checks) = &raw.check {
        for check in checks.get_ref() {
            if let Some(check) = external_check(ctx, check, &scope) {
                out.checks.push(check);
            }
        }
    }
    out
}

fn external_check(
    ctx: &mut Ctx,
    check: &Spanned<RawCheck>,
    scope: &Scope,
) -> Option<ExternalCheck> {
    let table = check.span();
    let raw = check.get_ref();
    let name = match &raw.name {
        Some(name) => non_empty(ctx, name, "name"),
        None => {
            if !ctx.is_broken(&table, "name") {
                ctx.error(
                    &table,
                    "check has no `name`",
                    Some("the name is printed when the check passes or fails, e.g. `name = \"last verified backup is fresh\"`".into()),
                );
            }
            None
        }
    };
    let label = name.clone().unwrap_or_else(|| "check".into());
    let run = match &raw.run {
        Some(run) if run.get_ref().is_empty() => {
            ctx.error(run.span(), "`run` is empty", Some("give the program and its arguments, e.g. `run = [\"restic\", \"snapshots\", \"--json\"]`".into()));
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
                    format!("check `{label}` runs a command that writes: {what}"),
                    Some("a preflight check must only read; put changes in a step".into()),
                ),
                Effect::Opaque { at, what } => ctx.warn(
                    run.get_ref()[at].span(),
                    format!("cannot tell whether check `{label}` changes anything: {what}"),
                    Some("run the reading tool directly; checks should only read".into()),
                ),
            }
            Some(argv)
        }
        None => {
            if !ctx.is_broken(&table, "run") {
                ctx.error(
                    &table,
                    format!("check `{label}` has no `run`"),
                    Some("add `run = [\"program\", \"arg\", ...]` (an argv, never a shell)".into()),
                );
            }
            None
        }
    };
    let timeout = match &raw.timeout {
        Some(value) => duration(ctx, value, "timeout"),
        None => Some(DEFAULT_CHECK_TIMEOUT),
    };
    let test = match &raw.json {
        None => Some(CheckTest::ExitZero),
        Some(json) => json_test(ctx, json),
    };
    Some(ExternalCheck {
        name: name?,
        run: run?,
        test: test?,
        timeout: timeout?,
        span: to_span(table),
    })
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
    match (&raw.max_age, &raw.equals) {
        (Some(age), None) => {
            let max_age = duration(ctx, age, "max_age");
            Some(CheckTest::JsonMaxAge {
                pointer: pointer?,
                max_age: max_age?,
            })
        }
        (None, Some(value)) => {
            let json = toml_to_json(value.get_ref());
            if json.is_none() {
                ctx.error(value.span(), "this value cannot be compared as JSON", None);
            }
            Some(CheckTest::JsonEquals {
                pointer: pointer?,
                value: json?,
            })
        }
        (Some(age), Some(_)) => {
            ctx.error(
                age.span(),
                "`json` has both `max_age` and `equals`",
                Some("one test per check; write two checks to test both".into()),
            );
            None
        }
        (None, None) => {
            if !ctx.is_broken(&table, "max_age") && !ctx.is_broken(&table, "equals") {
                ctx.error(
                    &table,
                    "`json` has neither `max_age` nor `equals`",
                    Some("add `max_age = \"24h\"` (a timestamp no older than that) or `equals = <value>`; without `json` the check only needs exit status 0".into()),
                );
            }
            None
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
