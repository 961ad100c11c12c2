//! What `swapguard test` prints for people: one line per scenario, the
//! failures with what differed and the tail of their transcript, the
//! runbooks' lint, and a summary line. JSON and JUnit live beside it
//! (`--json` serialises [`Report`] as it is; `junit.rs`).

use std::fmt::Write as _;

use crate::ci::suite::{Case, MutationCase, Report, RunbookReport, Verdict};
use crate::runbook::lint;
use crate::sanitize::sanitize;

/// Transcript lines shown under a failure.
pub const TAIL_LINES: usize = 20;

/// The last `n` lines of a transcript.
pub fn tail(transcript: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = transcript.lines().collect();
    let from = lines.len().saturating_sub(n);
    lines[from..].to_vec()
}

/// The whole human report.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for rb in &report.runbooks {
        runbook(&mut out, rb);
    }
    if !report.orphans.is_empty() {
        let _ = writeln!(out, "scenarios without a runbook:");
        for case in &report.orphans {
            scenario(&mut out, case);
        }
        out.push('\n');
    }
    out.push_str(&summary(report));
    out.push('\n');
    out
}

fn runbook(out: &mut String, rb: &RunbookReport) {
    let name = rb
        .name
        .as_deref()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    let _ = writeln!(out, "{}{name}", rb.path.display());
    let lint_line = match (rb.lint.errors(), rb.lint.warnings()) {
        (0, 0) => "lint clean".to_string(),
        _ => lint::summary(std::slice::from_ref(&rb.lint)),
    };
    let mark = if rb.lint.errors() > 0 { "FAIL" } else { "ok" };
    let _ = writeln!(out, "  {mark:<5} lint: {lint_line}");
    if !rb.lint.diagnostics.is_empty() {
        for d in &rb.lint.diagnostics {
            for line in d.to_string().lines() {
                let _ = writeln!(out, "        {line}");
            }
        }
    }
    for case in &rb.scenarios {
        scenario(out, case);
    }
    for w in &rb.warnings {
        let _ = writeln!(out, "  warning: {w}");
    }
    if !rb.mutations.is_empty() || !rb.mutation_notes.is_empty() {
        mutations(out, rb);
    }
    out.push('\n');
}

fn mark(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "ok",
        Verdict::Fail => "FAIL",
        Verdict::Error => "ERROR",
        Verdict::Skipped => "skip",
    }
}

fn scenario(out: &mut String, case: &Case) {
    let got = case
        .got
        .as_ref()
        .map(|g| format!(": {}", g.describe()))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  {:<5} {} — {}{got}",
        mark(case.verdict),
        case.scenario.display(),
        sanitize(&case.name, false)
    );
    if matches!(case.verdict, Verdict::Pass | Verdict::Skipped) {
        if case.verdict == Verdict::Skipped {
            for p in &case.problems {
                let _ = writeln!(out, "        {p}");
            }
        }
        return;
    }
    if let (Some(expected), Verdict::Fail) = (&case.expected, case.verdict) {
        let _ = writeln!(out, "        expected: {}", expected.describe());
    }
    for p in &case.problems {
        for (i, line) in p.lines().enumerate() {
            let bullet = if i == 0 { "- " } else { "  " };
            let _ = writeln!(out, "        {bullet}{line}");
        }
    }
    transcript_tail(out, &case.transcript);
}

fn transcript_tail(out: &mut String, transcript: &str) {
    let lines = tail(transcript, TAIL_LINES);
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "        transcript (last {} lines):", lines.len());
    for line in lines {
        let _ = writeln!(out, "        | {}", sanitize(line, false));
    }
}

fn mutations(out: &mut String, rb: &RunbookReport) {
    let total = rb.mutations.len();
    let passed = rb
        .mutations
        .iter()
        .filter(|m| m.verdict == Verdict::Pass)
        .count();
    let mut sources: Vec<String> = rb
        .mutations
        .iter()
        .map(|m| m.from.display().to_string())
        .collect();
    sources.dedup();
    let from = if sources.is_empty() {
        String::new()
    } else {
        format!(" (derived from {})", sources.join(", "))
    };
    let _ = writeln!(
        out,
        "  {:<5} mutations: {passed} of {total} bad-hardware variants halted in time{from}",
        if passed == total { "ok" } else { "FAIL" }
    );
    for m in rb.mutations.iter().filter(|m| m.verdict != Verdict::Pass) {
        mutation(out, m);
    }
    for note in &rb.mutation_notes {
        let _ = writeln!(out, "        note: {note}");
    }
}

/// A variant that was let through: what it did, and the transcript line
/// where the mutation happened (the full tail is in JUnit and JSON).
fn mutation(out: &mut String, m: &MutationCase) {
    let _ = writeln!(
        out,
        "  {:<5} step `{}`: {}",
        mark(m.verdict),
        m.step,
        m.description
    );
    for p in &m.problems {
        let _ = writeln!(out, "        - {p}");
    }
    if m.verdict == Verdict::Error {
        transcript_tail(out, &m.transcript);
        return;
    }
    for line in m.transcript.lines().filter(|l| l.contains("] event ")) {
        let _ = writeln!(out, "        | {}", sanitize(line.trim(), false));
    }
}

/// `13 scenarios: 13 ok; 39 mutations: 39 halted; 2 runbooks: lint clean; 0.05 s`.
pub fn summary(report: &Report) -> String {
    let count = |v: Verdict| report.cases().filter(|c| c.verdict == v).count();
    let total = report.cases().count();
    let mut parts = vec![format!(
        "{}: {} ok{}{}{}",
        counted(total, "scenario"),
        count(Verdict::Pass),
        nonzero(count(Verdict::Fail), "FAILED"),
        nonzero(count(Verdict::Error), "errors"),
        nonzero(count(Verdict::Skipped), "skipped"),
    )];
    let variants = report.mutations().count();
    if variants > 0 {
        let mcount = |v: Verdict| report.mutations().filter(|m| m.verdict == v).count();
        parts.push(format!(
            "{}: {} halted{}{}",
            counted(variants, "mutation"),
            mcount(Verdict::Pass),
            nonzero(mcount(Verdict::Fail), "LET THROUGH"),
            nonzero(mcount(Verdict::Error), "errors"),
        ));
    }
    parts.push(format!(
        "{}: {}, {}",
        counted(report.runbooks.len(), "runbook"),
        counted(report.lint_errors(), "lint error"),
        counted(report.warnings(), "warning")
    ));
    parts.push(format!("{:.2} s", report.elapsed.as_secs_f64()));
    parts.join("; ")
}

fn nonzero(n: usize, what: &str) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(", {n} {what}")
    }
}

fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let cases: [(&str, usize, Vec<&str>); 4] = [
            ("", 3, vec![]),
            ("a\nb\nc\n", 2, vec!["b", "c"]),
            ("a\nb", 5, vec!["a", "b"]),
            ("a\nb\nc", 0, vec![]),
        ];
        for (text, n, want) in cases {
            assert_eq!(tail(text, n), want, "{text:?} {n}");
        }
    }

    #[test]
    fn counted_plurals() {
        assert_eq!(counted(0, "scenario"), "0 scenarios");
        assert_eq!(counted(1, "scenario"), "1 scenario");
        assert_eq!(nonzero(0, "FAILED"), "");
        assert_eq!(nonzero(2, "FAILED"), ", 2 FAILED");
    }
}
