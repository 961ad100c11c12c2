//! Which `{variables}` a runbook string may use, and where.
//!
//! Defined names are every param (`{array}`, `{target}`), the drive fields of
//! member params (`{target.serial}`), and `{new.<field>}` only in steps after
//! the first step that expects `new = "present"`: before that no drive has
//! been inserted, so there is nothing to fill in, and a command must never
//! run with a hole in its argv.

use std::collections::BTreeMap;

use crate::runbook::ctx::Ctx;
use crate::runbook::model::{Param, ParamKind, Span, Template};
use crate::runbook::raw::{RawParam, Str};
use crate::runbook::template::{DRIVE_FIELDS, is_unprintable, variables};
use crate::runbook::values::suggest;
use crate::sanitize::sanitize;

/// What a `text` param's value must be when the runbook gives no
/// `pattern`: letters, digits and `. _ / : @ + , = -`, enough for host
/// names, paths, URLs such as `sftp:backup@vault:/restic` and ids, and
/// nothing a shell reads as syntax (no spaces, quotes, `;`, `$`, `|`, ...).
/// The whole value must match; a leading `-` is refused separately.
pub const DEFAULT_TEXT_PATTERN: &str = "[A-Za-z0-9._/:@+,=-]+";

/// The compiled pattern a `text` value must match as a whole.
fn whole(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
}

/// Check a param's `pattern` and `allow_dash`; returns them for the model.
pub(crate) fn param_rules(
    ctx: &mut Ctx,
    name: &str,
    kind: Option<ParamKind>,
    param: &toml::Spanned<RawParam>,
) -> (Option<String>, bool) {
    let raw = param.get_ref();
    let not_text = kind.is_some_and(|k| k != ParamKind::Text);
    let mut pattern = None;
    if let Some(p) = &raw.pattern {
        if not_text {
            ctx.error(
                p.span(),
                format!("`pattern` applies only to `text` params; `{name}` is resolved against the live system"),
                Some("remove `pattern`".into()),
            );
        } else if let Err(e) = whole(p.get_ref()) {
            let first = e.to_string();
            let first = first.lines().last().unwrap_or("").trim().to_string();
            ctx.error(
                p.span(),
                format!("`pattern` of `{name}` is not a regular expression: {first}"),
                Some(
                    "write a regex the whole value must match, e.g. `pattern = \"[a-z0-9-]+\"`"
                        .into(),
                ),
            );
        } else {
            pattern = Some(p.get_ref().clone());
        }
    }
    let mut allow_dash = false;
    if let Some(flag) = &raw.allow_dash {
        if not_text && *flag.get_ref() {
            ctx.error(
                flag.span(),
                format!(
                    "`allow_dash` applies only to `text` params; `{name}` never begins with `-`"
                ),
                Some("remove `allow_dash`".into()),
            );
        } else if *flag.get_ref() {
            allow_dash = true;
            ctx.warn(
                flag.span(),
                format!("values of `{name}` may begin with `-`: a program reads such a word as an option"),
                Some("keep it only if the value is meant to be an option, and pass it after `--` where the program allows".into()),
            );
        }
    }
    (pattern, allow_dash)
}

/// Check the values given for the runbook's params before anything runs:
/// no control characters, no leading `-` unless the param allows it, and a
/// `text` value must match its `pattern` (or [`DEFAULT_TEXT_PATTERN`]).
/// Values for names the runbook does not declare are left alone here.
pub fn check_params(params: &[Param], values: &BTreeMap<String, String>) -> Result<(), String> {
    for param in params {
        let Some(value) = values.get(&param.name) else {
            continue;
        };
        let name = &param.name;
        let shown = sanitize(value, false);
        if let Some(c) = value.chars().find(|c| *c == '\0' || is_unprintable(*c)) {
            return Err(format!(
                "param `{name}` = `{shown}` holds a control character ({}); refused",
                c.escape_unicode()
            ));
        }
        if value.starts_with('-') && !param.allow_dash {
            let help = if param.kind == ParamKind::Text {
                " (the runbook may allow it with `allow_dash = true`)"
            } else {
                ""
            };
            return Err(format!(
                "param `{name}` = `{shown}` begins with `-`, so a program would read it as an option; refused{help}"
            ));
        }
        if param.kind == ParamKind::Text {
            let (pattern, whose) = match &param.pattern {
                Some(p) => (p.as_str(), "the runbook's `pattern`"),
                None => (
                    DEFAULT_TEXT_PATTERN,
                    "the default for `text` params; a runbook can set its own `pattern`",
                ),
            };
            let re = whole(pattern).map_err(|e| format!("param `{name}`: bad pattern: {e}"))?;
            if !re.is_match(value) {
                return Err(format!(
                    "param `{name}` = `{shown}` is refused: it must match `{pattern}` as a whole ({whose})"
                ));
            }
        }
    }
    Ok(())
}

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

/// `{survivors}`: the array's other members at the baseline, by bay and
/// serial (`252:0 (serial S1), 252:2 (serial S3)`), for the bays a
/// physical step's instruction says not to touch.
pub const SURVIVORS: &str = "survivors";

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
        let mut names = vec![SURVIVORS.to_string()];
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
        span: crate::runbook::ctx::to_span(value.span()),
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
        None if name == SURVIVORS => None,
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

/// `kind` with its article, for messages.
pub(crate) fn kind_name(kind: ParamKind) -> &'static str {
    match kind {
        ParamKind::Array => "an `array`",
        ParamKind::Member => "a `member`",
        ParamKind::Drive => "a `drive`",
        ParamKind::Text => "a `text`",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::load::load_str;

    fn text(name: &str, pattern: Option<&str>, allow_dash: bool) -> Param {
        Param {
            name: name.into(),
            kind: ParamKind::Text,
            help: String::new(),
            pattern: pattern.map(str::to_string),
            allow_dash,
        }
    }

    fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn text_values_match_the_default_pattern() {
        let params = [text("replica", None, false)];
        for ok in [
            "db-replica",
            "/srv/backup/restic",
            "sftp:backup@vault:/restic",
            "a.b_c+d,e=f",
        ] {
            assert_eq!(
                check_params(&params, &given(&[("replica", ok)])),
                Ok(()),
                "{ok}"
            );
        }
        for bad in ["x; touch FILE", "$(id)", "a b", "", "x\ny", "`id`"] {
            let err = check_params(&params, &given(&[("replica", bad)])).unwrap_err();
            assert!(err.contains("param `replica`"), "{err}");
        }
        let err = check_params(&params, &given(&[("replica", "x; touch FILE")])).unwrap_err();
        assert!(
            err.contains(DEFAULT_TEXT_PATTERN) && err.contains("default"),
            "{err}"
        );
    }

    #[test]
    fn a_runbook_pattern_must_match_the_whole_value() {
        let params = [text("id", Some("[a-z0-9-]+"), false)];
        assert_eq!(check_params(&params, &given(&[("id", "web-1")])), Ok(()));
        let err = check_params(&params, &given(&[("id", "web-1; reboot")])).unwrap_err();
        assert!(err.contains("the runbook's `pattern`"), "{err}");
        // Looser patterns still never let control characters through.
        let any = [text("note", Some(".*"), false)];
        assert!(check_params(&any, &given(&[("note", "a\x1b[2Jb")])).is_err());
        assert_eq!(check_params(&any, &given(&[("note", "a; b")])), Ok(()));
    }

    #[test]
    fn a_leading_dash_needs_allow_dash() {
        let strict = [text("x", None, false)];
        let err = check_params(&strict, &given(&[("x", "--delete-all")])).unwrap_err();
        assert!(
            err.contains("begins with `-`") && err.contains("allow_dash"),
            "{err}"
        );
        let loose = [text("x", None, true)];
        assert_eq!(
            check_params(&loose, &given(&[("x", "--delete-all")])),
            Ok(())
        );
        let member = [Param {
            kind: ParamKind::Member,
            ..text("target", None, false)
        }];
        assert!(check_params(&member, &given(&[("target", "-sdb")])).is_err());
        assert_eq!(
            check_params(&member, &given(&[("target", "bay 3")])),
            Ok(())
        );
    }

    const HEAD: &str = r#"
[runbook]
name = "params test"
backend = "md"

[on_halt]
say = "STOP."

[[step]]
id = "c"
kind = "confirm"
say = "ok {extra}"

[params]
array = { kind = "array", help = "md array" }
target = { kind = "member", help = "member" }
"#;

    fn lint(extra: &str) -> Vec<String> {
        load_str(std::path::Path::new("rb.toml"), &format!("{HEAD}{extra}"))
            .diagnostics
            .iter()
            .map(|d| format!("{:?} {}:{} {}", d.severity, d.line, d.column, d.message))
            .collect()
    }

    #[test]
    fn lint_checks_pattern_and_allow_dash() {
        let ok = lint("extra = { kind = \"text\", help = \"x\", pattern = \"[a-z]+\" }\n");
        assert!(!ok.iter().any(|d| d.starts_with("Error")), "{ok:?}");
        let bad = lint("extra = { kind = \"text\", help = \"x\", pattern = \"[a-z\" }\n");
        assert!(
            bad.iter()
                .any(|d| d.starts_with("Error") && d.contains("not a regular expression")),
            "{bad:?}"
        );
        let wrong_kind = lint(
            "extra = { kind = \"member\", help = \"x\", pattern = \"a\", allow_dash = true }\n",
        );
        assert!(
            wrong_kind
                .iter()
                .any(|d| d.contains("`pattern` applies only to `text` params")),
            "{wrong_kind:?}"
        );
        assert!(
            wrong_kind
                .iter()
                .any(|d| d.contains("`allow_dash` applies only to `text` params")),
            "{wrong_kind:?}"
        );
        let dash = lint("extra = { kind = \"text\", help = \"x\", allow_dash = true }\n");
        assert!(
            dash.iter()
                .any(|d| d.starts_with("Warning") && d.contains("may begin with `-`")),
            "{dash:?}"
        );
    }
}
