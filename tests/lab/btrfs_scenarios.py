"""btrfs scenarios of the lab (tests/lab/lab.py registers them on import).

The guest is the md guest plus Debian's btrfs module (with its
dependencies, in `modprobe --show-depends` order) and btrfs-progs (`btrfs`,
`mkfs.btrfs` and their libraries); only btrfs scenarios get that initramfs.
Its drives are 256 MiB (mkfs.btrfs wants more than md's 64 MiB for a RAID1
with room to balance). Every scenario makes a RAID1 (`-d raid1 -m raid1`)
over LAB-A-0001 and LAB-B-0002, mounts it on /mnt/data, writes data, and
runs swapguard with `--array /mnt/data` on the runbooks from runbooks/.

See docs/lab.md (btrfs section). Python 3 standard library only.
"""

import json
import os
import re
from pathlib import Path

import lab as L
from lab import SERIAL_A, SERIAL_B, SERIAL_C, Technician, journal_time, norm, scenario
from machine import LabError, parse_adjtimex

MNT = "/mnt/data"
HOT = "/runbooks/btrfs-replace-hot.toml"
MISSING = "/runbooks/btrfs-replace-missing.toml"
DRIVE_MIB = 256
# The five per-device counters, as sysfs `error_stats` names them.
COUNTERS = ["write_errs", "read_errs", "flush_errs", "corruption_errs", "generation_errs"]
# A recognisable pattern for the file whose blocks the corruption scenario
# overwrites on one drive (found in the image from the host; no
# logical-to-physical mapping needed).
MARK = b"SWAPGUARD-LAB-BTRFS-BLOCK-"


# Lab only: the shipped hot runbook with `smart = "optional"`, for QEMU's
# virtio-scsi disks, which answer smartctl with no SMART verdict (as
# tests/lab/runbooks/lab-member-smart-optional.toml is for md). Made from
# the shipped file when the initramfs is built, so it cannot drift.
HOT_NO_SMART = "/runbooks/lab-btrfs-hot-smart-optional.toml"
# The shipped runbooks check the mount point by the UUID findmnt reads for
# the mount itself (`--output UUID --mountpoint`, `stdout_is = "{array}"`),
# which holds on SCSI too (btrfs-scsi-mount-check); the SCSI scenarios use
# HOT_NO_SMART with that check in it.
HOT_SCSI = HOT_NO_SMART
MOUNT_CHECK = '''run = ["findmnt", "--noheadings", "--output", "UUID", "--mountpoint", "{mount}"]
stdout_is = "{array}"
'''


def guest_files(work):
    """(extra files, modules, binaries) of the btrfs guest's initramfs."""
    files = {}
    for name in ["btrfs-replace-hot.toml", "btrfs-replace-missing.toml"]:
        src = L.REPO / "runbooks" / name
        if src.exists():  # a scenario whose runbook is absent fails, naming it
            files[f"/runbooks/{name}"] = src
    hot = L.REPO / "runbooks/btrfs-replace-hot.toml"
    if hot.exists():
        text = hot.read_text()
        line = 'smart = "required"'
        if text.count(line) != 1:
            raise LabError(f"{hot}: no single `{line}` line to make the SCSI variant from")
        text = text.replace(line, 'smart = "optional"')
        variant = Path(work) / HOT_NO_SMART.lstrip("/").replace("/", "-")
        variant.write_text("# Lab only: runbooks/btrfs-replace-hot.toml with SMART optional "
                           "(virtio-scsi has no SMART verdict).\n" + text)
        files[HOT_NO_SMART] = variant
        if text.count(MOUNT_CHECK) != 1:
            raise LabError(f"{hot}: the mount-point check is not as tests/lab/btrfs_scenarios.py "
                           "knows it; update MOUNT_CHECK and btrfs-scsi-mount-check")
    # findmnt: the runbooks' preflight check of the mount point.
    return files, ["btrfs"], ["/usr/bin/btrfs", "/usr/sbin/mkfs.btrfs", "/usr/bin/findmnt"]


L.GUEST_KINDS["btrfs"] = guest_files
L.GUEST_TOOLS["btrfs"] = ["btrfs", "mkfs.btrfs", "findmnt"]
L.GUEST_DRIVE_MIB["btrfs"] = DRIVE_MIB


# ---------------------------------------------------------------------------
# the file system and what the kernel shows of it


def make_fs(lab, mib=32):
    """mkfs.btrfs RAID1 over A and B, mounted on MNT, with `mib` MiB of
    data written and synced. Returns the file system's UUID."""
    a, b = lab.disk_of(SERIAL_A), lab.disk_of(SERIAL_B)
    lab.shell.run("ln -sf /proc/mounts /etc/mtab; mkdir -p " + MNT)
    lab.shell.run(f"mkfs.btrfs -f -L data -d raid1 -m raid1 /dev/{a} /dev/{b} >/tmp/mkfs.out 2>&1 "
                  f"|| {{ cat /tmp/mkfs.out; false; }}", timeout=120)
    lab.shell.run(f"mount -t btrfs /dev/{a} {MNT}")
    write_data(lab, "data-0", mib)
    return fs_uuid(lab)


def write_data(lab, name, mib, pattern=False):
    """A file of `mib` MiB under MNT, synced: random bytes, or 4 KiB blocks
    that each start with MARK."""
    if pattern:
        # One 4 KiB block starting with MARK (built in the guest: a serial
        # line is at most 4095 characters), doubled up to `mib` MiB.
        lab.shell.run(f"s={MARK.decode()}; while [ ${{#s}} -lt 4096 ]; do s=$s$s; done; "
                      "printf %s \"$s\" | head -c 4096 > /tmp/block; n=4; "
                      f"while [ $n -lt {mib * 1024} ]; do cat /tmp/block /tmp/block > /tmp/block2; "
                      f"mv /tmp/block2 /tmp/block; n=$((n*2)); done; "
                      f"cp /tmp/block {MNT}/{name}; rm /tmp/block; sync", timeout=300)
    else:
        lab.shell.run(f"dd if=/dev/urandom of={MNT}/{name} bs=1M count={mib} 2>/dev/null; sync",
                      timeout=300)


def fs_uuid(lab):
    out = lab.shell.run("ls /sys/fs/btrfs")
    uuids = [w for w in out.split() if re.fullmatch(r"[0-9a-f-]{36}", w)]
    if len(uuids) != 1:
        raise LabError(f"want one btrfs file system in /sys/fs/btrfs, found: {out}")
    return uuids[0]


def devid_of(lab, serial):
    """The devid btrfs gives the drive with `serial` (from `btrfs
    filesystem show --raw`), or None."""
    disk = lab.disk_of(serial)
    if disk is None:
        return None
    out = lab.shell.run(f"btrfs filesystem show --raw {MNT}")
    m = re.search(rf"devid\s+(\d+)\s+size \d+ used \d+ path /dev/{disk}\b", out)
    return int(m.group(1)) if m else None


def error_stats(lab, devid):
    """{counter: value} of one devid from sysfs `error_stats`."""
    uuid = fs_uuid(lab)
    text = lab.shell.read(f"/sys/fs/btrfs/{uuid}/devinfo/{devid}/error_stats")
    words = text.split()
    stats = {words[i]: int(words[i + 1]) for i in range(0, len(words) - 1, 2)}
    if sorted(stats) != sorted(COUNTERS):
        raise LabError(f"unexpected error_stats of devid {devid}: {text!r}")
    return stats


def view(lab):
    """What btrfs shows: show, df, device stats, and every devinfo
    attribute in sysfs (the shape of the reference captures)."""
    return lab.shell.run(
        f"echo '$ btrfs filesystem show --raw {MNT}'; btrfs filesystem show --raw {MNT} 2>&1; "
        f"echo '$ btrfs filesystem df --raw {MNT}'; btrfs filesystem df --raw {MNT} 2>&1; "
        f"echo '$ btrfs device stats {MNT}'; btrfs device stats {MNT} 2>&1; "
        "for d in /sys/fs/btrfs/*/devinfo/*; do echo \"== $d\"; for f in $d/*; do [ -f $f ] && "
        "echo \"$(basename $f): $(cat $f 2>&1 | tr '\\n' ' ')\"; done; done; "
        "echo '== allocation'; for p in /sys/fs/btrfs/*/allocation/*/; do "
        "for k in raid1 single dup raid10; do [ -d $p$k ] && echo \"$p$k total_bytes "
        "$(cat $p$k/total_bytes)\"; done; done; true")


def data_profiles(lab):
    """The data chunk profiles `btrfs filesystem df` lists, e.g. {"RAID1"}."""
    out = lab.shell.run(f"btrfs filesystem df --raw {MNT}")
    return set(re.findall(r"^Data, (\w+):", out, re.M))


def corrupt_blocks(lab, serial, limit=64 * 1024):
    """Overwrite up to `limit` bytes of MARK blocks in the drive's image
    with random bytes, from the host (the guest's copy of the drive's other
    mirror stays good). Returns how many bytes were overwritten."""
    drive = lab.machine.drive_by_serial(serial)
    chunk = 4 * 1024 * 1024
    hits = []
    with open(drive.image, "rb") as f:
        offset = 0
        while len(hits) * 4096 < limit:
            data = f.read(chunk)
            if not data:
                break
            for block in range(0, len(data), 4096):
                if data[block:block + len(MARK)] == MARK:
                    hits.append(offset + block)
                    if len(hits) * 4096 >= limit:
                        break
            offset += len(data)
    if not hits:
        raise LabError(f"no block of the marked file found in {drive.image}")
    for at in hits:
        lab.machine.overwrite(serial, at, os.urandom(4096))
    lab.say(f"  overwrote {len(hits)} blocks of the marked file under {serial} "
            f"(first at byte {hits[0]})")
    return len(hits) * 4096


def run_btrfs(lab, runbook, on_step, target=SERIAL_B, timeout=600.0, params=()):
    return Technician(lab, on_step).run(runbook, target, timeout=timeout, array=MNT,
                                        params=[f"mount={MNT}", *params])


def need(path):
    """Fail the scenario, naming the runbook, when it is not in runbooks/."""
    name = path.split("/")[-1].replace("lab-btrfs-hot-smart-optional", "btrfs-replace-hot")
    if not (L.REPO / "runbooks" / name).exists():
        raise LabError(f"runbooks/{name} does not exist")


# ---------------------------------------------------------------------------
# the guest itself (no swapguard run): what the kernel shows, captured


@scenario("btrfs-guest", guest="btrfs")
def btrfs_guest(lab, check):
    """No swapguard: the btrfs guest and the lab's powers on it. RAID1 made
    and mounted; survivor write errors (blkdebug) counted in error_stats;
    overwritten blocks found by a scrub as corruption_errs; a drive pulled;
    a degraded mount writing single chunks, replaced and balanced back."""
    make_fs(lab)
    lab.save("view-healthy.txt", view(lab))
    devid_a, devid_b = devid_of(lab, SERIAL_A), devid_of(lab, SERIAL_B)
    check.that((devid_a, devid_b) == (1, 2), f"devids {devid_a}, {devid_b}, want 1, 2")
    check.that(data_profiles(lab) == {"RAID1"}, f"data profiles {data_profiles(lab)}")

    # Write errors on A: every write to it fails (blkdebug), a synced write
    # to the file system lands on both mirrors.
    before = error_stats(lab, devid_a)
    lab.machine.inject_errors(SERIAL_A, [{"event": "write_aio", "iotype": "write", "errno": 5, "once": False}])
    write_data(lab, "data-werr", 4)
    lab.machine.clear_errors(SERIAL_A)
    after = error_stats(lab, devid_a)
    lab.save("view-write-errors.txt", view(lab))
    lab.say(f"  devid {devid_a} error_stats {before} -> {after}")
    check.that(after["write_errs"] > before["write_errs"], f"write_errs did not rise: {after}")
    check.that(error_stats(lab, devid_b)["write_errs"] == 0, "the healthy mirror counts write errors")
    rc, _ = lab.shell.status(f"touch {MNT}/still-writable && sync")
    check.that(rc == 0, "the file system is no longer writable after one mirror's write errors")
    # The writes A lost are found by a scrub as checksum errors (and
    # rewritten from B), so the corruption below starts from a clean copy.
    rc, out = lab.shell.status(f"btrfs scrub start -B {MNT}", timeout=300)
    lab.save("scrub-after-write-errors.txt", out)
    lab.say(f"  scrub after the write errors (rc {rc}): devid {devid_a} error_stats "
            f"{error_stats(lab, devid_a)}")

    # Corruption under A's copy: found by a scrub (and repaired from B).
    write_data(lab, "data-marked", 4, pattern=True)
    lab.shell.run("echo 3 > /proc/sys/vm/drop_caches")
    corrupt_blocks(lab, SERIAL_A)
    before = error_stats(lab, devid_a)
    rc, out = lab.shell.status(f"btrfs scrub start -B {MNT}", timeout=300)
    lab.save("scrub.txt", out)
    after = error_stats(lab, devid_a)
    lab.say(f"  scrub (rc {rc}): devid {devid_a} corruption_errs "
            f"{before['corruption_errs']} -> {after['corruption_errs']}")
    check.that(after["corruption_errs"] > before["corruption_errs"],
               f"corruption_errs did not rise after a scrub: {after}\n{out}")
    lab.save("view-corruption.txt", view(lab))

    # B pulled while mounted: what btrfs shows before and after I/O to it.
    disk_b = lab.disk_of(SERIAL_B)
    lab.machine.pull(SERIAL_B)
    lab.save("view-pulled.txt", view(lab))
    missing = lab.shell.read(f"/sys/fs/btrfs/{fs_uuid(lab)}/devinfo/{devid_b}/missing")
    lab.say(f"  after the pull of {disk_b}: devinfo/{devid_b}/missing = {missing}")
    write_data(lab, "data-after-pull", 2)
    lab.save("view-pulled-after-io.txt", view(lab))
    stats_b = error_stats(lab, devid_b)
    lab.say(f"  after a write: devid {devid_b} error_stats {stats_b}")
    check.that(stats_b["write_errs"] + stats_b["flush_errs"] > 0,
               f"a write after the pull did not count on devid {devid_b}: {stats_b}")

    # Degraded mount: writes land in single chunks.
    a = lab.disk_of(SERIAL_A)
    lab.shell.run(f"umount {MNT}")
    rc, out = lab.shell.status(f"mount -t btrfs /dev/{a} {MNT}")
    lab.save("mount-plain.txt", out)
    check.that(rc != 0, "a plain mount with a member missing worked")
    lab.shell.run(f"btrfs device scan --forget >/dev/null 2>&1; mount -t btrfs -o degraded /dev/{a} {MNT}")
    write_data(lab, "data-degraded", 16)
    lab.save("view-degraded.txt", view(lab))
    profiles = data_profiles(lab)
    lab.say(f"  degraded mount, after writing: data profiles {sorted(profiles)}")
    check.that("single" in profiles, f"no single chunks written while degraded: {profiles}")

    # Replace the missing devid with C, then balance back to RAID1.
    lab.machine.insert(2, SERIAL_C)
    L.wait_for_disk(lab, SERIAL_C)
    c = lab.disk_of(SERIAL_C)
    out = lab.shell.run(f"btrfs replace start -B {devid_b} /dev/{c} {MNT}; "
                        f"btrfs replace status -1 {MNT}", timeout=300)
    lab.save("replace-missing.txt", out)
    check.that(devid_of(lab, SERIAL_C) == devid_b, f"C is not devid {devid_b}:\n{out}")
    check.that("single" in data_profiles(lab), "single chunks gone without a balance")
    out = lab.shell.run(f"btrfs balance start -dconvert=raid1,soft -mconvert=raid1,soft {MNT}",
                        timeout=300)
    lab.save("balance.txt", out)
    lab.save("view-balanced.txt", view(lab))
    check.that(data_profiles(lab) == {"RAID1"}, f"after the balance: {data_profiles(lab)}")


# ---------------------------------------------------------------------------
# swapguard on btrfs
#
# Step ids of runbooks/btrfs-replace-hot.toml and btrfs-replace-missing.toml
# that the technician acts on.
INSERT = "insert"
PULL = "pull"
REPLACE = "replace"

# The guest-side sampler of the hot replace: every 20 ms, how many of the
# file system's devices (devid 0, the replace target, not counted) are
# present and not missing, and whether a `single` data or metadata chunk
# exists; a line is logged whenever fewer than two copies are possible.
SAMPLER = (
    "( u=$(ls /sys/fs/btrfs | grep -- -); f=/sys/fs/btrfs/$u; while :; do n=0; "
    "for d in $f/devinfo/*; do [ \"${d##*/}\" = 0 ] && continue; read m < $d/missing; "
    "[ \"$m\" = 0 ] && n=$((n+1)); done; "
    "s=; for k in data metadata; do [ -d $f/allocation/$k/single ] && s=\"$s $k:single\"; done; "
    "[ $n -ge 2 ] && [ -z \"$s\" ] || echo \"devices=$n$s\" >> /tmp/copies.log; "
    "usleep 20000; done ) </dev/null >/dev/null 2>&1 & echo $! > /tmp/sampler.pid")


def start_sampler(lab):
    lab.shell.run("rm -f /tmp/copies.log; " + SAMPLER)


def stop_sampler(lab):
    """The sampler's complaints (empty when two copies were always kept)."""
    lab.shell.run("kill $(cat /tmp/sampler.pid)")
    return lab.shell.run("cat /tmp/copies.log 2>/dev/null; true").split("\n")


def halt_text(out):
    halt = out.halted()
    return json.dumps(halt["violations"]) if halt else ""


def check_halt(check, out, names, counters, steps=None):
    """A halt (exit 3) naming each of `names` and one of `counters`, at one
    of `steps` when given."""
    check.that(out.code == 3, f"exit code {out.code}, want 3 (halted); halt: {out.halt}")
    halt = out.halted()
    if steps:
        check.that(halt is not None and halt["step"] in steps,
                   f"halted at {halt and halt['step']}, want one of {steps}")
    text = halt_text(out)
    for name in names:
        check.that(name in text, f"the halt does not name {name}: {text}")
    if counters:
        check.that(any(c in text for c in counters), f"the halt names none of {counters}: {text}")
    check.that(out.halt is not None and all(n in out.halt for n in names),
               f"the terminal's halt block does not name {names}: {out.halt}")


def hot_healthy(lab, check, runbook=HOT):
    need(HOT)
    make_fs(lab, mib=48)
    start_sampler(lab)
    seen = {}

    def on_step(tech, step, text):
        if step == INSERT:
            tech.insert_new(SERIAL_C, bay=lab.free_bay())
        elif step == PULL:
            seen["before_pull"] = view(lab)
            tech.pull_as_told(text)

    out = run_btrfs(lab, runbook, on_step)
    complaints = [c for c in stop_sampler(lab) if c.strip()]
    lab.save("view-after.txt", view(lab))
    lab.save("view-before-pull.txt", seen.get("before_pull", ""))
    check.that(out.code == 0, f"exit code {out.code}, want 0; halt: {out.halt}")
    check.that(out.steps_completed() == out.steps_started() and PULL in out.steps_completed(),
               f"steps started {out.steps_started()}, completed {out.steps_completed()}")
    finished = out.events("run-finished")
    check.that(finished and finished[-1]["outcome"] == "completed", f"run-finished {finished}")
    check.that(not complaints, f"fewer than two copies sampled during the replace: {complaints[:5]}")
    snaps = [e["snapshot"]["array"] for e in out.events("snapshot")]
    check.that(snaps and all(a.get("degraded") == 0 for a in snaps),
               f"journal snapshots show degraded {[a.get('degraded') for a in snaps]}")
    check.that(snaps and all(a.get("redundancy_left", 0) >= 1 for a in snaps),
               f"journal snapshots show redundancy {[a.get('redundancy_left') for a in snaps]}")
    check.that(devid_of(lab, SERIAL_C) == 2, "the new drive LAB-C-0003 is not devid 2")
    check.that(lab.disk_of(SERIAL_B) is None, "the old drive is still present")
    check.that(data_profiles(lab) == {"RAID1"}, f"data profiles after: {data_profiles(lab)}")
    new = out.events("new-drive")
    check.that(new and new[0]["drive"]["serial"] == SERIAL_C, f"new-drive {new}")


@scenario("btrfs-replace-hot", guest="btrfs")
def btrfs_replace_hot(lab, check):
    """runbooks/btrfs-replace-hot.toml on NVMe: insert LAB-C-0003 into bay 3,
    `btrfs replace start -r`, wait, pull the old drive; a guest-side sampler
    (every 20 ms) never sees fewer than two copies; exit 0."""
    hot_healthy(lab, check)


@scenario("btrfs-resume", guest="btrfs")
def btrfs_resume(lab, check):
    """btrfs-replace-hot on NVMe, swapguard killed (SIGKILL) at the copy
    step while the kernel's replace runs on; `swapguard resume --array
    /mnt/data` (a mount point; the journal names the UUID) re-verifies,
    finishes the wait, the resize and the pull: exit 0, C is devid 2."""
    need(HOT)
    make_fs(lab, mib=48)
    killed = {}

    def first(tech, step, text):
        if step == INSERT:
            tech.insert_new(SERIAL_C, bay=lab.free_bay())
        elif step == "copy" and not killed:
            killed["at"] = step
            lab.shell.run("kill -KILL $(pidof swapguard)")

    tech = Technician(lab, first)
    out = tech.run(HOT, SERIAL_B, array=MNT, params=[f"mount={MNT}"])
    check.that(killed.get("at") == "copy", f"never reached the copy step: {killed}")
    check.that(out.code == 137, f"the killed run exited {out.code}, want 137 (SIGKILL)")

    def second(tech, step, text):
        if step == PULL:
            tech.pull_as_told(text)

    tech.on_step = second
    again = tech.run(HOT, SERIAL_B, array=MNT, resume=True)
    lab.save("view-after.txt", view(lab))
    check.that(again.code == 0, f"resume exited {again.code}, want 0; halt: {again.halt}")
    check.that(again.events("resumed"), "no `resumed` event in the journal")
    finished = again.events("run-finished")
    check.that(finished and finished[-1]["outcome"] == "completed", f"run-finished {finished}")
    check.that(PULL in again.steps_completed(), f"steps completed {again.steps_completed()}")
    check.that(devid_of(lab, SERIAL_C) == 2, "the new drive LAB-C-0003 is not devid 2")
    check.that(lab.disk_of(SERIAL_B) is None, "the old drive is still present")
    check.that(data_profiles(lab) == {"RAID1"}, f"data profiles after: {data_profiles(lab)}")


@scenario("btrfs-survivor-write-errors", guest="btrfs")
def btrfs_survivor_write_errors(lab, check):
    """Every write to the survivor LAB-A-0001 fails (blkdebug) from the
    replace step on, and the file system takes writes: btrfs counts them
    in the survivor's write_io_errs (it stays mounted); halt naming the
    survivor and the counter."""
    need(HOT)
    make_fs(lab, mib=48)
    seen = {}

    def on_step(tech, step, text):
        if step == INSERT:
            tech.insert_new(SERIAL_C, bay=lab.free_bay())
        elif step == REPLACE:
            lab.machine.inject_errors(SERIAL_A, [{"event": "write_aio", "iotype": "write",
                                                  "errno": 5, "once": False}])
            write_data(lab, "data-during-replace", 4)
            seen["stats"] = error_stats(lab, 1)
        elif step == PULL:
            tech.pull_as_told(text)

    out = run_btrfs(lab, HOT, on_step)
    lab.machine.clear_errors(SERIAL_A)
    lab.save("view-after.txt", view(lab))
    lab.say(f"  survivor devid 1 error_stats after the write: {seen.get('stats')}")
    check.that(seen.get("stats", {}).get("write_errs", 0) > 0
               or seen.get("stats", {}).get("flush_errs", 0) > 0,
               f"btrfs counted no write or flush errors on the survivor: {seen.get('stats')}")
    check_halt(check, out, [SERIAL_A], ["btrfs.write_io_errs", "btrfs.flush_io_errs"])
    check.that(PULL not in out.steps_started(), "the pull step started")


def wrong_drive_pulled(lab, check, runbook=HOT):
    need(HOT)
    make_fs(lab)
    seen = {}

    def on_step(tech, step, text):
        if step == INSERT:
            tech.insert_new(SERIAL_C, bay=lab.free_bay())
        elif step == PULL:
            disk = lab.disk_of(SERIAL_A)
            lab.shell.run(L.helper_vanish(disk))
            seen["pulled"] = True
            lab.machine.pull(SERIAL_A)  # the wrong one

    out = run_btrfs(lab, runbook, on_step)
    check.that(seen.get("pulled"), "the run never reached the pull step")
    check_halt(check, out, [SERIAL_A], None, steps=[PULL])
    stamp = lab.shell.run("cat /tmp/vanish.out 2>/dev/null; true")
    halt = out.halted()
    if halt and "tv_sec" in stamp:
        latency = journal_time(halt) - parse_adjtimex(stamp)
        lab.say(f"  survivor vanished to halt: {latency * 1000:.0f} ms")
        lab.figures.append(("btrfs-device-vanished", latency))


@scenario("btrfs-wrong-drive-pulled", guest="btrfs")
def btrfs_wrong_drive_pulled(lab, check):
    """btrfs-replace-hot on NVMe: at the pull step the technician pulls the
    survivor LAB-A-0001 instead of the replaced drive: halt at once, naming
    it, before btrfs notices (no I/O has gone to it yet)."""
    wrong_drive_pulled(lab, check)


@scenario("btrfs-corruption", guest="btrfs")
def btrfs_corruption(lab, check):
    """Bytes overwritten from the host under the survivor LAB-A-0001's copy
    of a file; at the insert step a scrub reads them: btrfs counts
    corruption_errs on the survivor (and repairs from the other copy);
    halt naming the survivor and the counter."""
    corruption(lab, check)


@scenario("btrfs-sata-corruption", bus="sata", guest="btrfs")
def btrfs_sata_corruption(lab, check):
    """btrfs-corruption on AHCI SATA disks (`ide-hd` with serials, SMART
    over ATA, the shipped runbook unchanged): the survivor's identity, SMART
    and btrfs counters read through the SATA path; halt naming LAB-A-0001
    and `btrfs.corruption_errs`. No new drive is inserted (QEMU cannot
    hot-plug `ide-hd`): the halt comes while the insert step waits."""
    corruption(lab, check, insert=False)


def corruption(lab, check, insert=True):
    need(HOT)
    make_fs(lab)
    write_data(lab, "data-marked", 4, pattern=True)
    lab.shell.run("echo 3 > /proc/sys/vm/drop_caches")
    seen = {}

    def on_step(tech, step, text):
        if step == INSERT and "scrub" not in seen:
            corrupt_blocks(lab, SERIAL_A)
            seen["scrub"] = lab.shell.status(f"btrfs scrub start -B {MNT}", timeout=300)
            seen["stats"] = error_stats(lab, 1)
            if insert:
                tech.insert_new(SERIAL_C, bay=lab.free_bay())
        elif step == PULL:
            tech.pull_as_told(text)

    out = run_btrfs(lab, HOT, on_step)
    lab.save("scrub.txt", str(seen.get("scrub")))
    lab.say(f"  survivor devid 1 error_stats after the scrub: {seen.get('stats')}")
    check.that(seen.get("stats", {}).get("corruption_errs", 0) > 0,
               f"the scrub counted no corruption on the survivor: {seen.get('stats')}")
    check_halt(check, out, [SERIAL_A], ["btrfs.corruption_errs"])
    check.that(PULL not in out.steps_started(), "the pull step started")


def degrade(lab, mib=48):
    """Pull LAB-B-0002 out of the mounted RAID1, remount `-o degraded` and
    write: btrfs puts new chunks `single`. Writes that fit in the RAID1
    chunks already allocated stay there (on one device): `mib` must outgrow
    them (the first data chunk is 64 MiB; make_fs wrote 32)."""
    a = lab.disk_of(SERIAL_A)
    lab.machine.pull(SERIAL_B)
    lab.shell.run(f"umount {MNT}; btrfs device scan --forget >/dev/null 2>&1; "
                  f"mount -t btrfs -o degraded /dev/{a} {MNT}")
    write_data(lab, "data-degraded", mib)
    profiles = data_profiles(lab)
    if "single" not in profiles:
        raise LabError(f"no single chunks after writing to the degraded mount: {profiles}")
    lab.save("view-degraded.txt", view(lab))


@scenario("btrfs-replace-missing", guest="btrfs")
def btrfs_replace_missing(lab, check):
    """LAB-B-0002 is already gone and the file system was mounted degraded
    and 48 MiB written (single chunks): runbooks/btrfs-replace-missing.toml
    inserts LAB-C-0003, replaces the missing devid, balances the single
    chunks back to RAID1; exit 0 only once none is left."""
    need(MISSING)
    make_fs(lab)
    degrade(lab)

    def on_step(tech, step, text):
        if step == INSERT:
            tech.insert_new(SERIAL_C, bay=2)

    # The missing drive is named by its devid: nothing else of it is left.
    out = run_btrfs(lab, MISSING, on_step, target="2", params=["profile=raid1"])
    lab.save("view-after.txt", view(lab))
    check.that(out.code == 0, f"exit code {out.code}, want 0; halt: {out.halt}")
    finished = out.events("run-finished")
    check.that(finished and finished[-1]["outcome"] == "completed", f"run-finished {finished}")
    check.that(data_profiles(lab) == {"RAID1"}, f"data profiles after the run: {data_profiles(lab)}")
    check.that(devid_of(lab, SERIAL_C) == 2, "the new drive LAB-C-0003 is not devid 2")
    commands = " ".join(json.dumps(e) for e in out.events("command"))
    check.that("convert" in commands, "no balance ran")


@scenario("btrfs-scsi-wrong-drive-pulled", bus="scsi", guest="btrfs")
def btrfs_scsi_wrong_drive_pulled(lab, check):
    """btrfs-replace-hot (SMART optional: scsi-hd has no verdict) on
    virtio-scsi disks: LAB-C-0003 inserted on target 3, replaced onto; at
    the pull step the technician pulls the survivor LAB-A-0001: halt at
    once naming it."""
    wrong_drive_pulled(lab, check, runbook=HOT_SCSI)


@scenario("btrfs-scsi-replace-hot", bus="scsi", guest="btrfs")
def btrfs_scsi_replace_hot(lab, check):
    """btrfs-replace-hot (SMART optional) on virtio-scsi disks without a
    WWN: insert, replace, pull the old one; never fewer than two copies;
    exit 0."""
    hot_healthy(lab, check, runbook=HOT_SCSI)


@scenario("btrfs-scsi-mount-check", bus="scsi", guest="btrfs")
def btrfs_scsi_mount_check(lab, check):
    """btrfs-replace-hot's preflight check of the mount point (`findmnt
    --output UUID --mountpoint ...` is the file system's UUID) on
    virtio-scsi disks, where `findmnt --source UUID=...` resolves to the
    member the file system was not mounted from: preflight must not refuse
    a correctly mounted file system. Stopped at step 1 (SIGINT)."""
    need(HOT)
    make_fs(lab)
    lab.save("findmnt.txt", lab.shell.run(
        f"blkid; cat /proc/self/mountinfo | grep {MNT}; "
        f"findmnt --noheadings --source UUID={fs_uuid(lab)} --mountpoint {MNT}; echo rc=$?; "
        f"findmnt --noheadings --output UUID --mountpoint {MNT}; echo rc=$?"))

    def on_step(tech, step, text):
        lab.shell.run("kill -INT $(pidof swapguard)")

    out = run_btrfs(lab, HOT_NO_SMART, on_step)
    check.that(out.code == 130, f"exit code {out.code}, want 130 (stopped at step 1): "
               "preflight refused a correctly mounted file system (see findmnt.txt)")


# ---------------------------------------------------------------------------
# detection latency
#
# Each sample: a fresh RAID1, swapguard started on btrfs-replace-hot, and at
# its insert step (the guard watching the survivor, nothing inserted yet)
# one fault on the survivor LAB-A-0001. A guest-side helper stamps the
# guest's clock (adjtimex, µs) the moment the kernel shows the fault; the
# journal's `halting` entry (and `halted`, after the halt's own look) carry the same clock.


def helper_stats_change(devid, action):
    """Run `action` in the background; stamp when devid's sysfs
    `error_stats` changes (a poll every 2 ms). The kernel writes one
    counter per line, so the whole file is compared: `read` saw only the
    first line (`write_errs`), and a corruption sample (line 4) waited
    until its 300 s timeout."""
    stats = f"$(echo /sys/fs/btrfs/*-*/devinfo/{devid}/error_stats)"
    return (f"f={stats}; s0=$(cat $f); ( {action} ) >/tmp/action.out 2>&1 & "
            f"while s=$(cat $f) && [ \"$s\" = \"$s0\" ]; do usleep 2000; done; "
            f"adjtimex | grep tv_; echo \"stats=$(echo $s)\"")


def reset_fs(lab):
    """A fresh RAID1 over A and B (both present), mounted, with data."""
    disks = " ".join(f"/dev/{lab.disk_of(s)}" for s in [SERIAL_A, SERIAL_B])
    lab.shell.run(f"umount {MNT} 2>/dev/null; btrfs device scan --forget >/dev/null 2>&1; "
                  f"for d in {disks}; do dd if=/dev/zero of=$d bs=1M count=1 seek=0 conv=fsync "
                  "2>/dev/null; done; true")
    make_fs(lab, mib=8)


def latency_sample(lab, check, kind, i, fault):
    """One run of btrfs-replace-hot with `fault(lab)` at the insert step;
    `fault` returns the helper's output (with a tv_ stamp) or None."""
    seen = {}

    def on_step(tech, step, text):
        if step == INSERT and "stamp" not in seen:
            seen["stamp"] = fault(lab)

    out = run_btrfs(lab, HOT, on_step)
    halt = out.halted()
    ok = check.that(out.code == 3 and halt is not None,
                    f"{kind} sample {i}: exit {out.code}, halt {halt and halt['headline']}")
    if ok:
        check.that(SERIAL_A in json.dumps(halt["violations"]),
                   f"{kind} sample {i}: the halt does not name {SERIAL_A}")
    stamp = seen.get("stamp") or ""
    halting = out.events("halting")
    if ok and "tv_sec" in stamp and halting:
        # To the `halting` entry, as md's figures: the guard's decision.
        # The `halted` entry follows the halt's own full look (SMART of
        # every drive), printed beside it.
        origin = parse_adjtimex(stamp)
        latency = journal_time(halting[0]) - origin
        after_look = journal_time(halt) - origin
        lab.say(f"  {kind} sample {i}: {latency * 1000:.0f} ms to `halting`, "
                f"{after_look * 1000:.0f} ms to `halted` "
                f"({norm(stamp.split('stats=')[-1]) if 'stats=' in stamp else 'vanished'})")
        lab.figures.append((kind, latency))
        lab.figures.append((f"{kind} (halted)", after_look))


def fault_write_errors(lab):
    lab.machine.inject_errors(SERIAL_A, [{"event": "write_aio", "iotype": "write",
                                          "errno": 5, "once": False}])
    return lab.shell.run(helper_stats_change(
        1, f"dd if=/dev/urandom of={MNT}/werr bs=64k count=16 2>/dev/null; sync"), timeout=120)


def fault_corruption(lab):
    corrupt_blocks(lab, SERIAL_A)
    return lab.shell.run(helper_stats_change(1, f"btrfs scrub start -B {MNT}"), timeout=300)


def fault_vanish(lab):
    disk = lab.disk_of(SERIAL_A)
    lab.shell.run(L.helper_vanish(disk))
    lab.machine.pull(SERIAL_A)
    lab.shell.run("while [ ! -s /tmp/vanish.out ]; do usleep 10000; done", timeout=60)
    return lab.shell.run("cat /tmp/vanish.out; rm -f /tmp/vanish.out")


@scenario("btrfs-latency", guest="btrfs")
def btrfs_latency(lab, check):
    """Detection latency on btrfs, measured: survivor write errors (sysfs
    error_stats changes), corruption found by a scrub, the survivor
    vanishing (pulled); guest-side stamps vs swapguard's halt entry."""
    need(HOT)
    samples = lab.samples
    make_fs(lab, mib=8)
    for i in range(samples):
        latency_sample(lab, check, "btrfs-write-errors", i, fault_write_errors)
        lab.machine.clear_errors(SERIAL_A)
        reset_fs(lab)
    for i in range(samples):
        write_data(lab, "marked", 1, pattern=True)
        lab.shell.run("echo 3 > /proc/sys/vm/drop_caches")
        latency_sample(lab, check, "btrfs-corruption", i, fault_corruption)
        reset_fs(lab)
    for i in range(samples):
        drive = lab.machine.drive_by_serial(SERIAL_A)
        latency_sample(lab, check, "btrfs-device-vanished", i, fault_vanish)
        lab.machine.insert(drive.bay, SERIAL_A, image=drive.image)
        L.wait_for_disk(lab, SERIAL_A)
        reset_fs(lab)
    for kind in ["btrfs-write-errors", "btrfs-corruption", "btrfs-device-vanished"]:
        values = sorted(v for k, v in lab.figures if k == kind)
        if check.that(len(values) == samples, f"{kind}: {len(values)} of {samples} samples measured"):
            # Reported, not asserted (docs/performance.md).
            print(f"{kind}: median {values[len(values) // 2] * 1000:.0f} ms, "
                  f"max {values[-1] * 1000:.0f} ms")
