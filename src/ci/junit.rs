//! JUnit XML for CI systems (GitLab, Jenkins, GitHub Actions reporters).
//!
//! There is no JUnit standard; every consumer reads the format of Apache
//! Ant's JUnit task, and its strictest description is the XML Schema
//! commonly used to validate it. This writer follows that schema, so the
//! report passes the strict readers as well as the lenient ones:
//!
//! - `<testsuites>` holds one `<testsuite>` per runbook, without attributes
//!   of its own;
//! - every `<testsuite>` has `name`, `package`, `id` (from 0), `hostname`,
//!   `timestamp` (`YYYY-MM-DDTHH:MM:SS`, no zone: UTC), `tests`,
//!   `failures`, `errors`, `skipped` and `time`, and holds, in order,
//!   `<properties>`, the `<testcase>`s, `<system-out>` and `<system-err>`;
//! - every `<testcase>` has `name`, `classname` and `time`, and holds at
//!   most one `<failure type=..>`, `<error type=..>` or `<skipped/>`.
//!
//! Cases: the runbook's lint, each scenario, and each mutation. Text is
//! escaped, and characters XML 1.0 cannot carry become U+FFFD.

use std::fmt::Write as _;

use crate::ci::report::{TAIL_LINES, tail};
use crate::ci::suite::{Case, MutationCase, Report, RunbookReport, Verdict};
use crate::runbook::lint;

/// Where and when the tests ran, for the `<testsuite>` attributes.
#[derive(Clone, Debug)]
pub struct Context {
    pub hostname: String,
    /// `YYYY-MM-DDTHH:MM:SS`, UTC.
    pub timestamp: String,
}

/// One `<testcase>`.
struct TestCase {
    name: String,
    classname: String,
    seconds: f64,
    /// `failure`, `error` or `skipped`, with type, message and body.
    result: Option<(&'static str, String, String, String)>,
}

/// The whole report as a JUnit XML document.
pub fn render(report: &Report, ctx: &Context) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    let mut id = 0;
    for rb in &report.runbooks {
        let cases = cases_of(rb);
        let package = rb.path.display().to_string();
        let name = rb
            .path
            .file_stem()
            .map_or_else(|| package.clone(), |s| s.to_string_lossy().into_owned());
        let mut props = vec![("runbook".to_string(), package.clone())];
        if let Some(n) = &rb.name {
            props.push(("runbook.name".to_string(), n.clone()));
        }
        let mut system_out = String::new();
        for w in &rb.warnings {
            let _ = writeln!(system_out, "warning: {w}");
        }
        for n in &rb.mutation_notes {
            let _ = writeln!(system_out, "note: {n}");
        }
        let head = Head {
            id,
            name: &name,
            package: &package,
            props: &props,
            seconds: rb.seconds,
            system_out: &system_out,
        };
        suite(&mut out, &head, &cases, ctx);
        id += 1;
    }
    if !report.orphans.is_empty() {
        let cases: Vec<TestCase> = report
            .orphans
            .iter()
            .map(|c| scenario_case(c, "orphans"))
            .collect();
        let seconds = cases.iter().map(|c| c.seconds).sum();
        let head = Head {
            id,
            name: "orphans",
            package: "orphans",
            props: &[],
            seconds,
            system_out: "",
        };
        suite(&mut out, &head, &cases, ctx);
    }
    out.push_str("</testsuites>\n");
    out
}

/// A `<testsuite>`'s own attributes and output.
struct Head<'a> {
    id: usize,
    name: &'a str,
    package: &'a str,
    props: &'a [(String, String)],
    seconds: f64,
    system_out: &'a str,
}

fn suite(out: &mut String, head: &Head<'_>, cases: &[TestCase], ctx: &Context) {
    let Head {
        id,
        name,
        package,
        props,
        seconds,
        system_out,
    } = *head;
    let count = |kind: &str| {
        cases
            .iter()
            .filter(|c| c.result.as_ref().is_some_and(|r| r.0 == kind))
            .count()
    };
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" package=\"{}\" id=\"{id}\" hostname=\"{}\" timestamp=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        attr(name),
        attr(package),
        attr(&ctx.hostname),
        attr(&ctx.timestamp),
        cases.len(),
        count("failure"),
        count("error"),
        count("skipped"),
        seconds
    );
    if props.is_empty() {
        out.push_str("    <properties/>\n");
    } else {
        out.push_str("    <properties>\n");
        for (k, v) in props {
            let _ = writeln!(
                out,
                "      <property name=\"{}\" value=\"{}\"/>",
                attr(k),
                attr(v)
            );
        }
        out.push_str("    </properties>\n");
    }
    for c in cases {
        let open = format!(
            "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
            attr(&c.name),
            attr(&c.classname),
            c.seconds
        );
        match &c.result {
            None => {
                let _ = writeln!(out, "{open}/>");
            }
            Some(("skipped", _, message, _)) => {
                let _ = writeln!(
                    out,
                    "{open}>\n      <skipped message=\"{}\"/>\n    </testcase>",
                    attr(message)
                );
            }
            Some((kind, ty, message, body)) => {
                let _ = writeln!(
                    out,
                    "{open}>\n      <{kind} type=\"{}\" message=\"{}\">{}</{kind}>\n    </testcase>",
                    attr(ty),
                    attr(message),
                    text(body)
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "    <system-out>{}</system-out>\n    <system-err></system-err>\n  </testsuite>",
        text(system_out)
    );
}

fn cases_of(rb: &RunbookReport) -> Vec<TestCase> {
    let stem = rb
        .path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let mut out = Vec::new();
    let lint_result = (rb.lint.errors() > 0).then(|| {
        (
            "failure",
            "lint".to_string(),
            lint::summary(std::slice::from_ref(&rb.lint)),
            lint::render(std::slice::from_ref(&rb.lint)),
        )
    });
    out.push(TestCase {
        name: format!("lint {}", rb.path.display()),
        classname: format!("{stem}.lint"),
        seconds: 0.0,
        result: lint_result,
    });
    for case in &rb.scenarios {
        out.push(scenario_case(case, &format!("{stem}.scenarios")));
    }
    for m in &rb.mutations {
        out.push(mutation_case(m, &format!("{stem}.mutations")));
    }
    out
}

fn scenario_case(case: &Case, classname: &str) -> TestCase {
    let name = format!("{}: {}", case.scenario.display(), case.name);
    let mut body = String::new();
    if let Some(e) = &case.expected {
        let _ = writeln!(body, "expected: {}", e.describe());
    }
    if let Some(g) = &case.got {
        let _ = writeln!(body, "got: {}", g.describe());
        if !g.text.is_empty() {
            let _ = writeln!(body, "{}", g.text);
        }
    }
    for p in &case.problems {
        let _ = writeln!(body, "- {p}");
    }
    push_tail(&mut body, &case.transcript);
    let message = case.problems.join("; ");
    let result = match case.verdict {
        Verdict::Pass => None,
        Verdict::Fail => Some(("failure", "expectation".to_string(), message, body)),
        Verdict::Error => Some(("error", "scenario".to_string(), message, body)),
        Verdict::Skipped => Some(("skipped", String::new(), message, String::new())),
    };
    TestCase {
        name,
        classname: classname.to_string(),
        seconds: case.seconds,
        result,
    }
}

fn mutation_case(m: &MutationCase, classname: &str) -> TestCase {
    let name = format!(
        "step `{}`: {} (from {})",
        m.step,
        m.description,
        m.from.display()
    );
    let mut body = String::new();
    if let Some(g) = &m.got {
        let _ = writeln!(body, "got: {}", g.describe());
    }
    for p in &m.problems {
        let _ = writeln!(body, "- {p}");
    }
    push_tail(&mut body, &m.transcript);
    let message = m.problems.join("; ");
    let result = match m.verdict {
        Verdict::Pass => None,
        Verdict::Fail => Some(("failure", "mutation".to_string(), message, body)),
        Verdict::Error => Some(("error", "mutation".to_string(), message, body)),
        Verdict::Skipped => Some(("skipped", String::new(), message, String::new())),
    };
    TestCase {
        name,
        classname: classname.to_string(),
        seconds: m.seconds,
        result,
    }
}

fn push_tail(body: &mut String, transcript: &str) {
    let lines = tail(transcript, TAIL_LINES);
    if !lines.is_empty() {
        let _ = writeln!(body, "transcript (last {} lines):", lines.len());
        for l in lines {
            let _ = writeln!(body, "{l}");
        }
    }
}

/// Characters XML 1.0 allows; anything else becomes U+FFFD.
fn allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Escaped element text.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if allowed(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

/// An escaped attribute value; line breaks and tabs survive as references.
fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if allowed(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_and_attributes() {
        let cases = [
            (
                "a < b & c > d",
                "a &lt; b &amp; c &gt; d",
                "a &lt; b &amp; c &gt; d",
            ),
            (
                "say \"hi\" it's",
                "say \"hi\" it's",
                "say &quot;hi&quot; it&apos;s",
            ),
            ("two\nlines\t!", "two\nlines\t!", "two&#10;lines&#9;!"),
            (
                "bell\u{7}esc\u{1b}[2J",
                "bell\u{FFFD}esc\u{FFFD}[2J",
                "bell\u{FFFD}esc\u{FFFD}[2J",
            ),
            ("sda → sdb ✓", "sda → sdb ✓", "sda → sdb ✓"),
            ("\u{FFFE}", "\u{FFFD}", "\u{FFFD}"),
        ];
        for (input, want_text, want_attr) in cases {
            assert_eq!(text(input), want_text, "{input:?}");
            assert_eq!(attr(input), want_attr, "{input:?}");
        }
    }
}
