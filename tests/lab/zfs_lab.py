"""The ZFS scenarios of the lab: OpenZFS 2.3 (the real kernel module, built
for the guest's kernel by zfs_build.py) in the same QEMU guest as the md
scenarios, pool `tank` over partitions of the drives, swapguard run in the
guest interactively with the ZFS runbooks.

Imported by lab.py, which runs the scenarios registered here like its own
(`python3 tests/lab/lab.py zfs-replace-member`, `--list`). What differs
from an md guest:

- its initramfs also has spl.ko and zfs.ko (loaded by init.sh from
  /modules/order-zfs), `zpool`, `zfs` and `sgdisk` with their libraries,
  and the ZFS runbooks; md scenarios keep their smaller initramfs;
- 1024 MiB of memory (ZFS's ARC) and 128 MiB drives (ZFS refuses vdevs
  under 64 MiB);
- the pool is built on GPT partitions (`sgdisk -n1`), not whole disks: a
  busybox guest has no udev, and `zpool create` on a whole disk waits for
  udev to show the partition it made ("failed to detect device
  partitions", shared/reference/lab-notes.md).

See docs/lab.md ("ZFS").
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import lab as L
import zfs_build
from lab import SERIAL_A, SERIAL_B, SERIAL_C, Technician, journal_time, norm, scenario
from machine import LabError, build_initramfs, parse_adjtimex

POOL = "tank"
# The guest's view of the shipped runbooks (copied in by `zfs_initramfs`),
# and their lab variants with `smart = "optional"` for virtio-scsi disks,
# which give smartctl no health verdict (made from the shipped text at
# build time, so they cannot drift from it).
MEMBER = "/runbooks/zfs-replace-member.toml"
HOT = "/runbooks/zfs-replace-hot.toml"
RUNBOOKS = ["zfs-replace-member.toml", "zfs-replace-hot.toml"]


def smart_optional(name):
    return f"/runbooks/lab-{name[:-len('.toml')]}-smart-optional.toml"


MEMBER_NO_SMART = smart_optional("zfs-replace-member.toml")
HOT_NO_SMART = smart_optional("zfs-replace-hot.toml")

# Every ZFS guest: the zfs initramfs, memory for the ARC, drives big enough.
ZFS_MACHINE = {"initramfs": "zfs", "memory_mib": 1024, "size_mib": 128}
# Where the first partition starts on every drive (sectors of 512 bytes).
PART_START = 2048
# ZFS keeps two labels and the boot block in the first 4 MiB of a vdev
# and two labels in its last 512 KiB; data lives in between.
VDEV_DATA_START = 4 * 1024 * 1024


def zfs_scenario(name, bus="nvme", wwns=None):
    """Register a ZFS scenario with lab.py (its own guest variant)."""
    def register(fn):
        scenario(name, bus, wwns)(fn)
        L.OPTIONS[name] = dict(ZFS_MACHINE)
        return fn
    return register


# ---------------------------------------------------------------------------
# the guest


def ldd_paths(binary, env):
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, env=env)
    if out.returncode != 0 or "not found" in out.stdout:
        raise LabError(f"`ldd {binary}` cannot resolve its libraries:\n{out.stdout}{out.stderr}")
    paths = []
    for line in out.stdout.splitlines():
        m = re.search(r"=>\s*(/\S+)", line) or re.match(r"\s*(/\S+)", line)
        if m:
            paths.append(m.group(1))
    return paths


def zfs_initramfs(work, swapguard, kernel_version, extra):
    """The md guest's initramfs plus OpenZFS (modules and userland from the
    zfs_build cache, built there first when missing), sgdisk, and the ZFS
    runbooks. Built under `<work>/initramfs-zfs/`; returns its path."""
    cache = zfs_build.build(zfs_build.DEFAULT_CACHE, kernel_version,
                            log=lambda line: print(line, flush=True))
    sub = Path(work) / "initramfs-zfs"
    sub.mkdir(parents=True, exist_ok=True)
    files = dict(extra)
    lib_dir = "/usr/lib/x86_64-linux-gnu"
    env = dict(os.environ, LD_LIBRARY_PATH=str(cache / "lib"))
    sgdisk = shutil.which("sgdisk") or "/usr/sbin/sgdisk"
    if not Path(sgdisk).exists():
        raise LabError("`sgdisk` not found: install the gdisk package (scripts/test-all.sh does)")
    programs = {"/usr/sbin/zpool": cache / "bin/zpool", "/usr/sbin/zfs": cache / "bin/zfs",
                "/usr/sbin/sgdisk": Path(sgdisk)}
    for dest, src in programs.items():
        files[dest] = src
        for lib in ldd_paths(src, env):
            lib = Path(lib)
            if lib.parent == cache / "lib":
                files[f"{lib_dir}/{lib.name}"] = lib
            else:
                files[str(lib)] = lib
    order = sub / "order-zfs"
    order.write_text("spl.ko\nzfs.ko\n")
    files["/modules/order-zfs"] = order
    for module in ["spl.ko", "zfs.ko"]:
        files[f"/modules/{module}"] = cache / "modules" / module
    for name in RUNBOOKS:
        src = L.REPO / "runbooks" / name
        if not src.exists():
            continue  # the scenario that needs it says so
        files[f"/runbooks/{name}"] = src
        text = src.read_text()
        variant = re.sub(r'(?m)^smart = "required"', 'smart = "optional"', text)
        if variant == text:
            raise LabError(f"runbooks/{name} has no `smart = \"required\"` line to relax")
        dest = sub / Path(smart_optional(name)).name
        dest.write_text(f"# Lab only: runbooks/{name} with `smart = \"optional\"` for virtio-scsi\n"
                        "# disks, which give smartctl no health verdict. Made by zfs_lab.py.\n\n"
                        + variant)
        files[smart_optional(name)] = dest
    for lab_runbook in (L.LAB / "runbooks").glob("lab-zfs-*.toml"):
        files[f"/runbooks/{lab_runbook.name}"] = lab_runbook
    return build_initramfs(sub, swapguard, kernel_version, files)


L.INITRAMFS["zfs"] = zfs_initramfs


def part_of(disk):
    """The first partition's kernel name: nvme0n1 -> nvme0n1p1, sda -> sda1."""
    return f"{disk}p1" if disk[-1].isdigit() else f"{disk}1"


def partition(lab, serial):
    """One GPT partition over the whole drive (from 1 MiB), as an
    installer would make it; returns its kernel name once it shows."""
    disk = lab.disk_of(serial)
    if disk is None:
        raise LabError(f"{serial} is not in the guest")
    part = part_of(disk)
    lab.shell.run(f"sgdisk -Z /dev/{disk} >/dev/null 2>&1; "
                  f"sgdisk -n1:{PART_START}:0 -t1:BF01 /dev/{disk} >/dev/null")
    lab.shell.run(f"i=0; while [ ! -b /dev/{part} ] && [ $i -lt 100 ]; do usleep 50000; "
                  f"i=$((i+1)); done; [ -b /dev/{part} ]")
    return part


def create_pool(lab, serials=(SERIAL_A, SERIAL_B), layout="mirror", data_mib=24):
    """Pool `tank` as a mirror (or raidz1) over one partition of each drive,
    with `data_mib` of random data in /tank/data."""
    lab.shell.run("ln -sf /proc/mounts /etc/mtab")
    parts = [partition(lab, s) for s in serials]
    lab.shell.run(f"zpool create -f -o ashift=12 {POOL} {layout} "
                  + " ".join(f"/dev/{p}" for p in parts), timeout=120)
    lab.shell.run(f"dd if=/dev/urandom of=/{POOL}/data bs=1M count={data_mib} 2>/dev/null; "
                  f"zpool sync {POOL}", timeout=180)
    return parts


def destroy_pool(lab):
    lab.shell.status(f"zpool destroy -f {POOL}", timeout=120)


def status_json(lab):
    """`zpool status -j --json-int tank`, parsed."""
    return json.loads(lab.shell.run(f"zpool status -j --json-int {POOL}", timeout=60))


def leaves(status):
    """{leaf name: leaf} of every disk vdev of the pool, however nested."""
    found = {}

    def walk(vdevs):
        for name, v in (vdevs or {}).items():
            if v.get("vdev_type") in ("disk", "file"):
                found[name] = v
            walk(v.get("vdevs"))
    walk(status["pools"][POOL]["vdevs"])
    return found


def pool_state(status):
    return status["pools"][POOL]["state"]


def zfs_capture(lab, label):
    """Save what ZFS shows (status text and JSON, recent events) as
    `capture-zfs-<label>.txt`; returns the JSON status (or None)."""
    text = lab.shell.status(
        f"echo '$ zpool status -pP {POOL}'; zpool status -pP {POOL}; "
        f"echo '$ zpool status -j --json-int {POOL}'; zpool status -j --json-int {POOL}; "
        "echo; echo '$ zpool events -H'; zpool events -H", timeout=120)[1]
    lab.save(f"capture-zfs-{label}.txt",
             f"# captured by tests/lab/zfs_lab.py, scenario {lab.name}, {label}, OpenZFS "
             f"{zfs_build.ZFS_VERSION}, kernel {lab.kernel_version}\n{text}")
    m = re.search(r"^\{.*\}$", text, re.M)
    return json.loads(m.group(0)) if m else None


def image_digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def overwrite_survivor(lab, serial, step_mib=2, chunk_kib=64):
    """Random bytes written straight into the drive's image (behind the
    guest's back) every `step_mib` through the vdev's data region, so some
    land under blocks of /tank/data and the pool's metadata. Returns how
    many chunks were written."""
    drive = lab.machine.drive_by_serial(serial)
    part_start = PART_START * 512
    size = drive.image.stat().st_size
    offset = part_start + VDEV_DATA_START
    count = 0
    while offset + chunk_kib * 1024 < size - 8 * 1024 * 1024:
        lab.machine.overwrite(serial, offset, os.urandom(chunk_kib * 1024))
        offset += step_mib * 1024 * 1024
        count += 1
    return count


# Every write to the drive fails with EIO (blkdebug). `iotype` keeps the
# rule off flushes: the host's own flush when the node is switched back
# would fail too.
WRITE_ERRORS = [{"event": "write_aio", "iotype": "write", "errno": 5, "once": False}]


# ---------------------------------------------------------------------------
# guest-side stamps: the moment ZFS shows a fault, on the guest's clock

def helper_event_stamp(classes, out="/tmp/zev.out", clear=True):
    """Follow `zpool events -f -H` in the background; stamp the guest's clock
    (adjtimex) at the first event whose class matches one of `classes`
    (a `case` pattern each), then stop. Started before the fault."""
    pattern = "|".join(classes)
    # `-H` lines: "Nov 28 2026 15:32:48.804000000<TAB>sysevent.fs.zfs.pool_create".
    # The follower itself ends at the next event after the match (SIGPIPE).
    return (("zpool events -c >/dev/null; " if clear else "") + f"( zpool events -f -H {POOL} | "
            f"while read -r mon day year at cls rest; do "
            f"case \"$cls\" in {pattern}) adjtimex | grep tv_ > {out}.tmp; echo \"class=$cls\" >> {out}.tmp; "
            f"mv {out}.tmp {out}; break;; esac; done ) "
            f"</dev/null >/dev/null 2>&1 &")


def helper_pool_state_stamp(state, out="/tmp/zstate.out"):
    """Stamp the guest's clock when the pool's state (its kstat, read with
    shell builtins every 2 ms) is no longer `state`."""
    kstat = f"/proc/spl/kstat/zfs/{POOL}/state"
    return (f"( while read -r s < {kstat} && [ \"$s\" = {state} ]; do usleep 2000; done; "
            f"adjtimex | grep tv_ > {out}.tmp; echo \"state=$(cat {kstat})\" >> {out}.tmp; "
            f"mv {out}.tmp {out} ) </dev/null >/dev/null 2>&1 &")


def read_stamp(lab, out="/tmp/zev.out", timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        rc, text = lab.shell.status(f"cat {out}")
        if rc == 0 and "tv_usec" in text:
            lab.shell.run(f"rm -f {out}")
            return text
        if time.monotonic() > deadline:
            return None
        time.sleep(0.5)


# ---------------------------------------------------------------------------
# scenarios


@zfs_scenario("zfs-guest")
def zfs_guest(lab, check):
    """The ZFS guest alone (no swapguard): pool over partitions, then a pull,
    write errors (blkdebug), an overwrite and a scrub, each captured."""
    create_pool(lab)
    st = zfs_capture(lab, "healthy")
    check.that(st and pool_state(st) == "ONLINE", "the new pool is not ONLINE")
    check.that(st and len(leaves(st)) == 2, "the pool has not two leaves")
    # Bytes overwritten under one mirror, then a scrub: checksum errors.
    n = overwrite_survivor(lab, SERIAL_A)
    lab.shell.run(f"zpool scrub -w {POOL}", timeout=300)
    st = zfs_capture(lab, "after-overwrite-scrub")
    a = part_of(lab.disk_of(SERIAL_A))
    cks = st and leaves(st).get(a, {}).get("checksum_errors", 0)
    lab.say(f"  {n} chunks overwritten on {a}; checksum errors after the scrub: {cks}")
    check.that(cks and cks > 0, f"no checksum errors on {a} after the scrub")
    lab.shell.run(f"zpool clear {POOL}")
    # Write errors on one leaf.
    lab.machine.inject_errors(SERIAL_A, WRITE_ERRORS)
    lab.shell.status(f"dd if=/dev/urandom of=/{POOL}/w bs=128k count=64 2>/dev/null; "
                     f"zpool sync {POOL}", timeout=180)
    time.sleep(3)
    st = zfs_capture(lab, "after-write-errors")
    leaf = st and leaves(st).get(a, {})
    lab.say(f"  after write errors: pool {st and pool_state(st)}, {a} {leaf.get('state')} "
            f"write_errors {leaf.get('write_errors')}")
    check.that(leaf and leaf.get("write_errors", 0) > 0, f"no write errors on {a}")
    lab.machine.clear_errors(SERIAL_A)
    lab.shell.run(f"zpool clear {POOL}", timeout=120)
    # A pull, stamped the moment `zpool events -f` delivers the removal.
    lab.shell.run(helper_event_stamp(["resource.fs.zfs.removed", "resource.fs.zfs.statechange"]))
    lab.shell.run(helper_pool_state_stamp("ONLINE"))
    pulled = lab.machine.pull(SERIAL_B)
    kstat = read_stamp(lab, "/tmp/zstate.out")
    if check.that(kstat is not None, "no pool-state stamp for the pull"):
        lab.say(f"  pool state left ONLINE {(parse_adjtimex(kstat) - lab.sync_to_guest_clock()[0] - pulled) * 1000:.0f} ms "
                f"after QEMU's DEVICE_DELETED ({norm(kstat.split('state=')[-1])})")
    stamp = read_stamp(lab)
    offset, _ = lab.sync_to_guest_clock()
    if check.that(stamp is not None, "no event stamp for the pull"):
        lab.say(f"  pull seen by `zpool events -f` {(parse_adjtimex(stamp) - offset - pulled) * 1000:.0f} ms "
                f"after QEMU's DEVICE_DELETED ({norm(stamp.split('class=')[-1])})")
    st = zfs_capture(lab, "after-pull")
    lab.say(f"  after the pull: pool {st and pool_state(st)}, leaves "
            f"{ {k: v['state'] for k, v in leaves(st).items()} if st else None}")
    check.that(st and any(v["state"] == "REMOVED" for v in leaves(st).values()),
               "no leaf REMOVED after the pull")


def zfs_params(lab, survivor=SERIAL_A):
    """The runbooks' text params: the survivor's disk (the partition table
    to copy) and the pool's partition number."""
    return {"source": f"/dev/{lab.disk_of(survivor)}", "partition": "1"}


def run_zfs(lab, on_step, runbook, timeout=900.0):
    return Technician(lab, on_step).run(runbook, SERIAL_B, timeout=timeout, array=POOL,
                                       params=zfs_params(lab))


def halt_text(out):
    halt = out.halted()
    return json.dumps(halt["violations"]) if halt else ""


def check_pool_healthy(lab, check, want_serials):
    """After a finished swap: the pool ONLINE, every leaf ONLINE with zero
    errors, and its leaves are on exactly the drives `want_serials`."""
    st = zfs_capture(lab, "after-run")
    check.that(st and pool_state(st) == "ONLINE", f"pool {st and pool_state(st)} after the run")
    found = leaves(st) if st else {}
    for name, leaf in found.items():
        errs = [leaf.get(k, 0) for k in ("read_errors", "write_errors", "checksum_errors")]
        check.that(leaf["state"] == "ONLINE" and not any(errs), f"leaf {name}: {leaf['state']} errors {errs}")
    want = sorted(part_of(lab.disk_of(s)) for s in want_serials if lab.disk_of(s))
    check.that(sorted(found) == want, f"leaves {sorted(found)}, want {want} ({want_serials})")
    check.that(st and st["pools"][POOL].get("error_count", 0) == 0, "the pool counts data errors")


def healthy_cold(lab, check, runbook):
    create_pool(lab)

    def on_step(tech, step, text):
        if step == "pull":
            tech.pull_as_told(text)
        elif step == "insert":
            tech.insert_new(SERIAL_C)

    out = run_zfs(lab, on_step, runbook)
    steps = ["antistatic", "offline", "locate", "pull", "insert", "partition", "new-guids",
             "replace", "resilver", "verify"]
    check.that(out.code == 0, f"exit code {out.code}, want 0; halt: {out.halt}")
    check.that(out.steps_completed() == steps, f"steps completed {out.steps_completed()}")
    finished = out.events("run-finished")
    check.that(finished and finished[-1]["outcome"] == "completed", f"run-finished {finished}")
    new = out.events("new-drive")
    check.that(new and new[0]["drive"]["serial"] == SERIAL_C, f"new-drive {new}")
    quarantined = out.events("quarantined")
    check.that(quarantined and quarantined[0]["drive"]["serial"] == SERIAL_B,
               f"quarantined {quarantined}")
    check_pool_healthy(lab, check, [SERIAL_A, SERIAL_C])


@zfs_scenario("zfs-replace-member")
def zfs_replace_member(lab, check):
    """Cold swap with zfs-replace-member on NVMe: offline, pull, insert,
    copy the survivor's partition table, new GUIDs, zpool replace by GUID,
    resilver, verify; exit 0 and the pool ONLINE over LAB-A and LAB-C."""
    healthy_cold(lab, check, MEMBER)


@zfs_scenario("zfs-scsi-replace-member", bus="scsi")
def zfs_scsi_replace_member(lab, check):
    """zfs-replace-member (SMART optional: scsi-hd has no SMART verdict) on
    virtio-scsi disks: the same cold swap, partitions `sdX1`."""
    healthy_cold(lab, check, MEMBER_NO_SMART)


# Count, in the guest, every ~100 ms, the pool's leaves that hold a full
# copy (ONLINE and not resilvering) and the pool's state.
SAMPLER = ("( while :; do zpool status -pP " + POOL + " 2>&1 | awk "
           r"""'$1 ~ /^\/dev\// && $2 == "ONLINE" && !/resilvering/ {n++} """
           r"""$1 == "state:" {s=$2} END {print n+0, s}' >> /tmp/copies.log; usleep 100000; done ) """
           "</dev/null >/dev/null 2>&1 & echo $! > /tmp/sampler.pid")


@zfs_scenario("zfs-replace-hot")
def zfs_replace_hot(lab, check):
    """Hot replace with zfs-replace-hot: the new drive into the free bay,
    zpool replace while the old leaf is ONLINE, resilver, then pull the old
    drive; a guest-side sampler of `zpool status` never sees fewer than two
    full copies."""
    create_pool(lab)
    lab.shell.run(SAMPLER)

    def on_step(tech, step, text):
        if step == "insert":
            tech.insert_new(SERIAL_C, bay=lab.free_bay())
        elif step == "pull":
            tech.pull_as_told(text)

    out = run_zfs(lab, on_step, HOT)
    lab.shell.run("kill $(cat /tmp/sampler.pid)")
    samples = [line.split() for line in lab.shell.run("cat /tmp/copies.log").splitlines() if line.strip()]
    lab.save("copies.log", "\n".join(" ".join(s) for s in samples) + "\n")
    steps = ["antistatic", "insert", "partition", "new-guids", "replace", "resilver", "verify",
             "locate", "pull"]
    check.that(out.code == 0, f"exit code {out.code}, want 0; halt: {out.halt}")
    check.that(out.steps_completed() == steps, f"steps completed {out.steps_completed()}")
    copies = [int(s[0]) for s in samples]
    states = {s[1] for s in samples if len(s) > 1}
    lab.say(f"  {len(samples)} samples of the pool: full copies {min(copies, default=None)} to "
            f"{max(copies, default=None)}, states {sorted(states)}")
    check.that(len(samples) >= 10, f"only {len(samples)} samples of the pool")
    check.that(copies and min(copies) >= 2, f"the pool had {min(copies, default=None)} full copies at worst")
    check.that(states == {"ONLINE"}, f"the pool was {sorted(states)} during the hot swap")
    check_pool_healthy(lab, check, [SERIAL_A, SERIAL_C])
    check.that(lab.disk_of(SERIAL_B) is None, "the old drive is still present")


@zfs_scenario("zfs-write-errors-during-pull")
def zfs_write_errors_during_pull(lab, check):
    """zfs-replace-hot after the resilver: at the pull of the old drive,
    every write to the survivor LAB-A-0001 fails (blkdebug) and a write to
    the pool lands on it; swapguard halts naming LAB-A-0001 while the pool
    and its mirror still say ONLINE."""
    create_pool(lab)
    seen = {}

    def on_step(tech, step, text):
        if step == "insert":
            tech.insert_new(SERIAL_C, bay=lab.free_bay())
        elif step == "pull":
            lab.machine.inject_errors(SERIAL_A, WRITE_ERRORS)
            lab.shell.status(f"dd if=/dev/urandom of=/{POOL}/w bs=128k count=32 2>/dev/null; "
                             f"zpool sync {POOL}", timeout=180)
            seen["status"] = zfs_capture(lab, "after-write-errors")
            tech.pull_as_told(text)

    out = run_zfs(lab, on_step, HOT)
    lab.machine.clear_errors(SERIAL_A)
    check.that(out.code == 3, f"exit code {out.code}, want 3 (halted)")
    halt = out.halted()
    check.that(halt is not None and halt["step"] == "pull", f"halted at {halt and halt['step']}, want pull")
    text = halt_text(out)
    check.that(SERIAL_A in text, f"the halt does not name {SERIAL_A}: {text}")
    check.that("write" in text.lower() or "FAULTED" in text, f"the halt names no write errors: {text}")
    st = seen.get("status")
    if check.that(st is not None, "no zpool status after the write errors"):
        leaf = leaves(st).get(part_of(lab.disk_of(SERIAL_A)), {})
        lab.say(f"  ZFS after the write errors: pool {pool_state(st)}, survivor {leaf.get('state')} "
                f"write_errors {leaf.get('write_errors')}")
        check.that(pool_state(st) == "ONLINE", f"the pool said {pool_state(st)}, not ONLINE")
        check.that(leaf.get("write_errors", 0) > 0, f"ZFS counted no write errors: {leaf}")


def wrong_drive(lab, check, runbook):
    create_pool(lab)
    seen = {}

    def on_step(tech, step, text):
        if step == "pull":
            lab.shell.run(helper_event_stamp(["resource.fs.zfs.removed", "resource.fs.zfs.statechange"]))
            lab.machine.pull(SERIAL_A)  # the survivor, not the drive named
            seen["stamp"] = read_stamp(lab, timeout=30)

    out = run_zfs(lab, on_step, runbook)
    check.that(out.code == 3, f"exit code {out.code}, want 3 (halted)")
    halt = out.halted()
    check.that(halt is not None and halt["step"] == "pull", f"halted at {halt and halt['step']}, want pull")
    check.that(SERIAL_A in halt_text(out), f"the journal's halt does not name {SERIAL_A}: {halt_text(out)}")
    check.that(out.halt and SERIAL_A in out.halt, f"the terminal's halt does not name {SERIAL_A}: {out.halt}")
    if halt and seen.get("stamp"):
        lab.say(f"  ZFS event to halt: {(journal_time(halt) - parse_adjtimex(seen['stamp'])) * 1000:.0f} ms")


@zfs_scenario("zfs-wrong-drive-pulled")
def zfs_wrong_drive_pulled(lab, check):
    """zfs-replace-member on NVMe: at the pull step the harness pulls the
    survivor LAB-A-0001; ZFS marks it REMOVED at once and swapguard halts
    at the pull naming it."""
    wrong_drive(lab, check, MEMBER)


@zfs_scenario("zfs-scsi-wrong-drive-pulled", bus="scsi")
def zfs_scsi_wrong_drive_pulled(lab, check):
    """The same wrong pull on virtio-scsi disks (SMART optional)."""
    wrong_drive(lab, check, MEMBER_NO_SMART)


@zfs_scenario("zfs-broken-drive-back")
def zfs_broken_drive_back(lab, check):
    """zfs-replace-member: after the pull, the same drive (LAB-B-0002, same
    image) goes back in; halt at insert, no partitioning or zpool replace
    runs and the image is byte for byte unchanged."""
    create_pool(lab)
    seen = {}

    def on_step(tech, step, text):
        if step == "pull":
            seen["drive"] = tech.pull_as_told(text)
            seen["digest"] = image_digest(seen["drive"].image)
        elif step == "insert":
            drive = seen["drive"]
            tech.insert_new(SERIAL_B, bay=drive.bay, image=drive.image)

    out = run_zfs(lab, on_step, MEMBER)
    check.that(out.code == 3, f"exit code {out.code}, want 3 (halted)")
    halt = out.halted()
    check.that(halt is not None and halt["step"] == "insert", f"halted at {halt and halt['step']}, want insert")
    started = out.steps_started()
    for step in ["partition", "new-guids", "replace"]:
        check.that(step not in started, f"step {step} started")
    if "drive" in seen:
        check.that(image_digest(seen["drive"].image) == seen["digest"], "the pulled drive's image changed")


@zfs_scenario("zfs-overwrite-survivor")
def zfs_overwrite_survivor(lab, check):
    """zfs-replace-hot at the insert step: bytes overwritten under the
    survivor LAB-A-0001's copy from the host, then a scrub; its checksum
    errors rise and swapguard halts naming it."""
    create_pool(lab)
    seen = {}

    def on_step(tech, step, text):
        if step == "insert":
            seen["chunks"] = overwrite_survivor(lab, SERIAL_A)
            lab.shell.run(f"zpool scrub {POOL}")

    out = run_zfs(lab, on_step, HOT)
    st = zfs_capture(lab, "after-scrub")
    check.that(out.code == 3, f"exit code {out.code}, want 3 (halted)")
    halt = out.halted()
    check.that(halt is not None and halt["step"] == "insert", f"halted at {halt and halt['step']}, want insert")
    text = halt_text(out)
    check.that(SERIAL_A in text, f"the halt does not name {SERIAL_A}: {text}")
    check.that("checksum" in text.lower(), f"the halt names no checksum errors: {text}")
    if st:
        leaf = leaves(st).get(part_of(lab.disk_of(SERIAL_A)), {})
        lab.say(f"  {seen.get('chunks')} chunks overwritten; ZFS: checksum_errors "
                f"{leaf.get('checksum_errors')}, pool {pool_state(st)}")


# ---------------------------------------------------------------------------
# detection latency


def reset_pool(lab):
    """A fresh pool over LAB-A and LAB-B (after a sample broke the last)."""
    for serial in [SERIAL_A, SERIAL_B]:
        if lab.disk_of(serial) is None:
            raise LabError(f"{serial} is not in the guest for the next sample")
    lab.shell.status(f"zpool scrub -s {POOL}; zpool clear {POOL}", timeout=120)
    destroy_pool(lab)
    create_pool(lab, data_mib=16)


def latency_sample(lab, check, kind, i, fault, stamps, after=None):
    """One sample: zfs-replace-hot to its insert step, then `fault(seen)`
    (which starts the stamp helpers and breaks the survivor); the figure is
    the halt's journal time minus each stamp file's guest time."""
    seen = {}
    # One stamp file per sample: a follower left over from an earlier
    # sample (one whose event never came) writes only its own.
    lab.shell.run("rm -f " + " ".join(stamps.values()))

    def on_step(tech, step, text):
        if step == "insert":
            fault(seen)

    out = run_zfs(lab, on_step, HOT)
    if after:
        after(seen)
    halt = out.halted()
    ok = check.that(out.code == 3 and halt is not None,
                    f"{kind} sample {i}: exit {out.code}, halt {halt}")
    if ok:
        check.that(SERIAL_A in halt_text(out), f"{kind} sample {i}: the halt does not name {SERIAL_A}")
    for figure, path in stamps.items():
        stamp = read_stamp(lab, path, timeout=30)
        if not check.that(stamp is not None, f"{kind} sample {i}: ZFS never showed {figure}"):
            continue
        if ok:
            latency = journal_time(halt) - parse_adjtimex(stamp)
            lab.say(f"  {figure} ({norm(stamp.split('class=')[-1])}) to halt: {latency * 1000:.0f} ms")
            lab.figures.append((figure, latency))
    reset_pool(lab)


@zfs_scenario("zfs-latency")
def zfs_latency(lab, check):
    """ZFS detection latency: a survivor pulled (REMOVED), write errors
    (ZFS's first I/O ereport, and FAULTED), checksum errors from a scrub;
    guest-side stamps of `zpool events -f` vs swapguard's halt entry."""
    samples = lab.samples
    create_pool(lab, data_mib=16)
    removed = ["resource.fs.zfs.removed", "resource.fs.zfs.statechange"]
    for i in range(samples):
        def pull(seen):
            lab.shell.run(helper_event_stamp(removed, f"/tmp/zev-removed-{i}.out"))
            lab.shell.run(L.helper_vanish(lab.disk_of(SERIAL_A)))
            seen["drive"] = lab.machine.drive_by_serial(SERIAL_A)
            lab.machine.pull(SERIAL_A)

        def put_back(seen):
            drive = seen.get("drive")
            if drive:
                # Not before ZFS has shown the removal: swapguard halts on
                # the vanished disk first, and a drive put back at once is
                # never marked REMOVED (its stamp would come from a later
                # sample's pool reset instead).
                deadline = time.monotonic() + 60
                while pool_state(status_json(lab)) == "ONLINE" and time.monotonic() < deadline:
                    time.sleep(1)
                lab.machine.insert(drive.bay, SERIAL_A, image=drive.image)
                L.wait_for_disk(lab, SERIAL_A)
        latency_sample(lab, check, "removed", i, pull,
                       {"vanished": "/tmp/vanish.out", "zfs-removed": f"/tmp/zev-removed-{i}.out"},
                       after=put_back)
    for i in range(samples):
        def write_errors(seen):
            lab.shell.run("zpool events -c >/dev/null")
            lab.shell.run(helper_event_stamp(["ereport.fs.zfs.io"], f"/tmp/zev-io-{i}.out", clear=False))
            lab.shell.run(helper_event_stamp(["resource.fs.zfs.statechange"], f"/tmp/zev-faulted-{i}.out",
                                             clear=False))
            lab.machine.inject_errors(SERIAL_A, WRITE_ERRORS)
            lab.shell.status(f"dd if=/dev/urandom of=/{POOL}/w bs=128k count=32 2>/dev/null; "
                             f"zpool sync {POOL}", timeout=180)
        latency_sample(lab, check, "write-errors", i, write_errors,
                       {"zfs-write-error": f"/tmp/zev-io-{i}.out", "zfs-faulted": f"/tmp/zev-faulted-{i}.out"},
                       after=lambda seen: lab.machine.clear_errors(SERIAL_A))
    for i in range(samples):
        def overwrite(seen):
            lab.shell.run(helper_event_stamp(["ereport.fs.zfs.checksum"], f"/tmp/zev-cksum-{i}.out"))
            overwrite_survivor(lab, SERIAL_A)
            lab.shell.run(f"zpool scrub {POOL}")
        latency_sample(lab, check, "checksum", i, overwrite, {"zfs-checksum": f"/tmp/zev-cksum-{i}.out"})
    for kind in ["vanished", "zfs-removed", "zfs-write-error", "zfs-faulted", "zfs-checksum"]:
        values = sorted(v for k, v in lab.figures if k == kind)
        if values:
            # Reported, not asserted (docs/performance.md).
            print(f"{kind}: median {values[len(values) // 2] * 1000:.0f} ms, "
                  f"max {values[-1] * 1000:.0f} ms over {len(values)}")
