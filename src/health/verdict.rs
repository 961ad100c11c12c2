//! The survivor verdict: how healthy a drive is now, judged on its absolute
//! health facts rather than on a change since the baseline.
//!
//! The guard halts when a survivor gets worse during the run; it cannot see
//! a survivor that was already failing when the run started, and during the
//! rebuild that survivor is the only copy of the data (safety contract,
//! item 8). [`judge`] reads the neutral facts a snapshot carries (the SMART
//! verdict and counters, the backend's own faults) and sorts every condition it
//! finds into *failing* (preflight refuses), *at risk* (the technician must
//! acknowledge) or nothing. Which conditions a runbook accepts is policy
//! (`[guard] accept_survivor`); the thresholds themselves live here, in one
//! table, so that `status`, preflight, lint and the report agree.
//!
//! Pure: no I/O, no clock.

use std::fmt;

use serde::Serialize;

use crate::health::model::{Drive, Smart};

/// How bad a condition or a drive is. Ordered: a drive's level is the worst
/// of its conditions that the runbook does not accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    Healthy,
    /// Worn or showing warning signs: go on only after an acknowledgement.
    AtRisk,
    /// Its health could not be read (or was not read): not healthy either.
    Unknown,
    /// Already failing: the last copy of the data must not live on it.
    Failing,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Healthy => "healthy",
            Level::AtRisk => "at-risk",
            Level::Unknown => "unknown",
            Level::Failing => "failing",
        }
    }
}

impl Level {
    /// The level in a sentence: `at risk` rather than `at-risk`.
    pub fn prose(self) -> &'static str {
        match self {
            Level::AtRisk => "at risk",
            other => other.name(),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// When a condition is met, and how bad it is then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// The SMART overall health check failed.
    SmartFailed,
    /// The counter (SMART or cheap) is above zero.
    AboveZero(&'static str),
    /// Above zero: failing on a drive that will hold the last copy of the
    /// data, at risk otherwise.
    AboveZeroLastCopy(&'static str),
    /// The counter is at least this much.
    AtLeast(&'static str, u64),
    /// ATA wear-levelling: the normalized value is at or below its threshold.
    WearLeveling,
}

/// A named condition a drive can be in. The name is what `accept_survivor`
/// takes and what `status --json` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Condition {
    pub name: &'static str,
    /// The level when met (for last-copy rules: on the last copy).
    pub level: Level,
    /// What it means, for `status`, refusals and lint help.
    pub meaning: &'static str,
    rule: Rule,
}

const fn condition(
    name: &'static str,
    level: Level,
    meaning: &'static str,
    rule: Rule,
) -> Condition {
    Condition {
        name,
        level,
        meaning,
        rule,
    }
}

/// Counter holding an ATA wear-levelling attribute's normalized value.
pub const WEAR_LEVELING_VALUE: &str = "smart.wear_leveling_value";
/// Counter holding that attribute's failure threshold.
pub const WEAR_LEVELING_THRESHOLD: &str = "smart.wear_leveling_threshold";

/// Every condition judged, worst first. Thresholds are fixed here; a
/// runbook can only accept a condition by name, not move its threshold.
pub const CONDITIONS: [Condition; 17] = [
    condition(
        "smart.overall_health",
        Level::Failing,
        "the drive's own SMART health check failed",
        Rule::SmartFailed,
    ),
    condition(
        "nvme.critical_warning",
        Level::Failing,
        "NVMe critical warning set",
        Rule::AboveZero("nvme.critical_warning"),
    ),
    condition(
        "nvme.health_events",
        Level::Failing,
        "the NVMe controller sent a SMART/health asynchronous event (a critical warning raised) during this run",
        Rule::AboveZero("nvme.health_events"),
    ),
    condition(
        "nvme.media_errors",
        Level::Failing,
        "NVMe unrecovered media and data integrity errors",
        Rule::AboveZero("nvme.media_errors"),
    ),
    condition(
        "nvme.spare_below_threshold",
        Level::Failing,
        "NVMe available spare below its threshold",
        Rule::AboveZero("nvme.spare_below_threshold"),
    ),
    condition(
        "smart.reallocated_sector_ct",
        Level::Failing,
        "ATA reallocated sectors (attribute 5)",
        Rule::AboveZeroLastCopy("smart.reallocated_sector_ct"),
    ),
    condition(
        "smart.reported_uncorrect",
        Level::Failing,
        "ATA reported uncorrectable errors (attribute 187)",
        Rule::AboveZeroLastCopy("smart.reported_uncorrect"),
    ),
    condition(
        "smart.current_pending_sector",
        Level::Failing,
        "ATA sectors pending reallocation (attribute 197)",
        Rule::AboveZeroLastCopy("smart.current_pending_sector"),
    ),
    condition(
        "smart.offline_uncorrectable",
        Level::Failing,
        "ATA offline uncorrectable sectors (attribute 198)",
        Rule::AboveZeroLastCopy("smart.offline_uncorrectable"),
    ),
    condition(
        "scsi.grown_defect_list",
        Level::Failing,
        "SCSI grown defects",
        Rule::AboveZero("scsi.grown_defect_list"),
    ),
    condition(
        "scsi.read_uncorrected",
        Level::Failing,
        "SCSI uncorrected read errors",
        Rule::AboveZero("scsi.read_uncorrected"),
    ),
    condition(
        "scsi.write_uncorrected",
        Level::Failing,
        "SCSI uncorrected write errors",
        Rule::AboveZero("scsi.write_uncorrected"),
    ),
    condition(
        "scsi.verify_uncorrected",
        Level::Failing,
        "SCSI uncorrected verify errors",
        Rule::AboveZero("scsi.verify_uncorrected"),
    ),
    condition(
        "nvme.percentage_used",
        Level::AtRisk,
        "NVMe endurance used, 90% or more",
        Rule::AtLeast("nvme.percentage_used", 90),
    ),
    condition(
        "smart.wear_leveling",
        Level::AtRisk,
        "ATA wear-levelling at or below its threshold",
        Rule::WearLeveling,
    ),
    condition(
        "smart.error_log_count",
        Level::AtRisk,
        "errors in the drive's ATA error log",
        Rule::AboveZero("smart.error_log_count"),
    ),
    condition(
        "smart.self_test_failed",
        Level::AtRisk,
        "a failed self-test in the drive's self-test log",
        Rule::AboveZero("smart.self_test_failed"),
    ),
];

/// The condition called `name`, if there is one.
pub fn condition_named(name: &str) -> Option<&'static Condition> {
    CONDITIONS.iter().find(|c| c.name == name)
}

/// One condition met by one drive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The condition's name, e.g. `nvme.media_errors`.
    pub condition: String,
    /// How bad it is on this drive (before any acceptance).
    pub level: Level,
    /// The value seen: `7`, `set`, `FAILED`, `93 (threshold 90)`.
    pub value: String,
    pub meaning: String,
    /// The runbook accepts this condition (`[guard] accept_survivor`): it
    /// is reported but does not count towards the drive's level.
    pub accepted: bool,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {} ({})", self.condition, self.value, self.meaning)?;
        if self.accepted {
            f.write_str(", accepted by the runbook")?;
        }
        Ok(())
    }
}

/// A drive's verdict: its level and every condition behind it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub level: Level,
    pub findings: Vec<Finding>,
    /// Why the level is `unknown`, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
}

impl Verdict {
    /// Findings that are not accepted and are at least `level`.
    pub fn open(&self, level: Level) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(move |f| !f.accepted && f.level >= level)
    }

    /// `failing: nvme.media_errors = 7 (...)`, or `healthy`.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = self.findings.iter().map(Finding::to_string).collect();
        if let Some(why) = &self.unknown {
            parts.push(why.clone());
        }
        if parts.is_empty() {
            self.level.name().to_string()
        } else {
            format!("{}: {}", self.level, parts.join("; "))
        }
    }
}

/// Judge one drive. `last_copy`: during the swap this drive will hold the
/// only copy of (some of) the data. `accepted`: condition names the runbook
/// accepts. A drive whose SMART was not read or is unreadable is at best
/// `unknown`, never `healthy`.
pub fn judge(drive: &Drive, last_copy: bool, accepted: &[String]) -> Verdict {
    let smart_counters = match &drive.smart {
        Some(Smart::Read { counters, .. }) => Some(counters),
        _ => None,
    };
    let count = |name: &str| {
        smart_counters
            .and_then(|c| c.get(name))
            .or_else(|| drive.counters.get(name))
            .copied()
    };
    let mut findings = Vec::new();
    let mut faults_listed = false;
    for c in &CONDITIONS {
        if c.level < Level::Failing && !faults_listed {
            faults(drive, accepted, &mut findings);
            faults_listed = true;
        }
        let met = match c.rule {
            Rule::SmartFailed => matches!(drive.smart, Some(Smart::Read { passed: false, .. }))
                .then(|| (c.level, "FAILED".to_string())),
            Rule::AboveZero(name) => count(name)
                .filter(|n| *n > 0)
                .map(|n| (c.level, n.to_string())),
            Rule::AboveZeroLastCopy(name) => count(name).filter(|n| *n > 0).map(|n| {
                if last_copy {
                    (Level::Failing, n.to_string())
                } else {
                    (Level::AtRisk, format!("{n} (another copy remains)"))
                }
            }),
            Rule::AtLeast(name, at) => count(name)
                .filter(|n| *n >= at)
                .map(|n| (c.level, format!("{n} (threshold {at})"))),
            Rule::WearLeveling => {
                match (count(WEAR_LEVELING_VALUE), count(WEAR_LEVELING_THRESHOLD)) {
                    (Some(value), Some(threshold)) if value <= threshold => {
                        Some((c.level, format!("{value} (threshold {threshold})")))
                    }
                    _ => None,
                }
            }
        };
        if let Some((level, value)) = met {
            findings.push(Finding {
                condition: c.name.to_string(),
                level,
                value,
                meaning: c.meaning.to_string(),
                accepted: accepted.iter().any(|a| a == c.name),
            });
        }
    }
    if !faults_listed {
        faults(drive, accepted, &mut findings);
    }
    let unknown = match &drive.smart {
        Some(Smart::Read { .. }) => None,
        Some(Smart::Unreadable { reason }) => Some(format!("SMART unreadable ({reason})")),
        None => Some("SMART not read".to_string()),
    };
    let mut level = findings
        .iter()
        .filter(|f| !f.accepted)
        .map(|f| f.level)
        .max()
        .unwrap_or(Level::Healthy);
    if unknown.is_some() {
        level = level.max(Level::Unknown);
    }
    Verdict {
        level,
        findings,
        unknown,
    }
}

/// The backend's own faults (a flag it set, a counter of its own above
/// zero): each one failing, listed after the drive-level failing conditions.
fn faults(drive: &Drive, accepted: &[String], findings: &mut Vec<Finding>) {
    for f in &drive.faults {
        findings.push(Finding {
            condition: f.condition.clone(),
            level: Level::Failing,
            value: f.value.clone(),
            meaning: f.meaning.clone(),
            accepted: accepted.contains(&f.condition),
        });
    }
}

#[cfg(test)]
mod tests;
