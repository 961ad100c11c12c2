#!/usr/bin/env python3
"""A stand-in for Broadcom's `storcli64` (and Dell's `perccli64`), for
swapguard's whole-process tests only. It is a test fixture: never shipped,
never installed, never run against real hardware.

It answers from a JSON state file describing one controller (virtual
drives, drive groups, physical drives with their identities, states and
counters, foreign configurations) and changes that state when a runbook's
commands run (`set offline`, `set missing`, `spindown`, `start|stop
locate`, `insert`, `start rebuild`, `/cN/fall delete`). Its answers are
built in the shapes of real `storcli ... J` captures
(tests/fixtures/megaraid/, each with its origin):
the same envelope, keys, string-typed sizes, `"-"` and `"N/A"`.

The state file's path comes from the environment variable
FAKE_STORCLI_STATE, and only from there: without it the stand-in refuses to
run (exit 2), so it can never touch a file outside the test's own
directory. swapguard gives its children a minimal environment, so a test
puts a two-line wrapper on the PATH it configures, which sets the variable
and runs this script.

Test helpers (never storcli syntax; the first argument is `fake`):

    fake pull EID:SLT            the drive leaves its bay (a technician pulls it)
    fake insert EID:SLT JSON     a drive arrives in the bay (JSON: its fields)
    fake set EID:SLT KEY=VALUE.. change a drive's fields (counters, state, ...)
    fake ctl KEY=JSON            change a controller field (faults, ...)
    fake show                    print the state

Every change, by storcli command or helper, happens under an exclusive lock
(`<state>.lock`) and is written to a temporary file then renamed over the
state: a reader never sees half a file. Each storcli call is appended to
`<state>.calls`, one line per call.

docs/megaraid-testing.md describes the state file, what the stand-in proves
and what it cannot.
"""

import fcntl
import json
import os
import re
import sys
import time

ENV = "FAKE_STORCLI_STATE"

# Failure codes seen in captures (ErrCd) or documented by Broadcom.
NOT_ALLOWED = (255, "Operation not allowed.")
INVALID = (1, "Invalid command.")


def die(msg, code=2):
    sys.stderr.write("fake storcli: %s\n" % msg)
    sys.exit(code)


# ---------------------------------------------------------------- state


class State:
    def __init__(self, path):
        self.path = path
        self.lock = open(path + ".lock", "a")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        try:
            with open(path) as f:
                self.s = json.load(f)
        except (OSError, ValueError) as e:
            die("cannot read the state file %s: %s" % (path, e))
        self.changed = False

    def save(self):
        if not self.changed:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.s, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self.path)

    @property
    def ctl(self):
        return self.s.get("controller", 0)

    def pds(self):
        return self.s.setdefault("pds", [])

    def pd(self, eid, slot):
        for pd in self.pds():
            if pd.get("eid") == eid and pd["slot"] == slot:
                return pd
        return None

    def vds(self):
        return self.s.setdefault("vds", [])

    def event(self, text, pd=None):
        events = self.s.setdefault("events", [])
        events.append({"seq": len(events) + 1, "time": int(time.time()), "text": text,
                       "did": pd.get("did") if pd else None,
                       "eid": pd.get("eid") if pd else None,
                       "slot": pd.get("slot") if pd else None})
        self.changed = True


def addr(ctl, pd):
    if pd.get("eid") is None:
        return "/c%d/s%d" % (ctl, pd["slot"])
    return "/c%d/e%d/s%d" % (ctl, pd["eid"], pd["slot"])


def eid_slt(pd):
    if pd.get("eid") is None:
        return " :%d" % pd["slot"]
    return "%d:%d" % (pd["eid"], pd["slot"])


def parse_eid_slt(text):
    m = re.fullmatch(r"(\d+)?:(\d+)", text.strip())
    if not m:
        die("not EID:SLT: %r" % text)
    return (int(m.group(1)) if m.group(1) is not None else None, int(m.group(2)))


# ------------------------------------------------------------ responses


def envelope(st, status, description, data=None, detailed=None):
    cs = {
        "CLI Version": st.s.get("cli_version", "007.2408.0000.0000 Nov 15, 2022"),
        "Operating system": st.s.get("os", "Linux 5.15.0-25-generic"),
        "Controller": st.ctl,
        "Status": status,
        "Description": description,
    }
    if detailed is not None:
        cs["Detailed Status"] = detailed
    ctl = {"Command Status": cs}
    if data is not None:
        ctl["Response Data"] = data
    return {"Controllers": [ctl]}


class Answer(Exception):
    """The reply to print and the exit status."""

    def __init__(self, doc, code=0, raw=None):
        self.doc = doc
        self.code = code
        self.raw = raw


def ok(st, description, data=None):
    raise Answer(envelope(st, "Success", description, data))


def refuse(st, description, err, drive=None):
    """storcli's refusal: a Failure envelope; the exit status is the ErrCd
    (pystorcli2's error-code test data pairs the two)."""
    code, msg = err
    detail = {"Status": "Failure", "ErrCd": code, "ErrMsg": msg}
    if drive is not None:
        detail = {"Drive": drive, **detail}
    else:
        detail = {"Ctrl": st.ctl, "Status": "Failed", "ErrCd": code, "ErrMsg": msg}
    raise Answer(envelope(st, "Failure", description, detailed=[detail]), code)


def pd_row(pd):
    dg = pd.get("dg", "-")
    if pd.get("foreign"):
        dg = "F"
    state = pd["state"]
    return {
        "EID:Slt": eid_slt(pd),
        "DID": pd["did"],
        "State": state,
        "DG": dg if dg is not None else "-",
        "Size": pd.get("size", "893.750 GB"),
        "Intf": pd.get("intf", "SATA"),
        "Med": pd.get("med", "SSD"),
        "SED": "N",
        "PI": "N",
        "SeSz": "512B",
        "Model": pd.get("model", ""),
        "Sp": pd.get("sp", "U"),
        "Type": "-",
    }


def vd_row(st, vd):
    return {
        "DG/VD": "%d/%d" % (vd["dg"], vd["vd"]),
        "TYPE": vd.get("type", "RAID1"),
        "State": vd_state(st, vd),
        "Access": "RW",
        "Consist": "Yes",
        "Cache": "RWBD",
        "Cac": "-",
        "sCC": "OFF",
        "Size": vd.get("size", "893.750 GB"),
        "Name": vd.get("name", ""),
    }


TOLERANCE = {"RAID0": 0, "RAID1": 1, "RAID5": 1, "RAID6": 2, "RAID10": 1, "RAID50": 1, "RAID60": 2}


def rows_of(st, dg):
    """The drive group's rows: (row, pd or None, state)."""
    vd = next((v for v in st.vds() if v["dg"] == dg), None)
    width = vd.get("drives", 2) if vd else 0
    rows = []
    for row in range(width):
        pd = next((p for p in st.pds() if p.get("dg") == dg and p.get("row") == row
                   and not p.get("foreign")), None)
        rows.append((row, pd, pd["state"] if pd else "Msng"))
    return rows


def vd_state(st, vd):
    if vd.get("state"):
        return vd["state"]  # forced by the test
    bad = sum(1 for _, _, s in rows_of(st, vd["dg"]) if s != "Onln")
    tol = TOLERANCE.get(vd.get("type", "RAID1"), 1)
    if bad == 0:
        return "Optl"
    if bad > tol:
        return "OfLn"
    if tol == 2 and bad == 1:
        return "Pdgd"
    return "Dgrd"


def topology(st):
    out = []

    def line(dg, arr, row, es, did, typ, state, size):
        return {"DG": dg, "Arr": arr, "Row": row, "EID:Slot": es, "DID": did, "Type": typ,
                "State": state, "BT": "N", "Size": size, "PDC": "dflt", "PI": "N", "SED": "N",
                "DS3": "none", "FSpace": "N" if row == "-" else "-", "TR": "N"}

    for vd in st.vds():
        state = vd_state(st, vd)
        typ = vd.get("type", "RAID1")
        size = vd.get("size", "893.750 GB")
        out.append(line(vd["dg"], "-", "-", "-", "-", typ, state, size))
        out.append(line(vd["dg"], 0, "-", "-", "-", typ, state, size))
        for row, pd, pstate in rows_of(st, vd["dg"]):
            if pd is None:
                out.append(line(vd["dg"], 0, row, "-", "-", "DRIVE", "Msng", "-"))
            else:
                out.append(line(vd["dg"], 0, row, eid_slt(pd), pd["did"], "DRIVE", pstate,
                                pd.get("size", "893.750 GB")))
    return out


def counter(pd, key):
    v = pd.get(key, 0)
    return v  # int, or "N/A" when the test says so


def pd_detail(st, pd):
    a = addr(st.ctl, pd)
    name = "Drive " + a
    return {
        name + " State": {
            "Shield Counter": 0,
            "Media Error Count": counter(pd, "media_errors"),
            "Other Error Count": counter(pd, "other_errors"),
            "Drive Temperature": pd.get("temperature", " 30C (86.00 F)"),
            "Predictive Failure Count": counter(pd, "predictive_failures"),
            "S.M.A.R.T alert flagged by drive": pd.get("smart_alert", "No"),
        },
        name + " Device attributes": {
            "SN": pd.get("serial", ""),
            "Manufacturer Id": pd.get("vendor", "ATA     "),
            "Model Number": pd.get("model", ""),
            "NAND Vendor": "NA",
            "WWN": pd.get("wwn", ""),
            "Firmware Revision": pd.get("firmware", " D1MU004"),
            "Raw size": pd.get("raw_size", "894.252 GB [0x6fc81ab0 Sectors]"),
            "Coerced size": pd.get("coerced_size", "893.750 GB [0x6fb80000 Sectors]"),
            "Non Coerced size": pd.get("non_coerced_size", "893.752 GB [0x6fb81ab0 Sectors]"),
            "Device Speed": "6.0Gb/s",
            "Link Speed": "6.0Gb/s",
            "NCQ setting": "Enabled",
            "Write Cache": "N/A",
            "Logical Sector Size": "512B",
            "Physical Sector Size": "4 KB",
            "Connector Name": "Port 0 - 3 x1",
        },
        name + " Policies/Settings": {
            "Drive position": ("DriveGroup:%d, Span:0, Row:%d" % (pd["dg"], pd["row"])
                               if isinstance(pd.get("dg"), int) and "row" in pd else "N/A"),
            "Enclosure position": "1",
            "Connected Port Number": "0(path0) ",
            "Sequence Number": 2,
            "Commissioned Spare": "No",
            "Emergency Spare": "No",
            "Last Predictive Failure Event Sequence Number": 0,
            "Successful diagnostics completion on": "N/A",
            "FDE Type": "None",
            "SED Capable": "No",
            "SED Enabled": "No",
            "Secured": "No",
            "Cryptographic Erase Capable": "Yes",
            "Sanitize Support": "Not supported",
            "Locked": "No",
            "Needs EKM Attention": "No",
            "PI Eligible": "No",
            "Certified": "No",
            "Wide Port Capable": "No",
            "Multipath": "No",
            "Port Information": [{"Port": 0, "Status": "Active", "Linkspeed": "6.0Gb/s",
                                  "SAS address": "0x4433221102000000"}],
        },
        "Inquiry Data": pd.get("inquiry", "00 00 00 00"),
    }


def drives_show_all(st, pds):
    data = {}
    for pd in pds:
        a = addr(st.ctl, pd)
        data["Drive " + a] = [pd_row(pd)]
        data["Drive " + a + " - Detailed Information"] = pd_detail(st, pd)
    return data


def vd_show_all(st, vds):
    data = {}
    for vd in vds:
        n = vd["vd"]
        data["/c%d/v%d" % (st.ctl, n)] = [vd_row(st, vd)]
        data["PDs for VD %d" % n] = [pd_row(p) for _, p, _ in rows_of(st, vd["dg"]) if p]
        data["VD%d Properties" % n] = {
            "Strip Size": "256 KB",
            "Number of Blocks": vd.get("blocks", 1874329600),
            "VD has Emulated PD": "No",
            "Span Depth": 1,
            "Number of Drives Per Span": vd.get("drives", 2),
            "Write Cache(initial setting)": "WriteBack",
            "Disk Cache Policy": "Disk's Default",
            "Encryption": "None",
            "Data Protection": "Disabled",
            "Active Operations": "None",
            "Exposed to OS": "Yes",
            "OS Drive Name": vd.get("os_drive", "/dev/sda"),
            "Creation Date": "19-05-2023",
            "Creation Time": "07:18:24 PM",
            "Emulation type": "default",
            "Cachebypass size": "Cachebypass-64k",
            "Cachebypass Mode": "Cachebypass Intelligent",
            "Is LD Ready for OS Requests": "Yes",
            "SCSI NAA Id": vd.get("naa", "600300570256f1302be8a8f02d45e4bd"),
        }
    return data


def controller_show(st):
    pds = sorted(st.pds(), key=lambda p: (p.get("eid") or 0, p["slot"]))
    encl = sorted({p.get("eid") for p in st.pds() if p.get("eid") is not None}
                  | set(st.s.get("enclosures", [252])))
    return {
        "Product Name": st.s.get("product", "PERC H730P Mini"),
        "Serial Number": st.s.get("controller_serial", "FAKE0000SN"),
        "SAS Address": " 500605b00da13540",
        "PCI Address": "00:3b:00:00",
        "System Time": time.strftime("%m/%d/%Y %H:%M:%S"),
        "Mfg. Date": "12/19/17",
        "Controller Time": time.strftime("%m/%d/%Y %H:%M:%S"),
        "FW Package Build": "25.5.9.0001",
        "BIOS Version": "6.31.03.1_4.19.08.00_0x06140200",
        "FW Version": "4.650.00-8128",
        "Driver Name": "megaraid_sas",
        "Driver Version": "07.717.02.00-rc1",
        "Vendor Id": 4096,
        "Device Id": 93,
        "SubVendor Id": 32902,
        "SubDevice Id": 37728,
        "Host Interface": "PCI-E",
        "Device Interface": "SAS-12G",
        "Bus Number": 59,
        "Device Number": 0,
        "Function Number": 0,
        "Domain ID": 0,
        "Security Protocol": "None",
        "Drive Groups": len(st.vds()),
        "TOPOLOGY": topology(st),
        "Virtual Drives": len(st.vds()),
        "VD LIST": [vd_row(st, vd) for vd in st.vds()],
        "Physical Drives": len(pds),
        "PD LIST": [pd_row(p) for p in pds],
        "Enclosures": len(encl),
        "Enclosure LIST": [{"EID": e, "State": "OK", "Slots": 8,
                            "PD": sum(1 for p in pds if p.get("eid") == e), "PS": 0, "Fans": 0,
                            "TSs": 0, "Alms": 0, "SIM": 1, "Port#": "-", "ProdID": "SGPIO",
                            "VendorSpecific": " "} for e in encl],
    }


def foreign_groups(st):
    groups = {}
    for pd in st.pds():
        if pd.get("foreign"):
            f = pd["foreign"] if isinstance(pd["foreign"], dict) else {}
            g = groups.setdefault(f.get("dg", 0), {"type": f.get("type", "RAID1"), "pds": []})
            g["pds"].append(pd)
    return groups


def events_text(st):
    """`show events` prints text even with J (the captured
    show_events_00 answer is text); one block per event."""
    lines = [
        "CLI Version = %s" % st.s.get("cli_version", "007.2408.0000.0000 Nov 15, 2022"),
        "Operating system = %s" % st.s.get("os", "Linux 5.15.0-25-generic"),
        "Controller = %d" % st.ctl,
        "Status = Success",
        "Description = None",
        "",
    ]
    for e in st.s.get("events", []):
        lines += [
            "",
            "seqNum: 0x%08x" % e["seq"],
            "Time: %s" % time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(e["time"])),
            "",
            "Code: 0x00000072",
            "Class: 0",
            "Locale: 0x02",
            "Event Description: %s" % e["text"],
        ]
        if e.get("did") is not None:
            lines += [
                "Event Data:",
                "===========",
                "Device ID: %d" % e["did"],
                "Enclosure Index: %s" % (e["eid"] if e["eid"] is not None else "N/A"),
                "Slot Number: %d" % e["slot"],
            ]
    lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------- the swap


def rebuild_tick(st):
    """Each `/cN show` (the first call of a look) moves a running rebuild
    on by `rebuild_step` percent; at 100 the drive is online. Between two
    `/cN show` calls the rebuild stands still, so one look's calls agree
    (`"rebuild_ends_between_calls": true` lets the end fall between a
    look's `/cN show` and its `show rebuild`, as it can on a controller)."""
    step = st.s.get("rebuild_step", 25)
    for pd in st.pds():
        if pd["state"] == "Rbld":
            if st.s.get("rebuild_paused"):
                continue
            pd["progress"] = min(100, pd.get("progress", 0) + step)
            st.changed = True
            if pd["progress"] >= 100:
                pd["state"] = "Onln"
                pd.pop("progress", None)
                st.event("Rebuild complete on PD %02x(%s)" % (pd["did"], addr(st.ctl, pd)), pd)


def missing_row(st):
    """A row of a drive group with no drive in it: (dg, row)."""
    for vd in st.vds():
        for row, pd, _ in rows_of(st, vd["dg"]):
            if pd is None:
                return vd["dg"], row
    return None


def auto_rebuild(st, pd):
    """The controller takes a clean drive into the empty row and rebuilds."""
    if not st.s.get("auto_rebuild", True) or pd.get("foreign") or pd["state"] != "UGood":
        return
    hole = missing_row(st)
    if hole is None:
        return
    pd["dg"], pd["row"] = hole
    pd["state"] = "Rbld"
    pd["progress"] = 0
    st.event("Rebuild automatically started on PD %02x(%s)" % (pd["did"], addr(st.ctl, pd)), pd)


def drive_command(st, pd, a, words):
    w = " ".join(words)
    if pd is None:
        refuse(st, "No drive found!", (2, "Drive not found"), drive=a)
    if w == "show":
        ok(st, "Show Drive Information Succeeded.", {"Drive Information": [pd_row(pd)]})
    if w == "show all":
        ok(st, "Show Drive Information Succeeded.", drives_show_all(st, [pd]))
    if w == "show rebuild":
        if pd["state"] == "Rbld":
            left = "%d Minutes" % max(1, (100 - pd.get("progress", 0)) // 5)
            row = {"Drive-ID": a, "Progress%": pd.get("progress", 0), "Status": "In progress",
                   "Estimated Time Left": left}
        else:
            row = {"Drive-ID": a, "Progress%": "-", "Status": "Not in progress",
                   "Estimated Time Left": "-"}
        ok(st, "Show Drive Rebuild Status Succeeded.", [row])
    if w in ("start locate", "stop locate"):
        pd["locate"] = w == "start locate"
        st.changed = True
        ok(st, "%s Drive Locate Succeeded." % ("Start" if pd["locate"] else "Stop"))
    if w == "set offline":
        if pd["state"] != "Onln" or not isinstance(pd.get("dg"), int):
            refuse(st, "Set Drive Offline Failed.", NOT_ALLOWED, drive=a)
        pd["state"] = "Offln"
        st.event("State change on PD %02x(%s) from ONLINE(18) to OFFLINE(10)"
                 % (pd["did"], addr(st.ctl, pd)), pd)
        ok(st, "Set Drive Offline Succeeded.")
    if w == "set missing":
        if pd["state"] != "Offln":
            refuse(st, "Set Drive Missing Failed.", NOT_ALLOWED, drive=a)
        pd["state"] = "Msng"
        st.event("PD %02x(%s) marked missing" % (pd["did"], addr(st.ctl, pd)), pd)
        ok(st, "Set Drive Missing Succeeded.")
    if w == "spindown":
        if pd["state"] in ("Onln", "Rbld"):
            refuse(st, "Spin Down Drive Failed.", NOT_ALLOWED, drive=a)
        pd["sp"] = "D"
        st.changed = True
        ok(st, "Spin Down Drive Succeeded.")
    if w == "set good":
        if pd["state"] != "UBad":
            refuse(st, "Set Drive Good Failed.", NOT_ALLOWED, drive=a)
        pd["state"] = "UGood"
        st.changed = True
        ok(st, "Set Drive Good Succeeded.")
    m = re.fullmatch(r"insert dg=(\d+) array=(\d+) row=(\d+)", w)
    if m:
        dg, _arr, row = (int(x) for x in m.groups())
        if pd["state"] != "UGood" or pd.get("foreign") or missing_row(st) != (dg, row):
            refuse(st, "Insert Drive Failed.", NOT_ALLOWED, drive=a)
        pd["dg"], pd["row"], pd["state"] = dg, row, "Offln"
        st.event("PD %02x(%s) inserted into DG %d row %d" % (pd["did"], addr(st.ctl, pd), dg, row), pd)
        ok(st, "Insert Drive Succeeded.")
    if w == "start rebuild":
        if pd["state"] != "Offln" or not isinstance(pd.get("dg"), int):
            refuse(st, "Start Drive Rebuild Failed.", NOT_ALLOWED, drive=a)
        pd["state"], pd["progress"] = "Rbld", 0
        st.event("Rebuild started on PD %02x(%s)" % (pd["did"], addr(st.ctl, pd)), pd)
        ok(st, "Start Drive Rebuild Succeeded.")
    refuse(st, "Invalid command.", INVALID)


def run(st, argv):
    if not argv or argv[-1] != "J":
        # Only the JSON form is served: a call without J is a test bug.
        die("only `... J` is served; got %r" % " ".join(argv))
    words = argv[:-1]
    if words[1:] == ["show"] and re.fullmatch(r"/c\d+", words[0]):
        rebuild_tick(st)
    elif st.s.get("rebuild_ends_between_calls") and words[1:] == ["show", "rebuild"]:
        rebuild_tick(st)
    if words == ["show"]:
        data = {"Number of Controllers": 1, "Host Name": "fake-host",
                "Operating System ": st.s.get("os", "Linux 5.15.0-25-generic"),
                "System Overview": [{"Ctl": st.ctl, "Model": st.s.get("product", "PERCH730PMini"),
                                     "Ports": 8, "PDs": len(st.pds()), "DGs": len(st.vds()),
                                     "DNOpt": sum(1 for v in st.vds() if vd_state(st, v) != "Optl"),
                                     "VDs": len(st.vds()),
                                     "VNOpt": sum(1 for v in st.vds() if vd_state(st, v) != "Optl"),
                                     "BBU": "N/A", "sPR": "Off", "DS": "1&2", "EHS": "N",
                                     "ASOs": 3, "Hlth": "Opt"}]}
        doc = envelope(st, "Success", "None", data)
        cs = doc["Controllers"][0]["Command Status"]
        del cs["Controller"]
        cs["Status Code"] = 0
        raise Answer(doc)
    obj = words[0]
    rest = words[1:]
    m = re.fullmatch(r"/c(\d+)(?:/(v(?:all|\d+)|fall|eall/sall|sall|e(\d+)/s(\d+)|s(\d+)))?", obj)
    if not m:
        refuse(st, "Invalid command.", INVALID)
    if int(m.group(1)) != st.ctl:
        raise Answer(envelope(st, "Failure", "Controller %s not found" % m.group(1)), 1)
    sub = m.group(2)
    w = " ".join(rest)
    if sub is None:
        if w == "show":
            ok(st, "None", controller_show(st))
        if w == "show events":
            raise Answer(None, 0, events_text(st))
        refuse(st, "Invalid command.", INVALID)
    if sub.startswith("v"):
        if sub == "vall":
            vds = st.vds()
        else:
            vds = [v for v in st.vds() if v["vd"] == int(sub[1:])]
            if not vds:
                refuse(st, "Virtual Drive not found", (2, "VD doesn't exist"))
        if w == "show":
            ok(st, "None", {"Virtual Drives": [vd_row(st, v) for v in vds]})
        if w != "show all":
            refuse(st, "Invalid command.", INVALID)
        ok(st, "None", vd_show_all(st, vds))
    if sub == "fall":
        groups = foreign_groups(st)
        if w == "show":
            if not groups:
                ok(st, "Couldn't find any foreign Configuration")
            rows = [{"DG": dg, "EID:Slot": "-", "Type": g["type"], "State": "Frgn",
                     "Size": g["pds"][0].get("size", "893.750 GB"), "NoVDs": 1}
                    for dg, g in sorted(groups.items())]
            ok(st, "Operation on foreign configuration Succeeded",
               {"FOREIGN CONFIGURATION": rows, "Total foreign Drive Groups": len(rows)})
        if w in ("delete", "del"):
            if not groups:
                ok(st, "Couldn't find any foreign Configuration")
            for g in groups.values():
                for pd in g["pds"]:
                    pd.pop("foreign", None)
                    pd["dg"] = "-"
                    st.event("Foreign configuration cleared on PD %02x(%s)"
                             % (pd["did"], addr(st.ctl, pd)), pd)
                    auto_rebuild(st, pd)
            ok(st, "Successfully deleted foreign configuration")
        if w == "import" or w.startswith("import "):
            # Never wanted in a swap: recorded so a test can catch it.
            st.s["imported"] = True
            st.changed = True
            ok(st, "Successfully imported foreign configuration")
        refuse(st, "Invalid command.", INVALID)
    if sub in ("eall/sall", "sall"):
        # Drives in an enclosure under eall/sall, those without under sall.
        pds = sorted((p for p in st.pds() if (p.get("eid") is None) == (sub == "sall")),
                     key=lambda p: (p.get("eid") or 0, p["slot"]))
        if w == "show all":
            ok(st, "Show Drive Information Succeeded.", drives_show_all(st, pds))
        if w == "show":
            ok(st, "Show Drive Information Succeeded.",
               {"Drive Information": [pd_row(p) for p in pds]})
        if w == "show rebuild":
            rows = []
            for pd in pds:
                busy = pd["state"] == "Rbld"
                rows.append({"Drive-ID": addr(st.ctl, pd),
                             "Progress%": pd.get("progress", 0) if busy else "-",
                             "Status": "In progress" if busy else "Not in progress",
                             "Estimated Time Left": "-"})
            ok(st, "Show Drive Rebuild Status Succeeded.", rows)
        refuse(st, "Invalid command.", INVALID)
    if m.group(3) is not None:
        eid, slot = int(m.group(3)), int(m.group(4))
    else:
        eid, slot = None, int(m.group(5))
    pd = st.pd(eid, slot)
    drive_command(st, pd, obj, rest)


# ------------------------------------------------------- fault injection


def injected(st, argv):
    """A fault the test put in `faults`: {"match": regex on the argv
    joined by spaces, "kind": "failure" | "exit" | "garbage" | "hang" |
    "empty", "times": n (absent: every call), "errcd", "errmsg",
    "description", "status" (exit status)}."""
    line = " ".join(argv)
    for fault in st.s.get("faults", []):
        if not re.search(fault["match"], line):
            continue
        times = fault.get("times")
        if times is not None:
            if times <= 0:
                continue
            fault["times"] = times - 1
            st.changed = True
        kind = fault.get("kind", "failure")
        if kind == "failure":
            detail = {"Ctrl": st.ctl, "Status": "Failed", "ErrCd": fault.get("errcd", 255),
                      "ErrMsg": fault.get("errmsg", "Operation not allowed.")}
            raise Answer(envelope(st, "Failure", fault.get("description", "None"),
                                  detailed=[detail]), fault.get("status", detail["ErrCd"]))
        if kind == "exit":
            raise Answer(None, fault.get("status", 1), fault.get("text", ""))
        if kind == "garbage":
            raise Answer(None, 0, fault.get("text", "{\"Controllers\": [ {\"Command Status\""))
        if kind == "empty":
            raise Answer(None, 0, "")
        if kind == "hang":
            st.save()
            st.lock.close()
            time.sleep(fault.get("seconds", 600))
            raise Answer(None, 0, "")
        die("unknown fault kind %r" % kind)


# -------------------------------------------------------------- helpers


def value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def helper(st, args):
    if not args:
        die("fake: pull | insert | set | ctl | show")
    verb = args[0]
    if verb == "show":
        print(json.dumps(st.s, indent=1, sort_keys=True))
        return
    if verb == "ctl":
        for kv in args[1:]:
            k, _, v = kv.partition("=")
            st.s[k] = value(v)
        st.changed = True
        return
    if len(args) < 2:
        die("fake %s: which drive (EID:SLT)?" % verb)
    eid, slot = parse_eid_slt(args[1])
    pd = st.pd(eid, slot)
    if verb == "pull":
        if pd is None:
            die("fake pull: no drive in %s" % args[1])
        st.pds().remove(pd)
        st.event("PD %02x(%s) removed" % (pd["did"], addr(st.ctl, pd)), pd)
        return
    if verb == "insert":
        if pd is not None:
            die("fake insert: bay %s holds a drive" % args[1])
        new = json.loads(args[2]) if len(args) > 2 else {}
        new.update({"eid": eid, "slot": slot})
        new.setdefault("did", max([p["did"] for p in st.pds()] + [0]) + 1)
        new.setdefault("state", "UGood")
        new.setdefault("dg", "-")
        st.pds().append(new)
        st.event("PD %02x(%s) inserted" % (new["did"], addr(st.ctl, new)), new)
        auto_rebuild(st, new)
        return
    if verb == "set":
        if pd is None:
            die("fake set: no drive in %s" % args[1])
        for kv in args[2:]:
            k, _, v = kv.partition("=")
            pd[k] = value(v)
        st.changed = True
        return
    die("fake: unknown helper %r" % verb)


def main():
    path = os.environ.get(ENV)
    if not path:
        die("%s is not set: the stand-in answers only from a test's state file" % ENV)
    argv = sys.argv[1:]
    st = State(path)
    if argv[:1] == ["fake"]:
        helper(st, argv[1:])
        st.save()
        return 0
    with open(path + ".calls", "a") as calls:
        calls.write(" ".join(argv) + "\n")
    try:
        injected(st, argv)
        run(st, argv)
        die("no answer for %r" % " ".join(argv))
    except Answer as a:
        st.save()
        if a.raw is not None:
            sys.stdout.write(a.raw)
        else:
            sys.stdout.write(json.dumps(a.doc, indent=4))
            sys.stdout.write("\n")
        sys.stdout.flush()
        return a.code


if __name__ == "__main__":
    sys.exit(main())
