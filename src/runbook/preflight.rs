//! Semantic checks of `[preflight]`: the built-in preconditions and the
//! external checks (`[[preflight.check]]`) that gate the run before step 1.
//!
//! Leaving out a built-in precondition is allowed but is a warning, like
//! every other loosening. An external check runs an argv and must only read:
//! one that writes is an error, one that cannot be judged a warning (see
//! `external_check.rs`, shared with steps of kind `check`).

use toml::Spanned;

use crate::runbook::ctx::{Ctx, to_span};
use crate::runbook::external_check::{self, Parts};
use crate::runbook::model::{ExternalCheck, Precondition, Preflight};
use crate::runbook::raw::{RawCheck, RawPreflight};
use crate::runbook::values::{Params, choice, non_empty};
use crate::runbook::values::{quoted_list, suggest};
use crate::runbook::vars::{NewBinding, Scope};

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
    let label = format!("check `{}`", name.as_deref().unwrap_or("check"));
    let parts = Parts {
        table: table.clone(),
        label,
        run: raw.run.as_ref(),
        timeout: raw.timeout.as_ref(),
        exit: raw.exit.as_ref(),
        json: raw.json.as_ref(),
        matches: raw.matches.as_ref(),
        not_matches: raw.not_matches.as_ref(),
        stdout_is: raw.stdout_is.as_ref(),
    };
    let built = external_check::build(ctx, &parts, scope);
    Some(ExternalCheck {
        name: name?,
        run: built.run?,
        exit: built.exit?,
        test: built.test?,
        timeout: built.timeout?,
        span: to_span(table),
    })
}
