//! The key check: every table's keys against the raw struct that reads it.
//!
//! The lists of valid keys come from the raw structs themselves
//! ([`fields_of`]), so adding a field to `raw.rs` is all it takes for the
//! checker to accept it. Unknown keys are reported with "did you mean" and
//! then removed from the tree, so serde (whose `deny_unknown_fields` stays as
//! a second line of defence) goes on to find the remaining problems. The walk
//! also records where every key sits, for messages about keys that are
//! known but do not apply.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::runbook::ctx::{Ctx, span_key, to_span};
use crate::runbook::diag::{Diagnostic, Severity};
use crate::runbook::model::Span;
use crate::runbook::raw::{
    RawCanary, RawCheck, RawExpect, RawGuard, RawJson, RawMeta, RawNewDrive, RawNotify, RawOnHalt,
    RawParam, RawPreflight, RawRunbook, RawStep, fields_of,
};
use crate::runbook::values::{quoted_list, suggest};

/// Check (and prune) the keys of the whole document. `recovered` says the
/// tree was rebuilt around syntax errors, so its shape is not to be trusted
/// beyond the keys themselves.
pub(crate) fn check(ctx: &mut Ctx, root: &mut Spanned<DeValue<'_>>, recovered: bool) {
    let root_span = root.span();
    let DeValue::Table(table) = root.get_mut() else {
        return;
    };
    table_keys(
        ctx,
        root_span.clone(),
        table,
        fields_of::<RawRunbook>(),
        "at the top level",
    );
    if !recovered {
        single_tables_for_arrays(ctx, root_span.clone(), table);
        for key in [
            "runbook",
            "params",
            "guard",
            "preflight",
            "on_halt",
            "canary",
            "notify",
        ] {
            array_for_single_table(ctx, root_span.clone(), table, key);
        }
    }
    for (key, value) in table.iter_mut() {
        match key.get_ref().as_ref() {
            "runbook" => section(ctx, value, fields_of::<RawMeta>(), "in [runbook]"),
            "guard" => section(ctx, value, fields_of::<RawGuard>(), "in [guard]"),
            "on_halt" => section(ctx, value, fields_of::<RawOnHalt>(), "in [on_halt]"),
            "canary" => section(ctx, value, fields_of::<RawCanary>(), "in [canary]"),
            "notify" => section(ctx, value, fields_of::<RawNotify>(), "in [notify]"),
            "params" => params(ctx, value),
            "preflight" => preflight(ctx, value),
            "step" => steps(ctx, value),
            _ => {}
        }
    }
}

/// `[step]` where `[[step]]` was meant (and `[preflight.check]`): a common
/// slip with a clear fix, reported instead of serde's type error.
fn single_tables_for_arrays(ctx: &mut Ctx, root_span: Range<usize>, root: &mut DeTable<'_>) {
    single_table_for_array(ctx, root_span, root, "step", "step");
    if let Some(preflight) = root.get_mut("preflight") {
        let span = preflight.span();
        if let DeValue::Table(table) = preflight.get_mut() {
            single_table_for_array(ctx, span, table, "check", "preflight.check");
        }
    }
}

fn single_table_for_array(
    ctx: &mut Ctx,
    span: Range<usize>,
    table: &mut DeTable<'_>,
    key: &str,
    header: &str,
) {
    let Some(value) = table.get(key) else {
        return;
    };
    if !matches!(value.get_ref(), DeValue::Table(_)) {
        return;
    }
    ctx.error(
        value.span(),
        format!("`[{header}]` is a single table, but there can be several"),
        Some(format!(
            "write `[[{header}]]` (double brackets), once for each"
        )),
    );
    ctx.broken.insert(span_key(span, key));
    table.remove(key);
}

/// Headers of arrays of tables, which a single-bracket header gets wrong.
const ARRAY_HEADERS: [&str; 2] = ["step", "preflight.check"];

/// Find every `[step]` (or `[preflight.check]`) header line, single
/// brackets where double were meant. Each is one error at its own line;
/// the text returned has them written `[[step]]`, so the parse that follows
/// reads the file as meant instead of reporting every key of every later
/// step as a duplicate. `None` when there is nothing to repair.
pub(crate) fn single_bracket_headers(
    path: &Path,
    source: &str,
) -> (Option<String>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let mut repaired = String::with_capacity(source.len() + 16);
    let mut in_multiline: Option<&str> = None;
    let mut offset = 0;
    for line in source.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        if let Some(delimiter) = in_multiline {
            if line.matches(delimiter).count() % 2 == 1 {
                in_multiline = None;
            }
            repaired.push_str(line);
            continue;
        }
        for delimiter in ["\"\"\"", "'''"] {
            if line.matches(delimiter).count() % 2 == 1 {
                in_multiline = Some(delimiter);
            }
        }
        let code = line.split('#').next().unwrap_or("").trim();
        let header = code
            .strip_prefix('[')
            .and_then(|c| c.strip_suffix(']'))
            .filter(|inner| !inner.starts_with('[') && !inner.ends_with(']'))
            .map(|inner| {
                inner
                    .split('.')
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(".")
            });
        match header.filter(|h| ARRAY_HEADERS.contains(&h.as_str())) {
            Some(name) => {
                let open = start + line.find('[').unwrap_or(0);
                let close = start + line.find(']').unwrap_or(0) + 1;
                diagnostics.push(Diagnostic::at(
                    Severity::Error,
                    path,
                    source,
                    Span {
                        start: open,
                        end: close,
                    },
                    format!("`[{name}]` is a single table, but there can be several"),
                    Some(format!(
                        "write `[[{name}]]` (double brackets), once for each"
                    )),
                ));
                repaired.push_str(&line[..open - start]);
                repaired.push_str(&format!("[[{name}]]"));
                repaired.push_str(&line[close - start..]);
            }
            None => repaired.push_str(line),
        }
    }
    if diagnostics.is_empty() {
        (None, diagnostics)
    } else {
        (Some(repaired), diagnostics)
    }
}

/// Help for a value of the wrong type, for the key it was given to.
pub(crate) fn type_help(key: &str, message: &str) -> Option<String> {
    let help = match key {
        "run" => {
            "write an array in brackets, e.g. `[\"mdadm\", \"--detail\", \"/dev/{array}\"]`; an argv has one element per argument"
        }
        "tolerate" | "halt_on" => {
            "write an array of counter names in brackets, e.g. `[\"smart.udma_crc_error_count\"]`"
        }
        "require" => {
            "write an array of preconditions in brackets, e.g. `[\"redundant-without-target\", \"survivors-healthy\"]`"
        }
        "optional" => {
            "write `optional = true` or `optional = false`, without quotes: with `true` a failure of this step does not stop the run"
        }
        "sign_off" => "write `sign_off = true` or `sign_off = false`, without quotes",
        "shell" => "write `shell = true` or `shell = false`, without quotes",
        "max_degraded" => "write a whole number without quotes, e.g. `max_degraded = 1`",
        "exit" => {
            "write an exit status without quotes, e.g. `exit = 0`, or an array of them, e.g. `exit = [0, 4]`"
        }
        "expect" => "write a table, e.g. `expect = { target = \"absent\" }`",
        "new" => "write a table, e.g. `new = { min_size = \"{target.size}\" }`",
        "json" => "write a table, e.g. `json = { pointer = \"/status\", equals = \"ok\" }`",
        "timeout" | "smart_poll" | "watch_poll" | "every" | "max_age" => {
            "write a duration in quotes, e.g. `\"10s\"`, `\"30m\"`, `\"24h\"`"
        }
        _ if message.contains("expected a boolean") => "write `true` or `false`, without quotes",
        _ if message.contains("expected a string") => "write the value in double quotes",
        _ => return None,
    };
    Some(help.to_string())
}

/// After a repair by [`single_bracket_headers`], a diagnostic on a repaired
/// header line shows the line as written, not as repaired.
pub(crate) fn show_original_lines(diagnostics: &mut [Diagnostic], original: &str) {
    let lines: Vec<&str> = original.lines().collect();
    for d in diagnostics.iter_mut().filter(|d| d.line > 0) {
        let Some(line) = lines.get(d.line - 1) else {
            continue;
        };
        let line = line.trim_end_matches('\r');
        if d.source_line != line {
            let len = line.chars().count();
            d.source_line = line.to_string();
            d.column = d.column.min(len.max(1));
            d.width = d.width.min((len + 1).saturating_sub(d.column)).max(1);
        }
    }
}

/// `[[guard]]` where `[guard]` was meant.
fn array_for_single_table(ctx: &mut Ctx, span: Range<usize>, table: &mut DeTable<'_>, key: &str) {
    let Some(value) = table.get(key) else {
        return;
    };
    let DeValue::Array(items) = value.get_ref() else {
        return;
    };
    // An inline array (`guard = [1]`) is left to serde's type error.
    let Some(first) = items.first() else {
        return;
    };
    if !items
        .iter()
        .all(|i| matches!(i.get_ref(), DeValue::Table(_)))
    {
        return;
    }
    let at = first.span();
    ctx.error(
        at,
        format!("`[[{key}]]` is an array of tables, but there is only one `[{key}]`"),
        Some(format!("write `[{key}]` (single brackets)")),
    );
    ctx.broken.insert(span_key(span, key));
    table.remove(key);
}

fn section(ctx: &mut Ctx, value: &mut Spanned<DeValue<'_>>, fields: &[&str], place: &str) {
    let span = value.span();
    if let DeValue::Table(table) = value.get_mut() {
        table_keys(ctx, span, table, fields, place);
    }
}

fn params(ctx: &mut Ctx, value: &mut Spanned<DeValue<'_>>) {
    let span = value.span();
    let DeValue::Table(table) = value.get_mut() else {
        return;
    };
    record_keys(ctx, span, table);
    for (name, param) in table.iter_mut() {
        let place = format!("in param `{}`", name.get_ref());
        section(ctx, param, fields_of::<RawParam>(), &place);
    }
}

fn preflight(ctx: &mut Ctx, value: &mut Spanned<DeValue<'_>>) {
    let span = value.span();
    let DeValue::Table(table) = value.get_mut() else {
        return;
    };
    table_keys(
        ctx,
        span,
        table,
        fields_of::<RawPreflight>(),
        "in [preflight]",
    );
    let Some(checks) = table.get_mut("check") else {
        return;
    };
    let DeValue::Array(checks) = checks.get_mut() else {
        return;
    };
    for (index, check) in checks.iter_mut().enumerate() {
        let span = check.span();
        let DeValue::Table(table) = check.get_mut() else {
            continue;
        };
        let who = match str_of(table, "name") {
            Some(name) => format!("check `{name}`"),
            None => format!("[[preflight.check]] number {}", index + 1),
        };
        table_keys(
            ctx,
            span,
            table,
            fields_of::<RawCheck>(),
            &format!("in {who}"),
        );
        if let Some(json) = table.get_mut("json") {
            section(
                ctx,
                json,
                fields_of::<RawJson>(),
                &format!("in `json` of {who}"),
            );
        }
    }
}

fn steps(ctx: &mut Ctx, value: &mut Spanned<DeValue<'_>>) {
    let DeValue::Array(steps) = value.get_mut() else {
        return;
    };
    for (index, step) in steps.iter_mut().enumerate() {
        let span = step.span();
        let DeValue::Table(table) = step.get_mut() else {
            continue;
        };
        let who = match str_of(table, "id") {
            Some(id) => format!("step `{id}`"),
            None => format!("step number {}", index + 1),
        };
        table_keys(
            ctx,
            span,
            table,
            fields_of::<RawStep>(),
            &format!("in {who}"),
        );
        if let Some(expect) = table.get_mut("expect") {
            let place = format!("in `expect` of {who}");
            section(ctx, expect, fields_of::<RawExpect>(), &place);
        }
        if let Some(new) = table.get_mut("new") {
            let place = format!("in `new` of {who}");
            section(ctx, new, fields_of::<RawNewDrive>(), &place);
        }
        if let Some(json) = table.get_mut("json") {
            let place = format!("in `json` of {who}");
            section(ctx, json, fields_of::<RawJson>(), &place);
        }
    }
}

fn str_of(table: &DeTable<'_>, key: &str) -> Option<String> {
    table
        .get(key)
        .and_then(|v| v.get_ref().as_str())
        .map(str::to_string)
}

fn record_keys(ctx: &mut Ctx, span: Range<usize>, table: &DeTable<'_>) {
    for key in table.keys() {
        ctx.keys
            .insert(span_key(span.clone(), key.get_ref()), to_span(key.span()));
    }
}

/// Report every key of `table` that `fields` does not list, then drop them.
fn table_keys(
    ctx: &mut Ctx,
    span: Range<usize>,
    table: &mut DeTable<'_>,
    fields: &[&str],
    place: &str,
) {
    record_keys(ctx, span, table);
    let mut unknown = Vec::new();
    for key in table.keys() {
        let name = key.get_ref().as_ref();
        if fields.contains(&name) {
            continue;
        }
        let help = match suggest(name, fields.iter().copied()) {
            Some(near) => format!("did you mean `{near}`?"),
            None => format!("valid keys here: {}", quoted_list(fields.iter().copied())),
        };
        ctx.error(
            key.span(),
            format!("unknown key `{name}` {place}"),
            Some(help),
        );
        unknown.push(name.to_string());
    }
    for key in &unknown {
        table.remove(key.as_str());
    }
}
