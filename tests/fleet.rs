//! Whole-process tests of what connects swapguard to a team's own tools,
//! each against the real component (docs/fleet.md):
//!
//! - a real Prometheus Alertmanager receives the halt of a dry-run and
//!   shows it on its API; a webhook that refuses or hangs changes nothing
//!   in the run and its failure is journaled;
//! - `swapguard watch` follows a session while the run writes it;
//! - a real node_exporter serves `status --textfile`'s metrics, and
//!   `promtool check metrics` accepts `status --prometheus`;
//! - a real ansible-core runs the example playbook against localhost.
//!
//! The components are Debian packages (and ansible-core from PyPI) that
//! scripts/test-all.sh installs. Without one a test says what it skips and
//! why; under `CI=true` a missing component fails the test.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{root, swapguard};

/// The program at the first of `paths` that exists; `None` (after saying
/// what is skipped) when none does, a failure under `CI=true`.
fn component(what: &str, package: &str, paths: &[&str]) -> Option<PathBuf> {
    if let Some(p) = paths.iter().map(PathBuf::from).find(|p| p.exists()) {
        return Some(p);
    }
    let msg = format!(
        "{what} not found (looked at {}): install the Debian package `{package}` (scripts/test-all.sh does)",
        paths.join(", ")
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

/// A free localhost port (bound, read, released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when the test ends, however it ends.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GET `url`'s body, or `None` if it does not answer 200.
fn get(url: &str) -> Option<String> {
    let mut response = ureq::get(url).call().ok()?;
    if response.status() != 200 {
        return None;
    }
    response.body_mut().read_to_string().ok()
}

/// Wait (at most 30 s) until `url` answers 200.
fn wait_ready(url: &str, daemon: &mut Daemon) {
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        if get(url).is_some() {
            return;
        }
        if let Ok(Some(status)) = daemon.0.try_wait() {
            panic!("{url}: the daemon exited with {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} did not answer within 30 s");
}

/// A copy of the shipped md runbook with `notify` appended, and the
/// incident scenario (a survivor dies as the target is pulled: a halt)
/// pointed at it, in `dir`. Returns the scenario's path.
fn halting_scenario(dir: &Path, notify: &str) -> PathBuf {
    let runbook = std::fs::read_to_string(root().join("runbooks/md-replace-member.toml")).unwrap();
    std::fs::create_dir_all(dir.join("scenarios/md-replace-member")).unwrap();
    std::fs::write(
        dir.join("md-replace-member.toml"),
        format!("{runbook}\n{notify}"),
    )
    .unwrap();
    let scenario = std::fs::read_to_string(
        root().join("runbooks/scenarios/md-replace-member/incident-2019.toml"),
    )
    .unwrap();
    let path = dir.join("scenarios/md-replace-member/incident-2019.toml");
    std::fs::write(&path, scenario).unwrap();
    path
}

#[test]
fn alertmanager_receives_the_halt_of_a_dry_run() {
    let Some(am) = component(
        "Alertmanager",
        "prometheus-alertmanager",
        &["/usr/bin/prometheus-alertmanager", "/usr/bin/alertmanager"],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: nowhere\nreceivers:\n  - name: nowhere\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let port = free_port();
    let mut daemon = Daemon(
        Command::new(am)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{base}/-/ready"), &mut daemon);
    let books = dir.path().join("books");
    halting_scenario(
        &books,
        &format!(
            "[notify]\nurl = \"{base}/api/v2/alerts\"\nformat = \"alertmanager\"\ndry_runs = true\ntimeout = \"5s\"\n"
        ),
    );
    // `swapguard test` walks the scenario; it expects the halt, so it passes.
    let done = swapguard(
        &dir.path().join("state"),
        &["test", books.to_str().unwrap()],
    )
    .run();
    assert_eq!(done.code, Some(0), "{}", done.both());

    let alerts: serde_json::Value =
        serde_json::from_str(&get(&format!("{base}/api/v2/alerts")).unwrap()).unwrap();
    let halted: Vec<&serde_json::Value> = alerts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["alertname"] == "SwapguardHalted")
        .collect();
    assert_eq!(halted.len(), 1, "{alerts:#}");
    let alert = halted[0];
    assert_eq!(alert["status"]["state"], "active", "{alert:#}");
    let labels = &alert["labels"];
    assert_eq!(labels["array"], "md0");
    assert_eq!(labels["step"], "pull");
    assert_eq!(labels["severity"], "critical");
    assert_eq!(labels["dry_run"], "true");
    assert!(
        labels["session"].as_str().unwrap().starts_with("md0-"),
        "{labels}"
    );
    assert!(!labels["host"].as_str().unwrap().is_empty());
    let description = alert["annotations"]["description"].as_str().unwrap();
    assert!(description.contains("sda"), "{description}");
    // The in-progress alert was resolved by the finish: not active.
    for a in alerts.as_array().unwrap() {
        if a["labels"]["alertname"] == "SwapguardSwapInProgress" {
            assert_ne!(a["status"]["state"], "active", "{a:#}");
        }
    }
}

/// One dry-run of the halting scenario with `notify`; its journal entries
/// and how long the process took.
fn dry_run_with(notify: &str) -> (common::Done, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = halting_scenario(&dir.path().join("books"), notify);
    let state = dir.path().join("state");
    let done = swapguard(
        &state,
        &[
            "dry-run",
            "--scenario",
            scenario.to_str().unwrap(),
            dir.path()
                .join("books/md-replace-member.toml")
                .to_str()
                .unwrap(),
        ],
    )
    .run();
    let journal = common::journal(&state);
    (done, journal)
}

/// The journal without the notify-failed entries and without what differs
/// between any two runs (the session name, pid, hashes).
fn guard_view(journal: &[serde_json::Value]) -> Vec<(String, String)> {
    journal
        .iter()
        .filter(|e| e["event"] != "notify-failed")
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["at"].to_string(),
            )
        })
        .collect()
}

#[test]
fn a_refusing_or_hanging_webhook_changes_nothing_and_is_journaled() {
    let (plain, plain_journal) = dry_run_with("");
    assert_eq!(plain.code, Some(0), "{}", plain.both());

    // Refuses: a port nothing listens on.
    let refused_port = free_port();
    let (refused, refused_journal) = dry_run_with(&format!(
        "[notify]\nurl = \"http://127.0.0.1:{refused_port}/hook\"\ndry_runs = true\nretries = 1\ntimeout = \"1s\"\n"
    ));
    // Hangs: accepts connections (the kernel does, into the backlog) and
    // never answers. Retried 3 times at 5 s each, delivered on the engine's
    // thread this would hold the run at least 3 notices x 4 attempts x 5 s.
    let hanging = TcpListener::bind("127.0.0.1:0").unwrap();
    let hanging_port = hanging.local_addr().unwrap().port();
    let (hung, hung_journal) = dry_run_with(&format!(
        "[notify]\nurl = \"http://127.0.0.1:{hanging_port}/hook\"\ndry_runs = true\nretries = 3\ntimeout = \"5s\"\n"
    ));
    drop(hanging);

    for (name, done, journal) in [
        ("refusing", &refused, &refused_journal),
        ("hanging", &hung, &hung_journal),
    ] {
        assert_eq!(done.code, plain.code, "{name}: {}", done.both());
        // Every guard entry, at the same (simulated) times: the run itself
        // did not notice the webhook.
        assert_eq!(guard_view(journal), guard_view(&plain_journal), "{name}");
        let failed: Vec<&serde_json::Value> = journal
            .iter()
            .filter(|e| e["event"] == "notify-failed")
            .collect();
        assert!(!failed.is_empty(), "{name}: no notify-failed entry");
        for f in &failed {
            assert_eq!(
                f["target"],
                format!(
                    "http://127.0.0.1:{}/…",
                    if name == "refusing" {
                        refused_port
                    } else {
                        hanging_port
                    }
                ),
                "{name}: {f}"
            );
        }
        assert!(
            done.both().contains("notification `"),
            "{name}: the technician is told: {}",
            done.both()
        );
    }
    let errors: Vec<String> = refused_journal
        .iter()
        .filter(|e| e["event"] == "notify-failed")
        .map(|e| e["error"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(errors.len(), 3, "start, halt and finish: {errors:?}");
    assert!(
        refused_journal
            .iter()
            .any(|e| e["event"] == "notify-failed" && e["attempts"] == 2),
        "each tried twice"
    );
    // Bounded: the hanging webhook cost at most the settle time at the end
    // (10 s) and some slack, far from the 60 s a blocking delivery needs.
    assert!(
        hung.took < plain.took + Duration::from_secs(25),
        "hanging webhook run took {:?} (plain {:?})",
        hung.took,
        plain.took
    );
    let hung_errors: Vec<&str> = hung_journal
        .iter()
        .filter(|e| e["event"] == "notify-failed")
        .map(|e| e["error"].as_str().unwrap())
        .collect();
    assert!(
        hung_errors.iter().any(|e| e.contains("still undelivered")),
        "{hung_errors:?}"
    );
}
