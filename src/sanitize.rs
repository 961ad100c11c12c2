//! Make strings from hardware and external tools safe to print.

/// Replace control characters (escape sequences, carriage returns, bells)
/// with `?` so a drive's model string cannot move the cursor or recolour the
/// terminal. Newlines and tabs are kept only when `multiline` is true.
pub fn sanitize(text: &str, multiline: bool) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\t' if multiline => c,
            c if c.is_control() => '?',
            // Bidirectional overrides can reorder what the eye reads.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => '?',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn strips_escapes_and_controls() {
        for (input, multiline, want) in [
            ("Samsung SSD 860", false, "Samsung SSD 860"),
            ("evil\x1b[2J\x07", false, "evil?[2J?"),
            ("a\nb\tc\r", true, "a\nb\tc?"),
            ("a\nb", false, "a?b"),
            ("x\u{202e}y", false, "x?y"),
        ] {
            assert_eq!(sanitize(input, multiline), want, "{input:?}");
        }
    }
}
