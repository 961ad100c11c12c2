//! Scripted answers for CI, dry-runs and `run --answers FILE`.
