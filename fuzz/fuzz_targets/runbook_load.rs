//! The runbook loader on arbitrary text: diagnostics, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let loaded = swapguard::runbook::load::load_str(Path::new("fuzz.toml"), text);
        // Rendering walks every span back into the source: it must not panic.
        for d in &loaded.diagnostics {
            let _ = d.to_string();
        }
    }
});
