//! The /proc/mdstat parser.
