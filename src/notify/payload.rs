//! The bodies webhooks get, one function per format. Pure: a [`Notice`]
//! and its [`Context`] in, JSON out, so every format is tested without a
//! network.

use serde_json::{Value, json};

use crate::notify::{Format, Kind, Notice};

/// The generic format's schema name; a new field is added without changing
/// it, a field removed or changed in meaning gets `/v2`.
pub const GENERIC_SCHEMA: &str = "swapguard.notify/v1";
/// How long a halt alert stays firing in Alertmanager unless someone acts:
/// a halt needs a person, so the alert does not resolve itself with the
/// run's end (Alertmanager would end an alert without `endsAt` after its
/// `resolve_timeout`, 5 minutes by default).
pub const HALT_ALERT_HOURS: u64 = 24;

/// Who and where, the same for every notice of a session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    pub host: String,
    pub array: String,
    pub target: String,
    pub session: String,
    pub runbook: String,
    /// A simulated session (dry-run, test).
    pub dry_run: bool,
}

/// The JSON body for `format`, or `None` when the format has nothing to
/// say about this event (Alertmanager hears of halts, starts and finishes).
pub fn body(format: Format, ctx: &Context, notice: &Notice) -> Option<Value> {
    match format {
        Format::Generic => Some(generic(ctx, notice)),
        Format::Slack => Some(json!({ "text": slack_text(ctx, notice) })),
        Format::Alertmanager => alertmanager(ctx, notice),
    }
}

/// The generic body: documented in docs/fleet.md.
pub fn generic(ctx: &Context, n: &Notice) -> Value {
    json!({
        "schema": GENERIC_SCHEMA,
        "event": n.kind.name(),
        "at": crate::journal::rfc3339(n.at_ms),
        "host": ctx.host,
        "array": ctx.array,
        "target": ctx.target,
        "session": ctx.session,
        "runbook": ctx.runbook,
        "dry_run": ctx.dry_run,
        "step": n.step,
        "headline": n.headline,
        "lines": n.lines,
        "outcome": n.outcome.as_ref().map(|(o, _)| o),
        "exit_code": n.outcome.as_ref().map(|(_, c)| c),
    })
}

fn slack_text(ctx: &Context, n: &Notice) -> String {
    let mark = match n.kind {
        Kind::Halt => ":rotating_light: HALT",
        Kind::Refusal => ":no_entry: refused",
        Kind::Interruption => ":pause_button: interrupted",
        Kind::Start => ":arrow_forward: started",
        Kind::Finish => ":checkered_flag: finished",
    };
    let mut text = format!(
        "{mark} swapguard on `{}`, array `{}` (session `{}`{}): {}",
        ctx.host,
        ctx.array,
        ctx.session,
        if ctx.dry_run { ", dry-run" } else { "" },
        n.headline
    );
    for line in &n.lines {
        text.push_str("\n• ");
        text.push_str(line);
    }
    text
}

/// The labels that name a session's alerts.
fn labels(ctx: &Context, alertname: &str, severity: &str, step: Option<&str>) -> Value {
    let mut labels = json!({
        "alertname": alertname,
        "severity": severity,
        "host": ctx.host,
        "array": ctx.array,
        "session": ctx.session,
    });
    if let Some(step) = step {
        labels["step"] = json!(step);
    }
    if ctx.dry_run {
        labels["dry_run"] = json!("true");
    }
    labels
}

/// Alertmanager v2: a list of alerts. A halt fires `SwapguardHalted`
/// (critical) for [`HALT_ALERT_HOURS`]; a start fires `SwapguardSwapInProgress`
/// (info), which the finish resolves (`endsAt` now) whatever the outcome.
/// A refusal fires `SwapguardRefused` (warning) for an hour.
fn alertmanager(ctx: &Context, n: &Notice) -> Option<Value> {
    let at = crate::journal::rfc3339(n.at_ms);
    let later = |hours: u64| crate::journal::rfc3339(n.at_ms + hours * 3_600_000);
    let target = format!("target {}", ctx.target);
    let alert = match n.kind {
        Kind::Halt => json!({
            "labels": labels(ctx, "SwapguardHalted", "critical", n.step.as_deref()),
            "annotations": {
                "summary": n.headline,
                "description": n.lines.join("\n"),
                "runbook": ctx.runbook,
                "target": target,
            },
            "startsAt": at,
            "endsAt": later(HALT_ALERT_HOURS),
        }),
        Kind::Refusal => json!({
            "labels": labels(ctx, "SwapguardRefused", "warning", None),
            "annotations": {
                "summary": n.headline,
                "description": n.lines.join("\n"),
                "runbook": ctx.runbook,
                "target": target,
            },
            "startsAt": at,
            "endsAt": later(1),
        }),
        Kind::Start => json!({
            "labels": labels(ctx, "SwapguardSwapInProgress", "info", None),
            "annotations": { "summary": n.headline, "runbook": ctx.runbook, "target": target },
            "startsAt": at,
            "endsAt": later(HALT_ALERT_HOURS),
        }),
        Kind::Finish => json!({
            "labels": labels(ctx, "SwapguardSwapInProgress", "info", None),
            "annotations": { "summary": n.headline, "runbook": ctx.runbook, "target": target },
            "endsAt": at,
        }),
        Kind::Interruption => return None,
    };
    Some(json!([alert]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            host: "db7".into(),
            array: "md0".into(),
            target: "sdb".into(),
            session: "md0-2026".into(),
            runbook: "md-raid1-replace".into(),
            dry_run: false,
        }
    }

    fn halt() -> Notice {
        Notice {
            kind: Kind::Halt,
            at_ms: 1_700_000_000_000,
            step: Some("pull".into()),
            headline: "survivor sdc degraded".into(),
            lines: vec!["sdc: pending sectors 0 -> 8".into()],
            outcome: None,
        }
    }

    #[test]
    fn alertmanager_halt_fires_with_session_labels_and_lines() {
        let body = body(Format::Alertmanager, &ctx(), &halt()).unwrap();
        let alert = &body[0];
        assert_eq!(alert["labels"]["alertname"], "SwapguardHalted");
        assert_eq!(alert["labels"]["step"], "pull");
        assert_eq!(alert["labels"]["session"], "md0-2026");
        assert_eq!(alert["labels"]["host"], "db7");
        assert_eq!(
            alert["annotations"]["description"],
            "sdc: pending sectors 0 -> 8"
        );
        assert_eq!(alert["startsAt"], "2023-11-14T22:13:20.000Z");
        assert_eq!(alert["endsAt"], "2023-11-15T22:13:20.000Z");
    }

    #[test]
    fn alertmanager_finish_resolves_the_in_progress_alert_only() {
        let finish = Notice {
            kind: Kind::Finish,
            step: None,
            outcome: Some(("halted".into(), 3)),
            ..halt()
        };
        let body = body(Format::Alertmanager, &ctx(), &finish).unwrap();
        assert_eq!(body[0]["labels"]["alertname"], "SwapguardSwapInProgress");
        assert_eq!(body[0]["endsAt"], "2023-11-14T22:13:20.000Z");
        assert!(body[0].get("startsAt").is_none());
    }

    #[test]
    fn generic_and_slack_carry_the_halt() {
        let g = body(Format::Generic, &ctx(), &halt()).unwrap();
        assert_eq!(g["schema"], GENERIC_SCHEMA);
        assert_eq!(g["event"], "halt");
        assert_eq!(g["lines"][0], "sdc: pending sectors 0 -> 8");
        let s = body(Format::Slack, &ctx(), &halt()).unwrap();
        let text = s["text"].as_str().unwrap();
        assert!(text.contains("HALT") && text.contains("`md0`") && text.contains("• sdc"));
    }
}
