//! Data canaries on a real filesystem: ext4 on a loop device. The canary is
//! written by swapguard's own canary code, then its bytes are overwritten
//! with zeros behind the tool's back, on the block device at the offset
//! FIEMAP gave, and the next verification must see it.
//!
//! The second test lays the filesystem out as md RAID1 lays out a member (a
//! 1 MiB data offset before it) and describes a two-member mirror in a
//! prepared sysfs tree, so the per-member check (FIEMAP extent + data offset,
//! read from each member with O_DIRECT) runs for real: one member's copy is
//! zeroed while the filesystem still reads fine, and only the per-member
//! check can tell. (md itself is not available on this host; the QEMU lab
//! is where real md runs.)
//!
//! These need root, loop devices, `losetup`, `mkfs.ext4` and `mount`. Under
//! CI=true anything missing fails the test; elsewhere it says what it skipped.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use swapguard::canary::{Canaries, FileCanary};

const MIB: u64 = 1 << 20;

fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Why these tests cannot run here, if they cannot.
fn missing() -> Option<String> {
    if run("id", &["-u"]).as_deref() != Ok("0") {
        return Some("not root".into());
    }
    if !Path::new("/dev/loop-control").exists() {
        return Some("no /dev/loop-control (loop devices)".into());
    }
    for tool in ["losetup", "mkfs.ext4", "mount", "umount"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    None
}

/// Skip (outside CI) or fail (in CI) when the host cannot run the test.
fn can_run(test: &str) -> bool {
    let Some(why) = missing() else {
        return true;
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test} must run in CI but cannot: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
    false
}

/// An ext4 filesystem on a loop device over `image` (starting `offset`
/// bytes into it), mounted; unmounted and detached on drop.
struct Mounted {
    loop_dev: String,
    mnt: PathBuf,
}

impl Mounted {
    fn new(image: &Path, size: u64, offset: u64, mnt: &Path) -> Result<Mounted, String> {
        let file = std::fs::File::create(image).map_err(|e| e.to_string())?;
        file.set_len(size + offset).map_err(|e| e.to_string())?;
        let image_arg = image.display().to_string();
        let offset_arg = offset.to_string();
        let loop_dev = run(
            "losetup",
            &["--find", "--show", "--offset", &offset_arg, &image_arg],
        )?;
        let m = Mounted {
            loop_dev,
            mnt: mnt.to_path_buf(),
        };
        run("mkfs.ext4", &["-q", "-F", "-b", "4096", &m.loop_dev])?;
        std::fs::create_dir_all(mnt).map_err(|e| e.to_string())?;
        run("mount", &[&m.loop_dev, &mnt.display().to_string()])?;
        Ok(m)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = run("umount", &[&self.mnt.display().to_string()]);
        let _ = run("losetup", &["--detach", &self.loop_dev]);
    }
}

#[test]
fn zeros_written_under_the_canary_on_the_block_device_halt_the_next_check() {
    if !can_run("zeros_written_under_the_canary_on_the_block_device_halt_the_next_check") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fs = Mounted::new(
        &dir.path().join("disk.img"),
        64 * MIB,
        0,
        &dir.path().join("mnt"),
    )
    .unwrap();
    let mut canary = FileCanary::new("/");
    let planted = canary.plant(&fs.mnt, MIB, "fs-test").unwrap();
    let loop_name = fs.loop_dev.trim_start_matches("/dev/");
    assert_eq!(planted.device.as_deref(), Some(loop_name), "{planted:?}");
    assert!(!planted.extents.is_empty(), "{planted:?}");
    assert_eq!(planted.extents.iter().map(|e| e.length).sum::<u64>(), MIB);
    assert_eq!(
        planted.not_checked.as_deref(),
        Some(format!("`{loop_name}` is not an md array, so there is one copy: the file itself, re-read with O_DIRECT").as_str())
    );
    assert!(canary.verify().unwrap().is_empty());

    // Behind the tool's back: 64 KiB of zeros straight onto the device where
    // FIEMAP says the file's second 64 KiB lie, bypassing every cache.
    let extent = planted.extents[0];
    assert!(extent.length >= 128 * 1024, "{extent:?}");
    let seek = (extent.physical + 64 * 1024) / 4096;
    run(
        "dd",
        &[
            "if=/dev/zero",
            &format!("of={}", fs.loop_dev),
            "bs=4096",
            "count=16",
            &format!("seek={seek}"),
            "oflag=direct",
            "conv=notrunc",
            "status=none",
        ],
    )
    .unwrap();
    let faults = canary.verify().unwrap();
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(faults[0].what, "the file");
    assert!(faults[0].zeros, "{faults:?}");
    assert!(
        faults[0]
            .detail
            .ends_with("bytes differ, from byte 65536 to 131071, all zeros"),
        "{}",
        faults[0].detail
    );
    let path = PathBuf::from(&planted.path);
    assert_eq!(canary.remove().unwrap(), Some(planted.path.clone()));
    assert!(!path.exists());
}

#[test]
fn one_mirror_member_writing_zeros_is_caught_by_the_per_member_check() {
    if !can_run("one_mirror_member_writing_zeros_is_caught_by_the_per_member_check") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Member image A: md's data offset (2048 sectors, 1 MiB), then the
    // filesystem, which the loop device exposes from that offset on.
    let image_a = dir.path().join("member-a.img");
    let fs = Mounted::new(&image_a, 64 * MIB, MIB, &dir.path().join("mnt")).unwrap();

    // A sysfs tree describing md9, a RAID1 of sdx and sdy.
    let root = dir.path().join("root");
    let md = root.join("sys/block/md9/md");
    std::fs::create_dir_all(root.join("sys/class/block/md9")).unwrap();
    std::fs::create_dir_all(root.join("dev")).unwrap();
    std::fs::write(md.parent().unwrap().join("size"), "131072\n").ok();
    for member in ["sdx", "sdy"] {
        let d = md.join(format!("dev-{member}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("state"), "in_sync\n").unwrap();
        std::fs::write(d.join("offset"), "2048\n").unwrap();
        std::os::unix::fs::symlink(&image_a, root.join("dev").join(member)).unwrap();
    }
    std::fs::write(md.join("level"), "raid1\n").unwrap();

    let mut canary =
        FileCanary::new(&root).with_member_copies(swapguard::backend::registry::member_copies);
    let planted = canary
        .plant_on(&fs.mnt, MIB, "md-test", Some("md9"))
        .unwrap();
    assert_eq!(planted.not_checked, None, "{planted:?}");
    let first = planted.extents[0].physical + MIB;
    assert_eq!(
        planted.copies,
        [
            format!(
                "member sdx ({}) at byte {first}",
                root.join("dev/sdx").display()
            ),
            format!(
                "member sdy ({}) at byte {first}",
                root.join("dev/sdy").display()
            ),
        ]
    );

    // sdy becomes a separate copy of the member (as a mirror's second drive
    // is), identical for now.
    let image_b = dir.path().join("member-b.img");
    std::fs::copy(&image_a, &image_b).unwrap();
    std::fs::remove_file(root.join("dev/sdy")).unwrap();
    std::os::unix::fs::symlink(&image_b, root.join("dev/sdy")).unwrap();
    assert!(canary.verify().unwrap().is_empty());

    // sdy writes zeros over its copy of the canary. Reads through the
    // filesystem come from sdx and stay right; only the per-member check
    // sees it.
    let b = std::fs::OpenOptions::new()
        .write(true)
        .open(&image_b)
        .unwrap();
    b.write_all_at(&vec![0u8; 4096 * 4], first).unwrap();
    b.sync_all().unwrap();
    let faults = canary.verify().unwrap();
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(faults[0].what, "member sdy's copy");
    assert!(faults[0].zeros, "{faults:?}");
    // The canary is random: its first bytes may be zeros already (1 in 256
    // for each), so the first byte that differs is not always byte 0.
    let detail = &faults[0].detail;
    let from: u64 = detail
        .split("from byte ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{detail}"));
    assert!(from < 64, "{detail}");
    assert!(detail.ends_with(" to 16383, all zeros"), "{detail}");
    canary.remove().unwrap();
}
