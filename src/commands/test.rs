//! `swapguard test`: lint every runbook, dry-run every scenario, optionally
//! every derived bad-hardware variant, and report for people, scripts and
//! CI systems. The work is `crate::ci`; this file reads the options and
//! writes the reports.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::ci::discover::discover;
use crate::ci::junit;
use crate::ci::report;
use crate::ci::suite::{self, Options, Verdict};
use crate::cli::TestArgs;
use crate::error::UsageError;
use crate::exit;

/// Where `swapguard test` looks when given no path.
pub const DEFAULT_PATH: &str = "runbooks";

pub fn test(args: &TestArgs) -> Result<exit::Code> {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(DEFAULT_PATH)]
    } else {
        args.paths.clone()
    };
    let found = discover(&paths)?;
    if found.suites.is_empty() && found.orphans.is_empty() {
        let shown: Vec<String> = paths.iter().map(|p| format!("`{}`", p.display())).collect();
        return Err(UsageError(format!(
            "no runbooks found in {}: runbooks are `NAME.toml` files, their scenarios `scenarios/NAME/*.toml` beside them",
            shown.join(", ")
        ))
        .into());
    }
    let report = suite::run(
        found,
        Options {
            mutate: args.mutate,
        },
    )?;
    if let Some(path) = &args.junit {
        write_junit(&report, path)?;
    }
    let code = report.exit_code(args.deny_warnings);
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&json(&report, code))?)?;
    } else {
        write!(crate::sanitize::stdout(), "{}", report::render(&report))?;
    }
    Ok(code)
}

fn write_junit(report: &suite::Report, path: &Path) -> Result<()> {
    let ctx = junit::Context {
        hostname: hostname(),
        timestamp: humantime::format_rfc3339_seconds(SystemTime::now())
            .to_string()
            .trim_end_matches('Z')
            .to_string(),
    };
    std::fs::write(path, junit::render(report, &ctx))
        .with_context(|| format!("cannot write the JUnit report `{}`", path.display()))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The `--json` document: the report, a summary and the exit code.
fn json(report: &suite::Report, exit_code: exit::Code) -> serde_json::Value {
    let count = |v: Verdict| report.cases().filter(|c| c.verdict == v).count();
    let mcount = |v: Verdict| report.mutations().filter(|m| m.verdict == v).count();
    serde_json::json!({
        "format": crate::output::JSON_FORMAT,
        "exit_code": exit_code.number(),
        "ok": exit_code == exit::Code::Success,
        "summary": {
            "runbooks": report.runbooks.len(),
            "scenarios": report.cases().count(),
            "passed": count(Verdict::Pass),
            "failed": count(Verdict::Fail),
            "errors": count(Verdict::Error),
            "skipped": count(Verdict::Skipped),
            "mutations": report.mutations().count(),
            "mutations_halted": mcount(Verdict::Pass),
            "mutations_let_through": mcount(Verdict::Fail),
            "mutation_errors": mcount(Verdict::Error),
            "lint_errors": report.lint_errors(),
            "warnings": report.warnings(),
            "seconds": report.elapsed.as_secs_f64(),
        },
        "runbooks": report.runbooks,
        "orphans": report.orphans,
    })
}
