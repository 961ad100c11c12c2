//! The guard: a pure comparison of a baseline snapshot with a later one.
