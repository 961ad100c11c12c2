//! The /proc/mdstat parser on arbitrary text: an error or a parse, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(parsed) = swapguard::backend::md::mdstat::parse(text)
    {
        for a in &parsed.arrays {
            let _ = a.degraded();
        }
    }
});
