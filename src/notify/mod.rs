//! Webhook notifications: the on-call hears of a start, a halt, a refusal,
//! an interruption and a finish as they happen, not from the database 15
//! minutes later.
//!
//! Where they go is `[notify]` in the runbook, or else `[notify]` in the
//! state directory's `config.toml` (a host-wide default; see [`host`]).
//! The engine sees only [`Sink`]: it hands every journal entry it has just
//! written to [`Sink::observe`] and journals what [`Sink::failures`] returns.
//! The HTTP lives in [`worker`], on its own thread behind a bounded queue:
//! a webhook that refuses, hangs or is slow can never block or delay the
//! guard, and a failed delivery is never fatal (it is journaled and shown).

pub mod host;
pub mod payload;
pub mod worker;

use std::time::Duration;

use crate::journal::Event;

/// Default time one delivery attempt may take, connect to last byte.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest time one attempt may take.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// Default attempts after the first one fails.
pub const DEFAULT_RETRIES: u32 = 3;
/// Most retries a target may ask for.
pub const MAX_RETRIES: u32 = 10;

/// Where notifications go and how.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Settings {
    /// The webhook: `http://` or `https://`, a host, any path.
    pub url: String,
    pub format: Format,
    /// Which events are sent (default: all).
    pub events: Vec<Kind>,
    /// Per attempt.
    pub timeout: Duration,
    /// Attempts after the first, with doubling backoff from 1s.
    pub retries: u32,
    /// Whether simulated sessions (`dry-run`, `test`) notify too. Off by
    /// default, so a CI job walking scenarios does not page anyone.
    pub dry_runs: bool,
}

/// The body a webhook gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Prometheus Alertmanager's v2 API (`POST /api/v2/alerts`).
    Alertmanager,
    /// Slack-compatible incoming webhooks (`{"text": ...}`).
    Slack,
    /// swapguard's own JSON ([`payload::GENERIC_SCHEMA`]).
    Generic,
}

pub const FORMATS: &[(&str, Format)] = &[
    ("alertmanager", Format::Alertmanager),
    ("slack", Format::Slack),
    ("generic", Format::Generic),
];

/// The events a webhook can be told about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Start,
    Halt,
    Refusal,
    Interruption,
    Finish,
}

pub const KINDS: &[(&str, Kind)] = &[
    ("start", Kind::Start),
    ("halt", Kind::Halt),
    ("refusal", Kind::Refusal),
    ("interruption", Kind::Interruption),
    ("finish", Kind::Finish),
];

impl Kind {
    pub fn name(self) -> &'static str {
        KINDS
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("?", |(n, _)| n)
    }
}

/// A webhook URL as swapguard accepts it: `http://` or `https://`, a host,
/// no whitespace or control characters (it goes into a request line).
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            format!("webhook `url` `{url}` does not start with `http://` or `https://`")
        })?;
    if let Some(c) = url.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "webhook `url` has a whitespace or control character (U+{:04X})",
            c as u32
        ));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') || host.ends_with(':') || host.contains('@') {
        return Err(format!(
            "webhook `url` `{url}` has no host, or an empty port (or has credentials before `@`; put them in the path or a token the webhook expects)"
        ));
    }
    if url.parse::<ureq::http::Uri>().is_err() {
        return Err(format!("webhook `url` `{url}` is not a valid URL"));
    }
    Ok(())
}

/// What of a URL may be shown and journaled: scheme, host and port. Slack
/// webhook URLs carry their secret in the path.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let shown = format!("{scheme}://{host}/…");
    crate::sanitize::sanitize(&shown, false)
}

/// One event as the webhook is told it: what the engine journaled, reduced
/// to what a notification carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub kind: Kind,
    /// Unix milliseconds (the journal entry's time).
    pub at_ms: u64,
    /// The step it happened at (halt, interruption).
    pub step: Option<String>,
    /// One line: the halt's headline, the outcome.
    pub headline: String,
    /// The halt's violations, the refusal's reasons.
    pub lines: Vec<String>,
    /// The run's outcome and exit code (finish).
    pub outcome: Option<(String, i32)>,
}

/// The engine's side of notifications.
pub trait Sink {
    /// A journal entry was just written at `wall_ms`.
    fn observe(&mut self, wall_ms: u64, event: &Event);
    /// Deliveries that failed since the last call, for the journal and the
    /// technician.
    fn failures(&mut self) -> Vec<Failure>;
    /// The run is over: wait at most `limit` for what is still queued and
    /// return every failure not yet taken.
    fn settle(&mut self, limit: std::time::Duration) -> Vec<Failure> {
        let _ = limit;
        self.failures()
    }
}

/// A delivery that did not arrive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub event: Kind,
    /// [`redact`]ed.
    pub target: String,
    pub attempts: u32,
    pub error: String,
}

impl Failure {
    /// The technician's note.
    pub fn note(&self) -> String {
        format!(
            "notification `{}` to {} failed after {} attempt{}: {}; the run goes on (journaled)",
            self.event.name(),
            self.target,
            self.attempts,
            if self.attempts == 1 { "" } else { "s" },
            self.error
        )
    }
}

/// No notifications configured.
pub struct Silent;

impl Sink for Silent {
    fn observe(&mut self, _: u64, _: &Event) {}
    fn failures(&mut self) -> Vec<Failure> {
        Vec::new()
    }
}

/// The notice an event gives, if any.
pub fn notice(wall_ms: u64, event: &Event) -> Option<Notice> {
    let base = |kind, headline: String| Notice {
        kind,
        at_ms: wall_ms,
        step: None,
        headline,
        lines: Vec::new(),
        outcome: None,
    };
    Some(match event {
        Event::RunStarted { runbook_name, .. } => base(
            Kind::Start,
            format!("swap started (runbook `{runbook_name}`)"),
        ),
        Event::Resumed { .. } => base(Kind::Start, "swap resumed".into()),
        Event::Halted {
            step,
            headline,
            details,
            ..
        } => Notice {
            step: Some(step.clone()),
            lines: details.clone(),
            ..base(Kind::Halt, headline.clone())
        },
        Event::Refused { reasons } => Notice {
            lines: reasons.clone(),
            ..base(
                Kind::Refusal,
                "preflight refused the swap; nothing was touched".into(),
            )
        },
        Event::Interrupted { step } => Notice {
            step: Some(step.clone()),
            ..base(
                Kind::Interruption,
                format!("interrupted at step `{step}` (resumable)"),
            )
        },
        Event::RunFinished { outcome, exit_code } => Notice {
            outcome: Some((outcome.clone(), *exit_code)),
            ..base(Kind::Finish, format!("swap finished: {outcome}"))
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_url_accepts_webhooks_and_refuses_the_rest() {
        for good in [
            "http://127.0.0.1:9093/api/v2/alerts",
            "https://hooks.slack.com/services/T0/B0/xyz",
            "http://am.example:9093",
        ] {
            assert_eq!(check_url(good), Ok(()), "{good}");
        }
        for (bad, want) in [
            ("ftp://x/", "does not start with"),
            ("127.0.0.1:9093", "does not start with"),
            ("http://", "no host"),
            ("http:///path", "no host"),
            ("http://127.0.0.1:/hook", "no host"),
            ("http://user:pw@host/", "credentials"),
            ("http://host/a b", "whitespace"),
            ("http://host/\u{1b}[2J", "control"),
        ] {
            let err = check_url(bad).unwrap_err();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }

    #[test]
    fn redact_keeps_the_secret_path_out() {
        assert_eq!(
            redact("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact("http://127.0.0.1:9/x?token=1"),
            "http://127.0.0.1:9/…"
        );
    }

    #[test]
    fn only_the_five_events_notify() {
        let finished = Event::RunFinished {
            outcome: "halted".into(),
            exit_code: 3,
        };
        let n = notice(5, &finished).unwrap();
        assert_eq!(
            (n.kind, n.outcome),
            (Kind::Finish, Some(("halted".into(), 3)))
        );
        assert!(notice(5, &Event::PreflightPassed).is_none());
        let refused = Event::Refused {
            reasons: vec!["sdb is failing".into()],
        };
        assert_eq!(notice(1, &refused).unwrap().lines, vec!["sdb is failing"]);
    }
}
