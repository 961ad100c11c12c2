//! The smartctl JSON reader on arbitrary bytes and exit codes: a verdict or
//! "unreadable", never a panic and never a pass made up from garbage.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&code, rest)) = data.split_first() else {
        return;
    };
    if let Ok(text) = std::str::from_utf8(rest) {
        let _ = swapguard::backend::smart::parse(text, Some(i32::from(code)));
        let _ = swapguard::backend::smart::parse(text, None);
    }
});
