//! `zpool status` in every captured form (tests/fixtures/zfs/), and broken.

use std::fs;
use std::path::Path;

use crate::backend::zfs::{
    Pool, ScanFunction, ScanState, Vdev, VdevKind, VdevState, status_json, status_text,
};

/// The tool's output: the capture without its `$ command` and `# rc` lines.
fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/zfs")
        .join(name);
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("$ ") && !l.starts_with("# "))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn one(pools: Vec<Pool>) -> Pool {
    assert_eq!(pools.len(), 1, "{pools:?}");
    pools.into_iter().next().unwrap()
}

/// `name STATE r/w/c [note]` for every leaf, with its parents.
fn leaves(pool: &Pool) -> Vec<String> {
    pool.leaves()
        .into_iter()
        .map(|(v, above)| {
            format!(
                "{}/{} {:?} {}/{}/{}{}",
                above.join("/"),
                v.name,
                v.state,
                v.read_errors,
                v.write_errors,
                v.checksum_errors,
                v.note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

fn find<'a>(pool: &'a Pool, name: &str) -> &'a Vdev {
    pool.leaves()
        .into_iter()
        .map(|(v, _)| v)
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no leaf {name}"))
}

#[test]
fn json_healthy_and_after_a_pull_zfs_has_not_seen() {
    let healthy = one(status_json::parse(&fixture("lab-status-j-healthy.json.txt")).unwrap());
    assert_eq!(healthy.state, VdevState::Online);
    assert_eq!(healthy.data_errors, Some(0));
    assert_eq!(
        leaves(&healthy),
        [
            "mirror-0/nvme0n1p1 Online 0/0/0",
            "mirror-0/nvme1n1p1 Online 0/0/0"
        ]
    );
    let leaf = find(&healthy, "nvme0n1p1");
    assert_eq!(leaf.guid, Some(12296363858440934939), "a GUID past 2^63");
    assert_eq!(leaf.path.as_deref(), Some("/dev/nvme0n1p1"));
    assert_eq!(leaf.slow_ios, Some(0));

    // Pulled, no I/O since: ZFS still says ONLINE. The guard cannot take
    // the pool's word for it; the device's absence is what shows the pull.
    let pulled =
        one(status_json::parse(&fixture("lab-status-j-after-pull-before-io.json.txt")).unwrap());
    assert_eq!(find(&pulled, "nvme1n1p1").state, VdevState::Online);
}

#[test]
fn json_resilvered_with_the_old_leaf_under_replacing() {
    let pool = one(status_json::parse(&fixture("lab-status-j-resilvered.json.txt")).unwrap());
    assert_eq!(pool.state, VdevState::Degraded);
    assert_eq!(
        leaves(&pool),
        [
            "mirror-0/nvme0n1p1 Online 0/0/0",
            "mirror-0/replacing-1/nvme1n1p1 Online 0/0/0",
            "mirror-0/replacing-1/nvme1n1p1/old Removed 0/0/0"
        ]
    );
    // JSON objects come back in name order (serde_json's map is sorted).
    // The old leaf's path gets `/old` appended: not a device to open.
    assert_eq!(
        find(&pool, "nvme1n1p1/old").path.as_deref(),
        Some("/dev/nvme1n1p1/old")
    );
    let scan = pool.scan.unwrap();
    assert_eq!(
        (scan.function, scan.state, scan.errors),
        (ScanFunction::Resilver, ScanState::Finished, Some(0))
    );
    assert_eq!(scan.permille, Some(992));
}

#[test]
fn json_without_json_int_and_with_the_man_pages_states() {
    let pool = one(status_json::parse(&fixture("list-status-j-manpage-example.json")).unwrap());
    assert_eq!(pool.name, "tank");
    let raidz = &pool.vdevs[0];
    assert_eq!(raidz.kind, VdevKind::Raidz);
    assert_eq!(raidz.state, VdevState::Online, "HEALTHY reads as ONLINE");
    assert!(pool.leaves().iter().all(|(v, _)| v.guid.is_some()));
}

#[test]
fn json_refuses_what_it_cannot_read() {
    let healthy = fixture("lab-status-j-healthy.json.txt");
    let table = [
        (String::new(), "not JSON"),
        ("{}".to_string(), "`output_version.command` is missing"),
        (
            healthy.replace("\"vers_major\":0", "\"vers_major\":1"),
            "`output_version.vers_major` is not 0",
        ),
        (
            healthy.replace(
                "\"read_errors\":0,\"write_errors\":0,\"checksum_errors\":0,\"slow_ios\":0}",
                "\"read_errors\":\"lots\",\"write_errors\":0,\"checksum_errors\":0,\"slow_ios\":0}",
            ),
            "read_errors` is \"lots\", not a count",
        ),
        (
            healthy.replacen("\"checksum_errors\":0,\"slow_ios\":0", "\"slow_ios\":0", 1),
            "has no `checksum_errors`",
        ),
        (
            healthy.replace("\"vdev_type\":\"root\"", "\"vdev_type\":\"mirror\""),
            "not the root",
        ),
        (
            healthy.replace("\"name\":\"tank\",\"state\"", "\"name\":\"pool\",\"state\""),
            "keyed `tank` but named `pool`",
        ),
        (
            healthy.replace("\"error_count\":0", "\"error_count\":-1"),
            "`error_count` is -1, not a count",
        ),
    ];
    for (text, want) in table {
        let err = status_json::parse(&text).unwrap_err();
        assert!(err.contains(want), "{want}: {err}");
    }
}

#[test]
fn text_from_the_lab() {
    let healthy = one(status_text::parse(&fixture("lab-status-healthy.txt")).unwrap());
    assert_eq!(healthy.data_errors, Some(0));
    assert_eq!(
        leaves(&healthy),
        [
            "mirror-0/nvme0n1p1 Online 0/0/0",
            "mirror-0/nvme1n1p1 Online 0/0/0"
        ]
    );
    let pulled = one(status_text::parse(&fixture("lab-status-after-pull.txt")).unwrap());
    assert_eq!(pulled.state, VdevState::Degraded);
    assert_eq!(find(&pulled, "nvme1n1p1").state, VdevState::Removed);

    let replacing = one(status_text::parse(&fixture("lab-status-replacing.txt")).unwrap());
    assert_eq!(
        leaves(&replacing),
        [
            "mirror-0/nvme0n1p1 Online 0/0/0",
            "mirror-0/replacing-1/nvme1n1p1/old Removed 0/0/0",
            "mirror-0/replacing-1/nvme1n1p1 Online 0/0/0 ((resilvering))"
        ]
    );
    assert!(find(&replacing, "nvme1n1p1").resilvering);
    let scan = replacing.scan.unwrap();
    assert_eq!(
        (scan.function, scan.state, scan.permille),
        (ScanFunction::Resilver, ScanState::Scanning, Some(564))
    );
}

#[test]
fn text_in_every_older_format() {
    // 0.6/0.7, with log and cache classes.
    let logs =
        one(status_text::parse(&fixture("list-status-logs-cache-resilver-issue3267.txt")).unwrap());
    assert_eq!(
        leaves(&logs),
        [
            "mirror-0/sdc Online 0/0/0",
            "mirror-0/sdd Online 0/0/0",
            "logs/mirror-1/sda3 Online 0/0/0",
            "logs/mirror-1/sdb3 Online 0/0/0",
            "cache/sda4 Online 0/0/0",
            "cache/sdb4 Online 0/0/0"
        ]
    );
    assert_eq!(logs.scan.unwrap().permille, Some(3));

    // 0.7, spaces instead of a TAB, raidz2 with a replacing group.
    let raidz =
        one(status_text::parse(&fixture("list-status-resilver-0.7-format-issue8715.txt")).unwrap());
    assert_eq!(raidz.vdevs[0].kind, VdevKind::Raidz);
    assert_eq!(raidz.vdevs[0].children.len(), 6);
    assert_eq!(find(&raidz, "sde").state, VdevState::Unavail);
    assert!(find(&raidz, "sde1").resilvering);

    // 0.8: a survivor DEGRADED with "too many errors" beside a replacing.
    let vz = one(
        status_text::parse(&fixture("list-status-resilver-replacing-0.8-issue7537.txt")).unwrap(),
    );
    let bad = find(&vz, "ata-WDC_WD3001FFSX-68JNUN0_WD-WCC13HETXXKA");
    assert_eq!(bad.state, VdevState::Degraded);
    assert_eq!(bad.note.as_deref(), Some("too many errors"));
    assert_eq!(vz.scan.unwrap().permille, Some(664));

    // 2.2 scrub progress (the capture stops after `config:`).
    let err = status_text::parse(&fixture(
        "list-status-scrub-progress-2.2-format-zfs_exporter-test.txt",
    ))
    .unwrap_err();
    assert!(
        err.contains("expected the `NAME STATE READ WRITE CKSUM` header"),
        "{err}"
    );
    let scan_only = fixture("list-status-scrub-progress-2.2-format-zfs_exporter-test.txt")
        + "\n\tNAME        STATE     READ WRITE CKSUM\n\tvault       ONLINE       0     0     0\n\t  sda       ONLINE       0     0     0\n\nerrors: No known data errors\n";
    let vault = one(status_text::parse(&scan_only).unwrap());
    let scan = vault.scan.unwrap();
    assert_eq!(
        (scan.function, scan.state, scan.permille),
        (ScanFunction::Scrub, ScanState::Scanning, Some(251))
    );
}

#[test]
fn text_states_notes_spares_and_errors() {
    let text = "  pool: tank
 state: DEGRADED
status: One or more devices are faulted in response to persistent errors.
\tSufficient replicas exist for the pool to continue functioning in a
\tdegraded state.
action: Replace the faulted device, or use 'zpool clear' to mark the device
\trepaired.
  scan: scrub repaired 0B in 00:00:01 with 2 errors on Sat Nov 28 07:40:00 2026
config:

\tNAME                      STATE     READ WRITE CKSUM
\ttank                      DEGRADED     0     0     0
\t  mirror-0                DEGRADED     0     0     0
\t    sda1                  FAULTED      3   120     0  too many errors
\t    1234567890123456789   UNAVAIL      0     0     0  was /dev/sdb1
\t    sdc1                  ONLINE       0     0  1.2K
\tspares
\t  sdz                     AVAIL
\t  sdy                     INUSE     currently in use

errors: Permanent errors have been detected in the following files:

        /tank/db/file1
        <metadata>:<0x0>
";
    let pool = one(status_text::parse(text).unwrap());
    assert_eq!(
        leaves(&pool),
        [
            "mirror-0/sda1 Faulted 3/120/0 (too many errors)",
            "mirror-0/1234567890123456789 Unavail 0/0/0 (was /dev/sdb1)",
            "mirror-0/sdc1 Online 0/0/1229",
            "spares/sdz Avail 0/0/0",
            "spares/sdy InUse 0/0/0 (currently in use)"
        ]
    );
    let gone = find(&pool, "1234567890123456789");
    assert_eq!(
        (gone.guid, gone.path.as_deref()),
        (Some(1234567890123456789), Some("/dev/sdb1"))
    );
    assert_eq!(pool.data_errors, Some(2));
    let scan = pool.scan.unwrap();
    assert_eq!(
        (scan.state, scan.errors, scan.permille),
        (ScanState::Finished, Some(2), Some(1000))
    );

    let two_pools = fixture("lab-status-healthy.txt") + &fixture("lab-status-after-pull.txt");
    assert_eq!(status_text::parse(&two_pools).unwrap().len(), 2);
    assert!(
        status_text::parse("all pools are healthy\n")
            .unwrap_err()
            .contains("no pool")
    );
}

#[test]
fn text_refuses_what_it_cannot_read() {
    let healthy = fixture("lab-status-healthy.txt");
    let table = [
        (String::new(), "no pool in the output"),
        ("hello\n".to_string(), "line 1: expected `pool:`"),
        (healthy.replace(" state: ONLINE\n", ""), "no `state:` line"),
        (
            healthy.replace("config:", "konfig:"),
            "not a line of `zpool status`",
        ),
        (
            healthy.replace("NAME           STATE", "NAME STATUS"),
            "expected the `NAME STATE READ WRITE CKSUM` header",
        ),
        (
            healthy.replace(
                "nvme0n1p1  ONLINE       0     0     0",
                "nvme0n1p1  ONLINE       0     0",
            ),
            "fewer than the READ WRITE CKSUM columns",
        ),
        (
            healthy.replace("nvme0n1p1  ONLINE       0", "nvme0n1p1  ONLINE       x"),
            "READ `x` is not a count",
        ),
        (
            healthy.replace("nvme0n1p1  ONLINE", "nvme0n1p1  SMOKING"),
            "unknown state `SMOKING`",
        ),
        (
            healthy.replace("\t    nvme0n1p1", "\t     nvme0n1p1"),
            "not the table's",
        ),
        (
            healthy.replace("\t    nvme0n1p1", "\t      nvme0n1p1"),
            "two levels below its parent",
        ),
        (
            healthy.replace("\ttank   ", "\ttanks  "),
            "does not start with the pool's own row",
        ),
        (
            healthy.replace("No known data errors", "Some data errors"),
            "`Some` is not a count of data errors",
        ),
        (
            healthy.replace("No known data errors", "all good"),
            "not `No known data errors`",
        ),
    ];
    for (text, want) in table {
        let err = status_text::parse(&text).unwrap_err();
        assert!(err.contains(want), "{want}: {err}");
    }
}
