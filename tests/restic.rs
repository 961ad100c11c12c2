//! The restore runbook's backup-freshness gate against a real restic
//! repository made here: the shipped `[[preflight.check]]` is loaded from
//! runbooks/restore-from-backup.toml, rendered, run as a real process and
//! judged by the engine's own `evaluate`. Fresh passes; a newest snapshot
//! older than the limit, an empty repository and a missing one are refused.
//!
//! restic is a Debian package (scripts/test-all.sh installs it). Without it
//! the test fails under CI=true and says what it skipped otherwise.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use swapguard::backend::CommandRunner;
use swapguard::backend::process::ProcessRunner;
use swapguard::engine::external_check::evaluate;
use swapguard::runbook::load::load;
use swapguard::runbook::model::ExternalCheck;
use swapguard::runbook::template::{Vars, render};

const CHECK: &str = "the newest backup is less than a day old";

fn restic_present() -> bool {
    Command::new("restic")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn restic(repo: &Path, password: &Path, args: &[&str]) {
    let out = Command::new("restic")
        .arg("-r")
        .arg(repo)
        .arg("--password-file")
        .arg(password)
        .args(args)
        .env("RESTIC_CACHE_DIR", repo.with_extension("cache"))
        .output()
        .expect("restic runs");
    assert!(
        out.status.success(),
        "restic {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn the_check() -> ExternalCheck {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/restore-from-backup.toml");
    let runbook = load(&path)
        .unwrap()
        .runbook
        .expect("the shipped runbook loads");
    runbook
        .preflight
        .checks
        .iter()
        .find(|c| c.name == CHECK)
        .expect("the restore runbook has the freshness check")
        .clone()
}

/// Run the shipped check against `repo` as swapguard would.
fn gate(check: &ExternalCheck, repo: &Path, password: &Path) -> Result<String, String> {
    let mut vars = Vars::new();
    vars.set("repo", repo.display().to_string());
    vars.set("password_file", password.display().to_string());
    let argv: Vec<String> = check
        .run
        .iter()
        .map(|t| render(&t.text, &vars).unwrap())
        .collect();
    let output = ProcessRunner::default()
        .run(&argv, check.timeout)
        .map_err(|e| format!("{e:#}"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64;
    evaluate(check, &output, now)
}

#[test]
fn restic_freshness_gate_against_a_real_repository() {
    if !restic_present() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "restic is not installed, but CI must run this test: install the Debian package `restic` (scripts/test-all.sh does)"
            );
        }
        eprintln!(
            "SKIPPED restic_freshness_gate_against_a_real_repository: `restic` is not installed (apt-get install restic)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let password = dir.path().join("password");
    std::fs::write(&password, "correct horse battery staple\n").unwrap();
    let data = dir.path().join("pg");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("PG_VERSION"), "15\n").unwrap();
    let check = the_check();

    // Missing repository: restic cannot open it, the gate refuses.
    let err = gate(&check, &repo, &password).unwrap_err();
    assert!(err.contains("exited with status 1, expected 0"), "{err}");

    // Empty repository: no snapshot to be fresh.
    restic(&repo, &password, &["init"]);
    let err = gate(&check, &repo, &password).unwrap_err();
    assert_eq!(err, "output has nothing at JSON pointer `/0/time`");

    // Only an old snapshot: too old.
    let data_arg = data.display().to_string();
    restic(
        &repo,
        &password,
        &["backup", "--time", "2020-01-01 00:00:00", &data_arg],
    );
    let err = gate(&check, &repo, &password).unwrap_err();
    assert!(err.starts_with("`/0/time` is "), "{err}");
    assert!(err.ends_with(" old, more than the allowed 1day"), "{err}");

    // A fresh snapshot: the newest one passes.
    restic(&repo, &password, &["backup", &data_arg]);
    let seen = gate(&check, &repo, &password).unwrap();
    assert!(seen.starts_with("`/0/time` is "), "{seen}");
    assert!(seen.ends_with(" old (at most 1day)"), "{seen}");

    // The wrong password is a failure too, never a pass.
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "nope\n").unwrap();
    let err = gate(&check, &repo, &wrong).unwrap_err();
    assert!(err.contains("exited with status"), "{err}");
}
