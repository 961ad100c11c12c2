#!/usr/bin/env python3
"""Side by side: the same faults, watched at once by swapguard,
`mdadm --monitor` (`--delay 60`, its default, and `--delay 1`) and
`smartd` (its default interval, 1800 s, and `-i 10`), in one lab guest.

Each fault gets a fresh md RAID1 over two NVMe drives and fresh watchers;
swapguard runs `runbooks/md-replace-hot.toml` and the fault comes while it
watches the `insert` step. Every detection is stamped on the guest's clock
(CLOCK_REALTIME, read with `adjtimex`): swapguard's journal entry naming
the violation (`halting`, or `halted` from builds without it), mdadm's
`--program` hook, smartd's `-M exec` hook. A tool that has not noticed
within --bound seconds of the fault (default 70: mdadm's default delay of
60 s plus a margin) is reported as "> bound", not waited for.

Faults, and where each is timed from (the same origin for every tool):

- md-fail: `mdadm --fail` of the survivor; from just before it runs.
- write-errors: blkdebug fails writes to the survivor and a 16 KiB write
  goes to md0; from just before the write.
- critical-warning: the survivor's NVMe critical warning set to 4
  (`qom-set`), the drive's asynchronous events left at Linux's default
  (off); from the `qom-set` (host time mapped to the guest clock, ±5 ms).
- survivor-pulled: the survivor is `device_del`ed; from the moment its
  /sys/block entry goes (QEMU's PCIe hot-plug takes ~5 s before that).

Then, with `nvme set-feature <ctrl> -f 0x0b -v 0xff` (the harness enables
the controller's SMART/health asynchronous events; swapguard does not),
--event-samples critical warnings measure swapguard's event path alone.

    flock /tmp/swapguard-lab.lock python3 tests/lab/sidebyside.py \\
        --work target/sidebyside --json target/sidebyside/figures.json

See docs/lab.md ("Side by side"). Python 3 standard library only.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))

import lab as L  # noqa: E402
from machine import LabError, build_initramfs, find_kernel, parse_adjtimex  # noqa: E402

TOOLS = ["swapguard", "mdadm --delay 60", "mdadm --delay 1", "smartd (default, -i 1800)",
         "smartd -i 10"]
# tool -> (log file in the guest, how it is started); {hook} is its hook.
WATCHERS = {
    "mdadm --delay 60": ("mdadm60", "mdadm --monitor --delay 60 --program {hook} /dev/md0"),
    "mdadm --delay 1": ("mdadm1", "mdadm --monitor --delay 1 --program {hook} /dev/md0"),
    "smartd (default, -i 1800)": ("smartd1800", "smartd -n -q never -c /lab/smartd1800.conf"),
    "smartd -i 10": ("smartd10", "smartd -n -q never -i 10 -c /lab/smartd10.conf"),
}
FAULTS = ["md-fail", "write-errors", "critical-warning", "survivor-pulled"]
# The guest's wall clock, `sec usec`, from busybox adjtimex.
STAMP = "$(/bin/adjtimex | /bin/sed -n 's/.*tv_sec: *//p;s/.*tv_usec: *//p' | /bin/tr '\\n' ' ')"


def guest_files(work):
    """Hooks and smartd configurations for the initramfs ({guest path:
    host file}): each hook appends `sec usec what` to its log."""
    files = {}
    root = Path(work) / "sidebyside-files"
    root.mkdir(parents=True, exist_ok=True)
    for _, (name, _) in WATCHERS.items():
        if name.startswith("mdadm"):
            what = "$*"
        else:
            what = "$SMARTD_FAILTYPE $SMARTD_DEVICE"
        hook = root / f"hook-{name}"
        hook.write_text(f'#!/bin/sh\necho "{STAMP}{what}" >> /tmp/det/{name}.log\n')
        hook.chmod(0o755)
        files[f"/lab/hook-{name}"] = hook
        if name.startswith("smartd"):
            conf = root / f"{name}.conf"
            conf.write_text(f"DEVICESCAN -H -l error -m <nomailer> -M exec /lab/hook-{name}\n")
            files[f"/lab/{name}.conf"] = conf
    # smartd runs an `-M exec` hook through this script of its package; in
    # a guest without it smartd saw every fault and ran no hook ("sh:
    # .../smartd_warning.sh: not found"), so its column stayed empty.
    warning = Path("/usr/share/smartmontools/smartd_warning.sh")
    if not warning.exists():
        raise LabError(f"`{warning}` not found: smartd cannot run its hooks without it "
                       "(package smartmontools)")
    files[str(warning)] = warning
    return files


def guest_setup(lab):
    # /var/lib/smartmontools: smartd's state files (it warns without it).
    lab.shell.run("mkdir -p /tmp/det /var/lib/smartmontools")


def start_watchers(lab):
    sh = lab.shell
    sh.run("rm -f /tmp/det/*.log /tmp/det/*.pid")
    for _, (name, command) in WATCHERS.items():
        command = command.format(hook=f"/lab/hook-{name}")
        sh.run(f"( {command} </dev/null >/tmp/det/{name}.out 2>&1 & echo $! > /tmp/det/{name}.pid )")
    # smartd's first check of each drive, and mdadm's first look.
    sh.run("sleep 3")
    rc, out = sh.status("for p in /tmp/det/*.pid; do kill -0 $(cat $p) || echo gone $p; done")
    if "gone" in out:
        raise LabError(f"a watcher did not start: {out}\n"
                       + sh.run("tail -n 5 /tmp/det/*.out; true"))


def stop_watchers(lab):
    # What each watcher said (kept with the run's logs).
    rc, out = lab.shell.status("for f in /tmp/det/*.out /tmp/det/*.log; do echo \"== $f\"; "
                               "tail -n 40 $f; done 2>/dev/null")
    lab.save(f"watchers-{lab.runs}.txt", out)
    lab.shell.run("for p in /tmp/det/*.pid; do kill $(cat $p) 2>/dev/null; done; "
                  "rm -f /tmp/det/*.pid; true")


def notices(lab):
    """tool -> [(guest time, what)] from the hooks' logs."""
    out = {}
    for tool, (name, _) in WATCHERS.items():
        rc, text = lab.shell.status(f"cat /tmp/det/{name}.log 2>/dev/null")
        rows = []
        for line in text.splitlines():
            parts = line.split(None, 2)
            if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
                rows.append((int(parts[0]) + int(parts[1]) / 1e6,
                             parts[2] if len(parts) > 2 else ""))
        out[tool] = rows
    return out


def swapguard_time(outcome):
    """The guest time of swapguard's first entry naming the violation."""
    for event in outcome.journal:
        if event.get("event") in ("halting", "halted"):
            return L.journal_time(event), event["event"]
    return None, None


def inject(lab, fault, seen):
    """Do `fault` to the survivor (LAB-A-0001); set seen["origin"] (guest
    seconds) and anything to undo."""
    sh = lab.shell
    disk = lab.disk_of(L.SERIAL_A)
    if fault == "md-fail":
        out = sh.run(L.helper_fail_member(disk), timeout=60)
        before, after = out.split("seen", 1)
        seen["origin"] = parse_adjtimex(before)
        seen["kernel"] = parse_adjtimex(after)
    elif fault == "write-errors":
        lab.machine.inject_errors(L.SERIAL_A, L.write_error_rules())
        seen["undo"] = lambda: lab.machine.clear_errors(L.SERIAL_A)
        out = sh.run("adjtimex | grep tv_; echo seen; " + L.helper_write_errors(disk), timeout=120)
        before, after = out.split("seen", 1)
        seen["origin"] = parse_adjtimex(before)
        seen["kernel"] = parse_adjtimex(after)
    elif fault == "critical-warning":
        offset, err = lab.sync_to_guest_clock()
        lab.machine.smart_warning(L.SERIAL_A, 4)
        seen["origin"] = time.time() + offset
        seen["sync_error"] = err
        seen["undo"] = lambda: lab.machine.smart_warning(L.SERIAL_A, 0)
    elif fault == "survivor-pulled":
        sh.run(L.helper_vanish(disk))
        drive = lab.machine.drive_by_serial(L.SERIAL_A)
        lab.machine.pull(L.SERIAL_A)
        seen["drive"] = drive
    else:
        raise LabError(f"unknown fault {fault}")


def one_fault(lab, fault, bound):
    L.reset_array(lab)
    start_watchers(lab)
    seen = {}

    def on_step(tech, step, text):
        if step == "insert" and "done" not in seen:
            seen["done"] = True
            inject(lab, fault, seen)

    out = L.Technician(lab, on_step).run(L.HOT, L.SERIAL_B)
    if fault == "survivor-pulled":
        stamp = lab.shell.run("cat /tmp/vanish.out 2>/dev/null; rm -f /tmp/vanish.out")
        if "tv_sec" in stamp:
            seen["origin"] = parse_adjtimex(stamp)
    if "origin" not in seen:
        raise LabError(f"{fault}: the fault was not stamped (swapguard exit {out.code})")
    origin = seen["origin"]
    # Give every watcher its bound, on the guest's clock.
    left = origin + bound - lab.shell.now()
    if left > 0:
        lab.say(f"  waiting {left:.0f} s more for the other watchers")
        time.sleep(left)
    got = notices(lab)
    stop_watchers(lab)
    if "undo" in seen:
        seen["undo"]()
    if "drive" in seen:
        drive = seen["drive"]
        lab.machine.insert(drive.bay, L.SERIAL_A, image=drive.image)
        L.wait_for_disk(lab, L.SERIAL_A)
    result = {"origin": origin, "swapguard_exit": out.code, "tools": {}, "notices": {}}
    when, entry = swapguard_time(out)
    result["tools"]["swapguard"] = (when - origin) if when is not None else None
    result["swapguard_entry"] = entry
    if "kernel" in seen:
        result["kernel_shows_it"] = seen["kernel"] - origin
    for tool, rows in got.items():
        after = [(t - origin, what) for t, what in rows if t >= origin - 0.001]
        result["notices"][tool] = [[round(t, 4), what] for t, what in after]
        first = [t for t, _ in after if t <= bound]
        result["tools"][tool] = first[0] if first else None
    shown = ", ".join(f"{t}: {fmt(v, bound)}" for t, v in result["tools"].items())
    lab.say(f"  {fault}: {shown}")
    return result


def event_samples(lab, samples):
    """swapguard alone, the survivor's asynchronous events enabled."""
    disk = lab.disk_of(L.SERIAL_A)
    # The controller's character device (set-feature is not per namespace).
    ctrl = lab.shell.run(f"basename $(readlink /sys/block/{disk}/device)").strip()
    out = lab.shell.run(f"nvme set-feature /dev/{ctrl} -f 0x0b -v 0xff 2>&1; "
                        f"nvme get-feature /dev/{ctrl} -f 0x0b 2>&1")
    lab.say(f"  asynchronous events on {ctrl}: {L.norm(out)}")
    values = []
    for i in range(samples):
        L.reset_array(lab)
        seen = {}

        def on_step(tech, step, text):
            if step == "insert" and "done" not in seen:
                seen["done"] = True
                inject(lab, "critical-warning", seen)

        res = L.Technician(lab, on_step).run(L.HOT, L.SERIAL_B)
        if "undo" in seen:
            seen["undo"]()
        when, entry = swapguard_time(res)
        if when is None or "origin" not in seen:
            lab.say(f"  sample {i}: no halt (exit {res.code})")
            values.append(None)
            continue
        latency = when - seen["origin"]
        named = json.dumps([e.get("violations") for e in res.journal if e.get("event") == entry])
        # The event's own count (`nvme.health_events`) halts first; the
        # critical warning is named when smartctl's read came first.
        if "health_events" not in named and "critical_warning" not in named:
            lab.say(f"  sample {i}: the halt names neither the event nor the critical warning: "
                    f"{named[:300]}")
        lab.say(f"  sample {i}: critical warning to `{entry}`: {latency * 1000:.0f} ms "
                f"(clock sync ±{seen['sync_error'] * 1000:.0f} ms)")
        values.append(latency)
        # Let the drive's next event through: smartctl's log read re-arms it.
        lab.shell.run("sleep 1")
    return values


def fmt(value, bound):
    if value is None:
        return f"> {bound:.0f} s"
    return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"


def table(results, bound):
    lines = ["| tool | " + " | ".join(FAULTS) + " |",
             "|---|" + "---|" * len(FAULTS)]
    for tool in TOOLS:
        cells = []
        for fault in FAULTS:
            r = results.get(fault)
            if r is None:
                cells.append("not run")
                continue
            v = r["tools"].get(tool)
            sg = r["tools"].get("swapguard")
            cell = fmt(v, bound)
            if tool != "swapguard" and sg:
                if v is None:
                    cell += f" (> {bound / sg:.0f}×)"
                else:
                    cell += f" ({v / sg:.1f}×)"
            cells.append(cell)
        lines.append(f"| {tool} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--swapguard", default=str(L.REPO / "target/release/swapguard"))
    parser.add_argument("--work", help="where the guest, logs and transcripts go (kept)")
    parser.add_argument("--json", help="write the figures to this JSON file")
    parser.add_argument("--bound", type=float, default=70.0,
                        help="seconds a watcher gets to notice a fault (default 70)")
    parser.add_argument("--faults", default=",".join(FAULTS),
                        help=f"which faults, comma-separated (default {','.join(FAULTS)})")
    parser.add_argument("--event-samples", type=int, default=5,
                        help="critical warnings via the NVMe event, swapguard alone (default 5)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    faults = [f for f in args.faults.split(",") if f]
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        print(f"unknown fault(s): {', '.join(unknown)} (known: {', '.join(FAULTS)})", file=sys.stderr)
        return 2
    missing = L.prerequisites()
    for tool in ["smartd", "nvme"]:
        if not shutil.which(tool) and not Path("/usr/sbin", tool).exists():
            missing.append(f"`{tool}` not found (packages smartmontools, nvme-cli)")
    if missing:
        print("cannot run: " + "; ".join(missing), file=sys.stderr)
        return 2
    swapguard = Path(args.swapguard)
    if not swapguard.exists():
        print(f"`{swapguard}` not found: build it first (cargo build --release)", file=sys.stderr)
        return 2
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="swapguard-sbs-"))
    work.mkdir(parents=True, exist_ok=True)
    kernel, version = find_kernel()
    binary = work / "swapguard"
    shutil.copy2(swapguard, binary)
    subprocess.run(["strip", str(binary)], check=False, capture_output=True)
    extra = {
        "/runbooks/md-replace-hot.toml": L.REPO / "runbooks/md-replace-hot.toml",
        "/lab/capture.sh": L.LAB / "capture.sh",
        **guest_files(work),
    }
    tools = [shutil.which(t) or f"/usr/sbin/{t}" for t in ["smartd", "nvme"]]
    initramfs = build_initramfs(work, binary, version, extra, extra_binaries=tools,
                                image="initramfs-sidebyside")
    started = time.monotonic()
    lab = L.Lab("sidebyside", work, kernel, initramfs, args.verbose)
    lab.kernel_version = version
    results, events = {}, []
    with lab:
        guest_setup(lab)
        L.reset_array(lab)
        for fault in [f for f in FAULTS if f in faults]:
            lab.say(f"== {fault}")
            try:
                results[fault] = one_fault(lab, fault, args.bound)
            except LabError as e:
                lab.say(f"  {fault} failed: {e}")
                stop_watchers(lab)
        if args.event_samples:
            lab.say("== critical warning via the NVMe asynchronous event (swapguard alone)")
            events = event_samples(lab, args.event_samples)
    print()
    print(f"Detection time from the fault (guest clock); bound {args.bound:.0f} s; "
          "ratio to swapguard's in brackets")
    print(table(results, args.bound))
    measured = sorted(v for v in events if v is not None)
    if events:
        summary = (f"critical warning via the event: n={len(measured)} of {len(events)}"
                   + (f", min {measured[0] * 1000:.0f} ms, median "
                      f"{measured[len(measured) // 2] * 1000:.0f} ms, max {measured[-1] * 1000:.0f} ms"
                      if measured else ""))
        print(summary)
    figures = {"bound_s": args.bound, "kernel": version, "faults": results,
               "event_critical_warning_s": events,
               "took_s": round(time.monotonic() - started)}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print(f"took {time.monotonic() - started:.0f} s; logs in {lab.work}")
    ok = all(r["tools"].get("swapguard") is not None for r in results.values()) \
        and len(results) == len(faults) and all(v is not None for v in events)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
