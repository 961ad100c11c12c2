//! Scripted answers for CI, dry-runs and `run --answers FILE`.
//!
//! The scripted operator answers questions from a map of step id to answers
//! and writes a plain, deterministic transcript (no colour, no timestamps,
//! no cursor movement) that tests compare line by line.
//!
//! It fails loudly rather than guessing: a question with no scripted answer
//! is an error, and so are answers left over when the run ends. Otherwise a
//! test whose answers file has drifted from its runbook would pass for the
//! wrong reason. Only the simulated technician of a dry-run may answer on
//! its own, and then always the way the step asks, and says so.
//!
//! # The answers file
//!
//! TOML, one key per step id, at the top level:
//!
//! ```toml
//! # yes/no questions take "yes", "y", "no" or "n" (any case), or true/false
//! antistatic = "yes"
//! pull = true
//! # typed confirmations take the exact text, in quotes (keeps leading zeros)
//! add = "0003"
//! # a step asked several times takes a list, used in order
//! insert = ["yes", "yes"]
//! # preflight asks about a survivor that is not healthy: a written reason
//! # overrides a refusal, the word `at-risk` acknowledges an at-risk one
//! preflight = "ticket OPS-4411: backup verified, lead approved"
//! ```
//!
//! Tables, numbers and dates are errors that point at the file, line and
//! column.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Result, anyhow, bail};
use toml::de::{DeTable, DeValue};

use crate::operator::live::banner_rows;
use crate::operator::render::{ProgressThrottle, one_line, panel_rows, progress_line, shell_line};
use crate::operator::{
    Answer, Banner, HaltReport, NoteLevel, Operator, PanelLine, Progress, Question, QuestionKind,
    StepView,
};
use crate::runbook::diag::{Diagnostic, Severity};
use crate::runbook::model::Span;
use crate::sanitize::sanitize;

/// Answers from a file or a map, and a plain transcript.
pub struct ScriptedOperator {
    answers: BTreeMap<String, VecDeque<String>>,
    /// How many answers each step had at the start, for messages.
    given: BTreeMap<String, usize>,
    simulated_technician: bool,
    out: Box<dyn Write>,
    /// The first transcript write that failed; reported by `finish`.
    write_error: Option<std::io::Error>,
    throttle: ProgressThrottle,
    /// Step ids shown so far, for "did you mean" on leftover answers.
    seen: BTreeSet<String>,
    halted: bool,
}

impl ScriptedOperator {
    /// Answers from `path` (see the module docs for the format); a question
    /// without an answer is an error (this is `run --answers FILE`).
    pub fn from_file(path: &Path, out: Box<dyn Write>) -> Result<Self> {
        Ok(Self::new(load_answers(path)?, false, out))
    }

    /// Answers from a map of step id to answers in the order they are used.
    /// With `simulated_technician`, a question with no scripted answer is
    /// answered the way the step asks (yes; the expected text) and the
    /// transcript says so; without it such a question is an error.
    pub fn new(
        answers: BTreeMap<String, Vec<String>>,
        simulated_technician: bool,
        out: Box<dyn Write>,
    ) -> Self {
        let given = answers.iter().map(|(k, v)| (k.clone(), v.len())).collect();
        ScriptedOperator {
            answers: answers
                .into_iter()
                .map(|(k, v)| (k, VecDeque::from(v)))
                .collect(),
            given,
            simulated_technician,
            out,
            write_error: None,
            throttle: ProgressThrottle::new(),
            seen: BTreeSet::new(),
            halted: false,
        }
    }

    /// Check the answer keys against the runbook's step ids before the run
    /// starts, so a misspelt step id is reported up front (with a "did you
    /// mean") instead of as a missing answer later.
    pub fn check_step_ids<'a>(&self, step_ids: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let known: Vec<&str> = step_ids.into_iter().collect();
        let unknown: Vec<String> = self
            .answers
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .map(|k| with_suggestion(k, known.iter().copied()))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            bail!(
                "answers for steps the runbook does not have: {}",
                unknown.join(", ")
            )
        }
    }

    fn line(&mut self, text: &str) {
        if self.write_error.is_some() {
            return;
        }
        if let Err(e) = writeln!(self.out, "{text}") {
            self.write_error = Some(e);
        }
    }

    /// Flush and turn a failed transcript write into an error.
    fn check_written(&mut self) -> Result<()> {
        if self.write_error.is_none() {
            if let Err(e) = self.out.flush() {
                self.write_error = Some(e);
            }
        }
        match &self.write_error {
            Some(e) => Err(anyhow!("cannot write the transcript: {e}")),
            None => Ok(()),
        }
    }

    fn scripted_answer(&mut self, question: &Question) -> Result<Option<String>> {
        let next = self
            .answers
            .get_mut(&question.step_id)
            .and_then(VecDeque::pop_front);
        if next.is_some() || self.simulated_technician {
            return Ok(next);
        }
        let step = sanitize(&question.step_id, false);
        let prompt = one_line(&question.prompt);
        match self.given.get(&question.step_id) {
            Some(&n) => bail!(
                "no scripted answer left for step `{step}`: it asked \"{prompt}\" again after \
                 using all {n} of its answers; add one more to the list for `{step}`"
            ),
            None => bail!(
                "no scripted answer for step `{step}`: it asked \"{prompt}\"; add `{step} = \"...\"` \
                 to the answers file"
            ),
        }
    }
}

/// `` `pul` (did you mean `pull`?) `` when a known id is close enough.
fn with_suggestion<'a>(key: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    let key = sanitize(key, false);
    let best = known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(&key, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, k)) => format!("`{key}` (did you mean `{}`?)", sanitize(k, false)),
        None => format!("`{key}`"),
    }
}

/// Turn a scripted answer into an [`Answer`] for `question`.
fn interpret(question: &Question, text: &str) -> Result<Answer> {
    match &question.kind {
        QuestionKind::YesNo => match text.trim().to_ascii_lowercase().as_str() {
            "yes" | "y" => Ok(Answer::Yes),
            "no" | "n" => Ok(Answer::No),
            _ => bail!(
                "scripted answer `{}` for step `{}` is not yes or no: it asked \"{}\"",
                sanitize(text, false),
                sanitize(&question.step_id, false),
                one_line(&question.prompt)
            ),
        },
        QuestionKind::TypeExact { .. } | QuestionKind::Name | QuestionKind::Reason => {
            Ok(Answer::Text(text.to_string()))
        }
    }
}

/// What the simulated technician answers: what the step asks for.
fn simulated(question: &Question) -> Answer {
    match &question.kind {
        QuestionKind::YesNo => Answer::Yes,
        QuestionKind::TypeExact { expected } => Answer::Text(expected.clone()),
        QuestionKind::Name => Answer::Text("a second simulated technician".to_string()),
        // Overriding a refusal is never the default: only a scenario's or
        // answers file's written reason does it.
        QuestionKind::Reason => Answer::Text(String::new()),
    }
}

fn shown(answer: &Answer) -> String {
    match answer {
        Answer::Yes => "yes".to_string(),
        Answer::No => "no".to_string(),
        Answer::Text(t) => sanitize(t, false),
    }
}

impl Operator for ScriptedOperator {
    fn banner(&mut self, banner: &Banner) {
        self.line(&format!(
            "swapguard {}: {}",
            one_line(&banner.verb),
            one_line(&banner.runbook)
        ));
        for (label, value) in banner_rows(banner).into_iter().skip(1) {
            self.line(&format!("  {label}: {value}"));
        }
    }

    fn show_step(&mut self, step: &StepView) -> Result<()> {
        self.seen.insert(step.id.clone());
        self.throttle.reset();
        let text = sanitize(&step.text, true);
        let mut lines = text.trim_end().lines();
        let head = format!(
            "step {}/{} [{}] {}",
            step.number,
            step.total,
            sanitize(&step.id, false),
            sanitize(&step.kind, false)
        );
        match lines.next() {
            Some(first) => self.line(&format!("{head}: {}", first.trim_end())),
            None => self.line(&head),
        }
        for rest in lines {
            let rest = rest.trim_end();
            if rest.is_empty() {
                self.line("");
            } else {
                self.line(&format!("    {rest}"));
            }
        }
        if let Some(argv) = &step.argv {
            self.line(&format!("  $ {}", shell_line(argv)));
        }
        self.check_written()
    }

    fn ask(&mut self, question: &Question) -> Result<Answer> {
        let (answer, source) = match self.scripted_answer(question)? {
            Some(text) => (interpret(question, &text)?, "scripted"),
            None => (simulated(question), "simulated technician"),
        };
        self.line(&format!(
            "  ? {} > {} ({source})",
            one_line(&question.prompt),
            shown(&answer)
        ));
        self.check_written()?;
        Ok(answer)
    }

    fn health(&mut self, panel: &[PanelLine]) {
        if panel.is_empty() {
            self.line("  health: (no drives)");
            return;
        }
        self.line("  health:");
        for (ok, row) in panel_rows(panel) {
            let marker = if ok { "OK" } else { "!!" };
            self.line(&format!("    {marker}  {row}"));
        }
    }

    fn progress(&mut self, progress: &Progress) {
        if self.throttle.should_print(progress) {
            self.line(&format!("  ~ {}", progress_line(progress)));
        }
    }

    fn note(&mut self, level: NoteLevel, text: &str) {
        let text = one_line(text);
        let line = match level {
            NoteLevel::Info => format!("  info: {text}"),
            NoteLevel::Good => format!("  ok: {text}"),
            NoteLevel::Warn => format!("  ! warn: {text}"),
        };
        self.line(&line);
    }

    fn halted(&mut self, report: &HaltReport) {
        self.halted = true;
        self.line(&halt_transcript(report).join("\n"));
        // Nowhere to report a failure from here; `finish` will.
        let _ = self.check_written();
    }

    fn finish(&mut self) -> Result<()> {
        self.check_written()?;
        // After a halt the run stopped early on purpose, so answers for the
        // steps it never reached are expected to be left.
        if self.halted {
            return Ok(());
        }
        let left: Vec<String> = self
            .answers
            .iter()
            .filter(|(_, queue)| !queue.is_empty())
            .map(|(step, queue)| {
                let named = with_suggestion(
                    step,
                    self.seen.iter().map(String::as_str).filter(|s| *s != step),
                );
                match self.given.get(step) {
                    Some(&n) if n > 1 => format!("{named} ({} of {n} unused)", queue.len()),
                    _ => named,
                }
            })
            .collect();
        if left.is_empty() {
            Ok(())
        } else {
            bail!(
                "answers left over for {}: the run never asked for them, so the answers file \
                 does not match the runbook; remove them or fix the step ids",
                left.join(", ")
            )
        }
    }
}

/// The transcript's halt block: `HALT at step pull: headline`, each detail
/// indented, then the guidance.
pub fn halt_transcript(report: &HaltReport) -> Vec<String> {
    let mut out = vec![format!(
        "HALT at step {}: {}",
        sanitize(&report.step_id, false),
        one_line(&report.headline)
    )];
    for detail in &report.details {
        out.push(format!("  {}", one_line(detail)));
    }
    let guidance = sanitize(&report.guidance, true);
    if !guidance.trim().is_empty() {
        out.push("  guidance:".to_string());
        for line in guidance.trim_end().lines() {
            let line = line.trim_end();
            if line.is_empty() {
                out.push(String::new());
            } else {
                out.push(format!("    {line}"));
            }
        }
    }
    out
}

/// Read an answers file (see the module docs): step id → answers in order.
/// Every error is rendered as diagnostics (`error: ...` then ` --> path`),
/// ready to print as it is.
pub fn load_answers(path: &Path) -> Result<BTreeMap<String, Vec<String>>> {
    // Answers steer a run as root: read once, from a checked descriptor.
    let source = crate::trust::read_checked(path, "answers file").map_err(|e| {
        let diag = Diagnostic::whole_file(Severity::Error, path, format!("{e:#}"), None);
        anyhow!("{diag}")
    })?;
    parse_answers(path, &source)
}

/// Parse answers text (`path` is for messages only). Every problem is
/// reported, each as a diagnostic naming `path:line:col`.
pub fn parse_answers(path: &Path, source: &str) -> Result<BTreeMap<String, Vec<String>>> {
    let table = match DeTable::parse(source) {
        Ok(table) => table.into_inner(),
        Err(e) => {
            let span = e.span().map_or(Span { start: 0, end: 0 }, |r| Span {
                start: r.start,
                end: r.end,
            });
            let message = format!("invalid answers file: {}", e.message().trim_end());
            let bad = source.get(span.start..).unwrap_or("");
            let help = if message.contains("leading zero") {
                let number: String = bad.chars().take_while(char::is_ascii_digit).collect();
                format!("write the answer in quotes: `\"{number}\"`")
            } else if message.contains("duplicate key") {
                "a step asked several times takes a list, used in order: `add = [\"0002\", \"0003\"]`"
                    .to_string()
            } else {
                "answers look like `step-id = \"yes\"`".to_string()
            };
            let diag = Diagnostic::at(Severity::Error, path, source, span, message, Some(help));
            bail!("{diag}");
        }
    };
    let mut diags = Vec::new();
    let mut answers = BTreeMap::new();
    for (key, value) in table.iter() {
        let step = key.get_ref().to_string();
        let mut texts = Vec::new();
        match value.get_ref() {
            DeValue::Array(items) => {
                for item in items.iter() {
                    match answer_text(&step, item.get_ref(), source.get(item.span())) {
                        Ok(text) => texts.push(text),
                        Err((message, help)) => {
                            diags.push(diag_at(path, source, item.span(), message, help))
                        }
                    }
                }
            }
            other => match answer_text(&step, other, source.get(value.span())) {
                Ok(text) => texts.push(text),
                Err((message, help)) => {
                    diags.push(diag_at(path, source, value.span(), message, help))
                }
            },
        }
        answers.insert(step, texts);
    }
    if diags.is_empty() {
        return Ok(answers);
    }
    let rendered: Vec<String> = diags.iter().map(ToString::to_string).collect();
    bail!("{}", rendered.join("\n\n"))
}

fn diag_at(
    path: &Path,
    source: &str,
    range: std::ops::Range<usize>,
    message: String,
    help: String,
) -> Diagnostic {
    let span = Span {
        start: range.start,
        end: range.end,
    };
    Diagnostic::at(Severity::Error, path, source, span, message, Some(help))
}

/// One answer's text, or a message and help for a diagnostic.
/// `raw` is the value as written in the file, for the help text.
fn answer_text(
    step: &str,
    value: &DeValue<'_>,
    raw: Option<&str>,
) -> Result<String, (String, String)> {
    let step = sanitize(step, false);
    let raw = sanitize(raw.unwrap_or("0003").trim(), false);
    match value {
        DeValue::String(s) => Ok(s.to_string()),
        DeValue::Boolean(true) => Ok("yes".to_string()),
        DeValue::Boolean(false) => Ok("no".to_string()),
        DeValue::Integer(_) | DeValue::Float(_) => Err((
            format!("the answer for step `{step}` is a number"),
            format!(
                "write it in quotes, `\"{raw}\"`: answers are text, and a number would lose leading zeros"
            ),
        )),
        DeValue::Table(_) => Err((
            format!("the answers for step `{step}` are a table"),
            format!(
                "write answers at the top level as `{step} = \"yes\"`, or a list for a step asked \
                 several times"
            ),
        )),
        DeValue::Array(_) => Err((
            format!("the answers for step `{step}` nest a list in a list"),
            format!("use one flat list: `{step} = [\"yes\", \"no\"]`"),
        )),
        DeValue::Datetime(_) => Err((
            format!("the answer for step `{step}` is a date"),
            "write it in quotes".to_string(),
        )),
    }
}

/// A transcript buffer that can be handed to [`ScriptedOperator`] and read
/// afterwards (clones share the same bytes). For tests of the engine.
#[derive(Clone, Debug, Default)]
pub struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    pub fn new() -> Self {
        Self::default()
    }

    fn bytes(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic in another holder cannot leave a Vec<u8> half-valid.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Everything written so far, as text.
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
