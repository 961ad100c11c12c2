//! Whole-process tests of the CI commands: `test` (with `--junit`, `--json`,
//! `--mutate`), `plan`, `completions` and `man`.
//!
//! The JUnit report is checked with a real XML parser (quick-xml) against
//! the structure the strict JUnit schema (Apache Ant's JUnit task, the
//! format GitLab and Jenkins read) requires: see `check_junit`.

use std::path::{Path, PathBuf};

use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};

mod common;
use common::{Done, root};

/// Run swapguard in `dir` (the repository root when `None`).
fn swapguard(dir: Option<&Path>, args: &[&str]) -> Done {
    common::swapguard_bare(args)
        .cwd(dir.map_or_else(root, Path::to_path_buf))
        .run()
}

fn shipped(rel: &str) -> String {
    std::fs::read_to_string(root().join("runbooks").join(rel)).unwrap()
}

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn shipped_scenario_count() -> usize {
    let mut n = 0;
    for dir in std::fs::read_dir(root().join("runbooks/scenarios")).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            if f.unwrap().path().extension().is_some_and(|e| e == "toml") {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn shipped_runbooks_pass() {
    let n = shipped_scenario_count();
    assert!(n >= 13, "{n}");
    let done = swapguard(None, &["test", "runbooks/"])
        .code(0)
        .stdout_has(&format!("{n} scenarios: {n} ok;"))
        .stdout_has("0 lint errors, 0 warnings");
    let runbooks = std::fs::read_dir(root().join("runbooks"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count();
    assert!(
        runbooks >= 8,
        "md, zfs, btrfs and restore runbooks: {runbooks}"
    );
    assert_eq!(
        done.stdout.matches("  ok    lint: lint clean").count(),
        runbooks
    );
    assert!(!done.stdout.contains("FAIL"), "{}", done.stdout);
    assert!(!done.stdout.contains("warning:"), "{}", done.stdout);
    for line in done.stdout.lines().filter(|l| l.contains(".toml — ")) {
        assert!(line.starts_with("  ok    runbooks/scenarios/"), "{line}");
    }
}

#[test]
fn default_path_is_runbooks() {
    let n = shipped_scenario_count();
    swapguard(None, &["test"])
        .code(0)
        .stdout_has(&format!("{n} scenarios: {n} ok;"));
}

#[test]
fn a_wrong_expectation_fails_with_a_clear_pointer() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "runbooks/md-replace-member.toml",
        &shipped("md-replace-member.toml"),
    );
    write(
        dir.path(),
        "runbooks/scenarios/md-replace-member/healthy.toml",
        &shipped("scenarios/md-replace-member/healthy.toml"),
    );
    write(
        dir.path(),
        "runbooks/scenarios/md-replace-member/wrong.toml",
        &shipped("scenarios/md-replace-member/wrong-drive-pulled.toml")
            .replace("step = \"pull\"", "step = \"insert\""),
    );
    let done = swapguard(Some(dir.path()), &["test"])
        .code(7)
        .stdout_has("  ok    runbooks/scenarios/md-replace-member/healthy.toml — ")
        .stdout_has("  FAIL  runbooks/scenarios/md-replace-member/wrong.toml — technician pulls the survivor instead of the target: halted at `pull`")
        .stdout_has("        expected: halted at `insert` naming `S3Z1NB0K100001`")
        .stdout_has("        - expected the run to stop at step `insert`, it stopped at `pull`")
        .stdout_has("        transcript (last 20 lines):")
        .stdout_has("2 scenarios: 1 ok, 1 FAILED;");
    // The tail shows the halt itself.
    assert!(
        done.stdout.contains("        | ") && done.stdout.contains("S3Z1NB0K100001"),
        "{}",
        done.stdout
    );
}

#[test]
fn a_runbook_that_fails_lint_fails_the_test_and_skips_its_scenarios() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "runbooks/md-replace-member.toml",
        &shipped("md-replace-member.toml").replacen("smart = ", "smrt = ", 1),
    );
    write(
        dir.path(),
        "runbooks/scenarios/md-replace-member/healthy.toml",
        &shipped("scenarios/md-replace-member/healthy.toml"),
    );
    swapguard(Some(dir.path()), &["test"])
        .code(2)
        .stdout_has("  FAIL  lint: 1 error, 0 warnings in 1 file")
        .stdout_has("unknown key `smrt`")
        .stdout_has("  skip  runbooks/scenarios/md-replace-member/healthy.toml")
        .stdout_has("1 scenario: 0 ok, 1 skipped;");
}

#[test]
fn broken_scenario_is_an_error_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "runbooks/md-replace-hot.toml",
        &shipped("md-replace-hot.toml"),
    );
    write(
        dir.path(),
        "runbooks/scenarios/md-replace-hot/typo.toml",
        &shipped("scenarios/md-replace-hot/healthy.toml").replace("rebuild_time", "rebuild_tme"),
    );
    swapguard(Some(dir.path()), &["test"])
        .code(2)
        .stdout_has("  ERROR runbooks/scenarios/md-replace-hot/typo.toml")
        .stdout_has("unknown key `rebuild_tme`")
        .stdout_has("did you mean `rebuild_time`?");
}

#[test]
fn mutate_passes_the_shipped_runbooks() {
    let done = swapguard(None, &["test", "--mutate", "runbooks"]).code(0);
    let lines: Vec<&str> = done
        .stdout
        .lines()
        .filter(|l| l.starts_with("  ") && l.contains("mutations: "))
        .collect();
    // Every shipped runbook with scenarios: md, zfs, btrfs and the restore.
    let with_scenarios = std::fs::read_dir(root().join("runbooks/scenarios"))
        .unwrap()
        .count();
    assert!(with_scenarios >= 8, "{with_scenarios}");
    assert_eq!(lines.len(), with_scenarios, "{}", done.stdout);
    for l in lines {
        assert!(l.starts_with("  ok    mutations: "), "{l}");
    }
    assert!(done.stdout.contains(" mutations: "), "{}", done.stdout);
    assert!(!done.stdout.contains("LET THROUGH"), "{}", done.stdout);
}

#[test]
fn mutate_catches_a_runbook_whose_guard_lets_a_degrading_survivor_through() {
    let rb = "tests/fixtures/ci/loosened/member-tolerates-counters.toml";
    // Every hand-written scenario passes: the hole does not show...
    swapguard(None, &["test", rb]).code(0);
    // ...until the derived variants run.
    let done = swapguard(None, &["test", "--mutate", rb])
        .code(7)
        .stdout_has("  FAIL  mutations: ")
        .stdout_has("  FAIL  step `pull`: survivor sda (serial S3Z1NB0K100001): `smart.current_pending_sector` rises 0 → 8")
        .stdout_has("        - step `pull` lets a degrading survivor through; the run ended completed")
        .stdout_has("LET THROUGH");
    // Every step of the runbook is named, for both counters.
    for step in [
        "antistatic",
        "fail",
        "remove",
        "locate",
        "pull",
        "insert",
        "add",
        "rebuild",
    ] {
        for counter in ["md.errors", "smart.current_pending_sector"] {
            let want = format!(
                "  FAIL  step `{step}`: survivor sda (serial S3Z1NB0K100001): `{counter}` rises"
            );
            assert!(done.stdout.contains(&want), "{want}\n{}", done.stdout);
        }
    }
    // The wrong pull is still caught: the guard was loosened for counters only.
    assert!(
        !done
            .stdout
            .contains("does not notice the wrong drive pulled"),
        "{}",
        done.stdout
    );
}

#[test]
fn mutate_catches_a_runbook_that_accepts_any_new_drive() {
    swapguard(
        None,
        &[
            "test",
            "--mutate",
            "tests/fixtures/ci/loosened/member-accepts-any-drive.toml",
        ],
    )
    .code(7)
    .stdout_has("  FAIL  step `insert`: the new drive S3Z1NB0K900003 is not blank")
    .stdout_has("step `insert` accepts a new drive that is not blank; the run ended completed");
}

#[test]
fn a_runbook_without_a_failing_survivor_scenario_is_warned_about() {
    let rb = "tests/fixtures/ci/loosened/member-tolerates-counters.toml";
    swapguard(None, &["test", rb])
        .code(0)
        .stdout_has("has no scenario in which a survivor fails");
    swapguard(None, &["test", "--deny-warnings", rb]).code(2);
    swapguard(None, &["test", "--deny-warnings", "runbooks"]).code(0);
}

#[test]
fn json_report_is_machine_readable() {
    let done = swapguard(None, &["test", "--json", "--mutate", "runbooks"]).code(0);
    let v: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["ok"], true);
    let n = shipped_scenario_count() as u64;
    assert_eq!(v["summary"]["scenarios"], n);
    assert_eq!(v["summary"]["passed"], n);
    assert!(v["summary"]["mutations"].as_u64().unwrap() >= 30);
    assert_eq!(v["summary"]["mutations"], v["summary"]["mutations_halted"]);
    let member = v["runbooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "runbooks/md-replace-member.toml")
        .unwrap();
    assert_eq!(member["lint"]["diagnostics"].as_array().unwrap().len(), 0);
    let healthy = member["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["scenario"] == "runbooks/scenarios/md-replace-member/healthy.toml")
        .unwrap();
    assert_eq!(healthy["verdict"], "pass");
    assert_eq!(healthy["expected"]["outcome"], "completed");
    assert_eq!(healthy["got"]["outcome"], "completed");
    assert!(!healthy["transcript_tail"].as_array().unwrap().is_empty());
    let m = member["mutations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["step"] == "pull" && m["mutation"]["kind"] == "wrong-drive-pulled")
        .unwrap();
    assert_eq!(m["verdict"], "pass");
    assert_eq!(m["got"]["outcome"], "halted");
    assert_eq!(m["got"]["step"], "pull");
}

// ---- JUnit ------------------------------------------------------------

/// An element of the parsed document.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
    text: String,
}

impl Node {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parse with quick-xml, failing on anything malformed: mismatched tags,
/// bad escapes, unknown entities, duplicate attributes, text outside the
/// root.
fn parse_xml(xml: &str) -> Node {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Node> = vec![Node::default()];
    let mut saw_decl = false;
    let attrs_of = |e: &quick_xml::events::BytesStart| -> Vec<(String, String)> {
        e.attributes()
            .map(|a| {
                let a = a.expect("a well-formed attribute");
                (
                    String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                    a.normalized_value(XmlVersion::Explicit1_0)
                        .expect("a valid escape")
                        .into_owned(),
                )
            })
            .collect()
    };
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Decl(d) => {
                assert_eq!(d.version().unwrap().as_ref(), b"1.0");
                assert_eq!(d.encoding().unwrap().unwrap().as_ref(), b"UTF-8");
                saw_decl = true;
            }
            Event::Start(e) => stack.push(Node {
                name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
                attrs: attrs_of(&e),
                ..Node::default()
            }),
            Event::Empty(e) => {
                let node = Node {
                    name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
                    attrs: attrs_of(&e),
                    ..Node::default()
                };
                stack.last_mut().unwrap().children.push(node);
            }
            Event::End(_) => {
                let node = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(node);
            }
            Event::Text(t) => stack
                .last_mut()
                .unwrap()
                .text
                .push_str(&t.decode().unwrap()),
            Event::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    r.resolve_char_ref().unwrap().unwrap()
                } else {
                    match r.decode().unwrap().as_ref() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => panic!("undefined entity `&{other};`"),
                    }
                };
                stack.last_mut().unwrap().text.push(c);
            }
            Event::Eof => break,
            other => panic!("unexpected XML event {other:?}"),
        }
    }
    assert!(saw_decl, "no XML declaration");
    let mut top = stack.pop().unwrap();
    assert!(stack.is_empty(), "unclosed elements");
    assert!(top.text.trim().is_empty(), "text outside the root");
    assert_eq!(top.children.len(), 1, "one root element");
    top.children.pop().unwrap()
}

fn is_int(s: &str) -> bool {
    !s.is_empty()
        && s.trim_start_matches('-')
            .chars()
            .all(|c| c.is_ascii_digit())
}

fn is_decimal(s: &str) -> bool {
    let (whole, frac) = s.split_once('.').unwrap_or((s, "0"));
    is_int(whole) && !frac.is_empty() && frac.chars().all(|c| c.is_ascii_digit())
}

/// `YYYY-MM-DDTHH:MM:SS`, no zone (the schema's ISO8601_DATETIME_PATTERN).
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

#[track_caller]
fn only_attrs(node: &Node, required: &[&str], optional: &[&str]) {
    for r in required {
        assert!(node.attr(r).is_some(), "<{}> lacks `{r}`", node.name);
    }
    for (k, _) in &node.attrs {
        assert!(
            required.contains(&k.as_str()) || optional.contains(&k.as_str()),
            "<{}> has `{k}`, which the schema does not allow",
            node.name
        );
    }
}

/// Check everything the strict JUnit schema requires; return the counts of
/// (tests, failures, errors, skipped) over all suites.
fn check_junit(doc: &Node) -> (usize, usize, usize, usize) {
    assert_eq!(doc.name, "testsuites");
    assert!(doc.attrs.is_empty(), "<testsuites> takes no attributes");
    assert!(doc.text.trim().is_empty());
    let mut totals = (0, 0, 0, 0);
    for (i, suite) in doc.children.iter().enumerate() {
        assert_eq!(suite.name, "testsuite");
        only_attrs(
            suite,
            &[
                "name",
                "package",
                "id",
                "hostname",
                "timestamp",
                "tests",
                "failures",
                "errors",
                "time",
            ],
            &["skipped"],
        );
        assert!(!suite.attr("name").unwrap().trim().is_empty());
        assert!(!suite.attr("hostname").unwrap().trim().is_empty());
        assert_eq!(suite.attr("id").unwrap(), i.to_string(), "ids count from 0");
        assert!(
            is_timestamp(suite.attr("timestamp").unwrap()),
            "{:?}",
            suite.attr("timestamp")
        );
        assert!(is_decimal(suite.attr("time").unwrap()));
        for a in ["tests", "failures", "errors", "skipped"] {
            assert!(is_int(suite.attr(a).unwrap_or("0")), "{a}");
        }
        let names: Vec<&str> = suite.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.first(), Some(&"properties"), "{names:?}");
        assert_eq!(
            &names[names.len() - 2..],
            ["system-out", "system-err"],
            "{names:?}"
        );
        let cases = &suite.children[1..suite.children.len() - 2];
        for p in &suite.children[0].children {
            assert_eq!(p.name, "property");
            only_attrs(p, &["name", "value"], &[]);
            assert!(!p.attr("name").unwrap().is_empty());
        }
        let (mut failures, mut errors, mut skipped) = (0, 0, 0);
        for case in cases {
            assert_eq!(case.name, "testcase");
            only_attrs(case, &["name", "classname", "time"], &[]);
            assert!(is_decimal(case.attr("time").unwrap()));
            assert!(case.children.len() <= 1, "at most one result in a testcase");
            if let Some(result) = case.children.first() {
                assert!(result.children.is_empty(), "results hold text only");
                match result.name.as_str() {
                    "failure" => {
                        only_attrs(result, &["type"], &["message"]);
                        failures += 1;
                    }
                    "error" => {
                        only_attrs(result, &["type"], &["message"]);
                        errors += 1;
                    }
                    "skipped" => skipped += 1,
                    other => panic!("<{other}> in a testcase"),
                }
            }
        }
        assert_eq!(suite.attr("tests").unwrap(), cases.len().to_string());
        assert_eq!(suite.attr("failures").unwrap(), failures.to_string());
        assert_eq!(suite.attr("errors").unwrap(), errors.to_string());
        assert_eq!(suite.attr("skipped").unwrap_or("0"), skipped.to_string());
        totals.0 += cases.len();
        totals.1 += failures;
        totals.2 += errors;
        totals.3 += skipped;
    }
    totals
}

#[test]
fn junit_report_is_valid_for_passes_failures_errors_and_skips() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "runbooks/md-replace-member.toml",
        &shipped("md-replace-member.toml"),
    );
    write(
        d,
        "runbooks/scenarios/md-replace-member/healthy.toml",
        &shipped("scenarios/md-replace-member/healthy.toml"),
    );
    // A failure whose name and text need escaping.
    write(
        d,
        "runbooks/scenarios/md-replace-member/wrong.toml",
        &shipped("scenarios/md-replace-member/wrong-drive-pulled.toml")
            .replace("step = \"pull\"", "step = \"insert\"")
            .replace(
                "name = \"technician pulls the survivor instead of the target\"",
                "name = \"wrong <expect> & \\\"quotes\\\" 'too'\"",
            ),
    );
    write(
        d,
        "runbooks/scenarios/md-replace-member/typo.toml",
        "[scenario]\nname = \"typo\"\nrunbok = 1\n",
    );
    // A runbook that fails lint; its scenario is skipped.
    write(
        d,
        "runbooks/md-replace-hot.toml",
        &shipped("md-replace-hot.toml").replacen("smart = ", "smrt = ", 1),
    );
    write(
        d,
        "runbooks/scenarios/md-replace-hot/healthy.toml",
        &shipped("scenarios/md-replace-hot/healthy.toml"),
    );
    swapguard(Some(d), &["test", "--mutate", "--junit", "report.xml"]).code(2);
    let xml = std::fs::read_to_string(d.join("report.xml")).unwrap();
    let doc = parse_xml(&xml);
    let (tests, failures, errors, skipped) = check_junit(&doc);
    // hot: lint (failure) + skipped scenario; member: lint, healthy, wrong
    // (failure), typo (error), and the healthy scenario's mutations.
    assert_eq!(doc.children.len(), 2);
    assert_eq!(failures, 2, "{xml}");
    assert_eq!(errors, 1, "{xml}");
    assert_eq!(skipped, 1, "{xml}");
    assert!(tests > 6 + 20, "{tests}\n{xml}");
    let member = doc
        .children
        .iter()
        .find(|s| s.attr("name") == Some("md-replace-member"))
        .unwrap();
    assert_eq!(
        member.attr("package"),
        Some("runbooks/md-replace-member.toml")
    );
    let wrong = member
        .children
        .iter()
        .find(|c| {
            c.attr("name")
                .is_some_and(|n| n.contains("wrong <expect> & \"quotes\" 'too'"))
        })
        .expect("the failing case, its name unescaped back");
    assert_eq!(wrong.attr("classname"), Some("md-replace-member.scenarios"));
    let failure = &wrong.children[0];
    assert_eq!(failure.name, "failure");
    assert_eq!(failure.attr("type"), Some("expectation"));
    assert!(
        failure
            .attr("message")
            .unwrap()
            .contains("expected the run to stop at step `insert`, it stopped at `pull`")
    );
    assert!(
        failure.text.contains("transcript (last 20 lines):"),
        "{}",
        failure.text
    );
    assert!(failure.text.contains("S3Z1NB0K100001"), "{}", failure.text);
    let mutations = member
        .children
        .iter()
        .filter(|c| c.attr("classname") == Some("md-replace-member.mutations"))
        .count();
    assert!(mutations >= 20, "{mutations}");
}

#[test]
fn junit_report_of_the_shipped_runbooks_is_valid_and_green() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("junit.xml");
    swapguard(
        None,
        &["test", "--mutate", "--junit", report.to_str().unwrap()],
    )
    .code(0);
    let doc = parse_xml(&std::fs::read_to_string(&report).unwrap());
    let (tests, failures, errors, skipped) = check_junit(&doc);
    assert_eq!((failures, errors, skipped), (0, 0, 0));
    assert!(tests >= 2 + shipped_scenario_count() + 30, "{tests}");
}

#[test]
fn junit_file_that_cannot_be_written_is_an_error() {
    swapguard(
        None,
        &["test", "--junit", "/nonexistent-swapguard/dir/report.xml"],
    )
    .code(1);
}

// ---- plan, completions, man ---------------------------------------------

#[test]
fn plan_prints_a_markdown_checklist() {
    let done = swapguard(None, &["plan", "runbooks/md-replace-member.toml"])
        .code(0)
        .stdout_has("1. [ ] **`antistatic`** (confirm)")
        .stdout_has("5. [ ] **`pull`** (physical: hands in the chassis)")
        .stdout_has("## If swapguard says STOP")
        .stdout_has("## Before you start")
        .stdout_has("- [ ] the target has a serial number or WWN (`target-identified`)")
        .stdout_has("LEDs: ");
    assert!(
        done.stdout
            .starts_with("# Replace one member of a Linux md array\n")
    );
}

#[test]
fn plan_of_a_broken_runbook_exits_2_with_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "bad.toml",
        &shipped("md-replace-member.toml").replacen("smart = ", "smrt = ", 1),
    );
    let done = swapguard(None, &["plan", path.to_str().unwrap()]).code(2);
    assert!(
        done.stderr.contains("unknown key `smrt`"),
        "{}",
        done.stderr
    );
    assert!(done.stdout.is_empty());
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F _swapguard"),
        ("zsh", "#compdef swapguard"),
        ("fish", "complete -c swapguard"),
    ] {
        let done = swapguard(None, &["completions", shell])
            .code(0)
            .stdout_has(marker);
        assert!(
            done.stdout.contains("mutate"),
            "{shell}: no `test --mutate`"
        );
    }
    swapguard(None, &["completions", "tcsh"]).code(2);
}

#[test]
fn man_page_from_the_cli_definitions() {
    swapguard(None, &["man"])
        .code(0)
        .stdout_has(".TH swapguard 1")
        .stdout_has("swapguard\\-test(1)");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    swapguard(None, &["man", "--dir", out.to_str().unwrap()]).code(0);
    for page in [
        "swapguard.1",
        "swapguard-test.1",
        "swapguard-plan.1",
        "swapguard-run.1",
    ] {
        let text = std::fs::read_to_string(out.join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
    let test_page = std::fs::read_to_string(out.join("swapguard-test.1")).unwrap();
    assert!(test_page.contains("\\-\\-junit"), "{test_page}");
    assert!(test_page.contains("Examples:"), "{test_page}");
}

#[test]
fn a_runbook_with_no_scenarios_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "runbooks/md-replace-member.toml",
        &shipped("md-replace-member.toml"),
    );
    swapguard(Some(dir.path()), &["test", "--mutate"])
        .code(0)
        .stdout_has("  warning: runbook `runbooks/md-replace-member.toml` has no scenarios: add them as `scenarios/md-replace-member/*.toml` beside it")
        .stdout_has("  warning: no scenario of `runbooks/md-replace-member.toml` completes, so there is nothing to mutate");
    swapguard(Some(dir.path()), &["test", "--deny-warnings"]).code(2);
}

#[test]
fn an_empty_folder_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let done = swapguard(Some(dir.path()), &["test", "."]).code(2);
    assert!(
        done.stderr.contains("no runbooks found in `.`"),
        "{}",
        done.stderr
    );
    swapguard(Some(dir.path()), &["test"]).code(2);
}
