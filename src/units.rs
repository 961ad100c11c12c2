//! Sizes as people write them in runbooks and scenarios.

use anyhow::{Result, anyhow, bail};

/// Parse `960G`, `1.92T`, `512Mi`, `4TiB`, `1000000` (bytes). Decimal
/// suffixes (K, M, G, T, P) are powers of 1000, as drive labels use; binary
/// ones (Ki, Mi, Gi, Ti, Pi) powers of 1024. A trailing `B` is allowed. A
/// fraction is computed exactly and rounded down to whole bytes.
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim();
    let unit = unit.strip_suffix('B').unwrap_or(unit);
    let multiplier: u128 = match unit {
        "" => 1,
        "K" | "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        other => bail!(
            "`{text}` has an unknown unit `{other}`; use K, M, G, T (powers of 1000) or Ki, Mi, Gi, Ti (powers of 1024)"
        ),
    };
    let bad = || anyhow!("`{text}` is not a size; write e.g. \"960G\", \"1.92T\" or \"512Gi\"");
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.len() > 18 || fraction.contains('.') {
        return Err(bad());
    }
    let whole: u128 = whole.parse().map_err(|_| bad())?;
    let mut bytes = whole.checked_mul(multiplier).ok_or_else(bad)?;
    if !fraction.is_empty() {
        let digits: u128 = fraction.parse().map_err(|_| bad())?;
        let scale = 10u128.pow(fraction.len() as u32);
        bytes += digits * multiplier / scale;
    }
    u64::try_from(bytes).map_err(|_| anyhow!("`{text}` is too large"))
}

/// Bytes in the decimal units drive labels use: `960.2 GB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        let cases = [
            ("960197124096", Some(960_197_124_096)),
            ("960G", Some(960_000_000_000)),
            ("960GB", Some(960_000_000_000)),
            ("1.92T", Some(1_920_000_000_000)),
            ("894GiB", Some(894 * (1 << 30))),
            (" 4 TiB ", Some(4 << 40)),
            ("0", Some(0)),
            ("", None),
            ("G", None),
            (".5G", None),
            ("1.2.3G", None),
            ("12X", None),
            ("-1G", None),
            ("99999999999999999999999P", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_size(text).ok(), want, "{text:?}");
        }
    }

    #[test]
    fn formats_sizes() {
        assert_eq!(format_size(960_000_000_000), "960.0 GB");
        assert_eq!(format_size(512), "512 B");
    }
}
