//! storcli's JSON (`... J`), read by key name, never by column position:
//! storcli 7.x and 8.x (SAS4 controllers) print different column sets
//! (`DID` or `PID`, `State` or `Status`), perccli prints storcli's.
//!
//! Every reply is an envelope, `{"Controllers": [{"Command Status": {...},
//! "Response Data": ...}]}`. A reply whose `Status` is not `Success` is an
//! error naming the command, its `Description` and every `Detailed Status`
//! (`ErrCd`, `ErrMsg`), even when it carries data: `/c0 show J` can fail
//! with "Incomplete foreign configuration" and still print a full
//! topology, and what the controller would not vouch for is not health.
//! Text where JSON was asked for, truncated JSON, a field of the wrong
//! type or a missing field is an error naming the command and the field.

use anyhow::{Result, anyhow, bail};
use serde_json::{Map, Value};

use crate::sanitize::sanitize;

/// One controller's `Command Status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub controller: Option<u64>,
    /// `Success`, `Failure`, ... as storcli spells it.
    pub status: String,
    pub description: String,
    pub details: Vec<Detail>,
}

/// One `Detailed Status` row: what it is about (`Drive`, `Ctrl`), its
/// status and error code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detail {
    pub subject: String,
    pub status: String,
    pub code: Option<i64>,
    pub message: String,
}

impl Status {
    pub fn ok(&self) -> bool {
        self.status == "Success"
    }

    /// `Set Drive Good Failed. (Drive /c0/e252/s7: Failure, ErrCd 255:
    /// Operation not allowed.)`, sanitised.
    pub fn describe(&self) -> String {
        let mut text = format!("{}: {}", self.status, self.description);
        let details: Vec<String> = self
            .details
            .iter()
            .map(|d| {
                let mut t = d.subject.clone();
                if !d.status.is_empty() {
                    t.push_str(&format!(": {}", d.status));
                }
                if let Some(code) = d.code {
                    t.push_str(&format!(", ErrCd {code}"));
                }
                if !d.message.is_empty() {
                    t.push_str(&format!(": {}", d.message));
                }
                t
            })
            .collect();
        if !details.is_empty() {
            text.push_str(&format!(" ({})", details.join("; ")));
        }
        sanitize(&text, false)
    }
}

/// One controller's reply.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: Status,
    /// `Response Data`; `Null` when the reply has none (a write's reply).
    pub data: Value,
}

/// Every controller's reply in `text`, the output of `command`.
pub fn replies(text: &str, command: &str) -> Result<Vec<Reply>> {
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        bail!("`{command}` printed nothing where JSON was asked for");
    }
    let root: Value = serde_json::from_str(text).map_err(|e| {
        let first = trimmed.lines().next().unwrap_or("");
        anyhow!(
            "`{command}` printed no valid JSON ({e}); it begins `{}`",
            sanitize(&first.chars().take(60).collect::<String>(), false)
        )
    })?;
    let controllers = root
        .get("Controllers")
        .ok_or_else(|| anyhow!("`{command}`: the reply has no `Controllers`"))?
        .as_array()
        .ok_or_else(|| anyhow!("`{command}`: `Controllers` is not a list"))?;
    if controllers.is_empty() {
        bail!("`{command}`: `Controllers` is empty");
    }
    controllers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let where_ = format!("`{command}`: `Controllers[{i}]`");
            let obj = c
                .as_object()
                .ok_or_else(|| anyhow!("{where_} is not an object"))?;
            let status = obj
                .get("Command Status")
                .ok_or_else(|| anyhow!("{where_} has no `Command Status`"))?;
            let status = command_status(status, &where_)?;
            let data = obj.get("Response Data").cloned().unwrap_or(Value::Null);
            Ok(Reply { status, data })
        })
        .collect()
}

fn command_status(value: &Value, where_: &str) -> Result<Status> {
    let obj = value
        .as_object()
        .ok_or_else(|| anyhow!("{where_}: `Command Status` is not an object"))?;
    let status = text_field(obj, "Status")
        .ok_or_else(|| anyhow!("{where_}: `Command Status` has no `Status`"))?;
    let details = match obj.get("Detailed Status") {
        None => Vec::new(),
        Some(Value::Array(rows)) => rows
            .iter()
            .map(|row| {
                let row = row.as_object();
                let get = |k: &str| row.and_then(|r| text_field(r, k)).unwrap_or_default();
                let subject = row
                    .and_then(|r| {
                        ["Drive", "Ctrl", "VD", "DG", "Controller"]
                            .iter()
                            .find_map(|k| r.get(*k).map(|v| format!("{k} {}", scalar_text(v))))
                    })
                    .unwrap_or_default();
                Detail {
                    subject,
                    status: get("Status"),
                    code: row.and_then(|r| r.get("ErrCd")).and_then(|v| {
                        v.as_i64()
                            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    }),
                    message: get("ErrMsg"),
                }
            })
            .collect(),
        Some(_) => bail!("{where_}: `Detailed Status` is not a list"),
    };
    Ok(Status {
        controller: obj.get("Controller").and_then(Value::as_u64),
        status,
        description: text_field(obj, "Description").unwrap_or_default(),
        details,
    })
}

/// The one controller's `Response Data` of a reply that must succeed: an
/// error naming `command` and what storcli said otherwise.
pub fn success(text: &str, command: &str) -> Result<Value> {
    let mut all = replies(text, command)?;
    if all.len() != 1 {
        bail!(
            "`{command}` answered for {} controllers where one was asked",
            all.len()
        );
    }
    let reply = all.remove(0);
    if !reply.status.ok() {
        bail!("`{command}` failed: {}", reply.status.describe());
    }
    Ok(reply.data)
}

/// A command that writes (`set offline`): its status only.
pub fn command_result(text: &str, command: &str) -> Result<Status> {
    let all = replies(text, command)?;
    match all.into_iter().find(|r| !r.status.ok()) {
        Some(bad) => bail!("`{command}` failed: {}", bad.status.describe()),
        None => Ok(Status {
            controller: None,
            status: "Success".into(),
            description: String::new(),
            details: Vec::new(),
        }),
    }
}

// ---------------------------------------------------------------------
// Field helpers.

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.trim().to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A field as text (strings trimmed; numbers printed).
fn text_field(obj: &Map<String, Value>, key: &str) -> Option<String> {
    match obj.get(key)? {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The first of `keys` present, as text.
fn first_text(obj: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| text_field(obj, k))
}

/// A small whole number, given as a number or a string of digits; `-`,
/// `N/A` and anything else are `None`.
fn number(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => {
            let s = s.trim();
            (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        }
        _ => None,
    }
}

fn list<'a>(data: &'a Value, key: &str, command: &str) -> Result<Option<&'a Vec<Value>>> {
    match data.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(rows)) => Ok(Some(rows)),
        Some(_) => bail!("`{command}`: `{key}` is not a list"),
    }
}

fn row_obj<'a>(
    row: &'a Value,
    key: &str,
    i: usize,
    command: &str,
) -> Result<&'a Map<String, Value>> {
    row.as_object()
        .ok_or_else(|| anyhow!("`{command}`: `{key}[{i}]` is not an object"))
}

/// `252:1` → (Some(252), 1); ` :3` or `-:3` → (None, 3); `-` → None.
pub fn parse_eid_slot(text: &str) -> Option<(Option<u32>, u32)> {
    let (e, s) = text.trim().split_once(':')?;
    let slot: u32 = s.trim().parse().ok()?;
    let e = e.trim();
    let enclosure = if e.is_empty() || e == "-" {
        None
    } else {
        Some(e.parse().ok()?)
    };
    Some((enclosure, slot))
}

// ---------------------------------------------------------------------
// Physical drives.

/// A drive's drive group as the PD list gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// `-`: in no drive group.
    None,
    Group(u32),
    /// `F`: the drive carries a foreign configuration.
    Foreign,
}

fn group(v: Option<&Value>) -> Group {
    match v {
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("F") => Group::Foreign,
        other => number(other)
            .and_then(|n| u32::try_from(n).ok())
            .map_or(Group::None, Group::Group),
    }
}

/// One PD row (`PD LIST`, `Drive Information`, or the row of a drive's
/// `show all`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PdRow {
    pub enclosure: Option<u32>,
    pub slot: u32,
    /// `DID` (7.x) or `PID` (8.x): what `smartctl -d megaraid,N` takes.
    pub did: Option<u32>,
    /// As storcli spells it: `Onln`, `Offln`, `UGood`, `UBad`, `Rbld`,
    /// `GHS`, `DHS`, `JBOD`, `Msng`, ...
    pub state: String,
    pub group: Group,
    pub size: Option<String>,
    /// `SATA`, `SAS`, `NVMe`.
    pub intf: Option<String>,
    /// `HDD`, `SSD`.
    pub medium: Option<String>,
    pub model: Option<String>,
    /// `U` spun up, `D` down, `T` in transition.
    pub spin: Option<String>,
}

fn pd_row(obj: &Map<String, Value>, key: &str, command: &str) -> Result<PdRow> {
    let eid_slot = first_text(obj, &["EID:Slt", "EID:Slot"])
        .ok_or_else(|| anyhow!("`{command}`: `{key}` has no `EID:Slt`"))?;
    let (enclosure, slot) = parse_eid_slot(&eid_slot).ok_or_else(|| {
        anyhow!(
            "`{command}`: `{key}`: `EID:Slt` is `{}`, not `enclosure:slot`",
            sanitize(&eid_slot, false)
        )
    })?;
    let state = first_text(obj, &["State", "Status"])
        .filter(|s| !s.is_empty())
        .ok_or_else(|| anyhow!("`{command}`: `{key}` ({eid_slot}) has no `State`"))?;
    Ok(PdRow {
        enclosure,
        slot,
        did: number(obj.get("DID").or_else(|| obj.get("PID"))).and_then(|n| u32::try_from(n).ok()),
        state,
        group: group(obj.get("DG")),
        size: text_field(obj, "Size"),
        intf: text_field(obj, "Intf"),
        medium: text_field(obj, "Med"),
        model: text_field(obj, "Model"),
        spin: text_field(obj, "Sp"),
    })
}

fn pd_rows(data: &Value, key: &str, command: &str) -> Result<Vec<PdRow>> {
    let Some(rows) = list(data, key, command)? else {
        return Ok(Vec::new());
    };
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            pd_row(
                row_obj(r, key, i, command)?,
                &format!("{key}[{i}]"),
                command,
            )
        })
        .collect()
}

/// The rows of one drive's `show J` (`Drive Information`).
pub fn drive_information(text: &str, command: &str) -> Result<Vec<PdRow>> {
    let data = success(text, command)?;
    pd_rows(&data, "Drive Information", command)
}

/// One physical drive from `/cN/eall/sall show all J`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PdDetail {
    pub controller: u32,
    pub row: PdRow,
    /// `None`: `N/A`, absent or not a number (unreadable, not zero).
    pub media_errors: Option<u64>,
    pub other_errors: Option<u64>,
    pub predictive_failures: Option<u64>,
    /// `S.M.A.R.T alert flagged by drive`: `None` when it does not say.
    pub smart_alert: Option<bool>,
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub size_bytes: Option<u64>,
    /// `Drive position`: (drive group, span, row).
    pub position: Option<(u32, u32, u32)>,
    pub temperature: Option<String>,
}

/// Every drive of `/cN/eall/sall show all J` (or of one drive's `show
/// all`), in the order storcli lists them.
pub fn drives(text: &str, command: &str) -> Result<Vec<PdDetail>> {
    let data = success(text, command)?;
    let obj = match &data {
        Value::Object(o) => o,
        Value::Null => return Ok(Vec::new()),
        _ => bail!("`{command}`: `Response Data` is not an object"),
    };
    let mut out = Vec::new();
    for (key, value) in obj {
        let Some(address) = key.strip_prefix("Drive ") else {
            continue;
        };
        if address.contains(' ') {
            continue; // `Drive /c0/e252/s0 - Detailed Information`
        }
        let (controller, enclosure, slot) =
            super::facts::parse_drive_address(address).ok_or_else(|| {
                anyhow!(
                    "`{command}`: `{}` does not name a drive address",
                    sanitize(key, false)
                )
            })?;
        let rows = value
            .as_array()
            .ok_or_else(|| anyhow!("`{command}`: `{key}` is not a list"))?;
        let [row] = rows.as_slice() else {
            bail!("`{command}`: `{key}` holds {} rows, not one", rows.len());
        };
        let row = pd_row(row_obj(row, key, 0, command)?, key, command)?;
        if (row.enclosure, row.slot) != (enclosure, slot) {
            bail!(
                "`{command}`: `{key}` holds the row of `{}`",
                super::facts::drive_slot(row.enclosure, row.slot)
            );
        }
        let detail = obj
            .get(&format!("{key} - Detailed Information"))
            .and_then(Value::as_object);
        let section = |name: &str| {
            detail
                .and_then(|d| d.get(&format!("{key} {name}")))
                .and_then(Value::as_object)
        };
        let state = section("State");
        let attrs = section("Device attributes");
        let policies = section("Policies/Settings");
        let count = |k: &str| number(state.and_then(|s| s.get(k)));
        let attr = |k: &str| {
            attrs
                .and_then(|a| text_field(a, k))
                .filter(|s| !s.is_empty() && s != "N/A" && s != "NA")
        };
        out.push(PdDetail {
            controller,
            media_errors: count("Media Error Count"),
            other_errors: count("Other Error Count"),
            predictive_failures: count("Predictive Failure Count"),
            smart_alert: state
                .and_then(|s| text_field(s, "S.M.A.R.T alert flagged by drive"))
                .and_then(|t| match t.as_str() {
                    "Yes" => Some(true),
                    "No" => Some(false),
                    _ => None,
                }),
            serial: attr("SN"),
            wwn: attr("WWN"),
            model: attr("Model Number").or_else(|| row.model.clone()),
            firmware: attr("Firmware Revision"),
            size_bytes: attr("Raw size").and_then(|t| size_with_sectors(&t)),
            position: policies
                .and_then(|p| text_field(p, "Drive position"))
                .and_then(|t| parse_position(&t)),
            temperature: state.and_then(|s| text_field(s, "Drive Temperature")),
            row,
        });
    }
    Ok(out)
}

/// `DriveGroup:0, Span:0, Row:1` → (0, 0, 1).
fn parse_position(text: &str) -> Option<(u32, u32, u32)> {
    let mut dg = None;
    let mut span = None;
    let mut row = None;
    for part in text.split(',') {
        let (k, v) = part.split_once(':')?;
        let v: u32 = v.trim().parse().ok()?;
        match k.trim() {
            "DriveGroup" => dg = Some(v),
            "Span" => span = Some(v),
            "Row" => row = Some(v),
            _ => {}
        }
    }
    Some((dg?, span?, row?))
}

/// `894.252 GB` → bytes (binary units, as storcli prints them).
pub fn human_size(text: &str) -> Option<u64> {
    let mut parts = text.split_whitespace();
    let n: f64 = parts.next()?.parse().ok()?;
    let unit: u64 = match parts.next()? {
        "B" => 1,
        "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        "PB" => 1 << 50,
        _ => return None,
    };
    let bytes = n * unit as f64;
    (n.is_finite() && n >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// `894.252 GB [0x6fc81ab0 Sectors]` → bytes: the sector count times the
/// sector size (512 or 4096) that agrees with the rounded size beside it;
/// the rounded size when neither does.
fn size_with_sectors(text: &str) -> Option<u64> {
    let human = human_size(text.split('[').next()?.trim());
    let sectors = text
        .split_once("[0x")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|hex| u64::from_str_radix(hex.trim_end_matches(']'), 16).ok());
    if let (Some(sectors), Some(h)) = (sectors, human) {
        for unit in [512u64, 4096] {
            if let Some(bytes) = sectors.checked_mul(unit) {
                let diff = bytes.abs_diff(h);
                if diff <= h / 100 + (1 << 20) {
                    return Some(bytes);
                }
            }
        }
    }
    human
}

// ---------------------------------------------------------------------
// The controller: `/cN show J`.

/// A row of `TOPOLOGY`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopologyRow {
    pub group: Option<u32>,
    pub array: Option<u32>,
    pub row: Option<u32>,
    /// `EID:Slot` of a drive row; `None` for a group or array row and for
    /// a missing drive (`-`).
    pub drive: Option<(Option<u32>, u32)>,
    pub did: Option<u32>,
    /// `RAID1`, ..., or `DRIVE` for a drive row.
    pub kind: String,
    pub state: String,
}

/// A row of `VD LIST` (or of `/cN/vM show J`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VdRow {
    pub group: u32,
    pub vd: u32,
    /// `RAID1`, `RAID5`, ...
    pub level: String,
    /// `Optl`, `Dgrd`, `Pdgd`, `OfLn`, `Rec`, ...
    pub state: String,
    pub name: String,
    pub size: Option<String>,
}

/// What `/cN show J` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Controller {
    pub topology: Vec<TopologyRow>,
    pub vds: Vec<VdRow>,
    pub pds: Vec<PdRow>,
    pub product: Option<String>,
}

/// `/cN show J` (or `show all`).
pub fn controller(text: &str, command: &str) -> Result<Controller> {
    let data = success(text, command)?;
    if !data.is_object() {
        bail!("`{command}`: `Response Data` is not an object");
    }
    let mut topology = Vec::new();
    for (i, r) in list(&data, "TOPOLOGY", command)?
        .into_iter()
        .flatten()
        .enumerate()
    {
        let obj = row_obj(r, "TOPOLOGY", i, command)?;
        let kind = text_field(obj, "Type")
            .ok_or_else(|| anyhow!("`{command}`: `TOPOLOGY[{i}]` has no `Type`"))?;
        let state = text_field(obj, "State")
            .ok_or_else(|| anyhow!("`{command}`: `TOPOLOGY[{i}]` has no `State`"))?;
        let small = |k: &str| number(obj.get(k)).and_then(|n| u32::try_from(n).ok());
        topology.push(TopologyRow {
            group: small("DG"),
            array: small("Arr"),
            row: small("Row"),
            drive: first_text(obj, &["EID:Slot", "EID:Slt"]).and_then(|t| parse_eid_slot(&t)),
            did: small("DID").or_else(|| small("PID")),
            kind,
            state,
        });
    }
    Ok(Controller {
        topology,
        vds: vd_rows(&data, "VD LIST", command)?,
        pds: pd_rows(&data, "PD LIST", command)?,
        product: data
            .as_object()
            .and_then(|o| first_text(o, &["Product Name"])),
    })
}

fn vd_rows(data: &Value, key: &str, command: &str) -> Result<Vec<VdRow>> {
    let Some(rows) = list(data, key, command)? else {
        return Ok(Vec::new());
    };
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            vd_row(
                row_obj(r, key, i, command)?,
                &format!("{key}[{i}]"),
                command,
            )
        })
        .collect()
}

fn vd_row(obj: &Map<String, Value>, key: &str, command: &str) -> Result<VdRow> {
    let dg_vd =
        text_field(obj, "DG/VD").ok_or_else(|| anyhow!("`{command}`: `{key}` has no `DG/VD`"))?;
    let (dg, vd) = dg_vd
        .split_once('/')
        .and_then(|(d, v)| Some((d.trim().parse().ok()?, v.trim().parse().ok()?)))
        .ok_or_else(|| {
            anyhow!(
                "`{command}`: `{key}`: `DG/VD` is `{}`, not `group/vd`",
                sanitize(&dg_vd, false)
            )
        })?;
    Ok(VdRow {
        group: dg,
        vd,
        level: first_text(obj, &["TYPE", "Type"])
            .ok_or_else(|| anyhow!("`{command}`: `{key}` has no `TYPE`"))?,
        state: text_field(obj, "State")
            .ok_or_else(|| anyhow!("`{command}`: `{key}` has no `State`"))?,
        name: text_field(obj, "Name").unwrap_or_default(),
        size: text_field(obj, "Size"),
    })
}

// ---------------------------------------------------------------------
// Virtual drives: `/cN/vall show all J`.

/// One VD with what the OS sees of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VdDetail {
    pub row: VdRow,
    /// The VD's physical drives (`PDs for VD N`).
    pub pds: Vec<PdRow>,
    /// `OS Drive Name`: `/dev/sda`.
    pub os_drive: Option<String>,
    /// `SCSI NAA Id`.
    pub naa: Option<String>,
}

/// `/cN/vall show all J` (or one VD's).
pub fn virtual_drives(text: &str, command: &str) -> Result<Vec<VdDetail>> {
    let data = success(text, command)?;
    let obj = match &data {
        Value::Object(o) => o,
        Value::Null => return Ok(Vec::new()),
        _ => bail!("`{command}`: `Response Data` is not an object"),
    };
    let mut out = Vec::new();
    for (key, value) in obj {
        let Some((_, n)) = super::facts::parse_vd_address(key) else {
            continue;
        };
        let rows = value
            .as_array()
            .ok_or_else(|| anyhow!("`{command}`: `{key}` is not a list"))?;
        let [row] = rows.as_slice() else {
            bail!("`{command}`: `{key}` holds {} rows, not one", rows.len());
        };
        let row = vd_row(row_obj(row, key, 0, command)?, key, command)?;
        let pds = pd_rows(&data, &format!("PDs for VD {n}"), command)?;
        let props = obj
            .get(&format!("VD{n} Properties"))
            .and_then(Value::as_object);
        let prop = |k: &str| {
            props
                .and_then(|p| text_field(p, k))
                .filter(|s| !s.is_empty() && s != "N/A")
        };
        out.push(VdDetail {
            row,
            pds,
            os_drive: prop("OS Drive Name"),
            naa: prop("SCSI NAA Id"),
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------
// Rebuild, foreign configurations, events.

/// One drive's rebuild (`show rebuild J`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rebuild {
    pub drive: String,
    /// `None` when none runs (`Progress%` is `-`).
    pub percent: Option<u32>,
    pub status: String,
    pub time_left: Option<String>,
}

/// `/cN/eE/sS show rebuild J` (also `show initialization J`: same table).
pub fn rebuilds(text: &str, command: &str) -> Result<Vec<Rebuild>> {
    let data = success(text, command)?;
    let rows = match &data {
        Value::Array(rows) => rows,
        Value::Null => return Ok(Vec::new()),
        _ => bail!("`{command}`: `Response Data` is not a list"),
    };
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            let obj = row_obj(r, "Response Data", i, command)?;
            let drive = text_field(obj, "Drive-ID")
                .ok_or_else(|| anyhow!("`{command}`: row {i} has no `Drive-ID`"))?;
            let percent = match obj.get("Progress%") {
                Some(Value::String(s)) if s.trim() == "-" => None,
                v @ Some(_) => Some(
                    number(v)
                        .filter(|p| *p <= 100)
                        .and_then(|p| u32::try_from(p).ok())
                        .ok_or_else(|| {
                            anyhow!("`{command}`: `{drive}`: `Progress%` is not a percentage")
                        })?,
                ),
                None => bail!("`{command}`: `{drive}` has no `Progress%`"),
            };
            Ok(Rebuild {
                drive,
                percent,
                status: text_field(obj, "Status").unwrap_or_default(),
                time_left: text_field(obj, "Estimated Time Left").filter(|t| t != "-"),
            })
        })
        .collect()
}

/// What `/cN/fall show J` says: how many foreign drive groups (or drives)
/// the controller sees. 0 when it found none.
pub fn foreign(text: &str, command: &str) -> Result<u64> {
    let data = success(text, command)?;
    if data.is_null() {
        return Ok(0);
    }
    let obj = data
        .as_object()
        .ok_or_else(|| anyhow!("`{command}`: `Response Data` is not an object"))?;
    for key in ["Total foreign Drive Groups", "Total Foreign PDs"] {
        if let Some(v) = obj.get(key) {
            return number(Some(v)).ok_or_else(|| anyhow!("`{command}`: `{key}` is not a number"));
        }
    }
    Ok(list(&data, "FOREIGN CONFIGURATION", command)?.map_or(0, |l| l.len() as u64))
}

/// One controller event, enough to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub seq: Option<u64>,
    pub time: Option<String>,
    pub class: Option<String>,
    pub description: String,
}

/// `/cN show events ... J`: every object in the reply that carries an
/// `Event Description`, in order (storcli's event JSON nests them
/// differently by version; this reads them by name wherever they sit).
pub fn events(text: &str, command: &str) -> Result<Vec<Event>> {
    fn walk(v: &Value, out: &mut Vec<Event>) {
        match v {
            Value::Object(o) => {
                if let Some(d) = text_field(o, "Event Description") {
                    out.push(Event {
                        seq: number(o.get("seqNum").or_else(|| o.get("Sequence Number"))),
                        time: first_text(o, &["Time", "timeStamp", "Time Stamp"]),
                        class: first_text(o, &["Class", "Event Class"]),
                        description: d,
                    });
                    return;
                }
                for v in o.values() {
                    walk(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let data = success(text, command)?;
    let mut out = Vec::new();
    walk(&data, &mut out);
    Ok(out)
}
