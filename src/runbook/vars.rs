//! Which `{variables}` a runbook string may use, and where.
//!
//! Defined names are every param (`{array}`, `{target}`), the drive fields of
//! member params (`{target.serial}`), and `{new.<field>}` only in steps after
//! the first step that expects `new = "present"`: before that no drive has
//! been inserted, so there is nothing to fill in, and a command must never
//! run with a hole in its argv.

use crate::runbook::keys::suggest;
use crate::runbook::load::Ctx;
use crate::runbook::model::{Param, ParamKind, Span, Template};
use crate::runbook::raw::Str;
use crate::runbook::template::{DRIVE_FIELDS, variables};

/// Whether `{new.*}` is bound where a string is used.
#[derive(Clone, Copy, Debug)]
pub(crate) enum NewBinding<'a> {
    /// In a preflight check: before any step.
    BeforeSteps,
    /// In a step at or before the one that binds it (`id`, at `span`).
    NotYet { id: &'a str, span: Span },
    /// No step binds it at all.
    Never,
    /// In a step after the one that binds it.
    Bound,
}

/// The names a string may use.
pub(crate) struct Scope<'a> {
    pub params: &'a [Param],
    /// False when `[params]` is missing or unreadable (already an error):
    /// then only `{new.*}` is checked.
    pub params_known: bool,
    pub new: NewBinding<'a>,
}

impl Scope<'_> {
    /// Every name defined here, for "did you mean".
    fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for param in self.params {
            names.push(param.name.clone());
            if matches!(param.kind, ParamKind::Member | ParamKind::Drive) {
                names.extend(DRIVE_FIELDS.iter().map(|f| format!("{}.{f}", param.name)));
            }
        }
        if matches!(self.new, NewBinding::Bound) {
            names.extend(DRIVE_FIELDS.iter().map(|f| format!("new.{f}")));
        }
        names
    }
}

/// Check every variable of a string value and keep it as a template.
pub(crate) fn template(ctx: &mut Ctx, value: &Str, scope: &Scope) -> Template {
    let text = value.get_ref();
    match variables(text) {
        Err((offset, message)) => {
            let at = ctx.inner_span(value, offset, 1);
            ctx.error(at, message, None);
        }
        Ok(refs) => {
            for var in refs {
                let at = ctx.inner_span(value, var.offset, var.name.len());
                if let Some((message, help)) = undefined(ctx, &var.name, scope) {
                    ctx.error(at, message, help);
                }
            }
        }
    }
    Template {
        text: text.clone(),
        span: crate::runbook::load::to_span(value.span()),
    }
}

/// Whether the text uses any `{new.*}` variable.
pub(crate) fn mentions_new(text: &str) -> bool {
    variables(text).is_ok_and(|refs| refs.iter().any(|r| r.name.starts_with("new.")))
}

/// Why `name` is not defined in `scope`, or `None` when it is.
fn undefined(ctx: &Ctx, name: &str, scope: &Scope) -> Option<(String, Option<String>)> {
    let param = |n: &str| scope.params.iter().find(|p| p.name == n);
    let fields = || {
        DRIVE_FIELDS
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name.split_once('.') {
        None if param(name).is_some() => None,
        None if name == "new" => Some((
            "`{new}` is a drive, not a value".into(),
            Some(format!(
                "name a field, e.g. `{{new.serial}}`; fields: {}",
                fields()
            )),
        )),
        Some(("new", field)) => {
            let not_bound = match scope.new {
                NewBinding::Bound => None,
                NewBinding::BeforeSteps => Some((
                    format!("`{{{name}}}` cannot be used before the steps"),
                    Some("the new drive is only known once a step has seen it inserted".into()),
                )),
                NewBinding::NotYet { id, span } => Some((
                    format!("`{{{name}}}` is not known yet at this step"),
                    Some(format!(
                        "the new drive is found by step `{id}` (line {}), which expects `new = \"present\"`; use `{{new.*}}` only in steps after it",
                        ctx.line_of(span)
                    )),
                )),
                NewBinding::Never => Some((
                    format!("`{{{name}}}` is never known: no step expects `new = \"present\"`"),
                    Some(
                        "add a physical step with `expect = { new = \"present\" }` before this one"
                            .into(),
                    ),
                )),
            };
            not_bound.or_else(|| field_problem("new", field, fields()))
        }
        _ if !scope.params_known => None,
        Some((base, field)) => match param(base) {
            Some(p) if matches!(p.kind, ParamKind::Member | ParamKind::Drive) => {
                field_problem(base, field, fields())
            }
            Some(p) => Some((
                format!(
                    "`{base}` is {} param, not a drive: it has no fields",
                    kind_name(p.kind)
                ),
                Some(format!("write `{{{base}}}`")),
            )),
            None => Some(unknown(name, scope)),
        },
        None => Some(unknown(name, scope)),
    }
}

fn field_problem(base: &str, field: &str, fields: String) -> Option<(String, Option<String>)> {
    if DRIVE_FIELDS.contains(&field) {
        return None;
    }
    let help = match suggest(field, DRIVE_FIELDS) {
        Some(near) => format!("did you mean `{{{base}.{near}}}`?"),
        None => format!("drive fields: {fields}"),
    };
    Some((format!("a drive has no field `{field}`"), Some(help)))
}

fn unknown(name: &str, scope: &Scope) -> (String, Option<String>) {
    let names = scope.names();
    let help = match suggest(name, names.iter().map(String::as_str)) {
        Some(near) => format!("did you mean `{{{near}}}`?"),
        None => {
            let params: Vec<String> = scope
                .params
                .iter()
                .map(|p| format!("`{{{}}}`", p.name))
                .collect();
            format!(
                "variables are the params ({}) and drive fields such as `{{target.serial}}`",
                params.join(", ")
            )
            .replace(" () ", " ")
        }
    };
    (format!("undefined variable `{{{name}}}`"), Some(help))
}

fn kind_name(kind: ParamKind) -> &'static str {
    match kind {
        ParamKind::Array => "an `array`",
        ParamKind::Member => "a `member`",
        ParamKind::Drive => "a `drive`",
        ParamKind::Text => "a `text`",
    }
}
