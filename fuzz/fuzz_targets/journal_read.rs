//! The journal readers on arbitrary bytes (a damaged or hand-edited
//! journal): the chain check and the resume's replay report, never panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = swapguard::journal::verify_bytes(data, None);
    let mut entries = Vec::new();
    let _ = swapguard::journal::scan_entries(data, Path::new("fuzz"), None, |_, e| {
        entries.push(e);
        Ok(())
    });
    if let Ok(j) = swapguard::engine::Journaled::replay(entries) {
        let _ = j.not_resumable();
    }
});
