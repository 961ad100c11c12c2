//! `storcli64` (and `storcli`, `perccli64`, `perccli`: the same tool),
//! interpreted against the simulated controller.
//!
//! Every answer is the JSON envelope storcli prints with a trailing `J`
//! (`{"Controllers":[{"Command Status":{...},"Response Data":...}]}`), in
//! the shapes of the captures in reference/samples/storcli-pystorcli2/.
//! A refusal is `"Status":"Failure"` with a `Description` and a `Detailed
//! Status` (`ErrCd`, `ErrMsg`), and a non-zero exit status. What is
//! modelled: `set offline|missing|good`, `spindown`, `start|stop locate`,
//! `insert dg= array= row=`, `start rebuild`, `show rebuild`, `add
//! hotsparedrive`, `show [all]` of a drive, `/cN/fall show|delete`,
//! `/cN/vM show [all]`, `/cN show`. Anything else (`import` among them) is
//! not simulated: the caller gets an error naming the command, never a
//! made-up success.

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::backend::CommandOutput;
use crate::backend::sim::megaraid::{MegaRaid, PdState, parse_slot};
use crate::backend::sim::pool::Pool;

/// The CLI version a simulated answer carries.
const CLI_VERSION: &str = "007.2408.0000.0000 Nov 15, 2022";

/// The exit status of a refused command.
const FAILURE_EXIT: i32 = 255;

fn envelope(
    mr: &MegaRaid,
    argv: &[String],
    ok: bool,
    description: &str,
    detail: Option<Value>,
    data: Option<Value>,
) -> CommandOutput {
    let mut status = json!({
        "CLI Version": CLI_VERSION,
        "Operating system": "Linux 6.1.0 (simulated)",
        "Controller": mr.controller,
        "Status": if ok { "Success" } else { "Failure" },
        "Description": description,
    });
    if let Some(detail) = detail {
        status["Detailed Status"] = detail;
    }
    let mut controller = json!({ "Command Status": status });
    if let Some(data) = data {
        controller["Response Data"] = data;
    }
    let doc = json!({ "Controllers": [controller] });
    CommandOutput {
        argv: argv.to_vec(),
        code: Some(if ok { 0 } else { FAILURE_EXIT }),
        stdout: serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n",
        stderr: String::new(),
        timed_out: false,
    }
}

fn success(mr: &MegaRaid, argv: &[String], description: &str) -> Result<CommandOutput> {
    Ok(envelope(mr, argv, true, description, None, None))
}

/// A refusal about one drive, as storcli words it: `Set Drive Good
/// Failed.` with `ErrCd 255`, `Operation not allowed.`.
fn refuse(
    mr: &MegaRaid,
    argv: &[String],
    address: &str,
    description: &str,
    code: u32,
    message: &str,
) -> Result<CommandOutput> {
    let detail = json!([{
        "Drive": address,
        "Status": "Failure",
        "ErrCd": code,
        "ErrMsg": message,
    }]);
    Ok(envelope(mr, argv, false, description, Some(detail), None))
}

/// Run one storcli command line. `Err` only for what the simulator does
/// not model.
pub(crate) fn run(
    mr: &mut MegaRaid,
    pool: &mut Pool,
    argv: &[String],
    now_ms: u64,
    log: &mut Vec<String>,
) -> Result<CommandOutput> {
    let program = argv.first().map_or("storcli64", String::as_str);
    let Some((last, words)) = argv[1..].split_last() else {
        bail!("the simulator cannot run `{program}` without arguments");
    };
    if last != "J" {
        bail!(
            "the simulator answers `{program}` only in JSON: end the command with `J` ({})",
            argv.join(" ")
        );
    }
    let Some((address, rest)) = words.split_first() else {
        bail!("the simulator cannot run `{}`", argv.join(" "));
    };
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let controller = format!("/c{}", mr.controller);
    if mr.unreadable {
        return Ok(envelope(
            mr,
            argv,
            false,
            "Controller not responding.",
            Some(
                json!([{ "Status": "Failure", "ErrCd": 1, "ErrMsg": "the scenario made the controller unreadable" }]),
            ),
            None,
        ));
    }
    if !address.starts_with(&controller)
        || !matches!(address.as_bytes().get(controller.len()), None | Some(b'/'))
    {
        return Ok(envelope(
            mr,
            argv,
            false,
            "Controller 0 not found",
            None,
            None,
        ));
    }
    let tail = &address[controller.len()..];
    let unmodelled = || {
        anyhow::anyhow!(
            "the simulator models storcli's `set offline|missing|good`, `spindown`, `start|stop locate`, `insert`, `start|show rebuild`, `add hotsparedrive`, `show`, `/cN/fall show|delete` and `/cN/vM show`, not `{}`; add a [[command]] with canned output",
            argv.join(" ")
        )
    };
    match (tail, rest.as_slice()) {
        ("", ["show"]) | ("", ["show", "all"]) => Ok(controller_show(mr, pool, argv)),
        ("/fall", ["show"]) | ("/fall", ["show", "all"]) => Ok(foreign_show(mr, pool, argv)),
        ("/fall", ["delete"]) | ("/fall", ["del"]) => {
            Ok(foreign_delete(mr, pool, argv, now_ms, log))
        }
        ("/eall/sall", ["show"]) | ("/eall/sall", ["show", "all"]) => {
            Ok(pd_show(mr, pool, argv, None))
        }
        _ if tail.starts_with("/v") => {
            let vd = tail[2..].parse::<u32>().ok();
            match rest.as_slice() {
                ["show"] => Ok(vd_show(mr, pool, argv, vd, false)),
                ["show", "all"] => Ok(vd_show(mr, pool, argv, vd, true)),
                _ => Err(unmodelled()),
            }
        }
        _ => {
            let Some(drive_slot) = drive_address(tail) else {
                return Err(unmodelled());
            };
            let Some(drive) = mr.drive_at(pool, address) else {
                return refuse(
                    mr,
                    argv,
                    address,
                    &format!("{} Failed.", operation(&rest)),
                    3,
                    "Drive not found.",
                );
            };
            let _ = drive_slot;
            drive_command(mr, pool, argv, address, drive, &rest, now_ms, log)
                .unwrap_or_else(|| Err(unmodelled()))
        }
    }
}

/// `/e252/s1` or `/s3` → the slot string (`252:1`, `3`).
fn drive_address(tail: &str) -> Option<String> {
    let slot = if let Some(rest) = tail.strip_prefix("/e") {
        let (e, s) = rest.split_once("/s")?;
        format!("{e}:{s}")
    } else {
        tail.strip_prefix("/s")?.to_string()
    };
    parse_slot(&slot).map(|_| slot)
}

/// storcli's name of an operation, for its `Description`.
fn operation(rest: &[&str]) -> &'static str {
    match rest {
        ["set", "offline"] => "Set Drive Offline",
        ["set", "missing"] => "Set Drive Missing",
        ["set", "good", ..] => "Set Drive Good",
        ["spindown"] => "Spin Down Drive",
        ["start", "locate"] => "Start Drive Locate",
        ["stop", "locate"] => "Stop Drive Locate",
        ["insert", ..] => "Insert Drive",
        ["start", "rebuild"] => "Start Drive Rebuild",
        ["show", "rebuild"] => "Show Drive Rebuild Status",
        ["add", "hotsparedrive", ..] => "Add Hot Spare",
        _ => "Show Drive Information",
    }
}

#[allow(clippy::too_many_arguments)]
fn drive_command(
    mr: &mut MegaRaid,
    pool: &mut Pool,
    argv: &[String],
    address: &str,
    drive: usize,
    rest: &[&str],
    now_ms: u64,
    log: &mut Vec<String>,
) -> Option<Result<CommandOutput>> {
    let op = operation(rest);
    let failed = format!("{op} Failed.");
    let succeeded = format!("{op} Succeeded.");
    let who = mr.describe(pool, drive);
    let state = mr.pds[drive].state;
    let not_allowed =
        |mr: &MegaRaid| refuse(mr, argv, address, &failed, 255, "Operation not allowed.");
    let out = match rest {
        ["show"] | ["show", "all"] => Ok(pd_show(mr, pool, argv, Some(drive))),
        ["set", "offline"] => {
            if state != PdState::Onln {
                return Some(not_allowed(mr));
            }
            mr.pds[drive].state = PdState::Offln;
            log.push(format!(
                "storcli set {who} offline; {} is {}",
                mr.name,
                mr.vd_state(pool)
            ));
            success(mr, argv, &succeeded)
        }
        ["set", "missing"] => {
            // Only an offline drive of a group can be marked missing.
            if state != PdState::Offln || mr.row_of(drive).is_none() {
                return Some(not_allowed(mr));
            }
            mr.pds[drive].state = PdState::Msng;
            log.push(format!("storcli marked {who} missing"));
            success(mr, argv, &succeeded)
        }
        ["set", "good"] | ["set", "good", "force"] => {
            if state != PdState::UBad || mr.row_of(drive).is_some() {
                return Some(not_allowed(mr));
            }
            mr.pds[drive].state = PdState::UGood;
            log.push(format!("storcli set {who} unconfigured good"));
            success(mr, argv, &succeeded)
        }
        ["spindown"] => {
            if matches!(state, PdState::Onln | PdState::Rbld) {
                return Some(not_allowed(mr));
            }
            mr.pds[drive].spun_down = true;
            log.push(format!("storcli spun down {who}"));
            success(mr, argv, &succeeded)
        }
        ["start", "locate"] | ["stop", "locate"] => {
            log.push(format!(
                "storcli {} locate LED of {who}",
                if rest[0] == "start" {
                    "started"
                } else {
                    "stopped"
                }
            ));
            success(mr, argv, &succeeded)
        }
        ["insert", args @ ..] => insert(
            mr, pool, argv, address, drive, args, &failed, &succeeded, now_ms, log,
        ),
        ["start", "rebuild"] => {
            if state != PdState::Offln || mr.row_of(drive).is_none() {
                return Some(not_allowed(mr));
            }
            mr.start_rebuild(pool, drive, now_ms, log);
            success(mr, argv, &succeeded)
        }
        ["show", "rebuild"] => {
            let row = match mr.progress(drive, now_ms) {
                Some((percent, left_ms)) => json!({
                    "Drive-ID": address,
                    "Progress%": percent,
                    "Status": "In progress",
                    "Estimated Time Left": time_left(left_ms),
                }),
                None => json!({
                    "Drive-ID": address,
                    "Progress%": "-",
                    "Status": "Not in progress",
                    "Estimated Time Left": "-",
                }),
            };
            Ok(envelope(
                mr,
                argv,
                true,
                "Show Drive Rebuild Status Succeeded.",
                None,
                Some(json!([row])),
            ))
        }
        ["add", "hotsparedrive", args @ ..] => {
            if state != PdState::UGood || mr.pds[drive].foreign {
                return Some(not_allowed(mr));
            }
            let dgs = match args {
                [] => None,
                [one] => match one.strip_prefix("dgs=").and_then(|n| n.parse::<u32>().ok()) {
                    Some(g) => Some(g),
                    None => return Some(not_allowed(mr)),
                },
                _ => return Some(not_allowed(mr)),
            };
            let pd = &mut mr.pds[drive];
            pd.state = if dgs.is_some() {
                PdState::Dhs
            } else {
                PdState::Ghs
            };
            pd.dg = dgs;
            log.push(format!(
                "storcli made {who} a {} hot spare",
                if dgs.is_some() { "dedicated" } else { "global" }
            ));
            success(mr, argv, &succeeded)
        }
        _ => return None,
    };
    Some(out)
}

#[allow(clippy::too_many_arguments)]
fn insert(
    mr: &mut MegaRaid,
    pool: &Pool,
    argv: &[String],
    address: &str,
    drive: usize,
    args: &[&str],
    failed: &str,
    succeeded: &str,
    now_ms: u64,
    log: &mut Vec<String>,
) -> Result<CommandOutput> {
    let value = |key: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse::<u32>().ok())
    };
    let (Some(dg), Some(arr), Some(row)) = (value("dg"), value("array"), value("row")) else {
        return refuse(
            mr,
            argv,
            address,
            failed,
            255,
            "Invalid input: give dg=, array= and row=.",
        );
    };
    let pd = &mr.pds[drive];
    if pd.state != PdState::UGood || pd.foreign || mr.row_of(drive).is_some() {
        return refuse(mr, argv, address, failed, 255, "Operation not allowed.");
    }
    let Some(r) = mr
        .rows
        .iter()
        .position(|x| x.dg == dg && x.arr == arr && x.row == row)
    else {
        return refuse(mr, argv, address, failed, 255, "Invalid array or row.");
    };
    // Only a row whose drive is missing takes a drive.
    let missing = match mr.rows[r].drive {
        None => true,
        Some(d) => !pool.drives[d].present || mr.pds[d].state == PdState::Msng,
    };
    if !missing {
        return refuse(mr, argv, address, failed, 255, "Row is not missing.");
    }
    if pool.drives[drive].size_bytes < mr.row_bytes {
        return refuse(mr, argv, address, failed, 255, "Drive is too small.");
    }
    if let Some(old) = mr.rows[r].drive {
        mr.pds[old].state = PdState::UGood;
        mr.pds[old].dg = None;
    }
    // "Replaces the configured drive that is identified as missing, and
    // starts an automatic rebuild" (the StorCLI reference).
    mr.put_in_row(drive, r);
    log.push(format!(
        "storcli put {} into row {dg}/{arr}/{row}",
        mr.describe(pool, drive)
    ));
    mr.start_rebuild(pool, drive, now_ms, log);
    success(mr, argv, succeeded)
}

/// `12 Hours 54 Minutes`, `5 Minutes`, `30 Seconds`.
fn time_left(ms: u64) -> String {
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s} Seconds"),
        (0, _) => format!("{m} Minutes"),
        _ => format!("{h} Hours {m} Minutes"),
    }
}

/// One PD LIST row.
fn pd_row(mr: &MegaRaid, pool: &Pool, drive: usize) -> Value {
    let d = &pool.drives[drive];
    let pd = &mr.pds[drive];
    let slot = d.slot.clone().unwrap_or_default();
    let eid_slt = match parse_slot(&slot) {
        Some((Some(e), s)) => format!("{e}:{s}"),
        Some((None, s)) => format!(" :{s}"),
        None => slot.clone(),
    };
    let dg: Value = match mr.dg_word(drive).parse::<u32>() {
        Ok(n) => json!(n),
        Err(_) => json!(mr.dg_word(drive)),
    };
    json!({
        "EID:Slt": eid_slt,
        "DID": drive,
        "State": pd.state.word(),
        "DG": dg,
        "Size": format!("{:.3} GB", d.size_bytes as f64 / 1_073_741_824.0),
        "Intf": pd.intf,
        "Med": "SSD",
        "SED": "N",
        "PI": "N",
        "SeSz": "512B",
        "Model": d.model.clone().unwrap_or_default(),
        "Sp": if pd.spun_down { "D" } else { "U" },
        "Type": "-",
    })
}

/// `/cN/eE/sS show [all]`, `/cN/eall/sall show [all]`: the PD rows and the
/// detailed information of each (counters, identity).
fn pd_show(mr: &MegaRaid, pool: &Pool, argv: &[String], only: Option<usize>) -> CommandOutput {
    let mut data = serde_json::Map::new();
    for (i, d) in pool.drives.iter().enumerate() {
        if !d.present || only.is_some_and(|o| o != i) {
            continue;
        }
        let address = mr.address(d.slot.as_deref().unwrap_or_default());
        let counter = |name: &str| {
            if d.counters_unreadable {
                json!("N/A")
            } else {
                json!(d.counters.get(name).copied().unwrap_or(0))
            }
        };
        let pd = &mr.pds[i];
        data.insert(format!("Drive {address}"), json!([pd_row(mr, pool, i)]));
        data.insert(
            format!("Drive {address} - Detailed Information"),
            json!({
                format!("Drive {address} State"): {
                    "Shield Counter": 0,
                    "Media Error Count": counter("megaraid.media_errors"),
                    "Other Error Count": counter("megaraid.other_errors"),
                    "Drive Temperature": " 30C (86.00 F)",
                    "Predictive Failure Count": counter("megaraid.predictive_failures"),
                    "S.M.A.R.T alert flagged by drive": if pd.smart_alert { "Yes" } else { "No" },
                },
                format!("Drive {address} Device attributes"): {
                    "SN": d.serial.clone().unwrap_or_default(),
                    "WWN": d.wwn.clone().unwrap_or_default(),
                    "Model Number": d.model.clone().unwrap_or_default(),
                    "Firmware Revision": d.firmware.clone().unwrap_or_default(),
                    "Raw size": format!("{:.3} GB [{:#x} Sectors]", d.size_bytes as f64 / 1_073_741_824.0, d.size_bytes / 512),
                },
            }),
        );
    }
    envelope(
        mr,
        argv,
        true,
        "Show Drive Information Succeeded.",
        None,
        Some(Value::Object(data)),
    )
}

fn vd_row(mr: &MegaRaid, pool: &Pool) -> Value {
    json!({
        "DG/VD": format!("{}/{}", mr.dg, mr.vd),
        "TYPE": mr.level.name().to_ascii_uppercase(),
        "State": mr.vd_state(pool),
        "Access": "RW",
        "Consist": "Yes",
        "Cache": "RWBD",
        "Cac": "-",
        "sCC": "ON",
        "Size": format!("{:.3} GB", mr.row_bytes as f64 / 1_073_741_824.0),
        "Name": "",
    })
}

/// `/cN/vM show [all]`.
fn vd_show(
    mr: &MegaRaid,
    pool: &Pool,
    argv: &[String],
    vd: Option<u32>,
    all: bool,
) -> CommandOutput {
    if vd != Some(mr.vd) {
        return envelope(mr, argv, false, "No VDs have been configured.", None, None);
    }
    let pds: Vec<Value> = mr
        .rows
        .iter()
        .filter(|r| r.dg == mr.dg)
        .filter_map(|r| r.drive)
        .filter(|&d| pool.drives[d].present)
        .map(|d| pd_row(mr, pool, d))
        .collect();
    let mut data = json!({
        format!("/c{}/v{}", mr.controller, mr.vd): [vd_row(mr, pool)],
    });
    if all {
        data[format!("PDs for VD {}", mr.vd)] = Value::Array(pds);
    }
    envelope(
        mr,
        argv,
        true,
        "Show VD Information Succeeded.",
        None,
        Some(data),
    )
}

/// `/cN show`: topology, VD list and PD list.
fn controller_show(mr: &MegaRaid, pool: &Pool, argv: &[String]) -> CommandOutput {
    let topology: Vec<Value> = mr
        .rows
        .iter()
        .map(|r| {
            let (slot, state) = match r.drive.filter(|&d| pool.drives[d].present) {
                Some(d) => {
                    let slot = pool.drives[d].slot.clone().unwrap_or_default();
                    (slot, mr.pds[d].state.word())
                }
                None => ("-".to_string(), "Msng"),
            };
            json!({ "DG": r.dg, "Arr": r.arr, "Row": r.row, "EID:Slot": slot, "Type": "DRIVE", "State": state })
        })
        .collect();
    let pds: Vec<Value> = (0..pool.drives.len())
        .filter(|&i| pool.drives[i].present)
        .map(|i| pd_row(mr, pool, i))
        .collect();
    let data = json!({
        "Product Name": "Simulated MegaRAID",
        "TOPOLOGY": topology,
        "Virtual Drives": 1,
        "VD LIST": [vd_row(mr, pool)],
        "Physical Drives": pds.len(),
        "PD LIST": pds,
    });
    envelope(mr, argv, true, "None", None, Some(data))
}

/// `/cN/fall show`.
fn foreign_show(mr: &MegaRaid, pool: &Pool, argv: &[String]) -> CommandOutput {
    let foreign = mr.foreign(pool);
    let data = if foreign.is_empty() {
        json!({ "Total foreign Drive Groups": 0 })
    } else {
        let list: Vec<Value> = foreign
            .iter()
            .enumerate()
            .map(|(i, _)| {
                json!({
                    "DG": i,
                    "EID:Slot": "-",
                    "Type": mr.level.name().to_ascii_uppercase(),
                    "State": "Frgn",
                    "Size": "0 KB",
                    "NoVDs": 1,
                })
            })
            .collect();
        json!({ "FOREIGN CONFIGURATION": list, "Total foreign Drive Groups": foreign.len() })
    };
    envelope(
        mr,
        argv,
        true,
        "Operation on foreign configuration Succeeded",
        None,
        Some(data),
    )
}

/// `/cN/fall delete`: every foreign configuration is cleared; the drives
/// are unconfigured good.
fn foreign_delete(
    mr: &mut MegaRaid,
    pool: &Pool,
    argv: &[String],
    now_ms: u64,
    log: &mut Vec<String>,
) -> CommandOutput {
    let foreign = mr.foreign(pool);
    if foreign.is_empty() {
        return envelope(
            mr,
            argv,
            false,
            "Delete foreign configuration Failed.",
            Some(
                json!([{ "Status": "Failure", "ErrCd": 255, "ErrMsg": "No foreign configuration found." }]),
            ),
            None,
        );
    }
    for &d in &foreign {
        mr.pds[d].foreign = false;
        mr.pds[d].state = PdState::UGood;
        log.push(format!(
            "storcli deleted the foreign configuration on {}",
            mr.describe(pool, d)
        ));
    }
    // A drive now unconfigured good in the bay of a missing row is what
    // auto-rebuild takes.
    for d in foreign {
        mr.plugged(pool, d, now_ms, log);
    }
    envelope(
        mr,
        argv,
        true,
        "Successfully deleted foreign configuration",
        None,
        None,
    )
}
