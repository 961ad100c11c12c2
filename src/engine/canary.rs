//! The engine's side of data canaries (src/canary.rs): when to write the
//! canary, when to read it back, and what a wrong read means.
//!
//! The canary is written once preflight has passed (or after the step
//! `[canary] after` names), read back at every step boundary (before and
//! after each step, journaled) and every `[canary] every` during watches,
//! and removed when the run ends, unless it ends in a halt: then the array
//! is suspect, and removing the file would be one more write to it and
//! would destroy the evidence, so the canary is left where it is and the
//! halt says where. Anything that does not read back as written halts:
//! "the array returned different data", naming the mirror member whose own
//! copy differs by serial and bay, as every other halt does.

use std::path::Path;

use crate::canary::{Canaries, Fault, FileCanary};
use crate::engine::{Stop, Walk};
use crate::health::guard::{Subject, Violation};
use crate::health::model::Identity;
use crate::journal::Event;
use crate::operator::NoteLevel;
use crate::sanitize::sanitize;

/// The canary of one run.
pub(crate) struct Watch {
    real: FileCanary,
    planted: Option<String>,
    last_ms: u64,
}

impl Watch {
    pub(crate) fn new() -> Watch {
        Watch {
            real: FileCanary::new("/").with_member_copies(crate::backend::registry::member_copies),
            planted: None,
            last_ms: 0,
        }
    }
}

impl Walk<'_, '_> {
    /// Run `f` on the canary store: the backend's own (the simulator), or
    /// real files. The simulator never falls back to real files.
    fn with_canary<R>(
        &mut self,
        f: impl FnOnce(&mut dyn Canaries) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        let simulated = self.run.backend.name() == "sim";
        match self.run.backend.canaries() {
            Some(store) => f(store),
            None if simulated => Err(anyhow::anyhow!(
                "this simulated backend plays no data canary"
            )),
            None => f(&mut self.canary.real),
        }
    }

    /// Write the canary if the runbook names one and `after` is when
    /// (`None`: before the first step). At the start a failure refuses the
    /// run; later it halts.
    pub(crate) fn plant_canary(&mut self, after: Option<&str>) -> Result<(), Stop> {
        let Some(rule) = self.run.runbook.canary.clone() else {
            return Ok(());
        };
        if rule.after.as_deref() != after || self.canary.planted.is_some() {
            return Ok(());
        }
        let dir = self.render(&rule.dir.text)?;
        let name: String = self
            .run
            .session
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let planted = self.with_canary(|c| c.plant(Path::new(&dir), rule.size, &name));
        let planted = match planted {
            Ok(p) => p,
            Err(e) => {
                let reason = format!("cannot write the data canary in `{dir}`: {e:#}");
                return Err(match after {
                    None => Stop::Refuse {
                        reasons: vec![reason],
                    },
                    Some(step) => Stop::Halt {
                        step: step.to_string(),
                        headline: reason,
                        violations: vec![],
                    },
                });
            }
        };
        self.canary.planted = Some(planted.path.clone());
        self.canary.last_ms = self.run.clock.now_ms();
        let mut text = format!(
            "data canary written: `{}` ({} bytes of random data), re-read with O_DIRECT at every step and every {} while watching",
            planted.path,
            planted.bytes,
            humantime::format_duration(rule.every)
        );
        if !planted.copies.is_empty() {
            text.push_str(&format!(
                "; each copy read directly: {}",
                planted.copies.join(", ")
            ));
        }
        if let Some(why) = &planted.not_checked {
            text.push_str(&format!("; per-member copies not checked: {why}"));
        }
        self.record(Event::CanaryPlanted { report: planted })?;
        self.run
            .operator
            .note(NoteLevel::Info, &sanitize(&text, false));
        Ok(())
    }

    /// Read the canary back at a step boundary (journaled).
    pub(crate) fn verify_canary(&mut self, step: &str) -> Result<(), Stop> {
        self.canary_read(step, true)
    }

    /// Read the canary back during a watch, at most every `[canary] every`.
    pub(crate) fn watch_canary(&mut self, step: &str) -> Result<(), Stop> {
        let Some(rule) = &self.run.runbook.canary else {
            return Ok(());
        };
        let now = self.run.clock.now_ms();
        if now.saturating_sub(self.canary.last_ms) < rule.every.as_millis() as u64 {
            return Ok(());
        }
        self.canary_read(step, false)
    }

    fn canary_read(&mut self, step: &str, journal: bool) -> Result<(), Stop> {
        let Some(path) = self.canary.planted.clone() else {
            return Ok(());
        };
        self.canary.last_ms = self.run.clock.now_ms();
        let faults = match self.with_canary(|c| c.verify()) {
            Ok(f) => f,
            Err(e) => vec![Fault {
                what: "the file".into(),
                detail: format!("cannot be verified: {e:#}"),
                zeros: false,
                member: None,
            }],
        };
        if faults.is_empty() {
            if journal {
                self.record(Event::CanaryVerified {
                    step: step.to_string(),
                    checked: vec![path],
                })?;
            }
            return Ok(());
        }
        let zeros = faults.iter().any(|f| f.zeros);
        let members: Vec<String> = faults
            .iter()
            .filter_map(|f| f.member.as_deref())
            .map(|m| self.member_identity(m))
            .collect();
        let mut headline = format!(
            "the array returned different data: the data canary `{path}` no longer reads back as written{}",
            if zeros { " (zeros)" } else { "" }
        );
        if !members.is_empty() {
            headline.push_str(&format!("; the copy on {} differs", members.join(", ")));
        }
        let violations = faults
            .into_iter()
            .map(|f| match &f.member {
                Some(m) => Violation {
                    subject: if *m == self.target.id.dev {
                        Subject::Target
                    } else {
                        Subject::Survivor
                    },
                    who: self.member_identity(m),
                    what: format!("canary data ({})", f.what),
                    before: "as written".into(),
                    after: f.detail,
                },
                None => Violation {
                    subject: Subject::Array,
                    who: path.clone(),
                    what: format!("canary data ({})", f.what),
                    before: "as written".into(),
                    after: f.detail,
                },
            })
            .collect();
        Err(Stop::Halt {
            step: step.to_string(),
            headline,
            violations,
        })
    }

    /// `sda (serial S3Z1…, bay 0)` for the member whose copy was read as
    /// `sda`; the bare name when the run never saw such a drive.
    fn member_identity(&self, member: &str) -> String {
        let known: Option<&Identity> = self
            .baseline
            .drives
            .iter()
            .map(|d| &d.id)
            .chain(self.new.as_ref().map(|d| &d.id))
            .find(|id| id.dev == member);
        match known {
            Some(id) => id.describe(),
            None => format!("{member} (serial unknown, bay unknown)"),
        }
    }

    /// The end of the run: remove the canary, except at a halt, where it is
    /// left in place (journaled) and the halt says where it is.
    pub(crate) fn end_canary(&mut self, stop: Option<&mut Stop>) {
        let Some(Stop::Halt { headline, .. }) = stop else {
            self.remove_canary();
            return;
        };
        let Some(path) = self.canary.planted.take() else {
            return;
        };
        headline.push_str(&format!(
            "; the data canary is left in place as evidence: `{path}` (remove it by hand once the array is safe)"
        ));
        let _ = self.record(Event::CanaryKept {
            path,
            reason: "the run halted: the array is suspect, and removing the canary would write to it and destroy the evidence".into(),
        });
    }

    /// Remove the canary at the end of the run (best effort, journaled).
    pub(crate) fn remove_canary(&mut self) {
        let Some(path) = self.canary.planted.take() else {
            return;
        };
        let outcome = match self.with_canary(|c| c.remove()) {
            Ok(_) => "removed".to_string(),
            Err(e) => {
                let text =
                    format!("could not remove the data canary `{path}`: {e:#}; remove it by hand");
                self.run
                    .operator
                    .note(NoteLevel::Warn, &sanitize(&text, false));
                format!("not removed: {e:#}")
            }
        };
        let _ = self.record(Event::CanaryRemoved { path, outcome });
    }
}
