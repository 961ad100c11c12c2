//! SMART through `smartctl --json`.
