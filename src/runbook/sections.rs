//! Semantic checks of the sections around the steps: `[runbook]`, `[params]`,
//! `[guard]` and `[on_halt]` (`[preflight]` is in `preflight.rs`). The
//! helpers every check shares (enumerated values, durations) are in
//! `values.rs`.
//!
//! The guard is strict by default. A runbook may loosen it, but every
//! loosening is a warning, so `swapguard lint` shows it to whoever reviews
//! the runbook.

use std::time::Duration;

use crate::backend::registry;
use crate::runbook::ctx::{Ctx, hash, to_span};
use crate::runbook::model::{BackendKind, GuardPolicy, Param, ParamKind, Requirement, Runbook};
use crate::runbook::raw::{RawGuard, RawRunbook, Str};
use crate::runbook::template::variables;
use crate::runbook::values::{
    Params, choice, duration, non_empty, quoted_list, suggest, unix_newlines,
};
use crate::runbook::{canary, halt_texts, notify, preflight, steps};

const PARAM_KINDS: [(&str, ParamKind); 4] = [
    ("array", ParamKind::Array),
    ("member", ParamKind::Member),
    ("drive", ParamKind::Drive),
    ("text", ParamKind::Text),
];

const REQUIREMENTS: [(&str, Requirement); 2] = [
    ("required", Requirement::Required),
    ("optional", Requirement::Optional),
];

/// Slowest SMART poll that is not a loosening (the brief's default).
const SMART_POLL_LIMIT: Duration = Duration::from_secs(10);
/// Slowest counter poll that still detects a failure in about a second.
const WATCH_POLL_LIMIT: Duration = Duration::from_secs(1);

/// Build the model from the raw structs, reporting every problem to `ctx`.
/// `None` when something the model cannot do without is missing.
pub(crate) fn build(ctx: &mut Ctx, raw: &RawRunbook) -> Option<Runbook> {
    let meta = meta(ctx, raw);
    let params = params(ctx, raw);
    let guard = guard(ctx, raw.guard.as_ref());
    let preflight = preflight::build(ctx, raw.preflight.as_ref(), &params);
    let on_halt = on_halt(ctx, raw);
    let steps = steps::build(ctx, raw.step.as_ref(), &params, &guard);
    let canary = canary::build(ctx, raw.canary.as_ref(), &params, &steps);
    let notify = notify::build(ctx, raw.notify.as_ref());
    let on_halt_for = halt_texts::build(ctx, raw, &steps);
    let params = params.list;
    let (name, backend) = meta?;
    Some(Runbook {
        path: ctx.path.to_path_buf(),
        hash: hash(ctx.source),
        name,
        backend,
        params,
        guard,
        preflight,
        on_halt,
        on_halt_for,
        canary,
        notify,
        steps,
    })
}

fn meta(ctx: &mut Ctx, raw: &RawRunbook) -> Option<(String, BackendKind)> {
    let Some(meta) = &raw.runbook else {
        if !ctx.is_broken(0..0, "runbook") {
            ctx.error(
                0..0,
                "missing `[runbook]` table",
                Some(
                    "start the file with `[runbook]`, `name = \"...\"` and `backend = \"md\"`"
                        .into(),
                ),
            );
        }
        return None;
    };
    let table = meta.span();
    let name = match &meta.get_ref().name {
        Some(name) => non_empty(ctx, name, "name"),
        None => {
            if !ctx.is_broken(&table, "name") {
                ctx.error(
                    &table,
                    "`[runbook]` has no `name`",
                    Some("add `name = \"...\"`: it is shown to the technician and recorded in the journal".into()),
                );
            }
            None
        }
    };
    let backend = match &meta.get_ref().backend {
        Some(value) if value.get_ref() == "sim" => {
            ctx.error(
                value.span(),
                "`sim` is not a runbook backend",
                Some("name the real backend; a dry run swaps in the simulator".into()),
            );
            None
        }
        Some(value) => {
            let names: Vec<(&str, BackendKind)> = registry::runbook_names()
                .map(|n| (n, BackendKind(n)))
                .collect();
            let kind = choice(ctx, value, "backend", &names)?;
            if registry::opener(kind.name()).is_none() {
                ctx.error(
                    value.span(),
                    registry::not_built(kind.name()),
                    Some("a runbook for a backend that is not built cannot be checked against it, dry-run or run".into()),
                );
                return None;
            }
            ctx.backend = Some(kind.name());
            Some(kind)
        }
        None => {
            if !ctx.is_broken(&table, "backend") {
                ctx.error(
                    &table,
                    "`[runbook]` has no `backend`",
                    Some(format!(
                        "add `backend = \"md\"`; backends: {}",
                        quoted_list(registry::built_names())
                    )),
                );
            }
            None
        }
    };
    Some((name?, backend?))
}

fn params(ctx: &mut Ctx, raw: &RawRunbook) -> Params {
    let example = "e.g. `array = { kind = \"array\", help = \"md array, e.g. md0\" }` and \
                   `target = { kind = \"member\", help = \"member to replace: device, serial or bay\" }`";
    let Some(params) = &raw.params else {
        if !ctx.is_broken(0..0, "params") {
            ctx.error(
                0..0,
                "missing `[params]`: a runbook needs an `array` param and a `target` member param",
                Some(format!("add a `[params]` table, {example}")),
            );
        }
        return Params {
            list: Vec::new(),
            known: false,
        };
    };
    let table = params.span();
    let mut found: Vec<(usize, Param)> = Vec::new();
    // A param dropped after a type error would make the role checks below
    // report it missing as well.
    let mut kinds_known = !ctx.any_broken(&table);
    for (name, param) in params.get_ref() {
        let text = name.get_ref().as_str();
        if text == "new" {
            ctx.error(
                name.span(),
                "`new` cannot be a param",
                Some("`{new.*}` is the drive inserted during the run, found by the tool".into()),
            );
        } else if !is_param_name(text) {
            ctx.error(
                name.span(),
                format!("`{text}` is not a param name"),
                Some("use lowercase letters, digits and `_`, starting with a letter".into()),
            );
        }
        let kind = match &param.get_ref().kind {
            Some(kind) => choice(ctx, kind, "param kind", &PARAM_KINDS),
            None => {
                if !ctx.is_broken(param.span(), "kind") {
                    ctx.error(
                        name.span(),
                        format!("param `{text}` has no `kind`"),
                        Some("add `kind = \"array\"`, `\"member\"` or `\"text\"`".into()),
                    );
                }
                None
            }
        };
        let help = param
            .get_ref()
            .help
            .as_ref()
            .map(|h| h.get_ref().trim().to_string())
            .unwrap_or_default();
        if help.is_empty() && !ctx.is_broken(param.span(), "help") {
            ctx.warn(
                name.span(),
                format!("param `{text}` has no `help`"),
                Some("the help is what the technician sees when asked for the value".into()),
            );
        }
        if kind.is_none() {
            kinds_known = false;
        }
        // A param whose kind is unknown (already an error) is kept as a
        // member, the kind with the most variables, so its uses do not each
        // report an undefined variable as well.
        let (pattern, allow_dash) = crate::runbook::vars::param_rules(ctx, text, kind, param);
        found.push((
            name.span().start,
            Param {
                name: text.to_string(),
                kind: kind.unwrap_or(ParamKind::Member),
                help,
                pattern,
                allow_dash,
            },
        ));
    }
    // Params dropped after a type error stay defined for the variable
    // checks, as members (see above).
    let dropped: Vec<String> = ctx
        .broken
        .iter()
        .filter(|(start, end, _)| (*start, *end) == (table.start, table.end))
        .map(|(_, _, key)| key.clone())
        .collect();
    for name in dropped {
        let at = ctx.key_span(&table, &name, &table).start;
        found.push((
            at,
            Param {
                name,
                kind: ParamKind::Member,
                help: String::new(),
                pattern: None,
                allow_dash: false,
            },
        ));
    }
    // Asked for in the order the file lists them.
    found.sort_by_key(|(at, _)| *at);
    let list: Vec<Param> = found.into_iter().map(|(_, p)| p).collect();
    if kinds_known {
        param_roles(ctx, &table, params.get_ref(), &list, example);
    }
    Params { list, known: true }
}

/// Exactly one `array` param, and a `member` param called `target`: the
/// engine snapshots that array, and every expectation, quarantine and
/// `{target.*}` speaks of that member.
fn param_roles(
    ctx: &mut Ctx,
    table: &std::ops::Range<usize>,
    raw: &std::collections::BTreeMap<Str, toml::Spanned<crate::runbook::raw::RawParam>>,
    list: &[Param],
    example: &str,
) {
    let name_span = |name: &str| {
        raw.keys()
            .find(|k| k.get_ref() == name)
            .map_or(to_span(table.clone()), |k| to_span(k.span()))
    };
    let arrays: Vec<&Param> = list.iter().filter(|p| p.kind == ParamKind::Array).collect();
    match arrays.as_slice() {
        [] => ctx.error(
            table,
            "no `array` param: the tool must know which array to guard",
            Some(format!("add one, {example}")),
        ),
        [_] => {}
        [_, extra @ ..] => {
            for param in extra {
                ctx.error(
                    name_span(&param.name),
                    format!("a second `array` param `{}`", param.name),
                    Some("a run guards exactly one array".into()),
                );
            }
        }
    }
    for param in list
        .iter()
        .filter(|p| p.kind == ParamKind::Drive && p.name != "target")
    {
        ctx.error(
            name_span(&param.name),
            format!("`drive` param `{}` is not the `target`", param.name),
            Some("a `drive` param names the drive a run acts on (a restore target); call it `target`".into()),
        );
    }
    match list.iter().find(|p| p.name == "target") {
        Some(target) if !matches!(target.kind, ParamKind::Member | ParamKind::Drive) => ctx.error(
            name_span("target"),
            "param `target` must be of kind `member` or `drive`",
            Some("the target is the member being replaced (`member`), or a drive outside the array that the run writes to, such as a restore target (`drive`)".into()),
        ),
        Some(_) => {}
        None => ctx.error(
            table,
            "no `target` param: the member being replaced",
            Some(
                "add `target = { kind = \"member\", help = \"member to replace: device, serial or bay\" }`"
                    .into(),
            ),
        ),
    }
}

fn is_param_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn guard(ctx: &mut Ctx, raw: Option<&toml::Spanned<RawGuard>>) -> GuardPolicy {
    let mut policy = GuardPolicy::default();
    let Some(raw) = raw.map(toml::Spanned::get_ref) else {
        return policy;
    };
    if let Some(value) = &raw.smart {
        if let Some(smart) = choice(ctx, value, "SMART requirement", &REQUIREMENTS) {
            policy.smart = smart;
        }
        if policy.smart == Requirement::Optional {
            ctx.warn(
                value.span(),
                "the guard is loosened: SMART that cannot be read will not halt the run",
                Some("keep `smart = \"required\"` unless these drives have no SMART at all".into()),
            );
        }
    }
    if let Some(value) = &raw.smart_poll
        && let Some(poll) = duration(ctx, value, "smart_poll")
    {
        policy.smart_poll = poll;
        if poll > SMART_POLL_LIMIT {
            ctx.warn(
                value.span(),
                format!(
                    "the guard is loosened: SMART polled every {}, slower than the default 10s",
                    humantime::format_duration(poll)
                ),
                Some("a SMART-only failure of a survivor can go unnoticed for that long while hands are in the chassis".into()),
            );
        }
    }
    if let Some(value) = &raw.watch_poll
        && let Some(poll) = duration(ctx, value, "watch_poll")
    {
        policy.watch_poll = poll;
        if poll > WATCH_POLL_LIMIT {
            ctx.warn(
                value.span(),
                format!(
                    "the guard is loosened: counters polled every {}",
                    humantime::format_duration(poll)
                ),
                Some("a survivor's failure must be seen within about a second; keep `watch_poll` at 1s or less (default 250ms)".into()),
            );
        }
    }
    let counters = crate::backend::counter_names();
    if let Some(list) = &raw.tolerate {
        for counter in list.get_ref() {
            let name = counter.get_ref().as_str();
            if !counter_name(ctx, counter, "tolerate", &counters) {
                continue;
            }
            if policy.tolerate.iter().any(|t| t == name) {
                ctx.warn(counter.span(), format!("`{name}` is listed twice"), None);
            } else {
                ctx.warn(
                    counter.span(),
                    format!("the guard is loosened: a rise of `{name}` on a survivor will not halt the run"),
                    Some("tolerate only a counter known to be noisy here, such as a cable's CRC count".into()),
                );
                policy.tolerate.push(name.to_string());
            }
        }
    }
    if let Some(list) = &raw.halt_on {
        for counter in list.get_ref() {
            let name = counter.get_ref().as_str();
            if !counter_name(ctx, counter, "halt_on", &counters) {
                continue;
            }
            if let Some(at) = policy.warn_only.iter().position(|w| w == name) {
                policy.warn_only.remove(at);
            } else {
                ctx.warn(
                    counter.span(),
                    format!("a rise of `{name}` already halts the run"),
                    Some(format!(
                        "`halt_on` only tightens counters that warn by default: {}",
                        GuardPolicy::default().warn_only.join(", ")
                    )),
                );
            }
        }
    }
    policy.max_degraded = raw.max_degraded.as_ref().map(|m| *m.get_ref());
    if let Some(list) = &raw.accept_survivor {
        accept_survivor(ctx, list.get_ref(), &mut policy);
    }
    policy
}

/// `accept_survivor`: names of survivor verdict conditions, each one a
/// loosening the reviewer must see.
fn accept_survivor(ctx: &mut Ctx, list: &[Str], policy: &mut GuardPolicy) {
    use crate::health::verdict::Level;
    let conditions = registry::condition_names();
    for item in list {
        let name = item.get_ref().as_str();
        let Some((level, meaning)) = registry::condition(name) else {
            let help = match suggest(name, conditions.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!(
                    "survivor conditions are {}",
                    quoted_list(conditions.iter().copied())
                ),
            };
            ctx.error(
                item.span(),
                format!("`{name}` is not a survivor condition"),
                Some(help),
            );
            continue;
        };
        if policy.accept_survivor.iter().any(|a| a == name) {
            ctx.warn(item.span(), format!("`{name}` is listed twice"), None);
            continue;
        }
        let how = if level == Level::Failing {
            "is not refused"
        } else {
            "is not asked about"
        };
        ctx.warn(
            item.span(),
            format!(
                "the guard is loosened: a survivor with `{name}` ({meaning}) {how} before the run",
            ),
            Some("accept only a condition known and judged safe on this hardware; the technician can still override one refusal with a written reason".into()),
        );
        policy.accept_survivor.push(name.to_string());
    }
}

/// A counter name in a `[guard]` list: shaped `<source>.<name>` and one
/// the backends really produce. A name that matches nothing would never
/// halt (or never be tolerated), so it is an error, never a note.
fn counter_name(ctx: &mut Ctx, value: &Str, list: &str, known: &[&str]) -> bool {
    let name = value.get_ref().as_str();
    if !is_counter_name(name) {
        let help = match suggest(name, known.iter().copied()) {
            Some(near) => format!("did you mean `{near}`?"),
            None => "counters are named `<source>.<name>`, e.g. `smart.udma_crc_error_count` or `md.errors`".into(),
        };
        ctx.error(
            value.span(),
            format!("`{name}` is not a counter name (in `{list}`)"),
            Some(help),
        );
        return false;
    }
    known_name(ctx, value, &format!("counter in `{list}`"), known)
}

/// `value` is one of `known`; otherwise an error at the value with "did you
/// mean" for a near miss, or the whole list. For every list of names a
/// runbook may only pick from (counters, conditions).
pub(crate) fn known_name(ctx: &mut Ctx, value: &Str, what: &str, known: &[&str]) -> bool {
    let name = value.get_ref().as_str();
    if known.contains(&name) {
        return true;
    }
    let help = match suggest(name, known.iter().copied()) {
        Some(near) => format!("did you mean `{near}`?"),
        None => format!("known names: {}", quoted_list(known.iter().copied())),
    };
    ctx.error(
        value.span(),
        format!("unknown {what}: `{name}`"),
        Some(help),
    );
    false
}

fn is_counter_name(name: &str) -> bool {
    let Some((source, counter)) = name.split_once('.') else {
        return false;
    };
    let word = |s: &str, extra: char| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == extra)
    };
    word(source, '_') && word(counter, '_')
}

fn on_halt(ctx: &mut Ctx, raw: &RawRunbook) -> String {
    let say = raw.on_halt.as_ref().and_then(|h| h.get_ref().say.as_ref());
    let text = say
        .map(|s| unix_newlines(s.get_ref().trim()))
        .unwrap_or_default();
    let broken = ctx.is_broken(0..0, "on_halt")
        || raw
            .on_halt
            .as_ref()
            .is_some_and(|h| ctx.is_broken(h.span(), "say"));
    if text.is_empty() && !broken {
        let at = match (&raw.on_halt, say) {
            (_, Some(say)) => to_span(say.span()),
            (Some(section), None) => to_span(section.span()),
            (None, None) => to_span(0..0),
        };
        ctx.warn(
            at,
            "no `[on_halt] say`: after a halt the technician is not told what to do",
            Some("e.g. `say = \"Take your hands out of the chassis. Touch no drive. Call the storage lead.\"`".into()),
        );
    } else if let Some(say) = say
        && variables(say.get_ref()).is_ok_and(|v| !v.is_empty())
    {
        ctx.warn(
            say.span(),
            "`[on_halt] say` is printed as written; `{...}` is not filled in",
            Some("the halt message itself names the drive and what changed".into()),
        );
    }
    text
}
