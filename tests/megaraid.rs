//! Whole-process tests of the megaraid backend: the real binary against the
//! stand-in `storcli64` (tests/fake-storcli/storcli64.py, a test fixture,
//! never shipped), found through the state directory's `config.toml`, with
//! one RAID1 virtual drive on two SATA, SAS or NVMe drives.
//!
//! No MegaRAID controller was available: the stand-in speaks in the shapes
//! of real captures (tests/fixtures/megaraid/), and the first tests here
//! prove that it does (every key at every level, numbers and strings) and
//! that it moves through a swap as the runbook's commands say.
//! docs/megaraid-testing.md says what this proves and what it cannot.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

mod common;
use common::{Test, root};

/// The drive kinds a MegaRAID controller carries (tri-mode controllers
/// take NVMe drives too).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Intf {
    Sata,
    Sas,
    Nvme,
}

const ALL: [Intf; 3] = [Intf::Sata, Intf::Sas, Intf::Nvme];

impl Intf {
    /// The drive's fields in the stand-in's state file.
    fn drive(self, serial: &str, wwn: &str) -> serde_json::Value {
        let (intf, med, vendor, model) = match self {
            Intf::Sata => ("SATA", "SSD", "ATA     ", "Micron_5200_MTFDDAK960TDC"),
            // As captured: SAS model strings end in a space.
            Intf::Sas => ("SAS", "HDD", "HGST    ", "HUS726040AL5210 "),
            Intf::Nvme => ("NVMe", "SSD", "NVMe    ", "Dell Ent NVMe PM1725b MU 1.6TB"),
        };
        serde_json::json!({
            "serial": serial, "wwn": wwn, "intf": intf, "med": med,
            "vendor": vendor, "model": model, "firmware": " D1MU004",
            "media_errors": 0, "other_errors": 0, "predictive_failures": 0,
            "smart_alert": "No", "sp": "U",
        })
    }
}

const SURVIVOR: &str = "MR-SURV-0001";
const TARGET: &str = "MR-TARG-0002";
const NEW: &str = "MR-NEW-0003";

/// The Python interpreter, by absolute path: swapguard gives its children
/// a fixed PATH, which a version manager's shim may not work under.
fn python() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 on PATH (the stand-in storcli is a Python 3 script)");
    assert!(out.status.success(), "python3 -c failed: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A machine with a MegaRAID controller: the stand-in's state file, a
/// `storcli64` wrapper on the configured PATH that names it, a sysroot with
/// neither md nor ZFS.
struct Machine {
    t: Test,
    intf: Intf,
}

impl Machine {
    fn new(intf: Intf) -> Machine {
        let t = Test::new().in_scratch();
        let tree = t.path("tree");
        std::fs::create_dir_all(tree.join("proc")).unwrap();
        std::fs::create_dir_all(tree.join("sys/block")).unwrap();
        std::fs::create_dir_all(tree.join("dev/disk/by-id")).unwrap();
        std::fs::write(tree.join("dev/kmsg"), b"").unwrap();
        let bin = t.path("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let state = t.path("storcli/state.json");
        std::fs::create_dir_all(state.parent().unwrap()).unwrap();
        let wrapper = bin.join("storcli64");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nFAKE_STORCLI_STATE='{}' exec '{}' '{}' \"$@\"\n",
                state.display(),
                python(),
                root().join("tests/fake-storcli/storcli64.py").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        // SMART through the controller (`smartctl -d megaraid,N`): a real
        // capture of the drive kind, with its exit status.
        let capture = match intf {
            Intf::Sata => "smartctl-sat-megaraid-scrutiny.json",
            Intf::Sas => "smartctl-sas-healthy-hitachi.json",
            Intf::Nvme => "smartctl-nvme-healthy-intel.json",
        };
        let capture = root().join("tests/fixtures/smart").join(capture);
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&capture).unwrap()).unwrap();
        let smartctl = bin.join("smartctl");
        std::fs::write(
            &smartctl,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\ncat '{}'\nexit {}\n",
                t.path("smartctl.calls").display(),
                capture.display(),
                doc["smartctl"]["exit_status"].as_i64().unwrap_or(0)
            ),
        )
        .unwrap();
        std::fs::set_permissions(&smartctl, std::fs::Permissions::from_mode(0o755)).unwrap();
        t.config(&format!("path = \"{}:/usr/bin:/bin\"\n", bin.display()));
        let m = Machine { t, intf };
        let mut survivor = intf.drive(SURVIVOR, "500A0751000000A1");
        let mut target = intf.drive(TARGET, "500A0751000000B2");
        for (pd, slot, did, row) in [(&mut survivor, 0, 2, 0), (&mut target, 1, 3, 1)] {
            let o = pd.as_object_mut().unwrap();
            o.insert("eid".into(), 252.into());
            o.insert("slot".into(), slot.into());
            o.insert("did".into(), did.into());
            o.insert("state".into(), "Onln".into());
            o.insert("dg".into(), 0.into());
            o.insert("row".into(), row.into());
        }
        let doc = serde_json::json!({
            "controller": 0,
            "product": "PERC H755 Front",
            "auto_rebuild": true,
            "rebuild_step": 25,
            "vds": [{"dg": 0, "vd": 0, "type": "RAID1", "drives": 2, "name": "data",
                     "os_drive": "/dev/sda", "naa": "6d0946606a1b2c002e7a0f3c1d2e3f40"}],
            "pds": [survivor, target],
        });
        std::fs::write(&state, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        m
    }

    /// Run the stand-in as swapguard would (through the wrapper, the
    /// environment cleared): (exit status, stdout, stderr).
    fn storcli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(self.t.path("bin/storcli64"))
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    /// A storcli call's JSON answer.
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let (code, out, err) = self.storcli(args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{args:?} (exit {code}): {e}\n{out}\n{err}"))
    }

    /// A test's change to the controller (a drive pulled or inserted,
    /// a counter risen, a fault injected), made by the stand-in's helper
    /// under its lock and written atomically.
    fn fake(&self, args: &[&str]) {
        let mut all = vec!["fake"];
        all.extend_from_slice(args);
        let (code, out, err) = self.storcli(&all);
        assert_eq!(code, 0, "fake {args:?}: {out}{err}");
    }

    /// The storcli calls made so far, one a line.
    fn calls(&self) -> String {
        std::fs::read_to_string(self.t.path("storcli/state.json.calls")).unwrap_or_default()
    }
}

// ------------------------------------------------------------------
// The stand-in itself.

/// A real capture from tests/fixtures/megaraid/, without its `# origin`
/// and `$ command` lines.
fn capture(name: &str) -> String {
    std::fs::read_to_string(root().join("tests/fixtures/megaraid").join(name))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("# origin") && !l.starts_with("$ "))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn capture_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&capture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Drive addresses in keys (`Drive /c0/e252/s0 State`) made alike.
fn key(k: &str) -> String {
    let re = |s: &str| {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("/c") {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            let end = tail
                .char_indices()
                .skip(1)
                .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '/'))
                .map_or(tail.len(), |(j, _)| j);
            out.push_str("/ADDR");
            rest = &tail[end..];
        }
        out.push_str(rest);
        out
    };
    re(k)
}

/// Every difference in shape between a real answer and the stand-in's:
/// keys missing or extra at any level, a number where storcli prints a
/// string or the other way round. storcli's placeholders (`-`, `N/A`)
/// stand for any value.
fn shape_diff(real: &serde_json::Value, fake: &serde_json::Value, at: &str, out: &mut Vec<String>) {
    use serde_json::Value as V;
    let placeholder = |v: &V| matches!(v.as_str(), Some("-") | Some("N/A"));
    match (real, fake) {
        (V::Object(r), V::Object(f)) => {
            let rk: std::collections::BTreeMap<String, &V> =
                r.iter().map(|(k, v)| (key(k), v)).collect();
            let fk: std::collections::BTreeMap<String, &V> =
                f.iter().map(|(k, v)| (key(k), v)).collect();
            for (k, rv) in &rk {
                match fk.get(k) {
                    None => out.push(format!("{at}: the stand-in lacks `{k}`")),
                    Some(fv) => shape_diff(rv, fv, &format!("{at}.{k}"), out),
                }
            }
            for k in fk.keys().filter(|k| !rk.contains_key(*k)) {
                out.push(format!("{at}: the stand-in adds `{k}`"));
            }
        }
        (V::Array(r), V::Array(f)) => {
            if let Some(r0) = r.first() {
                for (i, fv) in f.iter().enumerate() {
                    shape_diff(r0, fv, &format!("{at}[{i}]"), out);
                }
            }
        }
        (r, f) if placeholder(r) || placeholder(f) => {}
        (V::String(_), V::String(_)) | (V::Number(_), V::Number(_)) | (V::Bool(_), V::Bool(_)) => {}
        (r, f) => out.push(format!("{at}: storcli prints {r}, the stand-in {f}")),
    }
}

fn assert_shape(real: &serde_json::Value, fake: &serde_json::Value, what: &str) {
    let mut diffs = Vec::new();
    shape_diff(real, fake, what, &mut diffs);
    assert!(diffs.is_empty(), "{what}:\n{}", diffs.join("\n"));
}

fn response(v: &serde_json::Value) -> &serde_json::Value {
    &v["Controllers"][0]["Response Data"]
}

/// The comparison can fail: a missing key, an added one, a number where
/// storcli prints a string.
#[test]
fn shape_diff_catches_a_missing_key_an_added_one_and_a_number_for_a_string() {
    let real = serde_json::json!({"Drive /c0/e252/s0": [{"DID": 2, "Size": "1 TB", "DG": "-"}]});
    let fake = serde_json::json!({"Drive /c0/e35/s12": [{"DID": "2", "Extra": 1, "DG": 0}]});
    let mut diffs = Vec::new();
    shape_diff(&real, &fake, "x", &mut diffs);
    assert_eq!(diffs.len(), 3, "{diffs:?}");
    assert!(
        diffs.iter().any(|d| d.contains("lacks `Size`")),
        "{diffs:?}"
    );
    assert!(
        diffs.iter().any(|d| d.contains("adds `Extra`")),
        "{diffs:?}"
    );
    assert!(
        diffs.iter().any(|d| d.contains("storcli prints 2")),
        "{diffs:?}"
    );
}

#[test]
fn the_stand_in_answers_in_the_shapes_of_real_captures() {
    for intf in ALL {
        let m = Machine::new(intf);
        assert_shape(
            &capture_json("pystorcli2-set_state_offline_00-show_J.json.txt"),
            &m.json(&["show", "J"]),
            "show J",
        );
        assert_shape(
            &capture_json("pystorcli2-set_state_offline_00-c0_show_J.json.txt"),
            &m.json(&["/c0", "show", "J"]),
            "/c0 show J",
        );
        assert_shape(
            &capture_json("textfile-call-eall-sall-show-all-J.json.txt"),
            &m.json(&["/c0/eall/sall", "show", "all", "J"]),
            "/c0/eall/sall show all J",
        );
        assert_shape(
            &capture_json("textfile-call-eall-sall-show-all-J.json.txt"),
            &m.json(&["/c0/e252/s1", "show", "all", "J"]),
            "/c0/e252/s1 show all J",
        );
        assert_shape(
            &capture_json("pystorcli2-set_state_offline_00-c0_e35_s12_show_J.json.txt"),
            &m.json(&["/c0/e252/s1", "show", "J"]),
            "/c0/e252/s1 show J",
        );
        assert_shape(
            &capture_json("pystorcli2-set_state_offline_00-c0_e35_s12_set_offline_J.json.txt"),
            &m.json(&["/c0/e252/s1", "set", "offline", "J"]),
            "set offline",
        );
        // Refused: the drive is offline already.
        assert_shape(
            &capture_json("pystorcli2-error_codes_01-c0_e252_s7_set_good_J.json.txt"),
            &m.json(&["/c0/e252/s1", "set", "offline", "J"]),
            "set offline refused",
        );
        // Rebuild progress, active and idle, as the same table type.
        m.fake(&["pull", "252:1"]);
        m.fake(&[
            "insert",
            "252:1",
            &m.intf.drive(NEW, "500A0751000000C3").to_string(),
        ]);
        let rebuild = m.json(&["/c0/e252/s1", "show", "rebuild", "J"]);
        assert_shape(
            response(&capture_json("show-initialization-J-inprogress.json.txt")),
            response(&rebuild),
            "show rebuild J",
        );
        assert!(response(&rebuild)[0]["Progress%"].is_number(), "{rebuild}");
        let idle = m.json(&["/c0/e252/s0", "show", "rebuild", "J"]);
        assert_eq!(response(&idle)[0]["Progress%"], "-", "{idle}");
        assert_eq!(response(&idle)[0]["Status"], "Not in progress", "{idle}");
    }
}

#[test]
fn the_stand_in_shows_a_foreign_configuration_as_captured() {
    let m = Machine::new(Intf::Sas);
    let none = m.json(&["/c0/fall", "show", "J"]);
    assert_eq!(
        none["Controllers"][0]["Command Status"]["Status"],
        "Success"
    );
    assert!(response(&none).is_null(), "{none}");
    m.fake(&["pull", "252:1"]);
    let used =
        serde_json::json!({"serial": NEW, "intf": "SAS", "foreign": {"dg": 0, "type": "RAID60"}});
    m.fake(&["insert", "252:1", &used.to_string()]);
    let foreign = m.json(&["/c0/fall", "show", "J"]);
    assert_shape(
        &capture_json("pystorcli2-show_foreign_config_00-c0_fall_show_J.json.txt"),
        &foreign,
        "/c0/fall show J",
    );
    // The controller marks the drive foreign and does not rebuild onto it.
    let pd = m.json(&["/c0/e252/s1", "show", "J"]);
    assert_eq!(response(&pd)["Drive Information"][0]["DG"], "F", "{pd}");
    assert_eq!(
        response(&pd)["Drive Information"][0]["State"],
        "UGood",
        "{pd}"
    );
    // Cleared, it is taken into the empty row and rebuilt.
    m.json(&["/c0/fall", "delete", "J"]);
    assert!(response(&m.json(&["/c0/fall", "show", "J"])).is_null());
    let pd = m.json(&["/c0/e252/s1", "show", "J"]);
    assert_eq!(
        response(&pd)["Drive Information"][0]["State"],
        "Rbld",
        "{pd}"
    );
    assert_eq!(response(&pd)["Drive Information"][0]["DG"], 0, "{pd}");
}

#[test]
fn the_stand_in_prints_events_as_text_like_storcli() {
    let m = Machine::new(Intf::Sata);
    m.json(&["/c0/e252/s1", "set", "offline", "J"]);
    let (code, out, _) = m.storcli(&["/c0", "show", "events", "J"]);
    assert_eq!(code, 0);
    for line in ["Operating system = ", "Controller = 0", "Status = Success"] {
        assert!(
            capture(
                "pystorcli2-show_events_00-c0_show_events_file=_root_raid_events.log_J.json.txt"
            )
            .contains(line),
            "{line}"
        );
        assert!(out.contains(line), "{line}\n{out}");
    }
    assert!(
        out.contains("State change on PD 03(/c0/e252/s1) from ONLINE(18) to OFFLINE(10)"),
        "{out}"
    );
}

/// The cold swap the runbook makes, call by call, on every drive kind.
#[test]
fn the_stand_in_moves_through_a_swap() {
    for intf in ALL {
        let m = Machine::new(intf);
        let vd = |m: &Machine| {
            response(&m.json(&["/c0", "show", "J"]))["VD LIST"][0]["State"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let pd_state = |m: &Machine, slot: &str| {
            let v = m.json(&[slot, "show", "J"]);
            response(&v)["Drive Information"][0]["State"]
                .as_str()
                .unwrap_or("")
                .to_string()
        };
        assert_eq!(vd(&m), "Optl");
        for (args, pd, vd_after) in [
            (&["/c0/e252/s1", "start", "locate", "J"][..], "Onln", "Optl"),
            (&["/c0/e252/s1", "set", "offline", "J"], "Offln", "Dgrd"),
            (&["/c0/e252/s1", "set", "missing", "J"], "Msng", "Dgrd"),
            (&["/c0/e252/s1", "spindown", "J"], "Msng", "Dgrd"),
            (&["/c0/e252/s1", "stop", "locate", "J"], "Msng", "Dgrd"),
        ] {
            let v = m.json(args);
            assert_eq!(
                v["Controllers"][0]["Command Status"]["Status"], "Success",
                "{intf:?} {args:?}: {v}"
            );
            assert_eq!(pd_state(&m, "/c0/e252/s1"), pd, "{intf:?} after {args:?}");
            assert_eq!(vd(&m), vd_after, "{intf:?} after {args:?}");
        }
        m.fake(&["pull", "252:1"]);
        let gone = m.json(&["/c0/e252/s1", "show", "J"]);
        assert_eq!(
            gone["Controllers"][0]["Command Status"]["Status"], "Failure",
            "{gone}"
        );
        let show = m.json(&["/c0", "show", "J"]);
        let topology = &response(&show)["TOPOLOGY"];
        assert_eq!(topology[3]["State"], "Msng", "{topology}");
        assert_eq!(topology[3]["EID:Slot"], "-", "{topology}");
        m.fake(&[
            "insert",
            "252:1",
            &intf.drive(NEW, "500A0751000000C3").to_string(),
        ]);
        // Auto-rebuild: 25 % a look, then online and the VD optimal.
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(vd(&m));
        }
        assert!(seen.contains(&"Dgrd".to_string()), "{intf:?} {seen:?}");
        assert_eq!(seen.last().unwrap(), "Optl", "{intf:?} {seen:?}");
        let all = m.json(&["/c0/e252/s1", "show", "all", "J"]);
        let attrs = &response(&all)["Drive /c0/e252/s1 - Detailed Information"]["Drive /c0/e252/s1 Device attributes"];
        assert_eq!(attrs["SN"], NEW, "{all}");
        assert!(
            m.calls().contains("/c0/e252/s1 spindown J"),
            "{}",
            m.calls()
        );
    }
}

/// Auto-rebuild off: `insert dg= array= row=` then `start rebuild`.
#[test]
fn the_stand_in_rebuilds_on_insert_and_start_rebuild_when_auto_rebuild_is_off() {
    let m = Machine::new(Intf::Sas);
    m.fake(&["ctl", "auto_rebuild=false"]);
    for args in [["set", "offline"], ["set", "missing"]] {
        m.json(&["/c0/e252/s1", args[0], args[1], "J"]);
    }
    m.fake(&["pull", "252:1"]);
    m.fake(&[
        "insert",
        "252:1",
        &Intf::Sas.drive(NEW, "500A0751000000C3").to_string(),
    ]);
    let pd = m.json(&["/c0/e252/s1", "show", "J"]);
    assert_eq!(response(&pd)["Drive Information"][0]["State"], "UGood");
    // The wrong row is refused.
    let (code, out, _) = m.storcli(&["/c0/e252/s1", "insert", "dg=0", "array=0", "row=0", "J"]);
    assert_eq!(code, 255, "{out}");
    assert!(out.contains("\"Status\": \"Failure\""), "{out}");
    let (code, _, _) = m.storcli(&["/c0/e252/s1", "insert", "dg=0", "array=0", "row=1", "J"]);
    assert_eq!(code, 0);
    let (code, _, _) = m.storcli(&["/c0/e252/s1", "start", "rebuild", "J"]);
    assert_eq!(code, 0);
    let rebuild = m.json(&["/c0/e252/s1", "show", "rebuild", "J"]);
    assert_eq!(response(&rebuild)[0]["Status"], "In progress", "{rebuild}");
}

/// What storcli refuses, the stand-in refuses: a Failure envelope naming
/// the drive, ErrCd 255 "Operation not allowed.", and that exit status.
#[test]
fn the_stand_in_refuses_what_storcli_refuses() {
    let m = Machine::new(Intf::Nvme);
    for args in [
        &["/c0/e252/s0", "spindown", "J"][..],
        &["/c0/e252/s0", "set", "missing", "J"],
        &["/c0/e252/s0", "start", "rebuild", "J"],
    ] {
        let (code, out, _) = m.storcli(args);
        assert_eq!(code, 255, "{args:?}: {out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let status = &v["Controllers"][0]["Command Status"];
        assert_eq!(status["Status"], "Failure", "{out}");
        assert_eq!(status["Detailed Status"][0]["Drive"], "/c0/e252/s0");
        assert_eq!(
            status["Detailed Status"][0]["ErrMsg"],
            "Operation not allowed."
        );
    }
    // An empty bay and another controller.
    let v = m.json(&["/c0/e252/s7", "show", "all", "J"]);
    assert_eq!(v["Controllers"][0]["Command Status"]["Status"], "Failure");
    let v = m.json(&["/c3", "show", "J"]);
    assert_eq!(
        v["Controllers"][0]["Command Status"]["Description"],
        "Controller 3 not found"
    );
    // Nothing changed.
    let pd = m.json(&["/c0/e252/s0", "show", "J"]);
    assert_eq!(response(&pd)["Drive Information"][0]["State"], "Onln");
}

/// Injected faults: a Failure envelope, an odd exit, half a JSON document.
#[test]
fn the_stand_in_injects_the_faults_a_test_asks_for() {
    let m = Machine::new(Intf::Sata);
    m.fake(&[
        "ctl",
        r#"faults=[{"match": "^/c0/eall/sall show all", "kind": "failure", "errcd": 59, "errmsg": "Incomplete foreign configuration", "times": 1}]"#,
    ]);
    let (code, out, _) = m.storcli(&["/c0/eall/sall", "show", "all", "J"]);
    assert_eq!(code, 59, "{out}");
    assert!(out.contains("Incomplete foreign configuration"), "{out}");
    // Once only.
    let (code, _, _) = m.storcli(&["/c0/eall/sall", "show", "all", "J"]);
    assert_eq!(code, 0);
    m.fake(&[
        "ctl",
        r#"faults=[{"match": "^/c0 show", "kind": "garbage"}]"#,
    ]);
    let (code, out, _) = m.storcli(&["/c0", "show", "J"]);
    assert_eq!(code, 0);
    assert!(
        serde_json::from_str::<serde_json::Value>(&out).is_err(),
        "{out}"
    );
    m.fake(&[
        "ctl",
        r#"faults=[{"match": "", "kind": "exit", "status": 3}]"#,
    ]);
    assert_eq!(m.storcli(&["show", "J"]).0, 3);
    // Counters moved by the test.
    m.fake(&["ctl", "faults=[]"]);
    m.fake(&["set", "252:0", "media_errors=4", "smart_alert=Yes"]);
    let all = m.json(&["/c0/e252/s0", "show", "all", "J"]);
    let st = &response(&all)["Drive /c0/e252/s0 - Detailed Information"]["Drive /c0/e252/s0 State"];
    assert_eq!(st["Media Error Count"], 4);
    assert_eq!(st["S.M.A.R.T alert flagged by drive"], "Yes");
}

/// A drive with no enclosure is addressed `/cN/sS`, as storcli prints it.
#[test]
fn the_stand_in_addresses_a_drive_without_an_enclosure_by_slot() {
    let m = Machine::new(Intf::Sata);
    m.fake(&[
        "insert",
        ":3",
        &Intf::Sata.drive(NEW, "500A0751000000C3").to_string(),
    ]);
    let all = m.json(&["/c0/s3", "show", "all", "J"]);
    let attrs =
        &response(&all)["Drive /c0/s3 - Detailed Information"]["Drive /c0/s3 Device attributes"];
    assert_eq!(attrs["SN"], NEW, "{all}");
    // Listed under `/c0/sall`, not `/c0/eall/sall`.
    let bare = m.json(&["/c0/sall", "show", "all", "J"]);
    assert!(response(&bare).get("Drive /c0/s3").is_some(), "{bare}");
    assert!(response(&bare).get("Drive /c0/e252/s0").is_none(), "{bare}");
    let every = m.json(&["/c0/eall/sall", "show", "all", "J"]);
    assert!(response(&every).get("Drive /c0/s3").is_none(), "{every}");
    assert!(
        response(&every).get("Drive /c0/e252/s0").is_some(),
        "{every}"
    );
}

/// Without its state file's path the stand-in answers nothing: it never
/// falls back to a default path outside the test's directory.
#[test]
fn the_stand_in_refuses_to_run_without_its_state_file() {
    let out = Command::new(python())
        .arg(root().join("tests/fake-storcli/storcli64.py"))
        .args(["show", "J"])
        .env_remove("FAKE_STORCLI_STATE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("FAKE_STORCLI_STATE is not set"),
        "{out:?}"
    );
}

// ------------------------------------------------------------------
// Whole-process runs of the shipped runbook.

const RUNBOOK: &str = "runbooks/megaraid-replace-drive.toml";

/// The last 4 characters of a serial, as `type-serial` wants them.
fn last4(serial: &str) -> String {
    serial[serial.len() - 4..].to_string()
}

/// The answers file for the shipped runbook: "yes" to every confirmation,
/// the last 4 characters of the serial a `type-serial` step asks for (the
/// new drive's once a step found it and the step speaks of it), a second
/// person where a step wants a sign-off.
fn answers(runbook: &str) -> String {
    let doc: toml::Table = toml::from_str(runbook).unwrap();
    let mut out = String::new();
    let mut new_found = false;
    for step in doc["step"].as_array().unwrap() {
        let id = step["id"].as_str().unwrap();
        let kind = step["kind"].as_str().unwrap();
        let expect_new = step
            .get("expect")
            .and_then(|e| e.get("new"))
            .and_then(|v| v.as_str());
        let speaks_of_new = step
            .get("run")
            .is_some_and(|r| r.to_string().contains("{new."))
            || expect_new.is_some();
        let answer = match step.get("confirm").and_then(|c| c.as_str()) {
            Some("type-serial") => {
                let drive = step
                    .get("confirm_drive")
                    .and_then(|d| d.as_str())
                    .unwrap_or(if new_found && speaks_of_new {
                        "new"
                    } else {
                        "target"
                    });
                Some(last4(if drive == "new" { NEW } else { TARGET }))
            }
            Some(_) => Some("yes".to_string()),
            None if kind == "confirm" => Some("yes".to_string()),
            None => None,
        };
        if let Some(a) = answer {
            if step.get("sign_off").and_then(|s| s.as_bool()) == Some(true) {
                let serial = if new_found && speaks_of_new {
                    NEW
                } else {
                    TARGET
                };
                out.push_str(&format!(
                    "{id} = [\"{a}\", \"Kim Lee\", \"{}\"]\n",
                    last4(serial)
                ));
            } else {
                out.push_str(&format!("{id} = \"{a}\"\n"));
            }
        }
        if expect_new == Some("present") {
            new_found = true;
        }
    }
    out
}

/// What the technician's hands do, when swapguard says so.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Hands {
    /// Pull the target, insert a clean new drive.
    Right,
    /// Pull the survivor instead of the target.
    WrongDrive,
    /// Pull the target; meanwhile the survivor's media errors rise.
    SurvivorErrors,
    /// Pull the target, insert a used drive carrying a foreign configuration.
    ForeignDrive,
    /// Before pulling anything, storcli starts failing (`fake ctl` this).
    CallFails(&'static str),
}

impl Machine {
    /// Run the shipped runbook on `/c0/v0`, target the drive in 252:1, the
    /// hands doing `hands` when the pull and insert instructions show.
    fn swap(&self, hands: Hands) -> common::Done {
        let text = std::fs::read_to_string(root().join(RUNBOOK)).unwrap();
        self.swap_with(&text, hands)
    }

    /// [`Machine::swap`] with this runbook text instead of the shipped one.
    fn swap_with(&self, runbook: &str, hands: Hands) -> common::Done {
        self.t.write("answers.toml", &answers(runbook));
        let mut pulled = false;
        let mut inserted = false;
        let runbook = self.t.write("runbook.toml", runbook).display().to_string();
        let answers = self.t.path("answers.toml").display().to_string();
        let done = self
            .swapguard(&[
                "run",
                &runbook,
                "--array",
                "/c0/v0",
                "--target",
                TARGET,
                "--answers",
                &answers,
                "--param",
                "controller=/c0",
                "--param",
                "dg=0",
                "--param",
                "row_array=0",
                "--param",
                "row=1",
            ])
            .run_watching(|line, _| {
                if !pulled && line.contains("pull the drive in") {
                    pulled = true;
                    match hands {
                        Hands::WrongDrive => self.fake(&["pull", "252:0"]),
                        Hands::CallFails(faults) => self.fake(&["ctl", faults]),
                        Hands::SurvivorErrors => {
                            self.fake(&["set", "252:0", "media_errors=2"]);
                            self.fake(&["pull", "252:1"]);
                        }
                        _ => self.fake(&["pull", "252:1"]),
                    }
                }
                if pulled && !inserted && line.contains("Insert the new") {
                    inserted = true;
                    let mut new = self.intf.drive(NEW, "500A0751000000C3");
                    if hands == Hands::ForeignDrive {
                        new["foreign"] = serde_json::json!({"dg": 0, "type": "RAID1"});
                    }
                    self.fake(&["insert", "252:1", &new.to_string()]);
                }
            });
        if std::env::var_os("SHOW").is_some() {
            eprintln!("{}", done.both());
        }
        done
    }

    fn swapguard(&self, args: &[&str]) -> common::Run {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.push("--sysroot".into());
        all.push(self.t.path("tree").display().to_string());
        self.t.swapguard(&all)
    }
}

/// The journal's halt, as one string to search.
fn halted(done: &common::Done) -> String {
    done.journal()
        .into_iter()
        .find(|e| e["event"] == "halted")
        .unwrap_or_else(|| panic!("no halt in the journal\n{}", done.both()))
        .to_string()
}

#[test]
fn status_lists_the_virtual_drive_and_its_drives_on_every_drive_kind() {
    for intf in ALL {
        let m = Machine::new(intf);
        let done = m.swapguard(&["status"]).run().code(0);
        if std::env::var_os("SHOW").is_some() {
            eprintln!("{}", done.both());
        }
        let out = &done.stdout;
        assert!(out.contains("/c0/v0"), "{intf:?}\n{}", done.both());
        assert!(out.contains("Optl"), "{intf:?}\n{}", done.both());
        for serial in [SURVIVOR, TARGET] {
            let line = out
                .lines()
                .find(|l| l.contains(serial))
                .unwrap_or_else(|| panic!("{intf:?}: no line for {serial}\n{out}"));
            assert!(line.contains("in-sync"), "{intf:?}: {line}");
        }
        let json = m.swapguard(&["status", "--json"]).run().code(0);
        let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
        let vd = v["arrays"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["array"]["name"] == "/c0/v0")
            .unwrap_or_else(|| panic!("{intf:?}: {v}"));
        assert_eq!(vd["array"]["level"], "raid1", "{vd}");
        let slots: Vec<&str> = vd["drives"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"]["slot"].as_str().unwrap_or(""))
            .collect();
        assert!(slots.contains(&"252:0") && slots.contains(&"252:1"), "{vd}");
    }
}

/// The swap end to end with the shipped runbook: offline, missing,
/// spindown, pull, insert, the controller's auto-rebuild (the optional
/// `insert` and `start rebuild` are refused by the controller, as on a
/// real one), the check that the VD is `Optl`.
#[test]
fn a_healthy_swap_ends_with_the_virtual_drive_optimal_on_every_drive_kind() {
    for intf in ALL {
        let m = Machine::new(intf);
        let done = m.swap(Hands::Right).code(0);
        let calls = m.calls();
        for call in [
            "/c0/e252/s1 start locate J",
            "/c0/e252/s1 set offline J",
            "/c0/e252/s1 set missing J",
            "/c0/e252/s1 spindown J",
            "/c0/e252/s1 stop locate J",
            "/c0/v0 show J",
        ] {
            assert!(calls.contains(call), "{intf:?}: {call} never ran\n{calls}");
        }
        assert!(!calls.contains("import"), "{intf:?}\n{calls}");
        let vd = m.json(&["/c0", "show", "J"]);
        assert_eq!(response(&vd)["VD LIST"][0]["State"], "Optl", "{intf:?}");
        let pd = m.json(&["/c0/e252/s1", "show", "all", "J"]);
        assert_eq!(
            response(&pd)["Drive /c0/e252/s1"][0]["State"],
            "Onln",
            "{intf:?}"
        );
        assert!(
            done.journal().iter().all(|e| e["event"] != "halted"),
            "{intf:?}\n{}",
            done.both()
        );
    }
}

/// A rebuild that ends between a look's drive list (`Rbld`) and its
/// `show rebuild` call ("Not in progress") is the end of a healthy rebuild,
/// not unreadable health: the look is read again. (It halted the swap at its
/// very end before.)
#[test]
fn regression_a_rebuild_ending_between_a_looks_calls_is_not_a_halt() {
    let m = Machine::new(ALL[0]);
    m.fake(&["ctl", "rebuild_ends_between_calls=true"]);
    let done = m.swap(Hands::Right).code(0);
    assert!(
        done.journal().iter().all(|e| e["event"] != "halted"),
        "{}",
        done.both()
    );
    let vd = m.json(&["/c0", "show", "J"]);
    assert_eq!(response(&vd)["VD LIST"][0]["State"], "Optl");
}

/// The incident's first half behind a controller: the survivor's media
/// error count rises while hands are in the chassis. The halt names its bay
/// (EID:Slt) and serial, on the terminal and in the journal.
#[test]
fn a_survivor_media_error_rising_during_the_pull_halts_naming_its_bay_and_serial() {
    for intf in ALL {
        let m = Machine::new(intf);
        let done = m.swap(Hands::SurvivorErrors).code(3);
        let done = done.has(SURVIVOR).has("252:0").has("megaraid.media_errors");
        let halt = halted(&done);
        assert!(
            halt.contains(SURVIVOR) && halt.contains("252:0"),
            "{intf:?}: {halt}"
        );
        assert!(!m.calls().contains("insert"), "{intf:?}\n{}", m.calls());
    }
}

#[test]
fn the_wrong_drive_pulled_halts_naming_the_survivor() {
    for intf in ALL {
        let m = Machine::new(intf);
        let done = m.swap(Hands::WrongDrive).code(3).has(SURVIVOR);
        let halt = halted(&done);
        assert!(halt.contains(SURVIVOR), "{intf:?}: {halt}");
    }
}

/// A used drive brings its old array's configuration: swapguard halts
/// naming it, never imports it, and does not clear it by itself.
#[test]
fn a_foreign_configuration_on_insert_is_refused() {
    for intf in ALL {
        let m = Machine::new(intf);
        let done = m
            .swap(Hands::ForeignDrive)
            .code(3)
            .has("holds a foreign configuration")
            .has("/c0/fall delete");
        assert!(halted(&done).contains("foreign"), "{intf:?}");
        let calls = m.calls();
        for never in ["import", "fall delete", "start rebuild", "insert dg="] {
            assert!(!calls.contains(never), "{intf:?}: {never}\n{calls}");
        }
    }
}

/// storcli answers Failure (the captured "Incomplete foreign
/// configuration", ErrCd 59): unreadable health, not healthy. Before the
/// run, preflight refuses and nothing is touched; during the pull, the run
/// halts. Both name the call and storcli's error.
#[test]
fn a_failed_storcli_call_fails_closed_with_its_message() {
    let fault = r#"faults=[{"match": "^/c0/eall/sall show all", "kind": "failure", "errcd": 59, "errmsg": "Incomplete foreign configuration"}]"#;
    for intf in ALL {
        let m = Machine::new(intf);
        m.fake(&["ctl", fault]);
        m.swap(Hands::Right)
            .code(4)
            .has("`storcli64 /c0/eall/sall show all J` failed (exit 59)")
            .has("ErrCd 59: Incomplete foreign configuration");
        assert!(
            !m.calls().contains("set offline"),
            "{intf:?}\n{}",
            m.calls()
        );

        let m = Machine::new(intf);
        let done = m
            .swap(Hands::CallFails(fault))
            .code(3)
            .has("`storcli64 /c0/eall/sall show all J` failed (exit 59)")
            .has("Incomplete foreign configuration");
        assert!(
            halted(&done).contains("Incomplete foreign configuration"),
            "{intf:?}"
        );
        assert!(!m.calls().contains("insert"), "{intf:?}\n{}", m.calls());
    }
}

/// A member's Media Error Count that reads `N/A` is unreadable health,
/// not zero: the run stops before anything is touched.
#[test]
fn a_member_counter_reading_n_a_is_unreadable_not_healthy() {
    for intf in ALL {
        let m = Machine::new(intf);
        m.fake(&["set", "252:0", "media_errors=N/A"]);
        m.swap(Hands::Right)
            .code(4)
            .has("`Media Error Count` of c0/e252/s0")
            .has("MR-SURV-0001")
            .has("unreadable, not zero");
        assert!(
            !m.calls().contains("set offline"),
            "{intf:?}\n{}",
            m.calls()
        );
    }
}
