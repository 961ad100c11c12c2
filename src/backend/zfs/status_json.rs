//! `zpool status -j [--json-int]` (OpenZFS 2.3 and later).
//!
//! `{"output_version": {...}, "pools": {NAME: {name, state, scan_stats?,
//! vdevs: {NAME: {vdev_type: "root", vdevs: {...}}}, logs?, l2cache?,
//! spares?, special?, dedup?, error_count}}}`. Without `--json-int` every
//! number is a string, sizes human (`"3.64T"`); counters are read either
//! way. GUIDs pass 2^63 (`12626592473549675962`): read as u64, never f64.

use serde_json::{Map, Value};

use crate::backend::zfs::{
    Pool, Scan, ScanFunction, ScanState, Vdev, VdevKind, VdevState, parse_count,
};

/// The class groups a pool may carry beside its main tree, as the JSON
/// names them, and the name the text form prints.
const CLASSES: [(&str, &str); 5] = [
    ("logs", "logs"),
    ("l2cache", "cache"),
    ("spares", "spares"),
    ("special", "special"),
    ("dedup", "dedup"),
];

pub fn parse(text: &str) -> Result<Vec<Pool>, String> {
    let value: Value = serde_json::from_str(text).map_err(|err| format!("not JSON: {err}"))?;
    let command = value
        .pointer("/output_version/command")
        .and_then(Value::as_str);
    if command != Some("zpool status") {
        return Err(format!(
            "`output_version.command` is {}, not \"zpool status\"",
            value
                .pointer("/output_version/command")
                .map_or("missing".to_string(), Value::to_string)
        ));
    }
    let major = value
        .pointer("/output_version/vers_major")
        .map(|v| count(v).ok_or(()));
    if major != Some(Ok(0)) {
        return Err("`output_version.vers_major` is not 0: a JSON layout this version of swapguard does not know".into());
    }
    let pools = value
        .get("pools")
        .and_then(Value::as_object)
        .ok_or("no `pools` object")?;
    pools
        .iter()
        .map(|(key, pool)| parse_pool(key, pool).map_err(|why| format!("pool `{key}`: {why}")))
        .collect()
}

fn parse_pool(key: &str, pool: &Value) -> Result<Pool, String> {
    let pool = pool.as_object().ok_or("not an object")?;
    let name = str_field(pool, "name")?.to_string();
    if name != key {
        return Err(format!("keyed `{key}` but named `{name}`"));
    }
    let state = VdevState::parse(str_field(pool, "state")?);
    let vdevs = pool
        .get("vdevs")
        .and_then(Value::as_object)
        .ok_or("no `vdevs` object")?;
    let root = vdevs
        .get(&name)
        .ok_or_else(|| format!("`vdevs` has no root vdev `{name}`"))?;
    let root = parse_vdev(&name, root, "vdevs", Some(&state))?;
    if root.kind != VdevKind::Root {
        return Err(format!("`vdevs.{name}` is a {:?}, not the root", root.kind));
    }
    let mut tree = root.children;
    for (json_name, text_name) in CLASSES {
        let Some(group) = pool.get(json_name) else {
            continue;
        };
        let group = group
            .as_object()
            .ok_or_else(|| format!("`{json_name}` is not an object"))?;
        let children = group
            .iter()
            .map(|(k, v)| parse_vdev(k, v, json_name, None))
            .collect::<Result<Vec<_>, _>>()?;
        tree.push(Vdev {
            name: text_name.to_string(),
            kind: VdevKind::Class(text_name.to_string()),
            guid: None,
            path: None,
            state: VdevState::Online,
            read_errors: 0,
            write_errors: 0,
            checksum_errors: 0,
            slow_ios: None,
            note: None,
            resilvering: false,
            children,
        });
    }
    let scan = match pool.get("scan_stats") {
        None => None,
        Some(scan) => Some(parse_scan(scan).map_err(|why| format!("`scan_stats`: {why}"))?),
    };
    let resilver_running = scan
        .as_ref()
        .is_some_and(|s| s.function == ScanFunction::Resilver && s.state == ScanState::Scanning);
    if !resilver_running {
        for v in &mut tree {
            clear_resilvering(v);
        }
    }
    let data_errors = match pool.get("error_count") {
        None => None,
        Some(v) => Some(count(v).ok_or_else(|| format!("`error_count` is {v}, not a count"))?),
    };
    Ok(Pool {
        name,
        state,
        vdevs: tree,
        scan,
        data_errors,
    })
}

/// One vdev and its children. `root_state` is given for the pool's root
/// vdev, which the man page's example shows without `vdev_type` and
/// `state`: there the root is known by its place, its state is the pool's.
fn parse_vdev(
    key: &str,
    value: &Value,
    within: &str,
    root_state: Option<&VdevState>,
) -> Result<Vdev, String> {
    let at = format!("{within}.{key}");
    let vdev = value
        .as_object()
        .ok_or_else(|| format!("`{at}` is not an object"))?;
    let field = |name: &str| str_field(vdev, name).map_err(|why| format!("`{at}`: {why}"));
    let name = field("name")?;
    let kind = match (vdev.get("vdev_type"), root_state) {
        (None, Some(_)) => VdevKind::Root,
        _ => VdevKind::from_type(field("vdev_type")?),
    };
    let state = match (vdev.get("state"), root_state) {
        (None, Some(state)) => state.clone(),
        _ => VdevState::parse(field("state")?),
    };
    let counter = |field: &str| -> Result<u64, String> {
        let v = vdev
            .get(field)
            .ok_or_else(|| format!("`{at}` has no `{field}`"))?;
        count(v).ok_or_else(|| format!("`{at}.{field}` is {v}, not a count"))
    };
    let optional = |field: &str| -> Result<Option<u64>, String> {
        match vdev.get(field) {
            None => Ok(None),
            Some(v) => count(v)
                .map(Some)
                .ok_or_else(|| format!("`{at}.{field}` is {v}, not a count")),
        }
    };
    let children = match vdev.get("vdevs") {
        None => Vec::new(),
        Some(children) => children
            .as_object()
            .ok_or_else(|| format!("`{at}.vdevs` is not an object"))?
            .iter()
            .map(|(k, v)| parse_vdev(k, v, &format!("{at}.vdevs"), None))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let mut note = vdev.get("aux").and_then(Value::as_str).map(str::to_string);
    if let Some(was) = vdev.get("was").and_then(Value::as_str) {
        note = Some(match note {
            Some(aux) => format!("{aux}, was {was}"),
            None => format!("was {was}"),
        });
    }
    Ok(Vdev {
        name: name.to_string(),
        kind,
        guid: optional("guid")?,
        path: vdev.get("path").and_then(Value::as_str).map(str::to_string),
        state,
        read_errors: counter("read_errors")?,
        write_errors: counter("write_errors")?,
        checksum_errors: counter("checksum_errors")?,
        slow_ios: optional("slow_ios")?,
        note,
        // The JSON form has no "(resilvering)" mark. The text form prints it
        // for a leaf with `scan_processed` above zero while a resilver
        // runs: noted here, kept by `parse_pool` only while one runs.
        resilvering: children.is_empty() && optional("scan_processed")?.is_some_and(|n| n > 0),
        children,
    })
}

fn clear_resilvering(vdev: &mut Vdev) {
    vdev.resilvering = false;
    for c in &mut vdev.children {
        clear_resilvering(c);
    }
}

fn parse_scan(value: &Value) -> Result<Scan, String> {
    let scan = value.as_object().ok_or("not an object")?;
    let function = match str_field(scan, "function")? {
        "NONE" => ScanFunction::None,
        "SCRUB" => ScanFunction::Scrub,
        "RESILVER" => ScanFunction::Resilver,
        "ERRORSCRUB" => ScanFunction::ErrorScrub,
        other => return Err(format!("unknown function `{other}`")),
    };
    let state = match str_field(scan, "state")? {
        "NONE" => ScanState::None,
        "SCANNING" | "ERRORSCRUBBING" => ScanState::Scanning,
        "FINISHED" => ScanState::Finished,
        "CANCELED" => ScanState::Canceled,
        other => return Err(format!("unknown state `{other}`")),
    };
    let number = |field: &str| -> Result<Option<u64>, String> {
        match scan.get(field) {
            None => Ok(None),
            Some(v) => count(v)
                .map(Some)
                .ok_or_else(|| format!("`{field}` is {v}, not a count")),
        }
    };
    let paused = number("scrub_pause")?.is_some_and(|p| p != 0);
    let state = if paused && state == ScanState::Scanning {
        ScanState::Paused
    } else {
        state
    };
    // Progress as issued over what there is to examine; `None` when the
    // sizes are human strings or zero.
    let (issued, to_examine) = (number("issued")?, number("to_examine")?);
    let permille = match (issued, to_examine) {
        (Some(issued), Some(total)) if total > 0 => {
            Some((issued.min(total) as u128 * 1000 / total as u128) as u32)
        }
        _ => None,
    };
    Ok(Scan {
        function,
        state,
        permille,
        errors: number("errors")?,
        bytes: issued.zip(to_examine),
    })
}

fn str_field<'a>(object: &'a Map<String, Value>, field: &str) -> Result<&'a str, String> {
    match object.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("`{field}` is {other}, not a string")),
        None => Err(format!("no `{field}`")),
    }
}

/// A JSON number, or a string holding a count (`"0"`, `"1.2K"`).
fn count(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => parse_count(s),
        _ => None,
    }
}
