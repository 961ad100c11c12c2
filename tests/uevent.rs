//! Whole-process tests of the watch's kernel uevents: the real binary
//! against a copy of a captured md tree, with a fake kernel (a Unix datagram
//! socket the debug build reads instead of the netlink socket, named by
//! `SWAPGUARD_TEST_UEVENT_SOCKET`).
//!
//! The watch poll is set to 30 s, so only the event can end the wait early:
//! a run that took the poll's path would take at least 30 s and fail.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;
use common::Test;

const RUNBOOK: &str = r#"[runbook]
name = "uevent (test)"
backend = "md"

[params]
array = { kind = "array", help = "md array" }
target = { kind = "member", help = "member" }

[guard]
smart = "optional"
watch_poll = "30s"
smart_poll = "10m"

[preflight]
require = ["redundant-without-target", "survivors-healthy", "no-rebuild-running", "target-identified"]

[on_halt]
say = "STOP."

[[step]]
id = "long"
kind = "command"
run = ["sleep", "50"]
timeout = "120s"
"#;

/// The run every test starts: survivor nvme0n1, target nvme1n1.
const RUN: [&str; 8] = [
    "run",
    "runbook.toml",
    "--array",
    "md0",
    "--target",
    "nvme1n1",
    "--answers",
    "answers.toml",
];

/// RUNBOOK with another watch poll and a command of `seconds`.
fn with_runbook(m: &Test, watch_poll: &str, seconds: u32) {
    m.write(
        "runbook.toml",
        &RUNBOOK
            .replace(
                "watch_poll = \"30s\"",
                &format!("watch_poll = \"{watch_poll}\""),
            )
            .replace(
                "[\"sleep\", \"50\"]",
                &format!("[\"sleep\", \"{seconds}\"]"),
            ),
    );
}

fn machine() -> Test {
    let t = Test::new().in_scratch().tree("tests/fixtures/md/clean");
    t.write("runbook.toml", RUNBOOK);
    t.write("answers.toml", "");
    std::fs::create_dir_all(t.state()).unwrap();
    t
}

/// Send one kernel-format message to the fake kernel, once the run has
/// bound its socket.
fn send(socket: &Path, message: &[u8]) {
    let until = Instant::now() + Duration::from_secs(20);
    let out = UnixDatagram::unbound().unwrap();
    while out.send_to(message, socket).is_err() {
        assert!(Instant::now() < until, "the run never listened for uevents");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn remove_of(disk: &str) -> Vec<u8> {
    let devpath = format!("/devices/pci0000:00/0000:00:04.0/nvme/nvme0/{disk}");
    format!(
        "remove@{devpath}\0ACTION=remove\0DEVPATH={devpath}\0SUBSYSTEM=block\0MAJOR=259\0\
         MINOR=0\0DEVNAME={disk}\0DEVTYPE=disk\0SEQNUM=4711\0"
    )
    .into_bytes()
}

#[test]
fn a_survivor_removed_ends_the_wait_at_its_uevent_not_at_the_poll() {
    let m = machine();
    let socket = m.path("uevents.sock");
    let tree = m.path("tree");
    let mut pulled = false;
    let done = m
        .swapguard(&RUN)
        .env("SWAPGUARD_TEST_UEVENT_SOCKET", &socket)
        .run_watching(|line, _| {
            // The command is started right after this line; the watch's
            // first wait binds the socket (`send` waits for it).
            if !pulled && line.contains("$ sleep 50") {
                pulled = true;
                // The wrong drive pulled: the survivor leaves sysfs, md
                // does not notice, the kernel announces the removal.
                std::fs::remove_dir_all(tree.join("sys/block/nvme0n1")).unwrap();
                send(&socket, &remove_of("nvme0n1"));
            }
        })
        .code(3)
        .has("nvme0n1");
    assert!(pulled, "the command never ran:\n{}", done.both());
    // The poll is 30 s and the command 50 s; the event ends it at once.
    assert!(
        done.took < Duration::from_secs(20),
        "took {:?}: the wait ended at the poll, not at the event\n{}",
        done.took,
        done.both()
    );
    assert!(done.journal().iter().any(|e| e["event"] == "halted"));
}

#[test]
fn an_event_about_another_device_does_not_end_the_wait_or_halt() {
    let m = machine();
    let socket = m.path("uevents.sock");
    with_runbook(&m, "1s", 2);
    let mut sent = false;
    let done = m
        .swapguard(&RUN)
        .env("SWAPGUARD_TEST_UEVENT_SOCKET", &socket)
        .run_watching(|line, _| {
            if !sent && line.contains("is running; watching every drive meanwhile") {
                sent = true;
                let loop_change = std::fs::read(
                    Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("tests/fixtures/uevent/loop0-change.bin"),
                )
                .unwrap();
                send(&socket, &loop_change);
                send(&socket, b"not a uevent at all");
            }
        });
    assert!(sent);
    assert!(
        !done.journal().iter().any(|e| e["event"] == "halted"),
        "{}",
        done.both()
    );
}

#[test]
fn without_uevents_the_watch_says_so_once_and_keeps_polling() {
    let m = machine();
    with_runbook(&m, "200ms", 1);
    // A socket that cannot be bound stands for a kernel without uevents.
    let done = m
        .swapguard(&RUN)
        .env(
            "SWAPGUARD_TEST_UEVENT_SOCKET",
            m.path("no/such/dir/uevents.sock"),
        )
        .run();
    let said = done
        .both()
        .matches("kernel device events are not available")
        .count();
    assert_eq!(said, 1, "{}", done.both());
    assert!(
        !done.journal().iter().any(|e| e["event"] == "halted"),
        "{}",
        done.both()
    );
}

fn health_event_of(controller: &str, aen: &str) -> Vec<u8> {
    let devpath = format!("/devices/pci0000:00/0000:00:04.0/nvme/{controller}");
    format!(
        "change@{devpath}\0ACTION=change\0DEVPATH={devpath}\0SUBSYSTEM=nvme\0MAJOR=241\0\
         MINOR=0\0DEVNAME={controller}\0NVME_AEN={aen}\0SEQNUM=4712\0"
    )
    .into_bytes()
}

/// A survivor's controller raises a critical warning: the SMART/health
/// asynchronous event halts the run by itself (`nvme.health_events`),
/// without waiting for a SMART read. Here SMART is optional and no poll
/// is due for 10 minutes, so without the count nothing would halt at all
/// and the 50 s command would finish.
#[test]
fn a_survivors_smart_health_event_halts_by_itself() {
    let m = machine();
    let socket = m.path("uevents.sock");
    let mut sent = false;
    let done = m
        .swapguard(&RUN)
        .env("SWAPGUARD_TEST_UEVENT_SOCKET", &socket)
        .run_watching(|line, _| {
            if !sent && line.contains("$ sleep 50") {
                sent = true;
                send(&socket, &health_event_of("nvme0", "0x020001"));
            }
        })
        .code(3)
        .has("nvme0n1")
        .has("nvme.health_events 0");
    assert!(sent, "the command never ran:\n{}", done.both());
    assert!(
        done.took < Duration::from_secs(20),
        "took {:?}: the event did not end the wait\n{}",
        done.took,
        done.both()
    );
    let journal = done.journal();
    let halted = journal
        .iter()
        .find(|e| e["event"] == "halted")
        .unwrap_or_else(|| panic!("no halted entry\n{}", done.both()));
    assert!(
        halted.to_string().contains("nvme.health_events"),
        "{halted}"
    );
}

/// An event about the target's controller, or a notice (a namespace
/// changed: type 2), is no survivor's critical warning: the run goes on.
#[test]
fn a_notice_or_the_targets_health_event_does_not_halt() {
    let m = machine();
    let socket = m.path("uevents.sock");
    with_runbook(&m, "1s", 3);
    let mut sent = false;
    let done = m
        .swapguard(&RUN)
        .env("SWAPGUARD_TEST_UEVENT_SOCKET", &socket)
        .run_watching(|line, _| {
            if !sent && line.contains("is running; watching every drive meanwhile") {
                sent = true;
                send(&socket, &health_event_of("nvme0", "0x040002"));
                send(&socket, &health_event_of("nvme1", "0x020001"));
            }
        });
    assert!(sent, "{}", done.both());
    assert!(
        !done.journal().iter().any(|e| e["event"] == "halted"),
        "{}",
        done.both()
    );
}
