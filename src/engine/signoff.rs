//! Second-person sign-off: before a step marked `sign_off = true` acts, a
//! second person gives their name and types the last four characters of the
//! serial of the drive the step acts on. Both go to the journal.
//!
//! The incident's restore went onto the wrong drive because one person in a
//! hurry picked it; a second pair of eyes on the serial is the oldest fix
//! for that. swapguard cannot tell two people apart at one keyboard: it
//! records who said they checked, so the journal shows it.

use crate::engine::{Stop, Walk};
use crate::journal::Event;
use crate::operator::{Answer, Question, QuestionKind};
use crate::runbook::model::{Confirm, Role, Step};
use crate::sanitize::sanitize;

impl Walk<'_, '_> {
    pub(crate) fn sign_off(&mut self, step: &Step) -> Result<(), Stop> {
        if !step.sign_off {
            return Ok(());
        }
        let role = match step.confirm {
            Confirm::TypeSerial(role) => role,
            _ if step.expect.new.is_some() && self.new.is_some() => Role::New,
            _ => Role::Target,
        };
        let Some(drive) = self.drive_for(role).map(|d| d.id.clone()) else {
            return Err(Stop::Error(anyhow::anyhow!(
                "step `{}` asks for a sign-off on the new drive before a new drive was seen",
                step.id
            )));
        };
        let prompt =
            "A second person must check this step before it runs. Second person: type your name"
                .to_string();
        let answer = self.ask(
            &step.id,
            &Question {
                step_id: step.id.clone(),
                prompt: prompt.clone(),
                kind: QuestionKind::Name,
            },
        )?;
        let name = match answer {
            Answer::Text(t) => t.trim().to_string(),
            Answer::Yes | Answer::No => String::new(),
        };
        self.record(Event::Answer {
            step: step.id.clone(),
            question: prompt,
            answer: name.clone(),
        })?;
        if name.chars().count() < 2 {
            return Err(Stop::Abort {
                step: step.id.clone(),
                reason: "no second person signed off (no name given); nothing was done".into(),
            });
        }
        let prompt = format!(
            "{name}: check the drive yourself, then type the last 4 characters of the serial of {} to sign off",
            drive.describe()
        );
        let who = format!("{} ", sanitize(&name, false));
        self.ask_serial4(
            step,
            &drive,
            &prompt,
            &who,
            "the sign-off failed and nothing was done",
        )?;
        self.record(Event::SignOff {
            step: step.id.clone(),
            name,
            drive: drive.describe(),
        })?;
        Ok(())
    }
}
