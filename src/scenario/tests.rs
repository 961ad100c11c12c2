//! Tests of scenario files: the shipped ones, the bad fixtures, and the
//! pieces (sizes, durations, drive references, runbook cross-checks).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::parse_size;
use super::*;
use crate::backend::sim::names::Family;
use crate::health::model::MemberState;

fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/scenarios")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/scenarios")
        .join(name)
}

fn scenario_error(path: &Path) -> ScenarioError {
    let source = std::fs::read_to_string(path).expect("fixture readable");
    let err = parse(path, &source).expect_err("the fixture is bad");
    match err.downcast::<ScenarioError>() {
        Ok(e) => e,
        Err(e) => panic!("not a ScenarioError: {e}"),
    }
}

/// Step ids of the shipped runbooks (fixed by the runbook authors; the
/// runbooks are written on another branch, so they are listed here).

#[test]
fn every_shipped_scenario_parses_and_names_real_steps() {
    let mut count = 0;
    for folder in ["md-replace-member", "md-replace-hot", "restore-from-backup"] {
        let dir = shipped_dir().join(folder);
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("scenario folder")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        entries.sort();
        for path in entries {
            let source = std::fs::read_to_string(&path).expect("readable");
            let scenario = match parse(&path, &source) {
                Ok(s) => s,
                Err(e) => panic!("{}:\n{e}", path.display()),
            };
            let expected = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("runbooks")
                .join(format!("{folder}.toml"));
            assert_eq!(scenario.runbook, expected, "{}", path.display());
            let runbook = crate::runbook::load::load(&scenario.runbook)
                .expect("readable runbook")
                .runbook
                .expect("the shipped runbook loads");
            let problems = scenario.check_against(&runbook);
            assert!(
                problems.is_empty(),
                "{}:\n{}",
                path.display(),
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            if scenario.expect.outcome != Outcome::Completed {
                assert!(scenario.expect.step.is_some(), "{}", path.display());
            }
            count += 1;
        }
    }
    assert!(count >= 13, "every shipped scenario was checked ({count})");
}

#[test]
fn healthy_scenario_in_detail() {
    let path = shipped_dir().join("md-replace-member/healthy.toml");
    let source = std::fs::read_to_string(&path).expect("readable");
    let s = parse(&path, &source).expect("parses");
    assert_eq!(s.params.get("target").map(String::as_str), Some("sdb"));
    assert_eq!(
        s.array,
        ArraySpec {
            name: "md0".into(),
            level: Level::Raid1,
            raid_disks: 2,
            rebuild_time: Duration::from_secs(120),
            partition: None,
            mount: None,
            auto_rebuild: None,
            drive_group: None,
        }
    );
    let groups: Vec<(DriveGroup, String)> = s.drives.iter().map(|d| (d.group, d.label())).collect();
    assert_eq!(
        groups,
        [
            (DriveGroup::Member, "sda".to_string()),
            (DriveGroup::Member, "sdb".to_string()),
            (DriveGroup::Spare, "S3Z1NB0K900003".to_string()),
            (DriveGroup::Other, "nvme0n1".to_string()),
        ]
    );
    let sdb = &s.drives[1];
    assert_eq!(sdb.slot.as_deref(), Some("1"));
    assert_eq!(sdb.size_bytes, 960_000_000_000);
    assert_eq!(
        (sdb.state, sdb.smart_passed, sdb.blank),
        (MemberState::InSync, true, false)
    );
    assert_eq!(sdb.counters.get("smart.current_pending_sector"), Some(&0));
    let spare = &s.drives[2];
    assert_eq!((spare.blank, spare.family), (true, Family::Sd));
    assert_eq!(s.drives[3].counters.get("nvme.media_errors"), Some(&0));
    assert_eq!(s.technician, Technician::default());
    assert_eq!(
        s.expect,
        Expected {
            outcome: Outcome::Completed,
            step: None,
            reasons: vec![],
        }
    );
}

#[test]
fn events_resolve_to_drives_and_actions() {
    let path = shipped_dir().join("md-replace-member/incident-2019.toml");
    let source = std::fs::read_to_string(&path).expect("readable");
    let s = parse(&path, &source).expect("parses");
    assert_eq!(s.events.len(), 3);
    assert_eq!(s.events[0].during, During::Step("pull".into()));
    assert_eq!(s.events[0].after, Duration::from_millis(4500));
    assert_eq!(
        s.events[0].actions,
        [
            Action::Set {
                drive: 0,
                counter: "md.errors".into(),
                value: 4
            },
            Action::Set {
                drive: 0,
                counter: "smart.reported_uncorrect".into(),
                value: 9
            },
        ]
    );
    assert_eq!(
        s.events[1].actions,
        [
            Action::Set {
                drive: 0,
                counter: "md.bad_blocks".into(),
                value: 16
            },
            Action::Flags {
                drive: 0,
                flags: vec!["write_error".into(), "want_replacement".into()]
            },
        ]
    );
    assert_eq!(
        s.events[2].actions,
        [Action::SmartFailed(0), Action::Fail(0)]
    );

    let path = shipped_dir().join("md-replace-member/broken-drive-put-back.toml");
    let source = std::fs::read_to_string(&path).expect("readable");
    let s = parse(&path, &source).expect("parses");
    assert_eq!(s.events[0].actions, [Action::Insert(1)], "by serial");
    assert!(s.events[0].inserts() && !s.events[0].pulls());

    let path = shipped_dir().join("md-replace-member/smart-unreadable.toml");
    let source = std::fs::read_to_string(&path).expect("readable");
    let s = parse(&path, &source).expect("parses");
    assert_eq!(
        (s.events[0].during.clone(), s.events[0].after),
        (During::Baseline, Duration::ZERO)
    );
    assert_eq!(s.events[0].actions, [Action::Unreadable(Probe::Smart(0))]);

    let path = shipped_dir().join("md-replace-member/wrong-answer.toml");
    let source = std::fs::read_to_string(&path).expect("readable");
    let s = parse(&path, &source).expect("parses");
    assert_eq!(s.answers.get("add"), Some(&vec!["0002".to_string()]));
    assert_eq!(s.expect.outcome, Outcome::Aborted);
}

#[test]
fn bad_scenarios_point_at_the_mistake() {
    // (fixture, line, column, message, help)
    let cases: &[(&str, usize, usize, &str, Option<&str>)] = &[
        (
            "unknown-key.toml",
            10,
            70,
            "unknown key `smart_pased`",
            Some("did you mean `smart_passed`?"),
        ),
        ("bad-size.toml", 10, 62, "`960Q` has an unknown unit", None),
        (
            "unknown-drive-in-event.toml",
            16,
            9,
            "event 1 (during `pull`): no drive `sdx` in this scenario",
            Some("did you mean `sda`?"),
        ),
        (
            "bad-duration.toml",
            16,
            9,
            "`5 parsecs` is not a duration",
            None,
        ),
        (
            "bad-flag.toml",
            16,
            18,
            "event 1 (during `pull`): `write_eror` is not an md state flag",
            Some("did you mean `write_error`?"),
        ),
        (
            "dev-path.toml",
            11,
            11,
            "`dev` is a kernel name, not a path: `/dev/sdb`",
            Some("write `sdb`"),
        ),
        (
            "duplicate-serial.toml",
            11,
            3,
            "two drives have serial `S3Z1NB0K100001`",
            None,
        ),
        (
            "event-does-nothing.toml",
            14,
            1,
            "event 1 (during `pull`) does nothing",
            None,
        ),
        (
            "both-reasons.toml",
            14,
            1,
            "`[expect]` has both `reason` and `reasons`",
            None,
        ),
        ("missing-expect.toml", 1, 1, "missing field `expect`", None),
    ];
    for (name, line, column, message, help) in cases {
        let path = fixture(name);
        let err = scenario_error(&path);
        let d = &err.diagnostics[0];
        assert!(d.message.contains(message), "{name}: {}", d.message);
        assert_eq!((d.line, d.column), (*line, *column), "{name}:\n{d}");
        if let Some(help) = help {
            assert_eq!(d.help.as_deref(), Some(*help), "{name}");
        }
        assert!(
            d.to_string()
                .contains(&format!("{}:{line}:{column}", path.display()))
        );
    }
}

#[test]
fn several_problems_are_reported_together() {
    let source = r#"
[scenario]
name = "x"
runbook = "rb.toml"

[array]
name = "md0"
level = "raid1"
members = [ { dev = "/dev/sda", size = "1G" }, { dev = "hda", size = "1G" } ]

[[event]]
during = "pull"
fail = "sdq"

[expect]
outcome = "completed"
reason = "sda"
"#;
    let err = parse(Path::new("s.toml"), source).expect_err("bad");
    let err = err.downcast::<ScenarioError>().expect("typed");
    let messages: Vec<&str> = err.diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "`dev` is a kernel name, not a path: `/dev/sda`",
            "`hda` is not a disk name the simulator knows",
            "the array has no members",
            "event 1 (during `pull`): no drive `sdq` in this scenario",
            "a `completed` run has no halt text for `reason` to match",
        ]
    );
    assert!(err.to_string().contains("\n\nerror: "), "all rendered");
}

#[test]
fn event_checks() {
    // (event body, message)
    let cases = [
        (
            "during = \"baseline\"\nafter = \"2s\"\nfail = \"sda\"",
            "`after` has no meaning before the baseline",
        ),
        (
            "during = \"pull\"\nset = { \"sda.errors\" = 1 }",
            "`sda.errors` does not name a drive and a counter",
        ),
        (
            "during = \"pull\"\nunreadable = [\"sda.temperature\"]",
            "`sda.temperature` is not a probe",
        ),
        (
            "during = \"pull\"\nunreadable = [\"sdz.smart\"]",
            "no drive `sdz`",
        ),
        ("during = \"\"\nfail = \"sda\"", "`during` is empty"),
        (
            "during = \"pull\"\ninsert = \"S3Z1NB0K900009\"",
            "no drive `S3Z1NB0K900009`",
        ),
        (
            "during = \"pull\"\nexplode = \"sda\"",
            "unknown key `explode`",
        ),
    ];
    for (body, message) in cases {
        let source = format!(
            "[scenario]\nname = \"x\"\nrunbook = \"rb.toml\"\n[array]\nname = \"md0\"\nlevel = \"raid1\"\nmembers = [{{ dev = \"sda\", size = \"1G\" }}, {{ dev = \"sdb\", size = \"1G\" }}]\n[[event]]\n{body}\n[expect]\noutcome = \"completed\"\n"
        );
        let err = parse(Path::new("s.toml"), &source).expect_err(body);
        assert!(err.to_string().contains(message), "{body}:\n{err}");
    }
}

#[test]
fn sizes() {
    let good = [
        ("960G", 960_000_000_000),
        ("960GB", 960_000_000_000),
        ("1.92T", 1_920_000_000_000),
        ("512Gi", 512 << 30),
        ("4Ki", 4096),
        ("64 Mi", 64 << 20),
        ("960197124096", 960_197_124_096),
        ("1K", 1000),
    ];
    for (text, bytes) in good {
        assert_eq!(parse_size(text), Ok(bytes), "{text}");
    }
    for bad in ["", "G", "960Q", "1.2.3T", "-5G", "99999999999999999999T"] {
        assert!(parse_size(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn integer_sizes_slots_and_list_answers() {
    let source = r#"
[scenario]
name = "x"
runbook = "../rb.toml"

[array]
name = "md0"
level = "raid1"
raid_disks = 3
members = [ { dev = "nvme0n1", size = 1024, slot = "front-2" }, { dev = "nvme1n1", size = 1024, state = "faulty" } ]

[technician]
pull_after = "30s"

[[command]]
argv = ["true"]

[answers]
add = ["0002", "0003"]

[expect]
outcome = "refused"
step = "preflight"
"#;
    let s = parse(Path::new("/srv/sc/x.toml"), source).expect("parses");
    assert_eq!(s.runbook, Path::new("/srv/rb.toml"));
    assert_eq!(s.drives[0].size_bytes, 1024);
    assert_eq!(s.drives[0].slot.as_deref(), Some("front-2"));
    assert_eq!(s.drives[1].state, MemberState::Faulty);
    assert_eq!(s.array.raid_disks, 3);
    assert_eq!(s.technician.pull_after, Duration::from_secs(30));
    assert_eq!(s.technician.insert_after, Duration::from_secs(5));
    assert_eq!(s.commands[0].code, Some(0));
    assert_eq!(s.answers["add"], ["0002", "0003"]);
    assert!(
        s.check_names(&["add"], &[]).is_empty(),
        "preflight is always a valid stop"
    );
}

#[test]
fn cross_check_against_the_runbook() {
    let source = r#"
[scenario]
name = "x"
runbook = "rb.toml"
params = { array = "md0", traget = "sdb" }

[array]
name = "md0"
level = "raid1"
members = [ { dev = "sda", size = "1G" }, { dev = "sdb", size = "1G" } ]

[[event]]
during = "pul"
fail = "sda"

[answers]
ad = "0003"

[expect]
outcome = "halted"
step = "rebuild"
"#;
    let s = parse(Path::new("s.toml"), source).expect("parses alone");
    let problems = s.check_names(&["fail", "pull", "add"], &["array", "target"]);
    let lines: Vec<String> = problems
        .iter()
        .map(|d| {
            format!(
                "{}:{} {} | {}",
                d.line,
                d.column,
                d.message,
                d.help.clone().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            "13:10 event 1 `during` names step `pul`, which the runbook does not have | did you mean `pull`?",
            "17:1 [answers] names step `ad`, which the runbook does not have | did you mean `add`?",
            "21:8 [expect] step names step `rebuild`, which the runbook does not have | the runbook's steps are `fail`, `pull`, `add`",
            "5:27 the runbook has no parameter `traget` | did you mean `target`?",
            "5:10 parameter `target` of the runbook is not given | add `target = \"...\"` to `[scenario] params`",
        ]
    );
}

#[test]
fn load_reads_the_file_and_needs_the_runbook() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = dir.path().join("s.toml");
    let text = "[scenario]\nname = \"x\"\nrunbook = \"rb.toml\"\n[array]\nname = \"md0\"\nlevel = \"raid1\"\nmembers = [{ dev = \"sda\", size = \"1G\" }]\n[expect]\noutcome = \"completed\"\n";
    std::fs::write(&scenario, text).expect("write");
    let err = load(&scenario).expect_err("no runbook yet");
    assert!(err.to_string().contains("runbook `"), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(err.to_string().contains(":3:11"), "{err}");
    std::fs::write(dir.path().join("rb.toml"), "").expect("write");
    let s = load(&scenario).expect("loads");
    assert_eq!(s.runbook, dir.path().join("rb.toml"));
    let err = load(&dir.path().join("missing.toml")).expect_err("missing");
    assert!(
        err.to_string().starts_with("cannot read scenario `"),
        "{err}"
    );
}

#[test]
fn did_you_mean_only_for_near_misses() {
    let keys = ["members", "spares", "others", "rebuild_time"];
    let cases = [
        ("membres", Some("members")),
        ("spare", Some("spares")),
        ("rebuild", None),
        ("x", None),
    ];
    for (word, near) in cases {
        assert_eq!(did_you_mean(word, keys), near, "{word}");
    }
}

#[test]
fn zfs_levels_and_the_partition_a_pool_uses() {
    let text = |level: &str, partition: &str| {
        format!(
            r#"
[scenario]
name = "zfs"
runbook = "../../zfs-replace-member.toml"
params = {{ array = "tank", target = "sdb" }}

[array]
name = "tank"
level = "{level}"
{partition}
members = [
  {{ dev = "sda", serial = "A1", size = "1T" }},
  {{ dev = "sdb", serial = "B2", size = "1T" }},
]

[expect]
outcome = "completed"
"#
        )
    };
    let path = Path::new("/s/runbooks/scenarios/zfs-replace-member/x.toml");
    for (level, want) in [
        ("mirror", Level::Mirror),
        ("raidz1", Level::Raidz1),
        ("raidz2", Level::Raidz2),
        ("raidz3", Level::Raidz3),
    ] {
        let s = parse(path, &text(level, "partition = 3")).expect("parses");
        assert_eq!((s.array.level, s.array.partition), (want, Some(3)));
        assert_eq!(want.name(), level);
    }
    let s = parse(path, &text("mirror", "")).expect("parses");
    assert_eq!(s.array.partition, None, "whole disks");
    for (level, partition, message) in [
        (
            "raid1",
            "partition = 1",
            "`partition` is a ZFS pool's layout",
        ),
        (
            "mirror",
            "partition = 0",
            "`partition` is 0; a GPT partition number is 1 to 128",
        ),
        ("mirror", "partition = 129", "`partition` is 129"),
    ] {
        let err = match parse(path, &text(level, partition)) {
            Ok(_) => panic!("{level} {partition} parsed"),
            Err(e) => e.downcast::<ScenarioError>().expect("a ScenarioError"),
        };
        let d = &err.diagnostics[0];
        assert!(d.message.contains(message), "{}", d.message);
        assert_eq!((d.line, d.column), (10, 13), "{d}");
    }
}
