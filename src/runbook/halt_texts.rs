//! `[on_halt.kind]` and `[on_halt.step]`: halt guidance for a kind of step
//! or for one step, over `[on_halt] say`.
//!
//! One text for every halt reads wrong half the time: "take your hands out
//! of the chassis" is right when a survivor degrades while a drive is being
//! pulled, and alarming nonsense during a rebuild wait with the lid closed.
//! A key that names no step kind, or no step, is an error with "did you
//! mean": a guidance text that silently never shows is the failure this
//! section exists to prevent.

use std::collections::BTreeMap;

use toml::Spanned;

use crate::runbook::ctx::Ctx;
use crate::runbook::model::{HaltTexts, Step};
use crate::runbook::raw::{RawRunbook, Str};
use crate::runbook::values::{quoted_list, suggest, unix_newlines};

/// The step kinds a `[on_halt.kind]` key may name.
pub(crate) const STEP_KINDS: [&str; 6] =
    ["confirm", "command", "physical", "wait", "locate", "check"];

pub(crate) fn build(ctx: &mut Ctx, raw: &RawRunbook, steps: &[Step]) -> HaltTexts {
    let Some(on_halt) = raw.on_halt.as_ref().map(Spanned::get_ref) else {
        return HaltTexts::default();
    };
    // Ids as written, also of steps that failed to check: a typo in a
    // step is reported there, not again here.
    let mut ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
    for step in raw.step.iter().flat_map(|s| s.get_ref()) {
        if let Some(id) = &step.get_ref().id {
            ids.push(id.get_ref());
        }
    }
    HaltTexts {
        kinds: texts(ctx, on_halt.kind.as_ref(), "kind", &STEP_KINDS, "step kind"),
        steps: texts(ctx, on_halt.step.as_ref(), "step", &ids, "step id"),
    }
}

fn texts(
    ctx: &mut Ctx,
    table: Option<&Spanned<BTreeMap<Str, Str>>>,
    section: &str,
    names: &[&str],
    what: &str,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, text) in table.into_iter().flat_map(|t| t.get_ref()) {
        let key = name.get_ref();
        if !names.contains(&key.as_str()) {
            let help = match suggest(key, names.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None if names.is_empty() => "the runbook has no steps".to_string(),
                None => format!("{what}s are {}", quoted_list(names.iter().copied())),
            };
            ctx.error(
                name.span(),
                format!("`[on_halt.{section}]` names no {what}: `{key}`"),
                Some(help),
            );
            continue;
        }
        let body = unix_newlines(text.get_ref().trim());
        if body.is_empty() {
            ctx.error(
                text.span(),
                format!("`[on_halt.{section}] {key}` is empty"),
                Some("write what the technician should do, or remove the key".into()),
            );
            continue;
        }
        out.insert(key.clone(), body);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::runbook::load::load_str;

    fn runbook(on_halt: &str) -> String {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/runbooks-e2e/pull-only.toml"),
        )
        .unwrap()
        .replace(
            "[[step]]\nid = \"antistatic\"",
            &format!("{on_halt}\n[[step]]\nid = \"antistatic\""),
        )
    }

    #[test]
    fn halt_guidance_by_step_then_kind_then_say() {
        let source = runbook(
            "[on_halt.kind]\nphysical = \"put it back\"\nconfirm = \"nothing moved\"\n\
             [on_halt.step]\nantistatic = \"strap stays on\"\n",
        );
        let loaded = load_str(Path::new("r.toml"), &source);
        assert_eq!(loaded.errors(), 0, "{:?}", loaded.diagnostics);
        let rb = loaded.runbook.unwrap();
        assert_eq!(rb.halt_guidance("antistatic"), "strap stays on");
        assert_eq!(rb.halt_guidance("pull"), "put it back");
        assert_eq!(
            rb.halt_guidance("preflight"),
            "STOP. Hands out of the chassis."
        );
    }

    #[test]
    fn unknown_kinds_and_step_ids_are_errors_with_suggestions() {
        for (on_halt, message, help) in [
            (
                "[on_halt.kind]\nphyscial = \"x\"\n",
                "`[on_halt.kind]` names no step kind: `physcial`",
                "did you mean `physical`?",
            ),
            (
                "[on_halt.step]\npul = \"x\"\n",
                "`[on_halt.step]` names no step id: `pul`",
                "did you mean `pull`?",
            ),
            (
                "[on_halt.kind]\nreboot = \"x\"\n",
                "`[on_halt.kind]` names no step kind: `reboot`",
                "step kinds are `confirm`, `command`, `physical`, `wait`, `locate`, `check`",
            ),
            (
                "[on_halt.step]\npull = \"  \"\n",
                "`[on_halt.step] pull` is empty",
                "write what the technician should do, or remove the key",
            ),
        ] {
            let loaded = load_str(Path::new("r.toml"), &runbook(on_halt));
            let errors: Vec<_> = loaded.diagnostics.iter().filter(|d| d.is_error()).collect();
            assert_eq!(errors.len(), 1, "{on_halt}: {:?}", loaded.diagnostics);
            assert_eq!(errors[0].message, message);
            assert_eq!(errors[0].help.as_deref(), Some(help), "{on_halt}");
        }
    }
}
