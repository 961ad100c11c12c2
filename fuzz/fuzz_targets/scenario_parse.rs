//! The scenario loader on arbitrary text: an error or a scenario, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match swapguard::backend::sim::scenario::parse(Path::new("fuzz.toml"), text) {
            Ok(s) => {
                let _ = s.check_names(&["antistatic", "fail", "pull"], &["array", "target"]);
            }
            Err(e) => {
                let _ = format!("{e:#}");
            }
        }
    }
});
