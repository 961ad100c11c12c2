//! What the terminal shows around the steps: the start banner and the live
//! line of a physical step. Pure functions, like
//! [`render`](crate::operator::render); the operators decide when to draw.

use std::time::Duration;

use console::Style;

use crate::operator::Banner;
use crate::operator::render::{Look, one_line, wrap};

/// The narrowest screen drawn for (as in `render`).
const MIN_WIDTH: usize = 40;

/// The banner as (label, value) rows, values sanitised and on one line.
pub fn banner_rows(banner: &Banner) -> Vec<(&'static str, String)> {
    vec![
        ("runbook", one_line(&banner.runbook)),
        ("file", one_line(&banner.file)),
        ("array", one_line(&banner.array)),
        ("target", one_line(&banner.target)),
        ("session", one_line(&banner.session)),
        ("journal", one_line(&banner.journal)),
    ]
}

/// The terminal's banner: a title, then the rows with their values wrapped
/// under themselves (a long journal path stays whole on its own line).
pub fn banner_block(banner: &Banner, look: &Look) -> Vec<String> {
    let bold = Style::new().bold().force_styling(look.colors);
    let width = look.width.max(MIN_WIDTH);
    let title = format!(
        "swapguard {}: {}",
        one_line(&banner.verb),
        one_line(&banner.runbook)
    );
    let mut out = vec![String::new()];
    for line in wrap(&title, width) {
        out.push(bold.apply_to(line).to_string());
    }
    const LABEL: usize = 10;
    for (label, value) in banner_rows(banner).into_iter().skip(1) {
        let room = width.saturating_sub(LABEL + 2);
        if !value.contains(' ') && value.chars().count() > room {
            // One word too long for the column (a path): under its label,
            // whole, so it can still be copied; the terminal folds it.
            out.push(format!("  {label}"));
            out.push(format!("    {value}"));
            continue;
        }
        let lines = wrap(&value, room);
        for (i, line) in lines.into_iter().enumerate() {
            let head = if i == 0 { label } else { "" };
            out.push(format!("  {head:<LABEL$}{line}"));
        }
    }
    out
}

/// The target as the banner names it: `nvme1n1, serial S, model M, 1.0 GB,
/// bay 2` (unknown parts say so; a missing bay is not guessed).
pub fn describe_target(id: &crate::health::model::Identity) -> String {
    let dev = if id.dev.is_empty() {
        "a missing device".to_string()
    } else {
        id.dev.clone()
    };
    let mut parts = vec![dev];
    parts.push(format!(
        "serial {}",
        id.serial.as_deref().unwrap_or("unknown")
    ));
    if let Some(model) = &id.model {
        parts.push(format!("model {}", model.trim()));
    }
    if let Some(size) = id.size_bytes {
        parts.push(crate::units::format_size(size));
    }
    parts.push(format!("bay {}", id.slot.as_deref().unwrap_or("unknown")));
    one_line(&parts.join(", "))
}

/// A physical step in progress, as the live line shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub step_id: String,
    /// What is awaited: `the target to leave`, `a new drive`.
    pub what: String,
    pub elapsed: Duration,
    /// Until the step's timeout.
    pub left: Duration,
}

const SPINNER_UNICODE: [char; 10] = [
    '\u{280b}', '\u{2819}', '\u{2839}', '\u{2838}', '\u{283c}', '\u{2834}', '\u{2826}', '\u{2827}',
    '\u{2807}', '\u{280f}',
];
const SPINNER_ASCII: [char; 4] = ['|', '/', '-', '\\'];

/// A duration as a clock: `4:05`, `1:02:03`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The live line: `⠋ waiting for the target to leave  0:12 elapsed, 29:48
/// left`. `frame` turns the spinner; `None` for a plain terminal, which
/// gets no spinner (the line is printed, not redrawn).
pub fn wait_line(w: &Waiting, frame: Option<usize>, look: &Look) -> String {
    let spin = match frame {
        Some(f) if look.unicode => format!("{} ", SPINNER_UNICODE[f % SPINNER_UNICODE.len()]),
        Some(f) => format!("{} ", SPINNER_ASCII[f % SPINNER_ASCII.len()]),
        None => String::new(),
    };
    let text = format!(
        "{spin}waiting for {}: {} elapsed, {} left before the step times out",
        one_line(&w.what),
        clock(w.elapsed),
        clock(w.left)
    );
    // One screen line: a redrawn line that wraps cannot be redrawn.
    let short = format!("{spin}{} elapsed, {} left", clock(w.elapsed), clock(w.left));
    let width = look.width.max(MIN_WIDTH);
    if console::measure_text_width(&text) + 2 <= width {
        format!("  {text}")
    } else {
        format!("  {short}")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn banner() -> Banner {
        Banner {
            verb: "run".into(),
            runbook: "replace a member".into(),
            file: "runbooks/md-replace-member.toml".into(),
            array: "md0".into(),
            target: "nvme1n1, serial LAB-B-0002, model QEMU NVMe Ctrl, 1.07 GB, bay 2".into(),
            session: "md0-20261128T120000Z-4242".into(),
            journal: "/var/lib/swapguard/sessions/md0-20261128T120000Z-4242.jsonl".into(),
        }
    }

    #[test]
    fn the_banner_names_everything_and_fits_40_60_and_80_columns() {
        for width in [40, 60, 80] {
            let look = Look::plain(width);
            let lines = banner_block(&banner(), &look);
            let all = lines.join("\n");
            for needle in [
                "swapguard run: replace a member",
                "runbooks/md-replace-member.toml",
                "md0",
                "LAB-B-0002",
                "QEMU",
                "bay 2",
                "md0-20261128T120000Z-4242",
                "/var/lib/swapguard/sessions/md0-20261128T120000Z-4242.jsonl",
            ] {
                assert!(all.contains(needle), "{width}: {needle}\n{all}");
            }
            for line in &lines {
                // A path longer than the screen stays whole (wrap keeps
                // long words, a cut path reads as two wrong ones);
                // everything else fits.
                if !line.contains('/') {
                    assert!(line.chars().count() <= width, "{width}: {line:?}");
                }
            }
        }
    }

    #[test]
    fn a_hostile_model_string_cannot_move_the_cursor_in_the_banner() {
        let mut b = banner();
        b.target = "nvme1n1, model \u{1b}[2Jevil".into();
        let all = banner_block(&b, &Look::plain(80)).join("\n");
        assert!(!all.contains('\u{1b}'), "{all:?}");
    }

    #[test]
    fn the_live_line_counts_up_and_down_and_fits_one_line() {
        let w = Waiting {
            step_id: "pull".into(),
            what: "the target to leave".into(),
            elapsed: Duration::from_secs(12),
            left: Duration::from_secs(29 * 60 + 48),
        };
        let wide = wait_line(&w, Some(0), &Look::plain(100));
        assert_eq!(
            wide,
            "  | waiting for the target to leave: 0:12 elapsed, 29:48 left before the step times out"
        );
        let narrow = wait_line(&w, Some(1), &Look::plain(40));
        assert_eq!(narrow, "  / 0:12 elapsed, 29:48 left");
        assert_eq!(
            wait_line(&w, None, &Look::plain(100)),
            "  waiting for the target to leave: 0:12 elapsed, 29:48 left before the step times out"
        );
        assert_eq!(clock(Duration::from_secs(3723)), "1:02:03");
    }
}
