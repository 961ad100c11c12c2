//! The journal readers on arbitrary bytes (a damaged or hand-edited
//! journal): the chain check and the resume's replay report, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = swapguard::journal::verify_bytes(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let entries: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if let Ok(j) = swapguard::engine::Journaled::replay(&entries) {
            let _ = j.not_resumable();
        }
    }
});
