//! The simulator: in-memory arrays and drives that react as real ones do.

pub mod scenario;
