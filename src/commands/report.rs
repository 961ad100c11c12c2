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
use serde_json::Value;

use crate::cli::Config;
use crate::commands::journal::{journal_key, journal_to_read};
use crate::exit;
use crate::health::guard::Observed;
use crate::health::model::{Drive, Identity, Smart, Snapshot};
use crate::journal;
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
    let mut entries = Vec::new();
    let (mut baseline, mut last_look) = (None, None);
    let scanned = journal::scan(file, &path, key.as_ref().ok(), |_, value| {
        if value["event"] != "snapshot" {
            entries.push(value);
        } else if value["label"] == "baseline" {
            baseline.get_or_insert(value);
        } else {
            last_look = Some(value);
        }
        Ok(())
    })?;
    entries.extend(baseline.into_iter().chain(last_look));
    let mut verified = scanned.verification;
    if let (journal::Keyed::NotChecked(_), Err(why)) = (&verified.keyed, &key) {
        verified.keyed = journal::Keyed::NotChecked(why.clone());
    }
    crate::out!(
        "{}",
        render(&path.display().to_string(), &entries, &verified)
    )?;
    Ok(exit::Code::Success)
}

fn s(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
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

#[derive(Default)]
struct StepNotes {
    id: String,
    kind: String,
    text: String,
    started: Vec<String>,
    lines: Vec<String>,
    end: Option<String>,
}

/// The report for a journal's entries.
pub(crate) fn render(path: &str, entries: &[Value], verified: &journal::Verification) -> String {
    let mut out = String::new();
    let first = entries.first().cloned().unwrap_or(Value::Null);
    let session = s(&first, "session");
    let params = first.get("params").cloned().unwrap_or(Value::Null);
    let _ = writeln!(out, "# swapguard session `{}`\n", cell(&session));
    let _ = writeln!(out, "| | |\n|---|---|");
    let row = |out: &mut String, k: &str, v: String| {
        let _ = writeln!(out, "| {k} | {v} |");
    };
    row(
        &mut out,
        "runbook",
        format!(
            "{} (`{}`)",
            cell(&s(&first, "runbook_name")),
            cell(&s(&first, "runbook"))
        ),
    );
    row(
        &mut out,
        "runbook SHA-256",
        format!("`{}`", cell(&s(&first, "runbook_hash"))),
    );
    if let Some(map) = params.as_object() {
        for (k, v) in map {
            row(
                &mut out,
                &format!("parameter `{}`", cell(k)),
                format!("`{}`", cell(v.as_str().unwrap_or_default())),
            );
        }
    }
    row(&mut out, "backend", cell(&s(&first, "backend")));
    let who = match s(&first, "user").as_str() {
        "" => String::new(),
        u => format!(" by {}", cell(u)),
    };
    row(
        &mut out,
        "started",
        format!(
            "{}{who} (pid {})",
            cell(&s(&first, "at")),
            first.get("pid").and_then(Value::as_u64).unwrap_or(0)
        ),
    );
    for e in entries.iter().filter(|e| e["event"] == "resumed") {
        let by = match s(e, "user").as_str() {
            "" => String::new(),
            u => format!(" by {}", cell(u)),
        };
        let mut note = format!(
            "{}{by} (pid {})",
            cell(&s(e, "at")),
            e.get("pid").and_then(Value::as_u64).unwrap_or(0)
        );
        if let Some(r) = e.get("runbook_changed_reason").and_then(Value::as_str) {
            let _ = write!(note, "; the runbook had changed: \"{}\"", cell(r));
        }
        if e.get("dropped_torn_bytes")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            > 0
        {
            note.push_str("; a torn last journal line was cut off");
        }
        row(&mut out, "resumed", note);
    }
    let end = entries.iter().rev().find(|e| e["event"] == "run-finished");
    row(
        &mut out,
        "ended",
        match end {
            Some(e) => format!(
                "**{}** (exit {}) at {}",
                cell(&s(e, "outcome")),
                e.get("exit_code").and_then(Value::as_i64).unwrap_or(-1),
                cell(&s(e, "at"))
            ),
            None => "**not finished** (the run stopped without recording an end; `swapguard resume` continues it)".into(),
        },
    );
    row(
        &mut out,
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

    let snapshots: Vec<(String, Snapshot)> = entries
        .iter()
        .filter(|e| e["event"] == "snapshot")
        .filter_map(|e| {
            serde_json::from_value(e.get("snapshot").cloned().unwrap_or(Value::Null))
                .ok()
                .map(|snap| (s(e, "label"), snap))
        })
        .collect();
    if let Some((_, base)) = snapshots.iter().find(|(l, _)| l == "baseline") {
        let _ = writeln!(out, "## Health before (baseline)\n");
        health(&mut out, base, &[]);
    }
    survivor_acceptances(&mut out, entries);

    let _ = writeln!(out, "## Steps\n");
    let mut steps: Vec<StepNotes> = Vec::new();
    let mut current: Option<usize> = None;
    let mut halts = Vec::new();
    let mut quarantined = Vec::new();
    let mut quarantined_ids: Vec<Identity> = Vec::new();
    let mut cleanup = Vec::new();
    let mut checks = Vec::new();
    for e in entries {
        let step = s(e, "step");
        let at = cell(&s(e, "at"));
        let idx = steps.iter().position(|n| n.id == step);
        match s(e, "event").as_str() {
            "step-started" => {
                let i = idx.unwrap_or_else(|| {
                    steps.push(StepNotes {
                        id: step.clone(),
                        kind: s(e, "kind"),
                        text: s(e, "text"),
                        ..StepNotes::default()
                    });
                    steps.len() - 1
                });
                steps[i].started.push(at);
                current = Some(i);
            }
            "answer" => {
                let line = format!(
                    "answer: \"{}\" → **{}** ({at})",
                    cell(&s(e, "question")),
                    cell(&s(e, "answer"))
                );
                if let Some(i) = idx.or(current) {
                    steps[i].lines.push(line);
                }
            }
            "command" => {
                if let Some(i) = idx {
                    let o = e.get("output").cloned().unwrap_or(Value::Null);
                    let argv: Vec<String> = o
                        .get("argv")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .map(|x| x.as_str().unwrap_or_default().to_string())
                                .collect()
                        })
                        .unwrap_or_default();
                    let status = match (
                        o.get("timed_out").and_then(Value::as_bool),
                        o.get("code").and_then(Value::as_i64),
                    ) {
                        (Some(true), _) => "timed out".to_string(),
                        (_, Some(c)) => format!("exit {c}"),
                        _ => "killed by a signal".to_string(),
                    };
                    let mut line = format!("command `{}`: {status} ({at})", cell(&argv.join(" ")));
                    for stream in ["stdout", "stderr"] {
                        let text = s(&o, stream);
                        if !text.trim().is_empty() {
                            let _ = write!(line, "\n\n  {stream}:\n\n{}", indent(&fenced(&text)));
                        }
                    }
                    steps[i].lines.push(line);
                }
            }
            "locate" if step == "cleanup" => {
                cleanup.push(format!("{} at {at}", cell(&s(e, "drive"))));
            }
            "locate" => {
                if let Some(i) = idx {
                    let how =
                        e.get("outcome")
                            .map(|o| match o.get("led").and_then(Value::as_str) {
                                Some("switched") => format!(
                                    "switched {}",
                                    if e["on"] == true { "on" } else { "off" }
                                ),
                                _ => format!("unavailable: {}", cell(&s(o, "reason"))),
                            });
                    steps[i].lines.push(format!(
                        "locate LED of {}: {}",
                        cell(&s(e, "drive")),
                        how.unwrap_or_default()
                    ));
                }
            }
            "sign-off" => {
                if let Some(i) = idx {
                    steps[i].lines.push(format!(
                        "signed off by **{}**, who checked {} ({at})",
                        cell(&s(e, "name")),
                        cell(&s(e, "drive"))
                    ));
                }
            }
            "check" => {
                let line = format!(
                    "check \"{}\": {}{} ({at})",
                    cell(&s(e, "name")),
                    if e["passed"] == true {
                        "passed"
                    } else {
                        "**FAILED**"
                    },
                    match s(e, "detail").as_str() {
                        "" => String::new(),
                        d => format!(": {}", cell(d)),
                    }
                );
                match current {
                    Some(i) if steps[i].end.is_none() => steps[i].lines.push(line),
                    _ => checks.push(line),
                }
            }
            "new-drive" => {
                if let Some(i) = idx {
                    steps[i]
                        .lines
                        .push(format!("new drive accepted: {}", describe(e.get("drive"))));
                }
            }
            "quarantined" => {
                if let Some(id) = e
                    .get("drive")
                    .cloned()
                    .and_then(|v| serde_json::from_value::<Identity>(v).ok())
                {
                    quarantined_ids.push(id);
                }
                let d = describe(e.get("drive"));
                if let Some(i) = idx {
                    steps[i].lines.push(format!("quarantined: {d}"));
                }
                if !quarantined.contains(&d) {
                    quarantined.push(d);
                }
            }
            "resume-decision" => {
                if let Some(i) = idx {
                    steps[i].lines.push(format!(
                        "on resume: **{}** ({})",
                        cell(&s(e, "decision")),
                        cell(&s(e, "detail"))
                    ));
                }
            }
            "step-completed" => {
                if let Some(i) = idx {
                    steps[i].end = Some(format!("completed at {at}"));
                }
            }
            "halted" => {
                if let Some(i) = idx {
                    steps[i].end = Some(format!("**halted** at {at}"));
                }
                halts.push(e.clone());
            }
            "aborted" => {
                if let Some(i) = idx {
                    steps[i].end = Some(format!("**aborted** at {at}: {}", cell(&s(e, "reason"))));
                }
            }
            "interrupted" => {
                if let Some(i) = idx
                    && steps[i].end.is_none()
                {
                    steps[i].lines.push(format!("interrupted at {at}"));
                }
            }
            _ => {}
        }
    }
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
            step.end.clone().unwrap_or_else(|| "not finished".into())
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

    if !checks.is_empty() {
        let _ = writeln!(out, "## Checks before the first step\n");
        for c in &checks {
            let _ = writeln!(out, "- {c}");
        }
        out.push('\n');
    }
    if !cleanup.is_empty() {
        let _ = writeln!(
            out,
            "Locate LEDs switched off when the run ended: {}.\n",
            cleanup.join("; ")
        );
    }

    let refused: Vec<&Value> = entries.iter().filter(|e| e["event"] == "refused").collect();
    if !halts.is_empty() || !refused.is_empty() {
        let _ = writeln!(out, "## Halts\n");
    }
    for e in &refused {
        let _ = writeln!(
            out,
            "### Preflight refused to start (nothing was touched)\n"
        );
        for r in e
            .get("reasons")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let _ = writeln!(out, "- {}", cell(r.as_str().unwrap_or_default()));
        }
        out.push('\n');
    }
    for e in &halts {
        let _ = writeln!(
            out,
            "### At step `{}`, {}\n",
            cell(&s(e, "step")),
            cell(&s(e, "at"))
        );
        let _ = writeln!(out, "{}\n", cell(&s(e, "headline")));
        let violations = e
            .get("violations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !violations.is_empty() {
            let _ = writeln!(out, "| who | what | before | after |\n|---|---|---|---|");
            for v in violations {
                let _ = writeln!(
                    out,
                    "| {} {} | {} | {} | {} |",
                    cell(&s(&v, "subject")),
                    cell(&s(&v, "who")),
                    cell(&s(&v, "what")),
                    cell(&s(&v, "before")),
                    cell(&s(&v, "after"))
                );
            }
            out.push('\n');
        }
    }

    let _ = writeln!(out, "## Drives quarantined\n");
    if quarantined.is_empty() {
        let _ = writeln!(out, "None.\n");
    }
    for q in &quarantined {
        let _ = writeln!(
            out,
            "- {q}: must never be reused, not even as a restore target"
        );
    }
    if !quarantined.is_empty() {
        out.push('\n');
    }

    if let Some((label, last)) = snapshots.iter().rev().find(|(l, _)| l != "baseline") {
        let _ = writeln!(out, "## Health after (last look: {})\n", cell(label));
        // A drive of the baseline that is gone now (the pulled target) has
        // a row too, so the ticket shows where it went.
        let gone: Vec<(String, &'static str)> = snapshots
            .iter()
            .find(|(l, _)| l == "baseline")
            .map(|(_, base)| {
                base.drives
                    .iter()
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
                    .collect()
            })
            .unwrap_or_default();
        health(&mut out, last, &gone);
    }
    out
}

/// Preflight went on with a survivor that was not healthy: say how (the
/// runbook accepted it, the technician acknowledged it or overrode a
/// refusal) and, for an override, the written reason, word for word.
fn survivor_acceptances(out: &mut String, entries: &[Value]) {
    let accepted: Vec<&Value> = entries
        .iter()
        .filter(|e| e["event"] == "survivor-accepted")
        .collect();
    if accepted.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Survivors that were not healthy\n");
    for e in accepted {
        let how = match s(e, "how").as_str() {
            "override" => format!(
                "**refusal overridden** at {} with the written reason: \"{}\"",
                cell(&s(e, "at")),
                cell(&s(e, "reason"))
            ),
            "acknowledged" => format!(
                "acknowledged as at risk by the technician at {}",
                cell(&s(e, "at"))
            ),
            _ => "accepted by the runbook (`[guard] accept_survivor`)".to_string(),
        };
        let _ = writeln!(out, "- {how}:");
        for f in e["findings"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "  - {}", cell(f.as_str().unwrap_or_default()));
        }
    }
    out.push('\n');
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

fn describe(v: Option<&Value>) -> String {
    v.cloned()
        .and_then(|v| serde_json::from_value::<crate::health::model::Identity>(v).ok())
        .map_or_else(|| "unknown drive".into(), |id| cell(&id.describe()))
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
    let last_copy = crate::health::verdict::last_copy(
        &snap.array.level,
        snap.array.raid_disks,
        snap.array.degraded,
        1,
    );
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
