//! `swapguard quarantine list|add|release`: the registry of drives nothing
//! may write to (src/quarantine.rs), for people.
//!
//! Adding and releasing change what later runs may do, so each is written
//! to its own journal under `<state_dir>/sessions/` as well as to the
//! registry, and a release needs a reason.

use std::io::Write;

use anyhow::Result;

use crate::cli::{Config, QuarantineAction};
use crate::clock::{Clock, SystemClock};
use crate::error::UsageError;
use crate::exit;
use crate::health::model::Identity;
use crate::journal::{Event, Journal, rfc3339};
use crate::quarantine::{self, Entry, Registry, Release};
use crate::sanitize::sanitize;

pub fn quarantine(config: &Config, action: &QuarantineAction) -> Result<exit::Code> {
    let clock = SystemClock::new();
    match action {
        QuarantineAction::List { json, all } => {
            let registry = Registry::load(&config.state_dir)?;
            let mut out = crate::sanitize::stdout();
            list(&registry, *json, *all, &mut out)?;
            Ok(exit::Code::Success)
        }
        QuarantineAction::Add {
            serial,
            wwn,
            reason,
        } => {
            let (serial, reason) = (required(serial, "serial")?, required(reason, "reason")?);
            let at = rfc3339(clock.wall_ms());
            let session = session_name(&at);
            let id = Identity {
                serial: Some(serial.clone()),
                wwn: wwn.clone().filter(|w| !w.trim().is_empty()),
                ..Identity::default()
            };
            let entry = Entry::for_drive(&id, at, session.clone(), format!("by hand: {reason}"));
            if !quarantine::add(&config.state_dir, entry.clone())? {
                crate::outln!("{} is quarantined already", sanitize(&entry.who(), false))?;
                return Ok(exit::Code::Success);
            }
            let mut journal = Journal::create(&config.state_dir, &session)?;
            journal.record(
                clock.wall_ms(),
                &Event::QuarantineAdded {
                    entry: entry.clone(),
                },
            )?;
            crate::outln!(
                "quarantined {}: nothing swapguard runs will write to it (journal: {})",
                sanitize(&entry.who(), false),
                journal.path().display()
            )?;
            Ok(exit::Code::Success)
        }
        QuarantineAction::Release { serial, reason } => {
            let (serial, reason) = (required(serial, "serial")?, required(reason, "reason")?);
            let at = rfc3339(clock.wall_ms());
            let session = session_name(&at);
            let release = Release {
                at,
                reason,
                session: session.clone(),
            };
            let released = quarantine::release(&config.state_dir, &serial, release)
                .map_err(|e| UsageError(format!("{e:#}")))?;
            let mut journal = Journal::create(&config.state_dir, &session)?;
            for entry in &released {
                journal.record(
                    clock.wall_ms(),
                    &Event::QuarantineReleased {
                        entry: entry.clone(),
                    },
                )?;
                crate::outln!(
                    "released {} (quarantined since {}: {})",
                    sanitize(&entry.who(), false),
                    sanitize(&entry.at, false),
                    sanitize(&entry.reason, false)
                )?;
            }
            crate::outln!("journal: {}", journal.path().display())?;
            Ok(exit::Code::Success)
        }
    }
}

fn required(text: &str, what: &str) -> Result<String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(UsageError(format!("the {what} is empty; give one")).into());
    }
    Ok(t.to_string())
}

fn session_name(at: &str) -> String {
    let stamp: String = at.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    format!("quarantine-{stamp}-{}", std::process::id())
}

/// The registry as a table, or as JSON.
pub(crate) fn list(registry: &Registry, json: bool, all: bool, out: &mut dyn Write) -> Result<()> {
    let entries: Vec<&Entry> = registry
        .drives
        .iter()
        .filter(|e| all || e.is_active())
        .collect();
    if json {
        #[derive(serde::Serialize)]
        struct Doc<'a> {
            format: u32,
            drives: Vec<&'a Entry>,
        }
        let doc = Doc {
            format: crate::output::JSON_FORMAT,
            drives: entries,
        };
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
        return Ok(());
    }
    if entries.is_empty() {
        writeln!(out, "no quarantined drives")?;
        return Ok(());
    }
    for e in entries {
        let status = match &e.released {
            None => "QUARANTINED".to_string(),
            Some(r) => format!(
                "released {} ({})",
                sanitize(&r.at, false),
                sanitize(&r.reason, false)
            ),
        };
        writeln!(out, "{}  {status}", sanitize(&e.who(), false))?;
        let mut was = Vec::new();
        if let Some(m) = &e.model {
            was.push(m.clone());
        }
        if let Some(d) = &e.dev {
            was.push(format!("was {d}"));
        }
        if let Some(s) = &e.slot {
            was.push(format!("bay {s}"));
        }
        if !was.is_empty() {
            writeln!(out, "    {}", sanitize(&was.join(", "), false))?;
        }
        writeln!(out, "    {}", sanitize(&e.why(), false))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quarantine::LastHealth;

    #[test]
    fn lists_active_entries_with_when_and_why() {
        let mut e = Entry::for_drive(
            &Identity {
                dev: "sdb".into(),
                serial: Some("S3Z1NB0K100002".into()),
                wwn: Some("0x5002538e40a10002".into()),
                slot: Some("1".into()),
                ..Identity::default()
            },
            "2026-01-01T00:00:40.000Z".into(),
            "md0-run".into(),
            "pulled by step `pull` of runbook `R` on array `md0`".into(),
        );
        e.last_health = Some(LastHealth {
            state: "removed".into(),
            smart: "passed".into(),
            counters: Default::default(),
        });
        let mut released = e.clone();
        released.serial = Some("OLD1".into());
        released.wwn = None;
        released.released = Some(Release {
            at: "2026-01-02T00:00:00.000Z".into(),
            reason: "tested".into(),
            session: "q".into(),
        });
        let registry = Registry {
            version: 1,
            drives: vec![e, released],
        };
        let mut out = Vec::new();
        list(&registry, false, false, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "serial S3Z1NB0K100002, WWN 0x5002538e40a10002  QUARANTINED\n    \
             was sdb, bay 1\n    \
             quarantined since 2026-01-01T00:00:40.000Z by run `md0-run`: pulled by step `pull` of runbook `R` on array `md0`; last health: removed, SMART passed\n"
        );
        let mut out = Vec::new();
        list(&registry, false, true, &mut out).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("serial OLD1  released 2026-01-02T00:00:00.000Z (tested)")
        );
        let mut out = Vec::new();
        list(&Registry::default(), true, false, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n  \"format\": 1,\n  \"drives\": []\n}\n"
        );
    }
}
