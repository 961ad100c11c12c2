//! `swapguard report SESSION`: the session as Markdown for the maintenance
//! ticket. Who ran what and when, each step with its answers and command
//! output, health before and after, every halt with its before → after
//! values, the drives quarantined, and the journal's head hash so the
//! journal kept on the machine can later be checked against the ticket.
//!
//! Everything comes from the journal; strings that came from hardware or
//! tools are sanitised and escaped so they cannot break the Markdown.

use std::fmt::Write as _;

use anyhow::{Context, Result};

use crate::backend::LocateOutcome;
use crate::cli::Config;
use crate::commands::journal::{journal_key, journal_to_read};
use crate::exit;
use crate::health::guard::{Observed, Violation};
use crate::health::model::{Drive, Identity, Smart, Snapshot};
use crate::journal::{self, Entry, Event};
use crate::sanitize::sanitize;

pub fn report(config: &Config, session: &str, file: bool) -> Result<exit::Code> {
    let path = journal_to_read(config, session, file)?;
    // One streamed pass checks the chain (and the MACs, when the key can be
    // read) and collects the entries; no line longer than the journal's
    // cap is held.
    let key = journal_key(&config.state_dir);
    let file = std::fs::File::open(&path)
        .with_context(|| format!("cannot read journal `{}`", path.display()))?;
    // Of the snapshots (most of a long journal), the report shows only the
    // baseline and the last look: only those two are kept.
    let mut read = Read::default();
    let scanned = journal::scan_entries(file, &path, key.as_ref().ok(), |_, entry| {
        match entry.event {
            Event::Snapshot { label, snapshot } if label == "baseline" => {
                read.baseline.get_or_insert(snapshot);
            }
            Event::Snapshot { label, snapshot } => read.last_look = Some((label, snapshot)),
            _ => read.entries.push(entry),
        }
        Ok(())
    })?;
    let mut verified = scanned.verification;
    if let (journal::Keyed::NotChecked(_), Err(why)) = (&verified.keyed, &key) {
        verified.keyed = journal::Keyed::NotChecked(why.clone());
    }
    crate::out!("{}", render(&path.display().to_string(), &read, &verified))?;
    Ok(exit::Code::Success)
}

/// What the report is made from: every entry of the journal but the
/// snapshots, and of those only the baseline and the last look.
#[derive(Default)]
pub(crate) struct Read {
    pub entries: Vec<Entry>,
    pub baseline: Option<Snapshot>,
    /// The last snapshot that is not the baseline, with its label.
    pub last_look: Option<(String, Snapshot)>,
}

/// Text from the journal made safe for a Markdown table cell or line.
fn cell(text: &str) -> String {
    sanitize(text, false)
        .replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('\n', " ")
}

/// A fenced block that no line of `text` can close early.
fn fenced(text: &str) -> String {
    let text = sanitize(text.trim_end(), true);
    let mut fence = "```".to_string();
    while text.contains(&fence) {
        fence.push('`');
    }
    format!("{fence}text\n{text}\n{fence}\n")
}

/// The report for a journal read: one section after another.
pub(crate) fn render(path: &str, read: &Read, verified: &journal::Verification) -> String {
    let mut out = String::new();
    summary(&mut out, path, &read.entries, verified);
    if let Some(base) = &read.baseline {
        let _ = writeln!(out, "## Health before (baseline)\n");
        health(&mut out, base, &[]);
    }
    survivor_acceptances(&mut out, &read.entries);
    let notes = Notes::collect(&read.entries);
    steps(&mut out, &notes.steps);
    checks(&mut out, &notes.checks);
    if !notes.cleanup.is_empty() {
        let _ = writeln!(
            out,
            "Locate LEDs switched off when the run ended: {}.\n",
            notes.cleanup.join("; ")
        );
    }
    halts(&mut out, &read.entries);
    quarantined(&mut out, &notes.quarantined);
    health_after(&mut out, read, &notes.quarantined_ids);
    out
}

/// One row of the summary table.
fn row(out: &mut String, k: &str, v: String) {
    let _ = writeln!(out, "| {k} | {v} |");
}

/// ` by <user>`, or nothing when no user was journaled.
fn by(user: &str) -> String {
    match user {
        "" => String::new(),
        u => format!(" by {}", cell(u)),
    }
}

/// The title and the summary table: the runbook, its parameters, who ran
/// it and when, every resume, how it ended, and the journal's state.
fn summary(out: &mut String, path: &str, entries: &[Entry], verified: &journal::Verification) {
    let first = entries.first();
    let started = first.map(|e| e.at.as_str()).unwrap_or_default();
    let no_params = std::collections::BTreeMap::new();
    let (session, runbook, runbook_name, runbook_hash, backend, params, pid, user) =
        match first.map(|e| &e.event) {
            Some(Event::RunStarted {
                session,
                runbook,
                runbook_name,
                runbook_hash,
                backend,
                params,
                pid,
                user,
            }) => (
                session.as_str(),
                runbook.as_str(),
                runbook_name.as_str(),
                runbook_hash.as_str(),
                backend.as_str(),
                params,
                *pid,
                user.as_str(),
            ),
            _ => ("", "", "", "", "", &no_params, 0, ""),
        };
    let _ = writeln!(out, "# swapguard session `{}`\n", cell(session));
    let _ = writeln!(out, "| | |\n|---|---|");
    row(
        out,
        "runbook",
        format!("{} (`{}`)", cell(runbook_name), cell(runbook)),
    );
    row(out, "runbook SHA-256", format!("`{}`", cell(runbook_hash)));
    for (k, v) in params {
        row(
            out,
            &format!("parameter `{}`", cell(k)),
            format!("`{}`", cell(v)),
        );
    }
    row(out, "backend", cell(backend));
    row(
        out,
        "started",
        format!("{}{} (pid {pid})", cell(started), by(user)),
    );
    for e in entries {
        let Event::Resumed {
            pid,
            user,
            runbook_changed_reason,
            dropped_torn_bytes,
            ..
        } = &e.event
        else {
            continue;
        };
        let mut note = format!("{}{} (pid {pid})", cell(&e.at), by(user));
        if let Some(r) = runbook_changed_reason {
            let _ = write!(note, "; the runbook had changed: \"{}\"", cell(r));
        }
        if *dropped_torn_bytes > 0 {
            note.push_str("; a torn last journal line was cut off");
        }
        row(out, "resumed", note);
    }
    let end = entries.iter().rev().find_map(|e| match &e.event {
        Event::RunFinished { outcome, exit_code } => Some((e, outcome, exit_code)),
        _ => None,
    });
    row(
        out,
        "ended",
        match end {
            Some((e, outcome, exit_code)) => format!(
                "**{}** (exit {exit_code}) at {}",
                cell(outcome),
                cell(&e.at)
            ),
            None => "**not finished** (the run stopped without recording an end; `swapguard resume` continues it)".into(),
        },
    );
    row(
        out,
        "journal",
        format!(
            "`{}`: {} entries, {}; head `{}`",
            cell(path),
            verified.entries,
            cell(&verified.summary()),
            verified.head
        ),
    );
    out.push('\n');
    for p in &verified.problems {
        let _ = writeln!(out, "- journal problem: {}", cell(p));
    }
}

#[derive(Default)]
struct StepNotes {
    id: String,
    kind: String,
    text: String,
    started: Vec<String>,
    lines: Vec<String>,
    end: Option<String>,
}

/// What the entries say about the steps, gathered in one pass.
#[derive(Default)]
struct Notes {
    /// Each step started, in the order first started.
    steps: Vec<StepNotes>,
    /// Checks run while no step was in flight.
    checks: Vec<String>,
    /// Locate LEDs switched off when the run ended.
    cleanup: Vec<String>,
    /// The drives quarantined, described, each once.
    quarantined: Vec<String>,
    quarantined_ids: Vec<Identity>,
}

impl Notes {
    fn collect(entries: &[Entry]) -> Notes {
        let mut n = Notes::default();
        let mut current: Option<usize> = None;
        let idx = |steps: &[StepNotes], step: &str| steps.iter().position(|s| s.id == step);
        for e in entries {
            let at = cell(&e.at);
            match &e.event {
                Event::StepStarted { step, kind, text } => {
                    let i = idx(&n.steps, step).unwrap_or_else(|| {
                        n.steps.push(StepNotes {
                            id: step.clone(),
                            kind: kind.clone(),
                            text: text.clone(),
                            ..StepNotes::default()
                        });
                        n.steps.len() - 1
                    });
                    n.steps[i].started.push(at);
                    current = Some(i);
                }
                Event::Answer {
                    step,
                    question,
                    answer,
                } => {
                    let line = format!(
                        "answer: \"{}\" → **{}** ({at})",
                        cell(question),
                        cell(answer)
                    );
                    if let Some(i) = idx(&n.steps, step).or(current) {
                        n.steps[i].lines.push(line);
                    }
                }
                Event::Command { step, output } => {
                    if let Some(i) = idx(&n.steps, step) {
                        n.steps[i].lines.push(command(output, &at));
                    }
                }
                Event::Locate { step, drive, .. } if step == "cleanup" => {
                    n.cleanup.push(format!("{} at {at}", cell(drive)));
                }
                Event::Locate {
                    step,
                    drive,
                    on,
                    outcome,
                } => {
                    if let Some(i) = idx(&n.steps, step) {
                        let how = match outcome {
                            LocateOutcome::Switched { .. } => {
                                format!("switched {}", if *on { "on" } else { "off" })
                            }
                            LocateOutcome::Unavailable { reason } => {
                                format!("unavailable: {}", cell(reason))
                            }
                        };
                        n.steps[i]
                            .lines
                            .push(format!("locate LED of {}: {how}", cell(drive)));
                    }
                }
                Event::SignOff { step, name, drive } => {
                    if let Some(i) = idx(&n.steps, step) {
                        n.steps[i].lines.push(format!(
                            "signed off by **{}**, who checked {} ({at})",
                            cell(name),
                            cell(drive)
                        ));
                    }
                }
                Event::Check {
                    name,
                    passed,
                    detail,
                    ..
                } => {
                    let line = format!(
                        "check \"{}\": {}{} ({at})",
                        cell(name),
                        if *passed { "passed" } else { "**FAILED**" },
                        match detail.as_str() {
                            "" => String::new(),
                            d => format!(": {}", cell(d)),
                        }
                    );
                    match current {
                        Some(i) if n.steps[i].end.is_none() => n.steps[i].lines.push(line),
                        _ => n.checks.push(line),
                    }
                }
                Event::NewDrive { step, drive } => {
                    if let Some(i) = idx(&n.steps, step) {
                        n.steps[i]
                            .lines
                            .push(format!("new drive accepted: {}", cell(&drive.describe())));
                    }
                }
                Event::Quarantined { step, drive } => {
                    n.quarantined_ids.push(drive.clone());
                    let d = cell(&drive.describe());
                    if let Some(i) = idx(&n.steps, step) {
                        n.steps[i].lines.push(format!("quarantined: {d}"));
                    }
                    if !n.quarantined.contains(&d) {
                        n.quarantined.push(d);
                    }
                }
                Event::ResumeDecision {
                    step,
                    decision,
                    detail,
                } => {
                    if let Some(i) = idx(&n.steps, step) {
                        n.steps[i].lines.push(format!(
                            "on resume: **{}** ({})",
                            cell(decision),
                            cell(detail)
                        ));
                    }
                }
                Event::StepCompleted { step } => {
                    if let Some(i) = idx(&n.steps, step) {
                        n.steps[i].end = Some(format!("completed at {at}"));
                    }
                }
                Event::Halted { step, .. } => {
                    if let Some(i) = idx(&n.steps, step) {
                        n.steps[i].end = Some(format!("**halted** at {at}"));
                    }
                }
                Event::Aborted { step, reason } => {
                    if let Some(i) = idx(&n.steps, step) {
                        n.steps[i].end = Some(format!("**aborted** at {at}: {}", cell(reason)));
                    }
                }
                Event::Interrupted { step } => {
                    if let Some(i) = idx(&n.steps, step)
                        && n.steps[i].end.is_none()
                    {
                        n.steps[i].lines.push(format!("interrupted at {at}"));
                    }
                }
                _ => {}
            }
        }
        n
    }
}

/// A step's command: its argv, how it ended, and what it printed.
fn command(output: &crate::backend::CommandOutput, at: &str) -> String {
    let status = match (output.timed_out, output.code) {
        (true, _) => "timed out".to_string(),
        (_, Some(c)) => format!("exit {c}"),
        _ => "killed by a signal".to_string(),
    };
    let mut line = format!(
        "command `{}`: {status} ({at})",
        cell(&output.argv.join(" "))
    );
    for (stream, text) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        if !text.trim().is_empty() {
            let _ = write!(line, "\n\n  {stream}:\n\n{}", indent(&fenced(text)));
        }
    }
    line
}

/// `## Steps`: each step started, how it ended, and what happened in it.
fn steps(out: &mut String, steps: &[StepNotes]) {
    let _ = writeln!(out, "## Steps\n");
    if steps.is_empty() {
        let _ = writeln!(out, "No step was started.\n");
    }
    for (n, step) in steps.iter().enumerate() {
        let _ = writeln!(
            out,
            "### {}. `{}` ({}): {}\n",
            n + 1,
            cell(&step.id),
            cell(&step.kind),
            step.end.as_deref().unwrap_or("not finished")
        );
        let _ = writeln!(out, "Started {}.\n", step.started.join(", started again "));
        for line in sanitize(step.text.trim(), true).lines() {
            let _ = writeln!(out, "> {}", line.replace('|', "\\|"));
        }
        out.push('\n');
        for line in &step.lines {
            let _ = writeln!(out, "- {line}");
        }
        if !step.lines.is_empty() {
            out.push('\n');
        }
    }
}

/// `## Checks before the first step`, when there were any.
fn checks(out: &mut String, checks: &[String]) {
    if checks.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Checks before the first step\n");
    for c in checks {
        let _ = writeln!(out, "- {c}");
    }
    out.push('\n');
}

/// `## Halts`: a preflight refusal with its reasons, and every halt with
/// the before → after values that caused it.
fn halts(out: &mut String, entries: &[Entry]) {
    let refused: Vec<&Vec<String>> = entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::Refused { reasons } => Some(reasons),
            _ => None,
        })
        .collect();
    let halted: Vec<(&str, &str, &str, &[Violation])> = entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::Halted {
                step,
                headline,
                violations,
                ..
            } => Some((
                e.at.as_str(),
                step.as_str(),
                headline.as_str(),
                violations.as_slice(),
            )),
            _ => None,
        })
        .collect();
    if !halted.is_empty() || !refused.is_empty() {
        let _ = writeln!(out, "## Halts\n");
    }
    for reasons in refused {
        let _ = writeln!(
            out,
            "### Preflight refused to start (nothing was touched)\n"
        );
        for r in reasons {
            let _ = writeln!(out, "- {}", cell(r));
        }
        out.push('\n');
    }
    for (at, step, headline, violations) in halted {
        let _ = writeln!(out, "### At step `{}`, {}\n", cell(step), cell(at));
        let _ = writeln!(out, "{}\n", cell(headline));
        if !violations.is_empty() {
            let _ = writeln!(out, "| who | what | before | after |\n|---|---|---|---|");
            for v in violations {
                // The subject as the journal spells it (`survivor`, `new-drive`).
                let subject = serde_json::to_value(v.subject).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "| {} {} | {} | {} | {} |",
                    cell(subject.as_str().unwrap_or_default()),
                    cell(&v.who),
                    cell(&v.what),
                    cell(&v.before),
                    cell(&v.after)
                );
            }
            out.push('\n');
        }
    }
}

/// `## Drives quarantined`: every drive the run quarantined, or `None.`
fn quarantined(out: &mut String, quarantined: &[String]) {
    let _ = writeln!(out, "## Drives quarantined\n");
    if quarantined.is_empty() {
        let _ = writeln!(out, "None.\n");
    }
    for q in quarantined {
        let _ = writeln!(
            out,
            "- {q}: must never be reused, not even as a restore target"
        );
    }
    if !quarantined.is_empty() {
        out.push('\n');
    }
}

/// `## Health after`: the last look, with a row for each drive of the
/// baseline that is gone now (the pulled target), so the ticket shows
/// where it went.
fn health_after(out: &mut String, read: &Read, quarantined_ids: &[Identity]) {
    let Some((label, last)) = &read.last_look else {
        return;
    };
    let _ = writeln!(out, "## Health after (last look: {})\n", cell(label));
    let gone: Vec<(String, &'static str)> = read
        .baseline
        .iter()
        .flat_map(|base| &base.drives)
        .filter(|d| last.drive(&d.key()).is_none())
        .map(|d| {
            let pulled = quarantined_ids.iter().any(|q| same_drive(q, &d.id));
            let state = if pulled {
                "pulled, quarantined"
            } else {
                "absent (not quarantined)"
            };
            (cell(&d.id.describe()), state)
        })
        .collect();
    health(out, last, &gone);
}

/// Preflight went on with a survivor that was not healthy: say how (the
/// runbook accepted it, the technician acknowledged it or overrode a
/// refusal) and, for an override, the written reason, word for word.
fn survivor_acceptances(out: &mut String, entries: &[Entry]) {
    let accepted: Vec<(&str, &str, &[String], &str)> = entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::SurvivorAccepted {
                how,
                findings,
                reason,
            } => Some((
                e.at.as_str(),
                how.as_str(),
                findings.as_slice(),
                reason.as_str(),
            )),
            _ => None,
        })
        .collect();
    if accepted.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Survivors that were not healthy\n");
    for (at, how, findings, reason) in accepted {
        let how = match how {
            "override" => format!(
                "**refusal overridden** at {} with the written reason: \"{}\"",
                cell(at),
                cell(reason)
            ),
            "acknowledged" => format!("acknowledged as at risk by the technician at {}", cell(at)),
            _ => "accepted by the runbook (`[guard] accept_survivor`)".to_string(),
        };
        let _ = writeln!(out, "- {how}:");
        for f in findings {
            let _ = writeln!(out, "  - {}", cell(f));
        }
    }
    out.push('\n');
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// Whether two identities are one drive: by serial, else by WWN.
fn same_drive(a: &Identity, b: &Identity) -> bool {
    let same = |x: &Option<String>, y: &Option<String>| matches!((x, y), (Some(x), Some(y)) if !x.is_empty() && x == y);
    same(&a.serial, &b.serial) || same(&a.wwn, &b.wwn)
}

/// One table row per drive: state, the counters, SMART; then a row for
/// each drive of `gone` (described, with what became of it).
fn health(out: &mut String, snap: &Snapshot, gone: &[(String, &str)]) {
    let _ = writeln!(
        out,
        "Array `{}` ({}): state {}, {} of {} slots missing{}.\n",
        cell(&snap.array.name),
        cell(&snap.array.level),
        cell(&snap.array.state),
        snap.array.degraded,
        snap.array.raid_disks,
        snap.array
            .sync
            .as_ref()
            .map(|s| format!(", {} at {:.1}%", cell(&s.action), s.fraction() * 100.0))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "| drive | state | counters | SMART | verdict |\n|---|---|---|---|---|"
    );
    let last_copy = snap.array.last_copy(1);
    for d in &snap.drives {
        let verdict = crate::health::verdict::judge(d, d.member.is_some() && last_copy, &[]);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            cell(&d.id.describe()),
            Observed::of(Some(d)),
            counters(d),
            smart(d),
            cell(&verdict.summary())
        );
    }
    for (drive, state) in gone {
        let _ = writeln!(out, "| {drive} | {state} | not read | not read |");
    }
    for p in &snap.problems {
        let _ = writeln!(
            out,
            "\nunreadable: {} of {}: {}",
            cell(&p.probe),
            cell(&p.subject),
            cell(&p.message)
        );
    }
    out.push('\n');
}

fn counters(d: &Drive) -> String {
    let mut parts: Vec<String> = d
        .counters
        .iter()
        .map(|(k, v)| format!("{}={v}", cell(k)))
        .collect();
    if parts.is_empty() {
        parts.push("none".into());
    }
    parts.join(", ")
}

fn smart(d: &Drive) -> String {
    match &d.smart {
        None => "not read".into(),
        Some(Smart::Unreadable { reason }) => format!("unreadable ({})", cell(reason)),
        Some(Smart::Read { passed, counters }) => {
            let nonzero: Vec<String> = counters
                .iter()
                .filter(|(_, v)| **v > 0)
                .map(|(k, v)| format!("{}={v}", cell(k)))
                .collect();
            format!(
                "{}{}",
                if *passed { "passed" } else { "**FAILED**" },
                if nonzero.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", nonzero.join(", "))
                }
            )
        }
    }
}
