//! The btrfs readers on every captured output (tests/fixtures/btrfs/), and
//! on outputs broken in the ways parsers usually break.

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::backend::btrfs::ErrorStats;
use crate::backend::btrfs::profile::{self, ChunkKind, Profile};
use crate::backend::btrfs::progs::{self, BalanceStatus, ReplaceStatus, ScrubState, ShowDevice};
use crate::backend::btrfs::sysfs;

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/btrfs")
        .join(name)
}

/// The tool's output: the capture without its `$ command`, `# note` and
/// `# rc=N` lines.
pub(super) fn fixture(name: &str) -> String {
    let text = fs::read_to_string(fixture_path(name)).unwrap();
    text.lines()
        .filter(|l| !l.starts_with("$ ") && !l.starts_with("# "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The lines of a capture from the first that starts with `from` up to
/// (not including) the first after it that starts with `to`.
fn part(text: &str, from: &str, to: Option<&str>) -> String {
    let mut lines = text.lines().skip_while(|l| !l.starts_with(from));
    let mut out = String::new();
    if let Some(first) = lines.next() {
        out.push_str(first);
        out.push('\n');
    }
    for line in lines {
        if to.is_some_and(|to| line.starts_with(to)) {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn stats(write: u64, read: u64, flush: u64, corruption: u64) -> ErrorStats {
    ErrorStats {
        write,
        read,
        flush,
        corruption,
        generation: 0,
    }
}

#[test]
fn filesystem_show_in_every_captured_form() {
    let healthy = progs::parse_show(&fixture("lab-fi-show-healthy.txt")).unwrap();
    assert_eq!(healthy.label.as_deref(), Some("data"));
    assert_eq!(healthy.uuid, "f6662368-5c58-464e-ac6a-b5cae38b91ab");
    assert_eq!(healthy.total_devices, 2);
    assert!(!healthy.some_missing);
    assert_eq!(
        healthy.devices[1],
        ShowDevice {
            devid: 2,
            size: 268435456,
            used: 109051904,
            path: Some("/dev/nvme1n1".into()),
            missing: false,
        }
    );

    // Kernel 6.1: a missing device keeps its last path, marked MISSING.
    let lab = progs::parse_show(&fixture("lab-mount-degraded.txt")).unwrap();
    assert!(lab.devices[1].missing);
    assert_eq!(lab.devices[1].path.as_deref(), Some("/dev/nvme1n1"));
    // Kernel 6.18: `<missing disk>` in place of the path.
    let host = progs::parse_show(&fixture("host-fi-show-degraded-missing.txt")).unwrap();
    assert!(host.devices[1].missing);
    assert_eq!(host.devices[1].path, None);
    assert_eq!(host.devices[1].size, 0);

    // btrfs-progs 4.x, human sizes, only `*** Some devices missing`.
    let old = progs::parse_show(&fixture("list-filesystem-show-devices-missing.txt")).unwrap();
    assert!(old.some_missing);
    assert_eq!(old.total_devices, 3);
    assert_eq!(old.devices.len(), 2);
    assert_eq!(old.devices[1].devid, 3);
    assert_eq!(
        old.devices[1].size,
        (698.64 * (1u64 << 30) as f64).round() as u64
    );

    // After the replace: the devid stays, the path is the new drive.
    let replaced = fixture("lab-replace-status-finished.txt");
    let replaced = progs::parse_show(&part(&replaced, "Label:", None)).unwrap();
    assert_eq!(replaced.devices[1].path.as_deref(), Some("/dev/nvme2n1"));
    let replaced = progs::parse_show(&fixture("host-fi-show-after-replace.txt")).unwrap();
    assert_eq!(replaced.devices[1].path.as_deref(), Some("/dev/loop2"));
}

#[test]
fn filesystem_show_refuses_what_it_cannot_read() {
    let table = [
        ("", "no file system"),
        (
            "\tdevid 1 size 1 used 1 path /dev/sda\n",
            "expected `Label:` first",
        ),
        ("Label: 'a'  uuid: x\n", "no `Total devices` line"),
        (
            "Label: 'a'  uuid: x\n\tTotal devices 1 FS bytes used 1\n\tdevid 1 size 1 path /dev/sda\n",
            "not `devid N size S used U path P`",
        ),
        (
            "Label: 'a'  uuid: x\n\tTotal devices 1 FS bytes used 1\n\tdevid one size 1 used 1 path /dev/sda\n",
            "devid `one` is not a number",
        ),
        (
            "Label: 'a'  uuid: x\n\tTotal devices 1 FS bytes used 1\n\tdevid 1 size 2XB used 1 path /dev/sda\n",
            "size `2XB` is not a size",
        ),
        (
            "Label: 'a'  uuid: x\n\tTotal devices 1 FS bytes used 1\nLabel: 'b'  uuid: y\n",
            "a second file system",
        ),
        (
            "Label: 'a'  uuid: x\n\tTotal devices 1 FS bytes used 1\n\tsomething new\n",
            "line 3: not a line of `btrfs filesystem show`",
        ),
        ("Label: a  uuid: x\n", "the label is not quoted"),
    ];
    for (text, want) in table {
        let err = progs::parse_show(text).unwrap_err();
        assert!(err.contains(want), "{text:?}: {err}");
    }
}

#[test]
fn device_stats_text_in_every_captured_form() {
    let lab = fixture("lab-device-stats-healthy.txt");
    let lab = progs::parse_device_stats(&part(&lab, "[", Some("Id "))).unwrap();
    assert_eq!(lab.len(), 2);
    assert_eq!(lab[1].path.as_deref(), Some("/dev/nvme1n1"));
    assert_eq!(lab[1].stats, ErrorStats::default());

    let corrupted = fixture("host-device-stats-corruption.txt");
    let corrupted = progs::parse_device_stats(&part(&corrupted, "[", Some("Id "))).unwrap();
    assert_eq!(corrupted[1].stats, stats(0, 0, 0, 5120));

    let missing = progs::parse_device_stats(&fixture("host-device-stats-missing.txt")).unwrap();
    assert_eq!(missing[1].path, None);
    assert_eq!(missing[1].stats.corruption, 5120);

    // btrfs-progs 4.20: a failing drive's counters in the hundred millions.
    let list =
        progs::parse_device_stats(&fixture("list-device-stats-errors-missing-dev.txt")).unwrap();
    let sde = list
        .iter()
        .find(|d| d.path.as_deref() == Some("/dev/sde"))
        .unwrap();
    assert_eq!(sde.stats, stats(154997860, 77170574, 310, 0));

    // Newer progs name a missing device by devid.
    let by_devid = "[devid:2].write_io_errs 0\n[devid:2].read_io_errs 0\n[devid:2].flush_io_errs 0\n[devid:2].corruption_errs 3\n[devid:2].generation_errs 0\n";
    let by_devid = progs::parse_device_stats(by_devid).unwrap();
    assert_eq!(
        (by_devid[0].devid, by_devid[0].path.clone()),
        (Some(2), None)
    );
}

#[test]
fn device_stats_refuse_what_they_cannot_read() {
    let five = |dev: &str| {
        [
            "write_io_errs",
            "read_io_errs",
            "flush_io_errs",
            "corruption_errs",
            "generation_errs",
        ]
        .iter()
        .map(|c| format!("[{dev}].{c} 0\n"))
        .collect::<String>()
    };
    let table = [
        (String::new(), "no device in the output".to_string()),
        (
            five("/dev/sda").replace("[/dev/sda].flush_io_errs 0\n", ""),
            "device `/dev/sda`: 4 of the five".to_string(),
        ),
        (
            five("/dev/sda").replace("generation_errs 0", "generation_errs lots"),
            "`lots`, not a number".to_string(),
        ),
        (
            five("/dev/sda").replace("[/dev/sda].read_io_errs 0", "/dev/sda read 0"),
            "line 2: not `[device].counter value`".to_string(),
        ),
        (
            five("/dev/sda").replace("read_io_errs 0", "read_io_errs 0 0"),
            "line 2: not `counter value`".to_string(),
        ),
        (
            five("devid:x"),
            "device `devid:x`: `x` is not a devid".to_string(),
        ),
        (
            five("/dev/sda") + "Id Path Write errors\n",
            "line 6: not `[device].counter value`".to_string(),
        ),
    ];
    for (text, want) in table {
        let err = progs::parse_device_stats(&text).unwrap_err();
        assert!(err.contains(&want), "{text:?}: {err}");
    }
}

#[test]
fn device_stats_json_with_strings_or_numbers() {
    let healthy =
        progs::parse_device_stats_json(&fixture("host-device-stats-json-healthy.txt")).unwrap();
    assert_eq!(healthy.len(), 2);
    assert_eq!(healthy[0].devid, Some(1));
    let corrupted =
        progs::parse_device_stats_json(&fixture("host-device-stats-json-corruption.txt")).unwrap();
    assert_eq!(corrupted[1].stats.corruption, 5120);
    let missing =
        progs::parse_device_stats_json(&fixture("host-device-stats-json-missing.txt")).unwrap();
    assert_eq!((missing[1].devid, missing[1].path.clone()), (Some(2), None));

    let numbers = r#"{"device-stats":[{"device":"/dev/sda","devid":1,"write_io_errs":1,"read_io_errs":2,"flush_io_errs":3,"corruption_errs":4,"generation_errs":5}]}"#;
    let numbers = progs::parse_device_stats_json(numbers).unwrap();
    assert_eq!(numbers[0].stats.generation, 5);

    for (text, want) in [
        ("", "not JSON"),
        ("{}", "no `device-stats` array"),
        (r#"{"device-stats":[]}"#, "is empty"),
        (
            r#"{"device-stats":[{"devid":1}]}"#,
            "`device-stats[0]`: no `device`",
        ),
        (
            r#"{"device-stats":[{"device":"/dev/sda","devid":"1","write_io_errs":"-1"}]}"#,
            "`write_io_errs` is \"-1\", not a count",
        ),
        (
            r#"{"device-stats":[{"device":"/dev/sda","devid":"1","write_io_errs":0}]}"#,
            "no `read_io_errs`",
        ),
    ] {
        let err = progs::parse_device_stats_json(text).unwrap_err();
        assert!(err.contains(want), "{text}: {err}");
    }
}

#[test]
fn filesystem_df_sees_single_chunks_beside_raid1() {
    let healthy = fixture("lab-fi-df-healthy.txt");
    let healthy = progs::parse_df(&part(&healthy, "Data", Some("Overall:"))).unwrap();
    assert_eq!(healthy.len(), 3, "GlobalReserve is not a chunk");
    assert_eq!(profile::tolerance(&healthy), Some(1));
    assert!(profile::weaker_than_their_kind(&healthy).is_empty());

    let degraded = fixture("lab-fi-df-degraded-single-chunks.txt");
    let degraded = progs::parse_df(&part(&degraded, "Data", Some("Overall:"))).unwrap();
    assert_eq!(profile::tolerance(&degraded), Some(0));
    let weak = profile::weaker_than_their_kind(&degraded);
    assert_eq!(weak.len(), 1);
    assert_eq!(
        (weak[0].kind, weak[0].profile, weak[0].total_bytes),
        (ChunkKind::Data, Profile::Single, 100663296)
    );

    // Degraded, but the write fitted in a RAID1 chunk with room: no single.
    let room = progs::parse_df(&fixture("host-fi-df-degraded-room-in-raid1.txt")).unwrap();
    assert_eq!(profile::tolerance(&room), Some(1));

    for (text, want) in [
        ("", "no allocation"),
        (
            "Data, RAID1: total=1.00GiB, used=512.00MiB\n",
            "run with --raw",
        ),
        ("Data, RAID9: total=1, used=1\n", "unknown profile `RAID9`"),
        (
            "Journal, RAID1: total=1, used=1\n",
            "unknown chunk kind `Journal`",
        ),
        (
            "Data, RAID1: total=99999999999999999999999, used=1\n",
            "is too large",
        ),
    ] {
        let err = progs::parse_df(text).unwrap_err();
        assert!(err.contains(want), "{text}: {err}");
    }
}

#[test]
fn replace_status_in_every_state() {
    let table = [
        (fixture("lab-replace-start.txt"), ReplaceStatus::Running { permille: 160, write_errs: 0, read_errs: 0 }),
        (
            part(&fixture("lab-replace-status-finished.txt"), "Started", Some("Label:")),
            ReplaceStatus::Finished { write_errs: 0, read_errs: 0 },
        ),
        (
            fixture("host-replace-status-finished-after-remount.txt"),
            ReplaceStatus::Finished { write_errs: 0, read_errs: 0 },
        ),
        ("Never started\n".to_string(), ReplaceStatus::NeverStarted),
        (
            "100.0% done, 3 write errs, 4 uncorr. read errs\n".to_string(),
            ReplaceStatus::Running { permille: 1000, write_errs: 3, read_errs: 4 },
        ),
        (
            "Started on  1.Dec 10:00:00, canceled on  1.Dec 10:01:00 at 12.3%, 0 write errs, 0 uncorr. read errs\n".to_string(),
            ReplaceStatus::Canceled { write_errs: 0, read_errs: 0 },
        ),
        (
            "Started on  1.Dec 10:00:00, suspended on  1.Dec 10:01:00 at 12.3%, 1 write errs, 0 uncorr. read errs\n".to_string(),
            ReplaceStatus::Suspended { write_errs: 1, read_errs: 0 },
        ),
    ];
    for (text, want) in table {
        assert_eq!(progs::parse_replace_status(&text).unwrap(), want, "{text}");
    }
    for (text, want) in [
        ("", "empty output"),
        ("16.0% done\n", "no `, N write errs"),
        (
            "101.0% done, 0 write errs, 0 uncorr. read errs\n",
            "over 100",
        ),
        (
            "1x.0% done, 0 write errs, 0 uncorr. read errs\n",
            "not a percentage",
        ),
        (
            "Started on x, exploded, 0 write errs, 0 uncorr. read errs\n",
            "not a replace status",
        ),
        // Without -1 the tool rewrites its line with backspaces forever.
        (
            "16.0% done, 0 write errs, 0 uncorr. read errs\u{8}\u{8}\u{8}",
            "no `, N write errs",
        ),
    ] {
        let err = progs::parse_replace_status(text).unwrap_err();
        assert!(err.contains(want), "{text:?}: {err}");
    }
}

#[test]
fn balance_status_by_text_and_exit_code() {
    assert_eq!(
        progs::parse_balance_status(&fixture("host-balance-status-none.txt"), 0).unwrap(),
        BalanceStatus::None
    );
    let running = "Balance on '/mnt' is running\n4 out of about 7 chunks balanced (5 considered),  43% left\n";
    assert_eq!(
        progs::parse_balance_status(running, 1).unwrap(),
        BalanceStatus::Running {
            paused: false,
            completed: 4,
            expected: 7
        }
    );
    let cancel = running.replace("is running", "is running, cancel requested");
    assert!(matches!(
        progs::parse_balance_status(&cancel, 1).unwrap(),
        BalanceStatus::Running { paused: false, .. }
    ));
    let paused = running.replace("is running", "is paused");
    assert!(matches!(
        progs::parse_balance_status(&paused, 1).unwrap(),
        BalanceStatus::Running { paused: true, .. }
    ));
    for (text, code, want) in [
        ("No balance found on '/mnt'\n", 1, "not `Balance on"),
        ("Balance on '/mnt' is running\n", 0, "exit 0 but not"),
        ("Balance on '/mnt' is running\n", 1, "no `N out of about M"),
        (
            "ERROR: balance status on '/mnt' failed: Permission denied\n",
            2,
            "failed (exit 2)",
        ),
    ] {
        let err = progs::parse_balance_status(text, code).unwrap_err();
        assert!(err.contains(want), "{text} {code}: {err}");
    }
}

#[test]
fn scrub_status_in_every_captured_form() {
    let corrected = progs::parse_scrub_status(&fixture("host-scrub-status-corrected.txt")).unwrap();
    assert_eq!(corrected.state, ScrubState::Finished);
    assert_eq!(corrected.errors.get("csum"), Some(&5120));
    assert_eq!(corrected.errors.get("super"), Some(&1));
    assert_eq!(corrected.corrected, Some(5120));
    assert_eq!(corrected.uncorrectable, Some(0));

    let raw = progs::parse_scrub_status(&fixture("host-scrub-status-raw-corrected.txt")).unwrap();
    assert_eq!(raw.errors, corrected.errors);
    assert_eq!(
        (raw.corrected, raw.uncorrectable, raw.unverified),
        (Some(5120), Some(0), Some(0))
    );

    let list =
        progs::parse_scrub_status(&fixture("list-scrub-status-new-finished-csum-errors.txt"))
            .unwrap();
    assert_eq!(list.uncorrectable, Some(239));
    assert_eq!(list.error_total(), 478);

    let old =
        progs::parse_scrub_status(&fixture("list-scrub-status-old-v4-running-errors.txt")).unwrap();
    assert_eq!(old.state, ScrubState::Running);
    assert_eq!(old.errors.get("read"), Some(&75751000));
    assert_eq!(old.uncorrectable, Some(75750996));
    assert_eq!(old.unverified, Some(0));

    let clean = progs::parse_scrub_status(
        "UUID: x\nStatus:           finished\nError summary:    no errors found\n",
    )
    .unwrap();
    assert_eq!(clean.error_total(), 0);
    let never = progs::parse_scrub_status("UUID: x\n\tno stats available\n").unwrap();
    assert_eq!(never.state, ScrubState::NeverRun);

    for (text, want) in [
        ("", "not a scrub status"),
        ("Status: exploded\n", "unknown scrub status `exploded`"),
        ("Status: finished\n", "no `Error summary:` line"),
        (
            "Status: finished\nError summary: csum=lots\n",
            "`csum=lots` is not `name=count`",
        ),
        (
            "Status: finished\nError summary: csum=1\nCorrected: all\n",
            "`Corrected: all` is not a count",
        ),
        (
            "scrub status for x\n\tscrub started at y, somehow\n",
            "no `running for`",
        ),
    ] {
        let err = progs::parse_scrub_status(text).unwrap_err();
        assert!(err.contains(want), "{text:?}: {err}");
    }
}

/// A `/sys/fs/btrfs/<uuid>/` tree rebuilt from a capture of
/// `for d in …/devinfo/*; do … echo "$(basename $f): $(cat $f)"`.
pub(super) fn devinfo_tree(capture: &str) -> (TempDir, String) {
    let tree = TempDir::new().unwrap();
    let mut dir: Option<PathBuf> = None;
    let mut uuid = String::new();
    for line in fixture(capture).lines() {
        if let Some(path) = line.strip_prefix("== /") {
            let path = tree.path().join(path);
            uuid = path
                .parent()
                .and_then(Path::parent)
                .and_then(Path::file_name)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            fs::create_dir_all(&path).unwrap();
            dir = Some(path);
        } else if let (Some(dir), Some((name, value))) = (&dir, line.split_once(": ")) {
            fs::write(dir.join(name), format!("{}\n", value.trim_end())).unwrap();
        }
    }
    let fs_dir = tree.path().join("sys/fs/btrfs").join(&uuid);
    for (kind, profile, total) in [
        ("data", "raid1", "67108864"),
        ("metadata", "raid1", "33554432"),
        ("system", "raid1", "8388608"),
    ] {
        let dir = fs_dir.join("allocation").join(kind).join(profile);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("total_bytes"), format!("{total}\n")).unwrap();
        fs::write(dir.join("used_bytes"), "16384\n").unwrap();
        fs::write(
            fs_dir.join("allocation").join(kind).join("total_bytes"),
            "1\n",
        )
        .unwrap();
    }
    fs::create_dir_all(fs_dir.join("devices")).unwrap();
    fs::write(fs_dir.join("label"), "data\n").unwrap();
    (tree, uuid)
}

#[test]
fn sysfs_devinfo_from_every_capture() {
    let (tree, uuid) = devinfo_tree("lab-sysfs-devinfo-healthy.txt");
    let mut problems = Vec::new();
    let look = sysfs::read_fs(tree.path(), &uuid, &mut problems).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(look.label.as_deref(), Some("data"));
    assert_eq!(look.devices.len(), 2);
    assert!(
        look.devices
            .iter()
            .all(|d| !d.missing && d.writeable == Some(true))
    );
    assert_eq!(look.devices[0].errors, Some(ErrorStats::default()));
    assert_eq!(profile::tolerance(&look.allocations), Some(1));

    let (tree, uuid) = devinfo_tree("lab-sysfs-devinfo-missing.txt");
    let look = sysfs::read_fs(tree.path(), &uuid, &mut problems).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert!(look.devices[1].missing);
    assert_eq!(look.devices[1].writeable, Some(false));

    // During a replace the target is devid 0, with fewer files.
    let (tree, uuid) = devinfo_tree("lab-sysfs-devinfo-replacing.txt");
    let look = sysfs::read_fs(tree.path(), &uuid, &mut problems).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(look.devices[0].devid, 0);
    assert!(look.devices[0].replace_target);
    assert_eq!(look.devices[0].writeable, None);
    assert!(!look.devices[1].replace_target);

    let (tree, uuid) = devinfo_tree("host-sysfs-devinfo-corruption.txt");
    let look = sysfs::read_fs(tree.path(), &uuid, &mut problems).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(look.devices[1].errors, Some(stats(0, 0, 0, 5120)));
}

#[test]
fn sysfs_sees_a_single_profile_beside_raid1() {
    let (tree, uuid) = devinfo_tree("host-sysfs-devinfo-missing.txt");
    let single = tree
        .path()
        .join("sys/fs/btrfs")
        .join(&uuid)
        .join("allocation/data/single");
    fs::create_dir_all(&single).unwrap();
    fs::write(single.join("total_bytes"), "33554432\n").unwrap();
    fs::write(single.join("used_bytes"), "31457280\n").unwrap();
    let mut problems = Vec::new();
    let look = sysfs::read_fs(tree.path(), &uuid, &mut problems).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(profile::tolerance(&look.allocations), Some(0));
    assert_eq!(profile::weaker_than_their_kind(&look.allocations).len(), 1);
}

#[test]
fn sysfs_fails_closed() {
    let (tree, uuid) = devinfo_tree("lab-sysfs-devinfo-healthy.txt");
    let fs_dir = tree.path().join("sys/fs/btrfs").join(&uuid);
    let dev2 = fs_dir.join("devinfo/2");
    fs::remove_file(dev2.join("missing")).unwrap();
    fs::write(dev2.join("error_stats"), "write_errs 0 read_errs\n").unwrap();
    fs::write(dev2.join("writeable"), "yes\n").unwrap();
    fs::remove_file(fs_dir.join("allocation/data/raid1/total_bytes")).unwrap();
    fs::create_dir_all(fs_dir.join("devinfo/extra")).unwrap();
    let mut problems = Vec::new();
    let look = sysfs::read_fs(tree.path(), &uuid, &mut problems).unwrap();
    let messages: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", p.subject, p.message))
        .collect();
    let want = [
        "holds `extra`, which is not a devid",
        "devid 2: `",
        "writeable`: `yes` is not 0 or 1",
        "error_stats`: 3 words, not name-value pairs",
        "allocation/data/raid1/total_bytes` is missing",
    ];
    for want in want {
        assert!(
            messages.iter().any(|m| m.contains(want)),
            "{want}: {messages:?}"
        );
    }
    // An unreadable `missing` counts as missing; unreadable counters are
    // no counters, not zeros; an unreadable size holds bytes.
    assert!(look.devices[1].missing);
    assert_eq!(look.devices[1].errors, None);
    assert!(look.allocations.iter().any(|a| a.total_bytes == u64::MAX));

    // Names that would become paths.
    for bad in [
        "../../etc",
        "684eee49-ed32-4b3b-87c9-44b88080085",
        "",
        "684eee49/ed32-4b3b-87c9-44b880800856",
    ] {
        let err = sysfs::read_fs(tree.path(), bad, &mut problems).unwrap_err();
        assert!(
            err.contains("is not a btrfs file-system UUID"),
            "{bad}: {err}"
        );
    }
    let absent = "00000000-0000-0000-0000-000000000000";
    let err = sysfs::read_fs(tree.path(), absent, &mut problems).unwrap_err();
    assert!(err.contains("cannot list"), "{err}");
}

/// Kernel 6.18 writes `error_stats` one counter per line (the lab's 6.1
/// capture was flattened by the capture loop): both read the same.
#[test]
fn sysfs_error_stats_one_per_line() {
    let (tree, uuid) = devinfo_tree("lab-sysfs-devinfo-healthy.txt");
    let dev2 = tree
        .path()
        .join("sys/fs/btrfs")
        .join(&uuid)
        .join("devinfo/2");
    let text = fixture("host-sysfs-error-stats-multiline.txt");
    assert_eq!(text.lines().count(), 5, "{text}");
    fs::write(
        dev2.join("error_stats"),
        text.replace("flush_errs 0", "flush_errs 7"),
    )
    .unwrap();
    let mut problems = Vec::new();
    let look = sysfs::read_fs(tree.path(), &uuid, &mut problems).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(look.devices[1].errors.map(|e| e.flush), Some(7));
}

/// Found on the host: a device whose writes fail with "critical space
/// allocation error" (a full thin backing store) leaves every btrfs counter
/// at zero. btrfs counts only some block-layer statuses, so the kernel's
/// own block-layer records must be read beside the btrfs counters.
#[test]
fn write_failures_btrfs_does_not_count_are_in_the_kernel_log() {
    let capture = fixture("host-nospc-write-failures-not-counted.txt");
    let stats = progs::parse_device_stats(&part(&capture, "[", Some("critical"))).unwrap();
    assert!(stats.iter().all(|d| d.stats == ErrorStats::default()));
    let failures: Vec<_> = capture
        .lines()
        .filter_map(crate::backend::disk::kmsg::parse_record)
        .collect();
    assert_eq!(failures.len(), 3);
    assert!(failures.iter().all(|r| r.disk == "loop1"));
}

/// btrfs-progs 6.2 on kernel 6.18 printed `path  MISSING` (an empty path)
/// for a device detached before the degraded mount: it was read as a
/// present device at path `MISSING`.
#[test]
fn show_with_an_empty_missing_path_is_a_missing_device() {
    let show = progs::parse_show(&fixture("host-fi-show-missing-empty-path.txt")).unwrap();
    assert_eq!(
        show.devices[1],
        ShowDevice {
            devid: 2,
            size: 0,
            used: 0,
            path: None,
            missing: true,
        }
    );
    assert!(!show.devices[0].missing);
}

#[test]
fn device_usage_gives_the_size_btrfs_keeps_for_a_missing_device() {
    let usage = progs::parse_device_usage(&fixture("host-device-usage-missing.txt")).unwrap();
    assert_eq!(
        usage,
        [
            progs::DeviceUsage {
                devid: 1,
                path: Some("/dev/loop0".into()),
                size: 314572800,
            },
            progs::DeviceUsage {
                devid: 2,
                path: None,
                size: 314572800,
            },
        ]
    );
}

#[test]
fn device_usage_refuses_what_it_cannot_read() {
    for (text, says) in [
        ("", "no device"),
        ("   Device size: 1\n", "before any"),
        ("/dev/sda\n", "ID: N"),
        ("/dev/sda, ID: x\n", "not a number"),
        ("/dev/sda, ID: 1\n   Data,RAID1: 64.00MiB\n", "--raw"),
        ("/dev/sda, ID: 1\n   Data,RAID1 64\n", "Name: bytes"),
        (
            "/dev/sda, ID: 1\n   Data,RAID1: 18446744073709551615\n   Unallocated: 2\n",
            "2^64",
        ),
    ] {
        let err = progs::parse_device_usage(text).unwrap_err();
        assert!(err.contains(says), "{text:?}: {err}");
    }
}

/// Seen in the lab on 6.18: the convert balance of the missing-disk
/// runbook removed `allocation/metadata/single/` between the look listing
/// it and reading its `total_bytes`, and the guard halted the run on an
/// unreadable file system. A directory the kernel removes mid-read is a
/// torn read, taken again; the file system is not unreadable.
#[test]
fn regression_a_profile_removed_mid_read_is_read_again_not_a_problem() {
    let (tree, uuid) = devinfo_tree("lab-sysfs-devinfo-healthy.txt");
    let fs_dir = tree.path().join("sys/fs/btrfs").join(&uuid);
    let metadata = fs_dir.join("allocation/metadata");
    let single = metadata.join("single");
    fs::create_dir_all(&single).unwrap();
    fs::write(single.join("total_bytes"), "8388608\n").unwrap();
    fs::write(single.join("used_bytes"), "0\n").unwrap();
    let mut passes = 0;
    let mut problems = Vec::new();
    let look = sysfs::read_fs_observed(tree.path(), &uuid, &mut problems, &mut |dir| {
        if dir.ends_with("devinfo") {
            passes += 1;
        }
        // The balance converts the last single chunk right after the
        // first pass lists the profiles.
        if dir == metadata && passes == 1 {
            fs::remove_dir_all(&single).unwrap();
        }
    })
    .unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(passes, 2);
    assert!(
        look.allocations
            .iter()
            .all(|a| a.profile == crate::backend::btrfs::profile::Profile::Raid1),
        "{:?}",
        look.allocations
    );
    assert_eq!(profile::tolerance(&look.allocations), Some(1));
}

/// The end of a replace removes the source's `devinfo/<devid>/` (and the
/// target's devid 0): a look that listed it reads again.
#[test]
fn a_devid_removed_mid_read_is_read_again_not_a_missing_device() {
    let (tree, uuid) = devinfo_tree("lab-sysfs-devinfo-healthy.txt");
    let devinfo = tree.path().join("sys/fs/btrfs").join(&uuid).join("devinfo");
    let dev2 = devinfo.join("2");
    let mut passes = 0;
    let mut problems = Vec::new();
    let look = sysfs::read_fs_observed(tree.path(), &uuid, &mut problems, &mut |dir| {
        if dir == devinfo {
            passes += 1;
            if passes == 1 {
                fs::remove_dir_all(&dev2).unwrap();
            }
        }
    })
    .unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(passes, 2);
    assert_eq!(look.devices.len(), 1);
    assert!(!look.devices[0].missing);
}

/// A tree that keeps changing under every pass is not read as healthy:
/// after the last attempt its problems stand (once, not once per pass).
#[test]
fn a_read_torn_on_every_attempt_keeps_its_problems() {
    let (tree, uuid) = devinfo_tree("lab-sysfs-devinfo-healthy.txt");
    let fs_dir = tree.path().join("sys/fs/btrfs").join(&uuid);
    let metadata = fs_dir.join("allocation/metadata");
    let single = metadata.join("single");
    let mut passes = 0;
    let mut problems = Vec::new();
    let look = sysfs::read_fs_observed(tree.path(), &uuid, &mut problems, &mut |dir| {
        if dir.ends_with("devinfo") {
            passes += 1;
            fs::create_dir_all(&single).unwrap();
        }
        if dir == metadata {
            fs::remove_dir_all(&single).unwrap();
        }
    })
    .unwrap();
    assert_eq!(passes, 3);
    let missing: Vec<_> = problems
        .iter()
        .filter(|p| {
            p.message
                .contains("metadata/single/total_bytes` is missing")
        })
        .collect();
    assert_eq!(missing.len(), 1, "{problems:?}");
    assert!(look.allocations.iter().any(|a| a.total_bytes == u64::MAX));
}
