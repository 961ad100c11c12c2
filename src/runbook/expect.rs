//! Semantic checks of a step's expectation (`expect`) and of the rules for
//! the drive it inserts (`new`).
//!
//! The new drive is found by the first step that expects
//! `new = "present"`; it must be large enough, blank, and not quarantined
//! (the incident that started this project restored a backup onto the very
//! drive that had just been pulled). The rules are strict by default and
//! each one turned off is a warning.

use toml::Spanned;

use crate::runbook::ctx::to_span;
use crate::runbook::model::{DriveExpect, Expectation, GuardPolicy, NewDriveRule, Span, Template};
use crate::runbook::raw::{RawExpect, RawNewDrive, Str};
use crate::runbook::steps::StepCheck;
use crate::runbook::template::variables;
use crate::runbook::values::choice;
use crate::runbook::vars::{NewBinding, template};
use crate::units::parse_size;

impl StepCheck<'_, '_, '_> {
    pub(crate) fn expectation(
        &mut self,
        guard: &GuardPolicy,
        binds_new: bool,
        new_bound: bool,
    ) -> Option<Expectation> {
        let Some(raw) = &self.raw.expect else {
            return Some(Expectation::default());
        };
        let RawExpect {
            target,
            new,
            degraded,
        } = raw.get_ref();
        let mut ok = true;
        let mut out = Expectation::default();
        if let Some(value) = target {
            out.target = choice(self.ctx, value, "expectation", &DriveExpect::ALL);
            ok &= out.target.is_some();
        }
        if let Some(value) = new {
            out.new = choice(self.ctx, value, "expectation", &DriveExpect::ALL);
            ok &= out.new.is_some();
            if out.new == Some(DriveExpect::Present) && !binds_new {
                self.error(
                    to_span(value.span()),
                    format!("{} expects a second new drive", self.label),
                    Some("a run inserts one new drive; only the first step expecting `new = \"present\"` finds it".into()),
                );
                ok = false;
            } else if out.new.is_some() && !binds_new && !new_bound {
                self.new_too_early(to_span(value.span()), "`expect` speaks of the new drive");
                ok = false;
            }
        }
        if let Some(value) = degraded {
            let n = *value.get_ref();
            if let Some(max) = guard.max_degraded
                && n > max
            {
                self.error(
                    to_span(value.span()),
                    format!("`degraded = {n}` is more than `[guard] max_degraded = {max}`"),
                    Some(
                        "the guard would halt this step; raise `max_degraded` or lower `degraded`"
                            .into(),
                    ),
                );
                ok = false;
            }
            out.degraded = Some(n);
        }
        ok.then_some(out)
    }

    /// An error for a use of the new drive at or before the step that finds it.
    pub(crate) fn new_too_early(&mut self, at: Span, what: &str) {
        let help = match self.scope.new {
            NewBinding::NotYet { id, span } => format!(
                "the new drive is found by step `{id}` (line {}), which expects `new = \"present\"`",
                self.ctx.line_of(span)
            ),
            _ => "no step expects `new = \"present\"`, so the new drive is never found".into(),
        };
        self.error(
            at,
            format!("{what}, but it is not known yet at {}", self.label),
            Some(help),
        );
    }

    pub(crate) fn new_drive(&mut self, binds_new: bool) -> Option<NewDriveRule> {
        let raw = self.raw.new.as_ref();
        if !binds_new {
            if let Some(raw) = raw {
                let at = self.key_span("new", to_span(raw.span()));
                self.error(
                    at,
                    format!(
                        "`new` rules on {}, which does not find the new drive",
                        self.label
                    ),
                    Some("put them on the step that expects `new = \"present\"`".into()),
                );
            }
            return None;
        }
        let header = self.table;
        let empty = RawNewDrive::default();
        let rules = raw.map_or(&empty, Spanned::get_ref);
        let at = raw.map_or(header, |r| to_span(r.span()));
        let min_size = rules.min_size.as_ref().map(|m| self.min_size(m));
        if rules.min_size.is_none() {
            self.ctx.warn(
                at,
                format!(
                    "the size of the drive inserted at {} is not checked",
                    self.label
                ),
                Some(
                    "add `new = { min_size = \"{target.size}\" }` so a smaller drive is refused"
                        .into(),
                ),
            );
        }
        // A drive behind a RAID controller cannot be read by swapguard, so
        // its blankness is never known: `blank = false` is the only rule a
        // MegaRAID runbook can keep, and no loosening (the controller's
        // foreign-configuration flag tells a used drive instead).
        let blank = if self.ctx.backend == Some("megaraid")
            && rules.blank.as_ref().is_some_and(|b| !*b.get_ref())
        {
            false
        } else {
            self.loosened(
                rules.blank.as_ref(),
                "blank",
                "a drive holding data or a RAID superblock will be written over",
            )
        };
        let not_quarantined = self.loosened(
            rules.not_quarantined.as_ref(),
            "not_quarantined",
            "the pulled target could be inserted again as the new drive",
        );
        Some(NewDriveRule {
            min_size,
            blank,
            not_quarantined,
        })
    }

    /// A new-drive rule: true unless explicitly false, which is a warning.
    fn loosened(&mut self, value: Option<&Spanned<bool>>, key: &str, risk: &str) -> bool {
        match value {
            Some(v) if !*v.get_ref() => {
                self.ctx.warn(
                    to_span(v.span()),
                    format!("the new-drive check is loosened: `{key} = false`"),
                    Some(format!("{risk}; the default is `true`")),
                );
                false
            }
            _ => true,
        }
    }

    fn min_size(&mut self, value: &Str) -> Template {
        let built = template(self.ctx, value, self.scope);
        let text = value.get_ref().trim();
        let refs = variables(text).unwrap_or_default();
        let fine = match refs.as_slice() {
            [] => parse_size(text).is_ok_and(|n| n > 0),
            [var] => var.name.ends_with(".size") && text == format!("{{{}}}", var.name),
            _ => false,
        };
        if !fine && variables(text).is_ok() {
            self.error(
                to_span(value.span()),
                format!("`{text}` is not a size"),
                Some("write a drive's size, `{target.size}`, or a size such as `960G`, `1.92T` or `894GiB`".into()),
            );
        }
        built
    }
}
