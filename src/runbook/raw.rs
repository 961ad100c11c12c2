//! The raw serde layer of a runbook file.
