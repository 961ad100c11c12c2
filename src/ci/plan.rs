//! `swapguard plan`: a runbook as a printable Markdown checklist, for the
//! paper on the rack or the change ticket.
//!
//! Everything comes from the checked runbook model: the steps in order,
//! each with a checkbox, what the technician does, what swapguard runs and
//! asks, what must hold afterwards, what the LEDs should show; the
//! preflight list; the guard and every loosening of it; and the halt
//! guidance, first, where nobody can miss it. Variables stay as
//! `{target.serial}` in code, with a table to write the values in: the
//! live array fills them in only when the run starts.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::runbook::model::{
    CheckTest, Confirm, DriveExpect, Expectation, ExternalCheck, ParamKind, Precondition,
    Requirement, Role, Runbook, Step, StepKind, WaitUntil,
};
use crate::runbook::template::variables;

/// The checklist for `runbook`, loaded from `path`.
pub fn render(runbook: &Runbook, path: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", md(&runbook.name));
    let _ = writeln!(
        out,
        "Checklist for `{}` ({} backend, {} steps, sha256 `{}`), printed by `swapguard plan`.\n",
        path.display(),
        backend_name(runbook),
        runbook.steps.len(),
        runbook.hash.get(..12).unwrap_or(&runbook.hash)
    );
    let args: Vec<String> = runbook
        .params
        .iter()
        .map(|p| match p.name.as_str() {
            "array" | "target" => format!("--{} ____", p.name),
            other => format!("--param {other}=____"),
        })
        .collect();
    let _ = writeln!(
        out,
        "The run: `swapguard run {} {}`.\n",
        path.display(),
        args.join(" ")
    );
    fill_in(&mut out, runbook);
    halt(&mut out, runbook);
    preflight(&mut out, runbook);
    guard(&mut out, runbook);
    steps(&mut out, runbook);
    done(&mut out, runbook);
    out
}

fn backend_name(runbook: &Runbook) -> &'static str {
    runbook.backend.name()
}

fn fill_in(out: &mut String, runbook: &Runbook) {
    out.push_str("| Write in | |\n|---|---|\n");
    out.push_str("| Date, technician | |\n| Change ticket | |\n");
    for p in &runbook.params {
        let what = match p.kind {
            ParamKind::Array => "array",
            ParamKind::Member => "drive to replace",
            ParamKind::Drive => "drive to write to (serial)",
            ParamKind::Text => "value",
        };
        let help = if p.help.is_empty() {
            String::new()
        } else {
            format!(": {}", md(&p.help))
        };
        let _ = writeln!(out, "| `{{{}}}` ({what}{help}) | |", p.name);
    }
    out.push_str("| `{target.serial}` (serial of the drive to replace) | |\n");
    out.push_str("| `{target.slot}` (its bay) | |\n");
    if finds_new(runbook).is_some() {
        out.push_str("| `{new.serial}` (serial of the new drive) | |\n");
    }
    out.push_str(
        "\nValues in `{braces}` come from the live array: swapguard shows them on screen when the run starts.\n\n",
    );
}

fn halt(out: &mut String, runbook: &Runbook) {
    out.push_str("## If swapguard says STOP\n\n");
    out.push_str(
        "swapguard halts the moment a surviving drive degrades, the wrong drive moves or health cannot be read. \
         It prints which drive changed and how (before → after), then this guidance from the runbook:\n\n",
    );
    let guidance = runbook.on_halt.trim();
    if guidance.is_empty() {
        out.push_str(
            "> (the runbook gives no guidance: take your hands out and call the storage lead)\n\n",
        );
    } else {
        for line in guidance.lines() {
            let _ = writeln!(out, "> {}  ", md(line.trim_end()));
        }
        out.push('\n');
    }
}

fn preflight(out: &mut String, runbook: &Runbook) {
    out.push_str("## Before you start\n\n");
    let pre = &runbook.preflight;
    if pre.require.is_empty() && pre.checks.is_empty() {
        out.push_str("The runbook asks for no preflight checks.\n\n");
        return;
    }
    out.push_str(
        "swapguard checks these on its first snapshot and refuses to start, touching nothing, if one fails:\n\n",
    );
    for p in &pre.require {
        let what = match p {
            Precondition::RedundantWithoutTarget => "the array survives the target leaving",
            Precondition::SurvivorsHealthy => {
                "every other member is in sync, passes SMART and has no error flags"
            }
            Precondition::NoRebuildRunning => "no resync, recovery or check is running",
            Precondition::TargetIdentified => "the target has a serial number or WWN",
        };
        let _ = writeln!(out, "- [ ] {what} (`{}`)", p.name());
    }
    for c in &pre.checks {
        let test = check_test(c);
        let argv: Vec<String> = c.run.iter().map(|t| code_text(&t.text)).collect();
        let _ = writeln!(out, "- [ ] {}: `{}` {test}", md(&c.name), argv.join(" "));
    }
    out.push('\n');
}

/// What an external check must see, in words.
fn check_test(c: &ExternalCheck) -> String {
    let exit = match c.exit.as_slice() {
        [0] => "exits with status 0".to_string(),
        codes => format!(
            "exits with status {}",
            codes
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    };
    let output = match &c.test {
        CheckTest::ExitZero => return exit,
        CheckTest::JsonEquals { pointer, value } => {
            format!("`{pointer}` in its JSON output is `{value}`")
        }
        CheckTest::JsonNotEquals { pointer, value } => {
            format!("`{pointer}` in its JSON output is not `{value}`")
        }
        CheckTest::JsonAtLeast { pointer, bound } => {
            format!("`{pointer}` in its JSON output is at least {bound}")
        }
        CheckTest::JsonAtMost { pointer, bound } => {
            format!("`{pointer}` in its JSON output is at most {bound}")
        }
        CheckTest::JsonMaxAge { pointer, max_age } => format!(
            "`{pointer}` in its JSON output is no older than {}",
            duration(*max_age)
        ),
        CheckTest::Matches { pattern } => format!("its output matches `{}`", code_text(pattern)),
        CheckTest::NotMatches { pattern } => {
            format!("its output does not match `{}`", code_text(pattern))
        }
        CheckTest::StdoutIs { text } => format!("its output is `{}`", code_text(text)),
    };
    format!("{exit} and {output}")
}

fn guard(out: &mut String, runbook: &Runbook) {
    let g = &runbook.guard;
    out.push_str("## The guard\n\n");
    let _ = writeln!(
        out,
        "Before step 1 swapguard snapshots every drive. Around and during every step it compares the \
         survivors with that snapshot and halts the moment one changes: error counters every {}, \
         SMART every {} while hands are in the chassis and during waits.",
        duration(g.watch_poll),
        duration(g.smart_poll)
    );
    let mut loosened = Vec::new();
    if g.smart == Requirement::Optional {
        loosened.push("SMART is optional: SMART that cannot be read does not halt".to_string());
    }
    if !g.tolerate.is_empty() {
        let names: Vec<String> = g.tolerate.iter().map(|t| format!("`{t}`")).collect();
        loosened.push(format!(
            "a rise of {} does not halt the run",
            names.join(", ")
        ));
    }
    if !g.accept_survivor.is_empty() {
        let names: Vec<String> = g.accept_survivor.iter().map(|t| format!("`{t}`")).collect();
        loosened.push(format!(
            "a survivor with {} is accepted before the run, not refused or asked about",
            names.join(", ")
        ));
    }
    if let Some(n) = g.max_degraded {
        let _ = writeln!(
            out,
            "\nThe array may never miss more than {n} slot{} during the run.",
            if n == 1 { "" } else { "s" }
        );
    }
    for l in loosened {
        let _ = writeln!(out, "\n**Loosened by this runbook:** {l}.");
    }
    out.push('\n');
}

fn steps(out: &mut String, runbook: &Runbook) {
    out.push_str("## Steps\n\n");
    // The locate LED switched on by an earlier step, and which.
    let mut led: Option<(Role, usize, &str)> = None;
    for (i, step) in runbook.steps.iter().enumerate() {
        let n = i + 1;
        let optional = if step.optional {
            " — optional: if it fails, the run goes on"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{n}. [ ] **`{}`** ({}){optional}\n",
            step.id,
            kind_label(step)
        );
        let mut items: Vec<String> = Vec::new();
        if let Some(say) = &step.say {
            for line in prose(&say.text).lines() {
                let _ = writeln!(out, "   {}  ", line.trim_end());
            }
            out.push('\n');
        }
        match &step.kind {
            StepKind::Confirm => {
                items.push(
                    "swapguard asks *Done, and ready to go on?*: answer yes only once it is done."
                        .into(),
                );
            }
            StepKind::Command { run, destructive } => {
                let argv: Vec<String> = run.iter().map(|t| code_text(&t.text)).collect();
                items.push(format!("swapguard runs `{}`.", argv.join(" ")));
                if *destructive {
                    items.push("This command writes to a drive and cannot be undone.".into());
                }
            }
            StepKind::Physical => {
                items.push(
                    "swapguard watches every drive while you work and goes on by itself once the change is seen."
                        .into(),
                );
                if step.expect.target == Some(DriveExpect::Absent) {
                    items.push("Check: the serial on the label of the drive in your hand is `{target.serial}` before it leaves the bay.".into());
                }
                items.push(match led {
                    Some((role, at, id)) => format!(
                        "LEDs: the locate LED of the {} drive's bay blinks (switched on at step {at}, `{id}`); \
                         where the chassis has no LED control, swapguard said so there: go by the bay number and the serial label.",
                        role_name(role)
                    ),
                    None => "LEDs: no locate LED was switched on for this step: go by the bay number and the serial label.".into(),
                });
                items.push("Touch no other drive. If a fault LED lights on any other bay, take your hands out and look at the screen.".into());
            }
            StepKind::Wait { until } => {
                let until = match until {
                    WaitUntil::InSync => "the array is fully in sync again",
                };
                let timeout = step
                    .timeout
                    .map(|t| format!(" (at most {})", duration(t)))
                    .unwrap_or_default();
                items.push(format!(
                    "Wait until {until}{timeout}; swapguard shows progress and an estimate. \
                     The survivors are still watched: a rebuild reads every block of them."
                ));
            }
            StepKind::Check { check } => {
                let argv: Vec<String> = check.run.iter().map(|t| code_text(&t.text)).collect();
                items.push(format!(
                    "swapguard runs `{}` and goes on only if it {}; otherwise it stops here.",
                    argv.join(" "),
                    check_test(check)
                ));
            }
            StepKind::Locate { on } => {
                items.push(format!(
                    "LEDs: the locate LED of the {} drive's bay (`{{{}.slot}}`) blinks. Without LED control swapguard says so{}.",
                    role_name(*on),
                    role_name(*on),
                    if step.optional { " and goes on" } else { " and stops" }
                ));
                led = Some((*on, n, &step.id));
            }
        }
        match step.confirm {
            Confirm::None => {}
            Confirm::YesNo => items.push("swapguard asks a yes/no question first.".into()),
            Confirm::TypeSerial(role) => items.push(format!(
                "Confirm: type the last 4 characters of the {} drive's serial (`{{{}.serial4}}`).",
                role_name(role),
                role_name(role)
            )),
        }
        if step.sign_off {
            items.push("Sign-off: a second person gives their name and types the same 4 characters after checking the drive; both go into the journal.".into());
        }
        if let Some(rule) = &step.new_drive {
            let mut must = Vec::new();
            if let Some(min) = &rule.min_size {
                must.push(format!("at least `{}` bytes", code_text(&min.text)));
            }
            if rule.blank {
                must.push("blank (no partition table, RAID superblock or filesystem)".to_string());
            }
            if rule.not_quarantined {
                must.push("not a drive quarantined earlier".to_string());
            }
            if !must.is_empty() {
                items.push(format!(
                    "The new drive must be {}; swapguard checks it before anything writes to it.",
                    must.join(", ")
                ));
            }
            items.push("Write the new drive's serial in the table above.".into());
        }
        if let Some(after) = expectation(&step.expect) {
            items.push(format!("Afterwards: {after}."));
        }
        if step.quarantine == Some(Role::Target) {
            items.push("The pulled drive is quarantined: label it \"do not reuse\" and set it apart; swapguard refuses it as a new drive.".into());
        }
        if let Some(t) = step.timeout
            && !matches!(step.kind, StepKind::Wait { .. })
        {
            items.push(format!("Time limit: {}.", duration(t)));
        }
        for item in items {
            let _ = writeln!(out, "   - {item}");
        }
        out.push('\n');
    }
}

fn done(out: &mut String, runbook: &Runbook) {
    out.push_str("## When it is done\n\n");
    out.push_str("- [ ] swapguard printed *all steps done*\n");
    if runbook
        .steps
        .iter()
        .any(|s| s.quarantine == Some(Role::Target))
    {
        out.push_str("- [ ] the pulled drive is labelled \"do not reuse\" and set apart\n");
    }
    if runbook
        .steps
        .iter()
        .any(|s| matches!(s.kind, StepKind::Locate { .. }))
    {
        out.push_str(
            "- [ ] no locate LED blinks any more (swapguard switches them off when the run ends)\n",
        );
    }
    out.push_str(
        "- [ ] the journal of the run (`/var/lib/swapguard/sessions/`) is attached to the change ticket\n",
    );
}

/// The step that finds the new drive.
fn finds_new(runbook: &Runbook) -> Option<&Step> {
    runbook
        .steps
        .iter()
        .find(|s| s.expect.new == Some(DriveExpect::Present))
}

fn kind_label(step: &Step) -> &'static str {
    match step.kind {
        StepKind::Confirm => "confirm",
        StepKind::Command { .. } => "command",
        StepKind::Physical => "physical: hands in the chassis",
        StepKind::Wait { .. } => "wait",
        StepKind::Locate { .. } => "locate",
        StepKind::Check { .. } => "check",
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Target => "target",
        Role::New => "new",
    }
}

/// `the target is out of the machine; at most 1 array slot missing`.
fn expectation(e: &Expectation) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(t) = e.target {
        parts.push(format!("the target is {}", state(t)));
    }
    if let Some(n) = e.new {
        parts.push(format!("the new drive is {}", state(n)));
    }
    match e.degraded {
        Some(0) => parts.push("no array slot missing".to_string()),
        Some(1) => parts.push("at most 1 array slot missing".to_string()),
        Some(n) => parts.push(format!("at most {n} array slots missing")),
        None => {}
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn state(e: DriveExpect) -> &'static str {
    match e {
        DriveExpect::InSync => "in sync",
        DriveExpect::Rebuilding => "being rebuilt",
        DriveExpect::Faulty => "marked faulty (still listed in the array)",
        DriveExpect::Removed => "out of the array, still in the machine",
        DriveExpect::Absent => "out of the machine",
        DriveExpect::Present => "in the machine",
    }
}

/// `24h`, `10s`, `250ms`: the largest unit that divides it exactly, as
/// runbooks write durations.
fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".to_string(),
        _ if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        _ if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        _ if ms % 1_000 == 0 => format!("{}s", ms / 1_000),
        _ => format!("{ms}ms"),
    }
}

/// A template as prose: text escaped for Markdown, variables as code.
fn prose(text: &str) -> String {
    template(text, md, |name| format!("`{{{name}}}`"))
}

/// A template inside a code span: literal braces unescaped, variables kept.
fn code_text(text: &str) -> String {
    let quoted = if text.contains(' ') && !text.contains('{') {
        format!("'{text}'")
    } else {
        text.to_string()
    };
    template(&quoted, |s| s.to_string(), |name| format!("{{{name}}}"))
}

fn template(text: &str, literal: impl Fn(&str) -> String, var: impl Fn(&str) -> String) -> String {
    let Ok(refs) = variables(text) else {
        return literal(text);
    };
    let mut out = String::new();
    let mut last = 0;
    for r in refs {
        let open = r.offset - 1;
        out.push_str(&literal(&unescape(&text[last..open])));
        out.push_str(&var(&r.name));
        last = r.offset + r.name.len() + 1;
    }
    out.push_str(&literal(&unescape(&text[last..])));
    out
}

fn unescape(s: &str) -> String {
    s.replace("{{", "{").replace("}}", "}")
}

/// Escape the characters Markdown would take as markup.
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::load;
    use std::path::PathBuf;

    fn shipped(name: &str) -> (Runbook, PathBuf) {
        let path = PathBuf::from("runbooks").join(name);
        let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(&path);
        let rb = load::load(&full).unwrap().runbook.unwrap();
        (rb, path)
    }

    #[test]
    fn prose_escapes_markdown_and_codes_variables() {
        let cases = [
            ("Pull bay {target.slot}.", "Pull bay `{target.slot}`."),
            ("a *b* {{c}}", "a \\*b\\* {c}"),
            ("x_y [z]", "x\\_y \\[z\\]"),
            ("broken {", "broken {"),
        ];
        for (input, want) in cases {
            assert_eq!(prose(input), want, "{input}");
        }
        assert_eq!(code_text("{{json}}"), "{json}");
        assert_eq!(code_text("/dev/{array}"), "/dev/{array}");
    }

    #[test]
    fn member_runbook_checklist_has_every_step_numbered_with_a_box() {
        let (rb, path) = shipped("md-replace-member.toml");
        let text = render(&rb, &path);
        for (i, step) in rb.steps.iter().enumerate() {
            let want = format!("{}. [ ] **`{}`**", i + 1, step.id);
            assert!(text.contains(&want), "{want}\n{text}");
        }
        for want in [
            "# Replace one member of a Linux md array",
            "## If swapguard says STOP",
            "> STOP. Take your hands out of the chassis now.",
            "- [ ] the array survives the target leaving (`redundant-without-target`)",
            "swapguard runs `mdadm /dev/{array} --fail {target.dev}`.",
            "Pull the drive in bay `{target.slot}`, serial `{target.serial}`.",
            "LEDs: the locate LED of the target drive's bay blinks (switched on at step 4, `locate`)",
            "Afterwards: the target is out of the machine; at most 1 array slot missing.",
            "label it \"do not reuse\"",
            "The new drive must be at least `{target.size}` bytes, blank",
            "Confirm: type the last 4 characters of the new drive's serial (`{new.serial4}`).",
            "This command writes to a drive and cannot be undone.",
            "(at most 24h)",
            "## When it is done",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains("Loosened"), "{text}");
    }

    #[test]
    fn a_loosened_guard_is_printed() {
        let (mut rb, path) = shipped("md-replace-hot.toml");
        rb.guard.tolerate = vec!["smart.udma_crc_error_count".into()];
        rb.guard.accept_survivor = vec!["nvme.media_errors".into()];
        let text = render(&rb, &path);
        assert!(
            text.contains(
                "**Loosened by this runbook:** a survivor with `nvme.media_errors` is accepted"
            ),
            "{text}"
        );
        assert!(
            text.contains("**Loosened by this runbook:** a rise of `smart.udma_crc_error_count` does not halt the run."),
            "{text}"
        );
        assert!(text.contains("never miss more than 0 slots"), "{text}");
        assert!(
            text.contains("LEDs: no locate LED was switched on for this step"),
            "the hot runbook's insert comes before its locate\n{text}"
        );
    }
}
