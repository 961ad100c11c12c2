//! Every storcli capture (tests/fixtures/megaraid/) through the parsers,
//! and broken replies: a clear error naming the command and the field,
//! never a panic.

use std::fs;
use std::path::Path;

use crate::backend::megaraid::json::{self, Group};

/// The tool's output: the capture without its `# origin` and `$ command`
/// lines.
pub(super) fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/megaraid")
        .join(name);
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.starts_with("$ ") && !l.starts_with("# "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The command a capture was taken with (its `$ storcli64 ...` line).
fn command_of(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/megaraid")
        .join(name);
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("$ ").map(str::to_string))
        .unwrap()
}

fn captures() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/megaraid");
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".txt") && !n.starts_with("LICENSE") && !n.starts_with("derived-"))
        .collect();
    names.sort();
    names
}

/// Every capture carries its origin and its command, and every one is
/// read by the parser its command calls for: a reply that succeeded
/// parses, one that failed is an error naming the command and storcli's
/// words, text where JSON was asked for is an error.
#[test]
fn every_capture_parses_or_fails_as_its_command_did() {
    let mut seen = 0;
    for name in captures() {
        let raw = fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/megaraid")
                .join(&name),
        )
        .unwrap();
        assert!(raw.starts_with("# origin: "), "{name}: no origin line");
        let command = command_of(&name);
        let text = fixture(&name);
        let words: Vec<&str> = command.split(' ').collect();
        let result: Result<String, String> = if !command.ends_with(" J") {
            json::replies(&text, &command)
                .map(|_| "json".to_string())
                .map_err(|e| e.to_string())
        } else if command.contains(" show events") {
            json::events(&text, &command)
                .map(|e| format!("{} events", e.len()))
                .map_err(|e| e.to_string())
        } else if command.contains("/fall show") {
            json::foreign(&text, &command)
                .map(|n| format!("{n} foreign"))
                .map_err(|e| e.to_string())
        } else if command.contains("/eall/sall show all") {
            json::drives(&text, &command)
                .map(|d| format!("{} drives", d.len()))
                .map_err(|e| e.to_string())
        } else if command.contains(" show initialization") || command.contains(" show rebuild") {
            json::rebuilds(&text, &command)
                .map(|r| format!("{} rebuilds", r.len()))
                .map_err(|e| e.to_string())
        } else if words.len() == 4 && words[2] == "show" && words[1].matches('/').count() == 1 {
            // `/cN show J`
            json::controller(&text, &command)
                .map(|c| format!("{} vds {} pds", c.vds.len(), c.pds.len()))
                .map_err(|e| e.to_string())
        } else if words.len() == 4
            && words[2] == "show"
            && super::facts::parse_drive_address(words[1]).is_some()
        {
            json::drive_information(&text, &command)
                .map(|d| format!("{} drives", d.len()))
                .map_err(|e| e.to_string())
        } else if command.contains("/call show all") {
            json::replies(&text, &command)
                .map(|r| format!("{} controllers", r.len()))
                .map_err(|e| e.to_string())
        } else {
            json::command_result(&text, &command)
                .map(|_| "ok".to_string())
                .map_err(|e| e.to_string())
        };
        let want: Result<&str, &str> = match name.as_str() {
            "pystorcli2-test03-show_J.json.txt" => Err(
                "`storcli64 show J` failed: Failure: None (Ctrl 0: Failed, ErrCd 59: Incomplete foreign configuration)",
            ),
            n if n.contains("error_codes_00-c0_show") || n.contains("test03-c0_show") => Err(
                "`storcli64 /c0 show J` failed: Failure: None (Ctrl 0: Failed, ErrCd 59: Incomplete foreign configuration)",
            ),
            n if n.contains("error_codes_01") => Err(
                "`storcli64 /c0/e252/s7 set good J` failed: Failure: Set Drive Good Failed. (Drive /c0/e252/s7: Failure, ErrCd 255: Operation not allowed.)",
            ),
            n if n.contains("show_foreign_config_01-c0_fall") => {
                Err("`storcli64 /c0/fall show J` failed: Failure: Incomplete foreign configuration")
            }
            n if n.contains("show_foreign_config_00-c0_fall") => Ok("1 foreign"),
            n if n.contains("show_events_00-c0_show_events") => Err(
                "`storcli64 /c0 show events file=/root/raid_events.log J` printed no valid JSON (expected value at line 1 column 1); it begins `CLI Version = 007.2309.0000.0000 Sep 16,`",
            ),
            n if n.contains("c0_show_J") => Ok("1 vds 12 pds"),
            n if n.contains("c1_show_J") => Ok("1 vds 12 pds"),
            n if n.contains("e35_s12_show") => Ok("1 drives"),
            "textfile-call-eall-sall-show-all-J.json.txt" => Ok("4 drives"),
            "textfile-call-show-all-J.json.txt" => Ok("1 controllers"),
            "show-initialization-J-inprogress.json.txt" => Ok("1 rebuilds"),
            "show-rebuild-text.txt" => Err(
                "`storcli64 /c0/e252/s0 show rebuild` printed no valid JSON (invalid number at line 1 column 2); it begins `------------------------------------------------------`",
            ),
            n if n.contains("-show_J") => Ok("json"),
            _ => Ok("ok"),
        };
        let want = want.map(str::to_string).map_err(str::to_string);
        // `show J` without a controller and the enclosure lists are
        // envelopes only: read through `command_result`.
        let result = match (&want, result) {
            (Ok(w), Ok(_)) if w == "json" => Ok("json".to_string()),
            (_, r) => r,
        };
        assert_eq!(result, want, "{name}");
        seen += 1;
    }
    assert_eq!(seen, 50, "every capture is read");
}

#[test]
fn the_controller_topology_vd_and_pd_lists_read_by_name() {
    let text = fixture("textfile-call-show-all-J.json.txt");
    let c = json::controller(&text, "storcli64 /call show all J").unwrap();
    assert_eq!(c.vds.len(), 1);
    let vd = &c.vds[0];
    assert_eq!(
        (vd.group, vd.vd, vd.level.as_str(), vd.state.as_str()),
        (0, 0, "RAID6", "Optl")
    );
    let drives: Vec<String> = c
        .topology
        .iter()
        .map(|t| format!("{:?} {:?} {}", t.row, t.drive, t.state))
        .collect();
    assert_eq!(
        drives,
        [
            "None None Optl",
            "None None Optl",
            "Some(0) Some((Some(252), 0)) Onln",
            "Some(1) Some((Some(252), 1)) Onln",
            "Some(2) Some((Some(252), 5)) Onln",
            "Some(3) Some((Some(252), 4)) Onln",
        ]
    );
    let pds: Vec<String> = c
        .pds
        .iter()
        .map(|p| {
            format!(
                "{} {:?} {} {:?} {:?}",
                p.slot, p.did, p.state, p.group, p.intf
            )
        })
        .collect();
    assert_eq!(
        pds,
        [
            "0 Some(2) Onln Group(0) Some(\"SATA\")",
            "1 Some(3) Onln Group(0) Some(\"SATA\")",
            "4 Some(7) Onln Group(0) Some(\"SATA\")",
            "5 Some(6) Onln Group(0) Some(\"SATA\")",
        ]
    );

    // SAS drives in no group, spun down, trailing spaces in the model.
    let text = fixture("pystorcli2-spindown_disk_00-c0_show_J.json.txt");
    let c = json::controller(&text, "storcli64 /c0 show J").unwrap();
    let first = &c.pds[0];
    assert_eq!(
        (
            first.enclosure,
            first.slot,
            first.state.as_str(),
            first.group,
            first.intf.as_deref(),
            first.model.as_deref(),
            first.spin.as_deref()
        ),
        (
            Some(35),
            12,
            "UGood",
            Group::None,
            Some("SAS"),
            Some("HUS726040AL5210"),
            Some("D")
        )
    );
}

#[test]
fn drive_states_from_the_offline_and_spindown_captures() {
    for (name, state, group, spin) in [
        (
            "pystorcli2-set_state_offline_00-c0_e35_s12_show_J.json.txt",
            "Offln",
            Group::Group(2),
            "U",
        ),
        (
            "pystorcli2-spindown_disk_00-c0_e35_s12_show_J.json.txt",
            "UGood",
            Group::None,
            "D",
        ),
    ] {
        let rows = json::drive_information(&fixture(name), "storcli64 /c0/e35/s12 show J").unwrap();
        assert_eq!(rows.len(), 1, "{name}");
        let r = &rows[0];
        assert_eq!(
            (r.state.as_str(), r.group, r.spin.as_deref(), r.did),
            (state, group, Some(spin), Some(21)),
            "{name}"
        );
    }
}

#[test]
fn drive_identities_counters_and_positions_from_show_all() {
    let text = fixture("textfile-call-eall-sall-show-all-J.json.txt");
    let drives = json::drives(&text, "storcli64 /call/eall/sall show all J").unwrap();
    let got: Vec<String> = drives
        .iter()
        .map(|d| {
            format!(
                "{}:{} did={:?} {} sn={:?} wwn={:?} model={:?} fw={:?} bytes={:?} pos={:?} media={:?} other={:?} pred={:?} alert={:?}",
                d.row.enclosure.unwrap(),
                d.row.slot,
                d.row.did,
                d.row.state,
                d.serial,
                d.wwn,
                d.model,
                d.firmware,
                d.size_bytes,
                d.position,
                d.media_errors,
                d.other_errors,
                d.predictive_failures,
                d.smart_alert,
            )
        })
        .collect();
    for line in &got {
        assert!(line.contains("bytes=Some(960197124096)"), "{line}");
        assert!(
            line.contains("model=Some(\"Micron_5200_MTFDDAK960TDC\")"),
            "{line}"
        );
        assert!(line.contains("fw=Some(\"D1MU004\")"), "{line}");
        assert!(line.contains("alert=Some(false)"), "{line}");
    }
    assert!(
        got[0].starts_with(
            "252:0 did=Some(2) Onln sn=Some(\"20032656D641\") wwn=Some(\"500A07512656D641\")"
        ),
        "{}",
        got[0]
    );
    assert!(got[0].contains("pos=Some((0, 0, 0))"), "{}", got[0]);
    let slots: Vec<u32> = drives.iter().map(|d| d.row.slot).collect();
    assert_eq!(slots, [0, 1, 4, 5]);
    // Every drive's counters are read (zero here), none is missing.
    assert!(drives.iter().all(|d| d.media_errors.is_some()
        && d.other_errors.is_some()
        && d.predictive_failures.is_some()));
}

/// A counter storcli prints as `N/A`, or leaves out, is unreadable, not
/// zero.
#[test]
fn na_and_absent_counters_are_unreadable_not_zero() {
    let text = fixture("textfile-call-eall-sall-show-all-J.json.txt");
    let text = text
        .replacen(
            "\"Media Error Count\" : 0",
            "\"Media Error Count\" : \"N/A\"",
            1,
        )
        .replacen("\"Other Error Count\" : 0,", "", 1)
        .replacen(
            "\"Predictive Failure Count\" : 0",
            "\"Predictive Failure Count\" : \"3\"",
            1,
        )
        .replacen(
            "\"S.M.A.R.T alert flagged by drive\" : \"No\"",
            "\"S.M.A.R.T alert flagged by drive\" : \"Yes\"",
            1,
        );
    let drives = json::drives(&text, "storcli64 /c0/eall/sall show all J").unwrap();
    let d = &drives[0];
    assert_eq!(
        (
            d.media_errors,
            d.other_errors,
            d.predictive_failures,
            d.smart_alert
        ),
        (None, None, Some(3), Some(true))
    );
}

#[test]
fn rebuild_progress_is_a_number_while_it_runs_and_a_dash_when_idle() {
    let running = fixture("show-initialization-J-inprogress.json.txt");
    let r = json::rebuilds(&running, "storcli64 /c0/e4/s14 show initialization J").unwrap();
    assert_eq!(
        (
            r[0].drive.as_str(),
            r[0].percent,
            r[0].status.as_str(),
            r[0].time_left.clone()
        ),
        ("/c0/e4/s14", Some(4), "In progress", None)
    );
    let rebuilding = running
        .replace("\"Progress%\" : 4", "\"Progress%\" : 11")
        .replace(
            "\"Estimated Time Left\" : \"-\"",
            "\"Estimated Time Left\" : \"12 Hours 54 Minutes\"",
        );
    let r = json::rebuilds(&rebuilding, "storcli64 /c0/e4/s14 show rebuild J").unwrap();
    assert_eq!(
        (r[0].percent, r[0].time_left.as_deref()),
        (Some(11), Some("12 Hours 54 Minutes"))
    );
    let idle = running
        .replace("\"Progress%\" : 4", "\"Progress%\" : \"-\"")
        .replace("In progress", "Not in progress");
    let r = json::rebuilds(&idle, "storcli64 /c0/e4/s14 show rebuild J").unwrap();
    assert_eq!(
        (r[0].percent, r[0].status.as_str()),
        (None, "Not in progress")
    );
    let odd = running.replace("\"Progress%\" : 4", "\"Progress%\" : 140");
    let e = json::rebuilds(&odd, "storcli64 /c0/e4/s14 show rebuild J").unwrap_err();
    assert_eq!(
        e.to_string(),
        "`storcli64 /c0/e4/s14 show rebuild J`: `/c0/e4/s14`: `Progress%` is not a percentage"
    );
}

#[test]
fn events_are_read_by_name_wherever_they_sit() {
    let text = r#"{"Controllers":[{"Command Status":{"Controller":0,"Status":"Success","Description":"None"},
      "Response Data":{"Events":[{"seqNum":"0x0000a1b2","Time":"Sat Nov 28 10:00:01 2026","Code":"0x00000072","Class":0,"Locale":"0x02","Event Description":"State change on PD 0a(e0xfc/s1) from ONLINE(18) to OFFLINE(10)"},
      {"seqNum":17,"Event Description":"Rebuild automatically started on PD 0b(e0xfc/s1)"}]}}]}"#;
    let events = json::events(text, "storcli64 /c0 show events type=latest=10 J").unwrap();
    let got: Vec<(Option<u64>, &str)> = events
        .iter()
        .map(|e| (e.seq, e.description.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                None,
                "State change on PD 0a(e0xfc/s1) from ONLINE(18) to OFFLINE(10)"
            ),
            (Some(17), "Rebuild automatically started on PD 0b(e0xfc/s1)")
        ]
    );
}

/// Broken replies of every kind: a clear error naming the command and the
/// field, never a panic and never an empty success.
#[test]
fn malformed_replies_are_clear_errors() {
    let good = fixture("textfile-call-show-all-J.json.txt");
    let drives = fixture("textfile-call-eall-sall-show-all-J.json.txt");
    let cmd = "storcli64 /c0 show J";
    for (text, want) in [
        (
            String::new(),
            "`storcli64 /c0 show J` printed nothing where JSON was asked for",
        ),
        (
            good[..good.len() / 2].to_string(),
            "`storcli64 /c0 show J` printed no valid JSON",
        ),
        (
            "{}".to_string(),
            "`storcli64 /c0 show J`: the reply has no `Controllers`",
        ),
        (
            r#"{"Controllers":{}}"#.to_string(),
            "`storcli64 /c0 show J`: `Controllers` is not a list",
        ),
        (
            r#"{"Controllers":[]}"#.to_string(),
            "`storcli64 /c0 show J`: `Controllers` is empty",
        ),
        (
            r#"{"Controllers":[7]}"#.to_string(),
            "`storcli64 /c0 show J`: `Controllers[0]` is not an object",
        ),
        (
            r#"{"Controllers":[{}]}"#.to_string(),
            "`storcli64 /c0 show J`: `Controllers[0]` has no `Command Status`",
        ),
        (
            r#"{"Controllers":[{"Command Status":{"Description":"x"}}]}"#.to_string(),
            "`storcli64 /c0 show J`: `Controllers[0]`: `Command Status` has no `Status`",
        ),
        (
            good.replacen("\"Status\" : \"Success\"", "\"Status\" : \"Failure\"", 1),
            "`storcli64 /c0 show J` failed: Failure: None",
        ),
        (
            good.replacen("\"TOPOLOGY\" : [", "\"TOPOLOGY\" : 5, \"x\" : [", 1),
            "`storcli64 /c0 show J`: `TOPOLOGY` is not a list",
        ),
        (
            good.replacen("\"EID:Slt\" : \"252:0\"", "\"EID:Slt\" : \"two\"", 1),
            "`storcli64 /c0 show J`: `PD LIST[0]`: `EID:Slt` is `two`, not `enclosure:slot`",
        ),
        (
            good.replacen("\"DG/VD\" : \"0/0\"", "\"DG/VD\" : 3", 1),
            "`storcli64 /c0 show J`: `VD LIST[0]`: `DG/VD` is `3`, not `group/vd`",
        ),
        (
            good.replacen("\"TYPE\" : \"RAID6\",", "", 1),
            "`storcli64 /c0 show J`: `VD LIST[0]` has no `TYPE`",
        ),
    ] {
        let err = json::controller(&text, cmd).unwrap_err().to_string();
        assert!(err.starts_with(want), "{err}\nwant: {want}");
    }
    let cmd = "storcli64 /c0/eall/sall show all J";
    for (text, want) in [
        (
            drives.replacen("\"State\" : \"Onln\",", "", 1),
            "`storcli64 /c0/eall/sall show all J`: `Drive /c0/e252/s0` (252:0) has no `State`",
        ),
        (
            drives.replacen("\"EID:Slt\" : \"252:0\"", "\"EID:Slt\" : \"252:9\"", 1),
            "`storcli64 /c0/eall/sall show all J`: `Drive /c0/e252/s0` holds the row of `252:9`",
        ),
        (
            drives.replacen(
                "\"Drive /c0/e252/s0\" : [",
                "\"Drive /c0/e252/s0\" : 1, \"y\" : [",
                1,
            ),
            "`storcli64 /c0/eall/sall show all J`: `Drive /c0/e252/s0` is not a list",
        ),
        (
            drives.replacen("\"Drive /c0/e252/s0\" :", "\"Drive /c0/x\" :", 1),
            "`storcli64 /c0/eall/sall show all J`: `Drive /c0/x` does not name a drive address",
        ),
    ] {
        let err = json::drives(&text, cmd).unwrap_err().to_string();
        assert_eq!(err, want);
    }
    // A hostile string from the tool does not reach the terminal raw.
    let hostile = good
        .replacen(
            "\"Description\" : \"None\"",
            "\"Description\" : \"bad\\u001b[2J\"",
            1,
        )
        .replacen("\"Status\" : \"Success\"", "\"Status\" : \"Failure\"", 1);
    let err = json::controller(&hostile, "storcli64 /c0 show J")
        .unwrap_err()
        .to_string();
    assert!(!err.contains('\u{1b}'), "{err:?}");
    // Truncated and mistyped replies to every other parser.
    for cut in [0, 1, 10, 100, 1000] {
        let t = &drives[..cut.min(drives.len())];
        assert!(json::drives(t, cmd).is_err());
        assert!(json::foreign(t, cmd).is_err());
        assert!(json::rebuilds(t, cmd).is_err());
        assert!(json::virtual_drives(t, cmd).is_err());
        assert!(json::events(t, cmd).is_err());
    }
    assert!(json::rebuilds(&good, "storcli64 /c0/e252/s0 show rebuild J").is_err());
    let err = json::foreign(
        r#"{"Controllers":[{"Command Status":{"Status":"Success","Description":"x"},"Response Data":{"Total foreign Drive Groups":"many"}}]}"#,
        "storcli64 /c0/fall show J",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`storcli64 /c0/fall show J`: `Total foreign Drive Groups` is not a number"
    );
}
