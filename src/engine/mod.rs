//! The engine: walks a runbook's steps with the guard around every step.
