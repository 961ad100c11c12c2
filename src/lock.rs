//! One run per array at a time.
