//! How strict the guard is and what a step expects of a drive: the
//! guard's input. Runbooks write it (src/runbook/ reads and checks it);
//! the guard only reads it.

use std::time::Duration;

use serde::Serialize;

/// Whether a probe must be readable. Strict by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Requirement {
    #[default]
    Required,
    Optional,
}

/// The ATA interface CRC error count (attribute 199).
pub const CRC_COUNTER: &str = "smart.udma_crc_error_count";

/// The NVMe error information log's entry count. It also counts harmless
/// entries (some drives log one when a tool asks for a log page they lack),
/// so a rise warns; media errors and critical warnings still halt.
pub const NVME_ERROR_LOG_COUNTER: &str = "nvme.num_err_log_entries";

/// How strict the guard is. Every loosening is explicit in the runbook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GuardPolicy {
    pub smart: Requirement,
    /// SMART polling while hands are in the chassis and during waits.
    pub smart_poll: Duration,
    /// Polling of cheap sysfs counters between kernel events.
    pub watch_poll: Duration,
    /// Counter names whose increase is not a halt (e.g. `smart.udma_crc_error_count`).
    pub tolerate: Vec<String>,
    /// Counter names whose increase on a survivor is a warning, not a halt.
    /// By default the ATA CRC count (transfer errors on the cable or
    /// backplane, not damage to the drive's media) and the NVMe error-log
    /// entry count (which counts harmless entries too). `[guard] halt_on`
    /// takes a counter off this list.
    pub warn_only: Vec<String>,
    /// Most slots the array may be missing at any time during the run; `None`
    /// derives it from the steps' expectations.
    pub max_degraded: Option<u32>,
    /// Survivor verdict conditions (`nvme.media_errors`, `md.bad_blocks`, ...,
    /// see `health::verdict::CONDITIONS`) that preflight neither refuses nor
    /// asks about. Empty by default: every failing survivor is refused.
    pub accept_survivor: Vec<String>,
}

impl Default for GuardPolicy {
    fn default() -> Self {
        GuardPolicy {
            smart: Requirement::Required,
            smart_poll: Duration::from_secs(10),
            watch_poll: Duration::from_millis(250),
            tolerate: Vec::new(),
            warn_only: vec![CRC_COUNTER.to_string(), NVME_ERROR_LOG_COUNTER.to_string()],
            max_degraded: None,
            accept_survivor: Vec::new(),
        }
    }
}

/// What a drive must look like once a step is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriveExpect {
    /// A member, in sync.
    InSync,
    /// A member being recovered to (including an md replacement).
    Rebuilding,
    /// Still a member, marked faulty.
    Faulty,
    /// Present, no longer a member.
    Removed,
    /// Gone from the system (pulled).
    Absent,
    /// Present (for the new drive: appeared).
    Present,
}
