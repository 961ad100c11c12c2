//! Tests of the scripted operator: answers, failures and exact transcripts.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::{ScriptedOperator, SharedBuffer, halt_transcript, parse_answers};
use crate::operator::{
    Answer, HaltReport, NoteLevel, Operator, PanelLine, Progress, Question, QuestionKind, StepView,
};

fn answers(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
        .collect()
}

fn operator(
    pairs: &[(&str, &[&str])],
    simulated_technician: bool,
) -> (ScriptedOperator, SharedBuffer) {
    let buf = SharedBuffer::new();
    let op = ScriptedOperator::new(answers(pairs), simulated_technician, Box::new(buf.clone()));
    (op, buf)
}

fn yes_no(step: &str, prompt: &str) -> Question {
    Question {
        step_id: step.into(),
        prompt: prompt.into(),
        kind: QuestionKind::YesNo,
    }
}

fn type_exact(step: &str, expected: &str) -> Question {
    Question {
        step_id: step.into(),
        prompt: "Type the last 4 characters of the new drive's serial".into(),
        kind: QuestionKind::TypeExact {
            expected: expected.into(),
        },
    }
}

fn step(id: &str, kind: &str, number: usize, text: &str, argv: Option<&[&str]>) -> StepView {
    StepView {
        id: id.into(),
        kind: kind.into(),
        number,
        total: 8,
        text: text.into(),
        argv: argv.map(|a| a.iter().map(|s| s.to_string()).collect()),
    }
}

fn err_text(result: anyhow::Result<impl std::fmt::Debug>) -> String {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn yes_no_answers_are_read_in_any_case() {
    for (text, want) in [
        ("yes", Some(Answer::Yes)),
        ("Y", Some(Answer::Yes)),
        (" YES ", Some(Answer::Yes)),
        ("no", Some(Answer::No)),
        ("N", Some(Answer::No)),
        ("nO", Some(Answer::No)),
        ("maybe", None),
        ("", None),
        ("0003", None),
    ] {
        let (mut op, _) = operator(&[("pull", &[text])], false);
        let got = op.ask(&yes_no("pull", "Is the drive out?"));
        match want {
            Some(want) => assert_eq!(got.ok(), Some(want), "{text:?}"),
            None => {
                let err = err_text(got);
                assert!(
                    err.contains("is not yes or no") && err.contains("`pull`"),
                    "{text:?}: {err}"
                );
            }
        }
    }
}

#[test]
fn answers_are_consumed_per_step_in_order() {
    let (mut op, buf) = operator(&[("add", &["0002", "0003"]), ("pull", &["yes"])], false);
    assert_eq!(
        op.ask(&type_exact("add", "0003")).ok(),
        Some(Answer::Text("0002".into()))
    );
    assert_eq!(op.ask(&yes_no("pull", "Out?")).ok(), Some(Answer::Yes));
    assert_eq!(
        op.ask(&type_exact("add", "0003")).ok(),
        Some(Answer::Text("0003".into()))
    );
    assert!(op.finish().is_ok());
    assert_eq!(
        buf.contents(),
        "  ? Type the last 4 characters of the new drive's serial > 0002 (scripted)\n\
         \x20 ? Out? > yes (scripted)\n\
         \x20 ? Type the last 4 characters of the new drive's serial > 0003 (scripted)\n"
    );
}

#[test]
fn missing_answer_names_the_step_and_question() {
    let (mut op, buf) = operator(&[("pull", &["yes"])], false);
    let err = err_text(op.ask(&yes_no("antistatic", "Is the wrist strap on?")));
    assert_eq!(
        err,
        "no scripted answer for step `antistatic`: it asked \"Is the wrist strap on?\"; add \
         `antistatic = \"...\"` to the answers file"
    );
    assert_eq!(buf.contents(), "", "nothing made up in the transcript");
}

#[test]
fn running_out_of_a_list_names_the_step() {
    let (mut op, _) = operator(&[("add", &["0003"])], false);
    assert!(op.ask(&type_exact("add", "0003")).is_ok());
    let err = err_text(op.ask(&type_exact("add", "0003")));
    assert!(
        err.starts_with("no scripted answer left for step `add`")
            && err.contains("all 1 of its answers"),
        "{err}"
    );
}

#[test]
fn leftover_answers_fail_finish_and_are_all_listed() {
    let (mut op, _) = operator(
        &[
            ("pul", &["yes"]),
            ("add", &["0002", "0003"]),
            ("zzz", &["no"]),
        ],
        false,
    );
    op.show_step(&step("pull", "physical", 5, "Pull it.", None))
        .expect("transcript");
    op.show_step(&step("add", "command", 7, "Add it.", None))
        .expect("transcript");
    assert!(op.ask(&type_exact("add", "0003")).is_ok());
    let err = err_text(op.finish());
    assert_eq!(
        err,
        "answers left over for `add` (1 of 2 unused), `pul` (did you mean `pull`?), `zzz`: the \
         run never asked for them, so the answers file does not match the runbook; remove them \
         or fix the step ids"
    );
}

#[test]
fn leftover_answers_are_fine_after_a_halt() {
    let (mut op, _) = operator(&[("rebuild", &["yes"])], false);
    op.halted(&HaltReport {
        step_id: "pull".into(),
        headline: "survivor degraded".into(),
        details: vec![],
        guidance: String::new(),
    });
    assert!(op.finish().is_ok());
}

#[test]
fn simulated_technician_answers_what_the_step_asks() {
    let (mut op, buf) = operator(&[("pull", &["no"])], true);
    assert_eq!(
        op.ask(&yes_no("antistatic", "Strap on?")).ok(),
        Some(Answer::Yes)
    );
    assert_eq!(
        op.ask(&type_exact("add", "0003")).ok(),
        Some(Answer::Text("0003".into()))
    );
    // A scripted answer still wins over the simulated technician.
    assert_eq!(op.ask(&yes_no("pull", "Out?")).ok(), Some(Answer::No));
    assert!(op.finish().is_ok());
    assert_eq!(
        buf.contents(),
        "  ? Strap on? > yes (simulated technician)\n\
         \x20 ? Type the last 4 characters of the new drive's serial > 0003 (simulated technician)\n\
         \x20 ? Out? > no (scripted)\n"
    );
}

#[test]
fn simulated_technician_still_reports_leftovers() {
    let (mut op, _) = operator(&[("insert", &["yes"])], true);
    let err = err_text(op.finish());
    assert!(err.starts_with("answers left over for `insert`"), "{err}");
}

#[test]
fn step_ids_are_checked_against_the_runbook() {
    let (op, _) = operator(&[("pul", &["yes"]), ("add", &["0003"])], false);
    assert!(op.check_step_ids(["pull", "add"].into_iter()).is_err());
    let err = err_text(op.check_step_ids(["antistatic", "pull", "add"]));
    assert_eq!(
        err,
        "answers for steps the runbook does not have: `pul` (did you mean `pull`?)"
    );
    let (op, _) = operator(&[("pull", &["yes"])], false);
    assert!(op.check_step_ids(["pull", "add"]).is_ok());
}

/// Expected transcripts, one table row per operator call sequence.
#[test]
fn transcripts() {
    type Script = fn(&mut ScriptedOperator);
    let cases: [(&str, Script, &str); 7] = [
        (
            "command step with argv",
            |op| {
                op.show_step(&step(
                    "fail",
                    "command",
                    3,
                    "Mark sdb failed in md0.",
                    Some(&["mdadm", "/dev/md0", "--fail", "/dev/sdb"]),
                ))
                .expect("transcript");
            },
            "step 3/8 [fail] command: Mark sdb failed in md0.\n  $ mdadm /dev/md0 --fail /dev/sdb\n",
        ),
        (
            "multi-line text and hostile strings",
            |op| {
                op.show_step(&step(
                    "pull",
                    "physical",
                    5,
                    "Pull the drive in bay 1.\n\nSerial EVIL\x1b[2J.\n",
                    None,
                ))
                .expect("transcript");
            },
            "step 5/8 [pull] physical: Pull the drive in bay 1.\n\n    Serial EVIL?[2J.\n",
        ),
        (
            "empty text",
            |op| {
                op.show_step(&step("locate", "locate", 4, "", None))
                    .expect("transcript");
            },
            "step 4/8 [locate] locate\n",
        ),
        (
            "health panel",
            |op| {
                op.health(&[
                    PanelLine {
                        role: "survivor".into(),
                        drive: "sda (serial S3Z1NB0K100001, bay 0)".into(),
                        state: "in-sync".into(),
                        ok: true,
                    },
                    PanelLine {
                        role: "target".into(),
                        drive: "sdb (serial S3Z1NB0K100002, bay 1)".into(),
                        state: "faulty".into(),
                        ok: false,
                    },
                ]);
                op.health(&[]);
            },
            "  health:\n\
             \x20   OK  survivor  sda (serial S3Z1NB0K100001, bay 0)  in-sync\n\
             \x20   !!  target    sdb (serial S3Z1NB0K100002, bay 1)  faulty\n\
             \x20 health: (no drives)\n",
        ),
        (
            "notes",
            |op| {
                op.note(NoteLevel::Info, "taking a baseline");
                op.note(NoteLevel::Good, "sdb is faulty as expected");
                op.note(NoteLevel::Warn, "SMART is slow on\nsda");
            },
            "  info: taking a baseline\n  ok: sdb is faulty as expected\n  ! warn: SMART is slow on sda\n",
        ),
        (
            "progress every 10% and on label change",
            |op| {
                for i in 0u32..=400 {
                    op.progress(&Progress {
                        step_id: "rebuild".into(),
                        label: "rebuild".into(),
                        fraction: Some(f64::from(i) / 1000.0),
                        eta: Some(Duration::from_secs(8000 - 10 * u64::from(i))),
                        ..Progress::default()
                    });
                }
                for _ in 0..3 {
                    op.progress(&Progress {
                        step_id: "rebuild".into(),
                        label: "watching survivors".into(),
                        fraction: None,
                        eta: None,
                        ..Progress::default()
                    });
                }
            },
            "  ~ rebuild: 0% (about 2h 13m 20s left)\n\
             \x20 ~ rebuild: 10% (about 1h 56m 40s left)\n\
             \x20 ~ rebuild: 20% (about 1h 40m left)\n\
             \x20 ~ rebuild: 30% (about 1h 23m 20s left)\n\
             \x20 ~ rebuild: 40% (about 1h 6m 40s left)\n\
             \x20 ~ watching survivors\n",
        ),
        (
            "halt block",
            |op| {
                op.halted(&HaltReport {
                    step_id: "pull".into(),
                    headline: "survivor sda degraded while the target was pulled".into(),
                    details: vec![
                        "sda (bay 0): smart current_pending_sector 0 -> 8".into(),
                        "sda (bay 0): model EVIL\x1b[2J".into(),
                    ],
                    guidance: "STOP. Take your hands out of the chassis.\n\nCall the on-call storage lead.\n"
                        .into(),
                });
            },
            "HALT at step pull: survivor sda degraded while the target was pulled\n\
             \x20 sda (bay 0): smart current_pending_sector 0 -> 8\n\
             \x20 sda (bay 0): model EVIL?[2J\n\
             \x20 guidance:\n\
             \x20   STOP. Take your hands out of the chassis.\n\
             \n\
             \x20   Call the on-call storage lead.\n",
        ),
    ];
    for (name, script, want) in cases {
        let (mut op, buf) = operator(&[], false);
        script(&mut op);
        assert!(op.finish().is_ok(), "{name}");
        assert_eq!(buf.contents(), want, "{name}");
    }
}

#[test]
fn halt_transcript_without_details_or_guidance() {
    let lines = halt_transcript(&HaltReport {
        step_id: "preflight".into(),
        headline: "backup is 3 days old".into(),
        details: vec![],
        guidance: "  \n".into(),
    });
    assert_eq!(lines, vec!["HALT at step preflight: backup is 3 days old"]);
}

#[test]
fn a_failed_transcript_write_fails_finish() {
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut op = ScriptedOperator::new(BTreeMap::new(), true, Box::new(Broken));
    op.note(NoteLevel::Info, "hello");
    assert_eq!(
        err_text(op.finish()),
        "cannot write the transcript: disk full"
    );
    let mut op = ScriptedOperator::new(BTreeMap::new(), true, Box::new(Broken));
    assert!(
        op.show_step(&step("pull", "physical", 1, "x", None))
            .is_err()
    );
}

#[test]
fn answers_file_parses_strings_booleans_and_lists() {
    let src = "# answers for the md mirror swap\n\
               antistatic = \"yes\"\n\
               pull = true\n\
               keep = false\n\
               add = [\"0002\", \"0003\"]\n\
               \"odd id\" = \"n\"\n\
               empty = []\n";
    let got = parse_answers(Path::new("a.toml"), src).expect("valid answers");
    assert_eq!(
        got,
        answers(&[
            ("antistatic", &["yes"]),
            ("pull", &["yes"]),
            ("keep", &["no"]),
            ("add", &["0002", "0003"]),
            ("odd id", &["n"]),
            ("empty", &[]),
        ])
    );
}

#[test]
fn answers_file_errors_point_at_path_and_line() {
    for (src, want) in [
        (
            "pull = \"yes\"\nadd = 3\n",
            "error: the answer for step `add` is a number\n \
             --> answers.toml:2:7\n  |\n2 | add = 3\n  |       ^\n  = help: write it in \
             quotes, `\"3\"`: answers are text, and a number would lose leading zeros",
        ),
        (
            "[pull]\nanswer = \"yes\"\n",
            "error: the answers for step `pull` are a table\n --> answers.toml:1:1",
        ),
        (
            "add = [\"0002\", 3]\n",
            "error: the answer for step `add` is a number\n --> answers.toml:1:16",
        ),
        (
            "add = [[\"0002\"]]\n",
            "error: the answers for step `add` nest a list in a list\n --> answers.toml:1:8",
        ),
        (
            "when = 2024-01-01\n",
            "error: the answer for step `when` is a date\n --> answers.toml:1:8",
        ),
    ] {
        let err = err_text(parse_answers(Path::new("answers.toml"), src));
        assert!(err.starts_with(want), "{src:?}:\n{err}");
    }
}

#[test]
fn answers_file_reports_every_problem() {
    let err = err_text(parse_answers(
        Path::new("answers.toml"),
        "a = 1\nb = \"yes\"\nc = 2.5\n",
    ));
    assert!(err.contains("answers.toml:1:5"), "{err}");
    assert!(err.contains("answers.toml:3:5"), "{err}");
}

#[test]
fn answers_file_syntax_error_names_path_and_line() {
    for (src, at) in [
        ("pull = \"yes\"\nadd = \"0003\n", "answers.toml:2:"),
        ("pull = \"yes\"\npull = \"no\"\n", "answers.toml:2:1"),
        ("pull \"yes\"\n", "answers.toml:1:"),
        ("add = 0003\n", "answers.toml:1:7"),
    ] {
        let err = err_text(parse_answers(Path::new("answers.toml"), src));
        assert!(
            err.starts_with("error: invalid answers file: "),
            "{src:?}:\n{err}"
        );
        assert!(err.contains(at), "{src:?}:\n{err}");
    }
}

#[test]
fn leading_zero_syntax_error_says_to_quote() {
    let err = err_text(parse_answers(Path::new("answers.toml"), "add = 0003\n"));
    assert!(
        err.ends_with("= help: write the answer in quotes: `\"0003\"`"),
        "{err}"
    );
}

#[test]
fn duplicate_key_syntax_error_suggests_a_list() {
    let err = err_text(parse_answers(
        Path::new("answers.toml"),
        "add = \"0002\"\nadd = \"0003\"\n",
    ));
    assert!(err.contains("answers.toml:2:1"), "{err}");
    assert!(
        err.contains("a step asked several times takes a list"),
        "{err}"
    );
}

#[test]
fn unreadable_answers_file_names_the_path() {
    let buf = SharedBuffer::new();
    let err = err_text(
        ScriptedOperator::from_file(Path::new("/nonexistent/answers.toml"), Box::new(buf))
            .map(|_| ()),
    );
    assert!(
        err.starts_with("error: cannot read answers file `/nonexistent/answers.toml`"),
        "{err}"
    );
    assert!(err.ends_with(" --> /nonexistent/answers.toml"), "{err}");
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/answers")
        .join(name)
}

#[test]
fn shipped_answers_files_load() {
    for (name, want) in [
        (
            "md-replace-member.toml",
            answers(&[
                ("antistatic", &["yes"]),
                ("pull", &["yes"]),
                ("insert", &["yes"]),
                ("add", &["0003"]),
            ]),
        ),
        (
            "wrong-serial.toml",
            answers(&[
                ("antistatic", &["yes"]),
                ("pull", &["yes"]),
                ("insert", &["yes"]),
                ("add", &["0002"]),
            ]),
        ),
        (
            "asked-twice.toml",
            answers(&[
                ("antistatic", &["y"]),
                ("pull", &["Y"]),
                ("insert", &["yes", "yes"]),
                ("add", &["0002", "0003"]),
            ]),
        ),
        ("decline.toml", answers(&[("antistatic", &["no"])])),
    ] {
        let got = super::load_answers(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn shipped_bad_answers_files_point_at_the_line() {
    for (name, line) in [
        ("bad/number.toml", 2),
        ("bad/leading-zero.toml", 2),
        ("bad/table.toml", 1),
        ("bad/duplicate.toml", 2),
    ] {
        let path = fixture(name);
        let err =
            err_text(ScriptedOperator::from_file(&path, Box::new(SharedBuffer::new())).map(|_| ()));
        let at = format!("--> {}:{line}:", path.display());
        assert!(err.contains(&at), "{name}: want {at}\n{err}");
    }
}

/// A whole healthy swap as the engine would drive it, answered from the
/// shipped file: every answer is used and the transcript reads top to bottom.
#[test]
fn healthy_swap_from_the_shipped_answers_file() {
    let buf = SharedBuffer::new();
    let mut op =
        ScriptedOperator::from_file(&fixture("md-replace-member.toml"), Box::new(buf.clone()))
            .expect("answers load");
    op.check_step_ids([
        "antistatic",
        "fail",
        "remove",
        "locate",
        "pull",
        "insert",
        "add",
        "rebuild",
    ])
    .expect("ids match the runbook");
    op.show_step(&step(
        "antistatic",
        "confirm",
        1,
        "Put on the wrist strap.",
        None,
    ))
    .expect("transcript");
    assert_eq!(
        op.ask(&yes_no("antistatic", "Is the strap on?")).ok(),
        Some(Answer::Yes)
    );
    op.show_step(&step("pull", "physical", 5, "Pull bay 1.", None))
        .expect("transcript");
    assert_eq!(
        op.ask(&yes_no("pull", "Is it out?")).ok(),
        Some(Answer::Yes)
    );
    op.show_step(&step(
        "insert",
        "physical",
        6,
        "Insert the new drive.",
        None,
    ))
    .expect("transcript");
    assert_eq!(
        op.ask(&yes_no("insert", "Is it in?")).ok(),
        Some(Answer::Yes)
    );
    op.show_step(&step(
        "add",
        "command",
        7,
        "Add the new drive.",
        Some(&["mdadm", "/dev/md0", "--add", "/dev/sdc"]),
    ))
    .expect("transcript");
    assert_eq!(
        op.ask(&type_exact("add", "0003")).ok(),
        Some(Answer::Text("0003".into()))
    );
    op.note(NoteLevel::Good, "sdc is rebuilding");
    op.finish().expect("every answer used");
    assert_eq!(
        buf.contents(),
        "step 1/8 [antistatic] confirm: Put on the wrist strap.\n\
         \x20 ? Is the strap on? > yes (scripted)\n\
         step 5/8 [pull] physical: Pull bay 1.\n\
         \x20 ? Is it out? > yes (scripted)\n\
         step 6/8 [insert] physical: Insert the new drive.\n\
         \x20 ? Is it in? > yes (scripted)\n\
         step 7/8 [add] command: Add the new drive.\n\
         \x20 $ mdadm /dev/md0 --add /dev/sdc\n\
         \x20 ? Type the last 4 characters of the new drive's serial > 0003 (scripted)\n\
         \x20 ok: sdc is rebuilding\n"
    );
}

#[test]
fn a_reason_to_override_is_never_made_up_by_the_simulated_technician() {
    let reason = Question {
        step_id: "preflight".into(),
        prompt: "type the reason".into(),
        kind: QuestionKind::Reason,
    };
    let (mut op, buf) = operator(&[], true);
    assert_eq!(op.ask(&reason).ok(), Some(Answer::Text(String::new())));
    assert!(buf.contents().contains("(simulated technician)"));

    let (mut op, _) = operator(&[("preflight", &["ticket OPS-1: lead approved"])], false);
    assert_eq!(
        op.ask(&reason).ok(),
        Some(Answer::Text("ticket OPS-1: lead approved".into()))
    );
    // Without a scripted answer and no simulated technician: an error.
    let (mut op, _) = operator(&[], false);
    assert!(err_text(op.ask(&reason)).contains("add `preflight = \"...\"`"));
}
