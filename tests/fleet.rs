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

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt;
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

#[test]
fn watch_follows_a_dry_run_while_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // A finished session: watch renders it whole and ends with its code
    // (the growing journal is the next test).
    let scenario = halting_scenario(&dir.path().join("books"), "");
    let runbook = dir.path().join("books/md-replace-member.toml");
    let first = swapguard(
        &state,
        &[
            "dry-run",
            "--scenario",
            scenario.to_str().unwrap(),
            runbook.to_str().unwrap(),
        ],
    )
    .run();
    assert_eq!(first.code, Some(0), "{}", first.both());
    let finished = swapguard(&state, &["watch", "--array", "md0"]).run();
    assert_eq!(finished.code, Some(3), "halted: {}", finished.both());
    let out = &finished.stdout;
    for want in [
        "started",
        "step 5 [pull] physical",
        "health (baseline): array md0 clean, 0 degraded",
        "OK   survivor  sda (serial S3Z1NB0K100001, bay 0)  in-sync",
        "HALT at step pull",
        "md.errors 0 → 4",
        "finished 2026-01-01T00:00:05.000Z: halted (exit 3)",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let json = swapguard(&state, &["watch", "--json"]).run();
    assert_eq!(json.code, Some(3));
    let events: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.first().unwrap()["event"], "run-started");
    assert_eq!(events.last().unwrap()["event"], "run-finished");
}

/// A journal being written: `watch` tails it and ends with the run.
#[test]
fn watch_tails_a_journal_that_grows_and_ends_with_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let scenario = halting_scenario(&dir.path().join("books"), "");
    let runbook = dir.path().join("books/md-replace-member.toml");
    let done = swapguard(
        &state,
        &[
            "dry-run",
            "--scenario",
            scenario.to_str().unwrap(),
            runbook.to_str().unwrap(),
        ],
    )
    .run();
    assert_eq!(done.code, Some(0), "{}", done.both());
    // Replay the finished journal into a second state directory line by
    // line, as a run writes it, while `watch` follows the copy.
    let source = common::session(&state);
    let lines: Vec<String> = std::fs::read_to_string(&source)
        .unwrap()
        .lines()
        .map(|l| format!("{l}\n"))
        .collect();
    let live = dir.path().join("live");
    std::fs::create_dir_all(live.join("sessions")).unwrap();
    std::fs::set_permissions(&live, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    std::fs::set_permissions(
        live.join("sessions"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let copy = live.join("sessions").join(source.file_name().unwrap());
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .mode(0o600)
        .open(&copy)
        .unwrap();
    // The first line (run-started) is there before watch starts.
    file.write_all(lines[0].as_bytes()).unwrap();
    let name = copy.file_stem().unwrap().to_str().unwrap().to_string();
    let mut watch = swapguard(&live, &["watch", name.as_str()])
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(watch.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.contains("started"), "{first}");
    // Still running: nothing finished it yet.
    std::thread::sleep(Duration::from_millis(500));
    assert!(watch.try_wait().unwrap().is_none(), "watch ended early");
    for (i, line) in lines[1..].iter().enumerate() {
        // Half a line first: watch must wait for the rest.
        let (a, b) = line.split_at(line.len() / 2);
        file.write_all(a.as_bytes()).unwrap();
        file.flush().unwrap();
        if i % 10 == 0 {
            std::thread::sleep(Duration::from_millis(30));
        }
        file.write_all(b.as_bytes()).unwrap();
    }
    let until = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = watch.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < until, "watch did not end with the run");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(3), "{rest}");
    assert!(rest.contains("HALT at step pull"), "{rest}");
    assert!(rest.trim_end().ends_with("halted (exit 3)"), "{rest}");
}

/// The metrics of the captured trees, with `status --prometheus`.
fn metrics(tree: &str, state: &Path) -> common::Done {
    swapguard(state, &["status", "--prometheus", "--no-smart"])
        .arg("--sysroot")
        .arg(root().join(tree))
        .run()
}

#[test]
fn prometheus_metrics_for_nvme_and_scsi_mirrors() {
    let state = tempfile::tempdir().unwrap();
    let clean = metrics("tests/fixtures/md/clean", state.path());
    assert_eq!(clean.code, Some(0), "{}", clean.both());
    for want in [
        "swapguard_array_degraded_members{array=\"md0\"} 0",
        "swapguard_drive_member_state{array=\"md0\",dev=\"nvme1n1\",serial=\"LAB-B-0002\",bay=\"\",state=\"in_sync\"} 1",
        "swapguard_drive_errors{array=\"md0\",dev=\"nvme0n1\",serial=\"LAB-A-0001\",bay=\"\",name=\"md.errors\"} 0",
        // Not read (--no-smart) is not healthy.
        "swapguard_drive_verdict{array=\"md0\",dev=\"nvme0n1\",serial=\"LAB-A-0001\",bay=\"\",verdict=\"unknown\"} 1",
        "swapguard_drive_smart_readable{array=\"md0\",dev=\"nvme0n1\",serial=\"LAB-A-0001\",bay=\"\"} 0",
    ] {
        assert!(
            clean.stdout.contains(want),
            "missing {want}:\n{}",
            clean.stdout
        );
    }
    let rebuilding = metrics("tests/fixtures/md/recovery", state.path());
    assert!(
        rebuilding
            .stdout
            .contains("swapguard_array_sync_ratio{array=\"md0\",action=\"recover\"} 0.44"),
        "{}",
        rebuilding.stdout
    );
    let scsi = metrics("tests/fixtures/md/scsi-after-unplug", state.path());
    assert_eq!(scsi.code, Some(0), "{}", scsi.both());
    for want in [
        "swapguard_array_degraded_members{array=\"md0\"} 1",
        "swapguard_array_redundancy_left{array=\"md0\"} 0",
        "dev=\"sda\",serial=\"LAB-SCSI-01\"",
    ] {
        assert!(
            scsi.stdout.contains(want),
            "missing {want}:\n{}",
            scsi.stdout
        );
    }
    if let Some(promtool) = component("promtool", "prometheus", &["/usr/bin/promtool"]) {
        for text in [&clean.stdout, &rebuilding.stdout, &scsi.stdout] {
            let mut child = Command::new(&promtool)
                .args(["check", "metrics"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "promtool: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn node_exporter_serves_the_textfile() {
    let Some(exporter) = component(
        "node_exporter",
        "prometheus-node-exporter",
        &[
            "/usr/bin/prometheus-node-exporter",
            "/usr/bin/node_exporter",
        ],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let textfiles = dir.path().join("textfile");
    std::fs::create_dir(&textfiles).unwrap();
    // A finished session in the state directory: the run metrics too.
    let state = dir.path().join("state");
    let scenario = halting_scenario(&dir.path().join("books"), "");
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
    assert_eq!(done.code, Some(0), "{}", done.both());
    let wrote = swapguard(&state, &["status", "--no-smart", "--textfile"])
        .arg(&textfiles)
        .arg("--sysroot")
        .arg(root().join("tests/fixtures/md/scsi-after-unplug"))
        .run();
    assert_eq!(wrote.code, Some(0), "{}", wrote.both());
    assert_eq!(wrote.stdout, "", "--textfile prints nothing");
    let port = free_port();
    let mut daemon = Daemon(
        Command::new(exporter)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--collector.textfile.directory={}",
                textfiles.display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}/metrics");
    wait_ready(&url, &mut daemon);
    let scraped = get(&url).unwrap();
    for want in [
        "swapguard_array_degraded_members{array=\"md0\"} 1",
        "swapguard_drive_errors{array=\"md0\",bay=\"\",dev=\"sda\",name=\"md.errors\",serial=\"LAB-SCSI-01\"} 0",
        "swapguard_run_info{array=\"md0\"",
        "state=\"halted\",step=\"pull\"} 1",
        "swapguard_run_exit_code{array=\"md0\"",
    ] {
        assert!(
            scraped.contains(want),
            "missing {want} in node_exporter's /metrics"
        );
    }
    // node_exporter read the file without complaint.
    assert!(
        scraped.contains("node_textfile_scrape_error 0"),
        "textfile scrape error"
    );
}

#[test]
fn preflight_says_safe_or_refused_and_touches_nothing() {
    let state = tempfile::tempdir().unwrap();
    let runbook = root().join("tests/fixtures/runbooks-e2e/pull-only.toml");
    let check = |tree: &str, target: &str| {
        swapguard(
            state.path(),
            &[
                "preflight",
                runbook.to_str().unwrap(),
                "--array",
                "md0",
                "--target",
                target,
                "--json",
            ],
        )
        .arg("--sysroot")
        .arg(root().join(tree))
        .run()
    };
    let safe = check("tests/fixtures/md/clean", "LAB-B-0002");
    assert_eq!(safe.code, Some(0), "{}", safe.both());
    let v: serde_json::Value = serde_json::from_str(&safe.stdout).unwrap();
    assert_eq!(
        (v["safe"].as_bool(), v["exit_code"].as_i64()),
        (Some(true), Some(0))
    );
    // SCSI, degraded: the only in-sync member cannot be the target.
    let refused = check("tests/fixtures/md/scsi-after-unplug", "sda");
    assert_eq!(refused.code, Some(4), "{}", refused.both());
    let v: serde_json::Value = serde_json::from_str(&refused.stdout).unwrap();
    assert_eq!(v["safe"], false);
    let reasons = v["reasons"].to_string();
    assert!(
        reasons.contains("would lose data without the target"),
        "{reasons}"
    );
    // NVMe, rebuilding: refused while the rebuild runs.
    let rebuilding = check("tests/fixtures/md/recovery", "LAB-A-0001");
    assert_eq!(rebuilding.code, Some(4), "{}", rebuilding.both());
    assert!(
        rebuilding.stdout.contains("is running on `md0`"),
        "{}",
        rebuilding.stdout
    );
    // Nothing written: no session, no lock, no key.
    let left: Vec<_> = std::fs::read_dir(state.path())
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "preflight wrote {left:?}");
}

#[test]
fn ansible_playbook_prints_which_swaps_are_safe() {
    let venv = root().join("target/ansible-venv/bin/ansible-playbook");
    let playbook = [
        "/usr/bin/ansible-playbook",
        "/usr/local/bin/ansible-playbook",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists());
    let Some(ansible) = (if venv.exists() { Some(venv) } else { playbook }) else {
        let msg = "ansible-playbook not found (looked at target/ansible-venv/bin and /usr/bin): `pip install ansible-core` into target/ansible-venv (scripts/test-all.sh does)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let bin = env!("CARGO_BIN_EXE_swapguard");
    let runbook = root().join("tests/fixtures/runbooks-e2e/pull-only.toml");
    let python = ansible.parent().unwrap().join("python3");
    let host = |name: &str, tree: &str, target: &str| {
        format!(
            "{name} ansible_connection=local ansible_python_interpreter={} swap_array=md0 swap_target={target} swapguard_args=\"--sysroot {} --state-dir {}\"\n",
            if python.exists() {
                python.display().to_string()
            } else {
                "/usr/bin/python3".into()
            },
            root().join(tree).display(),
            state.display()
        )
    };
    let inventory = dir.path().join("inventory.ini");
    std::fs::write(
        &inventory,
        format!(
            "[storage]\n{}{}\n[storage:vars]\nswap_runbook={}\nswapguard_bin={bin}\nswap_become=false\n",
            host("nvme-clean", "tests/fixtures/md/clean", "LAB-B-0002"),
            host("scsi-degraded", "tests/fixtures/md/scsi-after-unplug", "sda"),
            runbook.display()
        ),
    )
    .unwrap();
    let out = Command::new(&ansible)
        .arg("-i")
        .arg(&inventory)
        .arg(root().join("contrib/ansible/preflight.yml"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        .env("ANSIBLE_LOCAL_TEMP", dir.path().join("ansible-tmp"))
        .env("ANSIBLE_REMOTE_TEMP", dir.path().join("ansible-tmp"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("nvme-clean md0 -> LAB-B-0002: SAFE"),
        "{text}"
    );
    assert!(
        text.contains("scsi-degraded md0 -> sda: NOT SAFE:") && text.contains("would lose data"),
        "{text}"
    );
    assert!(
        text.contains("nvme-clean: safe; scsi-degraded: NOT safe"),
        "{text}"
    );
}

/// A real `swapguard run` (against a captured NVMe tree) writing its
/// journal while `watch --array` follows it from another process; the
/// technician's pull (the tree loses the drive) ends the run, and watch
/// ends with it, exit code and all.
#[test]
fn watch_follows_a_real_run_as_it_writes() {
    let m = common::Test::machine();
    let mut run = m
        .swapguard(&[
            "run",
            "pull-only.toml",
            "--array",
            "md0",
            "--target",
            "nvme1n1",
            "--answers",
            "answers.toml",
        ])
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    while !m.state().join("sessions").exists()
        || std::fs::read_dir(m.state().join("sessions"))
            .unwrap()
            .count()
            == 0
    {
        assert!(Instant::now() < until, "the run wrote no journal");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut watch = m
        .swapguard(&["watch", "--array", "md0"])
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(watch.stdout.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while !seen.contains("step 2 [pull] physical") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "watch ended early:\n{seen}"
        );
        seen.push_str(&line);
    }
    // The run is waiting for the pull, and watch for the run.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        watch.try_wait().unwrap().is_none(),
        "watch ended before the run"
    );
    assert!(
        run.try_wait().unwrap().is_none(),
        "the run ended before the pull"
    );
    std::fs::remove_dir_all(m.path("tree/sys/block/nvme1n1")).unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let status = watch.wait().unwrap();
    let ran = run.wait().unwrap();
    assert_eq!(ran.code(), Some(0));
    assert_eq!(status.code(), Some(0), "{seen}{rest}");
    assert!(
        seen.contains("health (baseline): array md0 clean, 0 degraded"),
        "{seen}"
    );
    assert!(rest.contains("done: pull"), "{rest}");
    assert!(rest.trim_end().ends_with("completed (exit 0)"), "{rest}");
}
