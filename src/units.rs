//! Sizes as people write them in runbooks and scenarios.

use anyhow::{Result, bail};

/// Parse `960G`, `1.92T`, `512Mi`, `4TiB`, `1000000` (bytes). Decimal
/// suffixes (K, M, G, T, P) are powers of 1000, as drive labels use; binary
/// ones (Ki, Mi, Gi, Ti, Pi) powers of 1024. A trailing `B` is allowed.
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let t = t.strip_suffix(['B', 'b']).unwrap_or(t);
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, suffix) = t.split_at(split);
    let factor: u64 = match suffix.trim() {
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
            "`{text}` is not a size: unknown unit `{other}` (use K, M, G, T or Ki, Mi, Gi, Ti)"
        ),
    };
    if number.is_empty() {
        bail!("`{text}` is not a size: it has no number");
    }
    if let Ok(whole) = number.parse::<u64>() {
        return whole
            .checked_mul(factor)
            .ok_or_else(|| anyhow::anyhow!("`{text}` is too large"));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| anyhow::anyhow!("`{text}` is not a size"))?;
    let bytes = value * factor as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        bail!("`{text}` is too large");
    }
    Ok(bytes.round() as u64)
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
        for (text, want) in [
            ("960G", 960_000_000_000),
            ("1.92T", 1_920_000_000_000),
            ("512Mi", 512 << 20),
            ("4TiB", 4 << 40),
            ("1000000", 1_000_000),
            (" 64K ", 64_000),
        ] {
            assert_eq!(parse_size(text).unwrap(), want, "{text}");
        }
        for bad in ["", "G", "12X", "1.2.3G", "99999999999999999999P", "-5G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_sizes() {
        assert_eq!(format_size(960_000_000_000), "960.0 GB");
        assert_eq!(format_size(512), "512 B");
    }
}
