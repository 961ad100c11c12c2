//! Semantic checks of `[[step]]` tables, and building [`Step`]s.
//!
//! Steps are data: a kind, an instruction, an argv, and an expectation of
//! what must have changed once the step is done. The checks here make sure
//! the engine is never handed a step it cannot carry out safely: every
//! physical step says what must change, every destructive command sits
//! behind a typed confirmation, and nothing refers to the new drive before
//! a step has seen it inserted.

use std::collections::HashMap;

use toml::Spanned;

use crate::runbook::ctx::{Ctx, to_span};
use crate::runbook::destructive::{Effect, classify};
use crate::runbook::external_check::{self, Parts};
use crate::runbook::model::{
    Confirm, DriveExpect, Expectation, ExternalCheck, GuardPolicy, OnHalt, Role, Span, Step,
    StepKind, Template, WaitUntil,
};
use crate::runbook::raw::RawStep;
use crate::runbook::values::quoted_list;
use crate::runbook::values::unix_newlines;
use crate::runbook::values::{Params, choice, duration};
use crate::runbook::vars::{NewBinding, Scope, mentions_new, template};

/// The step kinds, by name. The `StepKind` payload is filled in later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Confirm,
    Command,
    Physical,
    Wait,
    Locate,
    Check,
}

const KINDS: [(&str, Kind); 6] = [
    ("confirm", Kind::Confirm),
    ("command", Kind::Command),
    ("physical", Kind::Physical),
    ("wait", Kind::Wait),
    ("locate", Kind::Locate),
    ("check", Kind::Check),
];

impl Kind {
    fn name(self) -> &'static str {
        KINDS
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("step", |(n, _)| *n)
    }
}

/// Keys that apply only to some kinds (`id`, `kind`, `say` and `optional`
/// apply to all).
const APPLIES: [(&str, &[Kind]); 17] = [
    ("run", &[Kind::Command, Kind::Check]),
    ("shell", &[Kind::Command]),
    ("until", &[Kind::Wait]),
    ("on", &[Kind::Locate]),
    ("expect", &[Kind::Command, Kind::Physical, Kind::Wait]),
    ("new", &[Kind::Command, Kind::Physical, Kind::Wait]),
    ("confirm", &[Kind::Command, Kind::Physical]),
    ("confirm_drive", &[Kind::Command, Kind::Physical]),
    ("quarantine", &[Kind::Command, Kind::Physical, Kind::Wait]),
    (
        "timeout",
        &[
            Kind::Command,
            Kind::Physical,
            Kind::Wait,
            Kind::Locate,
            Kind::Check,
        ],
    ),
    ("exit", &[Kind::Check]),
    ("json", &[Kind::Check]),
    ("matches", &[Kind::Check]),
    ("not_matches", &[Kind::Check]),
    ("stdout_is", &[Kind::Check]),
    ("sign_off", &[Kind::Command, Kind::Physical]),
    ("on_halt", &[Kind::Command]),
];

const ON_HALT: [(&str, OnHalt); 2] = [("kill", OnHalt::Kill), ("wait", OnHalt::Wait)];

const CONFIRMS: [(&str, ConfirmWord); 2] = [
    ("yes-no", ConfirmWord::YesNo),
    ("type-serial", ConfirmWord::TypeSerial),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConfirmWord {
    YesNo,
    TypeSerial,
}

const ROLES: [(&str, Role); 2] = [("target", Role::Target), ("new", Role::New)];

const UNTIL: [(&str, WaitUntil); 1] = [("in-sync", WaitUntil::InSync)];

/// Build every step, reporting problems to `ctx`.
pub(crate) fn build(
    ctx: &mut Ctx,
    raw: Option<&Spanned<Vec<Spanned<RawStep>>>>,
    params: &Params,
    guard: &GuardPolicy,
) -> Vec<Step> {
    let steps: &[Spanned<RawStep>] = raw.map_or(&[], |s| s.get_ref().as_slice());
    if steps.is_empty() {
        if !ctx.is_broken(0..0, "step") {
            ctx.error(
                raw.map_or(0..0, Spanned::span),
                "the runbook has no steps",
                Some("add one `[[step]]` table per step, with an `id` and a `kind`".into()),
            );
        }
        return Vec::new();
    }
    // The step that binds `{new.*}`: the first that expects the new drive
    // to be present.
    let binder = steps.iter().position(|s| expects_new_present(s.get_ref()));
    let binder_at = binder.map(|i| {
        let step = steps[i].get_ref();
        let id = step.id.as_ref().map_or("?", |id| id.get_ref().as_str());
        (id, to_span(steps[i].span()))
    });
    let mut seen: HashMap<String, Span> = HashMap::new();
    let mut out = Vec::new();
    let mut target_gone = false;
    for (index, step) in steps.iter().enumerate() {
        let new = match (binder, binder_at) {
            (Some(b), _) if index > b => NewBinding::Bound,
            (Some(_), Some((id, span))) => NewBinding::NotYet { id, span },
            _ => NewBinding::Never,
        };
        let scope = Scope {
            params: &params.list,
            params_known: params.known,
            new,
        };
        let bound_here = binder == Some(index);
        let mut checker = StepCheck {
            ctx: &mut *ctx,
            raw: step.get_ref(),
            table: to_span(step.span()),
            label: label(step.get_ref(), index),
            scope: &scope,
        };
        let built = checker.check(
            &mut seen,
            guard,
            bound_here,
            binder.is_some_and(|b| index > b),
        );
        if let Some(built) = &built {
            if built.expect.target == Some(DriveExpect::Absent) {
                target_gone = true;
            }
            // A step whose expectation is missing or unreadable has its
            // own error already.
            let expect_missing = built.expect.is_empty() || ctx.is_broken(step.span(), "expect");
            if built.quarantine.is_some() && !target_gone && !expect_missing {
                let at = quarantine_span(step.get_ref());
                ctx.warn(
                    at,
                    format!("step `{}` quarantines the target before it is pulled", built.id),
                    Some("quarantine belongs on the step that expects `target = \"absent\"`, or after it".into()),
                );
            }
        }
        if let Some(built) = built {
            out.push(built);
        }
    }
    never_quarantined(ctx, steps, &out);
    out
}

fn expects_new_present(step: &RawStep) -> bool {
    step.expect
        .as_ref()
        .and_then(|e| e.get_ref().new.as_ref())
        .is_some_and(|n| n.get_ref() == "present")
}

fn label(step: &RawStep, index: usize) -> String {
    match &step.id {
        Some(id) => format!("step `{}`", id.get_ref()),
        None => format!("step number {}", index + 1),
    }
}

fn quarantine_span(step: &RawStep) -> Span {
    step.quarantine
        .as_ref()
        .map_or(Span::default(), |q| to_span(q.span()))
}

/// A target that is pulled but never quarantined could come back as the
/// "new" drive: exactly how the incident restored onto the broken drive.
fn never_quarantined(ctx: &mut Ctx, raw: &[Spanned<RawStep>], steps: &[Step]) {
    let Some(pulled) = steps
        .iter()
        .position(|s| s.expect.target == Some(DriveExpect::Absent))
    else {
        return;
    };
    if steps[pulled..].iter().any(|s| s.quarantine.is_some()) {
        return;
    }
    let at = raw
        .iter()
        .find(|r| {
            r.get_ref()
                .id
                .as_ref()
                .is_some_and(|id| *id.get_ref() == steps[pulled].id)
        })
        .and_then(|r| r.get_ref().expect.as_ref())
        .and_then(|e| e.get_ref().target.as_ref())
        .map_or(steps[pulled].span, |t| to_span(t.span()));
    ctx.warn(
        at,
        format!("the target is pulled in step `{}` but never quarantined", steps[pulled].id),
        Some("add `quarantine = \"target\"` to that step, so the pulled drive cannot come back as the new one".into()),
    );
}

pub(crate) struct StepCheck<'c, 'a, 's> {
    pub ctx: &'c mut Ctx<'a>,
    pub raw: &'s RawStep,
    pub table: Span,
    pub label: String,
    pub scope: &'s Scope<'s>,
}

impl StepCheck<'_, '_, '_> {
    pub(crate) fn error(&mut self, span: Span, message: String, help: Option<String>) {
        self.ctx.error(span, message, help);
    }

    pub(crate) fn key_span(&self, key: &str, value: Span) -> Span {
        self.ctx.key_span(self.table, key, value)
    }

    /// A required key is missing: report at the step's header, unless the
    /// key was dropped after a type error already reported.
    pub(crate) fn missing(&mut self, key: &str, message: String, help: String) {
        if !self.ctx.is_broken(self.table, key) {
            self.ctx.error(self.table, message, Some(help));
        }
    }

    fn check(
        &mut self,
        seen: &mut HashMap<String, Span>,
        guard: &GuardPolicy,
        binds_new: bool,
        new_bound: bool,
    ) -> Option<Step> {
        let id = self.id(seen);
        let kind = match &self.raw.kind {
            Some(kind) => choice(self.ctx, kind, "step kind", &KINDS),
            None => {
                let kinds = quoted_list(KINDS.iter().map(|(n, _)| *n));
                self.missing(
                    "kind",
                    format!("{} has no `kind`", self.label),
                    format!("add `kind = ...`, one of {kinds}"),
                );
                None
            }
        };
        if let Some(kind) = kind {
            self.applicable_keys(kind);
        }
        let say = self.raw.say.as_ref().map(|s| Template {
            text: unix_newlines(s.get_ref()),
            ..template(self.ctx, s, self.scope)
        });
        if say.is_none() && matches!(kind, Some(Kind::Confirm | Kind::Physical)) {
            let what = kind.map_or("", Kind::name);
            self.missing(
                "say",
                format!("{} has no `say`", self.label),
                format!("a {what} step must tell the technician what to do, e.g. `say = \"Pull the drive in bay {{target.slot}}.\"`"),
            );
        }
        let expect = self.expectation(guard, binds_new, new_bound);
        if kind == Some(Kind::Physical) && expect.as_ref().is_some_and(Expectation::is_empty) {
            self.missing(
                "expect",
                format!("physical {} has no expectation", self.label),
                "say what must change, e.g. `expect = { target = \"absent\" }`; the guard halts when anything else does".into(),
            );
        }
        let new_drive = self.new_drive(binds_new);
        let run = if kind == Some(Kind::Check) {
            None
        } else {
            self.run(kind)
        };
        crate::runbook::shell::check(self.ctx, self.raw, self.table, &self.label, run.as_deref());
        let mentions = run
            .as_ref()
            .is_some_and(|r| r.iter().any(|t| mentions_new(&t.text)))
            || expect.as_ref().is_some_and(|e| e.new.is_some());
        let confirm = self.confirm(mentions, binds_new, new_bound);
        let step_kind = self.kind_payload(kind, run, confirm, new_bound);
        let quarantine = self.raw.quarantine.as_ref().and_then(|q| {
            if q.get_ref() == "new" {
                self.error(
                    to_span(q.span()),
                    "only the target can be quarantined".into(),
                    Some("write `quarantine = \"target\"` on the step that pulls it".into()),
                );
                return None;
            }
            choice(self.ctx, q, "quarantine", &[("target", Role::Target)])
        });
        let timeout = self
            .raw
            .timeout
            .as_ref()
            .and_then(|t| duration(self.ctx, t, "timeout"));
        if kind == Some(Kind::Wait)
            && self.raw.timeout.is_none()
            && !self.ctx.is_broken(self.table, "timeout")
        {
            self.ctx.warn(
                self.table,
                format!("wait {} has no `timeout`", self.label),
                Some("without one the default of 48h applies; give the time a healthy rebuild of these drives takes with a margin, e.g. `timeout = \"24h\"`".into()),
            );
        }
        let optional = self.raw.optional.as_ref().is_some_and(|o| *o.get_ref());
        let sign_off = self.raw.sign_off.as_ref().is_some_and(|o| *o.get_ref());
        let on_halt = match &self.raw.on_halt {
            Some(v) => choice(self.ctx, v, "on_halt", &ON_HALT),
            None => Some(OnHalt::default()),
        };
        Some(Step {
            id: id?,
            kind: step_kind?,
            say,
            expect: expect?,
            new_drive,
            confirm: confirm?,
            quarantine,
            optional,
            timeout,
            sign_off,
            on_halt: on_halt?,
            span: self.table,
        })
    }

    fn id(&mut self, seen: &mut HashMap<String, Span>) -> Option<String> {
        let Some(id) = &self.raw.id else {
            self.missing(
                "id",
                format!("{} has no `id`", self.label),
                "give every step a short unique id, e.g. `id = \"pull\"`; the journal and scenarios refer to it".into(),
            );
            return None;
        };
        let text = id.get_ref().as_str();
        let span = to_span(id.span());
        if text.is_empty()
            || !text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            self.error(
                span,
                format!("`{text}` is not a step id"),
                Some("use lowercase letters, digits, `-` and `_`, e.g. `pull-target`".into()),
            );
            return None;
        }
        if let Some(first) = seen.get(text) {
            let line = self.ctx.line_of(*first);
            self.error(
                span,
                format!("duplicate step id `{text}`"),
                Some(format!(
                    "`{text}` is first used on line {line}; step ids must be unique"
                )),
            );
            return None;
        }
        seen.insert(text.to_string(), span);
        Some(text.to_string())
    }

    /// Report every present key that does not apply to `kind`.
    fn applicable_keys(&mut self, kind: Kind) {
        let raw = self.raw;
        let present: [(&str, Option<std::ops::Range<usize>>); 16] = [
            ("run", raw.run.as_ref().map(Spanned::span)),
            ("until", raw.until.as_ref().map(Spanned::span)),
            ("on", raw.on.as_ref().map(Spanned::span)),
            ("expect", raw.expect.as_ref().map(Spanned::span)),
            ("new", raw.new.as_ref().map(Spanned::span)),
            ("confirm", raw.confirm.as_ref().map(Spanned::span)),
            (
                "confirm_drive",
                raw.confirm_drive.as_ref().map(Spanned::span),
            ),
            ("quarantine", raw.quarantine.as_ref().map(Spanned::span)),
            ("timeout", raw.timeout.as_ref().map(Spanned::span)),
            ("exit", raw.exit.as_ref().map(Spanned::span)),
            ("json", raw.json.as_ref().map(Spanned::span)),
            ("matches", raw.matches.as_ref().map(Spanned::span)),
            ("not_matches", raw.not_matches.as_ref().map(Spanned::span)),
            ("stdout_is", raw.stdout_is.as_ref().map(Spanned::span)),
            ("sign_off", raw.sign_off.as_ref().map(Spanned::span)),
            ("on_halt", raw.on_halt.as_ref().map(Spanned::span)),
        ];
        for (key, value) in present {
            let Some(value) = value else { continue };
            let Some((_, kinds)) = APPLIES.iter().find(|(k, _)| *k == key) else {
                continue;
            };
            if kinds.contains(&kind) {
                continue;
            }
            let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
            let at = self.key_span(key, to_span(value));
            self.error(
                at,
                format!("`{key}` does not apply to a {} step", kind.name()),
                Some(format!("`{key}` is for {} steps", join_or(&names))),
            );
        }
    }

    fn run(&mut self, kind: Option<Kind>) -> Option<Vec<Template>> {
        let Some(run) = &self.raw.run else {
            if kind == Some(Kind::Command) {
                self.missing(
                    "run",
                    format!("command {} has no `run`", self.label),
                    "add the argv, e.g. `run = [\"mdadm\", \"/dev/{array}\", \"--fail\", \"{target.dev}\"]`".into(),
                );
            }
            return None;
        };
        if run.get_ref().is_empty() {
            if !self.ctx.is_broken(self.table, "run") {
                self.error(
                    to_span(run.span()),
                    "`run` is empty".into(),
                    Some("give the program and its arguments".into()),
                );
            }
            return None;
        }
        if run
            .get_ref()
            .first()
            .is_some_and(|p| p.get_ref().trim().is_empty())
        {
            self.error(to_span(run.span()), "`run` names no program".into(), None);
        }
        Some(
            run.get_ref()
                .iter()
                .map(|a| template(self.ctx, a, self.scope))
                .collect(),
        )
    }

    /// The confirmation, and the drive a typed serial is taken from.
    fn confirm(&mut self, mentions_new: bool, binds_new: bool, new_bound: bool) -> Option<Confirm> {
        let word = match &self.raw.confirm {
            Some(value) => Some(choice(self.ctx, value, "confirmation", &CONFIRMS)?),
            None => None,
        };
        let drive = match &self.raw.confirm_drive {
            Some(value) => {
                let role = choice(self.ctx, value, "drive", &ROLES)?;
                if word != Some(ConfirmWord::TypeSerial) {
                    self.error(
                        to_span(value.span()),
                        "`confirm_drive` needs `confirm = \"type-serial\"`".into(),
                        Some("it says whose serial the technician types".into()),
                    );
                    return None;
                }
                if role == Role::New && !new_bound {
                    self.new_too_early(
                        to_span(value.span()),
                        "`confirm_drive` asks for the new drive's serial",
                    );
                    return None;
                }
                role
            }
            // The confirmation is asked before the step acts: on the step
            // that finds the new drive, its serial is not known yet.
            None if binds_new && word == Some(ConfirmWord::TypeSerial) => {
                let at = self
                    .raw
                    .confirm
                    .as_ref()
                    .map_or(self.table, |c| to_span(c.span()));
                self.error(
                    at,
                    format!(
                        "`type-serial` on {} would ask for the new drive's serial before the new drive is seen",
                        self.label
                    ),
                    Some("the confirmation comes before the step acts; confirm on a later step, or write `confirm_drive = \"target\"`".into()),
                );
                return None;
            }
            None if mentions_new => Role::New,
            None => Role::Target,
        };
        Some(match word {
            None => Confirm::None,
            Some(ConfirmWord::YesNo) => Confirm::YesNo,
            Some(ConfirmWord::TypeSerial) => Confirm::TypeSerial(drive),
        })
    }

    fn kind_payload(
        &mut self,
        kind: Option<Kind>,
        run: Option<Vec<Template>>,
        confirm: Option<Confirm>,
        new_bound: bool,
    ) -> Option<StepKind> {
        match kind? {
            Kind::Check => {
                let raw = self.raw;
                let parts = Parts {
                    table: self.table.start..self.table.end,
                    label: self.label.clone(),
                    run: raw.run.as_ref(),
                    timeout: raw.timeout.as_ref(),
                    exit: raw.exit.as_ref(),
                    json: raw.json.as_ref(),
                    matches: raw.matches.as_ref(),
                    not_matches: raw.not_matches.as_ref(),
                    stdout_is: raw.stdout_is.as_ref(),
                };
                let built = external_check::build(self.ctx, &parts, self.scope);
                let name = raw.id.as_ref().map(|id| id.get_ref().clone())?;
                Some(StepKind::Check {
                    check: ExternalCheck {
                        name,
                        run: built.run?,
                        exit: built.exit?,
                        test: built.test?,
                        timeout: built.timeout?,
                        span: self.table,
                    },
                })
            }
            Kind::Confirm => Some(StepKind::Confirm),
            Kind::Physical => Some(StepKind::Physical),
            Kind::Command => {
                let run = run?;
                let destructive = self.destructive(&run, confirm);
                Some(StepKind::Command { run, destructive })
            }
            Kind::Wait => match &self.raw.until {
                Some(until) => Some(StepKind::Wait {
                    until: choice(self.ctx, until, "wait condition", &UNTIL)?,
                }),
                None => {
                    self.missing(
                        "until",
                        format!("wait {} has no `until`", self.label),
                        "add `until = \"in-sync\"`".into(),
                    );
                    None
                }
            },
            Kind::Locate => match &self.raw.on {
                Some(on) => {
                    let role = choice(self.ctx, on, "drive", &ROLES)?;
                    if role == Role::New && !new_bound {
                        self.new_too_early(
                            to_span(on.span()),
                            "`on = \"new\"` blinks the new drive's bay",
                        );
                        return None;
                    }
                    Some(StepKind::Locate { on: role })
                }
                None => {
                    self.missing(
                        "on",
                        format!("locate {} has no `on`", self.label),
                        "add `on = \"target\"` or `on = \"new\"`".into(),
                    );
                    None
                }
            },
        }
    }

    /// Whether the command destroys data; an error when it does (or cannot
    /// be judged) without a typed confirmation.
    fn destructive(&mut self, run: &[Template], confirm: Option<Confirm>) -> bool {
        let texts: Vec<&str> = run.iter().map(|t| t.text.as_str()).collect();
        let (at, what, opaque) = match classify(&texts) {
            Effect::ReadOnly => return false,
            Effect::Destroys { at, what } => (at, what, false),
            Effect::Opaque { at, what } => (at, what, true),
        };
        let typed = matches!(confirm, Some(Confirm::TypeSerial(_)));
        // An unknown confirmation was reported already.
        if !typed && confirm.is_some() {
            let span = self
                .raw
                .run
                .as_ref()
                .and_then(|r| r.get_ref().get(at))
                .map_or(self.table, |a| to_span(a.span()));
            let message = if opaque {
                format!(
                    "cannot tell what {} runs ({what}), so it counts as destructive, and it has no typed confirmation",
                    self.label
                )
            } else {
                format!("{what}, but {} has no typed confirmation", self.label)
            };
            let help = if confirm == Some(Confirm::YesNo) {
                "a yes/no is not enough: use `confirm = \"type-serial\"`, so the technician types the last 4 characters of the drive's serial"
            } else {
                "add `confirm = \"type-serial\"`: the technician then types the last 4 characters of the drive's serial"
            };
            self.error(span, message, Some(help.into()));
        }
        true
    }
}

/// `a`, `a or b`, `a, b or c`.
fn join_or(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}
